//! The store on SQLite and PostgreSQL: version guard, exactly-once positions, reopening, tenant
//! isolation.

use crate::support::*;
use switchboard_contracts::{CallInbound, Rule, SettingsChange};
use switchboard_projections::{Projection, Store};
use switchboard_routing::SettingsView;

const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const USER_PHONE: &str = "+12064561234";
const OTHER_PHONE: &str = "+13127654321";
const FORWARDING: &str = "+16172531234";

async fn user_phone(store: &Store, t: &str, user_id: &str) -> Option<String> {
    let projection = store.load().await.unwrap();
    let state = projection.tenant(&tenant(t))?;
    let user = state.user(&id(user_id))?;
    match user.phone? {
        switchboard_routing::SettingPhone::Valid(n) => Some(n.as_str().to_owned()),
        switchboard_routing::SettingPhone::Invalid(e) => Some(format!("invalid: {e}")),
    }
}

async fn version_of(store: &Store, t: &str, entity: &str, key: &str) -> Option<u64> {
    let projection = store.load().await.unwrap();
    projection.tenant(&tenant(t))?.version_of(entity, key)
}

#[tokio::test]
async fn older_and_equal_versions_never_overwrite() {
    on_both(|url| async move {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.position().await.unwrap(), 0);
        assert_eq!(store.load().await.unwrap().applied_seq(), 0);

        let v2 = user("acme", "u1", 2, Some(USER_PHONE));
        assert_eq!(store.apply_batch(&[record(1, v2)]).await.unwrap(), 1);
        let v1 = user("acme", "u1", 1, Some(OTHER_PHONE));
        assert_eq!(store.apply_batch(&[record(2, v1)]).await.unwrap(), 2);
        assert_eq!(version_of(&store, "acme", "user", "u1").await, Some(2));
        assert_eq!(
            user_phone(&store, "acme", "u1").await.as_deref(),
            Some(USER_PHONE)
        );

        let equal = user("acme", "u1", 2, Some(OTHER_PHONE));
        assert_eq!(store.apply_batch(&[record(3, equal)]).await.unwrap(), 3);
        assert_eq!(
            user_phone(&store, "acme", "u1").await.as_deref(),
            Some(USER_PHONE)
        );

        // Within one batch too: the newest version wins, and of equal ones the first.
        let batch = [
            record(4, user("acme", "u2", 3, Some(OTHER_PHONE))),
            record(5, user("acme", "u2", 5, Some(USER_PHONE))),
            record(6, user("acme", "u2", 4, Some(CALLER))),
            record(7, user("acme", "u2", 5, Some(CALLER))),
        ];
        assert_eq!(store.apply_batch(&batch).await.unwrap(), 7);
        assert_eq!(version_of(&store, "acme", "user", "u2").await, Some(5));
        assert_eq!(
            user_phone(&store, "acme", "u2").await.as_deref(),
            Some(USER_PHONE)
        );

        // Records without a change only move the position.
        assert_eq!(
            store.apply_batch(&[skipped(8), skipped(9)]).await.unwrap(),
            9
        );
        assert_eq!(store.position().await.unwrap(), 9);
        assert_eq!(store.load().await.unwrap().applied_seq(), 9);
    })
    .await;
}

#[tokio::test]
async fn batches_apply_exactly_once_by_stream_sequence() {
    on_both(|url| async move {
        let store = Store::open(&url).await.unwrap();
        let batch = [
            record(1, user("acme", "u1", 1, Some(USER_PHONE))),
            record(2, contact("acme", "c1", 1, &[CALLER], Some("u1"))),
            skipped(3),
        ];
        assert_eq!(store.apply_batch(&batch).await.unwrap(), 3);
        let before = store.load().await.unwrap();
        let everything: Vec<SettingsChange> =
            batch.iter().filter_map(|r| r.change.clone()).collect();

        // Redelivered: nothing changes, the position stays.
        assert_eq!(store.apply_batch(&batch).await.unwrap(), 3);
        assert_eq!(store.position().await.unwrap(), 3);
        assert_eq!(
            dump(&store.load().await.unwrap(), &everything),
            dump(&before, &everything)
        );

        // At or below the position, a record is skipped even if its version would win: the
        // position, not the version guard, makes redelivery a no-op.
        let replayed = [record(2, user("acme", "u9", 1, Some(OTHER_PHONE)))];
        assert_eq!(store.apply_batch(&replayed).await.unwrap(), 3);
        assert_eq!(version_of(&store, "acme", "user", "u9").await, None);

        // Overlapping the position: only the new part applies.
        let overlap = [
            record(2, user("acme", "u8", 1, Some(OTHER_PHONE))),
            record(3, user("acme", "u1", 7, Some(OTHER_PHONE))),
            record(4, user("acme", "u7", 1, Some(OTHER_PHONE))),
            record(5, user("acme", "u1", 2, Some(CALLER))),
        ];
        assert_eq!(store.apply_batch(&overlap).await.unwrap(), 5);
        assert_eq!(version_of(&store, "acme", "user", "u8").await, None);
        assert_eq!(version_of(&store, "acme", "user", "u7").await, Some(1));
        assert_eq!(version_of(&store, "acme", "user", "u1").await, Some(2));
        assert_eq!(
            user_phone(&store, "acme", "u1").await.as_deref(),
            Some(CALLER)
        );
        assert_eq!(store.apply_batch(&[]).await.unwrap(), 5);
    })
    .await;
}

#[tokio::test]
async fn a_reopened_store_decides_the_same() {
    on_both(|url| async move {
        let records = [
            record(1, company("acme", 1, Some("(617) 253-1234"), None)),
            record(2, number("acme", DIALED, 1, Some(FORWARDING))),
            record(3, user("acme", "u1", 1, Some(USER_PHONE))),
            record(4, user("acme", "u2", 1, Some("not a number"))),
            record(5, contact("acme", "c1", 1, &["(415) 867-5310"], Some("u1"))),
            record(6, contact("acme", "c2", 1, &[OTHER_PHONE], Some("u2"))),
            skipped(7),
            record(8, company("acme", 2, Some("+16172531235"), Some("US"))),
        ];
        let changes: Vec<SettingsChange> =
            records.iter().filter_map(|r| r.change.clone()).collect();
        let mut in_memory = Projection::new();
        for r in &records {
            in_memory.apply(r);
        }
        {
            let store = Store::open(&url).await.unwrap();
            store.apply_batch(&records[..3]).await.unwrap();
            store.apply_batch(&records[3..]).await.unwrap();
        }
        let reopened = Store::open(&url).await.unwrap();
        assert_eq!(reopened.position().await.unwrap(), 8);
        let loaded = reopened.load().await.unwrap();
        assert_eq!(loaded.applied_seq(), 8);
        assert_eq!(loaded.contact_count(), 2);
        assert_eq!(dump(&loaded, &changes), dump(&in_memory, &changes));

        let calls = [
            call("acme", DIALED, CALLER),
            call("acme", DIALED, OTHER_PHONE),
            call("acme", DIALED, "anonymous"),
            call("acme", "+16502539999", CALLER),
        ];
        for c in &calls {
            assert_eq!(decide_in(&loaded, c), decide_in(&in_memory, c));
        }
        let first = decide_in(&loaded, &calls[0]).unwrap();
        assert_eq!(first.rule, Rule::AssignedUser);
        assert_eq!(first.target.unwrap().number.as_str(), USER_PHONE);
        assert_eq!(
            decide_in(&loaded, &calls[1]).unwrap().rule,
            Rule::ForwardingNumber
        );
    })
    .await;
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    on_both(|url| async move {
        let store = Store::open(&url).await.unwrap();
        // Same number, same ids, different settings; globex's versions are lower.
        let records = [
            record(1, number("acme", DIALED, 5, None)),
            record(2, user("acme", "u1", 5, Some(USER_PHONE))),
            record(3, contact("acme", "c1", 5, &[CALLER], Some("u1"))),
            record(4, number("globex", DIALED, 1, Some(FORWARDING))),
            record(5, user("globex", "u1", 1, Some(OTHER_PHONE))),
            record(6, contact("globex", "c1", 1, &[CALLER], None)),
        ];
        store.apply_batch(&records).await.unwrap();
        let p = Store::open(&url).await.unwrap().load().await.unwrap();
        assert_eq!(p.contact_count(), 2);
        for (t, version) in [("acme", 5), ("globex", 1)] {
            let state = p.tenant(&tenant(t)).unwrap();
            assert_eq!(state.version_of("user", "u1"), Some(version));
            assert_eq!(state.version_of("contact", "c1"), Some(version));
        }
        assert_eq!(
            user_phone(&store, "acme", "u1").await.as_deref(),
            Some(USER_PHONE)
        );
        assert_eq!(
            user_phone(&store, "globex", "u1").await.as_deref(),
            Some(OTHER_PHONE)
        );

        let acme = decide_in(&p, &call("acme", DIALED, CALLER)).unwrap();
        assert_eq!(acme.target.unwrap().number.as_str(), USER_PHONE);
        let globex = decide_in(&p, &call("globex", DIALED, CALLER)).unwrap();
        assert_eq!(globex.rule, Rule::ForwardingNumber);
        assert_eq!(globex.target.unwrap().number.as_str(), FORWARDING);
        assert!(p.tenant(&tenant("initech")).is_none());
    })
    .await;
}

#[tokio::test]
async fn sqlite_runs_with_the_wal_journal() {
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    store
        .apply_batch(&[record(1, user("acme", "u1", 1, None))])
        .await
        .unwrap();
    let Backend::Sqlite { url, .. } = &backend else {
        unreachable!()
    };
    let file = url
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc");
    assert!(std::path::Path::new(&format!("{file}-wal")).exists());
}

/// Issue 15: "the store keeps each entity as a JSON `data` document (a new optional field
/// needs no store change)": the policy fields of issue 15 survive the store on both backends,
/// and a reopened store decides after hours, by working hours and by direct line the same.
#[tokio::test]
async fn the_routing_policy_fields_survive_the_store() {
    use switchboard_contracts::{AfterHours, AfterHoursKind, Prefer, Schedule};
    let hours: Schedule = serde_json::from_value(serde_json::json!({
        "weekly": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]},
        "overrides": [{"date": "2026-11-24", "hours": []}]
    }))
    .unwrap();
    let SettingsChange::Company(mut c) = company("acme", 1, Some("(617) 253-1234"), None) else {
        unreachable!()
    };
    c.time_zone = Some("America/Chicago".into());
    c.business_hours = Some(hours.clone());
    c.after_hours = Some(AfterHours {
        kind: AfterHoursKind::Forward,
        number: Some("(312) 555-0100".into()),
    });
    c.ring_timeout_secs = Some(15);
    let SettingsChange::Number(mut n) = number("acme", DIALED, 1, Some(FORWARDING)) else {
        unreachable!()
    };
    n.user_id = Some(id("u2"));
    n.prefer = Prefer::NumberOwner;
    n.ring_timeout_secs = Some(18);
    let SettingsChange::User(mut u) = user("acme", "u1", 1, Some(USER_PHONE)) else {
        unreachable!()
    };
    u.working_hours = Some(Schedule {
        time_zone: Some("Europe/Berlin".into()),
        ..hours
    });
    u.ring_only_in_working_hours = true;
    let SettingsChange::User(mut owner) = user("acme", "u2", 1, Some(OTHER_PHONE)) else {
        unreachable!()
    };
    owner.available = false;
    let records = [
        record(1, SettingsChange::Company(c)),
        record(2, SettingsChange::Number(n)),
        record(3, SettingsChange::User(u)),
        record(4, SettingsChange::User(owner)),
        record(5, contact("acme", "c1", 1, &[CALLER], Some("u1"))),
    ];
    on_both(|url| {
        let records = records.clone();
        async move {
            let mut in_memory = Projection::new();
            for r in &records {
                in_memory.apply(r);
            }
            {
                let store = Store::open(&url).await.unwrap();
                store.apply_batch(&records).await.unwrap();
            }
            let loaded = Store::open(&url).await.unwrap().load().await.unwrap();
            let changes: Vec<SettingsChange> =
                records.iter().filter_map(|r| r.change.clone()).collect();
            assert_eq!(dump(&loaded, &changes), dump(&in_memory, &changes));
            // Monday 2026-11-23: 10:00 in Chicago is 17:00 in Berlin (u1 has left), 18:00 in
            // Chicago is closed; Tuesday 24th is closed all day by the override.
            for (at, rule) in [
                (
                    time::macros::datetime!(2026-11-23 16:00 UTC),
                    Rule::ForwardingNumber,
                ),
                (
                    time::macros::datetime!(2026-11-23 15:30 UTC),
                    Rule::AssignedUser,
                ),
                (
                    time::macros::datetime!(2026-11-24 00:00 UTC),
                    Rule::AfterHours,
                ),
                (
                    time::macros::datetime!(2026-11-24 16:00 UTC),
                    Rule::AfterHours,
                ),
            ] {
                let c = CallInbound {
                    received_at: at,
                    ..call("acme", DIALED, CALLER)
                };
                let d = decide_in(&loaded, &c).unwrap();
                assert_eq!(d, decide_in(&in_memory, &c).unwrap());
                assert_eq!(d.rule, rule, "{at}: {:?}", d.explanation());
                let timeouts: Vec<_> = d
                    .target
                    .iter()
                    .chain(&d.fallbacks)
                    .map(|t| t.ring_timeout_secs)
                    .collect();
                // The number's ring timeout, on every leg, the after-hours forward's too.
                assert!(timeouts.iter().all(|t| *t == Some(18)), "{timeouts:?}");
            }
        }
    })
    .await;
}
