//! The whole stack in this process: a real nats-server, the router (SQLite projection), the
//! gateway (async answers) and the dialer (sandbox carrier: step 0 answers), with the tenant
//! `acme` configured; calls placed through the gateway's JSON API.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_bus::{Publisher, StreamOptions, TraceContext, ensure_streams};
use switchboard_contracts::{CompanySettings, E164, Envelope, EventData, NumberSettings, TenantId};
use switchboard_testkit::{NatsServer, ReservedPort, eventually};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Deadline for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(30);
pub const TENANT: &str = "acme";
/// The tenant's API key for the gateway's JSON API (its SHA-256 is in the tenants' secrets).
pub const API_KEY: &str = "sbk_e2e-0000000000000000000000000000000000000000";
const API_KEY_SHA256: &str = "e661b1c008356b1b6b82556748abc6736edf24ec6f4745e3648fdc008af9ed29";
/// The dialed number: forwards to [`FORWARDING`].
pub const NUMBER: &str = "+16502530000";
pub const FORWARDING: &str = "+13127654321";
pub const COMPANY: &str = "+16172531234";
pub const CALLER: &str = "+14158675310";

/// A loopback port for a service's HTTP server, held while the value lives so that no
/// parallel test is given it first (see [`ReservedPort`]).
fn reserve_port() -> ReservedPort {
    ReservedPort::new().unwrap()
}

type Task = JoinHandle<Result<(), String>>;

pub struct Stack {
    pub nats: NatsServer,
    pub gateway: SocketAddr,
    pub router: SocketAddr,
    pub dialer: SocketAddr,
    pub http: reqwest::Client,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<(&'static str, Task)>,
    /// Hold the router's and the dialer's HTTP ports.
    _ports: [ReservedPort; 2],
    _dir: TempDir,
}

fn stopper() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async move {
        let _ = stopped.await;
    })
}

impl Stack {
    /// Starts everything and waits until the three services are ready; the sandbox carrier
    /// answers every step.
    pub async fn start() -> Stack {
        Stack::start_with_outcomes("completed").await
    }

    /// [`Stack::start`] with the sandbox carrier's `--sandbox-outcomes` (e.g. `no_answer`:
    /// every step goes unanswered and the call ends missed).
    pub async fn start_with_outcomes(outcomes: &str) -> Stack {
        let nats = NatsServer::start().unwrap();
        let url = nats.url();
        let js = async_nats::jetstream::new(nats.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        let publisher = Publisher::new(js);
        let tenant = TenantId::new(TENANT).unwrap();
        settings(
            &publisher,
            CompanySettings {
                tenant_id: tenant.clone(),
                version: 1,
                company_phone: Some(COMPANY.into()),
                default_region: None,
                final_action: None,
                time_zone: None,
                business_hours: None,
                after_hours: None,
                ring_timeout_secs: None,
                returning_caller_days: 0,
                blocked_callers: Vec::new(),
                blocked_action: None,
                anonymous_callers: None,
                screening: None,
            },
        )
        .await;
        settings(
            &publisher,
            NumberSettings {
                tenant_id: tenant,
                version: 1,
                number: E164::parse_strict(NUMBER).unwrap(),
                forwarding_number: Some(FORWARDING.into()),
                released: false,
                user_id: None,
                prefer: Default::default(),
                ring_timeout_secs: None,
                ring_group: None,
            },
        )
        .await;

        let dir = tempfile::tempdir().unwrap();
        let tenants = serde_json::json!({
            TENANT: {
                "twilio_auth_token": "e2e-fake-token",
                "twilio_account_sid": "AC00000000000000000000000000e2e0",
                "api_keys": [{"id": "e2e", "sha256": API_KEY_SHA256}],
            }
        })
        .to_string();
        let mut stops = Vec::new();
        let mut tasks: Vec<(&'static str, Task)> = Vec::new();

        let router_port = reserve_port();
        let router = router_port.addr();
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("router.db").display()
        );
        let config = switchboard_router::Config::parse_from([
            "switchboard-router",
            "--nats-url",
            &url,
            "--database-url",
            &db,
            "--http-addr",
            &router.to_string(),
        ]);
        let (stop, stopped) = stopper();
        stops.push(stop);
        tasks.push((
            "router",
            tokio::spawn(async move {
                switchboard_router::run(config, stopped)
                    .await
                    .map_err(|e| e.to_string())
            }),
        ));

        let dialer_port = reserve_port();
        let dialer = dialer_port.addr();
        let config = switchboard_dialer::Config::parse_from([
            "switchboard-dialer",
            "--nats-url",
            &url,
            "--http-addr",
            &dialer.to_string(),
            "--carrier",
            "sandbox",
            "--sandbox-outcomes",
            outcomes,
            "--sandbox-ring-ms",
            "50",
            "--tenants-json",
            &tenants,
        ]);
        let (stop, stopped) = stopper();
        stops.push(stop);
        tasks.push((
            "dialer",
            tokio::spawn(async move {
                switchboard_dialer::run(config, stopped)
                    .await
                    .map_err(|e| e.to_string())
            }),
        ));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = listener.local_addr().unwrap();
        let config = switchboard_gateway::Config::parse_from([
            "switchboard-gateway",
            "--nats-url",
            &url,
            "--public-base-url",
            "https://switchboard.example.com",
            "--tenants-json",
            &tenants,
        ]);
        let (stop, stopped) = stopper();
        stops.push(stop);
        tasks.push((
            "gateway",
            tokio::spawn(async move {
                switchboard_gateway::run_with_listener(config, listener, stopped)
                    .await
                    .map_err(|e| e.to_string())
            }),
        ));

        let stack = Stack {
            nats,
            gateway,
            router,
            dialer,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stops,
            tasks,
            _ports: [router_port, dialer_port],
            _dir: dir,
        };
        for addr in [stack.router, stack.dialer, stack.gateway] {
            stack.wait_ready(addr).await;
        }
        stack
    }

    async fn wait_ready(&self, addr: SocketAddr) {
        eventually(WAIT, &format!("{addr}/readyz to answer 200"), || async {
            let response = self
                .http
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .ok()?;
            (response.status().as_u16() == 200).then_some(())
        })
        .await
        .unwrap();
    }

    /// Places `call_id` through the gateway's JSON API (with `traceparent`, if given); the
    /// status code.
    pub async fn call(&self, call_id: &str, traceparent: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(format!("http://{}/v1/tenants/{TENANT}/calls", self.gateway))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(
                serde_json::json!({"call_id": call_id, "to": NUMBER, "from": CALLER}).to_string(),
            );
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Publishes a settings change, as the CRM would.
    pub async fn settings<T: EventData>(&self, data: T) {
        let js = async_nats::jetstream::new(self.nats.client().await.unwrap());
        settings(&Publisher::new(js), data).await;
    }

    /// Places `call_id` from `from` through the gateway's JSON API; the status code.
    pub async fn call_from(&self, call_id: &str, from: &str) -> u16 {
        self.http
            .post(format!("http://{}/v1/tenants/{TENANT}/calls", self.gateway))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(serde_json::json!({"call_id": call_id, "to": NUMBER, "from": from}).to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Every CALLS message stored so far on a subject starting with `prefix`: (sequence,
    /// subject, payload), in stream order.
    pub async fn calls(&self, prefix: &str) -> Vec<(u64, String, Vec<u8>)> {
        let js = async_nats::jetstream::new(self.nats.client().await.unwrap());
        let mut stream = js.get_stream(switchboard_bus::CALLS).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await
                && m.subject.starts_with(prefix)
            {
                out.push((seq, m.subject.to_string(), m.payload.to_vec()));
            }
        }
        out
    }

    /// Publishes `payload` on `subject` with `Nats-Msg-Id` `id`, as a foreign producer would.
    pub async fn publish_raw(&self, subject: &str, id: &str, payload: &'static [u8]) {
        let js = async_nats::jetstream::new(self.nats.client().await.unwrap());
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        js.publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The text of `GET /metrics` on `addr`.
    pub async fn metrics(&self, addr: SocketAddr) -> String {
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the three services and checks they stopped cleanly.
    pub async fn stop(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for (name, task) in self.tasks.drain(..) {
            let outcome = tokio::time::timeout(WAIT, task)
                .await
                .unwrap_or_else(|_| panic!("the {name} did not stop in time"))
                .unwrap();
            assert_eq!(outcome, Ok(()), "the {name} stopped with an error");
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
    }
}

async fn settings<T: EventData>(publisher: &Publisher, data: T) {
    let event = Envelope::new(data, "/switchboard/e2e", OffsetDateTime::now_utc());
    publisher
        .publish(&event, &TraceContext::default())
        .await
        .unwrap();
}
