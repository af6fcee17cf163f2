//! Shared helpers: a real nats-server with the streams, the gateway running in-process on a
//! port of its own, a small HTTP/1.1 client, Twilio signatures computed here from Twilio's
//! algorithm (independently of the gateway's code), and the CALLS stream read back.

use async_nats::jetstream::{self, consumer};
use base64::Engine;
use clap::Parser;
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_bus::{CALLS, StreamOptions, ensure_streams};
use switchboard_gateway::{Config, GatewayError};
use switchboard_testkit::{NatsServer, ReservedPort, eventually};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Deadline for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(20);
/// The public base URL Twilio sees; the test connects to 127.0.0.1 (an ingress in between).
pub const PUBLIC: &str = "https://switchboard.example.com";
pub const ACME_TOKEN: &str = "acme-fake-auth-token";
pub const ACME_ACCOUNT: &str = "AC00000000000000000000000000acme";
pub const BETA_TOKEN: &str = "beta-fake-auth-token";
/// API keys of the JSON API (the secrets file holds their SHA-256 only).
pub const ACME_KEY: &str = "sbk_acme0000000000000000000000000000000000000000";
pub const BETA_KEY: &str = "sbk_beta0000000000000000000000000000000000000000";

/// A tenant's `api_keys` entry for `key`.
pub fn key_entry(id: &str, key: &str) -> serde_json::Value {
    switchboard_tenants::api_keys::stored(id, key)
        .unwrap()
        .to_json()
}

/// The tenants file of [`Gateway::start`], with `acme`'s keys `acme_keys` (id, key).
pub fn tenants_json(acme_keys: &[(&str, &str)]) -> serde_json::Value {
    serde_json::json!({
        "acme": {
            "twilio_auth_token": ACME_TOKEN,
            "twilio_account_sid": ACME_ACCOUNT,
            "api_keys": acme_keys.iter().map(|(id, key)| key_entry(id, key)).collect::<Vec<_>>(),
        },
        "beta": {
            "twilio_auth_token": BETA_TOKEN,
            "no_instruction_timeout_secs": 20,
            "api_keys": [key_entry("b1", BETA_KEY)],
        },
    })
}
pub const FORM: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------------------------
// Twilio's signature, from its documented algorithm
// ---------------------------------------------------------------------------------------------

/// HMAC-SHA1 keyed with `token` over `url` followed by every parameter sorted by name, name
/// then value; base64.
pub fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The parameters Twilio sends on an inbound call, plus ones the gateway does not know.
pub fn voice_params<'a>(call_sid: &'a str, to: &'a str, from: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", ACME_ACCOUNT),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", call_sid),
        ("CallStatus", "ringing"),
        ("Called", to),
        ("Caller", from),
        ("CallerCity", "SAN FRANCISCO"),
        ("Direction", "inbound"),
        ("From", from),
        ("StirVerstat", "TN-Validation-Passed-A"),
        ("To", to),
    ]
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_ascii_lowercase()
    }
    /// Asserts a TwiML document (`text/xml`, `<Response>`).
    pub fn assert_twiml(&self) -> String {
        assert_eq!(self.content_type(), "text/xml", "{self:?}");
        let text = self.text();
        assert!(
            text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>")
                && text.ends_with("</Response>"),
            "not TwiML: {text}"
        );
        text
    }
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..eol])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server refusing a large body may close before reading it all: read its answer anyway.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("no answer in time")
        .unwrap();
    parse_response(&raw)
}

/// Only the headers of a request announcing `content_length` bytes; the answer is read
/// without sending the body (what a server that refuses by `Content-Length` must handle).
pub async fn request_announcing(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    content_length: usize,
) -> Resp {
    // (The JSON API's paths need a key; webhooks ignore it.)
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {ACME_KEY}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("no answer in time")
        .unwrap();
    parse_response(&raw)
}

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[], b"").await
}

/// A signed Twilio webhook: `path` (with its query) is what the ingress forwards, the
/// signature covers `PUBLIC` + `path`.
pub async fn twilio(addr: SocketAddr, path: &str, token: &str, params: &[(&str, &str)]) -> Resp {
    let signature = twilio_signature(token, &format!("{PUBLIC}{path}"), params);
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", FORM), ("X-Twilio-Signature", &signature)],
        form(params).as_bytes(),
    )
    .await
}

/// POSTs JSON with the API key of the path's tenant (`beta`'s on its paths, else `acme`'s).
pub async fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Resp {
    let key = if path.starts_with("/v1/tenants/beta/") {
        BETA_KEY
    } else {
        ACME_KEY
    };
    post_json_as(addr, path, Some(&format!("Bearer {key}")), body).await
}

/// POSTs JSON with `authorization` as the `Authorization` header (none if `None`).
pub async fn post_json_as(
    addr: SocketAddr,
    path: &str,
    authorization: Option<&str>,
    body: &serde_json::Value,
) -> Resp {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(value) = authorization {
        headers.push(("Authorization", value));
    }
    request(addr, "POST", path, &headers, body.to_string().as_bytes()).await
}

pub fn voice_path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/twilio/voice")
}

pub fn status_path(tenant: &str, step: u32) -> String {
    format!("/v1/tenants/{tenant}/twilio/dial-status?step={step}")
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A loopback port nothing listens on until a server binds it, held while the value lives so
/// that no parallel test is given it meanwhile (see [`ReservedPort`]).
pub fn reserve_port() -> ReservedPort {
    ReservedPort::new().unwrap()
}

/// A child process killed (and reaped) when the test ends, passed or not.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// NATS
// ---------------------------------------------------------------------------------------------

/// A stored message of the CALLS stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// The stream that holds `filter`'s subjects.
fn stream_of(filter: &str) -> &'static str {
    if filter.starts_with("settings.") {
        switchboard_bus::SETTINGS
    } else {
        CALLS
    }
}

/// A real nats-server with CALLS and SETTINGS provisioned, and a test client on it.
pub struct Nats {
    pub server: NatsServer,
    pub js: jetstream::Context,
}

impl Nats {
    pub async fn start() -> Nats {
        let server = NatsServer::start().unwrap();
        let js = jetstream::new(server.client().await.unwrap());
        ensure_streams(&js, &StreamOptions::default())
            .await
            .unwrap();
        Nats { server, js }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every message on `filter` (of SETTINGS for `settings.…`, else of CALLS), in stream order.
    pub async fn read(&self, filter: &str) -> Vec<Stored> {
        let stream = self.js.get_stream(stream_of(filter)).await.unwrap();
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
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let headers = message
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .flat_map(|(k, vs)| {
                        vs.iter()
                            .map(|v| (k.to_string(), v.to_string()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                out.push(Stored {
                    subject: message.subject.to_string(),
                    payload: message.payload.to_vec(),
                    headers,
                });
            }
        }
        let _ = stream.delete_consumer(&consumer.cached_info().name).await;
        out
    }

    /// How many messages are stored on `filter` (SETTINGS for `settings.…`, else CALLS).
    pub async fn count(&self, filter: &str) -> usize {
        let stream = self.js.get_stream(stream_of(filter)).await.unwrap();
        let mut subjects = stream.info_with_subjects(filter).await.unwrap();
        let mut total = 0;
        while let Some(entry) = subjects.next().await {
            total += entry.unwrap().1;
        }
        total
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------

/// The gateway running in this process, on a port of its own.
pub struct Gateway {
    pub addr: SocketAddr,
    /// The tenants file it reads (rewrite it to add, rotate or revoke keys).
    pub tenants_file: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), GatewayError>>>,
    /// Holds `addr` after the gateway has closed it too, so that "nothing answers there any
    /// more" cannot be contradicted by a parallel test's server given the port.
    _port: ReservedPort,
    _dir: TempDir,
}

impl Gateway {
    /// Starts the gateway with tenants `acme` (account checked) and `beta` and `extra`
    /// arguments, and waits until it is ready.
    pub async fn start(nats_url: &str, extra: &[&str]) -> Gateway {
        let gateway = Gateway::spawn(nats_url, extra).await;
        gateway.wait_status("/readyz", 200).await;
        gateway
    }

    pub async fn spawn(nats_url: &str, extra: &[&str]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let tenants = dir.path().join("tenants.json");
        std::fs::write(&tenants, tenants_json(&[("a1", ACME_KEY)]).to_string()).unwrap();
        let tenants = tenants.display().to_string();
        let mut args = vec![
            "switchboard-gateway",
            "--nats-url",
            nats_url,
            "--public-base-url",
            PUBLIC,
            "--tenants-file",
            &tenants,
        ];
        args.extend_from_slice(extra);
        let config = Config::parse_from(args);
        let port = reserve_port();
        let listener = tokio::net::TcpListener::bind(port.addr()).await.unwrap();
        let addr = port.addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(switchboard_gateway::run_with_listener(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Gateway {
            addr,
            stop: Some(stop),
            task: Some(task),
            tenants_file: dir.path().join("tenants.json"),
            _port: port,
            _dir: dir,
        }
    }

    /// Waits until `GET path` answers `status`.
    pub async fn wait_status(&self, path: &str, status: u16) {
        let addr = self.addr;
        eventually(
            WAIT,
            &format!("GET {path} to answer {status}"),
            || async move {
                let connected = TcpStream::connect(addr).await.is_ok();
                if !connected {
                    return None;
                }
                (get(addr, path).await.status == status).then_some(())
            },
        )
        .await
        .unwrap();
    }

    /// Requests shutdown without waiting.
    pub fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Requests shutdown and waits for `run` to return.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        self.request_stop();
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the gateway did not stop in time")
            .unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
