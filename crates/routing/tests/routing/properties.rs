//! Invariants over generated tenants, answered-call histories and calls: never the dialed
//! number, always a target or a final action, closed → never a user, a blocked caller → nobody,
//! never a number or a user twice (ring groups included), screening on every leg but the
//! company phone, same inputs → same decision, and any order of the same settings events gives
//! the same decisions.

use crate::fixture::{DIALED, always, answered, id, office_hours, schedule, tenant};
use proptest::prelude::*;
use std::collections::HashSet;
use switchboard_contracts::schedule::{Schedule, timestamp};
use switchboard_contracts::{
    AfterHours, AfterHoursKind, AnonymousCallers, BlockedAction, CallDial, CallInbound,
    CompanySettings, ContactSettings, DialEventKind, E164, EventData, FinalAction, FinalActionKind,
    GroupMember, NumberSettings, PhoneError, Prefer, Reason, Region, RingGroup, RingMode, Rule,
    Screening, SettingsChange, TenantId, UserSettings,
};
use switchboard_routing::{
    AnswerBook, AnswerLog, CallerHistory, Decision, SettingsView, TenantState, decide_with,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// A small pool so that collisions (loops, repeats, several leads) happen often.
const NUMBERS: [&str; 6] = [
    DIALED,
    "+14158675310",
    "+12064561234",
    "+13127654321",
    "(617) 253-1234",
    "not a number",
];
const USERS: [&str; 3] = ["u1", "u2", "u3"];
/// Ring-group members and answerers: the users above and one nobody set up.
const MEMBERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
/// Block-list entries: the callers below exactly, by prefix, a longer number than a caller, a
/// sibling of one, another country, and the dialed number.
const BLOCKED: [&str; 7] = [
    "+14158675310",
    "+1415",
    "+141586753101",
    "+14158675311",
    "+1206456",
    "+44",
    DIALED,
];
/// Callers of the history: the two the calls below use, and one that never calls.
const CALLERS: [&str; 3] = ["+14158675310", "+12064561234", "+13127654321"];
const CONTACTS: [&str; 4] = ["c1", "c2", "c3", "c4"];

fn number() -> impl Strategy<Value = String> {
    prop::sample::select(&NUMBERS[..]).prop_map(String::from)
}

/// Valid numbers only (an after-hours forward to an invalid one is refused), the dialed one
/// among them.
fn valid_number() -> impl Strategy<Value = String> {
    prop::sample::select(&NUMBERS[..5]).prop_map(String::from)
}

fn zone() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::sample::select(vec!["America/Chicago", "Pacific/Auckland", "Europe/Berlin"])
            .prop_map(String::from),
    )
}

/// Schedules: office hours (in the company's zone or their own), always, never, a DST night.
fn hours() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        Just(office_hours(None)),
        Just(office_hours(Some("Pacific/Auckland"))),
        Just(always(None)),
        Just(schedule(None, &[], &[])),
        Just(schedule(
            Some("America/Chicago"),
            &[("sun", &[("01:00", "03:00")])],
            &[("2026-11-26", &[])],
        )),
    ]
}

fn after_hours() -> impl Strategy<Value = Option<AfterHours>> {
    prop::option::of(prop_oneof![
        Just(AfterHours::default()),
        valid_number().prop_map(|n| AfterHours {
            kind: AfterHoursKind::Forward,
            number: Some(n),
        }),
    ])
}

fn ring_timeout() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(prop::sample::select(vec![5u32, 15, 20, 600]))
}

/// Issue 17's company fields: returning callers off or on, a block list (often empty), what
/// blocked and anonymous callers get, screening, and the final action they play.
#[derive(Debug, Clone)]
struct CallerRules {
    returning_caller_days: u32,
    blocked_callers: Vec<String>,
    blocked_action: Option<BlockedAction>,
    anonymous_callers: Option<AnonymousCallers>,
    screening: Option<Screening>,
    final_action: Option<FinalAction>,
}

fn caller_rules() -> impl Strategy<Value = CallerRules> {
    (
        prop::sample::select(vec![0u32, 0, 1, 7, 30, 90]),
        prop_oneof![
            2 => Just(Vec::new()),
            1 => prop::sample::subsequence(BLOCKED.to_vec(), 1..=3)
                .prop_map(|entries| entries.into_iter().map(String::from).collect()),
        ],
        prop::option::of(prop::sample::select(vec![
            BlockedAction::Reject,
            BlockedAction::Announce,
        ])),
        prop::option::of(prop::sample::select(vec![
            AnonymousCallers::Route,
            AnonymousCallers::Voicemail,
            AnonymousCallers::Reject,
        ])),
        prop::option::of(prop::sample::select(vec![
            Screening::Off,
            Screening::Forwarded,
        ])),
        prop::option::of(prop::sample::select(vec![
            FinalAction {
                kind: FinalActionKind::Voicemail,
                message: "Leave a message.".into(),
            },
            FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message: "Goodbye.".into(),
            },
        ])),
    )
        .prop_map(
            |(days, blocked, blocked_action, anonymous, screening, final_action)| CallerRules {
                returning_caller_days: days,
                blocked_callers: blocked,
                blocked_action,
                anonymous_callers: anonymous,
                screening,
                final_action,
            },
        )
}

/// A ring group of set-up and unknown users, in any order, either mode.
fn ring_group() -> impl Strategy<Value = Option<RingGroup>> {
    prop::option::of(
        (
            prop::sample::subsequence(MEMBERS.to_vec(), 1..=4).prop_shuffle(),
            prop::sample::select(vec![RingMode::Simultaneous, RingMode::Sequential]),
            ring_timeout(),
        )
            .prop_map(|(members, mode, ring_timeout_secs)| RingGroup {
                user_ids: members.into_iter().map(id).collect(),
                mode,
                ring_timeout_secs,
            }),
    )
}

fn company_setting(version: u64) -> impl Strategy<Value = SettingsChange> {
    (
        (
            prop::option::of(number()),
            zone(),
            prop::option::of(hours()),
            after_hours(),
            ring_timeout(),
        ),
        caller_rules(),
    )
        .prop_map(
            move |((phone, time_zone, business_hours, after_hours, ring_timeout_secs), r)| {
                SettingsChange::Company(CompanySettings {
                    tenant_id: tenant(),
                    version,
                    company_phone: phone,
                    default_region: None,
                    final_action: r.final_action,
                    time_zone,
                    business_hours,
                    after_hours,
                    ring_timeout_secs,
                    returning_caller_days: r.returning_caller_days,
                    blocked_callers: r.blocked_callers,
                    blocked_action: r.blocked_action,
                    anonymous_callers: r.anonymous_callers,
                    screening: r.screening,
                })
            },
        )
}

/// The dialed number, released as often as `released` says.
fn number_setting(
    version: u64,
    released: impl Strategy<Value = bool>,
) -> impl Strategy<Value = SettingsChange> {
    (
        prop::option::of(number()),
        released,
        prop::option::of(prop::sample::select(&USERS[..])),
        prop::sample::select(vec![Prefer::ContactOwner, Prefer::NumberOwner]),
        ring_timeout(),
        ring_group(),
    )
        .prop_map(
            move |(fwd, released, owner, prefer, ring_timeout_secs, ring_group)| {
                SettingsChange::Number(NumberSettings {
                    tenant_id: tenant(),
                    version,
                    number: E164::parse_strict(DIALED).unwrap(),
                    forwarding_number: fwd,
                    released,
                    user_id: owner.map(id),
                    prefer,
                    ring_timeout_secs,
                    ring_group,
                })
            },
        )
}

/// One of `users`, with a phone from `phone`.
fn user_setting(
    version: u64,
    users: &'static [&'static str],
    phone: impl Strategy<Value = Option<String>>,
) -> impl Strategy<Value = SettingsChange> {
    (
        prop::sample::select(users),
        phone,
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        prop::option::of(hours()),
        any::<bool>(),
    )
        .prop_map(
            move |(u, phone, active, available, working_hours, ring_only)| {
                SettingsChange::User(UserSettings {
                    tenant_id: tenant(),
                    version,
                    user_id: id(u),
                    phone,
                    active,
                    available,
                    working_hours,
                    ring_only_in_working_hours: ring_only,
                })
            },
        )
}

/// One of `contacts`, with `phones`.
fn contact_setting(
    version: u64,
    contacts: &'static [&'static str],
    phones: impl Strategy<Value = Vec<String>>,
) -> impl Strategy<Value = SettingsChange> {
    (
        prop::sample::select(contacts),
        phones,
        prop::option::of(prop::sample::select(&USERS[..])),
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(c, phones, assigned, deleted)| {
            SettingsChange::Contact(ContactSettings {
                tenant_id: tenant(),
                version,
                contact_id: id(c),
                phones,
                assigned_user_id: assigned.map(id),
                deleted,
            })
        })
}

fn setting(version: u64) -> impl Strategy<Value = SettingsChange> {
    prop_oneof![
        company_setting(version),
        number_setting(version, any::<bool>()),
        user_setting(version, &USERS, prop::option::of(number())),
        contact_setting(version, &CONTACTS, prop::collection::vec(number(), 0..3)),
    ]
}

/// Settings events with distinct versions (a producer's monotonic counter).
fn settings() -> impl Strategy<Value = Vec<SettingsChange>> {
    prop::collection::vec(0u64..1, 0..24).prop_flat_map(|slots| {
        slots
            .iter()
            .enumerate()
            .map(|(i, _)| setting(i as u64 + 1))
            .collect::<Vec<_>>()
    })
}

/// A tenant set up in full (the company, the dialed number mostly live, every user, two
/// leads), then changed by a few more events: most calls get past step 0 and reach the chain,
/// where the rules of issue 17 meet.
fn full_settings() -> impl Strategy<Value = Vec<SettingsChange>> {
    (
        company_setting(1),
        number_setting(2, prop::bool::weighted(0.05)),
        user_setting(3, &USERS[0..1], user_phone()),
        user_setting(4, &USERS[1..2], user_phone()),
        user_setting(5, &USERS[2..3], user_phone()),
        // Lead c1 is mostly the first caller below, lead c2 anyone.
        contact_setting(
            6,
            &CONTACTS[0..1],
            prop::collection::vec(number(), 0..2).prop_map(|mut phones| {
                phones.push("+14158675310".into());
                phones
            }),
        ),
        contact_setting(7, &CONTACTS[1..2], prop::collection::vec(number(), 0..3)),
        0usize..4,
    )
        .prop_flat_map(|(company, dialed, u1, u2, u3, c1, c2, more)| {
            let base = vec![company, dialed, u1, u2, u3, c1, c2];
            // Further changes, the dialed number left as it is.
            let more: Vec<_> = (0..more)
                .map(|i| {
                    let version = 8 + i as u64;
                    prop_oneof![
                        company_setting(version),
                        user_setting(version, &USERS, user_phone()),
                        contact_setting(version, &CONTACTS, prop::collection::vec(number(), 0..3)),
                    ]
                })
                .collect();
            (Just(base), more).prop_map(|(mut base, more)| {
                base.extend(more);
                base
            })
        })
}

/// A user's phone in a full tenant: mostly a number of their own, sometimes one that another
/// user, a caller or the dialed number has too.
fn user_phone() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.9,
        prop_oneof![
            3 => prop::sample::select(vec!["+13125550101", "+13125550102", "+13125550103"])
                .prop_map(String::from),
            1 => number(),
        ],
    )
}

/// Sparse tenants (anything may be missing) and full ones.
fn tenants() -> impl Strategy<Value = Vec<SettingsChange>> {
    prop_oneof![1 => settings(), 2 => full_settings()]
}

/// Any instant of 2026 to the second, or one around a DST change of the zones above.
fn received_at() -> impl Strategy<Value = OffsetDateTime> {
    let start = datetime!(2026-01-01 00:00 UTC).unix_timestamp();
    let edges = [
        datetime!(2026-03-08 08:00 UTC),
        datetime!(2026-11-01 07:00 UTC),
        datetime!(2026-04-04 14:00 UTC),
        datetime!(2026-03-29 01:00 UTC),
    ];
    prop_oneof![
        (0i64..365 * 86_400)
            .prop_map(move |s| { OffsetDateTime::from_unix_timestamp(start + s).unwrap() }),
        (prop::sample::select(edges.to_vec()), -7200i64..7200)
            .prop_map(|(edge, s)| edge + time::Duration::seconds(s)),
    ]
}

fn call() -> impl Strategy<Value = CallInbound> {
    (
        prop::sample::select(vec![
            "+14158675310",
            "+14158675310",
            "+14158675310",
            "(206) 456-1234",
            "(206) 456-1234",
            "+12064561299",
            "+442079460018",
            "",
            "anonymous",
            "x",
        ]),
        prop::option::of(prop::sample::select(&CONTACTS[..])),
        prop::sample::select(vec![
            DIALED,
            DIALED,
            DIALED,
            DIALED,
            "+16502530001",
            "bogus",
        ]),
        received_at(),
    )
        .prop_map(|(from, contact, to, received_at)| CallInbound {
            call_id: "CA1".into(),
            tenant_id: tenant(),
            to: to.into(),
            from: from.into(),
            received_at,
            contact_id: contact.map(id),
        })
}

/// One `call.dial` event of CALLS, placed relative to the call it is folded for.
#[derive(Debug, Clone)]
struct Dial {
    caller: Option<&'static str>,
    user: &'static str,
    kind: DialEventKind,
    /// Answered on a simultaneous group's leg (which member took it is unknown).
    grouped: bool,
    /// Another tenant's event.
    elsewhere: bool,
    /// Seconds before the call (negative: after it, as a redelivered call may see).
    before_secs: i64,
}

/// The CALLS stream's `call.dial` events, mostly answers, spread over the last 100 days.
fn history() -> impl Strategy<Value = Vec<Dial>> {
    let dial = (
        prop::option::weighted(0.9, prop::sample::select(&CALLERS[..])),
        prop::sample::select(&MEMBERS[..]),
        prop_oneof![
            4 => Just(DialEventKind::Answered),
            1 => Just(DialEventKind::StepFailed),
            1 => Just(DialEventKind::StepStarted),
        ],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop_oneof![
            // Mostly recent answers, some past every window.
            2 => -3_600i64..7 * 86_400,
            1 => -3_600i64..100 * 86_400,
            // Around the edge of a 1, 7, 30 or 90-day window.
            1 => (prop::sample::select(vec![1i64, 7, 30, 90]), -2i64..=2)
                .prop_map(|(days, s)| days * 86_400 + s),
        ],
    )
        .prop_map(
            |(caller, user, kind, grouped, elsewhere, before_secs)| Dial {
                caller,
                user,
                kind,
                grouped,
                elsewhere,
                before_secs,
            },
        );
    prop::collection::vec(dial, 0..12)
}

/// The `call.dial` events of `history` for `call`, in CALLS order.
fn dial_events(history: &[Dial], call: &CallInbound) -> Vec<CallDial> {
    history
        .iter()
        .map(|d| {
            let at = call.received_at - time::Duration::seconds(d.before_secs);
            let mut event = answered(d.caller.unwrap_or(CALLERS[0]), d.user, "+13125550100", at);
            event.caller = d.caller.map(|c| E164::parse_strict(c).unwrap());
            event.kind = d.kind;
            if d.elsewhere {
                event.tenant_id = TenantId::new("globex").unwrap();
            }
            if d.grouped
                && let Some(target) = &mut event.target
            {
                target.group = ["+13125550100", "+13125550101"]
                    .iter()
                    .zip(["u1", "u2"])
                    .map(|(n, u)| GroupMember {
                        number: E164::parse_strict(n).unwrap(),
                        user_id: id(u),
                    })
                    .collect();
            }
            event
        })
        .collect()
}

/// The router's fold of `events`, at consecutive CALLS sequences.
fn book_of(events: &[CallDial]) -> AnswerBook {
    let mut book = AnswerBook::new();
    for (i, event) in events.iter().enumerate() {
        book.apply(i as u64 + 1, event);
    }
    book
}

/// The decision for `call` over `events` and the CALLS `history`, as the router makes it.
fn decide_all(events: &[SettingsChange], history: &[Dial], call: &CallInbound) -> Decision {
    let book = book_of(&dial_events(history, call));
    decide_with(call, &state_of(events), book.tenant(&tenant()))
}

/// The company settings in force after `events` (the last: versions rise with the index).
fn company_of(events: &[SettingsChange]) -> Option<&CompanySettings> {
    events.iter().rev().find_map(|e| match e {
        SettingsChange::Company(c) => Some(c),
        _ => None,
    })
}

/// Every leg of the decision, the target first.
fn legs(d: &Decision) -> impl Iterator<Item = &switchboard_contracts::Target> {
    d.target.iter().chain(&d.fallbacks)
}

fn state_of(events: &[SettingsChange]) -> TenantState {
    let mut state = TenantState::new(tenant());
    for e in events {
        // Generated settings are valid ones, as the router's decoder would let through.
        match e {
            SettingsChange::Company(c) => c.validate().unwrap(),
            SettingsChange::Number(n) => n.validate().unwrap(),
            SettingsChange::User(u) => u.validate().unwrap(),
            SettingsChange::Contact(c) => c.validate().unwrap(),
        }
        state.apply(e).unwrap();
    }
    state
}

/// Where a rule sits in the chain: the two user steps swap with `prefer`, the rest is fixed.
fn rank(rule: Rule) -> u8 {
    match rule {
        Rule::AssignedUser | Rule::DirectLine => 0,
        Rule::ReturningCaller => 1,
        Rule::RingGroup => 2,
        Rule::ForwardingNumber => 3,
        Rule::CompanyPhone => 4,
        Rule::AfterHours => 5,
        Rule::Blocked | Rule::Anonymous => 6,
        Rule::NoRoute => 7,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_rings_the_dialed_number(events in tenants(), history in history(), call in call()) {
        let d = decide_all(&events, &history, &call);
        let dialed = E164::parse(&call.to, Region::DEFAULT).ok();
        for t in legs(&d) {
            for number in t.numbers() {
                prop_assert_ne!(Some(number), dialed.as_ref());
            }
        }
    }

    #[test]
    fn always_a_target_or_a_final_action(
        events in tenants(),
        history in history(),
        call in call(),
    ) {
        let d = decide_all(&events, &history, &call);
        match &d.target {
            None => {
                // Nothing rings: no route, a closed company playing its final action, or a
                // caller refused at step 0.
                prop_assert!(
                    matches!(d.rule, Rule::NoRoute | Rule::AfterHours | Rule::Blocked | Rule::Anonymous),
                    "{:?}",
                    d.rule
                );
                prop_assert!(d.fallbacks.is_empty());
            }
            Some(t) => prop_assert_eq!(d.rule, t.rule),
        }
        // A refusal has no message; anything else says something to the caller.
        if d.final_action.kind == FinalActionKind::Reject {
            prop_assert!(matches!(d.rule, Rule::Blocked | Rule::Anonymous), "{:?}", d.rule);
            prop_assert!(d.final_action.message.is_empty());
        } else {
            prop_assert!(!d.final_action.message.is_empty());
        }
        prop_assert!(!d.explanation().is_empty());
        // Distinct targets, in rule order, each with its ring timeout; only a sequential ring
        // group gives one rule several legs.
        let chain: Vec<_> = legs(&d).collect();
        for (i, a) in chain.iter().enumerate() {
            prop_assert!(a.ring_timeout_secs.is_some());
            for b in &chain[i + 1..] {
                prop_assert_ne!(&a.number, &b.number);
                if a.rule == b.rule {
                    prop_assert_eq!(a.rule, Rule::RingGroup);
                    prop_assert!(a.group.is_empty() && b.group.is_empty());
                }
                prop_assert!(rank(a.rule) <= rank(b.rule));
            }
        }
    }

    /// Issue 17: "a blocked caller never rings anyone": a caller whom an entry of the
    /// company's `blocked_callers` starts (read in the tenant's region) gets rule `blocked`,
    /// no target, no fallbacks and the blocked action, whatever else is set up — and only such
    /// a caller does. Likewise a withheld caller under `voicemail`/`reject` gets rule
    /// `anonymous` and nothing rings.
    #[test]
    fn a_blocked_caller_never_rings_anyone(
        events in tenants(),
        history in history(),
        call in call(),
    ) {
        let d = decide_all(&events, &history, &call);
        let live = d.reasons.iter().any(|r| matches!(r, Reason::NumberProvisioned { .. }));
        let company = company_of(&events);
        let caller = E164::parse(&call.from, Region::DEFAULT);
        let blocked = company.is_some_and(|c| {
            caller.as_ref().is_ok_and(|n| {
                c.blocked_callers.iter().any(|e| n.as_str().starts_with(e.as_str()))
            })
        });
        prop_assert_eq!(d.rule == Rule::Blocked, live && blocked, "{:#?}", d.reasons);
        let anonymous = matches!(caller, Err(PhoneError::Withheld))
            && company.is_some_and(|c| {
                c.anonymous_callers.unwrap_or_default() != AnonymousCallers::Route
            });
        prop_assert_eq!(d.rule == Rule::Anonymous, live && anonymous, "{:#?}", d.reasons);
        if matches!(d.rule, Rule::Blocked | Rule::Anonymous) {
            prop_assert_eq!(d.target.as_ref(), None);
            prop_assert!(d.fallbacks.is_empty());
            // Nothing past step 0 was read.
            prop_assert_eq!(d.reasons.len(), 2, "{:#?}", d.reasons);
            let expected = match (d.rule, company) {
                (Rule::Blocked, Some(c)) => match c.blocked_action.unwrap_or_default() {
                    BlockedAction::Reject => FinalActionKind::Reject,
                    BlockedAction::Announce => FinalActionKind::AnnounceHangup,
                },
                (_, Some(c)) => match c.anonymous_callers.unwrap_or_default() {
                    AnonymousCallers::Reject => FinalActionKind::Reject,
                    _ => FinalActionKind::Voicemail,
                },
                (_, None) => unreachable!("a rule of the company's settings without them"),
            };
            prop_assert_eq!(d.final_action.kind, expected);
        }
    }

    /// Issue 17: "a group never rings the dialed number or a user twice": across every leg
    /// and every member of a simultaneous group, no number and no user rings twice, and a
    /// group leg holds two members or more, its `number`/`user_id` the first member's.
    #[test]
    fn never_a_number_or_a_user_twice(
        events in tenants(),
        history in history(),
        call in call(),
    ) {
        let d = decide_all(&events, &history, &call);
        let dialed = E164::parse(&call.to, Region::DEFAULT).ok();
        let mut numbers = HashSet::new();
        let mut users = HashSet::new();
        for t in legs(&d) {
            if t.group.is_empty() {
                if let Some(user) = &t.user_id {
                    prop_assert!(users.insert(user.clone()), "{user} twice: {:#?}", d.reasons);
                }
            } else {
                prop_assert_eq!(t.rule, Rule::RingGroup);
                prop_assert!(t.group.len() >= 2);
                prop_assert_eq!(&t.number, &t.group[0].number);
                prop_assert_eq!(t.user_id.as_ref(), Some(&t.group[0].user_id));
                for member in &t.group {
                    prop_assert!(users.insert(member.user_id.clone()), "{:#?}", d.reasons);
                }
            }
            for number in t.numbers() {
                prop_assert_ne!(Some(number), dialed.as_ref());
                prop_assert!(numbers.insert(number.clone()), "{number} twice: {:#?}", d.reasons);
            }
        }
    }

    /// Issue 17: `screening: "forwarded"` screens every leg but the company phone, and says
    /// so; off, no leg is screened.
    #[test]
    fn screened_iff_screening_is_on(events in tenants(), history in history(), call in call()) {
        let d = decide_all(&events, &history, &call);
        let on = company_of(&events).and_then(|c| c.screening) == Some(Screening::Forwarded);
        for t in legs(&d) {
            prop_assert_eq!(t.screen, on && t.rule != Rule::CompanyPhone, "{:?}", t);
        }
        let said = d.reasons.contains(&Reason::ScreeningOn);
        let past_step_0 = !matches!(d.rule, Rule::Blocked | Rule::Anonymous)
            && d.reasons.iter().any(|r| matches!(r, Reason::NumberProvisioned { .. }));
        prop_assert_eq!(said, on && past_step_0, "{:#?}", d.reasons);
    }

    /// Issue 17: a returning caller rings "when the caller's lead has no eligible owner and
    /// `returning_caller_days` > 0, the user who most recently answered a call from this
    /// caller number within that many days" — never otherwise.
    #[test]
    fn a_returning_caller_leg_is_the_last_answerer_within_the_window(
        events in tenants(),
        history in history(),
        call in call(),
    ) {
        let book = book_of(&dial_events(&history, &call));
        let d = decide_with(&call, &state_of(&events), book.tenant(&tenant()));
        let days = company_of(&events).map_or(0, |c| c.returning_caller_days);
        for t in legs(&d).filter(|t| t.rule == Rule::ReturningCaller) {
            prop_assert!(days > 0);
            prop_assert!(legs(&d).all(|o| o.rule != Rule::AssignedUser));
            let caller = d.caller.as_ref();
            prop_assert!(caller.is_some());
            let last = caller.and_then(|c| book.tenant(&tenant()).last_answer(c));
            prop_assert!(last.is_some());
            if let Some(last) = last {
                prop_assert_eq!(t.user_id.as_ref(), Some(&last.user_id));
                let window = call.received_at.unix_timestamp() - i64::from(days) * 86_400;
                prop_assert!(last.answered_at >= window);
            }
        }
        let consulted = d.reasons.iter().any(|r| {
            matches!(r, Reason::ReturningCaller { .. } | Reason::NotReturningCaller { .. })
        });
        if consulted {
            prop_assert!(days > 0);
        }
    }

    /// Issue 15: "closed → never a user" ("Nothing else rings"): while the company's business
    /// hours are closed at the call's `received_at`, the decision is the after-hours forward
    /// alone, or nothing.
    #[test]
    fn closed_is_never_a_user(events in tenants(), history in history(), call in call()) {
        let state = state_of(&events);
        let company = state.company();
        let closed = company
            .business_hours
            .is_some_and(|h| !h.at(timestamp(call.received_at), company.time_zone).is_open());
        let book = book_of(&dial_events(&history, &call));
        let d = decide_with(&call, &state, book.tenant(&tenant()));
        // Issue 17: blocked and anonymous callers are refused at any hour, before the hours.
        let refused = matches!(d.rule, Rule::Blocked | Rule::Anonymous);
        if refused {
            let hours_read = d.reasons.iter().any(|r| {
                matches!(r, Reason::CompanyClosed { .. } | Reason::CompanyOpen { .. })
            });
            prop_assert!(!hours_read, "{:#?}", d.reasons);
        } else if closed {
            prop_assert!(d.fallbacks.is_empty(), "{:?}", d.explanation());
            for t in d.target.iter() {
                prop_assert_eq!(t.rule, Rule::AfterHours);
                prop_assert_eq!(t.user_id.as_ref(), None);
            }
            // After hours rules, unless the dialed number was not live (step 0 comes first).
            let live = d.reasons.iter().any(|r| matches!(r, Reason::NumberProvisioned { .. }));
            prop_assert_eq!(d.rule == Rule::AfterHours, live, "{:#?}", d.reasons);
        } else {
            prop_assert_ne!(d.rule, Rule::AfterHours);
        }
        // An empty week (and no override that day) is always closed: never a user.
        let never = events.iter().rev().find_map(|e| match e {
            SettingsChange::Company(c) => Some(c.business_hours == Some(schedule(None, &[], &[]))),
            _ => None,
        });
        if never == Some(true) {
            prop_assert!(d.target.iter().all(|t| t.user_id.is_none()));
        }
    }

    /// Issue 15: "a decision is a pure function of (settings, call)", and issue 17: "of
    /// settings, answered-history and call": the same inputs give the same decision, whatever
    /// was decided before or in between (no clock, no hidden state), on a state rebuilt from
    /// the same events and a history rebuilt from the same `call.dial` events alike.
    #[test]
    fn same_inputs_same_decision(
        events in tenants(),
        history in history(),
        call in call(),
        other in call(),
    ) {
        let state = state_of(&events);
        let dials = dial_events(&history, &call);
        let book = book_of(&dials);
        let a = decide_with(&call, &state, book.tenant(&tenant()));
        let _ = decide_with(&other, &state, book.tenant(&tenant()));
        let b = decide_with(&call, &state_of(&events), book_of(&dials).tenant(&tenant()));
        let c = decide_with(&call, &state, book.tenant(&tenant()));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        // Other tenants' answers, and events that teach nothing, change nothing.
        let own: Vec<CallDial> = dials
            .iter()
            .filter(|e| e.tenant_id == tenant() && e.kind == DialEventKind::Answered)
            .cloned()
            .collect();
        let d = decide_with(&call, &state, book_of(&own).tenant(&tenant()));
        prop_assert_eq!(a, d);
    }

    /// Issue 17: "replay rebuilds it as of that position": the full log of answers, read as
    /// of the sequence the router had applied, gives the router's decision — whatever order
    /// the log learned the answers in, and whatever came after that sequence.
    #[test]
    fn replayed_history_decides_as_the_router_did(
        events in tenants(),
        (history, upto, order) in history().prop_flat_map(|h| {
            let n = h.len();
            (Just(h), 0..=n, Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        call in call(),
    ) {
        let dials = dial_events(&history, &call);
        let state = state_of(&events);
        let router = book_of(&dials[..upto]);
        let mut log = AnswerLog::new();
        for i in order {
            log.apply(i as u64 + 1, &dials[i]);
        }
        let live = decide_with(&call, &state, router.tenant(&tenant()));
        let replayed = decide_with(&call, &state, &log.as_of(&tenant(), upto as u64));
        prop_assert_eq!(live, replayed);
    }

    /// Any permutation or duplication of the events converges to the in-order state.
    #[test]
    fn order_and_duplicates_do_not_matter(
        (events, shuffled) in tenants().prop_flat_map(|e| {
            let mut doubled = e.clone();
            doubled.extend(e.iter().cloned());
            (Just(e), Just(doubled).prop_shuffle())
        }),
        history in history(),
        call in call(),
    ) {
        let book = book_of(&dial_events(&history, &call));
        let in_order = decide_with(&call, &state_of(&events), book.tenant(&tenant()));
        let any_order = decide_with(&call, &state_of(&shuffled), book.tenant(&tenant()));
        prop_assert_eq!(in_order, any_order);
    }
}
