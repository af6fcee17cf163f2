//! Shared helpers: a real nats-server with both streams, decisions and statuses, dial events
//! read back from CALLS, the dialer in-process or as the real binary.

use crate::fake_twilio::{ACCOUNT, TOKEN};
use async_nats::jetstream::{self, consumer};
use clap::Parser;
use futures::StreamExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use switchboard_bus::{CALLS, Published, Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{
    CallDial, CallRoute, CallStatus, DialCallStatus, DialEventKind, E164, EntityId, Envelope,
    EventData, FinalAction, FinalActionKind, Reason, Rule, Target, TenantId,
};
use switchboard_dialer::{Carrier, Config, DialerError};
use switchboard_testkit::{NatsServer, eventually};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Deadline for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(20);
const SOURCE: &str = "/switchboard/test";
pub const T: &str = "acme";
/// The gateway's public URL the action URLs are built from.
pub const PUBLIC: &str = "https://gw.example.test";

pub const USER_PHONE: &str = "+14158675310";
pub const FORWARDING: &str = "+13127654321";
pub const COMPANY: &str = "+16172531234";

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn target(number: &str, rule: Rule) -> Target {
    Target {
        number: E164::parse_strict(number).unwrap(),
        user_id: (rule == Rule::AssignedUser).then(|| EntityId::parse("id", "u-alice").unwrap()),
        rule,
        ring_timeout_secs: None,
        group: Vec::new(),
        screen: false,
    }
}

/// The full chain: user phone → forwarding number → company phone → `final_action`.
pub fn full_chain(call_id: &str, final_action: FinalAction) -> CallRoute {
    CallRoute {
        call_id: call_id.into(),
        tenant_id: tenant(T),
        rule: Rule::AssignedUser,
        target: Some(target(USER_PHONE, Rule::AssignedUser)),
        fallbacks: vec![
            target(FORWARDING, Rule::ForwardingNumber),
            target(COMPANY, Rule::CompanyPhone),
        ],
        final_action,
        reasons: vec![Reason::NoCompanyPhone],
        explanation: Vec::new(),
        settings_seq: 1,
        calls_seq: 0,
        caller: None,
        decided_at: OffsetDateTime::now_utc(),
    }
}

pub fn no_route(call_id: &str, kind: FinalActionKind, message: &str) -> CallRoute {
    CallRoute {
        rule: Rule::NoRoute,
        target: None,
        fallbacks: vec![],
        final_action: FinalAction {
            kind,
            message: message.into(),
        },
        ..full_chain(call_id, FinalAction::default())
    }
}

pub fn status(call_id: &str, step: u32, s: DialCallStatus) -> CallStatus {
    CallStatus {
        call_id: call_id.into(),
        tenant_id: tenant(T),
        step,
        dial_call_status: s,
        dial_call_sid: Some(format!("CAleg{step}")),
        dial_call_duration: None,
        received_at: OffsetDateTime::now_utc(),
    }
}

/// The dial-status action URL of `step`.
pub fn action(step: u32) -> String {
    format!("{PUBLIC}/v1/tenants/{T}/twilio/dial-status?step={step}")
}

/// The tenants file with the fake's credentials.
pub fn tenants_json() -> String {
    format!(r#"{{"{T}": {{"twilio_auth_token": "{TOKEN}", "twilio_account_sid": "{ACCOUNT}"}}}}"#)
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

pub struct Nats {
    pub server: NatsServer,
    pub js: jetstream::Context,
    pub publisher: Publisher,
}

impl Nats {
    pub async fn start() -> Nats {
        let server = NatsServer::start().unwrap();
        let js = jetstream::new(server.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        let publisher = Publisher::new(js.clone());
        Nats {
            server,
            js,
            publisher,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub async fn publish<T: EventData>(&self, data: T) -> Published {
        let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
        self.publisher
            .publish(&event, &TraceContext::default())
            .await
            .unwrap()
    }

    /// Publishes `route` as a router before v2 did (type `switchboard.call.route.v1`, prose
    /// instead of reasons): such decisions may still be in flight during an upgrade.
    pub async fn publish_v1(&self, route: CallRoute) -> Published {
        let mut event = Envelope::new(route.to_v1(), SOURCE, OffsetDateTime::now_utc());
        event.event_type = "switchboard.call.route.v1".into();
        self.publisher
            .publish(&event, &TraceContext::default())
            .await
            .unwrap()
    }

    /// Publishes `data` again under another `Nats-Msg-Id`, as a second producer (or a replay)
    /// would: JetStream stores and delivers it a second time.
    pub async fn republish<T: EventData>(&self, data: T, msg_id: &str) -> Published {
        let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
        let subject = event.data.nats_subject();
        self.publisher
            .send_raw(
                subject,
                msg_id,
                event.to_json().unwrap().into(),
                &TraceContext::default(),
            )
            .await
            .unwrap()
            .ack()
            .await
            .unwrap()
    }

    /// Every message of CALLS on `filter`, decoded as `T`.
    pub async fn read<T: EventData>(&self, filter: &str) -> Vec<Envelope<T>> {
        let stream = self.js.get_stream(CALLS).await.unwrap();
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: filter.to_string(),
                ack_policy: consumer::AckPolicy::None,
                deliver_policy: consumer::DeliverPolicy::All,
                inactive_threshold: Duration::from_secs(10),
                ..Default::default()
            })
            .await
            .unwrap();
        let total = usize::try_from(consumer.cached_info().num_pending).unwrap();
        let mut out = Vec::with_capacity(total);
        while out.len() < total {
            let mut batch = consumer
                .batch()
                .max_messages(total - out.len())
                .expires(Duration::from_secs(5))
                .messages()
                .await
                .unwrap();
            let before = out.len();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                out.push(Envelope::<T>::decode(&message.payload, &message.subject).unwrap());
            }
            assert!(
                out.len() > before,
                "reading {filter}: the stream stopped delivering"
            );
        }
        let _ = stream.delete_consumer(&consumer.cached_info().name).await;
        out
    }

    /// The dial events of `call_id`, in stream order.
    pub async fn dial_events(&self, call_id: &str) -> Vec<CallDial> {
        self.read::<CallDial>(&format!("call.dial.{T}"))
            .await
            .into_iter()
            .map(|e| e.data)
            .filter(|d| d.call_id == call_id)
            .collect()
    }

    /// `(step, kind)` of the dial events of `call_id`.
    pub async fn dial_kinds(&self, call_id: &str) -> Vec<(u32, DialEventKind)> {
        self.dial_events(call_id)
            .await
            .into_iter()
            .map(|d| (d.step, d.kind))
            .collect()
    }

    /// Waits until `call_id` has a dial event of `kind` at `step`; returns it.
    pub async fn wait_dial(&self, call_id: &str, step: u32, kind: DialEventKind) -> CallDial {
        eventually(
            WAIT,
            &format!("{call_id}: {kind:?} at step {step}"),
            || async {
                self.dial_events(call_id)
                    .await
                    .into_iter()
                    .find(|d| d.step == step && d.kind == kind)
            },
        )
        .await
        .unwrap()
    }

    /// Waits until both dialer consumers have nothing pending or unacknowledged.
    pub async fn wait_settled(&self) {
        eventually(WAIT, "dialer consumers settled", || async {
            let stream = self.js.get_stream(CALLS).await.ok()?;
            for name in ["dialer-route", "dialer-status"] {
                let mut c: consumer::PullConsumer = stream.get_consumer(name).await.ok()?;
                let info = c.info().await.ok()?;
                if info.num_pending != 0 || info.num_ack_pending != 0 {
                    return None;
                }
            }
            Some(())
        })
        .await
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The dialer
// ---------------------------------------------------------------------------------------------

/// The dialer's arguments for `nats_url` and a Twilio API at `api_base`; fast retries.
pub fn args(nats_url: &str, api_base: &str) -> Vec<String> {
    [
        "switchboard-dialer",
        "--nats-url",
        nats_url,
        "--http-addr",
        "127.0.0.1:0",
        "--carrier",
        "twilio",
        "--twilio-api-base",
        api_base,
        "--public-base-url",
        PUBLIC,
        "--carrier-timeout-ms",
        "500",
        "--carrier-max-attempts",
        "3",
        "--carrier-backoff-ms",
        "20",
        "--carrier-backoff-max-ms",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A dialer running in-process.
pub struct Dialer {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), DialerError>>,
}

impl Dialer {
    pub fn start(args: Vec<String>) -> Dialer {
        Self::start_with(args, None)
    }

    pub fn start_with(mut args: Vec<String>, carrier: Option<Arc<dyn Carrier>>) -> Dialer {
        args.push("--tenants-json".into());
        args.push(tenants_json());
        let config = Config::try_parse_from(args).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_dialer::run_with(config, carrier, async move {
            let _ = stopped.await;
        }));
        Dialer {
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the dialer stops")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real binary, killed with SIGKILL on drop.
pub struct Process {
    child: Child,
    _dir: TempDir,
}

impl Process {
    pub fn spawn(args: &[String]) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let tenants: PathBuf = dir.path().join("tenants.json");
        std::fs::write(&tenants, tenants_json()).unwrap();
        let log = std::fs::File::create(dir.path().join("dialer.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard-dialer"))
            .args(&args[1..])
            .arg("--tenants-file")
            .arg(&tenants)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Process { child, _dir: dir }
    }

    /// SIGKILL: no shutdown, nothing settled.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
