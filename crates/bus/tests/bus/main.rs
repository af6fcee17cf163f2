//! Bus tests against a real nats-server started per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns too

mod consumers;
mod publish;
mod streams;

use async_nats::jetstream;
use switchboard_bus::{StreamOptions, ensure_streams};
use switchboard_testkit::NatsServer;

/// A fresh server with both streams provisioned.
pub async fn provisioned() -> (NatsServer, jetstream::Context) {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.client().await.unwrap());
    ensure_streams(&js, &StreamOptions::default())
        .await
        .unwrap();
    (server, js)
}
