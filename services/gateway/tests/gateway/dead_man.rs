//! The dead-man's switch (issue 14): even with no dialer at all, a caller's ringback is bounded
//! by the gateway's own answer, and then the gateway plays the call's final action — unless a
//! dialer is merely slow (its claim is young) or already ended the call. Whoever takes the
//! call's end first in `DIAL_PROGRESS` wins.

use crate::support::*;
use std::time::Duration;
use switchboard_chain::{Holder, Progress, ProgressStore, StepState, key};
use switchboard_contracts::{
    Actor, CallDial, CallRoute, DialEventKind, E164, Envelope, FinalAction, FinalActionKind, Rule,
    Target, TenantId,
};
use time::OffsetDateTime;

fn no_instruction_path(tenant: &str, attempt: Option<u32>) -> String {
    match attempt {
        Some(a) => format!("/v1/tenants/{tenant}/twilio/no-instruction?attempt={a}"),
        None => format!("/v1/tenants/{tenant}/twilio/no-instruction"),
    }
}

async fn dial_events(nats: &Nats, call: &str) -> Vec<CallDial> {
    nats.read("call.dial.>")
        .await
        .into_iter()
        .map(|m| {
            serde_json::from_slice::<Envelope<CallDial>>(&m.payload)
                .unwrap()
                .data
        })
        .filter(|d| d.call_id == call)
        .collect()
}

fn decision(call: &str, final_action: FinalAction) -> CallRoute {
    CallRoute {
        call_id: call.into(),
        tenant_id: TenantId::new("acme").unwrap(),
        rule: Rule::CompanyPhone,
        target: Some(Target {
            number: E164::parse_strict("+16172531234").unwrap(),
            user_id: None,
            rule: Rule::CompanyPhone,
            ring_timeout_secs: None,
            group: Vec::new(),
            screen: false,
        }),
        fallbacks: vec![],
        final_action,
        reasons: Vec::new(),
        explanation: vec![],
        settings_seq: 1,
        calls_seq: 0,
        caller: None,
        decided_at: OffsetDateTime::now_utc(),
    }
}

async fn store(nats: &Nats) -> ProgressStore {
    ProgressStore::open(&nats.js, Duration::from_secs(3600), 1)
        .await
        .unwrap()
}

#[tokio::test]
async fn with_no_dialer_the_wait_ends_in_the_final_action_recorded_as_the_gateway_s() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let params = voice_params("CAdead1", "+16502530000", "+14158675310");
    let resp = twilio(gw.addr, &voice_path("acme"), ACME_TOKEN, &params).await;
    let xml = resp.assert_twiml();
    // 45 s by default: 8 cycles of the 6-second tone, then the no-instruction endpoint.
    assert!(xml.contains("<Play loop=\"8\">"), "{xml}");
    let redirect = format!(
        "<Redirect method=\"POST\">{PUBLIC}{}</Redirect>",
        no_instruction_path("acme", None)
    );
    assert!(xml.contains(&redirect), "{xml}");

    // Twilio follows the redirect: no dialer ever acted.
    let resp = twilio(
        gw.addr,
        &no_instruction_path("acme", None),
        ACME_TOKEN,
        &params,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(
        xml.contains(&format!("<Say>{}</Say>", FinalAction::default().message)),
        "{xml}"
    );
    assert!(
        xml.contains("<Record "),
        "the default apology takes a voicemail: {xml}"
    );
    let events = dial_events(&nats, "CAdead1").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, DialEventKind::FinalActionTaken);
    assert_eq!(events[0].acted_by, Some(Actor::Gateway));
    // The progress says so: a late dialer stands down.
    let (p, _) = store(&nats)
        .await
        .get(&key(&TenantId::new("acme").unwrap(), "CAdead1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.state, StepState::FinalTaken);

    // Twilio retrying the request: the same answer, recorded once.
    let resp = twilio(
        gw.addr,
        &no_instruction_path("acme", None),
        ACME_TOKEN,
        &params,
    )
    .await;
    assert!(resp.assert_twiml().contains("<Record "));
    assert_eq!(dial_events(&nats, "CAdead1").await.len(), 1);
    // Issue 17: the call ended unanswered here, so the gateway publishes its `call.missed`,
    // once.
    let missed = nats.read("call.missed.>").await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(missed[0].subject, "call.missed.acme");
    let data = &missed[0].json()["data"];
    assert_eq!(data["call_id"], "CAdead1");
    assert_eq!(data["ended"], "final_action");
    assert_eq!(data["final_action"], "voicemail");
}

#[tokio::test]
async fn a_dialer_at_the_carrier_is_not_overtaken_until_its_claim_grace_runs_out() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &["--claim-grace-secs", "12"]).await;
    let call = "CAslowdialer";
    let announce = FinalAction {
        kind: FinalActionKind::AnnounceHangup,
        message: "We are closed.".into(),
    };
    let progress = Progress {
        decision: decision(call, announce),
        step: 0,
        state: StepState::Claimed,
        since: OffsetDateTime::now_utc(),
        holder: Some(Holder {
            consumer: "dialer-route".into(),
            stream_seq: 1,
            delivered: 1,
        }),
        events: vec![],
        missed: None,
    };
    let store = store(&nats).await;
    let key = key(&TenantId::new("acme").unwrap(), call);
    store.create(&key, &progress).await.unwrap().unwrap();
    let params = voice_params(call, "+16502530000", "+14158675310");

    // The claim is young: one more ringback cycle, then ask again (attempt 2).
    let resp = twilio(
        gw.addr,
        &no_instruction_path("acme", None),
        ACME_TOKEN,
        &params,
    )
    .await;
    let xml = resp.assert_twiml();
    assert!(xml.contains("<Play loop=\"1\">"), "{xml}");
    assert!(
        xml.contains(&format!(
            "{PUBLIC}{}</Redirect>",
            no_instruction_path("acme", Some(2))
        )),
        "{xml}"
    );
    assert!(dial_events(&nats, call).await.is_empty());
    let (p, _) = store.get(&key).await.unwrap().unwrap();
    assert_eq!(p.state, StepState::Claimed, "the dialer's claim stands");

    // Past the grace (12 s = 2 cycles), the claim's dialer is presumed gone.
    let resp = twilio(
        gw.addr,
        &no_instruction_path("acme", Some(3)),
        ACME_TOKEN,
        &params,
    )
    .await;
    let xml = resp.assert_twiml();
    assert!(
        xml.ends_with("<Say>We are closed.</Say><Hangup/></Response>"),
        "the decision's own final action: {xml}"
    );
    let kinds: Vec<_> = dial_events(&nats, call)
        .await
        .into_iter()
        .map(|e| (e.step, e.kind, e.outcome_unknown, e.acted_by))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, DialEventKind::StepFailed, true, Some(Actor::Gateway)),
            (
                1,
                DialEventKind::FinalActionTaken,
                false,
                Some(Actor::Gateway)
            )
        ]
    );
}

#[tokio::test]
async fn a_call_the_dialer_already_ended_is_left_alone_and_a_tenant_may_shorten_the_wait() {
    let nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let call = "CAanswered";
    let progress = Progress {
        decision: decision(call, FinalAction::default()),
        step: 0,
        state: StepState::Answered,
        since: OffsetDateTime::now_utc(),
        holder: None,
        events: vec![],
        missed: None,
    };
    let store = store(&nats).await;
    store
        .create(&key(&TenantId::new("acme").unwrap(), call), &progress)
        .await
        .unwrap()
        .unwrap();
    let params = voice_params(call, "+16502530000", "+14158675310");
    let resp = twilio(
        gw.addr,
        &no_instruction_path("acme", None),
        ACME_TOKEN,
        &params,
    )
    .await;
    assert!(
        resp.assert_twiml()
            .ends_with("<Response><Hangup/></Response>")
    );
    assert!(dial_events(&nats, call).await.is_empty());

    // Tenant `beta` sets no_instruction_timeout_secs 20: 4 cycles of 6 s.
    let mut beta = voice_params("CAbeta", "+16502530000", "+14158675310");
    beta.retain(|(k, _)| *k != "AccountSid");
    let resp = twilio(gw.addr, &voice_path("beta"), BETA_TOKEN, &beta).await;
    let xml = resp.assert_twiml();
    assert!(xml.contains("<Play loop=\"4\">"), "{xml}");
}
