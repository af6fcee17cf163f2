//! Every TwiML document Switchboard hands to Twilio — the gateway's webhook answers and the
//! dialer's live-call modifications — written with an XML writer, so every text and attribute
//! is escaped. One set of shapes for both services: a call answered by the gateway in sync
//! mode hears exactly what the dialer would have made it hear.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::io;
use switchboard_contracts::{CallRoute, FinalAction, FinalActionKind};

/// `Content-Type` of every TwiML answer.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// Longest voicemail, in seconds (`<Record maxLength>`).
pub const VOICEMAIL_MAX_SECS: u32 = 120;

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

fn play(w: &mut W, url: &str, loops: u32) -> io::Result<()> {
    w.create_element("Play")
        .with_attribute(("loop", loops.to_string().as_str()))
        .write_text_content(BytesText::new(url))
        .map(|_| ())
}

fn write_hangup(w: &mut W) -> io::Result<()> {
    w.create_element("Hangup").write_empty().map(|_| ())
}

/// Ringback until something else changes the live call (the dialer, through the REST API):
/// `<Play loop="0">` repeats the audio for as long as the call waits (Twilio: 0 = indefinitely,
/// in practice up to 1000 times), so the caller never waits in silence.
pub fn ringback(url: &str) -> String {
    document(|w| play(w, url, 0))
}

/// `loops` cycles of ringback (`<Play loop="loops">`), then Twilio requests `redirect_url`
/// (`<Redirect method="POST">`, signed and with the call's parameters like any webhook), whose
/// answer replaces this one. So the caller's wait is bounded — about `loops` times the length
/// of the audio (6 s for the gateway's own tone) — and then the call is handed back to
/// whoever serves `redirect_url`:
///
/// - sync mode without a decision yet: one cycle, then the same voice webhook, next attempt
///   ([`crate::urls::voice_redirect`]), which answers the decision as soon as it exists;
/// - a dead-man's switch on the async answer: enough cycles for the dialer to act, then
///   [`crate::urls::no_instruction`], should the dialer never have modified the call.
///
/// `loops` is at least 1: Twilio reads `loop="0"` as "forever", which would never redirect.
pub fn ringback_then_redirect(ringback_url: &str, loops: u32, redirect_url: &str) -> String {
    document(|w| {
        play(w, ringback_url, loops.max(1))?;
        w.create_element("Redirect")
            .with_attribute(("method", "POST"))
            .write_text_content(BytesText::new(redirect_url))
            .map(|_| ())
    })
}

/// Ring `number` (E.164) for `timeout_secs`; Twilio posts the outcome to `action_url` (the
/// gateway's dial-status webhook of this step, [`crate::urls::dial_status`]) and bridges only
/// when the callee answers (`answerOnBridge`: the caller hears ringback, not silence, until
/// then).
pub fn dial(number: &str, action_url: &str, timeout_secs: u32) -> String {
    document(|w| {
        w.create_element("Dial")
            .with_attribute(("timeout", timeout_secs.to_string().as_str()))
            .with_attribute(("action", action_url))
            .with_attribute(("method", "POST"))
            .with_attribute(("answerOnBridge", "true"))
            .write_inner_content(|w| {
                w.create_element("Number")
                    .write_text_content(BytesText::new(number))
                    .map(|_| ())
            })
            .map(|_| ())
    })
}

/// The final action: the message, then a voicemail recording (whose end requests
/// `hangup_url`, [`crate::urls::hangup`], which hangs up) or a hang-up. A blank message is
/// replaced by the default one ([`FinalAction::default`]): a call never ends in silence.
pub fn final_action(action: &FinalAction, hangup_url: &str) -> String {
    let default;
    let message = if action.message.trim().is_empty() {
        default = FinalAction::default().message;
        default.as_str()
    } else {
        action.message.as_str()
    };
    document(|w| {
        say(w, message)?;
        match action.kind {
            FinalActionKind::Voicemail => {
                // Without an `action`, Twilio would request this document's URL again after
                // the recording; the hang-up URL ends the call instead.
                w.create_element("Record")
                    .with_attribute(("maxLength", VOICEMAIL_MAX_SECS.to_string().as_str()))
                    .with_attribute(("playBeep", "true"))
                    .with_attribute(("action", hangup_url))
                    .with_attribute(("method", "POST"))
                    .write_empty()?;
                write_hangup(w)
            }
            FinalActionKind::AnnounceHangup => write_hangup(w),
        }
    })
}

/// A decision's step 0 as TwiML: the [`dial`] of its target, whose outcome goes to
/// `dial_status_url` (the dial-status URL of step 0), or its [`final_action`] when there is
/// nothing to ring.
pub fn route(
    route: &CallRoute,
    dial_status_url: &str,
    ring_timeout_secs: u32,
    hangup_url: &str,
) -> String {
    match &route.target {
        Some(target) => dial(target.number.as_str(), dial_status_url, ring_timeout_secs),
        None => final_action(&route.final_action, hangup_url),
    }
}

/// `message` spoken, then hang-up: the answer to a webhook that cannot be served.
pub fn error(message: &str) -> String {
    document(|w| {
        say(w, message)?;
        write_hangup(w)
    })
}

/// Just hang up: a bridged call that ended, the end of a voicemail.
pub fn hangup() -> String {
    document(write_hangup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::{E164, Rule, Target, TenantId};

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

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
                ring_timeout_secs: None,
            }),
            fallbacks: vec![],
            final_action: action,
            reasons: Vec::new(),
            explanation: vec![],
            settings_seq: 1,
            decided_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn dial_escapes_its_attributes() {
        assert_eq!(
            dial("+16172531234", "https://h/d?step=1&x=<1>", 20),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial timeout=\"20\" \
             action=\"https://h/d?step=1&amp;x=&lt;1&gt;\" method=\"POST\" \
             answerOnBridge=\"true\"><Number>+16172531234</Number></Dial></Response>"
        );
    }

    #[test]
    fn a_route_with_a_target_is_the_dial_of_step_0() {
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
        assert_eq!(
            xml,
            dial(
                "+16172531234",
                "https://h/v1/tenants/acme/twilio/dial-status?step=0&x=<1>",
                20
            )
        );
    }

    #[test]
    fn final_actions_speak_then_record_or_hang_up() {
        let vm = final_action(&FinalAction::default(), "https://h/hangup");
        assert_eq!(
            vm,
            format!(
                "{DECL}<Response><Say>Sorry, no one is available to take your call. Please \
                 leave a message after the tone.</Say><Record maxLength=\"120\" \
                 playBeep=\"true\" action=\"https://h/hangup\" method=\"POST\"/><Hangup/>\
                 </Response>"
            )
        );
        let announce = final_action(
            &FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Closed <today> & tomorrow".into(),
            },
            "-",
        );
        assert_eq!(
            announce,
            format!(
                "{DECL}<Response><Say>Closed &lt;today&gt; &amp; tomorrow</Say><Hangup/></Response>"
            )
        );
        // A route without a target is its final action.
        assert_eq!(
            route(
                &decision(None, FinalAction::default()),
                "-",
                20,
                "https://h/hangup"
            ),
            vm
        );
    }

    /// Issue 14: the gateway's sync answer hung up in silence on a blank announcement while
    /// the dialer said the default greeting. Both now write this.
    #[test]
    fn a_blank_message_is_replaced_by_the_default_greeting_never_silence() {
        let greeting = FinalAction::default().message;
        for kind in [FinalActionKind::AnnounceHangup, FinalActionKind::Voicemail] {
            for blank in ["", " ", "\n\t "] {
                let action = FinalAction {
                    kind,
                    message: blank.into(),
                };
                let xml = final_action(&action, "https://h/hangup");
                assert!(
                    xml.starts_with(&format!("{DECL}<Response><Say>{greeting}</Say>")),
                    "{kind:?} {blank:?}: {xml}"
                );
                assert!(xml.ends_with("<Hangup/></Response>"), "{xml}");
                assert_eq!(
                    route(&decision(None, action), "-", 20, "https://h/hangup"),
                    xml
                );
            }
        }
        assert_eq!(
            final_action(
                &FinalAction {
                    kind: FinalActionKind::AnnounceHangup,
                    message: String::new(),
                },
                "-",
            ),
            format!("{DECL}<Response><Say>{greeting}</Say><Hangup/></Response>")
        );
    }

    #[test]
    fn ringback_loops_forever_and_ringback_then_redirect_loops_as_asked() {
        assert_eq!(
            ringback("https://h/r.wav?a=1&b=2"),
            format!(
                "{DECL}<Response><Play loop=\"0\">https://h/r.wav?a=1&amp;b=2</Play></Response>"
            )
        );
        assert_eq!(
            ringback_then_redirect("https://h/r.wav", 1, "https://h/v?a=1&attempt=2"),
            format!(
                "{DECL}<Response><Play loop=\"1\">https://h/r.wav</Play><Redirect \
                 method=\"POST\">https://h/v?a=1&amp;attempt=2</Redirect></Response>"
            )
        );
        assert!(
            ringback_then_redirect("https://h/r.wav", 5, "https://h/n")
                .contains("<Play loop=\"5\">https://h/r.wav</Play><Redirect method=\"POST\">")
        );
        // Never "forever": that would never redirect.
        assert_eq!(
            ringback_then_redirect("https://h/r.wav", 0, "https://h/n"),
            ringback_then_redirect("https://h/r.wav", 1, "https://h/n")
        );
    }

    #[test]
    fn errors_speak_then_hang_up_and_hangup_just_hangs_up() {
        assert_eq!(
            error("bad <one>"),
            format!("{DECL}<Response><Say>bad &lt;one&gt;</Say><Hangup/></Response>")
        );
        assert_eq!(hangup(), format!("{DECL}<Response><Hangup/></Response>"));
    }
}
