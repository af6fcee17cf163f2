//! Tenants are isolated: identical numbers and ids in two tenants never mix.

use crate::support::*;
use switchboard_contracts::Rule;

const DIALED: &str = "+16502530000";
const CALLER: &str = "+14158675310";

/// Given two tenants with the same dialed number, user id, contact id and caller, but
/// different phones, and a third tenant with nothing, when the same caller calls each of them,
/// then each decision uses only its own tenant's settings and is published on its own subject;
/// a change in one tenant does not touch the other; a call claiming another tenant than its
/// subject's is rejected instead of decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_with_identical_numbers_and_ids_never_see_each_other() {
    let nats = Nats::start().await;
    let db = Db::sqlite();
    for (t, user_phone, forwarding) in [
        ("alpha", "+12064561234", "+13127654321"),
        ("beta", "+12064561299", "+13127654399"),
    ] {
        nats.settings(number(t, DIALED, Some(forwarding))).await;
        nats.settings(user(t, "u1", Some(user_phone), true)).await;
        nats.settings(contact(t, "c1", &[CALLER], Some("u1"))).await;
    }
    let router = Router::start(&nats.url(), db.url()).await;

    nats.call(call("alpha", "same-call", DIALED, CALLER)).await;
    nats.call(call("beta", "same-call", DIALED, CALLER)).await;
    nats.call(call("gamma", "same-call", DIALED, CALLER)).await;
    let alpha = nats.route("alpha", "same-call").await;
    let beta = nats.route("beta", "same-call").await;
    let gamma = nats.route("gamma", "same-call").await;
    assert_eq!(alpha.tenant_id, tenant("alpha"));
    assert_eq!(
        alpha.target,
        Some(target("+12064561234", Rule::AssignedUser, Some("u1")))
    );
    assert_eq!(
        alpha.fallbacks,
        vec![target("+13127654321", Rule::ForwardingNumber, None)]
    );
    assert_eq!(beta.tenant_id, tenant("beta"));
    assert_eq!(
        beta.target,
        Some(target("+12064561299", Rule::AssignedUser, Some("u1")))
    );
    assert_eq!(
        beta.fallbacks,
        vec![target("+13127654399", Rule::ForwardingNumber, None)]
    );
    assert_eq!(
        gamma.rule,
        Rule::NoRoute,
        "{:#?}",
        gamma.explanation_lines()
    );

    // Beta deactivates its u1: alpha's u1 still rings.
    nats.settings(user("beta", "u1", Some("+12064561299"), false))
        .await;
    nats.call(call("beta", "after-change", DIALED, CALLER))
        .await;
    nats.call(call("alpha", "after-change", DIALED, CALLER))
        .await;
    let beta = nats.route("beta", "after-change").await;
    let alpha = nats.route("alpha", "after-change").await;
    assert_eq!(
        beta.target,
        Some(target("+13127654399", Rule::ForwardingNumber, None))
    );
    assert_eq!(
        alpha.target,
        Some(target("+12064561234", Rule::AssignedUser, Some("u1")))
    );

    // A call on alpha's subject whose data claims beta is refused, not decided for either.
    let mut forged = call("beta", "forged", DIALED, CALLER);
    forged.tenant_id = tenant("beta");
    let body = serde_json::to_vec(&switchboard_contracts::Envelope {
        specversion: "1.0".into(),
        id: "alpha:forged:inbound".into(),
        source: "/test".into(),
        event_type: "switchboard.call.inbound.v1".into(),
        time: time::OffsetDateTime::now_utc(),
        subject: "forged".into(),
        datacontenttype: "application/json".into(),
        data: forged,
    })
    .unwrap();
    let seq = nats
        .raw("call.inbound.alpha", "alpha:forged:inbound", &body)
        .await
        .sequence;
    let rejection = nats.rejection("alpha", seq).await.data.0;
    assert_eq!(rejection.code, "subject_mismatch");
    assert_eq!(rejection.tenant_id, tenant("alpha"));

    // Every decision is on its own tenant's subject and names that tenant.
    for t in ["alpha", "beta", "gamma"] {
        for route in nats.routes(t).await {
            assert_eq!(route.data.tenant_id, tenant(t));
            assert_ne!(route.data.call_id, "forged");
        }
    }
    assert_eq!(nats.count("call.route.>").await, 5);
    router.stop().await.unwrap();
}
