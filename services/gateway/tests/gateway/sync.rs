//! Sync mode: the gateway waits for the router's decision and answers `<Dial>` directly, or
//! ringback when the decision does not come before the deadline.

use crate::support::*;
use clap::Parser;
use std::time::{Duration, Instant};
use switchboard_bus::{Publisher, TraceContext};
use switchboard_contracts::{E164, Envelope, NumberSettings, TenantId};
use time::OffsetDateTime;

const DIALED: &str = "+16502530000";
const FORWARDING: &str = "+13127654321";
const CALLER: &str = "+14158675310";

/// The real router, in this process.
struct Router {
    http: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), switchboard_router::RouterError>>,
    _dir: tempfile::TempDir,
}

impl Router {
    async fn start(nats_url: &str) -> Router {
        let dir = tempfile::tempdir().unwrap();
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("router.db").display()
        );
        let http = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
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

    async fn stop(mut self) {
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
/// step-0 dial-status action; a number with nothing to ring gets the final action.
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
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"20\" \
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

/// Given no router, when a call comes in on a sync-mode gateway, then at the deadline the
/// answer is the async one (ringback), and the call is stored for whoever decides it later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_without_a_decision_answers_ringback_at_the_deadline() {
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
    assert!(resp.assert_twiml().contains("<Play loop=\"0\">"));
    assert!(
        took >= Duration::from_millis(400),
        "answered before the deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(nats.count("call.inbound.acme").await, 1);
    let metrics = get(gw.addr, "/metrics").await.text();
    assert!(
        metrics.contains("switchboard_gateway_sync_answers_total{outcome=\"deadline\"} 1"),
        "{metrics}"
    );
    gw.stop().await.unwrap();
}
