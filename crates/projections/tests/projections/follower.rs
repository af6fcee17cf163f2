//! The follower against a real nats-server: catching up, following, rejections, restarts,
//! freshness.

use crate::support::*;
use async_nats::jetstream;
use std::time::Duration;
use switchboard_bus::{Publisher, SETTINGS, StreamOptions, ensure_streams};
use switchboard_contracts::{Envelope, SettingsRejected};
use switchboard_projections::{
    Follower, Projection, ProjectionError, Record, Store, settings_last_seq,
};
use switchboard_testkit::{NatsServer, eventually};

const WAIT: Duration = Duration::from_secs(10);
const DIALED: &str = "+16502530000";
const USER_PHONE: &str = "+12064561234";

/// A fresh server with both streams provisioned, and a publisher on it.
async fn provisioned() -> (NatsServer, jetstream::Context, Publisher) {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    ensure_streams(&js, &StreamOptions::default())
        .await
        .unwrap();
    let publisher = Publisher::new(js.clone());
    (server, js, publisher)
}

fn version(
    projection: &std::sync::RwLock<Projection>,
    t: &str,
    entity: &str,
    key: &str,
) -> Option<u64> {
    let projection = projection.read().unwrap();
    projection.tenant(&tenant(t))?.version_of(entity, key)
}

#[tokio::test]
async fn catches_up_at_start_then_follows() {
    on_both(|url| async move {
        let (_server, js, publisher) = provisioned().await;
        for change in [
            number("acme", DIALED, 1, None),
            user("acme", "u1", 1, Some(USER_PHONE)),
            user("acme", "u1", 2, None),
            contact("acme", "c1", 1, &["+14158675310"], Some("u1")),
            user("globex", "u1", 1, Some(USER_PHONE)),
        ] {
            publish(&publisher, &change).await;
        }
        let store = Store::open(&url).await.unwrap();
        let follower = Follower::start(js.clone(), store.clone(), publisher.clone()).await.unwrap();
        follower.wait_ready(WAIT).await.unwrap();
        assert!(follower.is_ready());
        assert_eq!(follower.health(), Ok(()));
        let last = settings_last_seq(&js).await.unwrap();
        assert_eq!(last, 5);
        assert_eq!(follower.applied_seq(), last);
        assert_eq!(store.position().await.unwrap(), last);
        let shared = follower.projection();
        assert_eq!(version(&shared, "acme", "user", "u1"), Some(2));
        assert_eq!(version(&shared, "acme", "contact", "c1"), Some(1));
        assert_eq!(version(&shared, "globex", "user", "u1"), Some(1));

        // After start: published, then waited for by sequence.
        publish(&publisher, &user("acme", "u1", 3, Some(USER_PHONE))).await;
        publish(&publisher, &user("acme", "u1", 2, None)).await; // stale: ignored
        let last = settings_last_seq(&js).await.unwrap();
        assert_eq!(follower.wait_applied(last, WAIT).await.unwrap(), last);
        assert_eq!(version(&shared, "acme", "user", "u1"), Some(3));
        assert_eq!(store.position().await.unwrap(), last);
        assert_eq!(store.load().await.unwrap().tenant(&tenant("acme")).unwrap().version_of("user", "u1"), Some(3));

        // Nothing beyond the stream arrives: the wait ends with a transient timeout.
        let err = follower.wait_applied(last + 1, Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, ProjectionError::Timeout { wanted, applied, .. } if wanted == last + 1 && applied == last));
        assert!(err.is_transient());
        follower.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_events_are_rejected_and_a_restart_resumes() {
    let (_server, js, publisher) = provisioned().await;
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    let follower = Follower::start(js.clone(), store, publisher.clone())
        .await
        .unwrap();
    follower.wait_ready(WAIT).await.unwrap();

    publish(&publisher, &user("acme", "u1", 1, Some(USER_PHONE))).await;
    let bad = js
        .publish("settings.acme.user.u1", "{\"not\": \"an event\"}".into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    publish(&publisher, &user("acme", "u1", 2, None)).await;

    // The rejection lands in SETTINGS; the follower applies past it and past the rejection.
    let subject = format!("settings.acme.rejected.{bad}");
    let stream = js.get_stream(SETTINGS).await.unwrap();
    let stored = eventually(WAIT, "the rejection event", || async {
        stream.get_last_raw_message_by_subject(&subject).await.ok()
    })
    .await
    .unwrap();
    let rejection = Envelope::<SettingsRejected>::decode(&stored.payload, &subject).unwrap();
    assert_eq!(rejection.id, format!("rejected:SETTINGS:{bad}"));
    let rejection = rejection.data.0;
    assert_eq!(rejection.stream, SETTINGS);
    assert_eq!(rejection.stream_seq, bad);
    assert_eq!(rejection.original_subject, "settings.acme.user.u1");
    assert_eq!(rejection.original_payload, "{\"not\": \"an event\"}");
    assert_eq!(rejection.code, "missing_field");
    assert!(!rejection.reason.is_empty());

    // The follower may file the rejection before or after `u1` v2 is stored: the last
    // sequence is whichever came last, as the stream itself reports it.
    let last = settings_last_seq(&js).await.unwrap();
    let mut stream = stream;
    assert_eq!(last, stream.info().await.unwrap().state.last_sequence);
    assert!(last >= stored.sequence);
    follower.wait_applied(last, WAIT).await.unwrap();
    assert_eq!(follower.health(), Ok(()));
    assert_eq!(
        version(&follower.projection(), "acme", "user", "u1"),
        Some(2)
    );
    follower.shutdown().await;

    // Restarted on the same file: hydrated at the stored position, ready without replay.
    let store = Store::open(backend.url()).await.unwrap();
    assert_eq!(store.position().await.unwrap(), last);
    let follower = Follower::start(js.clone(), store.clone(), publisher.clone())
        .await
        .unwrap();
    assert_eq!(follower.applied_seq(), last);
    assert!(follower.is_ready());
    assert_eq!(
        version(&follower.projection(), "acme", "user", "u1"),
        Some(2)
    );
    publish(&publisher, &user("acme", "u1", 3, Some(USER_PHONE))).await;
    let last = settings_last_seq(&js).await.unwrap();
    follower.wait_applied(last, WAIT).await.unwrap();
    assert_eq!(
        version(&follower.projection(), "acme", "user", "u1"),
        Some(3)
    );
    assert_eq!(store.position().await.unwrap(), last);
    // One rejection only, and nothing else was filed.
    let stream = js.get_stream(SETTINGS).await.unwrap();
    let info = stream
        .info_with_subjects("settings.*.rejected.>")
        .await
        .unwrap();
    use futures::TryStreamExt;
    let rejected: Vec<(String, usize)> = info.try_collect().await.unwrap();
    assert_eq!(rejected, vec![(subject.clone(), 1)]);
    follower.shutdown().await;
}

#[tokio::test]
async fn a_store_ahead_of_the_stream_is_refused() {
    let (_server, js, publisher) = provisioned().await;
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    store
        .apply_batch(&[Record {
            seq: 42,
            change: None,
        }])
        .await
        .unwrap();
    let err = Follower::start(js, store, publisher).await.err().unwrap();
    assert!(matches!(err, ProjectionError::Corrupt(_)), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn every_published_change_is_visible_after_waiting_for_the_last_sequence() {
    let (_server, js, publisher) = provisioned().await;
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    let follower = Follower::start(js.clone(), store, publisher.clone())
        .await
        .unwrap();
    follower.wait_ready(WAIT).await.unwrap();
    let shared = follower.projection();
    for v in 1..=200 {
        publish(&publisher, &user("acme", "u1", v, Some(USER_PHONE))).await;
        let last = settings_last_seq(&js).await.unwrap();
        follower.wait_applied(last, WAIT).await.unwrap();
        assert_eq!(version(&shared, "acme", "user", "u1"), Some(v));
    }
    follower.shutdown().await;
}

/// Issue 15: "A settings event that fails validation … is refused with a `settings.rejected`
/// whose reason names the field — as today for bad phone numbers. A refused event changes
/// nothing, its version included: a later valid event with the same version applies."
#[tokio::test]
async fn a_refused_setting_changes_nothing_not_even_its_version() {
    use switchboard_contracts::EventData;
    let (_server, js, publisher) = provisioned().await;
    let backend = Backend::sqlite();
    let store = Store::open(backend.url()).await.unwrap();
    let follower = Follower::start(js.clone(), store.clone(), publisher.clone())
        .await
        .unwrap();
    follower.wait_ready(WAIT).await.unwrap();
    publish(&publisher, &user("acme", "u1", 1, Some(USER_PHONE))).await;

    // Version 2 with "9am" in its working hours: a well-formed envelope, refused on its data.
    let switchboard_contracts::SettingsChange::User(mut u) = user("acme", "u1", 2, None) else {
        unreachable!()
    };
    u.ring_only_in_working_hours = true;
    let valid = Envelope::new(u.clone(), "/crm/settings", time::OffsetDateTime::UNIX_EPOCH);
    let mut refused: serde_json::Value = serde_json::from_slice(&valid.to_json().unwrap()).unwrap();
    refused["data"]["working_hours"] = serde_json::json!({"weekly": {"mon": [["9am", "17:00"]]}});
    let bad = js
        .publish(
            u.nats_subject(),
            serde_json::to_vec(&refused).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let subject = format!("settings.acme.rejected.{bad}");
    let stream = js.get_stream(SETTINGS).await.unwrap();
    let stored = eventually(WAIT, "the rejection event", || async {
        stream.get_last_raw_message_by_subject(&subject).await.ok()
    })
    .await
    .unwrap();
    let rejection = Envelope::<SettingsRejected>::decode(&stored.payload, &subject)
        .unwrap()
        .data
        .0;
    assert_eq!(rejection.code, "invalid_setting");
    assert!(
        rejection.reason.contains("`working_hours.weekly.mon[0]`"),
        "{}",
        rejection.reason
    );
    let last = settings_last_seq(&js).await.unwrap();
    follower.wait_applied(last, WAIT).await.unwrap();
    assert_eq!(
        version(&follower.projection(), "acme", "user", "u1"),
        Some(1),
        "the refused version 2 is not recorded"
    );

    // The same version, valid: applied (with its working hours).
    u.working_hours = Some(
        serde_json::from_value(serde_json::json!({"weekly": {"mon": [["09:00", "17:00"]]}}))
            .unwrap(),
    );
    publish(&publisher, &switchboard_contracts::SettingsChange::User(u)).await;
    let last = settings_last_seq(&js).await.unwrap();
    follower.wait_applied(last, WAIT).await.unwrap();
    assert_eq!(
        version(&follower.projection(), "acme", "user", "u1"),
        Some(2)
    );
    {
        let projection = follower.projection();
        let projection = projection.read().unwrap();
        let state = projection.tenant(&tenant("acme")).unwrap();
        use switchboard_routing::SettingsView;
        let user = state.user(&id("u1")).unwrap();
        assert!(user.ring_only_in_working_hours && user.working_hours.is_some());
    }
    follower.shutdown().await;
    // And the store holds it, on reopening.
    let reopened = Store::open(backend.url())
        .await
        .unwrap()
        .load()
        .await
        .unwrap();
    assert_eq!(
        reopened
            .tenant(&tenant("acme"))
            .unwrap()
            .version_of("user", "u1"),
        Some(2)
    );
}
