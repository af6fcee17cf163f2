//! Tests of the test harness itself, against real nats-server and PostgreSQL processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns too

mod cluster;
mod nats;
mod port;
mod postgres;

use std::time::Duration;

use switchboard_testkit::{TestkitError, eventually, wait_for};

#[tokio::test]
async fn eventually_returns_the_first_value_or_times_out_naming_what() {
    let mut calls = 0;
    let value = eventually(Duration::from_secs(5), "third call", || {
        calls += 1;
        let now = calls;
        async move { (now >= 3).then_some(now) }
    })
    .await
    .unwrap();
    assert_eq!(value, 3);

    let err = eventually(Duration::from_millis(100), "a miracle", || async {
        None::<()>
    })
    .await
    .unwrap_err();
    assert!(matches!(err, TestkitError::Timeout(_)), "{err:?}");
    assert_eq!(err.to_string(), "timed out waiting for a miracle");
}

#[test]
fn wait_for_returns_the_first_value_or_times_out_naming_what() {
    let mut calls = 0;
    let value = wait_for(Duration::from_secs(5), "third call", || {
        calls += 1;
        (calls >= 3).then_some(calls)
    })
    .unwrap();
    assert_eq!(value, 3);

    let err = wait_for(Duration::from_millis(100), "a miracle", || None::<()>).unwrap_err();
    assert_eq!(err.to_string(), "timed out waiting for a miracle");
}
