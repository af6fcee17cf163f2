//! TwiML answers, written with an XML writer so every text and attribute is escaped.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::io;
use switchboard_contracts::{CallRoute, FinalAction, FinalActionKind};

/// `Content-Type` of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// Longest voicemail, in seconds.
const VOICEMAIL_MAX_SECS: &str = "120";

type W = Writer<Vec<u8>>;

fn document(body: impl FnOnce(&mut W) -> io::Result<()>) -> String {
    let mut w = Writer::new(Vec::new());
    let written = w
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| {
            w.create_element("Response")
                .write_inner_content(body)
                .map(|_| ())
        });
    match written {
        // Writing to a Vec cannot fail, and the writer only emits UTF-8 from &str input.
        Ok(()) => String::from_utf8(w.into_inner()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn say(w: &mut W, text: &str) -> io::Result<()> {
    w.create_element("Say")
        .write_text_content(BytesText::new(text))
        .map(|_| ())
}

fn hangup(w: &mut W) -> io::Result<()> {
    w.create_element("Hangup").write_empty().map(|_| ())
}

/// Ringback until the dialer changes the live call through the carrier's REST API:
/// `<Play loop="0">` repeats the audio for as long as the call waits (Twilio: 0 = indefinitely,
/// in practice up to 1000 times), so the caller never waits in silence.
pub fn ringback(url: &str) -> String {
    document(|w| {
        w.create_element("Play")
            .with_attribute(("loop", "0"))
            .write_text_content(BytesText::new(url))
            .map(|_| ())
    })
}

/// Sync mode without a decision yet: one cycle of ringback, then Twilio fetches `redirect_url`
/// (the same voice webhook, next attempt), which answers the decision as soon as it exists.
/// So in sync mode the gateway always performs step 0, as the dialer assumes.
pub fn ringback_then_redirect(ringback_url: &str, redirect_url: &str) -> String {
    document(|w| {
        w.create_element("Play")
            .with_attribute(("loop", "1"))
            .write_text_content(BytesText::new(ringback_url))?;
        w.create_element("Redirect")
            .with_attribute(("method", "POST"))
            .write_text_content(BytesText::new(redirect_url))
            .map(|_| ())
    })
}

/// The decision as TwiML: `<Dial>` of the first target, whose outcome Twilio posts to the
/// dial-status action of step 0; or the final action when there is nothing to ring.
pub fn route(
    route: &CallRoute,
    dial_status_url: &str,
    dial_timeout_secs: u32,
    hangup_url: &str,
) -> String {
    match &route.target {
        Some(target) => document(|w| {
            w.create_element("Dial")
                .with_attribute(("timeout", dial_timeout_secs.to_string().as_str()))
                .with_attribute(("action", dial_status_url))
                .with_attribute(("method", "POST"))
                .with_attribute(("answerOnBridge", "true"))
                .write_inner_content(|w| {
                    w.create_element("Number")
                        .write_text_content(BytesText::new(target.number.as_str()))
                        .map(|_| ())
                })
                .map(|_| ())
        }),
        None => final_action(&route.final_action, hangup_url),
    }
}

/// The final action: the message, then a voicemail recording (whose end hangs up) or a
/// hang-up.
pub fn final_action(action: &FinalAction, hangup_url: &str) -> String {
    document(|w| {
        if !action.message.trim().is_empty() {
            say(w, &action.message)?;
        }
        match action.kind {
            FinalActionKind::Voicemail => {
                // Without an `action`, Twilio would request this document's URL again after
                // the recording; the hang-up URL ends the call instead.
                w.create_element("Record")
                    .with_attribute(("maxLength", VOICEMAIL_MAX_SECS))
                    .with_attribute(("playBeep", "true"))
                    .with_attribute(("action", hangup_url))
                    .with_attribute(("method", "POST"))
                    .write_empty()?;
                hangup(w)
            }
            FinalActionKind::AnnounceHangup => hangup(w),
        }
    })
}

/// A spoken error, then hang-up: the answer to a webhook that cannot be served.
pub fn error(message: &str) -> String {
    document(|w| {
        say(w, message)?;
        hangup(w)
    })
}

/// Just hang up.
pub fn hangup_only() -> String {
    document(hangup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::{E164, Rule, Target, TenantId};

    fn decision(target: Option<&str>, action: FinalAction) -> CallRoute {
        CallRoute {
            call_id: "CA1".into(),
            tenant_id: TenantId::new("acme").unwrap(),
            rule: if target.is_some() {
                Rule::CompanyPhone
            } else {
                Rule::NoRoute
            },
            target: target.map(|n| Target {
                number: E164::parse_strict(n).unwrap(),
                user_id: None,
                rule: Rule::CompanyPhone,
            }),
            fallbacks: vec![],
            final_action: action,
            explanation: vec![],
            settings_seq: 1,
            decided_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn dial_escapes_its_attributes() {
        let xml = route(
            &decision(Some("+16172531234"), FinalAction::default()),
            "https://h/v1/tenants/acme/twilio/dial-status?step=0&x=<1>",
            20,
            "https://h/v1/twiml/hangup",
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"20\" \
             action=\"https://h/v1/tenants/acme/twilio/dial-status?step=0&amp;x=&lt;1&gt;\" \
             method=\"POST\" answerOnBridge=\"true\"><Number>+16172531234</Number></Dial></Response>"
        );
    }

    #[test]
    fn final_actions_never_end_in_silence() {
        let vm = route(
            &decision(None, FinalAction::default()),
            "-",
            20,
            "https://h/hangup",
        );
        assert!(vm.contains("<Say>Sorry, no one is available"), "{vm}");
        assert!(
            vm.contains("<Record maxLength=\"120\" playBeep=\"true\" action=\"https://h/hangup\""),
            "{vm}"
        );
        let announce = final_action(
            &FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Closed <today> & tomorrow".into(),
            },
            "-",
        );
        assert!(
            announce
                .ends_with("<Say>Closed &lt;today&gt; &amp; tomorrow</Say><Hangup/></Response>"),
            "{announce}"
        );
        assert!(
            ringback("https://h/r.wav?a=1&b=2")
                .contains("<Play loop=\"0\">https://h/r.wav?a=1&amp;b=2</Play>")
        );
        assert!(error("bad").contains("<Say>bad</Say><Hangup/>"));
    }
}
