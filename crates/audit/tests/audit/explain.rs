use crate::support::*;
use switchboard_audit::explain;
use switchboard_audit::read::NoProgress;
use switchboard_contracts::{DialCallStatus, DialEventKind, Rule};

#[tokio::test]
async fn explain_tells_a_calls_whole_life_with_the_settings_in_force_and_dial_steps() {
    // Given settings, a later change that does not apply yet, and a call of lead c-2 (bob's,
    // who has no phone) to N1: forwarding number, then company phone
    let mut rec = Recorder::start().await;
    let seqs = rec.settings(day_start("acme")).await;
    let call = inbound("acme", "CA-life", N1, CALLERS[1]);
    let inbound_seq = rec.streams.publish(call.clone()).await;
    let route = rec.route_for(&call);
    assert_eq!(route.rule, Rule::ForwardingNumber);
    let route_seq = rec.streams.publish(route.clone()).await;
    // (settings published after the decision are not "in force" for it)
    rec.settings(vec![user("acme", 2, "u-bob", Some(BOB), true)])
        .await;
    // and the dialer's steps: the forwarding number does not answer, the company phone does
    let mut step_seqs = [
        rec.dial(&route, 0, DialEventKind::StepStarted, None).await,
        rec.status("acme", "CA-life", 0, DialCallStatus::NoAnswer)
            .await,
        rec.dial(
            &route,
            0,
            DialEventKind::StepFailed,
            Some("dial status no_answer"),
        )
        .await,
        rec.dial(&route, 1, DialEventKind::StepStarted, None).await,
        rec.status("acme", "CA-life", 1, DialCallStatus::Completed)
            .await,
        rec.dial(&route, 1, DialEventKind::Answered, None).await,
    ];
    // (another call's events are not part of it)
    rec.call(inbound("acme", "CA-life-2", N1, CALLERS[0])).await;
    step_seqs.sort();

    // When it is explained
    let life = explain(&rec.streams.js, "CA-life", None, &NoProgress)
        .await
        .unwrap()
        .expect("the call is found");

    // Then the inbound event, the decision, the settings it read with their sequences, the
    // replay check and every step are there, in stream order
    assert_eq!(life.tenant_id.as_str(), "acme");
    assert_eq!(life.inbound.len(), 1);
    assert_eq!(life.inbound[0].at.seq, inbound_seq);
    assert_eq!(life.inbound[0].to, "+16*******00");
    assert_eq!(life.decisions.len(), 1);
    let decision = &life.decisions[0];
    assert_eq!(decision.at.seq, route_seq);
    assert_eq!(decision.rule, "forwarding_number");
    assert_eq!(decision.settings_seq, *seqs.last().unwrap());
    let chain: Vec<(&str, &str)> = decision
        .chain
        .iter()
        .map(|t| (t.number.as_str(), t.rule.as_str()))
        .collect();
    assert_eq!(
        chain,
        vec![
            ("+13*******21", "forwarding_number"),
            ("+16*******34", "company_phone")
        ]
    );
    assert_eq!(decision.explanation, route.explanation_lines());
    let masked: Vec<_> = route.reasons.iter().map(|r| r.masked_json()).collect();
    assert_eq!(decision.reasons, masked);
    assert!(
        decision.reasons.iter().any(|r| r["code"] == "target"),
        "{:#?}",
        decision.reasons
    );
    let settings: Vec<(String, u64)> = life
        .settings
        .iter()
        .map(|s| (s.entity.clone(), s.at.seq))
        .collect();
    assert_eq!(
        settings,
        vec![
            ("company/main".to_string(), seqs[0]),
            ("number/+16*******00".to_string(), seqs[1]),
            ("contact/c-2".to_string(), seqs[6]),
            ("user/u-bob".to_string(), seqs[4]),
        ]
    );
    assert!(
        life.settings[3].summary.contains("phone none"),
        "{:?}",
        life.settings[3]
    );
    assert_eq!(life.settings[3].kind, "user");
    assert_eq!(life.settings[3].id, "u-bob");
    assert_eq!(life.settings[3].data["user_id"], "u-bob");
    let replay = life.replay.as_ref().expect("replayed");
    assert!(replay.agrees && replay.differences.is_empty(), "{replay:?}");
    let steps: Vec<(u64, &str, &str, u32)> = life
        .steps
        .iter()
        .map(|s| (s.at.seq, s.source.as_str(), s.what.as_str(), s.step))
        .collect();
    assert_eq!(
        steps,
        vec![
            (step_seqs[0], "dial", "step_started", 0),
            (step_seqs[1], "status", "no_answer", 0),
            (step_seqs[2], "dial", "step_failed", 0),
            (step_seqs[3], "dial", "step_started", 1),
            (step_seqs[4], "status", "completed", 1),
            (step_seqs[5], "dial", "answered", 1),
        ]
    );

    // And the text for people has every part, with numbers masked
    let text = life.to_text();
    for part in [
        "call CA-life (tenant acme)",
        "rule forwarding_number, decided at SETTINGS #",
        "settings in force",
        "user/u-bob",
        "the current routing code decides the same",
        "step_failed",
        "dial status no_answer",
        "answered",
    ] {
        assert!(text.contains(part), "{part:?} missing from\n{text}");
    }
    for full in [N1, FORWARD, COMPANY, "4152000002"] {
        assert!(!text.contains(full), "{full} unmasked in\n{text}");
    }
    let json = serde_json::to_string(&life).unwrap();
    assert!(!json.contains(FORWARD), "{json}");
}

#[tokio::test]
async fn explain_says_when_a_call_is_unknown_or_its_id_is_malformed() {
    let mut rec = Recorder::start().await;
    rec.settings(day_start("acme")).await;
    rec.call(inbound("acme", "CA-known", N1, CALLERS[0])).await;

    // A prefix of a stored id is not that call
    let none = explain(&rec.streams.js, "CA-kno", None, &NoProgress)
        .await
        .unwrap();
    assert!(none.is_none());
    // Another tenant's filter does not find it
    let other = tenant("globex");
    let none = explain(&rec.streams.js, "CA-known", Some(&other), &NoProgress)
        .await
        .unwrap();
    assert!(none.is_none());
    let err = explain(&rec.streams.js, "CA known", None, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a call id"), "{err}");
}
