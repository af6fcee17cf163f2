//! Twilio's REST API, the one request Switchboard makes: "modify a live call" —
//! `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with the form
//! parameter `Twiml` (what the call does from now on), HTTP Basic auth with the account SID and
//! its auth token. [`Client::modify_call`] builds and sends it and classifies the outcome:
//! accepted, worth retrying ([`Error::Transient`]), refused ([`Error::Refused`]), or sent with no
//! answer ([`Error::Unknown`]: Twilio may have done it). One attempt:
//! retries, backoff and which credentials belong to which tenant are the caller's.

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Twilio's production API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// Longest part of Twilio's error `message` kept in a reason.
const MAX_MESSAGE_CHARS: usize = 300;

/// Twilio modified the call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Modified {
    /// The id of the call Twilio modified (`sid` of its answer), when it says.
    pub sid: Option<String>,
}

/// Why one request failed; the text is a reason for logs and events (it never holds a
/// credential or the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Worth retrying: 5xx, 429, a connection that could not be made (nothing was sent).
    #[error("{0}")]
    Transient(String),
    /// Final: Twilio refused (4xx other than 429), e.g. `Twilio HTTP 400 (code 21220): Call is
    /// not in-progress. Cannot redirect.`
    #[error("{0}")]
    Refused(String),
    /// The request was sent and no answer came back (timed out, connection lost): Twilio may
    /// have done it. Retrying a `<Dial>` could ring its number twice.
    #[error("{0}")]
    Unknown(String),
}

impl Error {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_))
    }
}

/// A client of Twilio's REST API (HTTP/1.1 over rustls, one connection pool). Cheap to share:
/// hold one per process.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api_base: String,
}

impl Client {
    /// A client of `api_base` ([`DEFAULT_API_BASE`], or a fake in tests; a trailing `/` is
    /// ignored) sending `user_agent`; each request, connecting included, times out after
    /// `timeout`.
    pub fn new(api_base: &str, timeout: Duration, user_agent: &str) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
        })
    }

    /// The URL of the live call `call_sid` of `account_sid`, both percent-encoded as path
    /// segments.
    pub fn call_url(&self, account_sid: &str, call_sid: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Calls/{}.json",
            self.api_base,
            crate::urls::path_segment(account_sid),
            crate::urls::path_segment(call_sid)
        )
    }

    /// One attempt at making the live call `call_sid` of `account_sid` (authenticated with
    /// `auth_token`) do `twiml` from now on ([`crate::twiml`]). No retries.
    pub async fn modify_call(
        &self,
        account_sid: &str,
        auth_token: &SecretString,
        call_sid: &str,
        twiml: &str,
    ) -> Result<Modified, Error> {
        let response = self
            .http
            .post(self.call_url(account_sid, call_sid))
            .basic_auth(account_sid, Some(auth_token.expose_secret()))
            .form(&[("Twiml", twiml)])
            .send()
            .await
            .map_err(|e| {
                // Without the URL: it is public, but keep log lines short and uniform.
                if e.is_connect() {
                    // Nothing reached Twilio.
                    Error::Transient(format!("Twilio connection failed: {}", e.without_url()))
                } else {
                    let what = if e.is_timeout() {
                        "timed out"
                    } else {
                        "request failed"
                    };
                    Error::Unknown(format!(
                        "Twilio {what} after the request was sent: {}",
                        e.without_url()
                    ))
                }
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status.is_success() {
            return Ok(Modified {
                sid: json["sid"].as_str().map(str::to_string),
            });
        }
        let mut reason = format!("Twilio HTTP {}", status.as_u16());
        if let Some(code) = json["code"].as_u64() {
            reason.push_str(&format!(" (code {code})"));
        }
        if let Some(message) = json["message"].as_str() {
            let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            reason.push_str(&format!(": {message}"));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Error::Transient(reason))
        } else {
            Err(Error::Refused(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode, Uri};
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};

    /// What the fake saw: path as sent, Authorization, Content-Type, the `Twiml` parameter.
    type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

    /// A fake Twilio answering by the call id in the path.
    async fn fake() -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let twiml = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "Twiml")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let path = uri.path().to_string();
                record.lock().unwrap().push((
                    path.clone(),
                    header("authorization"),
                    header("content-type"),
                    twiml,
                ));
                let error = |status: StatusCode, code: u32, message: &str| {
                    (
                        status,
                        serde_json::json!({"code": code, "message": message, "status": status.as_u16()})
                            .to_string(),
                    )
                        .into_response()
                };
                match path.rsplit('/').next().unwrap_or("") {
                    "CAbusy.json" => error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests"),
                    "CAdown.json" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
                    "CAgone.json" => error(
                        StatusCode::BAD_REQUEST,
                        21220,
                        &format!("Call is not in-progress. Cannot redirect.{}", "!".repeat(400)),
                    ),
                    "CAhang.json" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        StatusCode::OK.into_response()
                    }
                    leaf => (
                        StatusCode::OK,
                        serde_json::json!({"sid": leaf.trim_end_matches(".json"), "status": "in-progress"})
                            .to_string(),
                    )
                        .into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn token() -> SecretString {
        SecretString::from("tok:en")
    }

    #[tokio::test]
    async fn a_modification_is_a_signed_form_post_of_the_twiml() {
        let (base, seen) = fake().await;
        let client = Client::new(&base, Duration::from_secs(5), "switchboard-test/1").unwrap();
        let modified = client
            .modify_call("AC1", &token(), "CA/1 x", "<Response><Hangup/></Response>")
            .await
            .unwrap();
        assert_eq!(modified.sid.as_deref(), Some("CA%2F1%20x"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![(
                "/2010-04-01/Accounts/AC1/Calls/CA%2F1%20x.json".to_string(),
                // base64("AC1:tok:en")
                "Basic QUMxOnRvazplbg==".to_string(),
                "application/x-www-form-urlencoded".to_string(),
                "<Response><Hangup/></Response>".to_string(),
            )]
        );
    }

    #[tokio::test]
    async fn outcomes_are_classified() {
        let (base, _) = fake().await;
        let client = Client::new(&base, Duration::from_millis(300), "t").unwrap();
        let modify = |call: &'static str| {
            let client = client.clone();
            async move {
                client
                    .modify_call("AC1", &token(), call, "<Response/>")
                    .await
            }
        };
        assert_eq!(
            modify("CAbusy").await,
            Err(Error::Transient(
                "Twilio HTTP 429 (code 20429): Too Many Requests".into()
            ))
        );
        assert_eq!(
            modify("CAdown").await,
            Err(Error::Transient("Twilio HTTP 502".into()))
        );
        let Err(Error::Refused(reason)) = modify("CAgone").await else {
            panic!("a 400 is refused");
        };
        assert!(
            reason.starts_with("Twilio HTTP 400 (code 21220): Call is not in-progress."),
            "{reason}"
        );
        assert_eq!(
            reason.len(),
            "Twilio HTTP 400 (code 21220): ".len() + MAX_MESSAGE_CHARS
        );
        // Sent, then no answer: Twilio may have done it.
        let hung = modify("CAhang").await.unwrap_err();
        assert!(
            matches!(&hung, Error::Unknown(_))
                && !hung.is_transient()
                && hung
                    .to_string()
                    .starts_with("Twilio timed out after the request was sent"),
            "{hung}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_api_is_transient() {
        // Bound and never listening, held for the test: connecting is refused, and no parallel
        // test's server can be given the port (as it could be once released).
        let closed = tokio::net::TcpSocket::new_v4().unwrap();
        closed.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let addr = closed.local_addr().unwrap();
        let client = Client::new(&format!("http://{addr}"), Duration::from_secs(2), "t").unwrap();
        let err = client
            .modify_call("AC1", &token(), "CA1", "<Response/>")
            .await
            .unwrap_err();
        assert!(
            err.is_transient() && err.to_string().starts_with("Twilio connection failed"),
            "{err}"
        );
        assert_eq!(
            client.call_url("AC 1", "CA1"),
            format!("http://{addr}/2010-04-01/Accounts/AC%201/Calls/CA1.json")
        );
    }
}
