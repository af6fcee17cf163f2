//! The `data` of every event in contract v1, with its type, subject, id and validation.
//! Field names are exactly those of `proto/switchboard/v1/*.proto`; the JSON is its proto3
//! JSON mapping, so absent booleans and lists read as `false` / empty and 64-bit integers are
//! accepted as numbers or decimal strings, as proto3 JSON producers in any language emit them.

use crate::envelope::{EventData, RawEnvelope};
use crate::ids::{EntityId, TenantId};
use crate::phone::{E164, Region};
use crate::reasons::Reason;
use crate::schedule::Schedule;
use crate::{ContractError, subjects};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::{Arc, LazyLock};
use time::OffsetDateTime;

/// Longest accepted carrier call id.
pub const MAX_CALL_ID_LEN: usize = 128;
/// Longest accepted free-text field (announcements, greetings).
pub const MAX_TEXT_LEN: usize = 2000;

/// Accepts a 64-bit unsigned integer as a JSON number or a decimal string (proto3 JSON).
pub(crate) fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(u64),
        Str(String),
    }
    match NumOrStr::deserialize(d)? {
        NumOrStr::Num(n) => Ok(n),
        NumOrStr::Str(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an unsigned integer"))),
    }
}

/// Accepts a 32-bit unsigned integer as a JSON number or a decimal string (proto3 JSON
/// parsers accept both); absent or `null` reads as `None`.
fn u32_lenient_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(u32),
        Str(String),
    }
    match Option::<NumOrStr>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::Num(n)) => Ok(Some(n)),
        Some(NumOrStr::Str(s)) => s.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("{s:?} is not a 32-bit unsigned integer"))
        }),
    }
}

/// `bool` whose absence or `null` means `true` (proto3 `optional bool` with a true default).
fn null_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Option::<bool>::deserialize(d).map(|b| b.unwrap_or(true))
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A required 32-bit unsigned integer, as a JSON number or a decimal string.
pub(crate) fn u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    u32_lenient_opt(d)?
        .ok_or_else(|| serde::de::Error::custom("expected a 32-bit unsigned integer"))
}

/// [`u32_lenient_opt`], with absent or `null` read as 0 (proto3 JSON omits zero values).
fn u32_lenient_default<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    u32_lenient_opt(d).map(Option::unwrap_or_default)
}

/// proto3 JSON reads `null` as the field's default; so do we, for non-optional fields.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// [`u64_lenient`], with absent or `null` read as 0 (proto3 JSON omits zero values).
pub(crate) fn u64_lenient_default<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Lenient(#[serde(deserialize_with = "u64_lenient")] u64);
    Option::<Lenient>::deserialize(d).map(|v| v.map_or(0, |l| l.0))
}

/// [`u64_lenient`], with absent or `null` read as `None`.
pub(crate) fn u64_lenient_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Lenient(#[serde(deserialize_with = "u64_lenient")] u64);
    Option::<Lenient>::deserialize(d).map(|v| v.map(|l| l.0))
}

/// A tenant id, or the reserved `_invalid` that rejections are filed under.
fn tenant_or_unknown<'de, D: Deserializer<'de>>(d: D) -> Result<TenantId, D::Error> {
    TenantId::new_or_unknown(String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn check_call_id(call_id: &str) -> Result<(), ContractError> {
    if call_id.trim().is_empty() {
        return Err(ContractError::Missing("call_id"));
    }
    if call_id.len() > MAX_CALL_ID_LEN {
        return Err(ContractError::TooLong {
            field: "call_id",
            max: MAX_CALL_ID_LEN,
        });
    }
    if call_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ContractError::Malformed(
            "`call_id` must not contain whitespace or control characters".into(),
        ));
    }
    Ok(())
}

fn check_text(field: &'static str, text: &str) -> Result<(), ContractError> {
    if text.chars().count() > MAX_TEXT_LEN {
        return Err(ContractError::TooLong {
            field,
            max: MAX_TEXT_LEN,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

/// `switchboard.call.inbound.v1` on `call.inbound.<tenant>`: a call reached one of the tenant's
/// numbers and needs a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInbound {
    /// The carrier's call id (Twilio `CallSid`); the de-duplication key.
    #[serde(default, deserialize_with = "null_default")]
    pub call_id: String,
    /// The tenant that owns the dialed number.
    pub tenant_id: TenantId,
    /// The dialed number.
    #[serde(default, deserialize_with = "null_default")]
    pub to: String,
    /// The caller; empty or `anonymous` when withheld.
    #[serde(default, deserialize_with = "null_default")]
    pub from: String,
    /// When the carrier reported the call.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The lead, when the producer already knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<EntityId>,
}

impl EventData for CallInbound {
    const TYPE: &'static str = "switchboard.call.inbound.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_inbound(&self.tenant_id)
    }
    fn ce_subject(&self) -> String {
        self.call_id.clone()
    }
    fn event_id(&self) -> String {
        format!("{}:{}:inbound", self.tenant_id, self.call_id)
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_call_id(&self.call_id)?;
        if self.to.trim().is_empty() {
            return Err(ContractError::Missing("to"));
        }
        check_text("to", &self.to)?;
        check_text("from", &self.from)
    }
}

/// Declares [`Rule`] once: each variant with its wire name; the enum, [`Rule::as_str`],
/// [`Rule::ALL`] and [`Rule::index`] all come from this one list, so a new rule is one line
/// here (and one in `proto/`, which the conformance test checks against [`Rule::ALL`]).
macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal,)+) => {
        /// Which rule of the routing spec produced a decision (or a target).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Rule {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)+
        }

        impl Rule {
            /// Every rule, in the spec's order (which is also [`Rule::index`]'s and `Ord`'s):
            /// what metrics, reports and tests iterate instead of listing the rules again.
            pub const ALL: [Rule; [$(Rule::$variant),+].len()] = [$(Rule::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Rule::$variant => $wire,)+
                }
            }
        }
    };
}

rules! {
    /// The lead's assigned user is eligible (active, available, in working hours, with a
    /// phone): ring that phone.
    AssignedUser => "assigned_user",
    /// The dialed number is an eligible user's direct line (`user_id` of the number): ring
    /// that user's phone.
    DirectLine => "direct_line",
    /// The caller's lead has no eligible owner, and the user who last answered this caller
    /// (within the company's `returning_caller_days`) is eligible: ring that user's phone.
    ReturningCaller => "returning_caller",
    /// A member of the dialed number's `ring_group` (all eligible members at once, or one
    /// after another).
    RingGroup => "ring_group",
    /// The dialed number's forwarding number.
    ForwardingNumber => "forwarding_number",
    /// The tenant's company phone.
    CompanyPhone => "company_phone",
    /// The company is closed (business hours): its after-hours forward, with no fallbacks.
    AfterHours => "after_hours",
    /// The caller is on the company's `blocked_callers`: rejected or announced, nothing rings.
    Blocked => "blocked",
    /// The caller withheld their number and `anonymous_callers` sends such calls to voicemail
    /// or rejects them: nothing rings.
    Anonymous => "anonymous",
    /// Nothing to ring: only the final action runs.
    NoRoute => "no_route",
}

impl Rule {
    /// The rule's position in [`Rule::ALL`] (for arrays indexed by rule).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A number to ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// E.164 number.
    pub number: E164,
    /// The user whose phone this is, for `assigned_user` and `direct_line` targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<EntityId>,
    /// The rule that produced this target.
    pub rule: Rule,
    /// Seconds this leg rings before the next step (the number's `ring_timeout_secs`, else
    /// the company's); absent in decisions made before ring timeouts existed.
    #[serde(
        default,
        deserialize_with = "u32_lenient_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ring_timeout_secs: Option<u32>,
    /// A simultaneous ring group: every member's number rings at once and the first to answer
    /// wins (`number` and `user_id` are the first member's, so a consumer that reads only
    /// them still rings someone). Absent for every other leg, and for a group of one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group: Vec<GroupMember>,
    /// The company screens this leg (`screening: "forwarded"`): whoever picks up hears a
    /// whisper and must press 1 to take the call; a leg nobody accepts counts as no answer.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub screen: bool,
}

impl Target {
    /// A leg that rings `number` alone, unscreened.
    pub fn single(
        number: E164,
        user_id: Option<EntityId>,
        rule: Rule,
        ring_timeout_secs: Option<u32>,
    ) -> Target {
        Target {
            number,
            user_id,
            rule,
            ring_timeout_secs,
            group: Vec::new(),
            screen: false,
        }
    }

    /// Every number this leg rings: the group's members, or `number` alone.
    pub fn numbers(&self) -> impl Iterator<Item = &E164> {
        let alone = self.group.is_empty().then_some(&self.number);
        alone
            .into_iter()
            .chain(self.group.iter().map(|member| &member.number))
    }
}

/// One member of a simultaneous ring group's leg.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's phone, E.164.
    pub number: E164,
    /// The member.
    pub user_id: EntityId,
}

/// What happens when every target failed or none exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalActionKind {
    /// Play `message`, then record a voicemail for the tenant.
    Voicemail,
    /// Play `message`, then hang up.
    AnnounceHangup,
    /// Refuse the call unanswered (the caller's carrier plays busy); `message` is empty. Only
    /// for blocked and anonymous callers, never a tenant's own final action.
    Reject,
}

impl FinalActionKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FinalActionKind::Voicemail => "voicemail",
            FinalActionKind::AnnounceHangup => "announce_hangup",
            FinalActionKind::Reject => "reject",
        }
    }
}

/// The last thing the caller hears; never silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalAction {
    /// Voicemail or announcement.
    pub kind: FinalActionKind,
    /// The greeting or announcement text; absent or `null` reads as empty.
    ///
    /// Shared (`Arc<str>`): every decision carries its tenant's configured action, or the
    /// default one, as a reference count instead of a copy of the text. On the wire it is a
    /// JSON string, as a `String` is.
    #[serde(default, with = "shared_text")]
    pub message: Arc<str>,
}

/// [`FinalAction::default`]'s greeting, written once and shared by every decision that uses it.
static DEFAULT_GREETING: LazyLock<Arc<str>> = LazyLock::new(|| {
    Arc::from(
        "Sorry, no one is available to take your call. Please leave a message after the tone.",
    )
});

impl Default for FinalAction {
    /// Voicemail with a neutral greeting: a caller can always leave a message.
    fn default() -> Self {
        FinalAction {
            kind: FinalActionKind::Voicemail,
            message: Arc::clone(&DEFAULT_GREETING),
        }
    }
}

/// [`FinalAction::message`] on the wire: a JSON string, as a `String` is, with `null` read as
/// empty as [`null_default`] does (serde reads and writes an `Arc` only with its `rc` feature,
/// which would apply to every crate).
pub(crate) mod shared_text {
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;
    use std::sync::Arc;

    pub(crate) fn serialize<S: Serializer>(
        text: &Arc<str>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<str>, D::Error> {
        deserializer.deserialize_option(OrNull)
    }

    /// `null` (the empty text, shared: `Arc::default` does not allocate) or a string, copied
    /// once into its `Arc` (no intermediate `String` when unescaped).
    struct OrNull;

    impl<'de> Visitor<'de> for OrNull {
        type Value = Arc<str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Arc<str>, E> {
            Ok(Arc::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Arc<str>, E> {
            Ok(Arc::default())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Arc<str>, D::Error> {
            d.deserialize_str(OrNull)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Arc<str>, E> {
            Ok(Arc::from(text))
        }
        fn visit_string<E: de::Error>(self, text: String) -> Result<Arc<str>, E> {
            Ok(Arc::from(text))
        }
        // As `String` reads bytes: when they are UTF-8.
        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Arc<str>, E> {
            match std::str::from_utf8(bytes) {
                Ok(text) => Ok(Arc::from(text)),
                Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(bytes), &self)),
            }
        }
    }
}

/// `switchboard.call.route.v2` on `call.route.<tenant>`: where a call rings, and why.
///
/// v2 carries its reasoning as data ([`reasons`](Self::reasons): stable codes with
/// parameters); v1 (`switchboard.call.route.v1`, still decoded, never produced) carried it as
/// English prose in `explanation`. Everything else has the same shape and meaning, except that
/// v2 records a closed company whose after-hours action is the final action as rule
/// `after_hours` with no target, where v1 said `no_route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRoute {
    /// The call this decision is for.
    pub call_id: String,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The rule that chose `target`; `no_route` when nothing rings (and, in v2, `after_hours`
    /// when the company is closed and only the final action runs).
    pub rule: Rule,
    /// The first number to ring, or null.
    pub target: Option<Target>,
    /// Further targets, in order, on no-answer, busy or failure.
    #[serde(default, deserialize_with = "null_default")]
    pub fallbacks: Vec<Target>,
    /// What runs when every target failed or none exists.
    pub final_action: FinalAction,
    /// v2: why, step by step, as data (see [`crate::reasons`]).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reasons: Vec<Reason>,
    /// v1 only: why, as English sentences. Empty in every decision made since v2.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub explanation: Vec<String>,
    /// The SETTINGS stream sequence the decision was made at.
    #[serde(default, deserialize_with = "u64_lenient_default")]
    pub settings_seq: u64,
    /// The CALLS stream sequence up to which the returning-caller history ("who answered
    /// whom") was applied when the decision was made; 0 when returning callers were off.
    #[serde(
        default,
        deserialize_with = "u64_lenient_default",
        skip_serializing_if = "is_zero"
    )]
    pub calls_seq: u64,
    /// The caller number as the router read it (E.164); absent when withheld or unusable.
    /// The dialer copies it into `answered`, which is what returning callers learn from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<E164>,
    /// When the decision was made.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CallRoute {
    /// Whether this decision was recorded as `switchboard.call.route.v1` (prose, no reasons).
    pub fn is_v1(&self) -> bool {
        self.reasons.is_empty() && !self.explanation.is_empty()
    }

    /// The same decision as a v1 producer wrote it (history, and the size comparison of the
    /// bench): the reasons as English prose, and the rule as v1 had it
    /// ([`crate::reasons::v1_rule`]).
    pub fn to_v1(&self) -> CallRoute {
        CallRoute {
            rule: crate::reasons::v1_rule(self.rule, self.target.as_ref()),
            explanation: self.explanation_lines(),
            reasons: Vec::new(),
            ..self.clone()
        }
    }

    /// Why, in English, one line per step: v2's reasons rendered, or v1's prose as recorded.
    pub fn explanation_lines(&self) -> Vec<String> {
        if self.is_v1() {
            return self.explanation.clone();
        }
        crate::reasons::render(
            &self.reasons,
            self.target.as_ref(),
            &self.fallbacks,
            &self.final_action,
        )
    }
}

impl EventData for CallRoute {
    const TYPE: &'static str = "switchboard.call.route.v2";
    const EARLIER_TYPES: &'static [&'static str] = &["switchboard.call.route.v1"];

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_route(&self.tenant_id)
    }
    fn ce_subject(&self) -> String {
        self.call_id.clone()
    }
    fn event_id(&self) -> String {
        route_event_id(&self.tenant_id, &self.call_id)
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_call_id(&self.call_id)?;
        match (&self.target, self.rule) {
            (Some(_), Rule::NoRoute) => {
                return Err(ContractError::Malformed(
                    "`target` must be null when `rule` is no_route".into(),
                ));
            }
            (Some(_), Rule::Blocked | Rule::Anonymous) => {
                return Err(ContractError::Malformed(
                    "`target` must be null when `rule` is blocked or anonymous".into(),
                ));
            }
            (None, Rule::NoRoute | Rule::AfterHours | Rule::Blocked | Rule::Anonymous)
            | (Some(_), _) => {}
            (None, _) => {
                return Err(ContractError::Malformed(
                    "`target` may be null only when `rule` is no_route, after_hours, blocked or anonymous".into(),
                ));
            }
        }
        for target in self.target.iter().chain(&self.fallbacks) {
            if matches!(target.rule, Rule::NoRoute | Rule::Blocked | Rule::Anonymous) {
                return Err(ContractError::Malformed(format!(
                    "a target's `rule` cannot be {}",
                    target.rule.as_str()
                )));
            }
            if !target.group.is_empty() && target.group[0].number != target.number {
                return Err(ContractError::Malformed(
                    "a group leg's `number` must be its first member's".into(),
                ));
            }
            for number in
                std::iter::once(&target.number).chain(target.group.iter().map(|m| &m.number))
            {
                E164::parse_strict(number.as_str()).map_err(|e| ContractError::InvalidPhone {
                    field: "target.number",
                    masked: number.masked(),
                    reason: e.to_string(),
                })?;
            }
        }
        if self.final_action.kind == FinalActionKind::Reject
            && !matches!(self.rule, Rule::Blocked | Rule::Anonymous)
        {
            return Err(ContractError::Malformed(
                "a `reject` final action is only for rule blocked or anonymous".into(),
            ));
        }
        check_text("final_action.message", &self.final_action.message)
    }
}

/// How a dial step ended: Twilio's `DialCallStatus`, with `no-answer` written `no_answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialCallStatus {
    /// The called party answered and the call ended normally.
    Completed,
    /// The called party was busy.
    Busy,
    /// Nobody answered before the dial timeout.
    NoAnswer,
    /// The carrier could not place the call (e.g. an invalid number).
    Failed,
    /// The dial was canceled before it was answered (e.g. the caller hung up).
    Canceled,
}

impl DialCallStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DialCallStatus::Completed => "completed",
            DialCallStatus::Busy => "busy",
            DialCallStatus::NoAnswer => "no_answer",
            DialCallStatus::Failed => "failed",
            DialCallStatus::Canceled => "canceled",
        }
    }

    /// Reads Twilio's `DialCallStatus` value (`no-answer` with a dash); also accepts the wire
    /// names.
    pub fn from_twilio(value: &str) -> Option<DialCallStatus> {
        Some(match value {
            "completed" => DialCallStatus::Completed,
            "busy" => DialCallStatus::Busy,
            "no-answer" | "no_answer" => DialCallStatus::NoAnswer,
            "failed" => DialCallStatus::Failed,
            "canceled" => DialCallStatus::Canceled,
            _ => return None,
        })
    }
}

/// `switchboard.call.status.v1` on `call.status.<tenant>`: how one dial step of a call ended,
/// as the carrier reported it on the dial's status callback. The dialer acts on it (next
/// fallback, or the final action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStatus {
    /// The call (Twilio `CallSid` of the inbound call).
    pub call_id: String,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Which target of the decision's chain was dialed: 0 the target, 1.. the fallbacks.
    #[serde(default, deserialize_with = "u32_lenient_default")]
    pub step: u32,
    /// How the dial ended.
    pub dial_call_status: DialCallStatus,
    /// The carrier's id of the outbound leg (Twilio `DialCallSid`), when one was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dial_call_sid: Option<String>,
    /// Seconds the outbound leg was connected (Twilio `DialCallDuration`), when reported.
    #[serde(
        default,
        deserialize_with = "u32_lenient_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub dial_call_duration: Option<u32>,
    /// When the carrier reported it.
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

impl EventData for CallStatus {
    const TYPE: &'static str = "switchboard.call.status.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_status(&self.tenant_id)
    }
    fn ce_subject(&self) -> String {
        self.call_id.clone()
    }
    /// One status per dial step: a carrier retrying its callback is de-duplicated.
    fn event_id(&self) -> String {
        format!("{}:{}:status:{}", self.tenant_id, self.call_id, self.step)
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_call_id(&self.call_id)?;
        if let Some(sid) = &self.dial_call_sid {
            check_call_id(sid).map_err(|e| match e {
                ContractError::Missing(_) => ContractError::Missing("dial_call_sid"),
                ContractError::TooLong { max, .. } => ContractError::TooLong {
                    field: "dial_call_sid",
                    max,
                },
                _ => ContractError::Malformed(
                    "`dial_call_sid` must not contain whitespace or control characters".into(),
                ),
            })?;
        }
        Ok(())
    }
}

/// What happened to a call's dial chain, as a `call.dial` event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialEventKind {
    /// The carrier accepted the step: its target is ringing.
    StepStarted,
    /// The step's target answered: the chain stops.
    Answered,
    /// The step ended without an answer (busy, no answer, failed, canceled) or the carrier
    /// refused it; `reason` says which.
    StepFailed,
    /// Every target of the chain was tried (or there was none): the final action runs next.
    ChainExhausted,
    /// The final action (voicemail or announcement) was handed to the carrier.
    FinalActionTaken,
}

impl DialEventKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DialEventKind::StepStarted => "step_started",
            DialEventKind::Answered => "answered",
            DialEventKind::StepFailed => "step_failed",
            DialEventKind::ChainExhausted => "chain_exhausted",
            DialEventKind::FinalActionTaken => "final_action_taken",
        }
    }
}

/// `switchboard.call.dial.v1` on `call.dial.<tenant>`: one step of the dialer's progress
/// through a decision's chain, so the audit stream holds the whole life of every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDial {
    /// The call (Twilio `CallSid` of the inbound call).
    pub call_id: String,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The chain step: 0 the target, 1.. the fallbacks, the chain's length for the final
    /// action.
    #[serde(default, deserialize_with = "u32_lenient_default")]
    pub step: u32,
    /// What happened.
    pub kind: DialEventKind,
    /// The number rung at this step, for step events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Why a step failed (the dial status or the carrier's error), or which final action ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The carrier's id of what it did (Twilio: the call's `sid`; the dialed leg's
    /// `DialCallSid` on `answered` and `step_failed` when reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_sid: Option<String>,
    /// The dialer cannot know whether the carrier ran this step: the dialer that claimed it
    /// stopped before the carrier's answer was stored, or the request timed out after it was
    /// sent). Such a step is never asked again (its target might be ringing): a target step is
    /// recorded as `step_failed` with this flag, a final action as `final_action_taken`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outcome_unknown: bool,
    /// Who acted: absent or `dialer` for the dialer, `gateway` for the gateway's dead-man's
    /// switch (no dialer instruction reached the call in time, so the gateway took its end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_by: Option<Actor>,
    /// On `answered`: the caller (the decision's `caller`), so "who answered whom" can be
    /// learned from CALLS alone (returning callers); absent otherwise, or when withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<E164>,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Who took a step of a call's chain (`acted_by` of `call.dial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The dialer, through the carrier's REST API.
    Dialer,
    /// The gateway's dead-man's switch, in its answer to the carrier.
    Gateway,
}

impl EventData for CallDial {
    const TYPE: &'static str = "switchboard.call.dial.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_dial(&self.tenant_id)
    }
    fn ce_subject(&self) -> String {
        self.call_id.clone()
    }
    /// One event per call, step and kind: a dialer repeating itself after a crash is
    /// de-duplicated.
    fn event_id(&self) -> String {
        format!(
            "{}:{}:dial:{}:{}",
            self.tenant_id,
            self.call_id,
            self.step,
            self.kind.as_str()
        )
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_call_id(&self.call_id)?;
        if let Some(reason) = &self.reason {
            check_text("reason", reason)?;
        }
        if let Some(sid) = &self.carrier_sid {
            check_text("carrier_sid", sid)?;
        }
        Ok(())
    }
}

/// The id (and `Nats-Msg-Id`) of the one decision a call may have: derived from the call only,
/// so redeliveries and re-publications of a call never yield a second decision.
pub fn route_event_id(tenant: &TenantId, call_id: &str) -> String {
    // Sized once: `format!` guesses from the literal parts and regrows (the router's hot path).
    let tenant = tenant.as_str();
    let mut id = String::with_capacity(tenant.len() + call_id.len() + ":route".len() + 1);
    id.push_str(tenant);
    id.push(':');
    id.push_str(call_id);
    id.push_str(":route");
    id
}

/// How a missed call ended (`ended` of `call.missed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedEnd {
    /// Nobody answered (or nothing could ring) and the final action ran: a voicemail greeting
    /// or an announcement (after hours included).
    FinalAction,
    /// The caller hung up while a leg was ringing.
    CallerHungUp,
}

impl MissedEnd {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MissedEnd::FinalAction => "final_action",
            MissedEnd::CallerHungUp => "caller_hung_up",
        }
    }
}

/// `switchboard.call.missed.v1` on `call.missed.<tenant>`: a call ended without anyone
/// answering, published once per call (id `<tenant>:<call_id>:missed`), so the CRM can send its
/// missed-call text-back or create a task. Blocked and rejected calls are not missed calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMissed {
    /// The call (Twilio `CallSid` of the inbound call).
    pub call_id: String,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The caller, E.164; absent when withheld or unusable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<E164>,
    /// The tenant's number that was dialed; absent when it was not one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialed: Option<E164>,
    /// The caller's lead, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<EntityId>,
    /// The user the lead is assigned to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_user_id: Option<EntityId>,
    /// The rule of the decision (`no_route` and `after_hours` when nothing could ring).
    pub rule: Rule,
    /// The legs tried, in order (each with its rule, user and numbers).
    #[serde(default, deserialize_with = "null_default")]
    pub tried: Vec<Target>,
    /// How the call ended.
    pub ended: MissedEnd,
    /// The final action that ran, for `final_action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_action: Option<FinalActionKind>,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl EventData for CallMissed {
    const TYPE: &'static str = "switchboard.call.missed.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_missed(&self.tenant_id)
    }
    fn ce_subject(&self) -> String {
        self.call_id.clone()
    }
    /// One per call: a dialer repeating itself after a crash is de-duplicated.
    fn event_id(&self) -> String {
        format!("{}:{}:missed", self.tenant_id, self.call_id)
    }
    fn validate(&self) -> Result<(), ContractError> {
        check_call_id(&self.call_id)?;
        if self.ended == MissedEnd::FinalAction && self.final_action.is_none() {
            return Err(ContractError::Missing("final_action"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// `switchboard.settings.company.v1` on `settings.<tenant>.company.main` (Business Info >
/// Company Data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanySettings {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Producer version, monotonic per entity.
    #[serde(deserialize_with = "u64_lenient")]
    pub version: u64,
    /// The company phone, last in the routing chain.
    pub company_phone: Option<String>,
    /// ISO 3166-1 alpha-2 region for numbers written without a country code (default `US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// The tenant's final action; the default (voicemail) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_action: Option<FinalAction>,
    /// The IANA time zone of the tenant (`America/Chicago`): the zone of every schedule that
    /// names none. Absent means UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When the company is open; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<Schedule>,
    /// What happens to a call while the company is closed; absent means the final action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_hours: Option<AfterHours>,
    /// Seconds each leg rings before the next step, for numbers that set none; absent means
    /// [`DEFAULT_RING_TIMEOUT_SECS`].
    #[serde(
        default,
        deserialize_with = "u32_lenient_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ring_timeout_secs: Option<u32>,
    /// Days a returning caller is routed back to the user who last answered them, when their
    /// lead has no eligible owner; 0 (the default) is off. At most [`MAX_RETURNING_CALLER_DAYS`].
    #[serde(
        default,
        deserialize_with = "u32_lenient_default",
        skip_serializing_if = "is_zero_u32"
    )]
    pub returning_caller_days: u32,
    /// Caller numbers refused before anything rings: E.164 numbers or `+`-prefixes (an entry
    /// blocks every caller number that starts with it). At most [`MAX_BLOCKED_CALLERS`].
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub blocked_callers: Vec<String>,
    /// What a blocked caller gets; absent means `reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_action: Option<BlockedAction>,
    /// What a caller who withholds their number gets; absent means `route`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_callers: Option<AnonymousCallers>,
    /// Whether legs outside the company hear a whisper and must press 1; absent means `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screening: Option<Screening>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The longest returning-caller memory, in days.
pub const MAX_RETURNING_CALLER_DAYS: u32 = 90;
/// The most entries a company's `blocked_callers` may hold.
pub const MAX_BLOCKED_CALLERS: usize = 10_000;
/// The most users a number's `ring_group` may hold.
pub const MAX_RING_GROUP: usize = 10;

/// What a blocked caller gets (`blocked_action` of the company).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockedAction {
    /// The carrier's busy/rejected answer; the call is never answered and nothing rings.
    #[default]
    Reject,
    /// The final action's message, then hang up.
    Announce,
}

impl BlockedAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedAction::Reject => "reject",
            BlockedAction::Announce => "announce",
        }
    }
}

/// What a caller who withholds their number gets (`anonymous_callers` of the company).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymousCallers {
    /// Routed as an unknown caller.
    #[default]
    Route,
    /// Straight to voicemail.
    Voicemail,
    /// Refused unanswered, like a blocked caller under `reject`.
    Reject,
}

impl AnonymousCallers {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnonymousCallers::Route => "route",
            AnonymousCallers::Voicemail => "voicemail",
            AnonymousCallers::Reject => "reject",
        }
    }
}

/// Call screening (`screening` of the company).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Screening {
    /// Every leg connects when answered.
    #[default]
    Off,
    /// Legs to numbers outside the company (forwarding numbers, users' phones, the after-hours
    /// forward; every leg but the company phone) hear a whisper and must press 1.
    Forwarded,
}

impl Screening {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Screening::Off => "off",
            Screening::Forwarded => "forwarded",
        }
    }
}

/// How a ring group rings (`mode` of `ring_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingMode {
    /// Every eligible member at once; the first to answer wins.
    Simultaneous,
    /// One eligible member after another, each for the group's ring timeout.
    Sequential,
}

impl RingMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RingMode::Simultaneous => "simultaneous",
            RingMode::Sequential => "sequential",
        }
    }
}

/// `ring_group` of a number: tried after the lead's owner, the direct line and a returning
/// caller's last answerer, before the forwarding number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingGroup {
    /// The members, in order (1 to [`MAX_RING_GROUP`], no repeats).
    #[serde(default, deserialize_with = "null_default")]
    pub user_ids: Vec<EntityId>,
    /// All at once or one after another.
    pub mode: RingMode,
    /// Seconds the group's leg (or each member's, sequentially) rings; absent means the
    /// number's ring timeout.
    #[serde(
        default,
        deserialize_with = "u32_lenient_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ring_timeout_secs: Option<u32>,
}

/// The company's ring timeout when it sets none: 20 s, the top of the 15–20 s that keeps a
/// phone's own voicemail from answering (and the call being logged as completed).
pub const DEFAULT_RING_TIMEOUT_SECS: u32 = 20;

/// The ring timeouts accepted, in seconds: what Twilio's `<Dial timeout>` accepts.
pub const RING_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 5..=600;

/// What happens to a call while the company is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterHoursKind {
    /// Play the company's final action.
    #[default]
    FinalAction,
    /// Ring `number`; the final action follows if nobody answers.
    Forward,
}

/// `after_hours` of the company: `{"kind": "final_action"}` or `{"kind": "forward", "number":
/// "+13125550100"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AfterHours {
    /// Final action or forward.
    pub kind: AfterHoursKind,
    /// The number a `forward` rings, as entered (read in the company's `default_region`);
    /// only for `forward`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

/// Whom a number's call tries first when the caller's lead is assigned to another user than
/// the number's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    /// The lead's assigned user, then the number's owner.
    #[default]
    ContactOwner,
    /// The number's owner, then the lead's assigned user.
    NumberOwner,
}

impl Prefer {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefer::ContactOwner => "contact_owner",
            Prefer::NumberOwner => "number_owner",
        }
    }

    fn is_default(&self) -> bool {
        *self == Prefer::ContactOwner
    }
}

/// `switchboard.settings.number.v1` on `settings.<tenant>.number.<digits>` (Settings > Phone
/// Numbers > Edit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberSettings {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Producer version, monotonic per entity.
    #[serde(deserialize_with = "u64_lenient")]
    pub version: u64,
    /// The tenant's number, E.164.
    pub number: E164,
    /// Where calls to this number go when no assigned user takes them.
    pub forwarding_number: Option<String>,
    /// Released numbers route nowhere.
    #[serde(default, deserialize_with = "null_default")]
    pub released: bool,
    /// The user whose direct line this number is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<EntityId>,
    /// Whom to try first when the caller's lead belongs to another user than `user_id`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Prefer::is_default"
    )]
    pub prefer: Prefer,
    /// Seconds each leg of this number's calls rings; absent means the company's.
    #[serde(
        default,
        deserialize_with = "u32_lenient_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub ring_timeout_secs: Option<u32>,
    /// Users who ring after the lead's owner, the direct line and a returning caller's last
    /// answerer, before the forwarding number; absent or null means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_group: Option<RingGroup>,
}

/// `switchboard.settings.user.v1` on `settings.<tenant>.user.<user_id>` (Team Management).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSettings {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Producer version, monotonic per entity.
    #[serde(deserialize_with = "u64_lenient")]
    pub version: u64,
    /// The user.
    pub user_id: EntityId,
    /// The User Phone.
    pub phone: Option<String>,
    /// Deactivated or deleted users are never routed to.
    #[serde(default, deserialize_with = "null_default")]
    pub active: bool,
    /// `false` is do-not-disturb: the user is skipped. Absent means `true`.
    #[serde(
        default = "yes",
        deserialize_with = "null_true",
        skip_serializing_if = "is_true"
    )]
    pub available: bool,
    /// When the user works; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_hours: Option<Schedule>,
    /// Ring the user only inside `working_hours`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub ring_only_in_working_hours: bool,
}

/// `switchboard.settings.contact.v1` on `settings.<tenant>.contact.<contact_id>`: a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactSettings {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Producer version, monotonic per entity.
    #[serde(deserialize_with = "u64_lenient")]
    pub version: u64,
    /// The contact.
    pub contact_id: EntityId,
    /// The contact's phone numbers, as entered (normalized with the tenant's region).
    #[serde(default, deserialize_with = "null_default")]
    pub phones: Vec<String>,
    /// The user the lead is assigned to.
    pub assigned_user_id: Option<EntityId>,
    /// Deleted contacts are never matched.
    #[serde(default, deserialize_with = "null_default")]
    pub deleted: bool,
}

/// The entity kinds of the SETTINGS stream, as they appear in subjects.
pub mod entity {
    /// `company` (one per tenant, id `main`).
    pub const COMPANY: &str = "company";
    /// `number`, id = digits of the E.164 number.
    pub const NUMBER: &str = "number";
    /// `user`, id = user id.
    pub const USER: &str = "user";
    /// `contact`, id = contact id.
    pub const CONTACT: &str = "contact";
    /// The one company entity's id.
    pub const COMPANY_ID: &str = "main";
    /// `rejected`, id = the stream sequence of the refused event: not an entity, an audit
    /// record that settings consumers skip.
    pub const REJECTED: &str = "rejected";
}

macro_rules! settings_event {
    ($ty:ty, $type_name:literal, $entity:expr, |$s:ident| $id:expr, |$v:ident| $validate:block) => {
        impl EventData for $ty {
            const TYPE: &'static str = $type_name;

            fn tenant_id(&self) -> &TenantId {
                &self.tenant_id
            }
            fn nats_subject(&self) -> String {
                let $s = self;
                subjects::settings(&self.tenant_id, $entity, $id)
            }
            fn ce_subject(&self) -> String {
                let $s = self;
                format!("{}/{}", $entity, $id)
            }
            fn event_id(&self) -> String {
                let $s = self;
                format!("{}:{}:{}:v{}", self.tenant_id, $entity, $id, self.version)
            }
            fn validate(&self) -> Result<(), ContractError> {
                if self.version == 0 {
                    return Err(ContractError::Version);
                }
                let $v = self;
                $validate
            }
        }
    };
}

settings_event!(
    CompanySettings,
    "switchboard.settings.company.v1",
    entity::COMPANY,
    |_s| entity::COMPANY_ID,
    |v| {
        if let Some(region) = &v.default_region
            && Region::parse(region).is_none()
        {
            return Err(ContractError::Malformed(format!(
                "`default_region` {region:?} is not an ISO 3166-1 alpha-2 region"
            )));
        }
        if let Some(action) = &v.final_action {
            check_text("final_action.message", &action.message)?;
        }
        if let Some(name) = &v.time_zone {
            crate::schedule::time_zone(name).map_err(|reason| ContractError::InvalidSetting {
                field: "time_zone".into(),
                reason,
            })?;
        }
        if let Some(hours) = &v.business_hours {
            hours.compile("business_hours")?;
        }
        if let Some(after) = &v.after_hours {
            let region = v
                .default_region
                .as_deref()
                .and_then(Region::parse)
                .unwrap_or_default();
            check_after_hours(after, region)?;
        }
        check_ring_timeout(v.ring_timeout_secs)?;
        if v.returning_caller_days > MAX_RETURNING_CALLER_DAYS {
            return Err(ContractError::InvalidSetting {
                field: "returning_caller_days".into(),
                reason: format!(
                    "{} days is more than the {MAX_RETURNING_CALLER_DAYS} a returning caller is remembered",
                    v.returning_caller_days
                ),
            });
        }
        check_blocked_callers(&v.blocked_callers)
    }
);

/// `blocked_callers`: at most [`MAX_BLOCKED_CALLERS`] entries, each `+` and 1 to 15 digits.
fn check_blocked_callers(entries: &[String]) -> Result<(), ContractError> {
    if entries.len() > MAX_BLOCKED_CALLERS {
        return Err(ContractError::InvalidSetting {
            field: "blocked_callers".into(),
            reason: format!(
                "{} entries is more than the {MAX_BLOCKED_CALLERS} allowed",
                entries.len()
            ),
        });
    }
    for (i, entry) in entries.iter().enumerate() {
        if let Err(reason) = blocked_entry(entry) {
            return Err(ContractError::InvalidSetting {
                field: format!("blocked_callers[{i}]"),
                reason: format!("{:?} {reason}", crate::phone::mask(entry)),
            });
        }
    }
    Ok(())
}

/// Whether `entry` is a block-list entry: `+` then 1 to 15 digits (an E.164 number, or the
/// start of one), with nothing else.
pub fn blocked_entry(entry: &str) -> Result<(), &'static str> {
    let Some(digits) = entry.strip_prefix('+') else {
        return Err("must start with `+` (an E.164 number or a `+`-prefix such as +1900)");
    };
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be `+` followed by 1 to 15 digits, nothing else");
    }
    if digits.starts_with('0') {
        return Err("country codes never start with 0");
    }
    Ok(())
}

/// `ring_group`: 1 to [`MAX_RING_GROUP`] distinct users and a ring timeout in range.
fn check_ring_group(group: &RingGroup) -> Result<(), ContractError> {
    let invalid = |reason: String| ContractError::InvalidSetting {
        field: "ring_group.user_ids".into(),
        reason,
    };
    if group.user_ids.is_empty() {
        return Err(invalid(
            "a ring group needs at least one user (or set `ring_group` to null)".into(),
        ));
    }
    if group.user_ids.len() > MAX_RING_GROUP {
        return Err(invalid(format!(
            "{} users is more than the {MAX_RING_GROUP} a group rings",
            group.user_ids.len()
        )));
    }
    for (i, user) in group.user_ids.iter().enumerate() {
        if group.user_ids[..i].contains(user) {
            return Err(invalid(format!("user {user} is listed twice")));
        }
    }
    check_ring_timeout(group.ring_timeout_secs).map_err(|e| match e {
        ContractError::InvalidSetting { reason, .. } => ContractError::InvalidSetting {
            field: "ring_group.ring_timeout_secs".into(),
            reason,
        },
        other => other,
    })
}

/// `after_hours`: a forward names a possible number ([`E164::parse`]), a final action none.
fn check_after_hours(after: &AfterHours, region: Region) -> Result<(), ContractError> {
    match (after.kind, &after.number) {
        (AfterHoursKind::Forward, None) => Err(ContractError::Missing("after_hours.number")),
        (AfterHoursKind::Forward, Some(number)) => {
            check_text("after_hours.number", number)?;
            E164::accept("after_hours.number", number, region).map(drop)
        }
        (AfterHoursKind::FinalAction, None) => Ok(()),
        (AfterHoursKind::FinalAction, Some(_)) => Err(ContractError::InvalidSetting {
            field: "after_hours.number".into(),
            reason: "only a `forward` has a number (`final_action` plays the final action)".into(),
        }),
    }
}

/// `ring_timeout_secs`, when set, is within [`RING_TIMEOUT_RANGE`].
fn check_ring_timeout(secs: Option<u32>) -> Result<(), ContractError> {
    match secs {
        Some(secs) if !RING_TIMEOUT_RANGE.contains(&secs) => Err(ContractError::InvalidSetting {
            field: "ring_timeout_secs".into(),
            reason: format!(
                "{secs} s is outside {}–{} s (what a carrier's dial timeout accepts)",
                RING_TIMEOUT_RANGE.start(),
                RING_TIMEOUT_RANGE.end()
            ),
        }),
        _ => Ok(()),
    }
}

settings_event!(
    NumberSettings,
    "switchboard.settings.number.v1",
    entity::NUMBER,
    |s| s.number.digits(),
    |v| {
        // Deserialization accepts any string as E164; the number is a subject token, so it
        // must be canonical.
        E164::parse_strict(v.number.as_str()).map_err(|e| ContractError::InvalidPhone {
            field: "number",
            masked: crate::phone::mask(v.number.as_str()),
            reason: e.to_string(),
        })?;
        check_ring_timeout(v.ring_timeout_secs)?;
        match &v.ring_group {
            Some(group) => check_ring_group(group),
            None => Ok(()),
        }
    }
);

settings_event!(
    UserSettings,
    "switchboard.settings.user.v1",
    entity::USER,
    |s| s.user_id.as_str(),
    |v| {
        if let Some(hours) = &v.working_hours {
            hours.compile("working_hours")?;
        }
        Ok(())
    }
);

settings_event!(
    ContactSettings,
    "switchboard.settings.contact.v1",
    entity::CONTACT,
    |s| s.contact_id.as_str(),
    |v| {
        for phone in &v.phones {
            check_text("phones", phone)?;
        }
        Ok(())
    }
);

/// Any settings change, for consumers of the whole SETTINGS stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingsChange {
    /// Company data.
    Company(CompanySettings),
    /// A phone number's settings.
    Number(NumberSettings),
    /// A user.
    User(UserSettings),
    /// A contact (lead).
    Contact(ContactSettings),
}

impl SettingsChange {
    /// Decodes any settings event that arrived on `nats_subject`.
    pub fn decode(body: &[u8], nats_subject: &str) -> Result<Self, ContractError> {
        let raw = RawEnvelope::parse(body)?;
        Ok(match raw.event_type.as_str() {
            CompanySettings::TYPE => Self::Company(raw.into_typed(nats_subject)?.data),
            NumberSettings::TYPE => Self::Number(raw.into_typed(nats_subject)?.data),
            UserSettings::TYPE => Self::User(raw.into_typed(nats_subject)?.data),
            ContactSettings::TYPE => Self::Contact(raw.into_typed(nats_subject)?.data),
            other => {
                return Err(ContractError::UnexpectedType {
                    expected: "switchboard.settings.{company,number,user,contact}.v1".into(),
                    found: other.to_string(),
                });
            }
        })
    }

    /// The tenant.
    pub fn tenant_id(&self) -> &TenantId {
        match self {
            Self::Company(s) => &s.tenant_id,
            Self::Number(s) => &s.tenant_id,
            Self::User(s) => &s.tenant_id,
            Self::Contact(s) => &s.tenant_id,
        }
    }

    /// The producer version.
    pub fn version(&self) -> u64 {
        match self {
            Self::Company(s) => s.version,
            Self::Number(s) => s.version,
            Self::User(s) => s.version,
            Self::Contact(s) => s.version,
        }
    }

    /// The SETTINGS subject of the change's entity.
    pub fn nats_subject(&self) -> String {
        let (kind, id) = self.key();
        subjects::settings(self.tenant_id(), kind, &id)
    }

    /// `(entity kind, entity id)`: the key the version guard is kept per.
    pub fn key(&self) -> (&'static str, String) {
        match self {
            Self::Company(_) => (entity::COMPANY, entity::COMPANY_ID.to_string()),
            Self::Number(s) => (entity::NUMBER, s.number.digits().to_string()),
            Self::User(s) => (entity::USER, s.user_id.to_string()),
            Self::Contact(s) => (entity::CONTACT, s.contact_id.to_string()),
        }
    }

    /// The per-entity version guard, the one rule every holder of settings applies (the
    /// routing state, the projection store's upsert, the audit's settings log): this change
    /// replaces what is held for its entity only when nothing is, or its version is newer than
    /// the `current` one. An older or equal version changes nothing, so duplicates and
    /// out-of-order deliveries converge.
    pub fn supersedes(&self, current: Option<u64>) -> bool {
        current.is_none_or(|current| self.version() > current)
    }

    /// The event's `data` as one JSON document (the contract's own serialization, so every
    /// field the contract knows, and only those): what the projection store keeps per entity,
    /// read back with [`SettingsChange::from_data_json`].
    pub fn to_data_json(&self) -> Result<String, ContractError> {
        let json = match self {
            Self::Company(s) => serde_json::to_string(s),
            Self::Number(s) => serde_json::to_string(s),
            Self::User(s) => serde_json::to_string(s),
            Self::Contact(s) => serde_json::to_string(s),
        };
        json.map_err(|e| ContractError::Malformed(format!("cannot encode settings data: {e}")))
    }

    /// Reads the `data` document of a settings event of kind `entity` (`company`, `number`,
    /// `user`, `contact`) through the same types and validation as [`SettingsChange::decode`]:
    /// a field the document lacks takes the default the contract gives it, as in an event.
    pub fn from_data_json(entity: &str, json: &str) -> Result<Self, ContractError> {
        fn typed<T: EventData>(json: &str) -> Result<T, ContractError> {
            let data: T = serde_json::from_str(json)
                .map_err(|e| ContractError::Malformed(format!("`data` of {}: {e}", T::TYPE)))?;
            data.validate()?;
            Ok(data)
        }
        Ok(match entity {
            entity::COMPANY => Self::Company(typed(json)?),
            entity::NUMBER => Self::Number(typed(json)?),
            entity::USER => Self::User(typed(json)?),
            entity::CONTACT => Self::Contact(typed(json)?),
            other => {
                return Err(ContractError::Malformed(format!(
                    "{other:?} is not a settings entity kind"
                )));
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------------------------

/// Why an event taken from a stream was refused, with the original kept verbatim for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The tenant of the original subject, or `_invalid` when that token is
    /// not a valid tenant id.
    #[serde(deserialize_with = "tenant_or_unknown")]
    pub tenant_id: TenantId,
    /// The stream the original event is stored in.
    pub stream: String,
    /// Its sequence in that stream.
    #[serde(deserialize_with = "u64_lenient")]
    pub stream_seq: u64,
    /// The subject it arrived on.
    pub original_subject: String,
    /// Its body (lossless when it was UTF-8; invalid bytes replaced otherwise).
    #[serde(default, deserialize_with = "null_default")]
    pub original_payload: String,
    /// A stable code ([`ContractError::code`]).
    pub code: String,
    /// The specific reason, for people.
    pub reason: String,
}

impl Rejection {
    /// Longest `original_payload` carried, in bytes: a refused body can be up to NATS's
    /// message limit, and its rejection must still be publishable.
    pub const MAX_PAYLOAD: usize = 64 * 1024;

    /// Records that the event at `stream`/`stream_seq` on `subject` was refused for `error`.
    pub fn new(
        stream: &str,
        stream_seq: u64,
        subject: &str,
        payload: &[u8],
        error: &ContractError,
    ) -> Rejection {
        let tenant_id = subjects::tenant_of(subject)
            .and_then(|t| TenantId::new(t).ok())
            .unwrap_or_else(TenantId::unknown);
        Rejection {
            tenant_id,
            stream: stream.to_string(),
            stream_seq,
            original_subject: subject.to_string(),
            original_payload: excerpt(payload),
            code: error.code().to_string(),
            reason: error.to_string(),
        }
    }
}

/// The refused body as text, cut at [`Rejection::MAX_PAYLOAD`] bytes so the rejection itself
/// always fits in a NATS message (the whole original stays in its stream at `stream_seq`).
fn excerpt(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    if text.len() <= Rejection::MAX_PAYLOAD {
        return text.into_owned();
    }
    let mut end = Rejection::MAX_PAYLOAD;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `switchboard.call.rejected.v1` on `call.rejected.<tenant>`: a call event that could not be
/// processed. It is terminated, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallRejected(pub Rejection);

impl EventData for CallRejected {
    const TYPE: &'static str = "switchboard.call.rejected.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.0.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::call_rejected(&self.0.tenant_id)
    }
    fn ce_subject(&self) -> String {
        format!("{}/{}", self.0.stream, self.0.stream_seq)
    }
    fn event_id(&self) -> String {
        format!("rejected:{}:{}", self.0.stream, self.0.stream_seq)
    }
    fn validate(&self) -> Result<(), ContractError> {
        Ok(())
    }
}

/// `switchboard.settings.rejected.v1` on `settings.<tenant>.rejected.<seq>`: a settings event
/// that could not be applied. Consumers of settings skip it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SettingsRejected(pub Rejection);

impl EventData for SettingsRejected {
    const TYPE: &'static str = "switchboard.settings.rejected.v1";

    fn tenant_id(&self) -> &TenantId {
        &self.0.tenant_id
    }
    fn nats_subject(&self) -> String {
        subjects::settings(
            &self.0.tenant_id,
            entity::REJECTED,
            &self.0.stream_seq.to_string(),
        )
    }
    fn ce_subject(&self) -> String {
        format!("{}/{}", self.0.stream, self.0.stream_seq)
    }
    fn event_id(&self) -> String {
        format!("rejected:{}:{}", self.0.stream, self.0.stream_seq)
    }
    fn validate(&self) -> Result<(), ContractError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_refused_body_is_cut_so_its_rejection_fits_in_a_nats_message() {
        // Found by the chaos suite: a 400 kB body of invalid UTF-8 became a 1.2 MB rejection.
        let body = vec![0xFF_u8; 400_000];
        let error = ContractError::Malformed("not JSON".into());
        let rejection = Rejection::new("CALLS", 7, "call.inbound.acme", &body, &error);
        assert!(rejection.original_payload.len() <= Rejection::MAX_PAYLOAD);
        assert!(rejection.original_payload.starts_with('\u{FFFD}'));
        let small = Rejection::new("CALLS", 8, "call.inbound.acme", b"{}", &error);
        assert_eq!(small.original_payload, "{}");
    }

    /// `FinalAction` as it was when `message` was a `String`: the wire contract.
    #[derive(Debug, Serialize, Deserialize)]
    struct StringFinalAction {
        kind: FinalActionKind,
        #[serde(default, deserialize_with = "null_default")]
        message: String,
    }

    #[test]
    fn final_action_json_is_byte_identical_to_the_string_field_and_round_trips() {
        let greeting = FinalAction::default().message;
        for kind in [
            FinalActionKind::Voicemail,
            FinalActionKind::AnnounceHangup,
            FinalActionKind::Reject,
        ] {
            for message in [
                "",
                "We are closed.",
                &*greeting,
                "Escaped: \"quoted\" \\ </Say> & <b>\n\t\u{1} é \u{1F600}",
            ] {
                let action = FinalAction {
                    kind,
                    message: message.into(),
                };
                let strings = StringFinalAction {
                    kind,
                    message: message.into(),
                };
                let json = serde_json::to_string(&action).expect("encodes");
                assert_eq!(json, serde_json::to_string(&strings).expect("encodes"));
                assert_eq!(
                    serde_json::from_str::<FinalAction>(&json).expect("decodes"),
                    action
                );
                // Also through a reader (its strings are not borrowed from the input).
                assert_eq!(
                    serde_json::from_reader::<_, FinalAction>(json.as_bytes()).expect("decodes"),
                    action
                );
                let value = serde_json::to_value(&action).expect("encodes");
                assert_eq!(
                    serde_json::from_value::<FinalAction>(value).expect("decodes"),
                    action
                );
            }
        }
        // `null` and absent read as empty, as `null_default` read them for the string.
        for json in [
            r#"{"kind":"voicemail","message":null}"#,
            r#"{"kind":"voicemail"}"#,
        ] {
            let action: FinalAction = serde_json::from_str(json).expect("decodes");
            let strings: StringFinalAction = serde_json::from_str(json).expect("decodes");
            assert_eq!(&*action.message, "");
            assert_eq!(action.message.as_ref(), strings.message.as_str());
        }
        // What the string field refused, this refuses.
        for bad in [
            r#"{"kind":"voicemail","message":1}"#,
            r#"{"kind":"voicemail","message":[]}"#,
            r#"{"kind":"voicemail","message":{}}"#,
            r#"{"kind":"voicemail","message":true}"#,
        ] {
            assert!(
                serde_json::from_str::<StringFinalAction>(bad).is_err(),
                "{bad}"
            );
            assert!(serde_json::from_str::<FinalAction>(bad).is_err(), "{bad}");
        }
        // The hot path: the default greeting and a configured message are shared, not copied.
        assert!(Arc::ptr_eq(
            &FinalAction::default().message,
            &FinalAction::default().message
        ));
        let configured = FinalAction {
            kind: FinalActionKind::AnnounceHangup,
            message: "We are closed.".into(),
        };
        assert!(Arc::ptr_eq(
            &configured.clone().message,
            &configured.message
        ));
    }
}
