//! Resident memory of the in-memory index per contact (target: 1M contacts under 300 MB),
//! and single-core decision rate over it.

use crate::fixtures;
use std::time::Instant;
use switchboard_projections::{Projection, Record};
use switchboard_routing::decide;

#[derive(Debug, Clone, serde::Serialize)]
pub struct MemoryResult {
    pub contacts: u64,
    pub rss_bytes: u64,
    pub bytes_per_contact: f64,
    pub build_seconds: f64,
    pub decisions_per_second_one_core: f64,
}

/// Resident set size of this process, from /proc.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn run(contacts: u64) -> MemoryResult {
    let users = (contacts / 100).max(1);
    // The phone-number metadata is loaded once per process, on the first number parsed (the
    // router loads it for its first webhook anyway): it is no part of the index, so it is
    // loaded before the baseline instead of being charged to the contacts (about 7 MB, i.e.
    // 7 B/contact at 1M).
    let _ = switchboard_contracts::E164::parse_strict(&fixtures::phone(0));
    let before = rss_bytes();
    let started = Instant::now();
    let mut projection = Projection::new();
    for (seq, change) in fixtures::tenant_settings(users, contacts).enumerate() {
        projection.apply(&Record {
            seq: seq as u64 + 1,
            change: Some(change),
        });
    }
    let build_seconds = started.elapsed().as_secs_f64();
    let rss = rss_bytes().saturating_sub(before);

    let state = projection
        .tenant(&fixtures::tenant())
        .expect("the bench tenant exists");
    let n = 200_000u64;
    let started = Instant::now();
    let mut routed = 0u64;
    for i in 0..n {
        let call = fixtures::call(i, contacts);
        if decide(&call, state).target.is_some() {
            routed += 1;
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "  {contacts} contacts: {:.1} MB resident ({:.0} B/contact), built in {build_seconds:.1} s; \
         {rate:.0} decisions/s on one core ({routed} routed)",
        rss as f64 / 1e6,
        rss as f64 / contacts as f64
    );
    MemoryResult {
        contacts,
        rss_bytes: rss,
        bytes_per_contact: rss as f64 / contacts as f64,
        build_seconds,
        decisions_per_second_one_core: rate,
    }
}
