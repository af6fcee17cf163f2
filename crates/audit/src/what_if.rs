//! What-if: proposed settings events applied on top of the current settings, and the past
//! calls decided with and without them — counts per rule before and after, and examples of
//! calls that would ring elsewhere.
//!
//! Each call is decided with the returning-caller history as of its own position in CALLS
//! (the `calls_seq` its decision recorded, else the decision's sequence): the `answered`
//! events before it, read from CALLS when the current or the proposed settings have returning
//! callers on — so "what if we turn on returning callers for 30 days" is answered from who
//! really answered whom.

use crate::read::{self, Flow, Progress, Selection, Start, scan};
use crate::replay::{read_answers, recorded_calls};
use crate::{AuditError, table};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use switchboard_bus::SETTINGS;
use switchboard_contracts::{
    MAX_RETURNING_CALLER_DAYS, Rule, SettingsChange, TenantId, phone::mask,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{AnswerLog, Decision, SettingsView, TenantState, decide_with};

/// Calls per rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleCounts {
    /// The rule.
    pub rule: String,
    /// As recorded when the calls were decided.
    pub recorded: u64,
    /// Decided now with the current settings.
    pub before: u64,
    /// Decided now with the proposed settings.
    pub after: u64,
}

/// A call that would ring elsewhere with the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    /// The call.
    pub call_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The caller, masked.
    pub from: String,
    /// With the current settings: rule and chain (masked).
    pub before: String,
    /// With the proposal.
    pub after: String,
}

/// Returning callers with the proposal: how many past calls would go back to the person who
/// answered that caller before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReturningCallers {
    /// The proposed `returning_caller_days` (the highest, when several tenants are proposed).
    pub days: u32,
    /// Past calls that would ring the caller's last answerer with the proposal (rule
    /// `returning_caller`) and do not now: calls whose lead had no eligible owner.
    pub calls: u64,
    /// `answered` events read from CALLS: the history the calls were decided with.
    pub answers: u64,
}

/// What a proposal would change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WhatIfReport {
    /// The tenants the proposal touches (only their calls are decided again).
    pub tenants: Vec<TenantId>,
    /// Past calls decided again.
    pub calls: u64,
    /// Of which would ring differently (rule or chain).
    pub changed: u64,
    /// Per rule, in rule order.
    pub rules: Vec<RuleCounts>,
    /// The first changed calls, by CALLS sequence.
    pub examples: Vec<Example>,
    /// When the proposal turns returning callers on or changes their days: the calls that
    /// would go back to their caller's last answerer.
    pub returning_callers: Option<ReturningCallers>,
    /// Proposed events whose version was not newer than the current one, and so were applied
    /// as the next version.
    pub notes: Vec<String>,
}

fn chain_text(d: &Decision) -> String {
    let chain: Vec<String> = d
        .target
        .iter()
        .chain(&d.fallbacks)
        .map(|t| t.number.to_string())
        .collect();
    if chain.is_empty() {
        d.rule.as_str().to_string()
    } else {
        format!("{}: {}", d.rule.as_str(), chain.join(" → "))
    }
}

fn routes_differ(a: &Decision, b: &Decision) -> bool {
    a.rule != b.rule || a.target != b.target || a.fallbacks != b.fallbacks
}

fn with_version(change: &SettingsChange, version: u64) -> SettingsChange {
    let mut change = change.clone();
    match &mut change {
        SettingsChange::Company(c) => c.version = version,
        SettingsChange::Number(n) => n.version = version,
        SettingsChange::User(u) => u.version = version,
        SettingsChange::Contact(c) => c.version = version,
    }
    change
}

/// Applies `proposal` on top of `current` (copies of the touched tenants only); a proposed
/// event not newer than what is there is applied as the next version, since a proposal is
/// meant to win. Returns the proposed states and notes.
pub fn propose(
    current: &Projection,
    proposal: &[SettingsChange],
) -> (HashMap<TenantId, TenantState>, Vec<String>) {
    let mut proposed: HashMap<TenantId, TenantState> = HashMap::new();
    let mut notes = Vec::new();
    for change in proposal {
        let tenant = change.tenant_id();
        let state = proposed.entry(tenant.clone()).or_insert_with(|| {
            current
                .tenant(tenant)
                .cloned()
                .unwrap_or_else(|| TenantState::new(tenant.clone()))
        });
        let (entity, id) = change.key();
        let change = match state.version_of(entity, &id) {
            Some(v) if !change.supersedes(Some(v)) => {
                notes.push(format!(
                    "{tenant} {entity}/{}: version {} is not newer than the current {v}; tried as {}",
                    if entity == "number" { mask(&id) } else { id.clone() },
                    change.version(),
                    v + 1
                ));
                with_version(change, v + 1)
            }
            _ => change.clone(),
        };
        // The state was looked up by the change's own tenant.
        let _ = state.apply(&change);
    }
    (proposed, notes)
}

/// Decides the selected past calls of the tenants `proposal` touches with the current
/// settings and with the proposal applied on top.
pub async fn what_if(
    js: &async_nats::jetstream::Context,
    proposal: &[SettingsChange],
    selection: &Selection,
    examples: usize,
    progress: &dyn Progress,
) -> Result<WhatIfReport, AuditError> {
    selection.validate()?;
    if proposal.is_empty() {
        return Err(AuditError::BadInput(
            "the settings file proposes nothing".into(),
        ));
    }
    let tenants: BTreeSet<TenantId> = proposal.iter().map(|c| c.tenant_id().clone()).collect();
    if let Some(only) = &selection.tenant
        && tenants.iter().any(|t| t != only)
    {
        return Err(AuditError::BadInput(format!(
            "the settings file changes tenants other than {only}"
        )));
    }
    let mut current = Projection::new();
    let filters: Vec<String> = tenants.iter().map(|t| format!("settings.{t}.>")).collect();
    scan(
        js,
        SETTINGS,
        &filters,
        Start::First,
        progress,
        "reading SETTINGS",
        |m| {
            current.apply(&Record::decode(m.seq, &m.subject, &m.payload));
            Ok(Flow::Continue)
        },
    )
    .await?;
    let (proposed, notes) = propose(&current, proposal);

    let mut report = WhatIfReport {
        tenants: tenants.iter().cloned().collect(),
        notes,
        ..WhatIfReport::default()
    };
    let mut counts: BTreeMap<Rule, RuleCounts> = Rule::ALL
        .iter()
        .map(|r| {
            (
                *r,
                RuleCounts {
                    rule: r.as_str().into(),
                    ..RuleCounts::default()
                },
            )
        })
        .collect();
    for tenant in &tenants {
        let selection = Selection {
            tenant: Some(tenant.clone()),
            ..selection.clone()
        };
        let mut recorded = recorded_calls(js, &selection, read::DEFAULT_LOOKBACK, progress).await?;
        recorded.calls.sort_by_key(|c| c.route_seq);
        let empty = TenantState::new(tenant.clone());
        let now = current.tenant(tenant).unwrap_or(&empty);
        let Some(then) = proposed.get(tenant) else {
            continue;
        };
        let proposed_days = then.company().returning_caller_days;
        let current_days = now.company().returning_caller_days;
        if proposed_days > 0 && proposed_days != current_days {
            let returning = report
                .returning_callers
                .get_or_insert_with(Default::default);
            returning.days = returning.days.max(proposed_days);
        }
        // Who answered whom, read only when a decision can use it.
        let mut answers = AnswerLog::new();
        let uses_history = current_days > 0 || proposed_days > 0;
        if uses_history
            && let (Some(earliest), Some(upto)) = (
                recorded.calls.iter().map(|c| c.call.received_at).min(),
                recorded.calls.iter().map(|c| c.route_seq).max(),
            )
        {
            let since = earliest - time::Duration::days(i64::from(MAX_RETURNING_CALLER_DAYS));
            read_answers(js, &selection, since, upto, &mut answers, progress).await?;
            if let Some(returning) = &mut report.returning_callers {
                returning.answers += answers.len() as u64;
            }
        }
        for call in &recorded.calls {
            // As the router had it: up to the recorded `calls_seq`, else everything stored
            // before the decision.
            let upto = match call.calls_seq {
                0 => call.route_seq,
                seq => seq,
            };
            let history = answers.as_of(tenant, upto);
            let before = decide_with(&call.call, now, &history);
            let after = decide_with(&call.call, then, &history);
            if after.rule == Rule::ReturningCaller
                && before.rule != Rule::ReturningCaller
                && let Some(returning) = &mut report.returning_callers
            {
                returning.calls += 1;
            }
            report.calls += 1;
            for (rule, field) in [(call.rule, 0), (before.rule, 1), (after.rule, 2)] {
                if let Some(c) = counts.get_mut(&rule) {
                    match field {
                        0 => c.recorded += 1,
                        1 => c.before += 1,
                        _ => c.after += 1,
                    }
                }
            }
            if routes_differ(&before, &after) {
                report.changed += 1;
                if report.examples.len() < examples {
                    report.examples.push(Example {
                        call_id: call.call.call_id.clone(),
                        tenant_id: tenant.clone(),
                        from: mask(&call.call.from),
                        before: chain_text(&before),
                        after: chain_text(&after),
                    });
                }
            }
        }
    }
    report.rules = counts.into_values().collect();
    Ok(report)
}

impl WhatIfReport {
    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let tenants: Vec<&str> = self.tenants.iter().map(TenantId::as_str).collect();
        let mut out = format!(
            "what-if for {}: {} past call(s) decided again, {} would ring differently\n\n",
            tenants.join(", "),
            self.calls,
            self.changed
        );
        let rows = self.rules.iter().map(|r| {
            vec![
                r.rule.clone(),
                r.recorded.to_string(),
                r.before.to_string(),
                r.after.to_string(),
                format!("{:+}", r.after as i64 - r.before as i64),
            ]
        });
        out.push_str(&table::render(
            &["rule", "recorded", "now", "with change", "delta"],
            rows,
        ));
        if let Some(r) = &self.returning_callers {
            out.push_str(&format!(
                "\nreturning callers for {} day(s): {} past call(s) with no eligible owner would \
                 have gone back to the person who answered that caller before ({} answer(s) \
                 read from CALLS)\n",
                r.days, r.calls, r.answers
            ));
        }
        if !self.examples.is_empty() {
            out.push_str("\nexamples\n");
            let rows = self.examples.iter().map(|e| {
                vec![
                    e.call_id.clone(),
                    if e.from.is_empty() {
                        "(withheld)".into()
                    } else {
                        e.from.clone()
                    },
                    e.before.clone(),
                    e.after.clone(),
                ]
            });
            out.push_str(&table::render(
                &["call", "from", "now", "with change"],
                rows,
            ));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}
