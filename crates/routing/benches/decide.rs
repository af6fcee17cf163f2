//! The routing core under criterion: `decide_with` over one tenant's `TenantState` with 10k,
//! 100k and 1M contacts, for a known caller and an unknown one, with the routing policy v2 on
//! (business hours, working hours on every user, returning callers for 30 days with every
//! other sampled caller answered before, a 10,000-entry block list). The cost should stay
//! flat as the tenant grows. Run with `cargo bench -p switchboard-routing`; `make bench`
//! reports the same cases from its own timing loop (switchboard-bench `--only core`).
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(clippy::expect_used)] // fixtures built from constants; a failure is a bug in the bench

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchboard_contracts::schedule::Schedule;
use switchboard_contracts::{
    CallDial, CallInbound, CompanySettings, ContactSettings, DialEventKind, E164, EntityId,
    NumberSettings, Rule, SettingsChange, Target, TenantId, UserSettings,
};
use switchboard_routing::{AnswerBook, TenantState, decide_with};
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

/// Open around the clock, every day: always checked, never closed.
fn all_week() -> Schedule {
    serde_json::from_value(serde_json::json!({
        "weekly": {
            "mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]],
            "wed": [["00:00", "24:00"]], "thu": [["00:00", "24:00"]],
            "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]],
            "sun": [["00:00", "24:00"]]
        }
    }))
    .expect("valid schedule")
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
        time_zone: Some("America/Chicago".into()),
        business_hours: Some(all_week()),
        after_hours: None,
        ring_timeout_secs: None,
        returning_caller_days: 30,
        // Premium-rate numbers: no caller of the mix is blocked, every call is checked.
        blocked_callers: (0..10_000u64)
            .map(|i| format!("+1900{:07}", 2_000_000 + i))
            .collect(),
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
            working_hours: Some(all_week()),
            ring_only_in_working_hours: true,
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

/// An answered call for every other sampled caller, by a user of the tenant.
fn history(calls: &[CallInbound], users: u64) -> AnswerBook {
    let mut book = AnswerBook::new();
    for (seq, (j, c)) in (1u64..).zip(calls.iter().enumerate().step_by(2)) {
        let caller = E164::parse_strict(&c.from).expect("valid caller");
        let user = id("u", j as u64 % users);
        let target = Target::single(caller.clone(), Some(user), Rule::AssignedUser, Some(20));
        book.apply(
            seq,
            &CallDial {
                call_id: format!("CA{seq}"),
                tenant_id: tenant(),
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
        let users = (contacts / 100).max(1);
        for (name, calls) in [("known", &known), ("unknown", &unknown)] {
            let book = history(calls, users);
            let answers = book.tenant(&tenant());
            group.bench_with_input(BenchmarkId::new(name, contacts), calls, |b, calls| {
                b.iter(|| {
                    for call in calls {
                        black_box(decide_with(black_box(call), &state, answers));
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
