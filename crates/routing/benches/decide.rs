//! The routing core under criterion: `decide` over one tenant's `TenantState` with 10k, 100k
//! and 1M contacts, for a known caller and an unknown one. The cost should stay flat as the
//! tenant grows. Run with `cargo bench -p switchboard-routing`; `make bench` reports the same
//! cases from its own timing loop (switchboard-bench `--only core`).
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::expect_used)] // fixtures built from constants; a failure is a bug in the bench

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard_contracts::{
    CallInbound, CompanySettings, ContactSettings, E164, EntityId, NumberSettings, SettingsChange,
    TenantId, UserSettings,
};
use switchboard_routing::{TenantState, decide};
use time::OffsetDateTime;

const DIALED: &str = "+16502530000";
const SAMPLE: u64 = 4_096;

fn tenant() -> TenantId {
    TenantId::new("bench").expect("valid tenant")
}

fn id(prefix: &str, i: u64) -> EntityId {
    EntityId::parse("id", format!("{prefix}{i}")).expect("valid id")
}

fn phone(i: u64) -> String {
    format!("+1415{:07}", 2_000_000 + i)
}

/// The bench tenant of switchboard-bench's fixtures, built with the routing crate's own API.
fn state(contacts: u64) -> TenantState {
    let t = tenant();
    let users = (contacts / 100).max(1);
    let mut s = TenantState::new(t.clone());
    let mut apply = |c: SettingsChange| {
        s.apply(&c).expect("fixture settings apply");
    };
    apply(SettingsChange::Company(CompanySettings {
        tenant_id: t.clone(),
        version: 1,
        company_phone: Some("+16172531234".into()),
        default_region: None,
        final_action: None,
        time_zone: None,
        business_hours: None,
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days: 0,
        blocked_callers: Vec::new(),
        blocked_action: None,
        anonymous_callers: None,
        screening: None,
    }));
    apply(SettingsChange::Number(NumberSettings {
        tenant_id: t.clone(),
        version: 1,
        number: E164::parse_strict(DIALED).expect("valid number"),
        forwarding_number: Some("+13127654321".into()),
        released: false,
        user_id: None,
        prefer: Default::default(),
        ring_timeout_secs: None,
        ring_group: None,
    }));
    for u in 0..users {
        apply(SettingsChange::User(UserSettings {
            tenant_id: t.clone(),
            version: 1,
            user_id: id("u", u),
            phone: (u % 10 != 0).then(|| format!("+1206{:07}", 2_000_000 + u)),
            active: u % 20 != 0,
            available: true,
            working_hours: None,
            ring_only_in_working_hours: false,
        }));
    }
    for c in 0..contacts {
        apply(SettingsChange::Contact(ContactSettings {
            tenant_id: t.clone(),
            version: 1,
            contact_id: id("c", c),
            phones: vec![phone(c)],
            assigned_user_id: (c % 4 != 0).then(|| id("u", c % users)),
            deleted: false,
        }));
    }
    s
}

fn call(from: String) -> CallInbound {
    CallInbound {
        call_id: "CAbench".into(),
        tenant_id: tenant(),
        to: DIALED.into(),
        from,
        received_at: OffsetDateTime::UNIX_EPOCH,
        contact_id: None,
    }
}

/// Tenant sizes measured. `cargo bench` passes `--bench`; without it (`make test` runs every
/// target once, as a smoke test) only the smallest is built: building 1M contacts in a debug
/// build took a minute or more for each case nextest ran.
fn sizes() -> &'static [u64] {
    if std::env::args().any(|a| a == "--bench") {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[10_000]
    }
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(SAMPLE));
    for &contacts in sizes() {
        let state = state(contacts);
        // Known callers spread over the whole index; unknown ones just past the last contact.
        let known: Vec<CallInbound> = (0..SAMPLE)
            .map(|j| call(phone(j.wrapping_mul(2_654_435_761) % contacts)))
            .collect();
        let unknown: Vec<CallInbound> = (0..SAMPLE).map(|j| call(phone(contacts + j))).collect();
        for (name, calls) in [("known", &known), ("unknown", &unknown)] {
            group.bench_with_input(BenchmarkId::new(name, contacts), calls, |b, calls| {
                b.iter(|| {
                    for call in calls {
                        black_box(decide(black_box(call), &state));
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
