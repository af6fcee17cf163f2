//! Explain: the whole life of one call from the streams — its inbound event, the decision and
//! its explanation, the settings in force at the decision's `settings_seq` (each with the
//! SETTINGS sequence it was stored at), whether the current code still decides the same (with
//! the returning-caller history as of the decision's `calls_seq`), and every dial step and
//! outcome.

use crate::index::{Lookup, call_events, contacts_with_phone_key, entity_history};
use crate::read::{Flow, Progress, Selection, Start, Stored, scan};
use crate::replay::{FieldDiff, compare, read_answers};
use crate::settings::{SettingsLog, TenantSettings, summary};
use crate::table;
use crate::{AuditError, settings::Versioned};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use switchboard_bus::SETTINGS;
use switchboard_contracts::{
    CallDial, CallInbound, CallRejected, CallRoute, CallStatus, E164, EntityId, Envelope,
    FinalAction, Region, SettingsChange, Target, TenantId, events::entity, phone::mask, subjects,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{
    AnswerLog, CallerHistory, CompanyView, ContactView, NumberView, SettingPhone, SettingsView,
    TenantState, UserView,
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
    /// The caller (masked; empty when withheld).
    pub from: String,
    /// The lead the producer named, if any.
    pub contact_id: Option<String>,
}

/// One leg of a decision's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetView {
    /// The number rung (masked).
    pub number: String,
    /// The rule that chose it.
    pub rule: String,
    /// The user whose phone it is, for a user's rule.
    pub user_id: Option<String>,
    /// Seconds it rings before the next leg, when the decision says.
    pub ring_timeout_secs: Option<u32>,
    /// Every member a simultaneous ring-group leg rings at once (empty for any other leg;
    /// `number` and `user_id` are then the first member's).
    pub group: Vec<MemberView>,
    /// The leg is screened: whoever answers hears a whisper and must press 1.
    pub screen: bool,
}

/// A member of a simultaneous ring-group leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// The member's phone (masked).
    pub number: String,
    /// The member.
    pub user_id: String,
}

impl TargetView {
    fn of(target: &Target) -> TargetView {
        TargetView {
            number: target.number.masked(),
            rule: target.rule.as_str().into(),
            user_id: target.user_id.as_ref().map(ToString::to_string),
            ring_timeout_secs: target.ring_timeout_secs,
            group: target
                .group
                .iter()
                .map(|m| MemberView {
                    number: m.number.masked(),
                    user_id: m.user_id.to_string(),
                })
                .collect(),
            screen: target.screen,
        }
    }

    /// The leg in one line: `+12*******34 (ring_group: u-a +12*******34, u-b +12*******35 at
    /// once; screened)`.
    pub fn text(&self) -> String {
        let mut notes = vec![self.rule.clone()];
        if !self.group.is_empty() {
            let members: Vec<String> = self
                .group
                .iter()
                .map(|m| format!("{} {}", m.user_id, m.number))
                .collect();
            notes[0] = format!("{}: {} at once", self.rule, members.join(", "));
        }
        if self.screen {
            notes.push("screened".into());
        }
        format!("{} ({})", self.number, notes.join("; "))
    }
}

/// What happens when no leg answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalActionView {
    /// `voicemail`, `announce_hangup` or `reject` (refused unanswered: the caller's carrier
    /// plays busy).
    pub kind: String,
    /// What the caller hears.
    pub message: String,
}

/// The recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    /// Where it is stored in CALLS.
    #[serde(flatten)]
    pub at: Stamp,
    /// The rule.
    pub rule: String,
    /// The chain: the target then the fallbacks, in the order they ring.
    pub chain: Vec<TargetView>,
    /// The final action.
    pub final_action: FinalActionView,
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
    /// `company`, `number`, `user` or `contact`.
    pub kind: String,
    /// Its id within the kind (`main`, the number masked, the user or contact id).
    pub id: String,
    /// `kind/id`, as the text shows it.
    pub entity: String,
    /// Its version.
    pub version: u64,
    /// Its settings as stored, numbers masked.
    pub data: serde_json::Value,
    /// What it says, in one line (numbers masked).
    pub summary: String,
}

/// Whether the current routing code decides the same from the settings in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayView {
    /// `true` when nothing differs.
    pub agrees: bool,
    /// What differs, field by field.
    pub differences: Vec<FieldDiff>,
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
    /// What happened (`step_started`, `no_answer`, `answered`, …).
    pub what: String,
    /// The leg, for a dialer step that names one.
    pub target: Option<TargetView>,
    /// Why, for a dialer step that says (numbers masked).
    pub reason: Option<String>,
    /// Seconds the leg was connected, for a carrier status that says.
    pub connected_secs: Option<u32>,
    /// The carrier's outcome is unknown (the dialer died while asking); never asked again.
    pub outcome_unknown: bool,
}

impl StepView {
    /// The details as one line for people.
    pub fn detail(&self) -> String {
        let mut detail = Vec::new();
        if let Some(secs) = self.connected_secs {
            detail.push(format!("connected {secs} s"));
        }
        if let Some(t) = &self.target {
            detail.push(t.text());
        }
        if let Some(r) = &self.reason {
            detail.push(r.clone());
        }
        if self.outcome_unknown {
            detail.push("outcome unknown".into());
        }
        detail.join("; ")
    }
}

/// A rejection of an event of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionView {
    /// Where the rejection is stored in CALLS.
    #[serde(flatten)]
    pub at: Stamp,
    /// The refused event's stream and sequence.
    pub stream: String,
    /// Its sequence there.
    pub stream_seq: u64,
    /// The subject it arrived on.
    pub original_subject: String,
    /// The stable code.
    pub code: String,
    /// Why, for people (numbers masked).
    pub reason: String,
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
    /// Whether the current code decides the same from those settings (absent without both an
    /// inbound event and a decision).
    pub replay: Option<ReplayView>,
    /// Dial steps and outcomes, in stream order.
    pub steps: Vec<StepView>,
    /// Rejections of events of this call.
    pub rejections: Vec<RejectionView>,
    /// How the call's events were found.
    pub lookup: Lookup,
}

#[derive(Default)]
struct Found {
    inbound: Vec<(u64, OffsetDateTime, CallInbound)>,
    routes: Vec<(u64, OffsetDateTime, CallRoute)>,
    steps: Vec<StepView>,
    rejections: Vec<RejectionView>,
}

impl Found {
    /// Notes one stored event of the call.
    fn note(&mut self, m: &Stored) {
        let (seq, time) = (m.seq, m.time);
        match m.token(1) {
            Some("inbound") => {
                if let Ok(e) = Envelope::<CallInbound>::decode(&m.payload, &m.subject) {
                    self.inbound.push((seq, time, e.data));
                }
            }
            Some("route") => {
                if let Ok(e) = Envelope::<CallRoute>::decode(&m.payload, &m.subject) {
                    self.routes.push((seq, time, e.data));
                }
            }
            Some("status") => {
                if let Ok(e) = Envelope::<CallStatus>::decode(&m.payload, &m.subject) {
                    let s = e.data;
                    self.steps.push(StepView {
                        at: stamp(seq, time),
                        source: "status".into(),
                        step: s.step,
                        what: s.dial_call_status.as_str().into(),
                        target: None,
                        reason: None,
                        connected_secs: s.dial_call_duration,
                        outcome_unknown: false,
                    });
                }
            }
            Some("dial") => {
                if let Ok(e) = Envelope::<CallDial>::decode(&m.payload, &m.subject) {
                    let d = e.data;
                    self.steps.push(StepView {
                        at: stamp(seq, time),
                        source: "dial".into(),
                        step: d.step,
                        what: d.kind.as_str().into(),
                        target: d.target.as_ref().map(TargetView::of),
                        reason: d.reason.as_deref().map(masked_text),
                        connected_secs: None,
                        outcome_unknown: d.outcome_unknown,
                    });
                }
            }
            Some("rejected") => {
                if let Ok(e) = Envelope::<CallRejected>::decode(&m.payload, &m.subject) {
                    let r = e.data.0;
                    self.rejections.push(RejectionView {
                        at: stamp(seq, time),
                        stream: r.stream,
                        stream_seq: r.stream_seq,
                        original_subject: r.original_subject,
                        code: r.code,
                        reason: masked_text(&r.reason),
                    });
                }
            }
            _ => {}
        }
    }
}

/// Finds `call_id` (only among `tenant`'s events when given) and tells its life; `None` when
/// no event of the call is stored. The call's events are found through the call index
/// ([`crate::index`]); the settings in force are read from the tenant's SETTINGS up to the
/// decision's `settings_seq`.
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
    let (events, lookup) = call_events(js, call_id, tenant, progress).await?;
    let mut found: std::collections::BTreeMap<TenantId, Found> = Default::default();
    for m in &events {
        let Some(tenant) = m.token(2).and_then(|t| TenantId::new(t).ok()) else {
            continue;
        };
        found.entry(tenant).or_default().note(m);
    }

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
                    .map(TargetView::of)
                    .collect(),
                final_action: FinalActionView {
                    kind: r.final_action.kind.as_str().into(),
                    message: r.final_action.message.to_string(),
                },
                settings_seq: r.settings_seq,
                explanation: r.explanation_lines(),
                reasons: r.reasons.iter().map(|r| r.masked_json()).collect(),
            })
            .collect(),
        settings: Vec::new(),
        replay: None,
        steps: found.steps,
        rejections: found.rejections,
        lookup,
    };

    // The settings in force at the (first) decision, and the decision made again from them.
    if let (Some((_, _, route)), Some((_, _, call))) = (found.routes.first(), found.inbound.first())
    {
        let upto = route.settings_seq;
        // Who answered whom as the router had applied it (`calls_seq`), when it recorded that.
        let mut answers = AnswerLog::new();
        if route.calls_seq > 0 {
            let selection = Selection {
                tenant: Some(tenant.clone()),
                ..Selection::default()
            };
            let since = call.received_at
                - time::Duration::days(i64::from(switchboard_contracts::MAX_RETURNING_CALLER_DAYS));
            read_answers(
                js,
                &selection,
                since,
                route.calls_seq,
                &mut answers,
                progress,
            )
            .await?;
        }
        let history = answers.as_of(&tenant, route.calls_seq);
        let (log, projection) = match settings_by_index(js, &tenant, upto, call, &history).await? {
            Some(read) => read,
            None => {
                life.lookup.settings_scanned = true;
                settings_by_scan(js, &tenant, upto, progress).await?
            }
        };
        // Decided again through a view that notes what the routing core looks up: the
        // settings shown are exactly those the decision read, whatever the rules read.
        let empty = TenantState::new(tenant.clone());
        let reads = Reads::new(projection.tenant(&tenant).unwrap_or(&empty));
        let decision = switchboard_routing::decide_with(call, &reads, &history);
        if let Some(settings) = log.tenant(&tenant) {
            life.settings = reads.settings(settings);
        }
        let differences = compare(route, &decision);
        life.replay = Some(ReplayView {
            agrees: differences.is_empty(),
            differences,
        });
    }
    Ok(Some(life))
}

/// The settings and projection of `tenant` as of SETTINGS `upto`, each built from every event
/// of the tenant up to there (a scan of the tenant's SETTINGS history): what explain falls back
/// to when the contact-phone index does not exist.
async fn settings_by_scan(
    js: &async_nats::jetstream::Context,
    tenant: &TenantId,
    upto: u64,
    progress: &dyn Progress,
) -> Result<(SettingsLog, Projection), AuditError> {
    let mut log = SettingsLog::new();
    let mut projection = Projection::new();
    if upto == 0 {
        return Ok((log, projection));
    }
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
    Ok((log, projection))
}

/// The same as [`settings_by_scan`], for what a decision about `call` reads only: the routing
/// core is run on what has been read so far, every entity it looks up that is not read yet
/// (and every contact that may have the caller's number, from the contact-phone index) is read
/// with its history up to `upto`, until it looks up nothing new. Each entity's state depends
/// on its own events alone, applied in SETTINGS order, so the decision sees what it would see
/// with every event applied. `None` when there is no contact-phone index.
async fn settings_by_index(
    js: &async_nats::jetstream::Context,
    tenant: &TenantId,
    upto: u64,
    call: &CallInbound,
    history: &impl CallerHistory,
) -> Result<Option<(SettingsLog, Projection)>, AuditError> {
    let mut events: std::collections::BTreeMap<u64, Stored> = Default::default();
    let mut read_subjects: BTreeSet<String> = BTreeSet::new();
    let mut read_keys: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut log = SettingsLog::new();
        let mut projection = Projection::new();
        for m in events.values() {
            let record = Record::decode(m.seq, &m.subject, &m.payload);
            if let Some(change) = &record.change {
                log.apply(m.seq, m.time, change);
            }
            projection.apply(&record);
        }
        let empty = TenantState::new(tenant.clone());
        let reads = Reads::new(projection.tenant(tenant).unwrap_or(&empty));
        let _ = switchboard_routing::decide_with(call, &reads, history);
        let (subjects, keys) = reads.wanted(tenant);
        let mut new: BTreeSet<String> = subjects.difference(&read_subjects).cloned().collect();
        let new_keys: Vec<String> = keys.difference(&read_keys).cloned().collect();
        for key in new_keys {
            match contacts_with_phone_key(js, tenant, &key, upto).await? {
                Some(contacts) => new.extend(contacts.difference(&read_subjects).cloned()),
                None => return Ok(None),
            }
            read_keys.insert(key);
        }
        if new.is_empty() {
            return Ok(Some((log, projection)));
        }
        for subject in new {
            for m in entity_history(js, &subject, upto).await? {
                events.insert(m.seq, m);
            }
            read_subjects.insert(subject);
        }
    }
}

/// A settings view that notes every entity looked up through it: what a decision read.
struct Reads<'a, V> {
    view: &'a V,
    company: Cell<bool>,
    numbers: RefCell<BTreeSet<E164>>,
    contacts: RefCell<BTreeSet<EntityId>>,
    users: RefCell<BTreeSet<EntityId>>,
    phones: RefCell<BTreeSet<E164>>,
}

impl<'a, V: SettingsView> Reads<'a, V> {
    fn new(view: &'a V) -> Self {
        Reads {
            view,
            company: Cell::new(false),
            numbers: RefCell::default(),
            contacts: RefCell::default(),
            users: RefCell::default(),
            phones: RefCell::default(),
        }
    }

    /// The SETTINGS subjects of the entities looked up, and the contact-phone index keys of
    /// the numbers whose contacts were asked for.
    fn wanted(&self, tenant: &TenantId) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut subjects = BTreeSet::new();
        if self.company.get() {
            subjects.insert(subjects::settings(
                tenant,
                entity::COMPANY,
                entity::COMPANY_ID,
            ));
        }
        for n in self.numbers.borrow().iter() {
            subjects.insert(subjects::settings(tenant, entity::NUMBER, n.digits()));
        }
        for id in self.users.borrow().iter() {
            subjects.insert(subjects::settings(tenant, entity::USER, id.as_str()));
        }
        for id in self.contacts.borrow().iter() {
            subjects.insert(subjects::settings(tenant, entity::CONTACT, id.as_str()));
        }
        let keys = self
            .phones
            .borrow()
            .iter()
            .map(subjects::phone_index_key)
            .collect();
        (subjects, keys)
    }

    /// The entities read, as stored in `settings`: the company, the numbers, the contacts
    /// (leads), then their users, each kind in key order.
    fn settings(&self, settings: &TenantSettings) -> Vec<SettingView> {
        let mut views = Vec::new();
        let mut push = |v: &Versioned<SettingsChange>, entity: String| {
            let (kind, id) = entity.split_once('/').unwrap_or((&entity, ""));
            views.push(SettingView {
                at: stamp(v.seq, v.time),
                kind: kind.to_string(),
                id: id.to_string(),
                version: v.data.version(),
                data: masked_json(data_json(&v.data)),
                summary: summary(&v.data),
                entity,
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

    /// The number is noted (its contacts are found through the contact-phone index); the
    /// contacts found are looked up one by one, and noted then.
    fn contacts_with_phone(&self, phone: &E164) -> &[EntityId] {
        self.phones.borrow_mut().insert(phone.clone());
        self.view.contacts_with_phone(phone)
    }

    fn blocked(&self, caller: &E164) -> Option<&str> {
        self.company.set(true);
        self.view.blocked(caller)
    }
}

/// The settings data of `change`, as JSON.
fn data_json(change: &SettingsChange) -> serde_json::Value {
    let value = match change {
        SettingsChange::Company(c) => serde_json::to_value(c),
        SettingsChange::Number(n) => serde_json::to_value(n),
        SettingsChange::User(u) => serde_json::to_value(u),
        SettingsChange::Contact(c) => serde_json::to_value(c),
    };
    // Settings types serialize to JSON objects; nothing to show if one could not.
    value.unwrap_or(serde_json::Value::Null)
}

/// `value` with every string that looks like a phone number masked (settings as stored).
fn masked_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            let digits = s.chars().filter(char::is_ascii_digit).count();
            let phone_like = s
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            Value::String(if digits >= 7 && phone_like {
                mask(&s)
            } else {
                s
            })
        }
        Value::Array(items) => Value::Array(items.into_iter().map(masked_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, masked_json(v)))
                .collect(),
        ),
        other => other,
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
                out.push_str(&format!("    {label} {}\n", t.text()));
            }
            out.push_str(&format!(
                "    finally {}: {}\n",
                d.final_action.kind, d.final_action.message
            ));
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
            Some(replay) if replay.agrees => out.push_str(
                "\nreplay: the current routing code decides the same from these settings\n",
            ),
            Some(replay) => {
                out.push_str("\nreplay: the current routing code decides differently\n");
                let rows = replay
                    .differences
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
                    s.detail(),
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
                out.push_str(&format!(
                    "  CALLS #{}: {} #{} on {} rejected ({}): {}\n",
                    r.at.seq, r.stream, r.stream_seq, r.original_subject, r.code, r.reason
                ));
            }
        }
        out
    }
}
