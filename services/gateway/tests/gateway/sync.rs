//! Sync mode: the gateway waits for the router's decision and answers `<Dial>` directly, or
//! ringback when the decision does not come before the deadline.

use crate::support::*;
use clap::Parser;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{
    CallRoute, E164, Envelope, FinalAction, FinalActionKind, NumberSettings, Rule, TenantId,
};
use time::OffsetDateTime;

const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";
const CALLER: &str = "+14158675310";

/// The real router, in this process.
pub(crate) struct Router {
    http: std::net::SocketAddr,
    /// Holds `http` for the router (see `reserve_port`).
    _http_port: switchboard_testkit::ReservedPort,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), switchboard_router::RouterError>>,
    _dir: tempfile::TempDir,
}

impl Router {
    pub(crate) async fn start(nats_url: &str) -> Router {
        let dir = tempfile::tempdir().unwrap();
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("router.db").display()
        );
        let http_port = reserve_port();
        let http = http_port.addr();
        let http_arg = http.to_string();
        let config = switchboard_router::Config::parse_from([
            "switchboard-router",
            "--nats-url",
            nats_url,
            "--database-url",
            &db,
            "--http-addr",
            &http_arg,
        ]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_router::run(config, async move {
            let _ = stopped.await;
        }));
        let router = Router {
            http,
            _http_port: http_port,
            stop: Some(stop),
            task,
            _dir: dir,
        };
        switchboard_testkit::eventually(WAIT, "the router to be ready", || async {
            let connected = tokio::net::TcpStream::connect(router.http).await.is_ok();
            if !connected {
                return None;
            }
            (get(router.http, "/readyz").await.status == 200).then_some(())
        })
        .await
        .unwrap();
        router
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the router did not stop")
            .unwrap()
            .unwrap();
    }
}

/// Given the router running and number settings with a forwarding number, when a call comes
/// in on a sync-mode gateway, then the answer is the `<Dial>` of the decided number with the
/// step-0 dial-status action and the number's ring timeout; a number with nothing to ring gets
/// the final action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_answers_with_the_routers_dial() {
    let nats = Nats::start().await;
    let publisher = Publisher::new(nats.js.clone());
    let settings = NumberSettings {
        tenant_id: TenantId::new("acme").unwrap(),
        version: 1,
        number: E164::parse_strict(DIALED).unwrap(),
        forwarding_number: Some(FORWARDING.into()),
        released: false,
        user_id: None,
        prefer: Default::default(),
        // Not the gateway's default (20): step 0 rings for the leg's own timeout, as the
        // dialer rings later steps.
        ring_timeout_secs: Some(35),
        ring_group: None,
    };
    publisher
        .publish(
            &Envelope::new(settings, "/switchboard/test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap();
    let router = Router::start(&nats.url()).await;
    let gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "10000"],
    )
    .await;

    let started = Instant::now();
    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0200", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered before the deadline"
    );
    assert_eq!(
        xml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"35\" \
             action=\"{PUBLIC}/v1/tenants/acme/twilio/dial-status?step=0\" method=\"POST\" \
             answerOnBridge=\"true\"><Number>{FORWARDING}</Number></Dial></Response>"
        )
    );

    // Nothing configured for this number: the default final action (voicemail).
    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0201", "+16502530001", CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(!xml.contains("<Dial"), "{xml}");
    assert!(xml.contains("<Say>") && xml.contains("<Record "), "{xml}");
    assert!(
        xml.contains(&format!("action=\"{PUBLIC}/v1/twiml/hangup\"")),
        "{xml}"
    );

    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_sync_answers_total{outcome=\"dial\"} 1"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
    router.stop().await;
}

/// Issue 14: given a decision whose final action is an announcement with a blank message, when
/// its call comes in on a sync-mode gateway, then the answer says the default greeting before
/// hanging up — what the dialer hands the carrier for the same decision — never a silent
/// `<Hangup/>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_never_hangs_up_in_silence_on_a_blank_announcement() {
    let nats = Nats::start().await;
    let gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "10000"],
    )
    .await;
    // The decision as the router publishes it (the gateway keeps it for the call's request).
    let decision = CallRoute {
        call_id: "CA0300".into(),
        tenant_id: TenantId::new("acme").unwrap(),
        rule: Rule::NoRoute,
        target: None,
        fallbacks: vec![],
        final_action: FinalAction {
            kind: FinalActionKind::AnnounceHangup,
            message: "  ".into(),
        },
        reasons: Vec::new(),
        explanation: vec!["test".into()],
        settings_seq: 1,
        calls_seq: 0,
        caller: None,
        decided_at: OffsetDateTime::now_utc(),
    };
    Publisher::new(nats.js.clone())
        .publish(
            &Envelope::new(decision, "/switchboard/test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap();

    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0300", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let greeting = FinalAction::default().message;
    assert_eq!(
        resp.assert_twiml(),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{greeting}</Say>\
             <Hangup/></Response>"
        )
    );
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_sync_answers_total{outcome=\"final_action\"} 1"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}

/// Issue 17: given a decision that refuses the call (rule `blocked`, final action `reject`),
/// when its call comes in on a sync-mode gateway, then the answer is `<Reject reason="busy"/>`
/// alone: nothing is answered, the caller's carrier plays busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_refuses_a_rejected_call_with_busy() {
    let nats = Nats::start().await;
    let gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "10000"],
    )
    .await;
    let decision = CallRoute {
        call_id: "CA0301".into(),
        tenant_id: TenantId::new("acme").unwrap(),
        rule: Rule::Blocked,
        target: None,
        fallbacks: vec![],
        final_action: FinalAction {
            kind: FinalActionKind::Reject,
            message: "unused".into(),
        },
        reasons: Vec::new(),
        explanation: vec!["test".into()],
        settings_seq: 1,
        calls_seq: 0,
        caller: None,
        decided_at: OffsetDateTime::now_utc(),
    };
    Publisher::new(nats.js.clone())
        .publish(
            &Envelope::new(decision, "/switchboard/test", OffsetDateTime::now_utc()),
            &TraceContext::default(),
        )
        .await
        .unwrap();

    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0301", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.assert_twiml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Reject reason=\"busy\"/></Response>"
    );
    assert_eq!(nats.count("call.inbound.acme").await, 1);
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_sync_answers_total{outcome=\"final_action\"} 1"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}

/// Given no router, when a call comes in on a sync-mode gateway, then at the deadline the
/// caller gets one ringback cycle and a `<Redirect>` back to the voice webhook (the dialer
/// leaves step 0 to the gateway in sync mode, so plain ringback would ring forever). Once the
/// router has decided, the redirected request, signed by its own URL as Twilio does, is
/// answered with the `<Dial>` at once; a redirect with no decision asks again, briefly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_without_a_decision_redirects_until_the_decision_comes() {
    let nats = Nats::start().await;
    let gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "400"],
    )
    .await;
    let started = Instant::now();
    let resp = twilio(
        gw.addr,
        &voice_path("acme"),
        ACME_TOKEN,
        &voice_params("CA0202", DIALED, CALLER),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    let redirect = format!("{}?attempt=2", voice_path("acme"));
    assert!(xml.contains("<Play loop=\"1\">"), "{xml}");
    assert!(
        xml.contains(&format!(
            "<Redirect method=\"POST\">{PUBLIC}{redirect}</Redirect>"
        )),
        "{xml}"
    );
    assert!(
        took >= Duration::from_millis(400),
        "answered before the deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(nats.count("call.inbound.acme").await, 1);

    // Still no decision: the redirect waits briefly, then asks again.
    let started = Instant::now();
    let resp = twilio(
        gw.addr,
        &redirect,
        ACME_TOKEN,
        &voice_params("CA0202", DIALED, CALLER),
    )
    .await;
    let xml = resp.assert_twiml();
    assert!(
        xml.contains(&format!(
            "{PUBLIC}{}?attempt=3</Redirect>",
            voice_path("acme")
        )),
        "{xml}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The router comes up and decides (nothing configured: the final action).
    let router = Router::start(&nats.url()).await;
    switchboard_testkit::eventually(WAIT, "the router's decision", || async {
        (nats.count("call.route.acme").await == 1).then_some(())
    })
    .await
    .unwrap();
    let resp = twilio(
        gw.addr,
        &format!("{}?attempt=3", voice_path("acme")),
        ACME_TOKEN,
        &voice_params("CA0202", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(!xml.contains("<Redirect"), "{xml}");
    assert!(xml.contains("<Say>") && xml.contains("<Record "), "{xml}");
    // The call was stored once: the redirects re-published the same event id.
    assert_eq!(nats.count("call.inbound.acme").await, 1);

    let metrics = get(gw.addr, "/metrics").await.text();
    for outcome in ["deadline", "still_waiting", "final_action"] {
        assert!(
            metrics.contains(&format!(
                "switchboard_gateway_sync_answers_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{outcome}: {metrics}"
        );
    }
    router.stop().await;
    gw.stop().await.unwrap();
}

#[tokio::test]
async fn sync_mode_apologizes_and_hangs_up_when_the_last_redirect_finds_no_decision() {
    let nats = Nats::start().await;
    let gw = Gateway::start(
        &nats.url(),
        &["--answer-mode", "sync", "--sync-deadline-ms", "400"],
    )
    .await;

    // The next-to-last attempt still asks again...
    let resp = twilio(
        gw.addr,
        &format!("{}?attempt=9", voice_path("acme")),
        ACME_TOKEN,
        &voice_params("CA0303", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(
        xml.contains(&format!(
            "{PUBLIC}{}?attempt=10</Redirect>",
            voice_path("acme")
        )),
        "{xml}"
    );

    // ...the last one ends the call with words rather than more ringback or silence.
    let resp = twilio(
        gw.addr,
        &format!("{}?attempt=10", voice_path("acme")),
        ACME_TOKEN,
        &voice_params("CA0303", DIALED, CALLER),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.assert_twiml();
    assert!(!xml.contains("<Redirect"), "{xml}");
    assert!(!xml.contains("<Play"), "{xml}");
    assert!(
        xml.contains("<Say>") && xml.contains("could not connect your call"),
        "{xml}"
    );
    assert!(xml.contains("<Hangup/>"), "{xml}");
    // Both requests carried the same call: stored once.
    assert_eq!(nats.count("call.inbound.acme").await, 1);

    let metrics = get(gw.addr, "/metrics").await.text();
    for outcome in ["still_waiting", "gave_up"] {
        assert!(
            metrics.contains(&format!(
                "switchboard_gateway_sync_answers_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{outcome}: {metrics}"
        );
    }
    gw.stop().await.unwrap();
}
