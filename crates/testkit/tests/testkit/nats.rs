//! A single restartable nats-server, and how a missing or old binary is reported.

use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use switchboard_testkit::{NatsServer, ReservedPort, TestkitError, eventually};

const DEADLINE: Duration = Duration::from_secs(10);

/// The messages in `name` and the payload of its message 1, as seen by a fresh client.
async fn stream_contents(
    server: &NatsServer,
    name: &str,
) -> Result<(u64, Vec<u8>), Box<dyn Error>> {
    let js = jetstream::new(server.client().await?);
    let mut stream = js.get_stream(name).await?;
    let messages = stream.info().await?.state.messages;
    let first = stream.get_raw_message(1).await?;
    Ok((messages, first.payload.to_vec()))
}

#[tokio::test]
async fn jetstream_data_survives_restart_and_kill_stops_the_server() {
    let mut server = NatsServer::start().unwrap();
    let port = server.port();
    assert_ne!(port, 4222, "must never use the system server's port");
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    assert!(server.log().contains("Server is ready"));

    let js = jetstream::new(server.client().await.unwrap());
    js.get_or_create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
    let ack = js
        .publish("orders.1", "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence), ("ORDERS", 1));
    assert!(
        server.store_dir().join("jetstream").is_dir(),
        "file storage lives in store_dir()"
    );

    server.restart().unwrap();
    assert!(server.is_running());
    assert_eq!(server.port(), port, "restart keeps the port");
    assert_eq!(
        stream_contents(&server, "ORDERS").await.unwrap(),
        (1, b"hello".to_vec())
    );

    server.kill();
    assert!(!server.is_running());
    let refused = tokio::time::timeout(DEADLINE, async_nats::connect(server.url()))
        .await
        .unwrap();
    assert!(refused.is_err(), "a killed server must refuse connections");
    assert!(server.client().await.is_err());

    // A restart after a kill brings the same data back, too.
    server.restart().unwrap();
    assert_eq!(
        stream_contents(&server, "ORDERS").await.unwrap(),
        (1, b"hello".to_vec())
    );
    assert_eq!(
        server.log().matches("Server is ready").count(),
        3,
        "one line per run"
    );

    server.stop_graceful().unwrap();
    assert!(!server.is_running());

    let dir = server.store_dir();
    assert!(dir.is_dir());
    drop(server);
    assert!(!dir.exists(), "drop removes the store dir");
    assert!(!dir.parent().unwrap().exists(), "drop removes the temp dir");
}

/// A server started on a reserved port (where a service may already be retrying) listens
/// there, across restarts, while the reservation is held.
#[tokio::test]
async fn a_server_starts_and_restarts_on_a_reserved_port() {
    let port = ReservedPort::new().unwrap();
    let (number, url) = (port.port(), port.nats_url());
    assert!(
        async_nats::connect(url.as_str()).await.is_err(),
        "nothing there yet"
    );
    let mut server = tokio::task::spawn_blocking(move || NatsServer::start_on_port(port).unwrap())
        .await
        .unwrap();
    assert_eq!((server.port(), server.url()), (number, url));
    server.client().await.unwrap().flush().await.unwrap();
    server.restart().unwrap();
    assert_eq!(server.port(), number);
    server.client().await.unwrap().flush().await.unwrap();
}

#[tokio::test]
async fn two_servers_are_independent() {
    let a = NatsServer::start().unwrap();
    let b = NatsServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());

    let js = jetstream::new(a.client().await.unwrap());
    js.create_stream(stream::Config {
        name: "ONLY_A".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let other = jetstream::new(b.client().await.unwrap());
    assert!(other.get_stream("ONLY_A").await.is_err());
    // Polling helper against a live server: the stream is listed on A.
    let names = eventually(DEADLINE, "stream ONLY_A on server A", || async {
        js.get_stream("ONLY_A")
            .await
            .ok()
            .map(|s| s.cached_info().config.name.clone())
    })
    .await
    .unwrap();
    assert_eq!(names, "ONLY_A");
}

#[test]
fn a_missing_binary_is_an_error_with_install_instructions() {
    let err = NatsServer::start_with_binary("/nonexistent/nats-server")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/nats-server"), "{err}");
    assert!(err.contains("make tools"), "{err}");
    assert!(err.contains("SWITCHBOARD_NATS_SERVER"), "{err}");
}

#[test]
fn a_too_old_binary_is_an_error_with_install_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("nats-server");
    // Written by a child shell, so this process holds no write handle when it runs it
    // (which could fail with "text file busy" while other tests spawn processes).
    let script =
        "printf '#!/bin/sh\\necho \"nats-server: v2.9.25\"\\n' > \"$0\" && chmod 755 \"$0\"";
    assert!(
        Command::new("sh")
            .args(["-c", script])
            .arg(&fake)
            .status()
            .unwrap()
            .success()
    );

    let err = NatsServer::start_with_binary(&fake)
        .unwrap_err()
        .to_string();
    assert!(err.contains("v2.9.25"), "{err}");
    assert!(err.contains(">= 2.10"), "{err}");
    assert!(err.contains("make tools"), "{err}");
    assert!(Path::new(&fake).exists());
}

#[test]
fn a_failed_start_reports_the_end_of_the_server_log() {
    let mut server = NatsServer::start().unwrap();
    server.kill();
    // Someone else takes the port while the server is down.
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", server.port())).unwrap();

    let err = server.restart().unwrap_err();
    assert!(matches!(err, TestkitError::Start { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("exited"), "{message}");
    assert!(message.contains("address already in use"), "{message}");
    assert!(!server.is_running());
}
