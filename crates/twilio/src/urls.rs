//! The gateway's URLs that TwiML hands to Twilio, and the route templates the gateway serves
//! them under: one definition for the gateway (its sync answer) and the dialer (every later
//! step).
//!
//! Each builder takes the gateway's public base URL as Twilio sees it (scheme, host and port,
//! e.g. `https://switchboard.example.com`; a trailing `/` is ignored): Twilio signs requests
//! with the URL it requested, and the gateway checks signatures against its public base plus
//! the path and query as received. Path segments are percent-encoded ([`path_segment`]).

use switchboard_contracts::TenantId;

/// Route template of Twilio's voice webhook (`POST`): an inbound call.
pub const VOICE_ROUTE: &str = "/v1/tenants/{tenant}/twilio/voice";
/// Route template of a `<Dial action>` callback (`POST`, query `step`): a step's outcome.
pub const DIAL_STATUS_ROUTE: &str = "/v1/tenants/{tenant}/twilio/dial-status";
/// Route template of the no-instruction fallback (`POST`): see [`no_instruction`].
pub const NO_INSTRUCTION_ROUTE: &str = "/v1/tenants/{tenant}/twilio/no-instruction";
/// Route template of a screened leg's whisper (`POST`, query `step`): see [`screen`].
pub const SCREEN_ROUTE: &str = "/v1/tenants/{tenant}/twilio/screen";
/// Route template of a whisper's key press (`POST`, query `step`): see [`screen_result`].
pub const SCREEN_RESULT_ROUTE: &str = "/v1/tenants/{tenant}/twilio/screen-result";
/// Route of the static `<Hangup/>` answer (`GET` and `POST`): see [`hangup`].
pub const HANGUP_ROUTE: &str = "/v1/twiml/hangup";
/// The query parameter of [`dial_status`] naming the chain step (0 the target, 1.. the
/// fallbacks, then the final action).
pub const STEP_PARAM: &str = "step";
/// The query parameter of [`voice_redirect`] counting the sync-mode attempts (1 when absent).
pub const ATTEMPT_PARAM: &str = "attempt";

fn base(public_base: &str) -> &str {
    public_base.trim_end_matches('/')
}

fn tenant_url(public_base: &str, tenant: &TenantId, leaf: &str) -> String {
    format!(
        "{}/v1/tenants/{}/twilio/{leaf}",
        base(public_base),
        path_segment(tenant.as_str())
    )
}

/// Twilio's voice webhook of `tenant`: `{base}/v1/tenants/{tenant}/twilio/voice`, the URL
/// configured on the tenant's Twilio numbers.
pub fn voice(public_base: &str, tenant: &TenantId) -> String {
    tenant_url(public_base, tenant, "voice")
}

/// The `<Dial action>` of chain step `step` of a call of `tenant`:
/// `{base}/v1/tenants/{tenant}/twilio/dial-status?step={step}`. Twilio posts the dial's outcome
/// there; the gateway publishes it as `call.status` for the dialer.
pub fn dial_status(public_base: &str, tenant: &TenantId, step: u32) -> String {
    format!(
        "{}?{STEP_PARAM}={step}",
        tenant_url(public_base, tenant, "dial-status")
    )
}

/// The `<Number url>` of a screened leg of chain step `step` (`screening: "forwarded"`):
/// `{base}/v1/tenants/{tenant}/twilio/screen?step={step}`. Twilio requests it on the called
/// party's leg when they pick up (with `CallSid` of that leg and `ParentCallSid` of the
/// caller's); the gateway answers the whisper with a `<Gather>` for the key press.
pub fn screen(public_base: &str, tenant: &TenantId, step: u32) -> String {
    format!(
        "{}?{STEP_PARAM}={step}",
        tenant_url(public_base, tenant, "screen")
    )
}

/// The `<Gather action>` of a whisper: `{base}/v1/tenants/{tenant}/twilio/screen-result?step=`
/// `{step}`. Twilio posts the key pressed (`Digits`); 1 connects the caller, anything else
/// (or nothing) ends the leg, which counts as no answer.
pub fn screen_result(public_base: &str, tenant: &TenantId, step: u32) -> String {
    format!(
        "{}?{STEP_PARAM}={step}",
        tenant_url(public_base, tenant, "screen-result")
    )
}

/// The `<Record action>` of a voicemail: `{base}/v1/twiml/hangup`, which answers `<Hangup/>`
/// (without it, Twilio would request the recording's document again when it ends).
pub fn hangup(public_base: &str) -> String {
    format!("{}{HANGUP_ROUTE}", base(public_base))
}

/// Where a waiting call is handed back to the gateway when nobody told Twilio what to do with
/// it: `{base}/v1/tenants/{tenant}/twilio/no-instruction`, the `redirect_url` of a bounded
/// [`crate::twiml::ringback_then_redirect`] answer (the dead-man's switch of the async
/// answer: the dialer should have modified the live call long before the ringback cycles
/// run out). Per call through what Twilio posts: like every webhook the request is signed
/// and carries the call's `CallSid`, `AccountSid`, `To` and `From`, so the gateway can tell
/// which call lost its instruction and answer it (e.g. with its decision's final action)
/// instead of leaving it in silence.
pub fn no_instruction(public_base: &str, tenant: &TenantId) -> String {
    tenant_url(public_base, tenant, "no-instruction")
}

/// Sync mode: the `<Redirect>` back to the voice webhook after a missed deadline —
/// `request_url` (the public URL of the voice request being answered, exactly as signed) with
/// [`ATTEMPT_PARAM`] set to `attempt` and every other query parameter kept, so the next
/// request is signed by its own URL and says which attempt it is.
pub fn voice_redirect(request_url: &str, attempt: u32) -> String {
    let (base, query) = request_url.split_once('?').unwrap_or((request_url, ""));
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != ATTEMPT_PARAM {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair(ATTEMPT_PARAM, &attempt.to_string());
    format!("{base}?{}", out.finish())
}

/// `s` as one URL path segment: every byte but the unreserved characters (RFC 3986: ASCII
/// letters and digits, `-`, `_`, `.`, `~`) percent-encoded, so an id can never add a segment
/// or a query.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    #[test]
    fn callback_urls() {
        let base = "https://gw.example.com";
        assert_eq!(
            dial_status(base, &acme(), 0),
            "https://gw.example.com/v1/tenants/acme/twilio/dial-status?step=0"
        );
        assert_eq!(
            dial_status("https://gw.example.com/", &acme(), 3),
            "https://gw.example.com/v1/tenants/acme/twilio/dial-status?step=3"
        );
        assert_eq!(hangup(base), "https://gw.example.com/v1/twiml/hangup");
        assert_eq!(
            voice(base, &acme()),
            "https://gw.example.com/v1/tenants/acme/twilio/voice"
        );
        assert_eq!(
            no_instruction("http://127.0.0.1:8080/", &TenantId::new("A_b-9").unwrap()),
            "http://127.0.0.1:8080/v1/tenants/A_b-9/twilio/no-instruction"
        );
    }

    #[test]
    fn urls_are_served_under_their_route_templates() {
        let base = "https://h";
        let path = |url: String| {
            url.strip_prefix(base)
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .replace("/acme/", "/{tenant}/")
        };
        assert_eq!(path(voice(base, &acme())), VOICE_ROUTE);
        assert_eq!(path(dial_status(base, &acme(), 1)), DIAL_STATUS_ROUTE);
        assert_eq!(path(no_instruction(base, &acme())), NO_INSTRUCTION_ROUTE);
        assert_eq!(path(hangup(base)), HANGUP_ROUTE);
    }

    #[test]
    fn voice_redirects_count_attempts_and_keep_the_rest_of_the_query() {
        let voice = "https://h/v1/tenants/acme/twilio/voice";
        assert_eq!(voice_redirect(voice, 2), format!("{voice}?attempt=2"));
        assert_eq!(
            voice_redirect(&format!("{voice}?attempt=2"), 3),
            format!("{voice}?attempt=3")
        );
        assert_eq!(
            voice_redirect(&format!("{voice}?x=a+b&attempt=9&y=%26"), 10),
            format!("{voice}?x=a+b&y=%26&attempt=10")
        );
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("CA1a-_.~"), "CA1a-_.~");
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(path_segment("é "), "%C3%A9%20");
    }
}
