//! The dial chain's state machine on its own: a table of transitions, and a simulation of
//! deliveries, a carrier and crashes at every step, run under random interleavings.

// The helpers here are test code too (clippy.toml allows these lints only inside `#[test]`
// functions): a failed assumption is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod missed;
mod simulate;
mod table;

use switchboard_chain::{Clock, Holder};
use switchboard_contracts::{
    CallRoute, CallStatus, DialCallStatus, E164, FinalAction, Rule, Target, TenantId,
};
use time::OffsetDateTime;

pub(crate) const USER: &str = "+14155550101";
pub(crate) const FORWARDING: &str = "+14155550102";
pub(crate) const COMPANY: &str = "+14155550103";

pub(crate) fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-12-04 12:00 UTC)
}

pub(crate) fn clock(secs: i64) -> Clock {
    Clock {
        now: t0() + time::Duration::seconds(secs),
        stale_after: std::time::Duration::from_secs(30),
    }
}

pub(crate) fn target(number: &str, rule: Rule) -> Target {
    Target {
        number: E164::parse_strict(number).unwrap(),
        user_id: None,
        rule,
        ring_timeout_secs: None,
        group: Vec::new(),
        screen: false,
    }
}

/// A decision with three targets, or none (`no_route`).
pub(crate) fn decision(targets: usize) -> CallRoute {
    let all = [
        target(USER, Rule::AssignedUser),
        target(FORWARDING, Rule::ForwardingNumber),
        target(COMPANY, Rule::CompanyPhone),
    ];
    let mut chain = all.into_iter().take(targets);
    CallRoute {
        call_id: "CA1".into(),
        tenant_id: TenantId::new("acme").unwrap(),
        rule: if targets == 0 {
            Rule::NoRoute
        } else {
            Rule::AssignedUser
        },
        target: chain.next(),
        fallbacks: chain.collect(),
        final_action: FinalAction::default(),
        reasons: Vec::new(),
        explanation: vec![],
        settings_seq: 1,
        calls_seq: 0,
        caller: None,
        decided_at: t0(),
    }
}

pub(crate) fn status(step: u32, s: DialCallStatus) -> CallStatus {
    CallStatus {
        call_id: "CA1".into(),
        tenant_id: TenantId::new("acme").unwrap(),
        step,
        dial_call_status: s,
        dial_call_sid: Some(format!("DC{step}")),
        dial_call_duration: None,
        received_at: t0(),
    }
}

pub(crate) fn holder(consumer: &str, stream_seq: u64, delivered: i64) -> Holder {
    Holder {
        consumer: consumer.into(),
        stream_seq,
        delivered,
    }
}

pub(crate) fn refused(reason: &str) -> switchboard_chain::Failure {
    switchboard_chain::Failure {
        reason: reason.into(),
        outcome_unknown: false,
        call_ended: false,
    }
}

/// The carrier's refusal of a call that is no longer in progress (Twilio 21220).
pub(crate) fn ended() -> switchboard_chain::Failure {
    switchboard_chain::Failure {
        reason: "Twilio HTTP 400 (code 21220): Call is not in-progress. Cannot redirect.".into(),
        outcome_unknown: false,
        call_ended: true,
    }
}
