//! `settings apply` and a tenant SETTINGS has never seen: the settings of a new tenant look
//! exactly like those of a typo (`acmee` for `acme`), and publishing them would create a tenant
//! in silence. So a tenant of which SETTINGS holds no event at all is published only once
//! confirmed: by `--new-tenant TENANT`, or by answering `y` when asked on a terminal.
//! (The gateway's `PUT …/settings/…` needs no such check: it takes only a key of a tenant the
//! gateway's secrets already name.)

use async_nats::jetstream;
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use switchboard_contracts::{SettingsChange, TenantId};

/// The tenants of `changes` of which SETTINGS holds no event at all, in name order.
pub async fn unknown(
    js: &jetstream::Context,
    changes: &[SettingsChange],
) -> anyhow::Result<Vec<TenantId>> {
    let tenants: BTreeSet<&TenantId> = changes.iter().map(SettingsChange::tenant_id).collect();
    let mut unknown = Vec::new();
    for tenant in tenants {
        // The last message on any of the tenant's subjects: one lookup, no scan.
        let subject = format!(
            "{}.{tenant}.>",
            switchboard_contracts::subjects::SETTINGS_PREFIX
        );
        if switchboard_bus::last_on_subject(js, switchboard_bus::SETTINGS, &subject)
            .await?
            .is_none()
        {
            unknown.push(tenant.clone());
        }
    }
    Ok(unknown)
}

/// Of the `unknown` tenants, those not confirmed by a `--new-tenant` flag.
pub fn unconfirmed(unknown: &[TenantId], confirmed: &[TenantId]) -> Vec<TenantId> {
    unknown
        .iter()
        .filter(|t| !confirmed.contains(t))
        .cloned()
        .collect()
}

/// The tenants, for messages: `acme` or `acme, globex`.
pub fn names(tenants: &[TenantId]) -> String {
    tenants
        .iter()
        .map(TenantId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flags that confirm `tenants`: `--new-tenant acme --new-tenant globex`.
pub fn flags(tenants: &[TenantId]) -> String {
    tenants
        .iter()
        .map(|t| format!("--new-tenant {t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The warning about `tenants` (no event of them in SETTINGS).
pub fn warning(tenants: &[TenantId]) -> String {
    format!(
        "SETTINGS holds no event of tenant{} {}: publishing creates {} (or is it a typo of an existing tenant?)",
        if tenants.len() == 1 { "" } else { "s" },
        names(tenants),
        if tenants.len() == 1 { "it" } else { "them" },
    )
}

/// Asks on `ask` (a terminal) whether `tenants` are meant to be new, reading the answer from
/// `answer`: only `y` or `yes` (any case) confirms; anything else, or end of input, does not.
pub fn ask(
    tenants: &[TenantId],
    answer: &mut dyn BufRead,
    ask: &mut dyn Write,
) -> anyhow::Result<bool> {
    write!(
        ask,
        "{}.\nCreate {}? [y/N] ",
        warning(tenants),
        names(tenants)
    )?;
    ask.flush()?;
    let mut line = String::new();
    answer.read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tenants(names: &[&str]) -> Vec<TenantId> {
        names.iter().map(|n| TenantId::new(*n).unwrap()).collect()
    }

    #[test]
    fn only_the_tenants_named_by_a_flag_are_confirmed() {
        let unknown = tenants(&["acmee", "initech"]);
        assert_eq!(
            unconfirmed(&unknown, &tenants(&["initech", "globex"])),
            tenants(&["acmee"])
        );
        assert!(unconfirmed(&unknown, &unknown).is_empty());
        assert_eq!(flags(&unknown), "--new-tenant acmee --new-tenant initech");
    }

    #[test]
    fn only_yes_confirms_at_the_prompt() {
        let new = tenants(&["acmee"]);
        for (typed, confirmed) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("\n", false),
            ("n\n", false),
            ("yep\n", false),
            ("", false),
        ] {
            let mut asked = Vec::new();
            let answer = ask(&new, &mut typed.as_bytes(), &mut asked).unwrap();
            assert_eq!(answer, confirmed, "{typed:?}");
            let asked = String::from_utf8(asked).unwrap();
            assert!(
                asked.contains("no event of tenant acmee") && asked.ends_with("[y/N] "),
                "{asked}"
            );
        }
    }
}
