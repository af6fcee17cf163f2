//! Issue 16: "The router no longer drops a stale settings event in silence": a settings event
//! whose version is not newer than the applied one is counted and filed as a
//! `settings.rejected` with code `stale_version`, and changes nothing.

use crate::support::*;
use std::time::Duration;
use switchboard_contracts::{Rule, UserSettings};
use switchboard_testkit::eventually;

const T: &str = "acme";
const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";
const PHONE: &str = "+12064561234";
const CALLER: &str = "+14158675310";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_settings_event_is_counted_and_filed_as_rejected() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    nats.settings(contact(T, "c-1", &[CALLER], Some("u-1")))
        .await;
    let router = Router::start(&nats.url(), db.url()).await;
    nats.settings(UserSettings {
        version: 5,
        ..user(T, "u-1", Some(PHONE), true)
    })
    .await;
    let stale = nats
        .settings(UserSettings {
            version: 4,
            ..user(T, "u-1", None, true)
        })
        .await;

    let deadline = Duration::from_secs(20);
    let rejection = eventually(deadline, "the stale event's rejection", || async {
        nats.read("settings.acme.rejected.>")
            .await
            .into_iter()
            .next()
    })
    .await
    .unwrap();
    assert_eq!(rejection.subject, format!("settings.acme.rejected.{stale}"));
    let body: serde_json::Value = serde_json::from_slice(&rejection.payload).unwrap();
    assert_eq!(body["type"], "switchboard.settings.rejected.v1");
    assert_eq!(body["data"]["code"], "stale_version");
    assert_eq!(body["data"]["stream_seq"], stale);
    assert!(
        body["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("version 4 is not newer than the version 5"),
        "{body}"
    );
    // The metrics are sampled every 5 s.
    eventually(deadline, "the stale event to be counted", || async {
        http_get(router.http, "/metrics")
            .await
            .filter(|text| text.contains("switchboard_router_settings_stale_total 1"))
    })
    .await
    .unwrap();
    // It changed nothing: u-1 keeps the phone of version 5.
    nats.call(call(T, "CA-stale", DIALED, CALLER)).await;
    let route = nats.route(T, "CA-stale").await;
    assert_eq!(
        route.rule,
        Rule::AssignedUser,
        "{:#?}",
        route.explanation_lines()
    );
    router.stop().await.unwrap();
}
