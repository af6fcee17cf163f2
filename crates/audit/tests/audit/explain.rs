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

/// Issue 17 in explain: a ring-group leg shows its members and that it is screened, a blocked
/// call's final action is `reject`, the company's summary names its caller policies and the
/// number's its ring group.
#[tokio::test]
async fn explain_shows_ring_group_members_screening_and_a_rejected_caller() {
    use switchboard_contracts::{
        AnonymousCallers, NumberSettings, RingGroup, RingMode, Screening, SettingsChange,
    };
    // Given a company that screens forwarded legs, blocks one caller, sends anonymous callers
    // to voicemail and sends returning callers back for 30 days, and N1 ringing u-1 and u-2 at
    // once
    let mut rec = Recorder::start().await;
    let company = match company("acme", 1, Some(COMPANY)) {
        SettingsChange::Company(mut c) => {
            c.screening = Some(Screening::Forwarded);
            c.blocked_callers = vec![CALLERS[3].into(), "+1900".into()];
            c.anonymous_callers = Some(AnonymousCallers::Voicemail);
            c.returning_caller_days = 30;
            SettingsChange::Company(c)
        }
        _ => unreachable!(),
    };
    let grouped = match num("acme", 1, N1, Some(FORWARD), false) {
        SettingsChange::Number(n) => SettingsChange::Number(NumberSettings {
            ring_group: Some(RingGroup {
                user_ids: vec![id("u-1"), id("u-2")],
                mode: RingMode::Simultaneous,
                ring_timeout_secs: Some(15),
            }),
            ..n
        }),
        _ => unreachable!(),
    };
    rec.settings(vec![
        company,
        grouped,
        user("acme", 1, "u-1", Some(ALICE), true),
        user("acme", 1, "u-2", Some(BOB), true),
    ])
    .await;
    let (_, route) = rec.call(inbound("acme", "CA-group", N1, CALLERS[2])).await;
    assert_eq!(route.rule, Rule::RingGroup);
    let (_, blocked) = rec
        .call(inbound("acme", "CA-blocked", N1, CALLERS[3]))
        .await;
    assert_eq!(blocked.rule, Rule::Blocked);

    // When the group call is explained
    let life = explain(&rec.streams.js, "CA-group", None, &NoProgress)
        .await
        .unwrap()
        .expect("the call is found");

    // Then its first leg lists both members (masked) and is screened, as is the forwarding
    // number; the company phone is not
    let chain = &life.decisions[0].chain;
    let legs: Vec<(&str, usize, bool)> = chain
        .iter()
        .map(|t| (t.rule.as_str(), t.group.len(), t.screen))
        .collect();
    assert_eq!(
        legs,
        vec![
            ("ring_group", 2, true),
            ("forwarding_number", 0, true),
            ("company_phone", 0, false)
        ]
    );
    let members: Vec<(&str, &str)> = chain[0]
        .group
        .iter()
        .map(|m| (m.user_id.as_str(), m.number.as_str()))
        .collect();
    assert_eq!(
        members,
        vec![("u-1", "+12*******01"), ("u-2", "+12*******02")]
    );
    assert!(life.replay.as_ref().unwrap().agrees, "{:?}", life.replay);
    // and the summaries name the caller policies and the group
    let summary = |entity: &str| {
        life.settings
            .iter()
            .find(|s| s.entity == entity)
            .unwrap_or_else(|| panic!("{entity} not among {:#?}", life.settings))
            .summary
            .clone()
    };
    let company = summary("company/main");
    for part in [
        "2 blocked caller entries, blocked action reject (default)",
        "anonymous callers voicemail",
        "returning callers to their last answerer for 30 day(s)",
        "screening forwarded",
    ] {
        assert!(company.contains(part), "{part:?} not in {company:?}");
    }
    let number = summary("number/+16*******00");
    assert!(
        number.contains("ring group u-1, u-2 (all at once, rings 15 s)"),
        "{number}"
    );
    let text = life.to_text();
    assert!(
        text.contains(
            "ring +12*******01 (ring_group: u-1 +12*******01, u-2 +12*******02 at once; screened)"
        ),
        "{text}"
    );
    for full in [ALICE, BOB, CALLERS[3]] {
        assert!(!text.contains(full), "{full} unmasked in\n{text}");
    }

    // And the blocked call's final action is a rejection, with nothing to ring
    let life = explain(&rec.streams.js, "CA-blocked", None, &NoProgress)
        .await
        .unwrap()
        .expect("the call is found");
    let decision = &life.decisions[0];
    assert_eq!(decision.rule, "blocked");
    assert!(decision.chain.is_empty());
    assert_eq!(decision.final_action.kind, "reject");
    assert!(life.replay.as_ref().unwrap().agrees, "{:?}", life.replay);
    assert!(
        life.to_text().contains("finally reject"),
        "{}",
        life.to_text()
    );
}
