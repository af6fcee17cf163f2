//! A fake Twilio REST API ("modify a live call") that enforces the contract the dialer relies
//! on: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`, HTTP Basic auth with the
//! account SID and auth token, a form body whose only field is `Twiml`, and well-formed TwiML
//! (`<Response>` root, parsed with quick-xml). It records what it accepted and can answer 500s,
//! refuse with 4xx, or hang, per dialed number.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::Event;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ACCOUNT: &str = "ACfake0000000000000000000000000001";
pub const TOKEN: &str = "fake-auth-token";

/// How the fake answers requests that dial a given number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 500 this many more times, then normal.
    Fail500(u32),
    /// 500 forever.
    Always500,
    /// Never answer (the client times out).
    Hang,
    /// 400, Twilio-style error (an invalid number: this request only).
    Refuse,
    /// 400 with code 21220: the call is no longer in progress (the caller hung up).
    Ended,
    /// Wait this long, then 503, every time (a slow, failing carrier: a dialer can be killed
    /// while the request is in flight).
    Slow503(Duration),
    /// Wait this long, then accept.
    SlowOk(Duration),
    /// Each request decided by a hash of (seed, call, number, request index): about a third
    /// answered at once, a third after up to 1.2 s, a sixth 503 at once, a sixth 503 after up
    /// to 1.2 s. Reproducible for a seed.
    Flaky { seed: u64 },
}

fn flaky(seed: u64, call_sid: &str, number: &str, index: usize) -> Mode {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, call_sid, number, index).hash(&mut h);
    let x = h.finish();
    let delay = Duration::from_millis(100 + (x >> 8) % 1100);
    match x % 6 {
        0 | 1 => Mode::SlowOk(Duration::ZERO),
        2 | 3 => Mode::SlowOk(delay),
        4 => Mode::Fail500(1),
        _ => Mode::Slow503(delay),
    }
}

/// An accepted request, read back from its TwiML.
#[derive(Debug, Clone)]
pub struct Modified {
    pub call_sid: String,
    pub twiml: String,
    /// `<Dial><Number>` texts.
    pub numbers: Vec<String>,
    /// `<Dial action>` values.
    pub actions: Vec<String>,
    /// `<Number url>` values (a screened leg's whisper), one per `<Number>` that has one.
    pub screens: Vec<String>,
    /// A `<Reject>` (its `reason`).
    pub reject: Option<String>,
    pub dial_timeout: Option<String>,
    pub says: Vec<String>,
    pub record: bool,
    pub hangup: bool,
}

/// One well-formed request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub call_sid: String,
    /// The dialed number, or "final" for a final action.
    pub number: String,
    /// The `/via/{tag}` it came in on ("" for the plain base URL).
    pub tag: String,
    /// Answered 2xx: the carrier did it.
    pub accepted: bool,
}

#[derive(Default)]
struct Inner {
    accepted: Vec<Modified>,
    /// Every well-formed request per dialed number ("final" for final actions), accepted or not.
    attempts: HashMap<String, u32>,
    /// Every well-formed request, in arrival order.
    ledger: Vec<Request>,
    modes: HashMap<String, Mode>,
}

#[derive(Clone, Default)]
pub struct FakeTwilio {
    inner: Arc<Mutex<Inner>>,
}

pub struct Running {
    pub fake: FakeTwilio,
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTwilio {
    pub async fn start() -> Running {
        let fake = FakeTwilio::default();
        // `/via/{tag}/…` is the same API under another base URL, so a test running several
        // dialers can tell which one sent a request.
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls/{file}", post(modify))
            .route(
                "/via/{tag}/2010-04-01/Accounts/{account}/Calls/{file}",
                post(modify_via),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Running { fake, base, task }
    }

    pub fn set_mode(&self, number: &str, mode: Mode) {
        self.inner.lock().unwrap().modes.insert(number.into(), mode);
    }

    pub fn accepted(&self) -> Vec<Modified> {
        self.inner.lock().unwrap().accepted.clone()
    }

    /// Accepted requests for `call_sid`.
    pub fn for_call(&self, call_sid: &str) -> Vec<Modified> {
        self.accepted()
            .into_iter()
            .filter(|m| m.call_sid == call_sid)
            .collect()
    }

    /// Every well-formed request (accepted or not), in arrival order.
    pub fn ledger(&self) -> Vec<Request> {
        self.inner.lock().unwrap().ledger.clone()
    }

    /// Requests (accepted or not) that dialed `number`.
    pub fn attempts(&self, number: &str) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .attempts
            .get(number)
            .copied()
            .unwrap_or(0)
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({"code": code, "message": message, "status": status.as_u16()})
            .to_string(),
    )
        .into_response()
}

async fn modify_via(
    State(fake): State<FakeTwilio>,
    Path((tag, account, file)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    detached(answer(fake, tag, account, file, headers, body)).await
}

async fn modify(
    State(fake): State<FakeTwilio>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    detached(answer(fake, String::new(), account, file, headers, body)).await
}

/// Like a real carrier, a request carries on when its client hangs up (a timeout, a killed
/// dialer): what it does is done, whether or not anyone reads the answer.
async fn detached(work: impl std::future::Future<Output = Response> + Send + 'static) -> Response {
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn answer(
    fake: FakeTwilio,
    tag: String,
    account: String,
    file: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(call_sid) = file.strip_suffix(".json") else {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
    );
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if account != ACCOUNT || auth != expected {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !form.starts_with("application/x-www-form-urlencoded") {
        return twilio_error(StatusCode::BAD_REQUEST, 20001, "expected a form body");
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let [(name, twiml)] = params.as_slice() else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "expected exactly the Twiml parameter",
        );
    };
    if name != "Twiml" {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "expected exactly the Twiml parameter",
        );
    }
    let Some(modified) = parse_twiml(call_sid, twiml) else {
        return twilio_error(StatusCode::BAD_REQUEST, 12100, "Document parse failure");
    };
    let number = modified
        .numbers
        .first()
        .cloned()
        .unwrap_or_else(|| "final".into());
    let mode = {
        let mut inner = fake.inner.lock().unwrap();
        *inner.attempts.entry(number.clone()).or_default() += 1;
        inner.ledger.push(Request {
            call_sid: call_sid.to_string(),
            number: number.clone(),
            tag,
            accepted: false,
        });
        let entry = inner.ledger.len() - 1;
        let mode = match inner.modes.get(&number).copied() {
            // A flaky carrier's one-off 500 is this answer only, not a mode change.
            Some(Mode::Flaky { seed }) => match flaky(seed, call_sid, &number, entry) {
                Mode::Fail500(_) => Some(Mode::Always500),
                decided => Some(decided),
            },
            Some(Mode::Fail500(n)) => {
                if n <= 1 {
                    inner.modes.remove(&number);
                } else {
                    inner.modes.insert(number.clone(), Mode::Fail500(n - 1));
                }
                Some(Mode::Fail500(n))
            }
            mode => mode,
        };
        (mode, entry)
    };
    let (mode, entry) = mode;
    match mode {
        Some(Mode::Fail500(_)) | Some(Mode::Always500) => {
            return twilio_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                20500,
                "Internal Server Error",
            );
        }
        Some(Mode::Slow503(delay)) => {
            tokio::time::sleep(delay).await;
            return twilio_error(
                StatusCode::SERVICE_UNAVAILABLE,
                20503,
                "Service Unavailable",
            );
        }
        Some(Mode::SlowOk(delay)) => tokio::time::sleep(delay).await,
        Some(Mode::Hang) => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
        Some(Mode::Refuse) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                13223,
                "Dial: Invalid phone number format",
            );
        }
        Some(Mode::Ended) => {
            return twilio_error(
                StatusCode::BAD_REQUEST,
                21220,
                "Call is not in-progress. Cannot redirect.",
            );
        }
        Some(Mode::Flaky { .. }) | None => {}
    }
    accept(&fake, entry, modified)
}

/// Records the request as done and answers as Twilio does.
fn accept(fake: &FakeTwilio, entry: usize, modified: Modified) -> Response {
    let call_sid = modified.call_sid.clone();
    {
        let mut inner = fake.inner.lock().unwrap();
        inner.ledger[entry].accepted = true;
        inner.accepted.push(modified);
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        serde_json::json!({"sid": call_sid, "account_sid": ACCOUNT, "status": "in-progress"})
            .to_string(),
    )
        .into_response()
}

/// Reads TwiML strictly; `None` unless it is a well-formed `<Response>` document.
fn parse_twiml(call_sid: &str, twiml: &str) -> Option<Modified> {
    let mut reader = Reader::from_str(twiml);
    let mut m = Modified {
        call_sid: call_sid.into(),
        twiml: twiml.into(),
        numbers: vec![],
        actions: vec![],
        screens: vec![],
        reject: None,
        dial_timeout: None,
        says: vec![],
        record: false,
        hangup: false,
    };
    let mut stack: Vec<String> = vec![];
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        match reader.read_event().ok()? {
            Event::Decl(_) => {}
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                if stack.is_empty() {
                    if name != "Response" || saw_root {
                        return None;
                    }
                    saw_root = true;
                }
                element(&mut m, &name, &e)?;
                stack.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                if stack.is_empty() {
                    return None;
                }
                element(&mut m, &name, &e)?;
            }
            Event::End(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).ok()?;
                if stack.pop()? != name {
                    return None;
                }
                match name.as_str() {
                    "Number" => m.numbers.push(std::mem::take(&mut text)),
                    "Say" => m.says.push(std::mem::take(&mut text)),
                    _ => text.clear(),
                }
            }
            Event::Text(t) => {
                let decoded = t.decode().ok()?;
                if !matches!(stack.last().map(String::as_str), Some("Number" | "Say"))
                    && !decoded.trim().is_empty()
                {
                    return None;
                }
                text.push_str(&decoded);
            }
            Event::GeneralRef(r) => {
                // An entity reference inside a text node (quick-xml reports these apart).
                let name = String::from_utf8(r.to_vec()).ok()?;
                text.push_str(match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => return None,
                });
            }
            Event::Eof => break,
            _ => return None,
        }
    }
    (saw_root && stack.is_empty()).then_some(m)
}

fn element(m: &mut Modified, name: &str, e: &quick_xml::events::BytesStart<'_>) -> Option<()> {
    match name {
        "Response" | "Say" => {}
        "Number" => {
            let mut url = None;
            for attr in e.attributes() {
                let attr = attr.ok()?;
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .ok()?
                    .into_owned();
                match attr.key.as_ref() {
                    // Twilio requests it on the called party's leg: it must be absolute.
                    b"url" if value.starts_with("http://") || value.starts_with("https://") => {
                        url = Some(value)
                    }
                    b"method" if value == "POST" || value == "GET" => {}
                    _ => return None,
                }
            }
            m.screens.extend(url);
        }
        "Reject" => {
            let mut reason = "rejected".to_string();
            for attr in e.attributes() {
                let attr = attr.ok()?;
                let value = String::from_utf8(attr.value.to_vec()).ok()?;
                match (attr.key.as_ref(), value.as_str()) {
                    (b"reason", "busy" | "rejected") => reason = value,
                    _ => return None,
                }
            }
            m.reject = Some(reason);
        }
        "Dial" => {
            for attr in e.attributes() {
                let attr = attr.ok()?;
                let value = attr
                    .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .ok()?
                    .into_owned();
                match attr.key.as_ref() {
                    b"action" => {
                        if !value.starts_with("http://") && !value.starts_with("https://") {
                            return None; // action URLs must be absolute
                        }
                        m.actions.push(value)
                    }
                    b"timeout" => m.dial_timeout = Some(value),
                    b"method" | b"answerOnBridge" => {}
                    _ => return None,
                }
            }
        }
        "Record" => m.record = true,
        "Hangup" => m.hangup = true,
        _ => return None,
    }
    Some(())
}
