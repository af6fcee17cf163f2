//! Settings changes reach decisions while the router runs, and a change acknowledged before a
//! call is always visible to that call's decision (freshness).

use crate::support::*;
use switchboard_contracts::{CallRoute, Rule};

const T: &str = "live";
const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";
const FORWARDING: &str = "+13127654321";
const COMPANY: &str = "+16172531234";

/// Publishes a call from `CALLER` and waits for its decision.
async fn decide(nats: &Nats, call_id: &str) -> CallRoute {
    nats.call(call(T, call_id, DIALED, CALLER)).await;
    nats.route(T, call_id).await
}

fn rung(route: &CallRoute) -> (Rule, Option<&str>) {
    (route.rule, route.target.as_ref().map(|t| t.number.as_str()))
}

/// Given a running router, when the user's phone, the user's status, the forwarding number,
/// the lead's assignment and the number itself change one after another, then each following
/// call is decided by the new settings, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changes_take_effect_without_restart() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(company(T, Some(COMPANY), None)).await;
    nats.settings(number(T, DIALED, None)).await;
    nats.settings(user(T, "u1", Some("+12064561234"), true))
        .await;
    nats.settings(contact(T, "c1", &[CALLER], Some("u1"))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let route = decide(&nats, "before").await;
    assert_eq!(rung(&route), (Rule::AssignedUser, Some("+12064561234")));

    let seq = nats
        .settings(user(T, "u1", Some("+12064561299"), true))
        .await;
    let route = decide(&nats, "new-phone").await;
    assert_eq!(rung(&route), (Rule::AssignedUser, Some("+12064561299")));
    assert!(route.settings_seq >= seq);

    let seq = nats
        .settings(user(T, "u1", Some("+12064561299"), false))
        .await;
    let route = decide(&nats, "deactivated").await;
    assert_eq!(rung(&route), (Rule::CompanyPhone, Some(COMPANY)));
    assert!(route.settings_seq >= seq);

    let seq = nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    let route = decide(&nats, "forwarding").await;
    assert_eq!(rung(&route), (Rule::ForwardingNumber, Some(FORWARDING)));
    assert_eq!(rung_all(&route), vec![FORWARDING, COMPANY]);
    assert!(route.settings_seq >= seq);

    nats.settings(user(T, "u2", Some("+12064561277"), true))
        .await;
    let seq = nats.settings(contact(T, "c1", &[CALLER], Some("u2"))).await;
    let route = decide(&nats, "reassigned").await;
    assert_eq!(rung(&route), (Rule::AssignedUser, Some("+12064561277")));
    assert!(route.settings_seq >= seq);

    let seq = nats.settings(released(T, DIALED, Some(FORWARDING))).await;
    let route = decide(&nats, "released").await;
    assert_eq!(rung(&route), (Rule::NoRoute, None));
    assert!(route.settings_seq >= seq);

    assert!(router.is_running());
    router.stop().await.unwrap();
}

fn rung_all(route: &CallRoute) -> Vec<&str> {
    route
        .target
        .iter()
        .chain(&route.fallbacks)
        .map(|t| t.number.as_str())
        .collect()
}

/// Given a running router, when a settings change is published (and acknowledged) and a call
/// follows immediately, then the call's decision reflects that change — 120 times in a row,
/// alternating the rule, so a decision made from the previous settings cannot pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_sees_the_change_acknowledged_before_its_call() {
    const ITERATIONS: usize = 120;
    let nats = Nats::start().await;
    let db = Db::sqlite();
    nats.settings(company(T, Some(COMPANY), None)).await;
    nats.settings(number(T, DIALED, Some(FORWARDING))).await;
    nats.settings(contact(T, "c1", &[CALLER], Some("u1"))).await;
    let router = Router::start(&nats.url(), db.url()).await;

    for i in 0..ITERATIONS {
        // Even: the user rings, on a phone never used before; odd: the user is deactivated,
        // so the forwarding number rings.
        let phone = format!("+1206456{:04}", 1000 + i);
        let active = i % 2 == 0;
        let seq = nats.settings(user(T, "u1", Some(&phone), active)).await;
        let call_id = format!("fresh-{i}");
        nats.call(call(T, &call_id, DIALED, CALLER)).await;

        let route = nats.route(T, &call_id).await;
        let expected = if active {
            (Rule::AssignedUser, Some(phone.as_str()))
        } else {
            (Rule::ForwardingNumber, Some(FORWARDING))
        };
        assert_eq!(
            rung(&route),
            expected,
            "iteration {i}: decided without the change acknowledged at SETTINGS {seq}: {:#?}",
            route.explanation_lines()
        );
        assert!(
            route.settings_seq >= seq,
            "iteration {i}: decided at SETTINGS {} < {seq}",
            route.settings_seq
        );
    }
    router.stop().await.unwrap();
}
