//! The TwiML the dialer hands to the carrier, written with an XML writer so every text and
//! attribute is escaped. Same shapes as the gateway's sync answer.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use std::io;
use switchboard_contracts::{FinalAction, FinalActionKind};

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

/// Ring `number` for `timeout_secs`; Twilio posts the outcome to `action_url` (the gateway's
/// dial-status webhook of this step), and bridges only when the callee answers.
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

/// The final action: the message, then a voicemail recording (whose end hangs up through
/// `hangup_url`) or a hang-up. An empty message is replaced by the default one: never silence.
pub fn final_action(action: &FinalAction, hangup_url: &str) -> String {
    let message = if action.message.trim().is_empty() {
        FinalAction::default().message
    } else {
        action.message.clone()
    };
    document(|w| {
        w.create_element("Say")
            .write_text_content(BytesText::new(&message))?;
        if action.kind == FinalActionKind::Voicemail {
            w.create_element("Record")
                .with_attribute(("maxLength", VOICEMAIL_MAX_SECS))
                .with_attribute(("playBeep", "true"))
                .with_attribute(("action", hangup_url))
                .with_attribute(("method", "POST"))
                .write_empty()?;
        }
        w.create_element("Hangup").write_empty().map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn final_actions_speak_then_record_or_hang_up() {
        let vm = final_action(&FinalAction::default(), "https://h/hangup");
        assert!(vm.contains("<Say>Sorry, no one is available"), "{vm}");
        assert!(
            vm.contains("<Record maxLength=\"120\" playBeep=\"true\" action=\"https://h/hangup\"")
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
        let empty = final_action(
            &FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: " ".into(),
            },
            "-",
        );
        assert!(empty.contains("<Say>Sorry"), "{empty}");
    }
}
