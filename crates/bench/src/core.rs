//! The routing core alone: `switchboard_routing::decide` over one tenant's in-memory
//! `TenantState` with 10k, 100k and 1M contacts, for a known caller (a contact's phone) and an
//! unknown one, on one thread, with the routing policy v2 on (business hours, working hours on
//! every user, returning callers for 30 days, a 10,000-entry block list). The cost should stay
//! flat as the tenant grows (hash lookups).
//! Developers get the same measurement with statistics from criterion:
//! `cargo bench -p switchboard-routing`.

use crate::fixtures;
use std::hint::black_box;
use std::time::Instant;
use switchboard_contracts::{CallDial, DialEventKind, E164, EntityId, Rule, Target};
use switchboard_contracts::{CallInbound, Envelope};
use switchboard_routing::{AnswerBook, TenantState, decide, decide_with};
use time::OffsetDateTime;

/// Distinct callers cycled through per case: spread over the whole index, so larger tenants
/// pay their cache misses. The timed loop builds each call afresh from its caller's index (see
/// [`fresh_call`]), as a router decodes a call just before deciding it.
const SAMPLE_CALLS: u64 = 4_096;
/// Timed batches per case; the median is reported.
const BATCHES: usize = 7;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreResult {
    pub sample_calls: u64,
    pub batches: usize,
    pub runs: Vec<CoreRun>,
    pub wire: WireSize,
}

/// The `call.route` event's size on the wire (the CloudEvents JSON body), mean over the
/// known-caller sample of the smallest tenant: as published (`switchboard.call.route.v2`,
/// reasons as data) and as the same decisions were published before structured reasons
/// (`switchboard.call.route.v1`, the same reasoning as English prose).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WireSize {
    pub v2_bytes: f64,
    pub v1_bytes: f64,
}

fn wire_size(state: &TenantState, calls: &[CallInbound]) -> WireSize {
    let (mut v2, mut v1) = (0usize, 0usize);
    for c in calls {
        let route = decide(c, state).into_route(c, 1, OffsetDateTime::UNIX_EPOCH);
        let mut old = Envelope::new(
            route.to_v1(),
            "/switchboard/router",
            OffsetDateTime::UNIX_EPOCH,
        );
        old.event_type = "switchboard.call.route.v1".into();
        let new = Envelope::new(route, "/switchboard/router", OffsetDateTime::UNIX_EPOCH);
        v2 += new.to_json().expect("encodes").len();
        v1 += old.to_json().expect("encodes").len();
    }
    let n = calls.len().max(1) as f64;
    WireSize {
        v2_bytes: v2 as f64 / n,
        v1_bytes: v1 as f64 / n,
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreRun {
    pub contacts: u64,
    pub known_ns_per_decision: f64,
    pub unknown_ns_per_decision: f64,
    pub known_decisions_per_second: f64,
    pub unknown_decisions_per_second: f64,
}

/// The call from caller `i` (`fixtures::phone(i)`) as a router has it just after decoding
/// `call.inbound`: its strings freshly allocated and written, so the call is in the cache (a
/// pre-built sample of calls falls out of it at 1M contacts, which a router does not pay). The
/// caller is written digit by digit, about what a decoder's copy of it costs; the rest of the
/// decoding (JSON, the RFC 3339 time) is the router's, not the core's, and is not timed here.
// Not inlined, so a profile of the timed loop shows it apart from the decision.
#[inline(never)]
fn fresh_call(i: u64) -> CallInbound {
    let mut from = String::with_capacity(12);
    from.push_str("+1415");
    let mut digits = [b'0'; 7];
    let mut n = 2_000_000 + i;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    from.extend(digits.iter().map(|&d| char::from(d)));
    call(from)
}

fn call(from: String) -> CallInbound {
    CallInbound {
        call_id: "CAbench".into(),
        tenant_id: fixtures::tenant(),
        to: fixtures::DIALED.into(),
        from,
        received_at: OffsetDateTime::UNIX_EPOCH,
        contact_id: None,
    }
}

/// An answered history for every other sampled caller (answered by a user of the tenant), so
/// half the calls that reach the returning-caller step find someone.
fn history(calls: &[CallInbound], users: u64) -> AnswerBook {
    let mut book = AnswerBook::new();
    for (seq, (j, c)) in (1u64..).zip(calls.iter().enumerate().step_by(2)) {
        let Ok(caller) = E164::parse_strict(&c.from) else {
            continue;
        };
        let user = EntityId::parse("id", format!("u{}", j as u64 % users)).expect("valid id");
        let target = Target::single(caller.clone(), Some(user), Rule::AssignedUser, Some(20));
        book.apply(
            seq,
            &CallDial {
                call_id: format!("CA{seq}"),
                tenant_id: fixtures::tenant(),
                step: 0,
                kind: DialEventKind::Answered,
                target: Some(target),
                reason: None,
                carrier_sid: None,
                outcome_unknown: false,
                acted_by: None,
                caller: Some(caller),
                at: OffsetDateTime::UNIX_EPOCH,
            },
        );
    }
    book
}

/// Median nanoseconds per decision over `BATCHES` batches of about 0.2 s each, each call built
/// afresh from its caller's index just before it is decided ([`fresh_call`]), and dropped after.
fn ns_per_decision(state: &TenantState, callers: &[u64], book: &AnswerBook) -> f64 {
    let answers = book.tenant(&fixtures::tenant());
    let pass = || {
        for &i in callers {
            let c = fresh_call(black_box(i));
            black_box(decide_with(black_box(&c), state, answers));
        }
    };
    pass();
    // Size the batches from one timed pass.
    let started = Instant::now();
    pass();
    let once = started.elapsed().as_secs_f64().max(1e-6);
    let passes = ((0.2 / once).ceil() as usize).max(1);
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..passes {
                pass();
            }
            started.elapsed().as_secs_f64() * 1e9 / (passes * callers.len()) as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[BATCHES / 2]
}

pub fn run(sizes: &[u64]) -> CoreResult {
    let mut runs = Vec::new();
    let mut wire = None;
    for &contacts in sizes {
        let mut state = TenantState::new(fixtures::tenant());
        for change in fixtures::tenant_settings((contacts / 100).max(1), contacts) {
            state.apply(&change).expect("fixture settings apply");
        }
        // Known: contacts spread over the index (a multiplicative hash of j); unknown: valid
        // numbers just past the last contact's.
        let known_callers: Vec<u64> = (0..SAMPLE_CALLS)
            .map(|j| j.wrapping_mul(2_654_435_761) % contacts)
            .collect();
        let unknown_callers: Vec<u64> = (0..SAMPLE_CALLS).map(|j| contacts + j).collect();
        let known: Vec<CallInbound> = known_callers.iter().map(|&i| fresh_call(i)).collect();
        let unknown: Vec<CallInbound> = unknown_callers.iter().map(|&i| fresh_call(i)).collect();
        let wire = wire.get_or_insert_with(|| {
            let w = wire_size(&state, &known);
            println!(
                "  call.route on the wire: {:.0} bytes (v2, reasons) vs {:.0} bytes (v1, prose)",
                w.v2_bytes, w.v1_bytes
            );
            w
        });
        let _ = wire;
        let users = (contacts / 100).max(1);
        let (known_book, unknown_book) = (history(&known, users), history(&unknown, users));
        drop((known, unknown));
        let known_ns = ns_per_decision(&state, &known_callers, &known_book);
        let unknown_ns = ns_per_decision(&state, &unknown_callers, &unknown_book);
        println!(
            "  {contacts} contacts: known caller {known_ns:.0} ns/decision ({:.0}/s), \
             unknown caller {unknown_ns:.0} ns/decision ({:.0}/s)",
            1e9 / known_ns,
            1e9 / unknown_ns
        );
        runs.push(CoreRun {
            contacts,
            known_ns_per_decision: known_ns,
            unknown_ns_per_decision: unknown_ns,
            known_decisions_per_second: 1e9 / known_ns,
            unknown_decisions_per_second: 1e9 / unknown_ns,
        });
    }
    CoreResult {
        sample_calls: SAMPLE_CALLS,
        batches: BATCHES,
        runs,
        wire: wire.unwrap_or(WireSize {
            v2_bytes: 0.0,
            v1_bytes: 0.0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_calls_are_the_fixture_callers() {
        for i in [0u64, 1, 9, 4_095, 10_000, 999_999, 1_004_095] {
            let c = fresh_call(i);
            assert_eq!(c.from, fixtures::phone(i));
            assert_eq!(c.from.capacity(), c.from.len());
        }
    }
}
