//! The chain driven by status events: each target once, in order, then the final action.

use crate::fake_twilio::FakeTwilio;
use crate::support::*;
use switchboard_contracts::{
    CallRoute, DialCallStatus, DialEventKind, FinalAction, FinalActionKind, Rule,
};
use switchboard_testkit::eventually;

#[tokio::test]
async fn full_chain_rings_user_forwarding_company_then_the_final_action() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAchain1";
    nats.publish(full_chain(call, FinalAction::default())).await;

    let expect = [
        (USER_PHONE, DialCallStatus::NoAnswer),
        (FORWARDING, DialCallStatus::Busy),
        (COMPANY, DialCallStatus::Failed),
    ];
    for (step, (number, outcome)) in expect.iter().enumerate() {
        let step = u32::try_from(step).unwrap();
        let rung = eventually(WAIT, &format!("step {step} rung"), || async {
            let calls = twilio.fake.for_call(call);
            (calls.len() > step as usize).then(|| calls[step as usize].clone())
        })
        .await
        .unwrap();
        assert_eq!(rung.numbers, vec![number.to_string()]);
        assert_eq!(rung.actions, vec![action(step)]);
        assert_eq!(rung.dial_timeout.as_deref(), Some("20"));
        assert!(
            rung.twiml.contains("answerOnBridge=\"true\""),
            "{}",
            rung.twiml
        );
        let started = nats.wait_dial(call, step, DialEventKind::StepStarted).await;
        assert_eq!(started.target.unwrap().number.as_str(), *number);
        assert_eq!(started.carrier_sid.as_deref(), Some(call));
        nats.publish(status(call, step, *outcome)).await;
    }

    let taken = nats
        .wait_dial(call, 3, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(taken.reason.as_deref(), Some("voicemail"));
    let calls = twilio.fake.for_call(call);
    assert_eq!(calls.len(), 4, "three dials and the final action");
    let last = &calls[3];
    assert!(last.numbers.is_empty());
    assert!(
        last.says[0].starts_with("Sorry, no one is available"),
        "{:?}",
        last.says
    );
    assert!(last.record && last.hangup, "{}", last.twiml);
    assert!(
        last.twiml
            .contains(&format!("action=\"{PUBLIC}/v1/twiml/hangup\"")),
        "{}",
        last.twiml
    );

    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![
            (0, StepStarted),
            (0, StepFailed),
            (1, StepStarted),
            (1, StepFailed),
            (2, StepStarted),
            (2, StepFailed),
            (3, ChainExhausted),
            (3, FinalActionTaken),
        ]
    );
    let failed: Vec<String> = nats
        .dial_events(call)
        .await
        .into_iter()
        .filter(|d| d.kind == StepFailed)
        .map(|d| d.reason.unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "dial status no_answer",
            "dial status busy",
            "dial status failed"
        ]
    );
    nats.wait_settled().await;
    dialer.stop().await;
}

#[tokio::test]
async fn an_answer_at_step_1_stops_the_chain() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAanswer1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    nats.wait_dial(call, 1, DialEventKind::StepStarted).await;
    nats.publish(status(call, 1, DialCallStatus::Completed))
        .await;
    let answered = nats.wait_dial(call, 1, DialEventKind::Answered).await;
    assert_eq!(answered.target.unwrap().number.as_str(), FORWARDING);
    assert_eq!(answered.carrier_sid.as_deref(), Some("CAleg1"));
    nats.wait_settled().await;
    // Late statuses of finished steps change nothing.
    nats.republish(status(call, 1, DialCallStatus::NoAnswer), "late-1")
        .await;
    nats.wait_settled().await;
    let numbers: Vec<Vec<String>> = twilio
        .fake
        .for_call(call)
        .into_iter()
        .map(|m| m.numbers)
        .collect();
    assert_eq!(
        numbers,
        vec![vec![USER_PHONE.to_string()], vec![FORWARDING.to_string()]]
    );
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![
            (0, StepStarted),
            (0, StepFailed),
            (1, StepStarted),
            (1, Answered)
        ]
    );
    dialer.stop().await;
}

#[tokio::test]
async fn no_route_runs_the_final_action_at_once() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    nats.publish(no_route(
        "CAvm",
        FinalActionKind::Voicemail,
        "Leave a message & we'll call <back>",
    ))
    .await;
    nats.publish(no_route(
        "CAbye",
        FinalActionKind::AnnounceHangup,
        "We are closed",
    ))
    .await;

    let vm = nats
        .wait_dial("CAvm", 0, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(vm.reason.as_deref(), Some("voicemail"));
    let bye = nats
        .wait_dial("CAbye", 0, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(bye.reason.as_deref(), Some("announce_hangup"));

    let vm = twilio.fake.for_call("CAvm");
    assert_eq!(vm.len(), 1);
    assert_eq!(
        vm[0].says,
        vec!["Leave a message & we'll call <back>".to_string()]
    );
    assert!(
        vm[0].twiml.contains("&amp; we&apos;ll call &lt;back&gt;"),
        "{}",
        vm[0].twiml
    );
    assert!(vm[0].record && vm[0].hangup);
    let bye = twilio.fake.for_call("CAbye");
    assert_eq!(bye.len(), 1);
    assert_eq!(bye[0].says, vec!["We are closed".to_string()]);
    assert!(!bye[0].record && bye[0].hangup, "{}", bye[0].twiml);
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds("CAvm").await,
        vec![(0, ChainExhausted), (0, FinalActionTaken)]
    );
    dialer.stop().await;
}

/// Issue 15: "The dialer acts on both while both may be in flight": a v1 decision (prose) and
/// v2 decisions (reasons; a closed company's final action as `after_hours` with no target).
#[tokio::test]
async fn v1_and_v2_decisions_in_flight_together_are_both_acted_on() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    nats.publish_v1(full_chain("CAv1", FinalAction::default()))
        .await;
    nats.publish(full_chain("CAv2", FinalAction::default()))
        .await;
    let closed = CallRoute {
        rule: Rule::AfterHours,
        ..no_route("CAclosed", FinalActionKind::AnnounceHangup, "We are closed")
    };
    nats.publish(closed).await;

    for call in ["CAv1", "CAv2"] {
        let started = nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
        assert_eq!(
            started.target.unwrap().number.as_str(),
            USER_PHONE,
            "{call}"
        );
    }
    let closed = nats
        .wait_dial("CAclosed", 0, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(closed.reason.as_deref(), Some("announce_hangup"));
    assert_eq!(
        twilio.fake.for_call("CAclosed")[0].says,
        vec!["We are closed".to_string()]
    );
    dialer.stop().await;
}

#[tokio::test]
async fn redelivered_decisions_and_duplicate_statuses_never_ring_twice() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAdup1";
    let decision = full_chain(call, FinalAction::default());
    nats.publish(decision.clone()).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    // The same decision again (another producer, a replay): a second delivery.
    nats.republish(decision.clone(), "again-1").await;
    nats.wait_settled().await;
    assert_eq!(twilio.fake.for_call(call).len(), 1);

    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    nats.wait_dial(call, 1, DialEventKind::StepStarted).await;
    // The same status twice more, and a status of a step that is not the current one.
    nats.republish(status(call, 0, DialCallStatus::NoAnswer), "dup-0a")
        .await;
    nats.republish(status(call, 0, DialCallStatus::Busy), "dup-0b")
        .await;
    nats.republish(status(call, 2, DialCallStatus::NoAnswer), "early-2")
        .await;
    nats.republish(decision, "again-2").await;
    nats.wait_settled().await;

    let numbers: Vec<Vec<String>> = twilio
        .fake
        .for_call(call)
        .into_iter()
        .map(|m| m.numbers)
        .collect();
    assert_eq!(
        numbers,
        vec![vec![USER_PHONE.to_string()], vec![FORWARDING.to_string()]]
    );
    assert_eq!(twilio.fake.attempts(USER_PHONE), 1);
    assert_eq!(twilio.fake.attempts(FORWARDING), 1);
    assert_eq!(twilio.fake.attempts(COMPANY), 0);
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![(0, StepStarted), (0, StepFailed), (1, StepStarted)]
    );
    dialer.stop().await;
}

#[tokio::test]
async fn in_gateway_sync_mode_step_0_is_not_rung_again() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let mut args = args(&nats.url(), &twilio.base);
    args.extend(["--answer-mode".into(), "sync".into()]);
    let dialer = Dialer::start(args);
    let call = "CAsync1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.publish(no_route(
        "CAsync2",
        FinalActionKind::AnnounceHangup,
        "Closed",
    ))
    .await;
    let started = nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    assert_eq!(
        started.reason.as_deref(),
        Some("rung by the gateway in sync mode")
    );
    nats.wait_dial("CAsync2", 0, DialEventKind::FinalActionTaken)
        .await;
    nats.wait_settled().await;
    assert!(
        twilio.fake.accepted().is_empty(),
        "the gateway answered both calls itself"
    );

    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    nats.wait_dial(call, 1, DialEventKind::StepStarted).await;
    let calls = twilio.fake.for_call(call);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].numbers, vec![FORWARDING.to_string()]);
    assert_eq!(calls[0].actions, vec![action(1)]);
    dialer.stop().await;
}

/// The gateway's name for sync mode, `--answer-mode sync`, is the dialer's; the dialer's old
/// `--gateway-sync-mode` still works (hidden).
#[test]
fn sync_mode_is_named_as_in_the_gateway_and_the_old_flag_still_works() {
    use clap::Parser;
    let parse = |extra: &[&str]| {
        let mut args = vec!["switchboard-dialer"];
        args.extend_from_slice(extra);
        switchboard_dialer::Config::try_parse_from(args).map(|c| c.gateway_sync_mode)
    };
    assert!(!parse(&[]).unwrap());
    assert!(!parse(&["--answer-mode", "async"]).unwrap());
    assert!(parse(&["--answer-mode", "sync"]).unwrap());
    assert!(parse(&["--gateway-sync-mode"]).unwrap());
    assert!(!parse(&["--gateway-sync-mode", "--answer-mode", "async"]).unwrap());
    assert!(parse(&["--answer-mode", "maybe"]).is_err());
    let help = <switchboard_dialer::Config as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    assert!(
        help.contains("--answer-mode <MODE>")
            && help.contains("SWITCHBOARD_ANSWER_MODE")
            && help.contains("--ring-timeout-secs")
            && !help.contains("gateway-sync-mode")
            && !help.contains("GATEWAY_SYNC_MODE"),
        "{help}"
    );
}

/// Issue 14: a final announcement with a blank message is said with the default greeting,
/// never a silent hang-up — the TwiML the gateway answers in sync mode too.
#[tokio::test]
async fn a_blank_announcement_says_the_default_greeting() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    nats.publish(no_route("CAblank", FinalActionKind::AnnounceHangup, " "))
        .await;
    let taken = nats
        .wait_dial("CAblank", 0, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(taken.reason.as_deref(), Some("announce_hangup"));
    let calls = twilio.fake.for_call("CAblank");
    assert_eq!(calls.len(), 1);
    let greeting = FinalAction::default().message;
    assert_eq!(
        calls[0].twiml,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{greeting}</Say>\
             <Hangup/></Response>"
        )
    );
    assert_eq!(calls[0].says, vec![greeting.to_string()]);
    assert!(calls[0].hangup && !calls[0].record);
    nats.wait_settled().await;
    dialer.stop().await;
}

/// Issue 15: "Every leg carries its ring timeout" and the dialer rings each leg for it
/// (Twilio `<Dial timeout>`); a decision made before ring timeouts existed rings for the
/// dialer's `--ring-timeout-secs`.
#[tokio::test]
async fn each_leg_rings_for_its_own_timeout() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAtimeouts";
    let mut decision = full_chain(call, FinalAction::default());
    if let Some(t) = decision.target.as_mut() {
        t.ring_timeout_secs = Some(15);
    }
    decision.fallbacks[0].ring_timeout_secs = Some(25);
    nats.publish(decision).await;
    for (step, expected) in [(0u32, "15"), (1, "25"), (2, "20")] {
        nats.wait_dial(call, step, DialEventKind::StepStarted).await;
        let rung = twilio.fake.for_call(call)[step as usize].clone();
        assert_eq!(rung.dial_timeout.as_deref(), Some(expected), "step {step}");
        nats.publish(status(call, step, DialCallStatus::NoAnswer))
            .await;
    }
    nats.wait_dial(call, 3, DialEventKind::FinalActionTaken)
        .await;
    dialer.stop().await;
}
