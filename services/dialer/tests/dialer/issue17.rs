//! Issue 17, acted on: a simultaneous ring group is one `<Dial>` with every member, a
//! sequential one is ordinary legs; a screened leg carries the gateway's whisper; a `<Reject>`
//! of a call that already ended is the end it asked for; `call.missed` is published once for a
//! call nobody answered, never for an answered or a blocked one.

use crate::fake_twilio::{FakeTwilio, Mode};
use crate::support::*;
use std::sync::Arc;
use std::time::Duration;
use switchboard_contracts::reasons::UserSkipped;
use switchboard_contracts::{
    CallMissed, CallRoute, DialCallStatus, DialEventKind, E164, EntityId, FinalAction,
    FinalActionKind, GroupMember, MissedEnd, Reason, Rule, Target,
};
use switchboard_dialer::carrier::SANDBOX_STREAM;
use switchboard_dialer::{Carrier, Sandbox, SandboxOptions};
use switchboard_testkit::eventually;

const MEMBERS: [&str; 3] = ["+14155550101", "+14155550102", "+14155550103"];
const CALLER: &str = "+12125550199";
const DIALED: &str = "+16502530000";

fn id(s: &str) -> EntityId {
    EntityId::parse("id", s).unwrap()
}

fn e164(n: &str) -> E164 {
    E164::parse_strict(n).unwrap()
}

fn member(i: usize) -> GroupMember {
    GroupMember {
        number: e164(MEMBERS[i]),
        user_id: id(&format!("u-{i}")),
    }
}

/// A simultaneous group's leg of `members`, screened or not.
fn group_leg(members: &[usize], screen: bool) -> Target {
    let group: Vec<GroupMember> = members.iter().map(|i| member(*i)).collect();
    Target {
        number: group[0].number.clone(),
        user_id: Some(group[0].user_id.clone()),
        rule: Rule::RingGroup,
        ring_timeout_secs: Some(25),
        group,
        screen,
    }
}

/// One member of a sequential group: an ordinary leg.
fn sequential_leg(i: usize) -> Target {
    Target {
        user_id: Some(member(i).user_id),
        ring_timeout_secs: Some(15),
        ..target(MEMBERS[i], Rule::RingGroup)
    }
}

fn decision(call_id: &str, legs: Vec<Target>) -> CallRoute {
    let mut d = full_chain(call_id, FinalAction::default());
    let mut legs = legs.into_iter();
    d.rule = Rule::RingGroup;
    d.target = legs.next();
    d.fallbacks = legs.collect();
    d
}

/// A decision whose reasons name the dialed number, the caller's lead and its owner.
fn known_caller(mut d: CallRoute) -> CallRoute {
    d.caller = Some(e164(CALLER));
    d.reasons = vec![
        Reason::NumberProvisioned {
            number: e164(DIALED),
        },
        Reason::CallerIsLead {
            number: e164(CALLER),
            contact_id: id("c-9"),
        },
        Reason::UserUnavailable(UserSkipped {
            rule: Rule::AssignedUser,
            user_id: id("u-owner"),
            contact_id: Some(id("c-9")),
            next: Rule::ForwardingNumber,
            hours: None,
        }),
    ];
    d
}

fn rejected(call_id: &str, rule: Rule) -> CallRoute {
    CallRoute {
        rule,
        ..no_route(call_id, FinalActionKind::Reject, "")
    }
}

fn screen_url(step: u32) -> String {
    format!("{PUBLIC}/v1/tenants/{T}/twilio/screen?step={step}")
}

impl Nats {
    /// The `call.missed` messages of `call_id` stored in CALLS (each a distinct message).
    async fn missed(&self, call_id: &str) -> Vec<CallMissed> {
        self.read::<CallMissed>(&format!("call.missed.{T}"))
            .await
            .into_iter()
            .filter(|e| {
                assert_eq!(e.id, format!("{T}:{}:missed", e.data.call_id));
                e.data.call_id == call_id
            })
            .map(|e| e.data)
            .collect()
    }

    async fn wait_missed(&self, call_id: &str) -> CallMissed {
        eventually(WAIT, &format!("{call_id}: call.missed"), || async {
            self.missed(call_id).await.into_iter().next()
        })
        .await
        .unwrap()
    }
}

fn sandbox_args(nats_url: &str) -> Vec<String> {
    [
        "switchboard-dialer",
        "--nats-url",
        nats_url,
        "--http-addr",
        "127.0.0.1:0",
        "--public-base-url",
        PUBLIC,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn sandbox(nats: &Nats, outcomes: Vec<DialCallStatus>) -> (Arc<Sandbox>, Dialer) {
    let sandbox = Arc::new(
        Sandbox::open(
            &nats.js,
            SandboxOptions::new(outcomes, Duration::from_millis(20)),
        )
        .await
        .unwrap(),
    );
    let dialer = Dialer::start_with(
        sandbox_args(&nats.url()),
        Some(sandbox.clone() as Arc<dyn Carrier>),
    );
    (sandbox, dialer)
}

#[tokio::test]
async fn a_simultaneous_group_is_one_dial_of_every_member_and_a_sequential_one_leg_by_leg() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAgroup1";
    // The simultaneous group of three, then two members of a sequential group, one by one.
    let legs = vec![
        group_leg(&[0, 1, 2], false),
        sequential_leg(1),
        sequential_leg(2),
    ];
    nats.publish(decision(call, legs)).await;

    let expect: [(&[&str], &str); 3] = [
        (&MEMBERS, "25"),
        (&[MEMBERS[1]], "15"),
        (&[MEMBERS[2]], "15"),
    ];
    for (step, (numbers, timeout)) in expect.iter().enumerate() {
        let step = u32::try_from(step).unwrap();
        let rung = eventually(WAIT, &format!("step {step} rung"), || async {
            twilio.fake.for_call(call).get(step as usize).cloned()
        })
        .await
        .unwrap();
        assert_eq!(rung.numbers, *numbers, "{}", rung.twiml);
        assert_eq!(rung.actions, vec![action(step)], "one <Dial> per leg");
        assert_eq!(rung.twiml.matches("<Dial ").count(), 1, "{}", rung.twiml);
        assert_eq!(rung.dial_timeout.as_deref(), Some(*timeout));
        assert!(rung.screens.is_empty(), "{}", rung.twiml);
        nats.wait_dial(call, step, DialEventKind::StepStarted).await;
        nats.publish(status(call, step, DialCallStatus::NoAnswer))
            .await;
    }
    nats.wait_dial(call, 3, DialEventKind::FinalActionTaken)
        .await;
    let started = nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    assert_eq!(started.target.unwrap().group.len(), 3);
    nats.wait_settled().await;
    dialer.stop().await;
}

#[tokio::test]
async fn a_screened_leg_carries_the_whisper_on_every_number_and_a_declined_one_moves_on() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAscreen1";
    let mut company = target(COMPANY, Rule::CompanyPhone);
    company.screen = false;
    let mut forwarding = target(FORWARDING, Rule::ForwardingNumber);
    forwarding.screen = true;
    let legs = vec![group_leg(&[0, 1], true), forwarding, company];
    nats.publish(decision(call, legs)).await;

    let rung = |step: usize| {
        let fake = twilio.fake.clone();
        async move {
            eventually(WAIT, &format!("step {step} rung"), || async {
                fake.for_call(call).get(step).cloned()
            })
            .await
            .unwrap()
        }
    };
    let group = rung(0).await;
    assert_eq!(group.numbers, [MEMBERS[0], MEMBERS[1]]);
    assert_eq!(
        group.screens,
        [screen_url(0), screen_url(0)],
        "{}",
        group.twiml
    );
    assert_eq!(
        group.twiml.matches("method=\"POST\"").count(),
        3,
        "{}",
        group.twiml
    );
    // Nobody pressed 1: the gateway reports the leg as no answer; the chain moves on.
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    let forwarded = rung(1).await;
    assert_eq!(forwarded.numbers, [FORWARDING]);
    assert_eq!(forwarded.screens, [screen_url(1)]);
    nats.publish(status(call, 1, DialCallStatus::Canceled))
        .await;
    let company = rung(2).await;
    assert_eq!(company.numbers, [COMPANY]);
    assert!(
        company.screens.is_empty(),
        "the company phone is never screened"
    );
    nats.publish(status(call, 2, DialCallStatus::Completed))
        .await;
    nats.wait_dial(call, 2, DialEventKind::Answered).await;
    nats.wait_settled().await;
    assert!(nats.missed(call).await.is_empty(), "answered: not missed");
    dialer.stop().await;
}

/// Async mode: the gateway refused the blocked caller at its webhook, so the call is over when
/// the dialer's `<Reject>` reaches Twilio (HTTP 400, code 21220). That is the end the decision
/// asked for: recorded as taken, asked once (no retries), not a failure; and not missed.
#[tokio::test]
async fn a_reject_of_a_call_that_already_ended_is_taken_once_and_one_still_in_progress_is_rejected()
{
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio.fake.set_mode("final", Mode::Ended);
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAblocked1";
    nats.publish(rejected(call, Rule::Blocked)).await;
    let taken = nats
        .wait_dial(call, 0, DialEventKind::FinalActionTaken)
        .await;
    let reason = taken.reason.unwrap();
    assert!(
        reason.starts_with("reject (the call had already ended") && reason.contains("code 21220"),
        "{reason}"
    );
    assert!(!taken.outcome_unknown);
    nats.wait_settled().await;
    assert_eq!(twilio.fake.attempts("final"), 1, "never retried");
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![(0, ChainExhausted), (0, FinalActionTaken)]
    );

    // The gateway's block list was behind: the call is still in progress, and the REST
    // update's `<Reject>` ends it.
    twilio.fake.set_mode("final", Mode::SlowOk(Duration::ZERO));
    let call = "CAanon1";
    nats.publish(rejected(call, Rule::Anonymous)).await;
    let taken = nats
        .wait_dial(call, 0, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(taken.reason.as_deref(), Some("reject"));
    let modified = twilio.fake.for_call(call);
    assert_eq!(modified.len(), 1);
    assert_eq!(
        modified[0].reject.as_deref(),
        Some("busy"),
        "{}",
        modified[0].twiml
    );
    nats.wait_settled().await;
    assert!(nats.missed("CAblocked1").await.is_empty());
    assert!(nats.missed(call).await.is_empty());
    dialer.stop().await;
}

/// The sandbox is faithful: a call that ended at it (the gateway's `<Reject>` at the webhook)
/// is refused as Twilio refuses it, and the dialer records the `<Reject>` as taken.
#[tokio::test]
async fn the_sandbox_refuses_a_call_that_ended_and_the_reject_is_recorded_taken() {
    let nats = Nats::start().await;
    let (sandbox, dialer) = sandbox(&nats, vec![DialCallStatus::NoAnswer]).await;
    let call = "SBblocked1";
    sandbox.end_call(&tenant(T), call).await.unwrap();
    sandbox.end_call(&tenant(T), call).await.unwrap(); // idempotent
    nats.publish(rejected(call, Rule::Blocked)).await;
    let taken = nats
        .wait_dial(call, 0, DialEventKind::FinalActionTaken)
        .await;
    assert!(
        taken
            .reason
            .as_deref()
            .unwrap()
            .contains("(code 21220): Call is not in-progress"),
        "{taken:?}"
    );
    nats.wait_settled().await;
    assert!(sandbox.records().is_empty(), "nothing accepted");
    let stream = nats.js.get_stream(SANDBOX_STREAM).await.unwrap();
    assert_eq!(
        stream.get_info().await.unwrap().state.messages,
        1,
        "the one mark that the call ended"
    );
    assert!(nats.missed(call).await.is_empty());
    dialer.stop().await;
}

#[tokio::test]
async fn call_missed_is_published_once_for_unanswered_calls_and_never_for_answered_or_blocked() {
    let nats = Nats::start().await;
    // Step 0 no answer, step 1 busy, step 2 answered.
    let outcomes = vec![
        DialCallStatus::NoAnswer,
        DialCallStatus::Busy,
        DialCallStatus::Completed,
    ];
    let (_sandbox, dialer) = sandbox(&nats, outcomes).await;
    let unanswered = known_caller(decision(
        "SBmissed1",
        vec![
            group_leg(&[0, 1], false),
            target(FORWARDING, Rule::ForwardingNumber),
        ],
    ));
    let answered = decision(
        "SBanswered1",
        vec![
            target(USER_PHONE, Rule::AssignedUser),
            target(FORWARDING, Rule::ForwardingNumber),
            target(COMPANY, Rule::CompanyPhone),
        ],
    );
    let closed = CallRoute {
        rule: Rule::AfterHours,
        ..no_route("SBclosed1", FinalActionKind::AnnounceHangup, "Closed")
    };
    let blocked = CallRoute {
        rule: Rule::Blocked,
        ..no_route("SBblocked2", FinalActionKind::AnnounceHangup, "Goodbye")
    };
    for d in [&unanswered, &answered, &closed, &blocked] {
        nats.publish(d.clone()).await;
    }

    let missed = nats.wait_missed("SBmissed1").await;
    assert_eq!(
        missed,
        CallMissed {
            call_id: "SBmissed1".into(),
            tenant_id: tenant(T),
            caller: Some(e164(CALLER)),
            dialed: Some(e164(DIALED)),
            contact_id: Some(id("c-9")),
            owner_user_id: Some(id("u-owner")),
            rule: Rule::RingGroup,
            tried: switchboard_dialer::progress::chain(&unanswered)
                .into_iter()
                .cloned()
                .collect(),
            ended: MissedEnd::FinalAction,
            final_action: Some(FinalActionKind::Voicemail),
            at: missed.at,
        }
    );
    let taken = nats
        .wait_dial("SBmissed1", 2, DialEventKind::FinalActionTaken)
        .await;
    assert_eq!(
        missed.at, taken.at,
        "it ended when the final action was taken"
    );
    let closed = nats.wait_missed("SBclosed1").await;
    assert_eq!(
        (
            closed.ended,
            closed.final_action,
            closed.rule,
            closed.tried.len()
        ),
        (
            MissedEnd::FinalAction,
            Some(FinalActionKind::AnnounceHangup),
            Rule::AfterHours,
            0
        )
    );
    nats.wait_dial("SBanswered1", 2, DialEventKind::Answered)
        .await;
    nats.wait_dial("SBblocked2", 0, DialEventKind::FinalActionTaken)
        .await;
    nats.wait_settled().await;

    // Redelivered and re-published decisions (another producer, a replay) repeat the
    // publication: CALLS still holds one message per missed call.
    nats.republish(unanswered.clone(), "again-1").await;
    nats.republish(closed_again(), "again-2").await;
    nats.wait_settled().await;
    for call in ["SBmissed1", "SBclosed1"] {
        assert_eq!(nats.missed(call).await.len(), 1, "{call}: exactly once");
    }
    for call in ["SBanswered1", "SBblocked2"] {
        assert!(nats.missed(call).await.is_empty(), "{call}: not missed");
    }
    dialer.stop().await;
}

fn closed_again() -> CallRoute {
    CallRoute {
        rule: Rule::AfterHours,
        ..no_route("SBclosed1", FinalActionKind::AnnounceHangup, "Closed")
    }
}

/// The sandbox's `canceled`: the caller hung up while the leg rang. The chain's next request
/// is refused (the call is over): nothing more is asked, and the call is missed as hung up.
#[tokio::test]
async fn a_caller_who_hangs_up_while_a_leg_rings_is_missed_as_hung_up() {
    let nats = Nats::start().await;
    let (sandbox, dialer) = sandbox(&nats, vec![DialCallStatus::Canceled]).await;
    let call = "SBhungup1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    let missed = nats.wait_missed(call).await;
    assert_eq!(
        (missed.ended, missed.final_action),
        (MissedEnd::CallerHungUp, None)
    );
    assert_eq!(missed.tried, vec![target(USER_PHONE, Rule::AssignedUser)]);
    nats.wait_settled().await;
    use DialEventKind::*;
    assert_eq!(
        nats.dial_kinds(call).await,
        vec![(0, StepStarted), (0, StepFailed), (1, StepFailed)]
    );
    let refused = nats.dial_events(call).await.pop().unwrap();
    assert!(
        refused
            .reason
            .as_deref()
            .unwrap()
            .contains("the call had already ended"),
        "{refused:?}"
    );
    assert_eq!(sandbox.records().len(), 1, "only step 0 was rung");
    dialer.stop().await;
}

/// Twilio's own refusal (HTTP 400, code 21220) ends the chain the same way.
#[tokio::test]
async fn twilio_refusing_a_call_no_longer_in_progress_ends_the_chain_without_retries() {
    let nats = Nats::start().await;
    let twilio = FakeTwilio::start().await;
    twilio.fake.set_mode(FORWARDING, Mode::Ended);
    let dialer = Dialer::start(args(&nats.url(), &twilio.base));
    let call = "CAgone1";
    nats.publish(full_chain(call, FinalAction::default())).await;
    nats.wait_dial(call, 0, DialEventKind::StepStarted).await;
    nats.publish(status(call, 0, DialCallStatus::NoAnswer))
        .await;
    let missed = nats.wait_missed(call).await;
    assert_eq!(missed.ended, MissedEnd::CallerHungUp);
    nats.wait_settled().await;
    assert_eq!(twilio.fake.attempts(FORWARDING), 1, "never retried");
    assert_eq!(
        twilio.fake.attempts(COMPANY),
        0,
        "nothing asked after the end"
    );
    assert_eq!(twilio.fake.attempts("final"), 0);
    dialer.stop().await;
}
