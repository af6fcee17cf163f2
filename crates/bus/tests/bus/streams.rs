use crate::provisioned;
use async_nats::jetstream::{self, stream};
use std::time::Duration;
use switchboard_bus::{BusError, CALLS, SETTINGS, StreamOptions, ensure_streams};
use switchboard_testkit::NatsServer;

#[tokio::test]
async fn streams_are_created_as_the_audit_log() {
    let (_server, js) = provisioned().await;
    for (name, subject) in [(CALLS, "call.>"), (SETTINGS, "settings.>")] {
        let info = js.get_stream(name).await.unwrap().get_info().await.unwrap();
        let c = info.config;
        assert_eq!(c.subjects, vec![subject.to_string()]);
        assert_eq!(c.storage, stream::StorageType::File);
        assert_eq!(c.max_age, Duration::from_secs(400 * 24 * 3600));
        assert_eq!(c.duplicate_window, Duration::from_secs(7200));
        assert!(
            c.deny_delete,
            "single events cannot be deleted from the audit log"
        );
    }
}

#[tokio::test]
async fn ensuring_again_is_idempotent_and_applies_new_options() {
    let (_server, js) = provisioned().await;
    // Something stored survives a second provisioning with other options.
    js.publish("settings.acme.company.main", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    ensure_streams(&js, &StreamOptions::default())
        .await
        .unwrap();
    let shorter = StreamOptions {
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..StreamOptions::default()
    };
    ensure_streams(&js, &shorter).await.unwrap();
    let info = js
        .get_stream(SETTINGS)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.max_age, shorter.max_age);
    assert_eq!(info.state.messages, 1);
}

#[tokio::test]
async fn provisioning_never_lowers_the_replica_count() {
    // A CLI left on its default of one replica must not turn production's R3 streams into R1.
    let cluster = switchboard_testkit::NatsCluster::start(3).unwrap();
    let js = jetstream::new(cluster.client().await.unwrap());
    let r3 = StreamOptions {
        replicas: 3,
        ..StreamOptions::default()
    };
    // Every node answers before the JetStream meta group has seen its peers online: until it
    // has, an R3 placement is refused ("no suitable peers for placement, peer offline"; seen
    // under load). Wait for that condition, not a fixed time.
    switchboard_testkit::eventually(Duration::from_secs(30), "R3 placement possible", || async {
        ensure_streams(&js, &r3).await.ok()
    })
    .await
    .unwrap();
    ensure_streams(&js, &StreamOptions::default())
        .await
        .unwrap();
    for name in [CALLS, SETTINGS] {
        let info = js.get_stream(name).await.unwrap().get_info().await.unwrap();
        assert_eq!(info.config.num_replicas, 3, "{name} was shrunk");
    }
}

#[tokio::test]
async fn a_stream_with_memory_storage_is_a_conflict() {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    js.create_stream(stream::Config {
        name: CALLS.into(),
        subjects: vec!["call.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    let err = ensure_streams(&js, &StreamOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::Conflict { .. }), "{err}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("file storage"), "{err}");
}
