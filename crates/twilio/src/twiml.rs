//! Every TwiML document Switchboard hands to Twilio — the gateway's webhook answers and the
//! dialer's live-call modifications — written with an XML writer, so every text and attribute
//! is escaped. One set of shapes for both services: a call answered by the gateway in sync
//! mode hears exactly what the dialer would have made it hear.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::io;
use switchboard_contracts::{CallRoute, FinalAction, FinalActionKind, Target};

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
    dial_numbers(&[number], None, action_url, timeout_secs)
}

/// One leg of a chain: one `<Dial>` (as [`dial`]) holding a `<Number>` per number of the leg —
/// one, or every member of a simultaneous ring group (Twilio rings them all at once, bridges
/// the first to answer and stops ringing the others; at most 10 `<Number>`s, the group's
/// limit). `screen_url` (a screened leg: [`crate::urls::screen`] of the step) goes on each
/// `<Number>` with `method="POST"`: Twilio requests it on the called party's leg once they pick
/// up and plays its TwiML to them alone (the whisper and its "press 1" `<Gather>`) while the
/// caller keeps hearing ringback; only when that TwiML ends without hanging up is the caller
/// bridged.
///
/// A callee who does not accept (no key, another key, hangs up during the whisper) never
/// bridges: Twilio ends their leg and posts the `<Dial action>` as for any unbridged dial, but
/// because the leg itself was picked up it may report `DialCallStatus=completed` rather than
/// `no-answer` — the gateway's screen-result handler records such a leg as no answer, so the
/// chain moves on as it does for `no_answer`, `busy`, `failed` and `canceled`.
pub fn dial_numbers(
    numbers: &[&str],
    screen_url: Option<&str>,
    action_url: &str,
    timeout_secs: u32,
) -> String {
    document(|w| {
        w.create_element("Dial")
            .with_attribute(("timeout", timeout_secs.to_string().as_str()))
            .with_attribute(("action", action_url))
            .with_attribute(("method", "POST"))
            .with_attribute(("answerOnBridge", "true"))
            .write_inner_content(|w| {
                for number in numbers {
                    let mut noun = w.create_element("Number");
                    if let Some(url) = screen_url {
                        noun = noun
                            .with_attribute(("url", url))
                            .with_attribute(("method", "POST"));
                    }
                    noun.write_text_content(BytesText::new(number))?;
                }
                Ok(())
            })
            .map(|_| ())
    })
}

/// The [`dial_numbers`] of `target`: every number of the leg ([`Target::numbers`]), screened
/// with `screen_url` when the leg is (`target.screen`).
pub fn dial_target(
    target: &Target,
    screen_url: &str,
    action_url: &str,
    timeout_secs: u32,
) -> String {
    let numbers: Vec<&str> = target.numbers().map(|n| n.as_str()).collect();
    let screen = target.screen.then_some(screen_url);
    dial_numbers(&numbers, screen, action_url, timeout_secs)
}

/// The final action: the message, then a voicemail recording (whose end requests
/// `hangup_url`, [`crate::urls::hangup`], which hangs up) or a hang-up. A blank message is
/// replaced by the default one ([`FinalAction::default`]): a call never ends in silence.
pub fn final_action(action: &FinalAction, hangup_url: &str) -> String {
    if action.kind == FinalActionKind::Reject {
        return reject();
    }
    let default;
    let message = if action.message.trim().is_empty() {
        default = FinalAction::default().message;
        &*default
    } else {
        &*action.message
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
            FinalActionKind::AnnounceHangup | FinalActionKind::Reject => write_hangup(w),
        }
    })
}

/// Refuse the call unanswered: `<Reject reason="busy"/>` (the caller's carrier plays busy and
/// the call is never answered, so nothing is billed). Only as the first answer to a call's
/// webhook; on a call already answered Twilio hangs up.
pub fn reject() -> String {
    document(|w| {
        w.create_element("Reject")
            .with_attribute(("reason", "busy"))
            .write_empty()
            .map(|_| ())
    })
}

/// A decision's step 0 as TwiML: the [`dial_target`] of its target (every member of a
/// simultaneous group; screened when the leg is), whose outcome goes to `dial_status_url` (the
/// dial-status URL of step 0), or its [`final_action`] when there is nothing to ring (a
/// `<Reject>` for a rejected caller).
///
/// The leg rings for its own ring timeout (`Target::ring_timeout_secs`: the number's, else
/// the company's), as the dialer rings every later step; `default_ring_timeout_secs` only for
/// decisions recorded before ring timeouts existed, which carry none.
///
/// The whisper URL of a screened step 0 is [`crate::urls::screen`] of step 0, read off
/// `dial_status_url` ([`crate::urls::dial_status`] of the same base, tenant and step).
pub fn route(
    route: &CallRoute,
    dial_status_url: &str,
    default_ring_timeout_secs: u32,
    hangup_url: &str,
) -> String {
    match &route.target {
        Some(target) => {
            let numbers: Vec<&str> = target.numbers().map(|n| n.as_str()).collect();
            let screen = screen_url_of(dial_status_url).filter(|_| target.screen);
            dial_numbers(
                &numbers,
                screen.as_deref(),
                dial_status_url,
                target
                    .ring_timeout_secs
                    .unwrap_or(default_ring_timeout_secs),
            )
        }
        None => final_action(&route.final_action, hangup_url),
    }
}

/// [`crate::urls::screen`] of the step whose [`crate::urls::dial_status`] is `dial_status_url`:
/// the same URL with the `dial-status` leaf replaced by `screen`. `None` for any other URL
/// (never the gateway's): nothing to derive a whisper from.
fn screen_url_of(dial_status_url: &str) -> Option<String> {
    const DIAL_STATUS: &str = "/twilio/dial-status?";
    dial_status_url.rfind(DIAL_STATUS).map(|at| {
        format!(
            "{}/twilio/screen?{}",
            &dial_status_url[..at],
            &dial_status_url[at + DIAL_STATUS.len()..]
        )
    })
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

/// Seconds a screened leg's whisper waits for the key press ([`whisper`]).
pub const WHISPER_TIMEOUT_SECS: u32 = 10;

/// The whisper of a screened leg (`<Number url>`, played to the called party only): `prompt`
/// inside a one-key `<Gather>` whose key goes to `action_url` ([`crate::urls::screen_result`]),
/// then `<Hangup/>` — no key within [`WHISPER_TIMEOUT_SECS`] ends the leg and the caller is
/// not connected.
pub fn whisper(prompt: &str, action_url: &str) -> String {
    document(|w| {
        w.create_element("Gather")
            .with_attribute(("numDigits", "1"))
            .with_attribute(("timeout", WHISPER_TIMEOUT_SECS.to_string().as_str()))
            .with_attribute(("action", action_url))
            .with_attribute(("method", "POST"))
            .write_inner_content(|w| say(w, prompt))?;
        write_hangup(w)
    })
}

/// An empty document: on a whisper's `<Gather action>`, the called party accepted and Twilio
/// bridges the caller.
pub fn proceed() -> String {
    document(|_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::{E164, EntityId, GroupMember, Rule, Target, TenantId};

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
                group: Vec::new(),
                screen: false,
            }),
            fallbacks: vec![],
            final_action: action,
            reasons: Vec::new(),
            explanation: vec![],
            settings_seq: 1,
            calls_seq: 0,
            caller: None,
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
                    message: Default::default(),
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

    fn group(numbers: &[&str], screen: bool) -> Target {
        let members: Vec<GroupMember> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| GroupMember {
                number: E164::parse_strict(n).unwrap(),
                user_id: EntityId::parse("id", format!("u-{i}")).unwrap(),
            })
            .collect();
        Target {
            number: members[0].number.clone(),
            user_id: Some(members[0].user_id.clone()),
            rule: Rule::RingGroup,
            ring_timeout_secs: Some(25),
            group: members,
            screen,
        }
    }

    #[test]
    fn a_simultaneous_group_is_one_dial_with_a_number_per_member() {
        let leg = group(&["+14155550101", "+14155550102", "+14155550103"], false);
        assert_eq!(
            dial_target(&leg, "https://h/s", "https://h/d?step=2", 25),
            format!(
                "{DECL}<Response><Dial timeout=\"25\" action=\"https://h/d?step=2\" \
                 method=\"POST\" answerOnBridge=\"true\"><Number>+14155550101</Number>\
                 <Number>+14155550102</Number><Number>+14155550103</Number></Dial></Response>"
            )
        );
        // A single leg is the plain dial.
        let mut single = group(&["+14155550101"], false);
        single.group.clear();
        assert_eq!(
            dial_target(&single, "https://h/s", "https://h/d", 20),
            dial("+14155550101", "https://h/d", 20)
        );
    }

    #[test]
    fn a_screened_leg_puts_the_whisper_on_every_number() {
        let tenant = TenantId::new("acme").unwrap();
        let whisper = crate::urls::screen("https://h", &tenant, 1);
        let leg = group(&["+14155550101", "+14155550102"], true);
        let xml = dial_target(&leg, &whisper, "https://h/d?step=1", 25);
        let noun = |n: &str| {
            format!(
                "<Number url=\"https://h/v1/tenants/acme/twilio/screen?step=1\" \
                 method=\"POST\">{n}</Number>"
            )
        };
        assert!(
            xml.contains(&format!(
                "{}{}</Dial>",
                noun("+14155550101"),
                noun("+14155550102")
            )),
            "{xml}"
        );
        let mut alone = group(&["+14155550101"], true);
        alone.group.clear();
        assert!(dial_target(&alone, &whisper, "https://h/d", 20).contains(&noun("+14155550101")));
        alone.screen = false;
        assert!(!dial_target(&alone, &whisper, "https://h/d", 20).contains("url="));
    }

    /// The gateway's sync answer: step 0 exactly as the dialer would ring it.
    #[test]
    fn a_route_rings_a_group_screened_and_rejects_a_rejected_caller() {
        let tenant = TenantId::new("acme").unwrap();
        let mut d = decision(None, FinalAction::default());
        d.target = Some(group(&["+14155550101", "+14155550102"], true));
        let status_url = crate::urls::dial_status("https://h/", &tenant, 0);
        let xml = route(&d, &status_url, 20, "https://h/hangup");
        assert_eq!(
            xml,
            dial_target(
                d.target.as_ref().unwrap(),
                &crate::urls::screen("https://h/", &tenant, 0),
                &status_url,
                25
            )
        );
        assert_eq!(xml.matches("<Number url=").count(), 2, "{xml}");
        // The leg's own ring timeout (25 s), as the dialer rings later steps; the default
        // only for a decision recorded before ring timeouts, which carries none.
        assert!(xml.contains(r#"<Dial timeout="25""#), "{xml}");
        d.target.as_mut().unwrap().ring_timeout_secs = None;
        let xml = route(&d, &status_url, 20, "https://h/hangup");
        assert!(xml.contains(r#"<Dial timeout="20""#), "{xml}");
        d.target = None;
        d.rule = Rule::Blocked;
        d.final_action = FinalAction {
            kind: FinalActionKind::Reject,
            message: Default::default(),
        };
        assert_eq!(
            route(&d, &status_url, 20, "https://h/hangup"),
            format!("{DECL}<Response><Reject reason=\"busy\"/></Response>")
        );
        assert_eq!(screen_url_of("https://h/elsewhere"), None);
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
