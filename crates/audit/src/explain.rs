//! Explain: the whole life of one call from the streams — its inbound event, the decision and
//! its explanation, the settings in force at the decision's `settings_seq` (each with the
//! SETTINGS sequence it was stored at), whether the current code still decides the same, and
//! every dial step and outcome.

use crate::read::{Flow, Progress, Start, scan};
use crate::replay::{FieldDiff, compare};
use crate::settings::{SettingsLog, TenantSettings, summary};
use crate::table;
use crate::{AuditError, settings::Versioned};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use switchboard_bus::{CALLS, SETTINGS};
use switchboard_contracts::{
    CallDial, CallInbound, CallRejected, CallRoute, CallStatus, E164, EntityId, Envelope,
    FinalAction, Region, SettingsChange, TenantId, phone::mask,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{
    CompanyView, ContactView, NumberView, SettingPhone, SettingsView, TenantState, UserView,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One event of the call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Stream sequence.
    pub seq: u64,
    /// When the stream stored it (RFC 3339).
    pub stored_at: String,
}

fn stamp(seq: u64, time: OffsetDateTime) -> Stamp {
    Stamp {
        seq,
        stored_at: time.format(&Rfc3339).unwrap_or_else(|_| time.to_string()),
    }
}

/// The inbound event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundView {
    /// Where it is stored in CALLS.
    #[serde(flatten)]
    pub at: Stamp,
    /// The dialed number (masked).
    pub to: String,
    /// The caller (masked).
    pub from: String,
    /// The lead the producer named, if any.
    pub contact_id: Option<String>,
}

/// The recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    /// Where it is stored in CALLS.
    #[serde(flatten)]
    pub at: Stamp,
    /// The rule.
    pub rule: String,
    /// The chain: target then fallbacks (numbers masked).
    pub chain: Vec<String>,
    /// The final action.
    pub final_action: String,
    /// The SETTINGS sequence it was decided at.
    pub settings_seq: u64,
    /// The explanation, step by step, in English (v2's reasons rendered; v1's prose).
    pub explanation: Vec<String>,
    /// The reasons as data, numbers masked (v2; empty for a v1 decision).
    pub reasons: Vec<serde_json::Value>,
}

/// A settings entity in force at the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingView {
    /// Where its latest event is stored in SETTINGS.
    #[serde(flatten)]
    pub at: Stamp,
    /// `company/main`, `number/…`, `user/…`, `contact/…`.
    pub entity: String,
    /// Its version.
    pub version: u64,
    /// What it says (numbers masked).
    pub summary: String,
}

/// A dial step or outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepView {
    /// Where it is stored in CALLS.
    #[serde(flatten)]
    pub at: Stamp,
    /// `status` (the carrier's report) or `dial` (the dialer's action).
    pub source: String,
    /// The chain step.
    pub step: u32,
    /// What happened.
    pub what: String,
    /// Details: target (masked), reason.
    pub detail: String,
}

/// The call's whole life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallLife {
    /// The call.
    pub call_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The inbound event(s); more than one means it was published again after the duplicate
    /// window.
    pub inbound: Vec<InboundView>,
    /// The decision(s).
    pub decisions: Vec<DecisionView>,
    /// The settings the decision read, as of its `settings_seq`.
    pub settings: Vec<SettingView>,
    /// Whether the current code decides the same from those settings; the differences if not.
    pub replay: Option<Vec<FieldDiff>>,
    /// Dial steps and outcomes, in stream order.
    pub steps: Vec<StepView>,
    /// Rejections of events of this call.
    pub rejections: Vec<String>,
}

#[derive(Default)]
struct Found {
    inbound: Vec<(u64, OffsetDateTime, CallInbound)>,
    routes: Vec<(u64, OffsetDateTime, CallRoute)>,
    steps: Vec<StepView>,
    rejections: Vec<String>,
}

/// Finds `call_id` in CALLS (only `tenant`'s subjects when given) and tells its life; `None`
/// when no event of the call is stored.
pub async fn explain(
    js: &async_nats::jetstream::Context,
    call_id: &str,
    tenant: Option<&TenantId>,
    progress: &dyn Progress,
) -> Result<Option<CallLife>, AuditError> {
    if call_id.trim().is_empty()
        || call_id.len() > switchboard_contracts::MAX_CALL_ID_LEN
        || call_id.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AuditError::BadInput(format!(
            "{call_id:?} is not a call id (1-{} characters, no spaces)",
            switchboard_contracts::MAX_CALL_ID_LEN
        )));
    }
    let filter = match tenant {
        Some(t) => format!("call.*.{t}"),
        None => "call.>".to_string(),
    };
    let finder = memchr::memmem::Finder::new(call_id.as_bytes());
    let mut found: std::collections::BTreeMap<TenantId, Found> = Default::default();
    scan(
        js,
        CALLS,
        &[filter],
        Start::First,
        progress,
        "searching CALLS",
        |m| {
            if finder.find(&m.payload).is_none() {
                return Ok(Flow::Continue);
            }
            let Some(tenant) = m.token(2).and_then(|t| TenantId::new(t).ok()) else {
                return Ok(Flow::Continue);
            };
            let (seq, time) = (m.seq, m.time);
            match m.token(1) {
                Some("inbound") => {
                    if let Ok(e) = Envelope::<CallInbound>::decode(&m.payload, &m.subject)
                        && e.data.call_id == call_id
                    {
                        found
                            .entry(tenant)
                            .or_default()
                            .inbound
                            .push((seq, time, e.data));
                    }
                }
                Some("route") => {
                    if let Ok(e) = Envelope::<CallRoute>::decode(&m.payload, &m.subject)
                        && e.data.call_id == call_id
                    {
                        found
                            .entry(tenant)
                            .or_default()
                            .routes
                            .push((seq, time, e.data));
                    }
                }
                Some("status") => {
                    if let Ok(e) = Envelope::<CallStatus>::decode(&m.payload, &m.subject)
                        && e.data.call_id == call_id
                    {
                        let s = e.data;
                        let mut detail = Vec::new();
                        if let Some(d) = s.dial_call_duration {
                            detail.push(format!("connected {d} s"));
                        }
                        found.entry(tenant).or_default().steps.push(StepView {
                            at: stamp(seq, time),
                            source: "status".into(),
                            step: s.step,
                            what: s.dial_call_status.as_str().into(),
                            detail: detail.join(", "),
                        });
                    }
                }
                Some("dial") => {
                    if let Ok(e) = Envelope::<CallDial>::decode(&m.payload, &m.subject)
                        && e.data.call_id == call_id
                    {
                        let d = e.data;
                        let mut detail = Vec::new();
                        if let Some(t) = &d.target {
                            detail.push(format!("{} ({})", t.number, t.rule.as_str()));
                        }
                        if let Some(r) = &d.reason {
                            detail.push(masked_text(r));
                        }
                        found.entry(tenant).or_default().steps.push(StepView {
                            at: stamp(seq, time),
                            source: "dial".into(),
                            step: d.step,
                            what: d.kind.as_str().into(),
                            detail: detail.join("; "),
                        });
                    }
                }
                Some("rejected") => {
                    if let Ok(e) = Envelope::<CallRejected>::decode(&m.payload, &m.subject) {
                        let r = e.data.0;
                        let names_call =
                            serde_json::from_str::<serde_json::Value>(&r.original_payload)
                                .ok()
                                .and_then(|v| {
                                    v.pointer("/data/call_id")
                                        .and_then(|c| c.as_str())
                                        .map(|c| c == call_id)
                                })
                                .unwrap_or(false);
                        if names_call {
                            found.entry(tenant).or_default().rejections.push(format!(
                                "CALLS #{seq}: {} #{} on {} rejected ({})",
                                r.stream, r.stream_seq, r.original_subject, r.code
                            ));
                        }
                    }
                }
                _ => {}
            }
            Ok(Flow::Continue)
        },
    )
    .await?;

    if found.len() > 1 {
        let tenants: Vec<&str> = found.keys().map(TenantId::as_str).collect();
        return Err(AuditError::BadInput(format!(
            "call id {call_id} is used by several tenants ({}): pass --tenant",
            tenants.join(", ")
        )));
    }
    let Some((tenant, found)) = found.into_iter().next() else {
        return Ok(None);
    };

    let mut life = CallLife {
        call_id: call_id.to_string(),
        tenant_id: tenant.clone(),
        inbound: found
            .inbound
            .iter()
            .map(|(seq, time, c)| InboundView {
                at: stamp(*seq, *time),
                to: mask(&c.to),
                from: mask(&c.from),
                contact_id: c.contact_id.as_ref().map(ToString::to_string),
            })
            .collect(),
        decisions: found
            .routes
            .iter()
            .map(|(seq, time, r)| DecisionView {
                at: stamp(*seq, *time),
                rule: r.rule.as_str().into(),
                chain: r
                    .target
                    .iter()
                    .chain(&r.fallbacks)
                    .map(|t| format!("{} ({})", t.number, t.rule.as_str()))
                    .collect(),
                final_action: format!(
                    "{}: {}",
                    match r.final_action.kind {
                        switchboard_contracts::FinalActionKind::Voicemail => "voicemail",
                        switchboard_contracts::FinalActionKind::AnnounceHangup => "announce_hangup",
                    },
                    r.final_action.message
                ),
                settings_seq: r.settings_seq,
                explanation: r.explanation_lines(),
                reasons: r.reasons.iter().map(|r| r.masked_json()).collect(),
            })
            .collect(),
        settings: Vec::new(),
        replay: None,
        steps: found.steps,
        rejections: found.rejections,
    };

    // The settings in force at the (first) decision, and the decision made again from them.
    if let (Some((_, _, route)), Some((_, _, call))) = (found.routes.first(), found.inbound.first())
    {
        let upto = route.settings_seq;
        let mut log = SettingsLog::new();
        let mut projection = Projection::new();
        if upto > 0 {
            let filters = [format!("settings.{tenant}.>")];
            scan(
                js,
                SETTINGS,
                &filters,
                Start::First,
                progress,
                "reading SETTINGS",
                |m| {
                    if m.seq > upto {
                        return Ok(Flow::Stop);
                    }
                    let record = Record::decode(m.seq, &m.subject, &m.payload);
                    if let Some(change) = &record.change {
                        log.apply(m.seq, m.time, change);
                    }
                    projection.apply(&record);
                    Ok(Flow::Continue)
                },
            )
            .await?;
        }
        // Decided again through a view that notes what the routing core looks up: the
        // settings shown are exactly those the decision read, whatever the rules read.
        let empty = TenantState::new(tenant.clone());
        let reads = Reads::new(projection.tenant(&tenant).unwrap_or(&empty));
        let decision = switchboard_routing::decide(call, &reads);
        if let Some(settings) = log.tenant(&tenant) {
            life.settings = reads.settings(settings);
        }
        life.replay = Some(compare(route, &decision));
    }
    Ok(Some(life))
}

/// A settings view that notes every entity looked up through it: what a decision read.
struct Reads<'a, V> {
    view: &'a V,
    company: Cell<bool>,
    numbers: RefCell<BTreeSet<E164>>,
    contacts: RefCell<BTreeSet<EntityId>>,
    users: RefCell<BTreeSet<EntityId>>,
}

impl<'a, V: SettingsView> Reads<'a, V> {
    fn new(view: &'a V) -> Self {
        Reads {
            view,
            company: Cell::new(false),
            numbers: RefCell::default(),
            contacts: RefCell::default(),
            users: RefCell::default(),
        }
    }

    /// The entities read, as stored in `settings`: the company, the numbers, the contacts
    /// (leads), then their users, each kind in key order.
    fn settings(&self, settings: &TenantSettings) -> Vec<SettingView> {
        let mut views = Vec::new();
        let mut push = |v: &Versioned<SettingsChange>, entity: String| {
            views.push(SettingView {
                at: stamp(v.seq, v.time),
                entity,
                version: v.data.version(),
                summary: summary(&v.data),
            });
        };
        let wrap = |seq, time, data| Versioned { seq, time, data };
        if let Some(c) = settings.company.as_ref().filter(|_| self.company.get()) {
            push(
                &wrap(c.seq, c.time, SettingsChange::Company(c.data.clone())),
                "company/main".into(),
            );
        }
        for n in self.numbers.borrow().iter() {
            if let Some(n) = settings.numbers.get(n) {
                push(
                    &wrap(n.seq, n.time, SettingsChange::Number(n.data.clone())),
                    format!("number/{}", n.data.number),
                );
            }
        }
        for id in self.contacts.borrow().iter() {
            if let Some(c) = settings.contacts.get(id) {
                push(
                    &wrap(c.seq, c.time, SettingsChange::Contact(c.data.clone())),
                    format!("contact/{id}"),
                );
            }
        }
        for id in self.users.borrow().iter() {
            if let Some(u) = settings.users.get(id) {
                push(
                    &wrap(u.seq, u.time, SettingsChange::User(u.data.clone())),
                    format!("user/{id}"),
                );
            }
        }
        views
    }
}

impl<V: SettingsView> SettingsView for Reads<'_, V> {
    fn region(&self) -> Region {
        self.company.set(true);
        self.view.region()
    }

    fn company_phone(&self) -> Option<&SettingPhone> {
        self.company.set(true);
        self.view.company_phone()
    }

    fn final_action(&self) -> Option<&FinalAction> {
        self.company.set(true);
        self.view.final_action()
    }

    fn company(&self) -> CompanyView<'_> {
        self.company.set(true);
        self.view.company()
    }

    fn number(&self, number: &E164) -> Option<NumberView<'_>> {
        self.numbers.borrow_mut().insert(number.clone());
        self.view.number(number)
    }

    fn user(&self, user_id: &EntityId) -> Option<UserView<'_>> {
        self.users.borrow_mut().insert(user_id.clone());
        self.view.user(user_id)
    }

    fn contact(&self, contact_id: &EntityId) -> Option<ContactView<'_>> {
        self.contacts.borrow_mut().insert(contact_id.clone());
        self.view.contact(contact_id)
    }

    /// Not noted: the contacts found are looked up one by one, and noted then.
    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
        self.view.contacts_with_phone(phone)
    }
}

/// Masks every run of digits long enough to be a phone number in free text (carrier errors
/// may quote the number).
pub(crate) fn masked_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().filter(char::is_ascii_digit).count() >= 7 {
            out.push_str(&mask(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '+' && run.is_empty()) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

impl CallLife {
    /// The life as text for people: one section per part, tables where there are rows.
    pub fn to_text(&self) -> String {
        let mut out = format!("call {} (tenant {})\n", self.call_id, self.tenant_id);
        out.push_str("\ninbound\n");
        if self.inbound.is_empty() {
            out.push_str("  no call.inbound event is stored for this call\n");
        }
        for i in &self.inbound {
            out.push_str(&format!(
                "  CALLS #{} at {}: to {} from {}{}\n",
                i.at.seq,
                i.at.stored_at,
                i.to,
                if i.from.is_empty() {
                    "(withheld)"
                } else {
                    &i.from
                },
                i.contact_id.as_ref().map_or(String::new(), |c| format!(
                    ", lead {c} named by the producer"
                ))
            ));
        }
        out.push_str("\ndecision\n");
        if self.decisions.is_empty() {
            out.push_str("  no call.route event is stored for this call\n");
        }
        for d in &self.decisions {
            out.push_str(&format!(
                "  CALLS #{} at {}: rule {}, decided at SETTINGS #{}\n",
                d.at.seq, d.at.stored_at, d.rule, d.settings_seq
            ));
            for (i, t) in d.chain.iter().enumerate() {
                let label = if i == 0 { "ring" } else { "then" };
                out.push_str(&format!("    {label} {t}\n"));
            }
            out.push_str(&format!("    finally {}\n", d.final_action));
            out.push_str("  why\n");
            for (i, line) in d.explanation.iter().enumerate() {
                out.push_str(&format!("    {}. {line}\n", i + 1));
            }
        }
        if let Some(first) = self.decisions.first() {
            out.push_str(&format!(
                "\nsettings in force (as of SETTINGS #{})\n",
                first.settings_seq
            ));
            if self.settings.is_empty() {
                out.push_str("  none of the tenant's settings were stored yet\n");
            } else {
                let rows = self.settings.iter().map(|s| {
                    vec![
                        s.at.seq.to_string(),
                        s.entity.clone(),
                        format!("v{}", s.version),
                        s.summary.clone(),
                    ]
                });
                out.push_str(&table::render(
                    &["SETTINGS #", "entity", "version", "value"],
                    rows,
                ));
            }
        }
        match &self.replay {
            Some(diffs) if diffs.is_empty() => out.push_str(
                "\nreplay: the current routing code decides the same from these settings\n",
            ),
            Some(diffs) => {
                out.push_str("\nreplay: the current routing code decides differently\n");
                let rows = diffs
                    .iter()
                    .map(|d| vec![d.field.clone(), d.recorded.clone(), d.replayed.clone()]);
                out.push_str(&table::render(&["field", "recorded", "now"], rows));
            }
            None => {}
        }
        out.push_str("\ndial steps\n");
        if self.steps.is_empty() {
            out.push_str("  no dial step is recorded\n");
        } else {
            let rows = self.steps.iter().map(|s| {
                vec![
                    s.at.seq.to_string(),
                    s.at.stored_at.clone(),
                    s.source.clone(),
                    s.step.to_string(),
                    s.what.clone(),
                    s.detail.clone(),
                ]
            });
            out.push_str(&table::render(
                &["CALLS #", "stored at", "from", "step", "what", "detail"],
                rows,
            ));
        }
        if !self.rejections.is_empty() {
            out.push_str("\nrejections\n");
            for r in &self.rejections {
                out.push_str(&format!("  {r}\n"));
            }
        }
        out
    }
}
