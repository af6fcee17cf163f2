//! A fast reading of decisions as Switchboard itself writes them, for replay (which reads
//! millions): [`RecordedRoute`] decodes the `data` of a `call.route` into the very
//! [`CallRoute`] the derived decoding gives, but reads each reason without buffering it.
//!
//! [`Reason`] is internally tagged (`{"code": "…", …}`): its derived decoding must buffer every
//! reason object (serde's private `Content`) before it can pick the variant, which was about
//! 40 % of the cost of decoding a decision. Switchboard writes the `code` first and nothing
//! the type does not know, so here the code is read first and the rest of the object straight
//! into the variant. Anything else — the code elsewhere or twice, an unknown code, a field the
//! reason does not have (anywhere inside it), a bad value — fails [`RecordedRoute`] instead:
//! the caller then decodes the body again as a [`CallRoute`], whose verdict (value or error)
//! stands. So [`RecordedRoute`] accepts a subset of what [`CallRoute`] accepts, with the same
//! value; the tests compare the two on every reason and on mutations of them.
//!
//! Only reading is affected: [`CallRoute`], [`Reason`] and every contract type keep their
//! derived decoding (and errors) unchanged.

use crate::events::{null_default, u32_lenient, u64_lenient, u64_lenient_default, u64_lenient_opt};
use crate::reasons::{HoursAt, HoursInterval, Offer, UserSkipped};
use crate::{
    AnonymousCallers, BlockedAction, CallRoute, E164, EntityId, FinalAction, PhoneError, Reason,
    RingMode, Rule, Target, TenantId,
};
use compact_str::CompactString;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;

/// The `data` of a `call.route`, decoded as [`CallRoute`]'s derived `Deserialize` would, when
/// its reasons are written as Switchboard writes them; an error otherwise (see the module).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRoute(pub CallRoute);

impl<'de> Deserialize<'de> for RecordedRoute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CallRouteDef::deserialize(deserializer).map(RecordedRoute)
    }
}

// `CallRoute` field by field, with the attributes of `events.rs` (serde's `remote`: the
// compiler checks the fields are `CallRoute`'s), but `reasons` read by `fast_reasons`.
#[derive(Deserialize)]
#[serde(remote = "CallRoute")]
struct CallRouteDef {
    call_id: String,
    tenant_id: TenantId,
    rule: Rule,
    target: Option<Target>,
    #[serde(default, deserialize_with = "null_default")]
    fallbacks: Vec<Target>,
    final_action: FinalAction,
    #[serde(default, deserialize_with = "fast_reasons")]
    reasons: Vec<Reason>,
    #[serde(default, deserialize_with = "null_default")]
    explanation: Vec<String>,
    #[serde(default, deserialize_with = "u64_lenient_default")]
    settings_seq: u64,
    #[serde(default, deserialize_with = "u64_lenient_default")]
    calls_seq: u64,
    #[serde(default)]
    caller: Option<E164>,
    #[serde(with = "time::serde::rfc3339")]
    decided_at: OffsetDateTime,
}

/// The reasons array (`null` reads as empty, as `null_default` does), each reason read by
/// [`FastReason`].
fn fast_reasons<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Reason>, D::Error> {
    struct Reasons;
    impl<'de> Visitor<'de> for Reasons {
        type Value = Vec<Reason>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Reason>, A::Error> {
            // A decision has about ten: one allocation, and no reason moved to a larger one.
            let mut reasons = Vec::with_capacity(16);
            while let Some(FastReason(reason)) = seq.next_element()? {
                reasons.push(reason);
            }
            Ok(reasons)
        }
    }
    struct OrNull;
    impl<'de> Visitor<'de> for OrNull {
        type Value = Vec<Reason>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<Reason>, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<Reason>, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Reason>, D::Error> {
            d.deserialize_seq(Reasons)
        }
    }
    d.deserialize_option(OrNull)
}

/// One reason, code first and nothing but its own fields; an error otherwise.
struct FastReason(Reason);

impl<'de> Deserialize<'de> for FastReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FastReasonVisitor)
    }
}

struct FastReasonVisitor;

/// The error that sends the caller back to the derived decoding.
fn not_canonical<E: de::Error>(what: &str) -> E {
    E::custom(format_args!(
        "not a reason as Switchboard writes it: {what}"
    ))
}

impl<'de> Visitor<'de> for FastReasonVisitor {
    type Value = FastReason;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reason object with its code first")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastReason, A::Error> {
        // Borrowed: Switchboard's keys and codes need no unescaping (an escaped one fails here).
        match map.next_key::<&'de str>()? {
            Some("code") => {}
            _ => return Err(not_canonical("`code` is not its first field")),
        }
        let code: &'de str = map.next_value()?;
        let Some(&name) = BODY_VARIANTS.iter().find(|name| **name == code) else {
            // A code this version does not know: the derived decoding reads it as
            // `Unrecognized` whatever else the object holds; here only when it holds nothing.
            return match map.next_key::<IgnoredAny>()? {
                None => Ok(FastReason(Reason::Unrecognized)),
                Some(_) => Err(not_canonical("fields after an unknown code")),
            };
        };
        ReasonDef::deserialize(Body { name, map }).map(FastReason)
    }
}

/// The codes [`ReasonDef`] reads (every variant but `Unrecognized`), as `rename_all` names
/// them; a test checks each against the derived serialization.
const BODY_VARIANTS: &[&str] = &[
    "settings_may_be_stale",
    "dialed_number_unusable",
    "number_not_provisioned",
    "number_released",
    "number_provisioned",
    "caller_blocked",
    "anonymous_caller",
    "company_open",
    "company_closed",
    "after_hours_final_action",
    "after_hours_forward_only",
    "number_prefers_owner",
    "lead_named",
    "named_lead_deleted",
    "named_lead_unknown",
    "caller_withheld",
    "caller_unusable",
    "caller_unknown",
    "caller_is_lead",
    "caller_matches_leads",
    "no_lead",
    "lead_unassigned",
    "user_unknown",
    "user_deactivated",
    "user_unavailable",
    "user_has_no_phone",
    "user_outside_working_hours",
    "returning_caller",
    "not_returning_caller",
    "ring_group",
    "group_member",
    "ring_group_empty",
    "screening_on",
    "user_eligible",
    "target",
    "phone_unusable",
    "dialed_number_skipped",
    "already_in_chain",
    "no_forwarding_number",
    "no_company_phone",
    "no_target_left",
];

/// The rest of a reason object (after its code) presented as the externally tagged enum
/// `{"<code>": {…the rest…}}`, so that [`ReasonDef`]'s derived code reads the variant's
/// fields straight from the object.
struct Body<A> {
    name: &'static str,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Body<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Body<A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), A::Error> {
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.name))?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Body<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        match self.map.next_key::<IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(not_canonical("fields in a reason that has none")),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, A::Error> {
        seed.deserialize(de::value::MapAccessDeserializer::new(self.map))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(not_canonical("a tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
    }
}

// `Reason` variant by variant, with the attributes of `reasons.rs` (serde's `remote`: the
// compiler checks each variant's fields are `Reason`'s), externally tagged (the code is read
// by `FastReasonVisitor`) and refusing unknown fields, as the types inside it do: a field the
// derived decoding would skip is left to it. `Unrecognized` is `FastReasonVisitor`'s.
#[derive(Deserialize)]
#[serde(remote = "Reason", rename_all = "snake_case", deny_unknown_fields)]
enum ReasonDef {
    SettingsMayBeStale {
        #[serde(deserialize_with = "u64_lenient")]
        settings_seq: u64,
        #[serde(default, deserialize_with = "u64_lenient_opt")]
        required_seq: Option<u64>,
    },
    DialedNumberUnusable {
        masked: String,
        #[serde(deserialize_with = "PhoneErrorDef::deserialize")]
        error: PhoneError,
    },
    NumberNotProvisioned {
        number: E164,
    },
    NumberReleased {
        number: E164,
    },
    NumberProvisioned {
        number: E164,
    },
    CallerBlocked {
        number: E164,
        entry: String,
        action: BlockedAction,
    },
    AnonymousCaller {
        action: AnonymousCallers,
    },
    CompanyOpen {
        #[serde(deserialize_with = "HoursAtDef::deserialize")]
        hours: HoursAt,
    },
    CompanyClosed {
        #[serde(deserialize_with = "HoursAtDef::deserialize")]
        hours: HoursAt,
    },
    AfterHoursFinalAction,
    AfterHoursForwardOnly {
        number: E164,
    },
    NumberPrefersOwner {
        user_id: EntityId,
    },
    LeadNamed {
        contact_id: EntityId,
    },
    NamedLeadDeleted {
        contact_id: EntityId,
    },
    NamedLeadUnknown {
        contact_id: EntityId,
    },
    CallerWithheld,
    CallerUnusable {
        masked: String,
        #[serde(deserialize_with = "PhoneErrorDef::deserialize")]
        error: PhoneError,
    },
    CallerUnknown {
        number: E164,
    },
    CallerIsLead {
        number: E164,
        contact_id: EntityId,
    },
    CallerMatchesLeads {
        number: E164,
        #[serde(default)]
        contact_ids: Vec<EntityId>,
        chosen: EntityId,
        owner_reachable: bool,
    },
    NoLead {
        next: Rule,
    },
    LeadUnassigned {
        contact_id: EntityId,
        next: Rule,
    },
    UserUnknown(#[serde(deserialize_with = "UserSkippedDef::deserialize")] UserSkipped),
    UserDeactivated(#[serde(deserialize_with = "UserSkippedDef::deserialize")] UserSkipped),
    UserUnavailable(#[serde(deserialize_with = "UserSkippedDef::deserialize")] UserSkipped),
    UserHasNoPhone(#[serde(deserialize_with = "UserSkippedDef::deserialize")] UserSkipped),
    UserOutsideWorkingHours(#[serde(deserialize_with = "UserSkippedDef::deserialize")] UserSkipped),
    ReturningCaller {
        number: E164,
        user_id: EntityId,
        answered_at: CompactString,
        #[serde(deserialize_with = "u32_lenient")]
        days: u32,
    },
    NotReturningCaller {
        #[serde(deserialize_with = "u32_lenient")]
        days: u32,
        next: Rule,
    },
    RingGroup {
        mode: RingMode,
        #[serde(default)]
        user_ids: Vec<EntityId>,
    },
    GroupMember(#[serde(deserialize_with = "OfferDef::deserialize")] Offer),
    RingGroupEmpty,
    ScreeningOn,
    UserEligible {
        rule: Rule,
        user_id: EntityId,
        #[serde(default)]
        contact_id: Option<EntityId>,
        #[serde(default, deserialize_with = "opt_hours")]
        hours: Option<HoursAt>,
    },
    Target,
    PhoneUnusable {
        rule: Rule,
        #[serde(default)]
        user_id: Option<EntityId>,
        #[serde(deserialize_with = "PhoneErrorDef::deserialize")]
        error: PhoneError,
    },
    DialedNumberSkipped(#[serde(deserialize_with = "OfferDef::deserialize")] Offer),
    AlreadyInChain {
        rule: Rule,
        #[serde(default)]
        user_id: Option<EntityId>,
        number: E164,
        earlier_rule: Rule,
    },
    NoForwardingNumber {
        number: E164,
    },
    NoCompanyPhone,
    NoTargetLeft,
}

// The types inside reasons, refusing unknown fields (their derived decoding skips them).

#[derive(Deserialize)]
#[serde(remote = "UserSkipped", deny_unknown_fields)]
struct UserSkippedDef {
    rule: Rule,
    user_id: EntityId,
    #[serde(default)]
    contact_id: Option<EntityId>,
    next: Rule,
    #[serde(default, deserialize_with = "opt_hours")]
    hours: Option<HoursAt>,
}

#[derive(Deserialize)]
#[serde(remote = "Offer", deny_unknown_fields)]
struct OfferDef {
    rule: Rule,
    #[serde(default)]
    user_id: Option<EntityId>,
    number: E164,
}

#[derive(Deserialize)]
#[serde(remote = "HoursAt", deny_unknown_fields)]
struct HoursAtDef {
    time_zone: CompactString,
    date: CompactString,
    weekday: CompactString,
    time: CompactString,
    #[serde(default, deserialize_with = "crate::reasons::intervals::deserialize")]
    hours: Arc<[HoursInterval]>,
    #[serde(rename = "override", default)]
    overridden: bool,
}

#[derive(Deserialize)]
#[serde(
    remote = "PhoneError",
    tag = "problem",
    content = "detail",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum PhoneErrorDef {
    Withheld,
    Unparseable(String),
    Invalid,
}

/// `Option<HoursAt>` through [`HoursAtDef`].
fn opt_hours<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HoursAt>, D::Error> {
    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Hours(#[serde(deserialize_with = "HoursAtDef::deserialize")] HoursAt);
    Option::<Hours>::deserialize(d).map(|h| h.map(|h| h.0))
}

#[cfg(test)]
mod tests;
