//! A 3-node JetStream cluster: an R3 stream keeps working with one node down and
//! catches the node up when it comes back.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, publish::PublishAck, stream};
use switchboard_testkit::{NatsCluster, TestkitError, eventually};

/// Leader elections after a node dies can take several seconds.
const DEADLINE: Duration = Duration::from_secs(30);

/// Publishes until acked; the message id (= payload) makes a retry a no-op duplicate.
async fn publish(
    js: &jetstream::Context,
    subject: &'static str,
    payload: &'static str,
) -> Result<PublishAck, TestkitError> {
    eventually(DEADLINE, &format!("ack for {subject}"), || async {
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(payload);
        js.send_publish(subject, publish).await.ok()?.await.ok()
    })
    .await
}

#[tokio::test]
async fn r3_stream_survives_a_killed_node_and_catches_it_up_after_restart() {
    let mut cluster = NatsCluster::start(3).unwrap();
    let ports: HashSet<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    assert_eq!(ports.len(), 3);
    assert!(!ports.contains(&4222));
    assert_eq!(cluster.urls().split(',').count(), 3);

    let client = cluster.client().await.unwrap();
    let js = jetstream::new(client.clone());
    let config = stream::Config {
        name: "CALLS".into(),
        subjects: vec!["calls.>".into()],
        storage: stream::StorageType::File,
        num_replicas: 3,
        ..Default::default()
    };
    eventually(DEADLINE, "R3 stream CALLS created", || async {
        js.get_or_create_stream(config.clone()).await.ok()
    })
    .await
    .unwrap();
    // A fresh stream answers publishes once its RAFT group has elected a leader.
    let ack = publish(&js, "calls.1", "first").await.unwrap();
    assert_eq!(ack.sequence, 1);

    // Kill a node our client is not connected to (so the client needs no reconnect).
    let connected = client.server_info().port;
    let victim = cluster
        .nodes()
        .iter()
        .position(|n| n.port() != connected)
        .unwrap();
    let victim_port = cluster.nodes()[victim].port();
    cluster.kill(victim).unwrap();

    // Two of three is a quorum (a new stream leader may have to be elected first).
    let ack = publish(&js, "calls.2", "second").await.unwrap();
    assert_eq!(ack.sequence, 2);

    cluster.restart(victim).unwrap();
    let node = &cluster.nodes()[victim];
    assert_eq!(node.port(), victim_port, "restart keeps the port");

    let node_js = jetstream::new(node.client().await.unwrap());
    let info = eventually(
        DEADLINE,
        "3 current replicas seen via the restarted node",
        || async {
            let info = node_js
                .get_stream("CALLS")
                .await
                .ok()?
                .get_info()
                .await
                .ok()?;
            let cluster_info = info.cluster.as_ref()?;
            let all_current = cluster_info.leader.is_some()
                && cluster_info.replicas.len() == 2
                && cluster_info
                    .replicas
                    .iter()
                    .all(|r| r.current && !r.offline);
            (all_current && info.state.messages == 2).then_some(info)
        },
    )
    .await
    .unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let second = node_js
        .get_stream("CALLS")
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    assert_eq!(&second.payload[..], b"second");
}
