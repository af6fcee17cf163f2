//! Lint: settings in which a call can end with no target or a bad one, each with how to fix
//! it. The settings checks are pure ([`lint_settings`]); only "released numbers still
//! receiving calls" reads CALLS.

use crate::read::{Flow, Progress, Selection, Start, scan};
use crate::settings::{SettingsLog, TenantSettings, masked_raw};
use crate::{AuditError, table};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use switchboard_bus::{CALLS, SETTINGS};
use switchboard_contracts::{
    AfterHoursKind, CallInbound, E164, EntityId, Envelope, Region, Schedule, Screening,
    SettingsChange, TenantId, phone::mask,
};
use switchboard_projections::Record;
use switchboard_routing::BlockList;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One problem in a tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// The tenant.
    pub tenant_id: TenantId,
    /// A stable code: `no_target`, `bad_forwarding_number`, `bad_company_phone`,
    /// `forwarding_loop`, `company_phone_loop`, `lead_user_without_phone`,
    /// `lead_user_deactivated`, `lead_user_unknown`, `released_number_receiving_calls`,
    /// `business_hours_never_open`, `working_hours_never_open`, `direct_line_owner_unknown`,
    /// `direct_line_owner_deactivated`, `direct_line_owner_without_phone`,
    /// `after_hours_forward_loop`, `ring_group_never_rings`, `ring_group_member_unknown`,
    /// `blocked_own_number`, `screening_ring_timeout_too_short`; as warnings,
    /// `ring_timeout_outside_15_20` and `number_unknown_to_metadata`.
    pub code: String,
    /// The entity at fault (`number/1650…`, `user/u-1`, `company/main`), numbers masked.
    pub entity: String,
    /// What can happen to a call.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// What lint found, sorted by tenant, code and entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    /// Tenants whose settings were checked.
    pub tenants: u64,
    /// The findings: settings in which a call can end badly.
    pub findings: Vec<Finding>,
    /// Settings that work but go against advice (each says why); not problems, so they do
    /// not fail `switchboard lint`.
    pub warnings: Vec<Finding>,
}

/// How a phone number from settings reads in the tenant's region.
enum Read {
    Missing,
    /// Not a possible number: never dialed.
    Bad,
    /// A possible number ([`E164::parse`]): dialed, whether the metadata knows it or not.
    Usable(E164),
}

fn read(raw: Option<&str>, region: Region) -> Read {
    match raw {
        None => Read::Missing,
        Some(raw) => match E164::parse(raw, region) {
            Ok(n) => Read::Usable(n),
            Err(switchboard_contracts::PhoneError::Withheld) => Read::Missing,
            Err(_) => Read::Bad,
        },
    }
}

/// Most lead ids quoted in one finding.
const QUOTED_LEADS: usize = 5;

/// How a fix is published: the settings API or a settings file, each carrying all of the
/// entity's settings (an event is its full state, never a patch) with a newer `version`.
/// `id` is the entity's id or, for a number (masked in texts), `<digits>`.
fn via(tenant: &TenantId, kind: &str, id: &str) -> String {
    format!(
        "(`PUT /v1/tenants/{tenant}/settings/{kind}/{id}` or `switchboard settings apply FILE`, \
         with all of the {kind}'s settings and a newer `version`)"
    )
}

/// The id of a number in a fix: its digits, which a fix never shows.
const DIGITS: &str = "<digits>";

/// Checks every tenant's settings (pure).
pub fn lint_settings(log: &SettingsLog) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (tenant, settings) in &log.tenants {
        lint_tenant(tenant, settings, &mut findings);
        lint_hours(tenant, settings, &mut findings);
        lint_ring_groups(tenant, settings, &mut findings);
        lint_blocked(tenant, settings, &mut findings);
        lint_screening(tenant, settings, &mut findings);
    }
    findings.sort();
    findings
}

/// The advice lint gives beyond problems (pure): ring timeouts outside 15–20 s, and numbers
/// the phone-number metadata does not know.
pub fn lint_warnings(log: &SettingsLog) -> Vec<Finding> {
    let mut warnings = Vec::new();
    for (tenant, s) in &log.tenants {
        lint_unknown_numbers(tenant, s, &mut warnings);
        let mut check = |entity: String, secs: Option<u32>, whose: &str, fix: String| {
            let Some(secs) = secs.filter(|secs| !RECOMMENDED_RING_TIMEOUT.contains(secs)) else {
                return;
            };
            let why = if secs < *RECOMMENDED_RING_TIMEOUT.start() {
                "a person often cannot answer that fast (a phone needs a few rings), so callers \
                 move on to the next step or the final action while someone is reaching for it"
            } else {
                "a phone's own voicemail usually answers after about 20 s: the call is then \
                 logged as completed, and the next step (and the company's voicemail) never \
                 comes"
            };
            warnings.push(Finding {
                tenant_id: tenant.clone(),
                code: "ring_timeout_outside_15_20".into(),
                entity,
                problem: format!("{whose} ring timeout is {secs} s, outside 15–20 s: {why}"),
                fix,
            });
        };
        if let Some(company) = &s.company {
            check(
                "company/main".into(),
                company.data.ring_timeout_secs,
                "the company's",
                format!(
                    "set `company.ring_timeout_secs` between 15 and 20, or leave it out for 20 s \
                     {}",
                    via(tenant, "company", "main")
                ),
            );
        }
        for number in s.numbers.values().filter(|n| !n.data.released) {
            let n = &number.data;
            check(
                format!("number/{}", n.number),
                n.ring_timeout_secs,
                &format!("{}'s", n.number),
                format!(
                    "set `number.ring_timeout_secs` between 15 and 20, or leave it out to use \
                     the company's ring timeout {}",
                    via(tenant, "number", DIGITS)
                ),
            );
            check(
                format!("number/{}", n.number),
                n.ring_group.as_ref().and_then(|g| g.ring_timeout_secs),
                &format!("the ring group of {}'s", n.number),
                format!(
                    "set `number.ring_group.ring_timeout_secs` between 15 and 20, or leave it \
                     out to use the number's ring timeout {}",
                    via(tenant, "number", DIGITS)
                ),
            );
        }
    }
    warnings.sort();
    warnings
}

/// The code of [`lint_unknown_numbers`]' warnings.
const UNKNOWN_TO_METADATA: &str = "number_unknown_to_metadata";

/// Settings numbers that are possible (so accepted, routed and dialed) but in no range the
/// phone-number metadata knows: a typo is likelier than an area code newer than the metadata,
/// so each is worth a look — a warning, never a refusal. Every number settings hold: the
/// company phone and after-hours forward, the tenant's numbers (not released) and their
/// forwarding numbers, active users' phones, and contacts' phones (not deleted; one warning
/// for all of a tenant's contacts).
fn lint_unknown_numbers(tenant: &TenantId, s: &TenantSettings, warnings: &mut Vec<Finding>) {
    let region = s.region();
    let unknown = |raw: Option<&str>| match read(raw, region) {
        Read::Usable(n) if !n.is_known_valid() => Some(n),
        _ => None,
    };
    let mut warn = |entity: String, what: String, fix: String| {
        warnings.push(Finding {
            tenant_id: tenant.clone(),
            code: UNKNOWN_TO_METADATA.into(),
            entity,
            problem: format!(
                "{what} in no range the phone-number metadata (libphonenumber's) knows, though \
                 its length is possible: Switchboard accepts and dials it, but a typo is likelier \
                 than an area code newer than the metadata"
            ),
            fix: format!("check the number; if it is right, nothing needs doing, otherwise {fix}"),
        });
    };
    if let Some(company) = s.company.as_ref().map(|c| &c.data) {
        let put = via(tenant, "company", "main");
        if let Some(n) = unknown(company.company_phone.as_deref()) {
            warn(
                "company/main".into(),
                format!("the company phone {n} is"),
                format!("correct `company.company_phone` {put}"),
            );
        }
        let forward = company
            .after_hours
            .as_ref()
            .filter(|a| a.kind == AfterHoursKind::Forward)
            .and_then(|a| a.number.as_deref());
        if let Some(n) = unknown(forward) {
            warn(
                "company/main".into(),
                format!("the after-hours forward {n} is"),
                format!("correct `company.after_hours.number` {put}"),
            );
        }
    }
    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        let entity = format!("number/{}", n.number);
        let put = via(tenant, "number", DIGITS);
        if !n.number.is_known_valid() {
            warn(
                entity.clone(),
                format!("this tenant's number {} is", n.number),
                format!(
                    "set `number.released` to true {put}, then publish the right number the \
                     same way (as `number.number`, its digits in the path)"
                ),
            );
        }
        if let Some(f) = unknown(n.forwarding_number.as_deref()) {
            warn(
                entity,
                format!("the forwarding number {f} of {} is", n.number),
                format!("correct `number.forwarding_number` {put}"),
            );
        }
    }
    for user in s.users.values().map(|u| &u.data).filter(|u| u.active) {
        if let Some(n) = unknown(user.phone.as_deref()) {
            warn(
                format!("user/{}", user.user_id),
                format!("the phone {n} of user {} is", user.user_id),
                format!(
                    "correct `user.phone` {}",
                    via(tenant, "user", user.user_id.as_str())
                ),
            );
        }
    }
    let contacts: Vec<&EntityId> = s
        .contacts
        .values()
        .map(|c| &c.data)
        .filter(|c| !c.deleted)
        .filter(|c| c.phones.iter().any(|p| unknown(Some(p)).is_some()))
        .map(|c| &c.contact_id)
        .collect();
    if let Some(first) = contacts.first() {
        let mut quoted: Vec<String> = contacts
            .iter()
            .take(QUOTED_LEADS)
            .map(ToString::to_string)
            .collect();
        if contacts.len() > QUOTED_LEADS {
            quoted.push(format!("and {} more", contacts.len() - QUOTED_LEADS));
        }
        let (what, fix) = match contacts.len() {
            1 => (
                format!("a phone of contact {first} is"),
                format!(
                    "correct `contact.phones` {}",
                    via(tenant, "contact", first.as_str())
                ),
            ),
            n => (
                format!("a phone of each of {n} contacts ({}) is", quoted.join(", ")),
                format!(
                    "correct `contact.phones` of each {}",
                    via(tenant, "contact", "<contact_id>")
                ),
            ),
        };
        warn("contacts".into(), what, fix);
    }
}

/// The ring timeouts advised: long enough to answer, short enough that a phone's own
/// voicemail does not pick up first.
const RECOMMENDED_RING_TIMEOUT: std::ops::RangeInclusive<u32> = 15..=20;

/// Hours that never open, direct lines whose owner cannot take calls, after-hours loops.
fn lint_hours(tenant: &TenantId, s: &TenantSettings, findings: &mut Vec<Finding>) {
    let region = s.region();
    let mut add = |code: &str, entity: String, problem: String, fix: String| {
        findings.push(Finding {
            tenant_id: tenant.clone(),
            code: code.into(),
            entity,
            problem,
            fix,
        })
    };
    let company = s.company.as_ref().map(|c| &c.data);
    let after_hours_forward = company
        .and_then(|c| c.after_hours.as_ref())
        .filter(|a| a.kind == AfterHoursKind::Forward)
        .and_then(|a| a.number.as_deref());
    if let Some(hours) = company.and_then(|c| c.business_hours.as_ref())
        && never_open(hours, "business_hours")
    {
        add(
            "business_hours_never_open",
            "company/main".into(),
            format!(
                "the business hours are never open (no day has hours, and no override opens \
                 one): every call gets the after-hours action ({}) and nobody else rings",
                match after_hours_forward {
                    Some(number) => format!("a forward to {}", masked_raw(number)),
                    None => "the final action".into(),
                }
            ),
            format!(
                "set opening hours in `company.business_hours` ({{\"weekly\": {{\"mon\": \
                 [[\"09:00\", \"17:00\"]], …}}}}), or leave `company.business_hours` out to be \
                 always open {}",
                via(tenant, "company", "main")
            ),
        );
    }
    if let Some(raw) = after_hours_forward
        && let Ok(forward) = E164::parse(raw, region)
        && let Some(own) = s
            .numbers
            .values()
            .map(|n| &n.data)
            .find(|n| !n.released && n.number == forward)
    {
        add(
            "after_hours_forward_loop",
            "company/main".into(),
            format!(
                "after hours, calls forward to {}, one of this tenant's own numbers: a call to \
                 it after hours is not forwarded (a loop) and gets only the final action, and \
                 calls to the other numbers come back in through it{}",
                own.number,
                if company.is_some_and(|c| c.business_hours.is_none()) {
                    " (once business hours are set)"
                } else {
                    ""
                }
            ),
            format!(
                "set `company.after_hours.number` to a number outside this tenant's numbers (an \
                 answering service or a mobile), or `company.after_hours` to \
                 {{\"kind\": \"final_action\"}} {}",
                via(tenant, "company", "main")
            ),
        );
    }
    for user in s.users.values().map(|u| &u.data) {
        if let Some(hours) = &user.working_hours
            && user.active
            && user.ring_only_in_working_hours
            && never_open(hours, "working_hours")
        {
            add(
                "working_hours_never_open",
                format!("user/{}", user.user_id),
                format!(
                    "user {} rings only in working hours, which are never open: their leads' \
                     calls and calls to their direct lines always skip them",
                    user.user_id
                ),
                format!(
                    "set opening hours in `user.working_hours`, or \
                     `user.ring_only_in_working_hours` to false {}",
                    via(tenant, "user", user.user_id.as_str())
                ),
            );
        }
    }
    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        let Some(owner) = &n.user_id else { continue };
        let entity = format!("number/{}", n.number);
        let fix = format!(
            "set `number.user_id` of {} to an active user with a phone, or leave it out {}",
            n.number,
            via(tenant, "number", DIGITS)
        );
        let owner_via = via(tenant, "user", owner.as_str());
        match s.users.get(owner).map(|u| &u.data) {
            None => add(
                "direct_line_owner_unknown",
                entity,
                format!(
                    "{} is the direct line of user {owner}, who is unknown: its calls never \
                     ring an owner",
                    n.number
                ),
                format!(
                    "publish user {owner} with `user.active` true and a `user.phone` \
                     {owner_via}, or {fix}"
                ),
            ),
            Some(user) if !user.active => add(
                "direct_line_owner_deactivated",
                entity,
                format!(
                    "{} is the direct line of user {owner}, who is deactivated: its calls never \
                     ring an owner",
                    n.number
                ),
                format!("set `user.active` of {owner} to true {owner_via}, or {fix}"),
            ),
            Some(user) if !matches!(read(user.phone.as_deref(), region), Read::Usable(_)) => add(
                "direct_line_owner_without_phone",
                entity,
                format!(
                    "{} is the direct line of user {owner}, who has no usable phone: its calls \
                     never ring an owner",
                    n.number
                ),
                format!("set a possible number as `user.phone` of {owner} {owner_via}, or {fix}"),
            ),
            Some(_) => {}
        }
    }
}

fn lint_tenant(tenant: &TenantId, s: &TenantSettings, findings: &mut Vec<Finding>) {
    let region = s.region();
    let mut add = |code: &str, entity: String, problem: String, fix: String| {
        findings.push(Finding {
            tenant_id: tenant.clone(),
            code: code.into(),
            entity,
            problem,
            fix,
        })
    };
    let own: BTreeSet<&E164> = s
        .numbers
        .values()
        .filter(|n| !n.data.released)
        .map(|n| &n.data.number)
        .collect();
    let company_raw = s
        .company
        .as_ref()
        .and_then(|c| c.data.company_phone.as_deref());
    let company = read(company_raw, region);
    match &company {
        Read::Bad => add(
            "bad_company_phone",
            "company/main".into(),
            format!(
                "the company phone {} is not a possible number in region {} (it does not parse, or has \
                 the wrong number of digits); it is never dialed",
                masked_raw(company_raw.unwrap_or_default()),
                region_name(s)
            ),
            format!(
                "correct `company.company_phone` to a possible number, E.164 such as \
                 +14155550100 or national in region {} {}",
                region_name(s),
                via(tenant, "company", "main")
            ),
        ),
        Read::Usable(n) if own.contains(n) => add(
            "company_phone_loop",
            "company/main".into(),
            format!(
                "the company phone {n} is one of this tenant's own numbers: a call forwarded \
                 there comes straight back"
            ),
            format!(
                "set `company.company_phone` to a number outside this tenant's numbers (an \
                 office line or a mobile) {}",
                via(tenant, "company", "main")
            ),
        ),
        _ => {}
    }
    // A loop is a bad target, reported as such; it still rings unless it is the dialed number.
    let company_rings = |dialed: &E164| matches!(&company, Read::Usable(c) if c != dialed);

    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        let entity = format!("number/{}", n.number);
        let forwarding = read(n.forwarding_number.as_deref(), region);
        let forwarding_ok = match &forwarding {
            Read::Missing => false,
            Read::Bad => {
                add(
                    "bad_forwarding_number",
                    entity.clone(),
                    format!(
                        "the forwarding number {} of {} is not a possible number in region {} \
                         (it does not parse, or has the wrong number of digits); it is never \
                         dialed",
                        masked_raw(n.forwarding_number.as_deref().unwrap_or_default()),
                        n.number,
                        region_name(s)
                    ),
                    format!(
                        "correct `number.forwarding_number` to a possible number, E.164 such as \
                         +14155550100 or national in region {} {}",
                        region_name(s),
                        via(tenant, "number", DIGITS)
                    ),
                );
                false
            }
            Read::Usable(f) if own.contains(f) => {
                let whose = if f == &n.number {
                    "the number itself".to_string()
                } else {
                    format!("this tenant's number {f}")
                };
                add(
                    "forwarding_loop",
                    entity.clone(),
                    format!(
                        "calls to {} forward to {whose}: a forwarding loop{}",
                        n.number,
                        if f == &n.number {
                            " (skipped when routing, so the forwarding number never rings)"
                        } else {
                            ""
                        }
                    ),
                    format!(
                        "set `number.forwarding_number` to a number outside this tenant's \
                         numbers (an office line or a mobile) {}",
                        via(tenant, "number", DIGITS)
                    ),
                );
                f != &n.number
            }
            Read::Usable(_) => true,
        };
        if !forwarding_ok && !company_rings(&n.number) {
            add(
                "no_target",
                entity,
                format!(
                    "a call to {} from anyone who is not a lead of a user with a phone has no \
                     number to ring (no usable forwarding number and no usable company phone): \
                     the caller only gets the final action",
                    n.number
                ),
                format!(
                    "set `number.forwarding_number` {}, or `company.company_phone` {}",
                    via(tenant, "number", DIGITS),
                    via(tenant, "company", "main")
                ),
            );
        }
    }

    // Leads whose assigned user cannot take the call, grouped by user.
    let mut by_user: BTreeMap<&EntityId, Vec<&EntityId>> = BTreeMap::new();
    for contact in s.contacts.values().filter(|c| !c.data.deleted) {
        if let Some(user) = &contact.data.assigned_user_id {
            by_user
                .entry(user)
                .or_default()
                .push(&contact.data.contact_id);
        }
    }
    for (user_id, leads) in by_user {
        let quoted = {
            let mut q: Vec<String> = leads
                .iter()
                .take(QUOTED_LEADS)
                .map(ToString::to_string)
                .collect();
            if leads.len() > QUOTED_LEADS {
                q.push(format!("and {} more", leads.len() - QUOTED_LEADS));
            }
            q.join(", ")
        };
        let count = leads.len();
        let plural = if count == 1 { "lead" } else { "leads" };
        let entity = format!("user/{user_id}");
        let contact = if count == 1 {
            leads[0].as_str()
        } else {
            "<contact_id>"
        };
        let reassign = format!(
            "or set `contact.assigned_user_id` of the {plural} ({quoted}) to an active user with a \
             phone {}",
            via(tenant, "contact", contact)
        );
        let user_via = via(tenant, "user", user_id.as_str());
        match s.users.get(user_id) {
            None => add(
                "lead_user_unknown",
                entity,
                format!(
                    "{count} {plural} ({quoted}) assigned to user {user_id}, who is unknown: \
                     their calls go to the forwarding number instead"
                ),
                format!(
                    "publish user {user_id} with `user.active` true and a `user.phone` \
                     {user_via}, {reassign}"
                ),
            ),
            Some(user) if !user.data.active => add(
                "lead_user_deactivated",
                entity,
                format!(
                    "{count} {plural} ({quoted}) assigned to user {user_id}, who is \
                     deactivated: their calls go to the forwarding number instead"
                ),
                format!("set `user.active` of {user_id} to true {user_via}, {reassign}"),
            ),
            Some(user) => match read(user.data.phone.as_deref(), region) {
                Read::Usable(_) => {}
                Read::Missing => add(
                    "lead_user_without_phone",
                    entity,
                    format!(
                        "{count} {plural} ({quoted}) assigned to user {user_id}, who has no \
                         phone: their calls go to the forwarding number instead"
                    ),
                    format!("set `user.phone` of {user_id} {user_via}, {reassign}"),
                ),
                Read::Bad => add(
                    "lead_user_without_phone",
                    entity,
                    format!(
                        "{count} {plural} ({quoted}) assigned to user {user_id}, whose phone {} \
                         is not a possible number: their calls go to the forwarding number instead",
                        masked_raw(user.data.phone.as_deref().unwrap_or_default())
                    ),
                    format!(
                        "correct `user.phone` of {user_id} to a possible number {user_via}, \
                         {reassign}"
                    ),
                ),
            },
        }
    }
}

/// Whether `schedule` never opens. Validated when applied; one that would not compile reads as
/// never open, as in routing.
fn never_open(schedule: &Schedule, field: &str) -> bool {
    schedule
        .compile(field)
        .map_or(true, |hours| !hours.ever_open())
}

/// Why a ring-group member can never ring a call to `dialed`, if they cannot.
fn member_cannot_ring(
    s: &TenantSettings,
    user_id: &EntityId,
    dialed: &E164,
    region: Region,
) -> Option<&'static str> {
    let Some(user) = s.users.get(user_id).map(|u| &u.data) else {
        return Some("unknown");
    };
    if !user.active {
        return Some("deactivated");
    }
    match read(user.phone.as_deref(), region) {
        Read::Missing => return Some("without a phone"),
        Read::Bad => return Some("without a possible phone number"),
        Read::Usable(phone) if &phone == dialed => {
            return Some("reachable only on this number itself (never rung: a loop)");
        }
        Read::Usable(_) => {}
    }
    match &user.working_hours {
        Some(hours) if user.ring_only_in_working_hours && never_open(hours, "working_hours") => {
            Some("ringing only in working hours that are never open")
        }
        _ => None,
    }
}

/// Ring groups in which nobody can ever ring (at any hour: availability is not a setting that
/// lasts, so it is not counted), and groups naming users that do not exist. A group over
/// [`switchboard_contracts::MAX_RING_GROUP`] members cannot be in force: the contract refuses
/// it when applied and the router's decoder skips it in SETTINGS, so lint checks what can be.
fn lint_ring_groups(tenant: &TenantId, s: &TenantSettings, findings: &mut Vec<Finding>) {
    let region = s.region();
    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        let Some(group) = &n.ring_group else { continue };
        let why: Vec<(&EntityId, Option<&str>)> = group
            .user_ids
            .iter()
            .map(|u| (u, member_cannot_ring(s, u, &n.number, region)))
            .collect();
        let entity = format!("number/{}", n.number);
        let number_via = via(tenant, "number", DIGITS);
        if why.iter().all(|(_, cannot)| cannot.is_some()) {
            let members: Vec<String> = why
                .iter()
                .map(|(u, cannot)| format!("{u} is {}", cannot.unwrap_or_default()))
                .collect();
            findings.push(Finding {
                tenant_id: tenant.clone(),
                code: "ring_group_never_rings".into(),
                entity,
                problem: format!(
                    "the ring group of {} rings nobody at any hour ({}): its calls always go on \
                     to the forwarding number, the company phone or the final action",
                    n.number,
                    members.join("; ")
                ),
                fix: format!(
                    "list active users with a phone in `number.ring_group.user_ids` (or set \
                     `number.ring_group` to null) {number_via}; or make a member able to ring: \
                     `user.active` true, a possible number as `user.phone`, opening hours in \
                     `user.working_hours` {}",
                    via(tenant, "user", "<user_id>")
                ),
            });
            continue;
        }
        let unknown: Vec<String> = why
            .iter()
            .filter(|(_, cannot)| *cannot == Some("unknown"))
            .map(|(u, _)| u.to_string())
            .collect();
        if !unknown.is_empty() {
            findings.push(Finding {
                tenant_id: tenant.clone(),
                code: "ring_group_member_unknown".into(),
                entity,
                problem: format!(
                    "the ring group of {} names {} user(s) that do not exist ({}): they never \
                     ring (a typo in a user id, or a user never published)",
                    n.number,
                    unknown.len(),
                    unknown.join(", ")
                ),
                fix: format!(
                    "correct or remove them in `number.ring_group.user_ids` {number_via}, or \
                     publish each with `user.active` true and a `user.phone` {}",
                    via(tenant, "user", "<user_id>")
                ),
            });
        }
    }
}

/// A block-list entry as texts show it: a prefix short enough not to be a phone number as is,
/// a longer one masked.
fn entry_text(entry: &str) -> String {
    if entry.chars().filter(char::is_ascii_digit).count() >= 7 {
        mask(entry)
    } else {
        entry.to_string()
    }
}

/// `blocked_callers` entries that block the company's own numbers (its numbers, the company
/// phone), a forwarding number or the after-hours forward: calls from them — a colleague on
/// the office line, a call passed on by the answering service or from one of the company's
/// numbers — are refused, unanswered, before any rule.
fn lint_blocked(tenant: &TenantId, s: &TenantSettings, findings: &mut Vec<Finding>) {
    let Some(company) = s.company.as_ref().map(|c| &c.data) else {
        return;
    };
    if company.blocked_callers.is_empty() {
        return;
    }
    let region = s.region();
    let blocked = BlockList::new(company.blocked_callers.iter().map(String::as_str));
    let usable = |raw: Option<&str>| match read(raw, region) {
        Read::Usable(n) => Some(n),
        _ => None,
    };
    // What each entry blocks, in entry order.
    let mut by_entry: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut check = |number: Option<E164>, what: &dyn Fn(&E164) -> String| {
        if let Some(number) = number
            && let Some(entry) = blocked.matching(number.as_str())
        {
            by_entry
                .entry(entry.to_string())
                .or_default()
                .push(what(&number));
        }
    };
    check(usable(company.company_phone.as_deref()), &|n| {
        format!("the company phone {n}")
    });
    let forward = company
        .after_hours
        .as_ref()
        .filter(|a| a.kind == AfterHoursKind::Forward)
        .and_then(|a| a.number.as_deref());
    check(usable(forward), &|n| format!("the after-hours forward {n}"));
    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        check(Some(n.number.clone()), &|own| {
            format!("this tenant's number {own}")
        });
        check(usable(n.forwarding_number.as_deref()), &|f| {
            format!("the forwarding number {f} of {}", n.number)
        });
    }
    for (entry, what) in by_entry {
        findings.push(Finding {
            tenant_id: tenant.clone(),
            code: "blocked_own_number".into(),
            entity: "company/main".into(),
            problem: format!(
                "the blocked-callers entry {} blocks {}: calls from there (a colleague on the \
                 office line, a call passed on by an answering service or from one of the \
                 company's numbers) are refused before anything rings",
                entry_text(&entry),
                what.join(", ")
            ),
            fix: format!(
                "remove {} from `company.blocked_callers` (or list longer entries that leave \
                 these numbers out) {}",
                entry_text(&entry),
                via(tenant, "company", "main")
            ),
        });
    }
}

/// The shortest ring timeout in which a person can answer a screened leg, hear the whisper and
/// press 1.
const MIN_SCREENED_RING_TIMEOUT: u32 = 15;

/// Screening on while a ring timeout that applies to screened legs (every leg but the company
/// phone) is under [`MIN_SCREENED_RING_TIMEOUT`]: the leg stops ringing before anyone can
/// accept it, and counts as no-answer.
fn lint_screening(tenant: &TenantId, s: &TenantSettings, findings: &mut Vec<Finding>) {
    let Some(company) = s.company.as_ref().map(|c| &c.data) else {
        return;
    };
    if company.screening != Some(Screening::Forwarded) {
        return;
    }
    let company_via = via(tenant, "company", "main");
    let off = format!("or set `company.screening` to \"off\" {company_via}");
    let mut add = |entity: String, whose: String, secs: u32, fix: String| {
        findings.push(Finding {
            tenant_id: tenant.clone(),
            code: "screening_ring_timeout_too_short".into(),
            entity,
            problem: format!(
                "screening is on (`forwarded`) and {whose} ring timeout is {secs} s, under \
                 {MIN_SCREENED_RING_TIMEOUT} s: a screened leg must be answered, the whisper \
                 heard and 1 pressed before it stops ringing, so it usually counts as no-answer \
                 and the call moves on"
            ),
            fix,
        });
    };
    if let Some(secs) = company
        .ring_timeout_secs
        .filter(|s| *s < MIN_SCREENED_RING_TIMEOUT)
    {
        add(
            "company/main".into(),
            "the company's".into(),
            secs,
            format!(
                "set `company.ring_timeout_secs` to {MIN_SCREENED_RING_TIMEOUT} or more (or \
                 leave it out for 20 s) {company_via}, {off}"
            ),
        );
    }
    for number in s.numbers.values().filter(|n| !n.data.released) {
        let n = &number.data;
        let entity = format!("number/{}", n.number);
        let number_via = via(tenant, "number", DIGITS);
        if let Some(secs) = n
            .ring_timeout_secs
            .filter(|s| *s < MIN_SCREENED_RING_TIMEOUT)
        {
            add(
                entity.clone(),
                format!("{}'s", n.number),
                secs,
                format!(
                    "set `number.ring_timeout_secs` to {MIN_SCREENED_RING_TIMEOUT} or more (or \
                     leave it out for the company's) {number_via}, {off}"
                ),
            );
        }
        if let Some(secs) = n
            .ring_group
            .as_ref()
            .and_then(|g| g.ring_timeout_secs)
            .filter(|s| *s < MIN_SCREENED_RING_TIMEOUT)
        {
            add(
                entity,
                format!("the ring group of {}'s", n.number),
                secs,
                format!(
                    "set `number.ring_group.ring_timeout_secs` to {MIN_SCREENED_RING_TIMEOUT} or \
                     more (or leave it out for the number's) {number_via}, {off}"
                ),
            );
        }
    }
}

fn region_name(s: &TenantSettings) -> String {
    s.company
        .as_ref()
        .and_then(|c| c.data.default_region.clone())
        .unwrap_or_else(|| "US".into())
}

/// Calls to a released number after its release: `(tenant, number)` → (count, last time).
pub fn released_receiving(
    log: &SettingsLog,
    calls: impl IntoIterator<Item = (OffsetDateTime, CallInbound)>,
) -> Vec<Finding> {
    let mut seen: BTreeMap<(TenantId, E164), (u64, OffsetDateTime)> = BTreeMap::new();
    for (time, call) in calls {
        let Some(s) = log.tenant(&call.tenant_id) else {
            continue;
        };
        let Ok(to) = E164::lookup_key(&call.to, s.region()) else {
            continue;
        };
        if let Some(released) = s.released_at.get(&to)
            && time >= *released
        {
            let entry = seen
                .entry((call.tenant_id.clone(), to))
                .or_insert((0, time));
            entry.0 += 1;
            entry.1 = entry.1.max(time);
        }
    }
    seen.into_iter()
        .map(|((tenant, number), (count, last))| {
            let released = log
                .tenant(&tenant)
                .and_then(|s| s.released_at.get(&number))
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default();
            let last = last.format(&Rfc3339).unwrap_or_default();
            let fix = format!(
                "release the number at the carrier too (or point its voice URL away from \
                 Switchboard) so its calls stop; or, if it is still in use, set \
                 `number.released` to false and `number.forwarding_number` to where it should \
                 ring {}",
                via(&tenant, "number", DIGITS)
            );
            Finding {
                tenant_id: tenant,
                code: "released_number_receiving_calls".into(),
                entity: format!("number/{number}"),
                problem: format!(
                    "{number} was released at {released} but {count} call(s) reached it since \
                     (the last at {last}); they get no route, only the final action"
                ),
                fix,
            }
        })
        .collect()
}

/// Lints the settings of the selected tenant (all tenants without one) as of now, and looks
/// in CALLS for calls to released numbers after their release.
pub async fn lint(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    progress: &dyn Progress,
) -> Result<LintReport, AuditError> {
    lint_with(js, selection, &[], progress).await
}

/// [`lint`] of the settings as they would be with `proposal` applied on top (in order, under
/// the version guard) — `switchboard settings apply --dry-run`. Nothing is published.
pub async fn lint_with(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    proposal: &[SettingsChange],
    progress: &dyn Progress,
) -> Result<LintReport, AuditError> {
    let mut log = SettingsLog::new();
    scan(
        js,
        SETTINGS,
        &selection.settings_subjects(),
        Start::First,
        progress,
        "reading SETTINGS",
        |m| {
            if let Some(change) = Record::decode(m.seq, &m.subject, &m.payload).change {
                log.apply(m.seq, m.time, &change);
            }
            Ok(Flow::Continue)
        },
    )
    .await?;
    // Proposed changes sit after everything stored (sequence 0: not stored anywhere).
    let now = OffsetDateTime::now_utc();
    for change in proposal {
        if selection
            .tenant
            .as_ref()
            .is_none_or(|t| t == change.tenant_id())
        {
            log.apply(0, now, change);
        }
    }
    let mut findings = lint_settings(&log);
    let warnings = lint_warnings(&log);

    // Only tenants with released numbers need their calls read.
    let released: Vec<String> = log
        .tenants
        .iter()
        .filter(|(_, s)| !s.released_at.is_empty())
        .map(|(t, _)| format!("call.inbound.{t}"))
        .collect();
    if !released.is_empty() {
        let earliest = log
            .tenants
            .values()
            .flat_map(|s| s.released_at.values())
            .min()
            .copied();
        let start = earliest.map_or(Start::First, Start::Time);
        let mut calls = Vec::new();
        scan(
            js,
            CALLS,
            &released,
            start,
            progress,
            "reading CALLS",
            |m| {
                if let Ok(e) = Envelope::<CallInbound>::decode(&m.payload, &m.subject) {
                    calls.push((m.time, e.data));
                }
                Ok(Flow::Continue)
            },
        )
        .await?;
        findings.extend(released_receiving(&log, calls));
        findings.sort();
    }
    Ok(LintReport {
        tenants: log.tenants.len() as u64,
        findings,
        warnings,
    })
}

impl LintReport {
    /// The findings as text for people.
    pub fn to_text(&self) -> String {
        let mut warnings = String::new();
        if !self.warnings.is_empty() {
            warnings.push_str(&format!("\n{} warning(s)\n\n", self.warnings.len()));
            for (i, f) in self.warnings.iter().enumerate() {
                warnings.push_str(&format!(
                    "{}. [{}] {} {}\n   warning: {}\n   fix:     {}\n",
                    i + 1,
                    f.code,
                    f.tenant_id,
                    f.entity,
                    f.problem,
                    f.fix
                ));
            }
        }
        if self.findings.is_empty() {
            return format!(
                "lint: {} tenant(s) checked, no problems found\n{warnings}",
                self.tenants
            );
        }
        let mut out = format!(
            "lint: {} tenant(s) checked, {} problem(s)\n\n",
            self.tenants,
            self.findings.len()
        );
        for (i, f) in self.findings.iter().enumerate() {
            out.push_str(&format!(
                "{}. [{}] {} {}\n   problem: {}\n   fix:     {}\n",
                i + 1,
                f.code,
                f.tenant_id,
                f.entity,
                f.problem,
                f.fix
            ));
        }
        out.push('\n');
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for f in &self.findings {
            *counts.entry((f.tenant_id.as_str(), &f.code)).or_default() += 1;
        }
        let rows = counts
            .into_iter()
            .map(|((t, c), n)| vec![t.to_string(), c.to_string(), n.to_string()]);
        out.push_str(&table::render(&["tenant", "code", "count"], rows));
        out.push_str(&warnings);
        out
    }
}
