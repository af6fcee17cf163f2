//! Replay: every recorded decision is decided again with the current routing code from the
//! settings exactly as of its `settings_seq`, and compared with what was recorded.
//!
//! One sequential pass: the recorded calls are sorted by `settings_seq`, SETTINGS is read once
//! in stream order, and before each settings event at sequence `s` every call decided at a
//! sequence below `s` is decided again — so each call sees precisely the events up to its
//! `settings_seq`, and no state is ever rebuilt twice. Only a digest of each recorded decision
//! is held; the few that differ are read again to say how.
//!
//! Returning callers (issue 17): a decision records the CALLS sequence up to which the router
//! had applied "who answered whom" (`calls_seq`); when any recorded decision has one, the
//! `answered` events from 90 days (the longest memory) before the earliest call up to the
//! highest `calls_seq` are read first into an [`AnswerLog`], and each call is decided again
//! with the history as of its own `calls_seq`.

use crate::AuditError;
use crate::read::{self, Decoded, Flow, Parts, Progress, Selection, Start, scan};
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::time::Duration;
use switchboard_bus::{CALLS, SETTINGS};
use switchboard_contracts::reasons::{render, rules_reasons, v1_rule};
use switchboard_contracts::{
    CallDial, CallInbound, CallRoute, Envelope, FinalAction, MAX_RETURNING_CALLER_DAYS, Reason,
    Rule, Target, TenantId,
};
use switchboard_projections::{Projection, Record};
use switchboard_routing::{AnswerLog, CallerHistory, Decision, TenantState};

/// SETTINGS records decoded ahead of the decisions made with them.
const SETTINGS_AHEAD: usize = 8192;

/// The line the router puts first when it decided on a call's last delivery without being
/// sure its settings were fresh; not part of the rules' explanation.
const STALE_PREFIX: &str = "Settings may be stale:";

/// A recorded decision, with its call, held compactly for the replay pass.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The inbound call as it was stored.
    pub call: CallInbound,
    /// The CALLS sequence of the recorded decision.
    pub route_seq: u64,
    /// The SETTINGS sequence it was decided at.
    pub settings_seq: u64,
    /// The CALLS sequence of the returning-caller history it was decided with (0: none).
    pub calls_seq: u64,
    /// The recorded rule.
    pub rule: Rule,
    /// [`digest`] of the recorded decision.
    pub digest: u64,
    /// Whether the recorded decision carries ring timeouts ([`has_ring_timeouts`]): only then
    /// are they part of the comparison.
    pub ring_timeouts: bool,
    /// Whether it was recorded as `switchboard.call.route.v1` ([`CallRoute::is_v1`]): then
    /// its prose is compared with the replayed reasons rendered in English.
    pub v1: bool,
}

/// The explanation a v1 decision gave, without the router's staleness note.
pub fn rules_explanation(explanation: &[String]) -> &[String] {
    match explanation.split_first() {
        Some((first, rest)) if first.starts_with(STALE_PREFIX) => rest,
        _ => explanation,
    }
}

/// Why a decision went the way it did, as compared by replay: v2's reasons, or for a v1
/// decision its English lines.
pub enum Why<'a> {
    /// The reasons (without the staleness note).
    Reasons(&'a [Reason]),
    /// The English lines (without the staleness note).
    Lines(&'a [String]),
}

fn hash_target(target: &Target, ring_timeouts: bool, h: &mut DigestHasher) {
    target.number.hash(h);
    target.user_id.hash(h);
    target.rule.hash(h);
    target.group.hash(h);
    target.screen.hash(h);
    if ring_timeouts {
        target.ring_timeout_secs.hash(h);
    }
}

/// The hasher of [`digest`], which replay runs twice per call (the recorded decision and the
/// replayed one): a digest only ever meets digests of the same run, so it needs no key, and
/// SipHash (std's `DefaultHasher`) was a tenth of replay's instructions. Each word is mixed
/// in by murmur3's 64-bit finalizer, a bijection with full avalanche: two inputs that differ
/// in one word always differ, and any other difference changes the digest but with
/// probability 2^-64. Each `write` is prefixed by its length, so that byte strings padded to
/// a word stay distinct.
#[derive(Debug, Default, Clone, Copy)]
struct DigestHasher(u64);

impl DigestHasher {
    fn word(&mut self, word: u64) {
        let mut x = (self.0 ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        self.0 = x;
    }
}

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.word(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.word(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.word(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.word(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.word(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.word(n as u64);
    }
    fn write_isize(&mut self, n: isize) {
        self.word(n as u64);
    }
}

/// Whether a decision's targets carry ring timeouts. Decisions recorded before ring timeouts
/// existed (issue 15) carry none, and the dialer uses its own default for them: their replay
/// compares everything but the timeouts, which the current code always sets.
pub fn has_ring_timeouts(target: Option<&Target>, fallbacks: &[Target]) -> bool {
    target
        .into_iter()
        .chain(fallbacks)
        .any(|t| t.ring_timeout_secs.is_some())
}

/// A fingerprint of everything the rules decide (its hasher, `DigestHasher`, has no key: it
/// is the same for the same decision in every run of this build); ring timeouts only with
/// `ring_timeouts`.
pub fn digest(
    rule: Rule,
    target: Option<&Target>,
    fallbacks: &[Target],
    final_action: &FinalAction,
    why: Why<'_>,
    ring_timeouts: bool,
) -> u64 {
    let mut h = DigestHasher::default();
    rule.hash(&mut h);
    target.is_some().hash(&mut h);
    for t in target.into_iter().chain(fallbacks) {
        hash_target(t, ring_timeouts, &mut h);
    }
    fallbacks.len().hash(&mut h);
    final_action.kind.hash(&mut h);
    final_action.message.hash(&mut h);
    match why {
        Why::Reasons(reasons) => reasons.hash(&mut h),
        Why::Lines(lines) => lines.hash(&mut h),
    }
    h.finish()
}

/// [`digest`] of a recorded `call.route`, with its ring timeouts if it carries any.
pub fn digest_route(route: &CallRoute) -> u64 {
    digest(
        route.rule,
        route.target.as_ref(),
        &route.fallbacks,
        &route.final_action,
        if route.is_v1() {
            Why::Lines(rules_explanation(&route.explanation))
        } else {
            Why::Reasons(rules_reasons(&route.reasons))
        },
        has_ring_timeouts(route.target.as_ref(), &route.fallbacks),
    )
}

/// [`digest`] of a decision as comparable with a recorded one: with ring timeouts when the
/// recorded one carries them, and as v1 would have recorded it when it is v1.
pub fn digest_decision(decision: &Decision, ring_timeouts: bool, v1: bool) -> u64 {
    let (rule, lines);
    let why = if v1 {
        rule = v1_rule(decision.rule, decision.target.as_ref());
        lines = decision.explanation();
        Why::Lines(&lines)
    } else {
        rule = decision.rule;
        Why::Reasons(&decision.reasons)
    };
    digest(
        rule,
        decision.target.as_ref(),
        &decision.fallbacks,
        &decision.final_action,
        why,
        ring_timeouts,
    )
}

/// One field in which a replayed decision differs from the recorded one (numbers masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    /// `rule`, `target`, `fallbacks`, `final_action` or `explanation[i]`.
    pub field: String,
    /// What was recorded.
    pub recorded: String,
    /// What the current code decides.
    pub replayed: String,
}

fn target_text(target: Option<&Target>) -> String {
    target_text_with(target, false)
}

/// A target for people; with its ring timeout when `ring` (shown only when that is what
/// differs).
fn target_text_with(target: Option<&Target>, ring: bool) -> String {
    match target {
        None => "none".into(),
        Some(t) => {
            let ring = t
                .ring_timeout_secs
                .filter(|_| ring)
                .map_or(String::new(), |s| format!(", rings {s} s"));
            let mut extra = ring;
            if !t.group.is_empty() {
                let members: Vec<String> = t.group.iter().map(|m| m.user_id.to_string()).collect();
                extra.push_str(&format!(", with users {} at once", members.join(", ")));
            }
            if t.screen {
                extra.push_str(", screened");
            }
            match &t.user_id {
                Some(user) => format!("{} ({}, user {user}{extra})", t.number, t.rule.as_str()),
                None => format!("{} ({}{extra})", t.number, t.rule.as_str()),
            }
        }
    }
}

/// `replayed` as compared with a recorded decision: without ring timeouts when the recorded
/// one has none ([`has_ring_timeouts`]).
fn comparable(targets: &[Target], ring_timeouts: bool) -> Vec<Target> {
    targets
        .iter()
        .map(|t| Target {
            ring_timeout_secs: t.ring_timeout_secs.filter(|_| ring_timeouts),
            ..t.clone()
        })
        .collect()
}

fn targets_text(targets: &[Target], ring: bool) -> String {
    if targets.is_empty() {
        return "none".into();
    }
    targets
        .iter()
        .map(|t| target_text_with(Some(t), ring))
        .collect::<Vec<_>>()
        .join(", ")
}

fn action_text(action: &FinalAction) -> String {
    format!("{}: {}", action.kind.as_str(), action.message)
}

/// How `replayed` differs from `recorded`, field by field (empty when they agree).
pub fn compare(recorded: &CallRoute, replayed: &Decision) -> Vec<FieldDiff> {
    let mut diffs = Vec::new();
    let mut push = |field: &str, recorded: String, replayed: String| {
        diffs.push(FieldDiff {
            field: field.into(),
            recorded,
            replayed,
        })
    };
    let v1 = recorded.is_v1();
    let replayed_rule = if v1 {
        v1_rule(replayed.rule, replayed.target.as_ref())
    } else {
        replayed.rule
    };
    if recorded.rule != replayed_rule {
        push(
            "rule",
            recorded.rule.as_str().into(),
            replayed_rule.as_str().into(),
        );
    }
    let ring_timeouts = has_ring_timeouts(recorded.target.as_ref(), &recorded.fallbacks);
    let target = comparable(replayed.target.as_slice(), ring_timeouts);
    if recorded.target.as_ref() != target.first() {
        let (old, new) = (
            target_text(recorded.target.as_ref()),
            target_text(target.first()),
        );
        let (old, new) = if old == new {
            (
                target_text_with(recorded.target.as_ref(), true),
                target_text_with(target.first(), true),
            )
        } else {
            (old, new)
        };
        push("target", old, new);
    }
    let fallbacks = comparable(&replayed.fallbacks, ring_timeouts);
    if recorded.fallbacks != fallbacks {
        let (old, new) = (
            targets_text(&recorded.fallbacks, false),
            targets_text(&fallbacks, false),
        );
        let (old, new) = if old == new {
            (
                targets_text(&recorded.fallbacks, true),
                targets_text(&fallbacks, true),
            )
        } else {
            (old, new)
        };
        push("fallbacks", old, new);
    }
    if recorded.final_action != replayed.final_action {
        push(
            "final_action",
            action_text(&recorded.final_action),
            action_text(&replayed.final_action),
        );
    }
    // The first step that differs tells the story; the rest usually follows from it.
    if v1 {
        let (old, new) = (
            rules_explanation(&recorded.explanation),
            &replayed.explanation(),
        );
        if let Some(at) = first_difference(old, new) {
            let line = |lines: &[String]| lines.get(at).cloned().unwrap_or_else(|| "(none)".into());
            push(&format!("explanation[{}]", at + 1), line(old), line(new));
        }
    } else {
        let (old, new) = (rules_reasons(&recorded.reasons), &replayed.reasons);
        if let Some(at) = first_difference(old, new) {
            // Rendered whole, so that a `target` reason names its leg.
            let recorded_lines = render(
                old,
                recorded.target.as_ref(),
                &recorded.fallbacks,
                &recorded.final_action,
            );
            let line = |lines: &[String], n: usize| {
                lines
                    .get(at)
                    .filter(|_| at < n)
                    .cloned()
                    .unwrap_or_else(|| "(none)".into())
            };
            push(
                &format!("reasons[{}]", at + 1),
                line(&recorded_lines, old.len()),
                line(&replayed.explanation(), new.len()),
            );
        }
    }
    diffs
}

/// The index of the first element that differs, if the slices differ.
fn first_difference<T: PartialEq>(old: &[T], new: &[T]) -> Option<usize> {
    (old != new).then(|| {
        old.iter()
            .zip(new)
            .position(|(a, b)| a != b)
            .unwrap_or(old.len().min(new.len()))
    })
}

/// A recorded decision the current code does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The call.
    pub call_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The CALLS sequence of the recorded decision.
    pub route_seq: u64,
    /// The SETTINGS sequence it was decided (and replayed) at.
    pub settings_seq: u64,
    /// How it differs.
    pub fields: Vec<FieldDiff>,
}

/// A recorded decision that could not be replayed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreplayable {
    /// The call.
    pub call_id: String,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The CALLS sequence of the recorded decision.
    pub route_seq: u64,
    /// Why.
    pub reason: String,
}

/// What a replay found. Deterministic: the same streams give the same report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Recorded decisions decided again.
    pub calls_replayed: u64,
    /// SETTINGS events read to rebuild the settings.
    pub settings_events: u64,
    /// The highest SETTINGS sequence a replayed decision was made at.
    pub last_settings_seq: u64,
    /// Decisions that differ, by CALLS sequence.
    pub differences: Vec<Difference>,
    /// Decisions that could not be replayed, by CALLS sequence.
    pub unreplayable: Vec<Unreplayable>,
    /// What may make the replay less than exact.
    pub warnings: Vec<String>,
}

impl ReplayReport {
    /// Whether every replayed decision matched and none was left out.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.unreplayable.is_empty()
    }
}

/// A replayed decision whose digest differs from the recorded one.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The recorded call.
    pub recorded: RecordedCall,
    /// What the code decides now.
    pub replayed: Decision,
}

/// What replay decides with: the call, the tenant's settings as of the decision, and the
/// tenant's returning-caller history as of it.
pub trait DecideFn: FnMut(&CallInbound, &TenantState, &dyn CallerHistory) -> Decision {}
impl<F: FnMut(&CallInbound, &TenantState, &dyn CallerHistory) -> Decision> DecideFn for F {}

/// `call` decided again with `decide`, at the settings in `projection` (a tenant it has never
/// seen: empty settings, kept in `empty`) and the answered history as of its `calls_seq`.
fn redecide<F: DecideFn>(
    projection: &Projection,
    empty: &mut HashMap<TenantId, TenantState>,
    answers: &AnswerLog,
    decide: &mut F,
    call: &RecordedCall,
) -> Decision {
    let tenant = &call.call.tenant_id;
    let state = match projection.tenant(tenant) {
        Some(state) => state,
        None => empty
            .entry(tenant.clone())
            .or_insert_with(|| TenantState::new(tenant.clone())),
    };
    let history = answers.as_of(tenant, call.calls_seq);
    decide(&call.call, state, &history)
}

/// The pure replay pass: give it the answered history with [`answers`](Replayer::answers)
/// first, then SETTINGS records in stream order with [`settings`](Replayer::settings), then
/// [`finish`](Replayer::finish).
pub struct Replayer<F> {
    projection: Projection,
    answers: AnswerLog,
    empty: HashMap<TenantId, TenantState>,
    /// Sorted by `(settings_seq, route_seq)`; `next` is the first not yet decided.
    calls: Vec<RecordedCall>,
    next: usize,
    decide: F,
    mismatches: Vec<(usize, Decision)>,
    settings_events: u64,
}

impl<F: DecideFn> Replayer<F> {
    /// A replay of `calls` deciding with `decide`.
    pub fn new(mut calls: Vec<RecordedCall>, decide: F) -> Self {
        calls.sort_unstable_by_key(|c| (c.settings_seq, c.route_seq));
        Replayer {
            projection: Projection::new(),
            answers: AnswerLog::new(),
            empty: HashMap::new(),
            calls,
            next: 0,
            decide,
            mismatches: Vec::new(),
            settings_events: 0,
        }
    }

    /// The highest SETTINGS sequence any call was decided at: reading SETTINGS can stop there.
    pub fn last_settings_seq(&self) -> u64 {
        self.calls.last().map_or(0, |c| c.settings_seq)
    }

    /// The answered history the calls are decided with (read before any SETTINGS record).
    pub fn answers(&mut self) -> &mut AnswerLog {
        &mut self.answers
    }

    /// The CALLS span of answers the calls need: from 90 days before the earliest call to the
    /// highest `calls_seq` recorded; `None` when no decision used the history.
    pub fn answers_needed(&self) -> Option<(time::OffsetDateTime, u64)> {
        let upto = self
            .calls
            .iter()
            .map(|c| c.calls_seq)
            .max()
            .filter(|&s| s > 0)?;
        let earliest = self.calls.iter().map(|c| c.call.received_at).min()?;
        Some((
            earliest - time::Duration::days(i64::from(MAX_RETURNING_CALLER_DAYS)),
            upto,
        ))
    }

    /// How many calls have been decided again so far.
    pub fn decided(&self) -> usize {
        self.next
    }

    /// Decides again every call made before `record` (at a lower sequence), then applies it.
    pub fn settings(&mut self, record: &Record) {
        self.decide_before(record.seq);
        self.projection.apply(record);
        self.settings_events += 1;
    }

    fn decide_before(&mut self, seq: u64) {
        while let Some(call) = self.calls.get(self.next) {
            if call.settings_seq >= seq {
                break;
            }
            let decision = redecide(
                &self.projection,
                &mut self.empty,
                &self.answers,
                &mut self.decide,
                call,
            );
            if digest_decision(&decision, call.ring_timeouts, call.v1) != call.digest {
                self.mismatches.push((self.next, decision));
            }
            self.next += 1;
        }
    }

    /// Decides the calls left and returns how many were decided, how many SETTINGS events
    /// were applied, and the mismatches in CALLS order.
    pub fn finish(mut self) -> (u64, u64, Vec<Mismatch>) {
        self.decide_before(u64::MAX);
        let mut calls: Vec<Option<RecordedCall>> = self.calls.into_iter().map(Some).collect();
        let mut mismatches: Vec<Mismatch> = self
            .mismatches
            .into_iter()
            .filter_map(|(i, replayed)| {
                calls
                    .get_mut(i)
                    .and_then(Option::take)
                    .map(|recorded| Mismatch { recorded, replayed })
            })
            .collect();
        mismatches.sort_by_key(|m| m.recorded.route_seq);
        (calls.len() as u64, self.settings_events, mismatches)
    }
}

/// The recorded calls of a selection, read from CALLS.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Decisions with their inbound calls.
    pub calls: Vec<RecordedCall>,
    /// Decisions whose inbound call was not found (or not readable).
    pub unreplayable: Vec<Unreplayable>,
}

/// The hasher of [`Inbounds`]: the hash of a call's tenant and id, computed where the call
/// was decoded (on its reader's task), as is.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (keys are `u64`); this keeps any other use correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Inbound calls no decision has taken yet, by the hash of their tenant and id (so that the
/// strings are neither hashed again nor copied into a key).
///
/// Public only for the audit tests (which force hashes to collide).
#[doc(hidden)]
#[derive(Default)]
pub struct Inbounds(HashMap<u64, Bucket, BuildHasherDefault<Prehashed>>);

/// The calls of one hash: nearly always one.
enum Bucket {
    One(CallInbound),
    More(Vec<CallInbound>),
}

fn same_call(call: &CallInbound, tenant_id: &TenantId, call_id: &str) -> bool {
    call.call_id == call_id && call.tenant_id == *tenant_id
}

impl Inbounds {
    /// Adds `call`, unless a call with its tenant and id is already waiting (the first one
    /// stays).
    pub fn insert(&mut self, hash: u64, call: CallInbound) {
        match self.0.entry(hash) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(Bucket::One(call));
            }
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let bucket = entry.get_mut();
                let calls: &[CallInbound] = match bucket {
                    Bucket::One(one) => std::slice::from_ref(one),
                    Bucket::More(more) => more,
                };
                if calls
                    .iter()
                    .any(|c| same_call(c, &call.tenant_id, &call.call_id))
                {
                    return;
                }
                match bucket {
                    Bucket::More(more) => more.push(call),
                    Bucket::One(_) => {
                        if let Bucket::One(one) =
                            std::mem::replace(bucket, Bucket::More(Vec::new()))
                        {
                            *bucket = Bucket::More(vec![one, call]);
                        }
                    }
                }
            }
        }
    }

    /// Takes the waiting call with this tenant and id.
    pub fn take(&mut self, hash: u64, tenant_id: &TenantId, call_id: &str) -> Option<CallInbound> {
        if self.0.is_empty() {
            return None;
        }
        let std::collections::hash_map::Entry::Occupied(mut entry) = self.0.entry(hash) else {
            return None;
        };
        match entry.get_mut() {
            Bucket::One(one) if same_call(one, tenant_id, call_id) => match entry.remove() {
                Bucket::One(one) => Some(one),
                Bucket::More(_) => None,
            },
            Bucket::One(_) => None,
            Bucket::More(more) => {
                let at = more.iter().position(|c| same_call(c, tenant_id, call_id))?;
                let call = more.swap_remove(at);
                if more.is_empty() {
                    entry.remove();
                }
                Some(call)
            }
        }
    }

    /// Adds every call of `later` (read after these), as [`insert`](Self::insert) does.
    pub fn extend(&mut self, later: Inbounds) {
        for (hash, bucket) in later.0 {
            match bucket {
                Bucket::One(call) => self.insert(hash, call),
                Bucket::More(calls) => {
                    for call in calls {
                        self.insert(hash, call);
                    }
                }
            }
        }
    }
}

/// What the reader of a part of CALLS makes of it, for [`Matcher`] to put together in stream
/// order.
///
/// Each part matches its decisions with the calls read before them in the same part; the
/// matcher then corrects for what the parts before it left, exactly as one reader of the
/// whole would have matched them (see [`Matcher::apply`]).
enum CallEvent {
    /// A selected decision and the call it took in its part.
    Matched(u64, RecordedCall),
    /// A selected decision whose call its part did not have.
    Unmatched(u64, TenantId, String, RouteSummary),
    /// A selected decision that cannot be read.
    Unreadable(Unreplayable),
    /// The part's calls no decision of the part took, at its end.
    Left(Inbounds),
}

/// What replay keeps of a recorded decision (see [`RecordedCall`]).
struct RouteSummary {
    route_seq: u64,
    settings_seq: u64,
    calls_seq: u64,
    rule: Rule,
    digest: u64,
    ring_timeouts: bool,
    v1: bool,
}

impl RouteSummary {
    fn with(self, call: CallInbound) -> RecordedCall {
        RecordedCall {
            call,
            route_seq: self.route_seq,
            settings_seq: self.settings_seq,
            calls_seq: self.calls_seq,
            rule: self.rule,
            digest: self.digest,
            ring_timeouts: self.ring_timeouts,
            v1: self.v1,
        }
    }
}

/// Decodes one part of CALLS for [`recorded_calls`] (on its reader's task) and matches its
/// decisions with its calls.
struct CallPart {
    selection: Selection,
    hasher: RandomState,
    inbound: Inbounds,
}

impl read::PartDecoder<CallEvent> for CallPart {
    fn decode(&mut self, m: read::Stored) -> Result<Decoded<CallEvent>, AuditError> {
        if self.selection.is_past(m.time) {
            return Ok(Decoded::Stop);
        }
        Ok(match m.token(1) {
            // What the router could not decode it rejected: there is no decision for it.
            Some("inbound") => {
                if let Some(call) = read::decode::<CallInbound>(&m.payload, &m.subject) {
                    let hash = self.hasher.hash_one((&call.tenant_id, &call.call_id));
                    self.inbound.insert(hash, call);
                }
                Decoded::Skip
            }
            Some("route") if self.selection.contains(m.seq, m.time) => {
                match read::decode_recorded_route(&m.payload, &m.subject) {
                    Some(route) => {
                        let summary = RouteSummary {
                            route_seq: m.seq,
                            settings_seq: route.settings_seq,
                            calls_seq: route.calls_seq,
                            rule: route.rule,
                            digest: digest_route(&route),
                            ring_timeouts: has_ring_timeouts(
                                route.target.as_ref(),
                                &route.fallbacks,
                            ),
                            v1: route.is_v1(),
                        };
                        let hash = self.hasher.hash_one((&route.tenant_id, &route.call_id));
                        // Taken, not copied: a million calls are held once.
                        Decoded::Item(
                            match self.inbound.take(hash, &route.tenant_id, &route.call_id) {
                                Some(call) => CallEvent::Matched(hash, summary.with(call)),
                                None => CallEvent::Unmatched(
                                    hash,
                                    route.tenant_id,
                                    route.call_id,
                                    summary,
                                ),
                            },
                        )
                    }
                    None => {
                        // Decoded again only to say why.
                        let e = Envelope::<CallRoute>::decode(&m.payload, &m.subject)
                            .err()
                            .map_or_else(|| "unknown".to_string(), |e| e.to_string());
                        Decoded::Item(CallEvent::Unreadable(Unreplayable {
                            call_id: String::new(),
                            tenant_id: m
                                .token(2)
                                .and_then(|t| TenantId::new(t).ok())
                                .unwrap_or_else(TenantId::unknown),
                            route_seq: m.seq,
                            reason: format!("the recorded decision is not readable: {e}"),
                        }))
                    }
                }
            }
            _ => Decoded::Skip,
        })
    }

    fn end(self) -> Option<CallEvent> {
        (!self.inbound.0.is_empty()).then_some(CallEvent::Left(self.inbound))
    }
}

/// Matches decisions with their calls in stream order, as one reader of CALLS would: a
/// decision takes the first inbound event of its call stored before it and not taken by an
/// earlier decision.
#[derive(Default)]
struct Matcher {
    /// What the parts before the current one left.
    inbound: Inbounds,
}

impl Matcher {
    /// The recorded call `event` completes, if any; a decision without its call goes to
    /// `unreplayable`.
    ///
    /// A part matched its decisions as if nothing came before it; a call the earlier parts
    /// left under the same tenant and id changes that: one reader would have kept that
    /// (earlier) call and passed over the part's own (an inbound event of a call already
    /// waiting is), and given it to the part's first decision of the call.
    fn apply(
        &mut self,
        event: CallEvent,
        unreplayable: &mut Vec<Unreplayable>,
    ) -> Option<RecordedCall> {
        match event {
            CallEvent::Matched(hash, mut recorded) => {
                if let Some(earlier) =
                    self.inbound
                        .take(hash, &recorded.call.tenant_id, &recorded.call.call_id)
                {
                    recorded.call = earlier;
                }
                Some(recorded)
            }
            CallEvent::Unmatched(hash, tenant_id, call_id, route) => {
                match self.inbound.take(hash, &tenant_id, &call_id) {
                    Some(call) => Some(route.with(call)),
                    None => {
                        unreplayable.push(Unreplayable {
                            call_id,
                            tenant_id,
                            route_seq: route.route_seq,
                            reason: "no undecided call.inbound event of this call was found \
                                     before it (missing, or a second decision for the call)"
                                .into(),
                        });
                        None
                    }
                }
            }
            CallEvent::Unreadable(u) => {
                unreplayable.push(u);
                None
            }
            CallEvent::Left(left) => {
                self.inbound.extend(left);
                None
            }
        }
    }
}

/// The selected part of CALLS, read in parts at once and decoded on the readers' tasks
/// ([`read::PartsReader`]).
async fn read_calls(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    start: Start,
) -> Result<read::PartsReader<CallEvent>, AuditError> {
    let filters = selection.call_subjects(&["inbound", "route"]);
    let hasher = RandomState::new();
    read::PartsReader::open(js, CALLS, &filters, start, Parts::parallel(), || CallPart {
        selection: selection.clone(),
        hasher: hasher.clone(),
        inbound: Inbounds::default(),
    })
    .await
}

/// Reports a [`read::PartsReader`]'s progress every 1024 messages.
#[derive(Default)]
struct Reported(u64);

impl Reported {
    fn update<T: Send + 'static>(
        &mut self,
        reader: &read::PartsReader<T>,
        progress: &dyn Progress,
    ) {
        let read = reader.read();
        if read >= self.0 + 1024 {
            progress.advance(read - self.0);
            self.0 = read;
        }
    }

    fn finish<T: Send + 'static>(
        &mut self,
        reader: &read::PartsReader<T>,
        progress: &dyn Progress,
    ) {
        progress.advance(reader.read().saturating_sub(self.0));
        progress.finish();
    }
}

/// Reads the selected decisions and their inbound calls from CALLS.
///
/// Parts of CALLS are read and decoded at once ([`read::PartsReader`]); the decisions are
/// matched with their calls in stream order ([`Matcher`]).
pub async fn recorded_calls(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    lookback: Duration,
    progress: &dyn Progress,
) -> Result<Recorded, AuditError> {
    let mut recorded = Recorded::default();
    let Some(start) = read::calls_start(js, selection, lookback).await? else {
        return Ok(recorded);
    };
    let mut calls = read_calls(js, selection, start).await?;
    progress.stage("reading CALLS", Some(calls.pending()));
    let mut matcher = Matcher::default();
    let mut reported = Reported::default();
    while let Some(event) = calls.next().await? {
        if let Some(call) = matcher.apply(event, &mut recorded.unreplayable) {
            recorded.calls.push(call);
        }
        reported.update(&calls, progress);
    }
    reported.finish(&calls, progress);
    Ok(recorded)
}

/// Recorded calls held back before they are decided, so that calls stored slightly out of
/// `settings_seq` order are still decided in one pass ([`ReplayOptions::window`]'s default).
pub const DEFAULT_WINDOW: usize = 65_536;

/// How [`replay_with_options`] reads and decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// How far before the first selected decision inbound calls are looked for
    /// ([`read::DEFAULT_LOOKBACK`]).
    pub lookback: Duration,
    /// Recorded calls held back and put in `(settings_seq, route_seq)` order before they are
    /// decided ([`DEFAULT_WINDOW`]). A call stored more than this many calls after calls
    /// decided at later settings is decided in a second pass (the report is the same, the
    /// replay slower); a smaller window holds less in memory. 0 decides each call as it is
    /// read.
    pub window: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            lookback: read::DEFAULT_LOOKBACK,
            window: DEFAULT_WINDOW,
        }
    }
}

/// Replay in one pass while CALLS is read: each recorded call (after a window that puts
/// them in `(settings_seq, route_seq)` order) is decided as soon as SETTINGS has been applied
/// up to its `settings_seq`, SETTINGS being read (and decoded, on its reader's task) only as
/// far as the calls need. Deciding overlaps reading, and only the calls that differ are kept.
///
/// A call this pass cannot decide exactly is left for [`Replayer`]: one whose settings are
/// already behind the projection (stored after calls decided at later settings, beyond the
/// window), or one decided with a returning-caller history (`calls_seq`), which needs the
/// answers read first.
struct Streamed<F> {
    projection: Projection,
    /// Always empty: the calls decided here had no history (`calls_seq` 0).
    answers: AnswerLog,
    empty: HashMap<TenantId, TenantState>,
    decide: F,
    /// Sorted by `(settings_seq, route_seq)`; at most `window_size` calls.
    window: VecDeque<RecordedCall>,
    window_size: usize,
    settings: Option<read::PartsReader<Record>>,
    /// Whether `settings` has read to its end.
    settings_done: bool,
    /// The last sequence of SETTINGS when `settings` was opened: every record up to it is
    /// read once `settings` is done.
    settings_covered: u64,
    /// The next SETTINGS record, read and not yet applied.
    next_record: Option<Record>,
    /// The sequence of the last SETTINGS record applied (0: none).
    applied: u64,
    settings_events: u64,
    decided: u64,
    /// The highest `settings_seq` of any recorded call.
    last_settings_seq: u64,
    mismatches: Vec<Mismatch>,
    late: Vec<RecordedCall>,
}

impl<F: DecideFn> Streamed<F> {
    fn new(decide: F, window_size: usize) -> Self {
        Streamed {
            projection: Projection::new(),
            answers: AnswerLog::new(),
            empty: HashMap::new(),
            decide,
            window: VecDeque::new(),
            window_size,
            settings: None,
            settings_done: false,
            settings_covered: 0,
            next_record: None,
            applied: 0,
            settings_events: 0,
            decided: 0,
            last_settings_seq: 0,
            mismatches: Vec::new(),
            late: Vec::new(),
        }
    }

    /// Takes a recorded call, deciding the oldest held back if the window is full.
    async fn push(
        &mut self,
        call: RecordedCall,
        js: &async_nats::jetstream::Context,
        selection: &Selection,
    ) -> Result<(), AuditError> {
        self.last_settings_seq = self.last_settings_seq.max(call.settings_seq);
        let key = |c: &RecordedCall| (c.settings_seq, c.route_seq);
        let at = match self.window.back() {
            Some(last) if key(last) > key(&call) => {
                self.window.partition_point(|c| key(c) < key(&call))
            }
            _ => self.window.len(),
        };
        self.window.insert(at, call);
        if self.window.len() > self.window_size
            && let Some(oldest) = self.window.pop_front()
        {
            self.decide_one(oldest, js, selection).await?;
        }
        Ok(())
    }

    /// Decides every call held back.
    async fn drain(
        &mut self,
        js: &async_nats::jetstream::Context,
        selection: &Selection,
        progress: &dyn Progress,
    ) -> Result<(), AuditError> {
        let mut done = 0u64;
        while let Some(call) = self.window.pop_front() {
            self.decide_one(call, js, selection).await?;
            done += 1;
            if done == 1024 {
                progress.advance(done);
                done = 0;
            }
        }
        progress.advance(done);
        Ok(())
    }

    async fn decide_one(
        &mut self,
        call: RecordedCall,
        js: &async_nats::jetstream::Context,
        selection: &Selection,
    ) -> Result<(), AuditError> {
        if call.calls_seq > 0 || self.applied > call.settings_seq {
            self.late.push(call);
            return Ok(());
        }
        self.apply_settings_up_to(call.settings_seq, js, selection)
            .await?;
        if self.settings_done && call.settings_seq > self.settings_covered {
            // Decided at settings stored after SETTINGS was read to its end (while the router
            // works on): left for the pass that reads SETTINGS once CALLS is read.
            self.late.push(call);
            return Ok(());
        }
        let decision = redecide(
            &self.projection,
            &mut self.empty,
            &self.answers,
            &mut self.decide,
            &call,
        );
        self.decided += 1;
        if digest_decision(&decision, call.ring_timeouts, call.v1) != call.digest {
            self.mismatches.push(Mismatch {
                recorded: call,
                replayed: decision,
            });
        }
        Ok(())
    }

    /// Applies the SETTINGS records up to sequence `seq`, reading on as needed.
    async fn apply_settings_up_to(
        &mut self,
        seq: u64,
        js: &async_nats::jetstream::Context,
        selection: &Selection,
    ) -> Result<(), AuditError> {
        loop {
            if self.next_record.is_none() {
                if self.settings_done || seq == 0 {
                    return Ok(());
                }
                let reader = match &mut self.settings {
                    Some(reader) => reader,
                    None => {
                        let reader = read_settings(js, selection).await?;
                        self.settings_covered = reader.last_sequence();
                        self.settings.insert(reader)
                    }
                };
                match reader.next().await? {
                    Some(record) => self.next_record = Some(record),
                    None => {
                        self.settings_done = true;
                        return Ok(());
                    }
                }
            }
            match self.next_record.take() {
                Some(record) if record.seq <= seq => {
                    self.projection.apply(&record);
                    self.applied = record.seq;
                    self.settings_events += 1;
                }
                other => {
                    self.next_record = other;
                    return Ok(());
                }
            }
        }
    }
}

/// SETTINGS (the selection's tenants) from the start, each record decoded on the reader's
/// task, a bounded number ahead of the decisions made with them.
async fn read_settings(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
) -> Result<read::PartsReader<Record>, AuditError> {
    let parts = Parts {
        readers: 1,
        ahead: Some(SETTINGS_AHEAD),
        filter_here: true,
        span: read::PART_SPAN,
    };
    read::PartsReader::open(
        js,
        SETTINGS,
        &selection.settings_subjects(),
        Start::First,
        parts,
        || {
            read::EachMessage(|m: read::Stored| {
                Ok(Decoded::Item(Record::decode(m.seq, &m.subject, &m.payload)))
            })
        },
    )
    .await
}

/// Replays the selected decisions with the current routing code.
pub async fn replay(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    progress: &dyn Progress,
) -> Result<ReplayReport, AuditError> {
    replay_with(
        js,
        selection,
        read::DEFAULT_LOOKBACK,
        progress,
        |call: &CallInbound, state: &TenantState, history: &dyn CallerHistory| {
            switchboard_routing::decide_with(call, state, history)
        },
    )
    .await
}

/// [`replay`] with another decision function (to audit a proposed change of the rules, or
/// to prove in tests that a changed rule is caught) and inbound lookback.
pub async fn replay_with(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    lookback: Duration,
    progress: &dyn Progress,
    decide: impl DecideFn,
) -> Result<ReplayReport, AuditError> {
    let options = ReplayOptions {
        lookback,
        ..ReplayOptions::default()
    };
    replay_with_options(js, selection, &options, progress, decide).await
}

/// [`replay_with`] with every option ([`ReplayOptions`]).
pub async fn replay_with_options(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    options: &ReplayOptions,
    progress: &dyn Progress,
    decide: impl DecideFn,
) -> Result<ReplayReport, AuditError> {
    selection.validate()?;
    let mut report = ReplayReport::default();
    let mut streamed = Streamed::new(decide, options.window);
    if let Some(start) = read::calls_start(js, selection, options.lookback).await? {
        let mut calls = read_calls(js, selection, start).await?;
        progress.stage("reading CALLS", Some(calls.pending()));
        let mut matcher = Matcher::default();
        let mut reported = Reported::default();
        while let Some(event) = calls.next().await? {
            if let Some(call) = matcher.apply(event, &mut report.unreplayable) {
                streamed.push(call, js, selection).await?;
            }
            reported.update(&calls, progress);
        }
        reported.finish(&calls, progress);
    }
    progress.stage("replaying decisions", Some(streamed.window.len() as u64));
    streamed.drain(js, selection, progress).await?;
    progress.finish();
    let Streamed {
        decide,
        decided,
        settings_events,
        last_settings_seq,
        mut mismatches,
        late,
        ..
    } = streamed;
    report.calls_replayed = decided;
    report.settings_events = settings_events;
    report.last_settings_seq = last_settings_seq;
    if !late.is_empty() {
        // Decided in a second pass, in order, with the answers they need read first.
        let (decided, settings_events, late_mismatches) =
            replay_in_order(js, selection, late, decide, progress).await?;
        report.calls_replayed += decided;
        // Both passes read SETTINGS from the start: the longer one read what the other did.
        report.settings_events = report.settings_events.max(settings_events);
        mismatches.extend(late_mismatches);
    }

    let settings_stream = js
        .get_stream(SETTINGS)
        .await
        .map_err(AuditError::nats("open the SETTINGS stream"))?;
    let first = settings_stream.cached_info().state.first_sequence;
    if first > 1 && last_settings_seq > 0 {
        report.warnings.push(format!(
            "SETTINGS starts at sequence {first}: older events have expired, so settings were \
             rebuilt without them"
        ));
    }
    mismatches.sort_by_key(|m| m.recorded.route_seq);
    report.differences = explain_mismatches(js, mismatches).await?;
    report.unreplayable.sort_by_key(|u| u.route_seq);
    Ok(report)
}

/// Decides `calls` again in `(settings_seq, route_seq)` order with a [`Replayer`]: the answers
/// they need, then SETTINGS from the start up to the last they need. Returns how many were
/// decided, how many SETTINGS events were applied, and the mismatches.
async fn replay_in_order<F: DecideFn>(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    calls: Vec<RecordedCall>,
    decide: F,
    progress: &dyn Progress,
) -> Result<(u64, u64, Vec<Mismatch>), AuditError> {
    let mut replayer = Replayer::new(calls, decide);
    if let Some((since, upto)) = replayer.answers_needed() {
        read_answers(js, selection, since, upto, replayer.answers(), progress).await?;
    }
    let last = replayer.last_settings_seq();
    if last > 0 {
        let total = replayer.calls.len() as u64;
        progress.stage("replaying decisions in order", Some(total));
        let mut reported = 0usize;
        // Decoded on a reader's task while the decisions are made on this one.
        let settings = Parts {
            readers: 1,
            ahead: Some(SETTINGS_AHEAD),
            filter_here: true,
            span: read::PART_SPAN,
        };
        read::scan_parts(
            js,
            SETTINGS,
            &selection.settings_subjects(),
            Start::First,
            settings,
            &crate::read::NoProgress,
            "reading SETTINGS",
            move |m| {
                Ok(if m.seq > last {
                    Decoded::Stop
                } else {
                    Decoded::Item(Record::decode(m.seq, &m.subject, &m.payload))
                })
            },
            |record| {
                replayer.settings(&record);
                let decided = replayer.decided();
                if decided - reported >= 1024 {
                    progress.advance((decided - reported) as u64);
                    reported = decided;
                }
                Ok(())
            },
        )
        .await?;
        progress.advance((replayer.calls.len() - reported) as u64);
        progress.finish();
    }
    Ok(replayer.finish())
}

/// Reads the `answered` events of CALLS from `since` up to sequence `upto` into `log` (only
/// the selection's tenants).
pub async fn read_answers(
    js: &async_nats::jetstream::Context,
    selection: &Selection,
    since: time::OffsetDateTime,
    upto: u64,
    log: &mut AnswerLog,
    progress: &dyn Progress,
) -> Result<(), AuditError> {
    let filters = selection.call_subjects(&["dial"]);
    let start = Start::Time(since);
    scan(
        js,
        CALLS,
        &filters,
        start,
        progress,
        "reading answers",
        |m| {
            if m.seq > upto {
                return Ok(Flow::Stop);
            }
            // Most dial events are not answers: skip them without decoding.
            if memchr_answered(&m.payload)
                && let Some(dial) = read::decode::<CallDial>(&m.payload, &m.subject)
            {
                log.apply(m.seq, &dial);
            }
            Ok(Flow::Continue)
        },
    )
    .await
}

/// Whether the payload may be an `answered` event.
fn memchr_answered(payload: &[u8]) -> bool {
    payload.windows(10).any(|w| w == b"\"answered\"")
}

/// Reads the recorded decision of each mismatch again and says how it differs.
async fn explain_mismatches(
    js: &async_nats::jetstream::Context,
    mismatches: Vec<Mismatch>,
) -> Result<Vec<Difference>, AuditError> {
    let calls = js
        .get_stream(CALLS)
        .await
        .map_err(AuditError::nats("open the CALLS stream"))?;
    let calls = &calls;
    let read = futures::stream::iter(mismatches)
        .map(|m| async move {
            let seq = m.recorded.route_seq;
            let stored = calls
                .get_raw_message(seq)
                .await
                .map_err(AuditError::nats(format!("read CALLS #{seq}")))?;
            let route = Envelope::<CallRoute>::decode(&stored.payload, &stored.subject)
                .map_err(|e| AuditError::BadInput(format!("CALLS #{seq} is not readable: {e}")))?
                .data;
            Ok::<_, AuditError>(Difference {
                call_id: m.recorded.call.call_id.clone(),
                tenant_id: m.recorded.call.tenant_id.clone(),
                route_seq: seq,
                settings_seq: m.recorded.settings_seq,
                fields: compare(&route, &m.replayed),
            })
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await;
    let mut differences = Vec::with_capacity(read.len());
    for difference in read {
        let difference = difference?;
        // Only a digest was compared during the pass; keep what really differs.
        if !difference.fields.is_empty() {
            differences.push(difference);
        }
    }
    Ok(differences)
}

impl ReplayReport {
    /// The report as text for people: a summary line, then each difference.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "replay: {} decision(s) decided again from {} SETTINGS event(s) (up to SETTINGS \
             #{}): {} difference(s), {} not replayable\n",
            self.calls_replayed,
            self.settings_events,
            self.last_settings_seq,
            self.differences.len(),
            self.unreplayable.len()
        );
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        for d in &self.differences {
            out.push_str(&format!(
                "\ncall {} (tenant {}), decision CALLS #{}, settings SETTINGS #{}\n",
                d.call_id, d.tenant_id, d.route_seq, d.settings_seq
            ));
            let rows = d
                .fields
                .iter()
                .map(|f| vec![f.field.clone(), f.recorded.clone(), f.replayed.clone()]);
            out.push_str(&crate::table::render(&["field", "recorded", "now"], rows));
        }
        if !self.unreplayable.is_empty() {
            out.push_str("\nnot replayable\n");
            let rows = self.unreplayable.iter().map(|u| {
                vec![
                    u.route_seq.to_string(),
                    u.tenant_id.to_string(),
                    u.call_id.clone(),
                    u.reason.clone(),
                ]
            });
            out.push_str(&crate::table::render(
                &["CALLS #", "tenant", "call", "reason"],
                rows,
            ));
        }
        out
    }
}
