//! The routing core alone: `switchboard_routing::decide` over one tenant's in-memory
//! `TenantState` with 10k, 100k and 1M contacts, for a known caller (a contact's phone) and an
//! unknown one, on one thread. The cost should stay flat as the tenant grows (hash lookups).
//! Developers get the same measurement with statistics from criterion:
//! `cargo bench -p switchboard-routing`.

use crate::fixtures;
use std::hint::black_box;
use std::time::Instant;
use switchboard_contracts::CallInbound;
use switchboard_routing::{TenantState, decide};
use time::OffsetDateTime;

/// Distinct calls cycled through per case: callers spread over the whole index, so larger
/// tenants pay their cache misses.
const SAMPLE_CALLS: u64 = 4_096;
/// Timed batches per case; the median is reported.
const BATCHES: usize = 7;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreResult {
    pub sample_calls: u64,
    pub batches: usize,
    pub runs: Vec<CoreRun>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreRun {
    pub contacts: u64,
    pub known_ns_per_decision: f64,
    pub unknown_ns_per_decision: f64,
    pub known_decisions_per_second: f64,
    pub unknown_decisions_per_second: f64,
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

/// Median nanoseconds per decision over `BATCHES` batches of about 0.2 s each.
fn ns_per_decision(state: &TenantState, calls: &[CallInbound]) -> f64 {
    for c in calls {
        black_box(decide(black_box(c), state));
    }
    // Size the batches from one timed pass.
    let started = Instant::now();
    for c in calls {
        black_box(decide(black_box(c), state));
    }
    let pass = started.elapsed().as_secs_f64().max(1e-6);
    let passes = ((0.2 / pass).ceil() as usize).max(1);
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..passes {
                for c in calls {
                    black_box(decide(black_box(c), state));
                }
            }
            started.elapsed().as_secs_f64() * 1e9 / (passes * calls.len()) as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[BATCHES / 2]
}

pub fn run(sizes: &[u64]) -> CoreResult {
    let mut runs = Vec::new();
    for &contacts in sizes {
        let mut state = TenantState::new(fixtures::tenant());
        for change in fixtures::tenant_settings((contacts / 100).max(1), contacts) {
            state.apply(&change).expect("fixture settings apply");
        }
        // Known: contacts spread over the index (a multiplicative hash of j); unknown: valid
        // numbers just past the last contact's.
        let known: Vec<CallInbound> = (0..SAMPLE_CALLS)
            .map(|j| call(fixtures::phone(j.wrapping_mul(2_654_435_761) % contacts)))
            .collect();
        let unknown: Vec<CallInbound> = (0..SAMPLE_CALLS)
            .map(|j| call(fixtures::phone(contacts + j)))
            .collect();
        let known_ns = ns_per_decision(&state, &known);
        let unknown_ns = ns_per_decision(&state, &unknown);
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
    }
}
