//! Issue 17 (routing policy v2, part 2): blocked and anonymous callers, returning callers,
//! ring groups and call screening, and where each sits in the decision order. One table per
//! rule and per precedence, each citing the sentence of the issue it proves.

use crate::fixture::*;
use switchboard_contracts::reasons::{Offer, UserSkipped};
use switchboard_contracts::{
    AfterHours, AfterHoursKind, AnonymousCallers, BlockedAction, CallDial, CompanySettings,
    DEFAULT_RING_TIMEOUT_SECS, E164, FinalAction, FinalActionKind, GroupMember, NumberSettings,
    Prefer, Reason, RingGroup, RingMode, Rule, Screening, Target,
};
use switchboard_routing::{AnswerBook, CallerHistory, Decision, LastAnswer, NoHistory};
use time::OffsetDateTime;
use time::macros::datetime;

const OWNER_PHONE: &str = "+13125550188";
const M3: &str = "+13125550133";
const M4: &str = "+13125550144";
const M5: &str = "+13125550155";
const AFTER_HOURS: &str = "+13125550100";
/// When `call_from` calls arrive (a Sunday).
const NOW: OffsetDateTime = datetime!(2026-11-22 09:00 UTC);
/// Monday 2026-11-23, 18:05 in Chicago: after office hours.
const MON_1805_CHICAGO: OffsetDateTime = datetime!(2026-11-24 00:05 UTC);

fn e164(number: &str) -> E164 {
    E164::parse_strict(number).unwrap()
}

/// The company of these tests: a company phone, then whatever `tweak` sets.
fn company(f: &mut Fixture, tweak: impl FnOnce(&mut CompanySettings)) {
    f.company_with(|c| {
        c.company_phone = Some(COMPANY.into());
        tweak(c);
    });
}

/// The dialed number: a forwarding number, then whatever `tweak` sets.
fn number(f: &mut Fixture, tweak: impl FnOnce(&mut NumberSettings)) {
    f.number_with(|n| {
        n.forwarding_number = Some(FORWARDING.into());
        tweak(n);
    });
}

/// A tenant with a company phone and a forwarding number; users u1 (the lead's owner), u2,
/// u3, u4 and u5 (each with their own phone); lead c1 (the caller) assigned to u1.
fn tenant_v2() -> Fixture {
    let mut f = Fixture::new();
    company(&mut f, |_| {});
    number(&mut f, |_| {});
    f.user("u1", Some(USER_PHONE), true)
        .user("u2", Some(OWNER_PHONE), true)
        .user("u3", Some(M3), true)
        .user("u4", Some(M4), true)
        .user("u5", Some(M5), true)
        .contact("c1", &[CALLER], Some("u1"));
    f
}

fn unavailable(f: &mut Fixture, user_id: &str, phone: &str) {
    f.user_with(user_id, Some(phone), |u| u.available = false);
}

/// The answers as the router folds them from CALLS, one sequence each.
fn book(answers: &[CallDial]) -> AnswerBook {
    let mut book = AnswerBook::new();
    for (i, dial) in answers.iter().enumerate() {
        book.apply(i as u64 + 1, dial);
    }
    book
}

/// The caller was answered by u3 two days before the call.
fn u3_answered_two_days_ago() -> AnswerBook {
    book(&[answered(CALLER, "u3", M3, NOW - time::Duration::days(2))])
}

fn decide_with_book(f: &Fixture, from: &str, book: &AnswerBook) -> Decision {
    f.decide_with(&call_from(from), book.tenant(&tenant()))
}

fn group(user_ids: &[&str], mode: RingMode, ring_timeout_secs: Option<u32>) -> Option<RingGroup> {
    Some(RingGroup {
        user_ids: user_ids.iter().map(|u| id(u)).collect(),
        mode,
        ring_timeout_secs,
    })
}

fn legs(d: &Decision) -> Vec<&Target> {
    d.target.iter().chain(&d.fallbacks).collect()
}

fn has(d: &Decision, reason: &Reason) -> bool {
    d.reasons.contains(reason)
}

fn skipped(rule: Rule, user_id: &str, next: Rule) -> UserSkipped {
    UserSkipped {
        rule,
        user_id: id(user_id),
        contact_id: None,
        next,
        hours: None,
    }
}

fn reject() -> FinalAction {
    FinalAction {
        kind: FinalActionKind::Reject,
        message: Default::default(),
    }
}

fn closed_chicago(c: &mut CompanySettings) {
    c.time_zone = Some("America/Chicago".into());
    c.business_hours = Some(office_hours(None));
    c.after_hours = Some(AfterHours {
        kind: AfterHoursKind::Forward,
        number: Some(AFTER_HOURS.into()),
    });
}

// ---------------------------------------------------------------------------------------------
// 0. Blocked callers: before anything
// ---------------------------------------------------------------------------------------------

/// Issue 17: "After part 1's released/unprovisioned check and before business hours (so at any
/// hour): a blocked caller → `blocked` (reject or announce)"; `blocked_callers` holds "E.164
/// numbers or `+`-prefixes"; `reject` is "the carrier's busy/rejected answer, nothing rings".
#[test]
fn a_blocked_caller_is_rejected_before_anything_else() {
    // (entry, caller as sent, business hours closed at the call)
    let cases = [
        (CALLER, CALLER, false),
        ("+1415", CALLER, false),
        ("+1415867", CALLER, true),
        (CALLER, "(415) 867-5310", true),
        ("+1", "415.867.5310", false),
    ];
    for (entry, from, closed) in cases {
        let mut f = tenant_v2();
        // The lead's owner u1 is eligible, a ring group and returning callers are on.
        number(&mut f, |n| {
            n.user_id = Some(id("u2"));
            n.ring_group = group(&["u3"], RingMode::Simultaneous, None);
        });
        company(&mut f, |c| {
            c.blocked_callers = vec!["+44".into(), entry.into(), "+1900".into()];
            c.returning_caller_days = 30;
            c.anonymous_callers = Some(AnonymousCallers::Voicemail);
            c.screening = Some(Screening::Forwarded);
            if closed {
                closed_chicago(c);
            }
        });
        let at = if closed { MON_1805_CHICAGO } else { NOW };
        let d = f.decide_with(
            &call_at(from, at),
            u3_answered_two_days_ago().tenant(&tenant()),
        );
        let case = format!("entry {entry}, from {from:?}, closed {closed}");
        assert_eq!(d.rule, Rule::Blocked, "{case}");
        assert_eq!(d.target, None, "{case}");
        assert!(d.fallbacks.is_empty(), "{case}");
        assert_eq!(d.final_action, reject(), "{case}");
        assert_eq!(d.caller, Some(e164(CALLER)), "{case}");
        // Nothing after the block is even looked at: no hours, no lead, no screening.
        assert_eq!(
            d.reasons,
            vec![
                Reason::NumberProvisioned {
                    number: e164(DIALED)
                },
                Reason::CallerBlocked {
                    number: e164(CALLER),
                    entry: entry.into(),
                    action: BlockedAction::Reject,
                },
            ],
            "{case}"
        );
        assert!(explains(&d, "is blocked"), "{case}: {:?}", d.explanation());
        assert!(explains(&d, "rejected unanswered"), "{case}");
    }
}

/// Issue 17: "an entry blocks every caller number that starts with it" — and nothing else: a
/// longer entry, or one next to the caller, does not block it.
#[test]
fn an_entry_blocks_only_the_callers_it_starts() {
    for entry in ["+141586753101", "+14158675311", "+1416", "+14158675309"] {
        let mut f = tenant_v2();
        company(&mut f, |c| c.blocked_callers = vec![entry.into()]);
        let d = f.decide(&call_from(CALLER));
        assert_eq!(d.rule, Rule::AssignedUser, "entry {entry}");
        assert!(
            !d.reasons
                .iter()
                .any(|r| matches!(r, Reason::CallerBlocked { .. })),
            "entry {entry}"
        );
    }
}

/// Contract v1: numbers are read "in the tenant region": a caller sent in national format is
/// matched against the block list as the E.164 number it is there.
#[test]
fn a_national_caller_is_matched_in_the_tenants_region() {
    let mut f = tenant_v2();
    company(&mut f, |c| {
        c.default_region = Some("GB".into());
        c.blocked_callers = vec!["+44207946".into()];
    });
    let d = f.decide(&call_from("020 7946 0018"));
    assert_eq!(d.rule, Rule::Blocked, "{:#?}", d.reasons);
    assert_eq!(d.caller, Some(e164("+442079460018")));
    // The same digits read in the US are another number.
    company(&mut f, |c| c.blocked_callers = vec!["+44207946".into()]);
    assert_ne!(f.decide(&call_from("020 7946 0018")).rule, Rule::Blocked);
}

/// Issue 17: part 1's dead-number check comes first: a blocked caller dialing a number that
/// is not the tenant's is `no_route`, not `blocked`.
#[test]
fn a_dead_number_comes_before_the_block() {
    let mut f = tenant_v2();
    company(&mut f, |c| c.blocked_callers = vec![CALLER.into()]);
    let mut call = call_from(CALLER);
    call.to = "+16502530001".into();
    assert_eq!(f.decide(&call).rule, Rule::NoRoute);
    number(&mut f, |n| n.released = true);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::NoRoute);
    assert!(explains(&d, "has been released"));
}

/// Issue 17: `blocked_action` `"announce"` is "the final action's message, then hang up".
#[test]
fn announce_plays_the_final_action_message_then_hangs_up() {
    let voicemail = FinalAction {
        kind: FinalActionKind::Voicemail,
        message: "Leave us a message.".into(),
    };
    for tenant_action in [Some(voicemail), None] {
        let mut f = tenant_v2();
        company(&mut f, |c| {
            c.blocked_callers = vec!["+1415".into()];
            c.blocked_action = Some(BlockedAction::Announce);
            c.final_action = tenant_action.clone();
        });
        let d = f.decide(&call_from(CALLER));
        assert_eq!(d.rule, Rule::Blocked);
        assert_eq!(d.target, None);
        let message = tenant_action.clone().unwrap_or_default().message;
        assert_eq!(
            d.final_action,
            FinalAction {
                kind: FinalActionKind::AnnounceHangup,
                message,
            },
            "{tenant_action:?}"
        );
        assert!(has(
            &d,
            &Reason::CallerBlocked {
                number: e164(CALLER),
                entry: "+1415".into(),
                action: BlockedAction::Announce,
            }
        ));
        assert!(
            explains(&d, "hears the announcement"),
            "{:?}",
            d.explanation()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 0. Anonymous callers
// ---------------------------------------------------------------------------------------------

/// Issue 17: `anonymous_callers` `"route"` (the default) is "routed as an unknown caller".
#[test]
fn a_withheld_caller_is_routed_by_default() {
    for setting in [None, Some(AnonymousCallers::Route)] {
        let mut f = tenant_v2();
        company(&mut f, |c| {
            c.anonymous_callers = setting;
            // A block list never matches a caller who sent no number.
            c.blocked_callers = vec!["+1".into()];
        });
        for from in ["", "anonymous", "Restricted"] {
            let d = f.decide(&call_from(from));
            assert_eq!(d.rule, Rule::ForwardingNumber, "{setting:?} from {from:?}");
            assert_eq!(d.caller, None);
            assert!(has(&d, &Reason::CallerWithheld), "{:#?}", d.reasons);
            assert!(has(
                &d,
                &Reason::NoLead {
                    next: Rule::ForwardingNumber
                }
            ));
        }
    }
}

/// Issue 17: "an anonymous caller under `voicemail`/`reject` → that action (rule
/// `anonymous`)", at any hour; voicemail uses the tenant's voicemail message, or the default
/// greeting when the tenant's final action is an announcement.
#[test]
fn a_withheld_caller_gets_voicemail_or_is_rejected() {
    let voicemail = FinalAction {
        kind: FinalActionKind::Voicemail,
        message: "Leave us a message.".into(),
    };
    let announcement = FinalAction {
        kind: FinalActionKind::AnnounceHangup,
        message: "We do not take calls.".into(),
    };
    let cases = [
        (AnonymousCallers::Voicemail, None, FinalAction::default()),
        (
            AnonymousCallers::Voicemail,
            Some(voicemail.clone()),
            voicemail.clone(),
        ),
        (
            AnonymousCallers::Voicemail,
            Some(announcement.clone()),
            FinalAction::default(),
        ),
        (AnonymousCallers::Reject, Some(voicemail), reject()),
        (AnonymousCallers::Reject, Some(announcement), reject()),
    ];
    for (setting, tenant_action, expected) in cases {
        for closed in [false, true] {
            let mut f = tenant_v2();
            company(&mut f, |c| {
                c.anonymous_callers = Some(setting);
                c.final_action = tenant_action.clone();
                c.returning_caller_days = 30;
                c.screening = Some(Screening::Forwarded);
                if closed {
                    closed_chicago(c);
                }
            });
            let at = if closed { MON_1805_CHICAGO } else { NOW };
            let d = f.decide(&call_at("anonymous", at));
            let case = format!("{setting:?} {tenant_action:?} closed {closed}");
            assert_eq!(d.rule, Rule::Anonymous, "{case}");
            assert_eq!(d.target, None, "{case}");
            assert!(d.fallbacks.is_empty(), "{case}");
            assert_eq!(d.final_action, expected, "{case}");
            assert_eq!(
                d.reasons,
                vec![
                    Reason::NumberProvisioned {
                        number: e164(DIALED)
                    },
                    Reason::AnonymousCaller { action: setting },
                ],
                "{case}"
            );
        }
    }
}

/// Issue 17: only a caller who withholds their number is anonymous: an unusable caller number
/// is routed as an unknown caller, whatever `anonymous_callers` says.
#[test]
fn an_unusable_caller_number_is_not_anonymous() {
    let mut f = tenant_v2();
    company(&mut f, |c| {
        c.anonymous_callers = Some(AnonymousCallers::Reject)
    });
    let d = f.decide(&call_from("12"));
    assert_eq!(d.rule, Rule::ForwardingNumber, "{:#?}", d.reasons);
    assert!(
        d.reasons
            .iter()
            .any(|r| matches!(r, Reason::CallerUnusable { .. }))
    );
    // A known caller is not anonymous either.
    assert_eq!(f.decide(&call_from(CALLER)).rule, Rule::AssignedUser);
}

// ---------------------------------------------------------------------------------------------
// 1. Closed
// ---------------------------------------------------------------------------------------------

/// Issue 17: "1. Closed → after hours, as in part 1" — after the blocked and anonymous
/// checks; a caller who is neither gets the after-hours action, and returning callers and
/// ring groups do not ring after hours.
#[test]
fn closed_comes_after_the_blocked_and_anonymous_checks() {
    let mut f = tenant_v2();
    number(&mut f, |n| {
        n.ring_group = group(&["u3"], RingMode::Sequential, None);
    });
    company(&mut f, |c| {
        closed_chicago(c);
        c.blocked_callers = vec!["+1206".into()];
        c.anonymous_callers = Some(AnonymousCallers::Reject);
        c.returning_caller_days = 30;
    });
    let history = u3_answered_two_days_ago();
    let decide =
        |from: &str| f.decide_with(&call_at(from, MON_1805_CHICAGO), history.tenant(&tenant()));
    assert_eq!(decide("+12065550100").rule, Rule::Blocked);
    assert_eq!(decide("").rule, Rule::Anonymous);
    let d = decide(CALLER);
    assert_eq!(d.rule, Rule::AfterHours);
    assert_eq!(chain(&d), vec![(AFTER_HOURS.into(), "after_hours")]);
    assert!(
        !d.reasons.iter().any(|r| matches!(
            r,
            Reason::ReturningCaller { .. }
                | Reason::NotReturningCaller { .. }
                | Reason::RingGroup { .. }
        )),
        "{:#?}",
        d.reasons
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The chain: owner, direct line, returning caller, group, forwarding, company, final
// ---------------------------------------------------------------------------------------------

/// Issue 17: "The chain: the lead's owner, the direct line (as in part 1), then a returning
/// caller's last answerer … then the ring group …, the forwarding number, the company phone;
/// then the final action" — each rule decides once every rule before it has nothing to ring.
#[test]
fn the_chain_follows_the_rule_order() {
    let mut f = tenant_v2();
    number(&mut f, |n| {
        n.user_id = Some(id("u2"));
        n.ring_group = group(&["u4"], RingMode::Sequential, None);
    });
    company(&mut f, |c| c.returning_caller_days = 30);
    let history = u3_answered_two_days_ago();
    let decide = |f: &Fixture| decide_with_book(f, CALLER, &history);

    // The lead's owner is eligible: no returning caller.
    let d = decide(&f);
    assert_eq!(
        chain(&d),
        vec![
            (USER_PHONE.into(), "assigned_user"),
            (OWNER_PHONE.into(), "direct_line"),
            (M4.into(), "ring_group"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );

    unavailable(&mut f, "u1", USER_PHONE);
    let d = decide(&f);
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (M3.into(), "returning_caller"),
            (M4.into(), "ring_group"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert_eq!(d.rule, Rule::DirectLine);

    number(&mut f, |n| {
        n.ring_group = group(&["u4"], RingMode::Sequential, None);
    });
    let d = decide(&f);
    assert_eq!(d.rule, Rule::ReturningCaller);
    assert_eq!(d.target.as_ref().unwrap().user_id, Some(id("u3")));

    // No history: the ring group.
    let d = decide_with_book(&f, CALLER, &AnswerBook::new());
    assert_eq!(d.rule, Rule::RingGroup);
    assert_eq!(d.target.as_ref().unwrap().user_id, Some(id("u4")));

    unavailable(&mut f, "u4", M4);
    let d = decide_with_book(&f, CALLER, &AnswerBook::new());
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(has(&d, &Reason::RingGroupEmpty));

    number(&mut f, |n| {
        n.forwarding_number = None;
        n.ring_group = group(&["u4"], RingMode::Sequential, None);
    });
    let d = decide_with_book(&f, CALLER, &AnswerBook::new());
    assert_eq!(chain(&d), vec![(COMPANY.into(), "company_phone")]);

    f.company_with(|c| c.returning_caller_days = 30);
    let d = decide_with_book(&f, CALLER, &AnswerBook::new());
    assert_eq!(d.rule, Rule::NoRoute);
    assert_eq!(d.target, None);
    assert_eq!(d.final_action, FinalAction::default());
    assert!(has(&d, &Reason::NoTargetLeft));
}

// ---------------------------------------------------------------------------------------------
// 2. Returning callers
// ---------------------------------------------------------------------------------------------

/// Issue 17: "when the caller's lead has no eligible owner and `returning_caller_days` > 0,
/// the user who most recently answered a call from this caller number within that many days,
/// if eligible (rule `returning_caller`)" — for an unknown caller, an unassigned lead and an
/// unavailable owner alike; the skip reason names the returning caller as what comes next.
#[test]
fn a_returning_caller_rings_who_answered_them_last() {
    type Setup = fn(&mut Fixture);
    let cases: [(&str, Setup, Reason); 3] = [
        (
            "unknown caller",
            |f| {
                f.contact("c1", &["+14158675399"], Some("u1"));
            },
            Reason::NoLead {
                next: Rule::ReturningCaller,
            },
        ),
        (
            "unassigned lead",
            |f| {
                f.contact("c1", &[CALLER], None);
            },
            Reason::LeadUnassigned {
                contact_id: id("c1"),
                next: Rule::ReturningCaller,
            },
        ),
        (
            "owner unavailable",
            |f| unavailable(f, "u1", USER_PHONE),
            Reason::UserUnavailable(UserSkipped {
                contact_id: Some(id("c1")),
                ..skipped(Rule::AssignedUser, "u1", Rule::ReturningCaller)
            }),
        ),
    ];
    for (case, setup, skip) in cases {
        let mut f = tenant_v2();
        company(&mut f, |c| c.returning_caller_days = 30);
        setup(&mut f);
        let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
        assert_eq!(d.rule, Rule::ReturningCaller, "{case}: {:#?}", d.reasons);
        let target = d.target.as_ref().unwrap();
        assert_eq!(target.user_id, Some(id("u3")), "{case}");
        assert_eq!(target.ring_timeout_secs, Some(DEFAULT_RING_TIMEOUT_SECS));
        assert_eq!(
            chain(&d),
            vec![
                (M3.into(), "returning_caller"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ],
            "{case}"
        );
        assert!(has(&d, &skip), "{case}: {:#?}", d.reasons);
        let returning = Reason::ReturningCaller {
            number: e164(CALLER),
            user_id: id("u3"),
            answered_at: "2026-11-20T09:00:00Z".into(),
            days: 30,
        };
        let at = d.reasons.iter().position(|r| r == &returning);
        assert!(at.is_some(), "{case}: {:#?}", d.reasons);
        let at = at.unwrap_or_default();
        assert_eq!(
            d.reasons[at + 1],
            Reason::UserEligible {
                rule: Rule::ReturningCaller,
                user_id: id("u3"),
                contact_id: None,
                hours: None,
            },
            "{case}"
        );
        assert!(
            explains(
                &d,
                "last spoke with user u3 (answered 2026-11-20T09:00:00Z, within 30 days)"
            ),
            "{case}: {:?}",
            d.explanation()
        );
        assert!(explains(
            &d,
            "the user who last answered this caller comes next"
        ));
    }
}

/// Issue 17: "when the caller's lead has no eligible owner": an owner who is active and
/// available but cannot be rung — a phone that is not a usable number, or the dialed number
/// itself — is no owner the call reaches, so the returning caller's last answerer is tried
/// (as part 1's lead choice already counts only owners "with a phone" that is valid).
#[test]
fn an_owner_whose_phone_cannot_ring_does_not_stop_the_returning_caller() {
    for phone in ["12", DIALED] {
        let mut f = tenant_v2();
        company(&mut f, |c| c.returning_caller_days = 30);
        f.user("u1", Some(phone), true);
        let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
        assert_eq!(
            chain(&d),
            vec![
                (M3.into(), "returning_caller"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ],
            "owner phone {phone}: {:#?}",
            d.reasons
        );
    }
    // An owner whose phone already rings (the number's owner shares it) is reached: no
    // returning caller.
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 30);
    number(&mut f, |n| {
        n.user_id = Some(id("u2"));
        n.prefer = Prefer::NumberOwner;
    });
    f.user("u1", Some(OWNER_PHONE), true);
    let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
}

/// Issue 17: the history is whatever `CallerHistory` answers (the router's `AnswerBook`, or
/// any other fold of CALLS): the decision reads only `last_answer`.
#[test]
fn any_caller_history_is_read_the_same() {
    struct One(E164, LastAnswer);
    impl CallerHistory for One {
        fn last_answer(&self, caller: &E164) -> Option<&LastAnswer> {
            (caller == &self.0).then_some(&self.1)
        }
    }
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 7);
    f.contact("c1", &[CALLER], None);
    let one = One(
        e164(CALLER),
        LastAnswer {
            user_id: id("u3"),
            answered_at: (NOW - time::Duration::days(2)).unix_timestamp(),
            seq: 9,
        },
    );
    let from_trait = f.decide_with(&call_from(CALLER), &one);
    let from_book = decide_with_book(
        &f,
        CALLER,
        &book(&[answered(CALLER, "u3", M3, NOW - time::Duration::days(2))]),
    );
    assert_eq!(from_trait.rule, Rule::ReturningCaller);
    assert_eq!(from_trait, from_book);
    // Another caller's history is not this caller's.
    let d = f.decide_with(&call_from("+14158675399"), &one);
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(has(
        &d,
        &Reason::NotReturningCaller {
            days: 7,
            next: Rule::ForwardingNumber
        }
    ));
    // `decide` is `decide_with` no history.
    assert_eq!(
        f.decide(&call_from(CALLER)),
        f.decide_with(&call_from(CALLER), &NoHistory)
    );
}

/// Issue 17: returning callers only "when the caller's lead has no eligible owner": with the
/// owner eligible the history is not read; with `returning_caller_days` 0 it is off.
#[test]
fn the_history_is_not_read_when_the_owner_is_eligible_or_the_setting_is_off() {
    let history = u3_answered_two_days_ago();
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 30);
    let d = decide_with_book(&f, CALLER, &history);
    assert_eq!(
        chain(&d),
        vec![
            (USER_PHONE.into(), "assigned_user"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    let returning = |d: &Decision| {
        d.reasons.iter().any(|r| {
            matches!(
                r,
                Reason::ReturningCaller { .. } | Reason::NotReturningCaller { .. }
            )
        })
    };
    assert!(!returning(&d), "{:#?}", d.reasons);

    // Off: an unassigned lead goes on to the forwarding number, and says so.
    company(&mut f, |c| c.returning_caller_days = 0);
    f.contact("c1", &[CALLER], None);
    let d = decide_with_book(&f, CALLER, &history);
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(!returning(&d), "{:#?}", d.reasons);
    assert!(has(
        &d,
        &Reason::LeadUnassigned {
            contact_id: id("c1"),
            next: Rule::ForwardingNumber
        }
    ));
}

/// Issue 17: "within that many days": an answer exactly `returning_caller_days` before the
/// call counts, one a second older is ignored (`not_returning_caller`, naming the step that
/// comes next: the ring group when there is one, else the forwarding number).
#[test]
fn an_answer_older_than_the_window_is_ignored() {
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 30);
    f.contact("c1", &[CALLER], None);
    let edge = NOW - time::Duration::days(30);
    let d = decide_with_book(&f, CALLER, &book(&[answered(CALLER, "u3", M3, edge)]));
    assert_eq!(d.rule, Rule::ReturningCaller, "{:#?}", d.reasons);

    let stale = book(&[answered(
        CALLER,
        "u3",
        M3,
        edge - time::Duration::seconds(1),
    )]);
    let d = decide_with_book(&f, CALLER, &stale);
    assert_eq!(d.rule, Rule::ForwardingNumber);
    assert!(has(
        &d,
        &Reason::NotReturningCaller {
            days: 30,
            next: Rule::ForwardingNumber
        }
    ));
    assert!(
        explains(
            &d,
            "Nobody answered this caller in the last 30 days; the forwarding number comes next."
        ),
        "{:?}",
        d.explanation()
    );

    number(&mut f, |n| {
        n.ring_group = group(&["u4"], RingMode::Sequential, None)
    });
    let d = decide_with_book(&f, CALLER, &stale);
    assert_eq!(d.rule, Rule::RingGroup);
    assert!(has(
        &d,
        &Reason::NotReturningCaller {
            days: 30,
            next: Rule::RingGroup
        }
    ));
    assert!(has(
        &d,
        &Reason::LeadUnassigned {
            contact_id: id("c1"),
            next: Rule::ReturningCaller
        }
    ));

    // A withheld caller has no history at all.
    let d = decide_with_book(&f, "", &stale);
    assert!(has(
        &d,
        &Reason::NotReturningCaller {
            days: 30,
            next: Rule::RingGroup
        }
    ));
}

/// Issue 17: the last answerer rings "if eligible": an ineligible one is skipped with the
/// reason (rule `returning_caller`) and the chain goes on.
#[test]
fn an_ineligible_returning_user_is_skipped() {
    type Setup = fn(&mut Fixture);
    type Skip = fn(UserSkipped) -> Reason;
    let cases: [(Setup, Skip); 4] = [
        (|f| unavailable(f, "u3", M3), Reason::UserUnavailable),
        (
            |f| {
                f.user("u3", Some(M3), false);
            },
            Reason::UserDeactivated,
        ),
        (
            |f| {
                f.user("u3", None, true);
            },
            Reason::UserHasNoPhone,
        ),
        (|_| {}, Reason::UserUnknown),
    ];
    for (i, (setup, reason)) in cases.into_iter().enumerate() {
        let mut f = tenant_v2();
        company(&mut f, |c| c.returning_caller_days = 30);
        number(&mut f, |n| {
            n.ring_group = group(&["u4"], RingMode::Sequential, None)
        });
        f.contact("c1", &[CALLER], None);
        setup(&mut f);
        let user = if i == 3 { "u9" } else { "u3" };
        let history = book(&[answered(CALLER, user, M3, NOW - time::Duration::days(1))]);
        let d = decide_with_book(&f, CALLER, &history);
        assert_eq!(
            chain(&d),
            vec![
                (M4.into(), "ring_group"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ],
            "case {i}"
        );
        assert!(
            has(
                &d,
                &reason(skipped(Rule::ReturningCaller, user, Rule::RingGroup))
            ),
            "case {i}: {:#?}",
            d.reasons
        );
        assert!(
            explains(&d, &format!("User {user} answered this caller last, who")),
            "case {i}: {:?}",
            d.explanation()
        );
    }
}

/// Contract v1's "`fallbacks` lists the remaining distinct targets": a returning caller's last
/// answerer who already rings (the number's owner) is not repeated.
#[test]
fn a_returning_user_already_in_the_chain_is_not_repeated() {
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 30);
    number(&mut f, |n| n.user_id = Some(id("u2")));
    f.contact("c1", &[CALLER], None);
    let history = book(&[answered(
        CALLER,
        "u2",
        OWNER_PHONE,
        NOW - time::Duration::hours(3),
    )]);
    let d = decide_with_book(&f, CALLER, &history);
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(has(
        &d,
        &Reason::AlreadyInChain {
            rule: Rule::ReturningCaller,
            user_id: Some(id("u2")),
            number: e164(OWNER_PHONE),
            earlier_rule: Rule::DirectLine,
        }
    ));
}

/// Issue 17: with `prefer: number_owner` the direct line comes first, and the lead's owner's
/// skip names the returning caller as next.
#[test]
fn a_number_that_prefers_its_owner_still_reaches_the_returning_caller() {
    let mut f = tenant_v2();
    company(&mut f, |c| c.returning_caller_days = 30);
    number(&mut f, |n| {
        n.user_id = Some(id("u2"));
        n.prefer = Prefer::NumberOwner;
    });
    unavailable(&mut f, "u1", USER_PHONE);
    let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
    assert_eq!(
        chain(&d),
        vec![
            (OWNER_PHONE.into(), "direct_line"),
            (M3.into(), "returning_caller"),
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    assert!(has(
        &d,
        &Reason::UserUnavailable(UserSkipped {
            contact_id: Some(id("c1")),
            ..skipped(Rule::AssignedUser, "u1", Rule::ReturningCaller)
        })
    ));
    // The direct line's own skip names the lead's user as next.
    unavailable(&mut f, "u2", OWNER_PHONE);
    let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
    assert!(has(
        &d,
        &Reason::UserUnavailable(skipped(Rule::DirectLine, "u2", Rule::AssignedUser))
    ));
    assert_eq!(d.rule, Rule::ReturningCaller);
}

/// Issue 15's skip reasons say what comes next; with issue 17 that is the returning caller
/// (only while the lead has no eligible owner), else the ring group, else the forwarding
/// number.
#[test]
fn skip_reasons_name_the_real_next_step() {
    // (lead's owner eligible, returning callers on, ring group) → after the direct line
    let cases = [
        (false, true, true, Rule::ReturningCaller),
        (false, true, false, Rule::ReturningCaller),
        (true, true, true, Rule::RingGroup),
        (true, true, false, Rule::ForwardingNumber),
        (false, false, true, Rule::RingGroup),
        (false, false, false, Rule::ForwardingNumber),
    ];
    for (owner, returning, with_group, next) in cases {
        let mut f = tenant_v2();
        company(&mut f, |c| {
            c.returning_caller_days = if returning { 30 } else { 0 }
        });
        number(&mut f, |n| {
            n.user_id = Some(id("u2"));
            if with_group {
                n.ring_group = group(&["u4"], RingMode::Sequential, None);
            }
        });
        unavailable(&mut f, "u2", OWNER_PHONE);
        if !owner {
            unavailable(&mut f, "u1", USER_PHONE);
        }
        let d = decide_with_book(&f, CALLER, &AnswerBook::new());
        let case = format!("owner {owner}, returning {returning}, group {with_group}");
        assert!(
            has(
                &d,
                &Reason::UserUnavailable(skipped(Rule::DirectLine, "u2", next))
            ),
            "{case}: {:#?}",
            d.reasons
        );
        if !owner {
            // The lead's owner comes first, the direct line next.
            assert!(has(
                &d,
                &Reason::UserUnavailable(UserSkipped {
                    contact_id: Some(id("c1")),
                    ..skipped(Rule::AssignedUser, "u1", Rule::DirectLine)
                })
            ));
        }
        if returning && !owner {
            let after = if with_group {
                Rule::RingGroup
            } else {
                Rule::ForwardingNumber
            };
            assert!(
                has(
                    &d,
                    &Reason::NotReturningCaller {
                        days: 30,
                        next: after
                    }
                ),
                "{case}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Ring groups
// ---------------------------------------------------------------------------------------------

/// Issue 17: "one after another": each eligible member is a leg of its own, ringing for the
/// group's `ring_timeout_secs`, else the number's, else the company's.
#[test]
fn a_sequential_group_rings_each_member_with_the_groups_timeout() {
    // (group timeout, number timeout, company timeout, expected)
    let cases = [
        (Some(25), Some(30), Some(18), 25),
        (None, Some(30), Some(18), 30),
        (None, None, Some(18), 18),
        (None, None, None, DEFAULT_RING_TIMEOUT_SECS),
    ];
    for (group_secs, number_secs, company_secs, expected) in cases {
        let mut f = tenant_v2();
        company(&mut f, |c| c.ring_timeout_secs = company_secs);
        number(&mut f, |n| {
            n.ring_group = group(&["u3", "u4", "u5"], RingMode::Sequential, group_secs);
            n.ring_timeout_secs = number_secs;
        });
        f.contact("c1", &[CALLER], None);
        let d = f.decide(&call_from(CALLER));
        assert_eq!(d.rule, Rule::RingGroup);
        assert_eq!(
            chain(&d),
            vec![
                (M3.into(), "ring_group"),
                (M4.into(), "ring_group"),
                (M5.into(), "ring_group"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ]
        );
        let legs = legs(&d);
        for (leg, user) in legs[..3].iter().zip(["u3", "u4", "u5"]) {
            assert_eq!(leg.user_id, Some(id(user)));
            assert_eq!(leg.ring_timeout_secs, Some(expected), "{group_secs:?}");
            assert!(leg.group.is_empty());
        }
        // The other legs keep the number's (else the company's) timeout.
        let others = number_secs
            .or(company_secs)
            .unwrap_or(DEFAULT_RING_TIMEOUT_SECS);
        assert_eq!(legs[3].ring_timeout_secs, Some(others));
        assert!(has(
            &d,
            &Reason::RingGroup {
                mode: RingMode::Sequential,
                user_ids: vec![id("u3"), id("u4"), id("u5")],
            }
        ));
        assert!(
            explains(
                &d,
                "ring group rings 3 users one after another: u3, u4, u5."
            ),
            "{:?}",
            d.explanation()
        );
    }
}

/// Issue 17: ineligible members are skipped with their reasons; the skip names the next
/// member (`ring_group`) or, for the last, the forwarding number.
#[test]
fn ineligible_members_are_skipped_with_their_reasons() {
    for mode in [RingMode::Sequential, RingMode::Simultaneous] {
        let mut f = tenant_v2();
        number(&mut f, |n| {
            n.ring_group = group(&["u3", "u4", "u9", "u5"], mode, None);
        });
        unavailable(&mut f, "u3", M3);
        f.user("u5", Some(M5), false);
        f.contact("c1", &[CALLER], None);
        let d = f.decide(&call_from(CALLER));
        assert_eq!(
            chain(&d),
            vec![
                (M4.into(), "ring_group"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ],
            "{mode:?}"
        );
        // A single eligible member rings as a plain leg.
        assert!(d.target.as_ref().unwrap().group.is_empty());
        for reason in [
            Reason::UserUnavailable(skipped(Rule::RingGroup, "u3", Rule::RingGroup)),
            Reason::UserUnknown(skipped(Rule::RingGroup, "u9", Rule::RingGroup)),
            Reason::UserDeactivated(skipped(Rule::RingGroup, "u5", Rule::ForwardingNumber)),
        ] {
            assert!(has(&d, &reason), "{mode:?} {reason:?}: {:#?}", d.reasons);
        }
        assert!(!has(&d, &Reason::RingGroupEmpty));
        assert!(
            explains(
                &d,
                "Ring group member user u3, who is unavailable (do not disturb); the ring group comes next."
            ),
            "{:?}",
            d.explanation()
        );
    }
}

/// Issue 17: "all eligible members at once": one leg whose `group` holds every member, its
/// `number`/`user_id` the first member's.
#[test]
fn a_simultaneous_group_is_one_leg_holding_every_member() {
    let mut f = tenant_v2();
    number(&mut f, |n| {
        n.ring_group = group(&["u3", "u4", "u5"], RingMode::Simultaneous, Some(30));
    });
    f.contact("c1", &[CALLER], None);
    let d = f.decide(&call_from(CALLER));
    assert_eq!(d.rule, Rule::RingGroup);
    let leg = d.target.as_ref().unwrap();
    assert_eq!(leg.number, e164(M3));
    assert_eq!(leg.user_id, Some(id("u3")));
    assert_eq!(leg.ring_timeout_secs, Some(30));
    assert_eq!(
        leg.group,
        vec![
            GroupMember {
                number: e164(M3),
                user_id: id("u3")
            },
            GroupMember {
                number: e164(M4),
                user_id: id("u4")
            },
            GroupMember {
                number: e164(M5),
                user_id: id("u5")
            },
        ]
    );
    assert_eq!(
        leg.numbers().map(E164::as_str).collect::<Vec<_>>(),
        vec![M3, M4, M5]
    );
    assert_eq!(
        chain(&d)[1..],
        [
            (FORWARDING.into(), "forwarding_number"),
            (COMPANY.into(), "company_phone"),
        ]
    );
    // Each member is announced, then the one leg.
    let members: Vec<_> = d
        .reasons
        .iter()
        .filter_map(|r| match r {
            Reason::GroupMember(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        members,
        ["u3", "u4", "u5"]
            .iter()
            .zip([M3, M4, M5])
            .map(|(u, n)| Offer {
                rule: Rule::RingGroup,
                user_id: Some(id(u)),
                number: e164(n),
            })
            .collect::<Vec<_>>()
    );
    let targets = d.reasons.iter().filter(|r| **r == Reason::Target).count();
    assert_eq!(targets, 3, "one target reason per leg");
    assert!(
        explains(
            &d,
            "The phone of user u4 +13*******44 rings with the rest of the group."
        ),
        "{:?}",
        d.explanation()
    );
}

/// Contract v1: never the dialed number, never a number twice — also inside a group: a member
/// whose phone is the dialed number, or already in the chain (an earlier rule or an earlier
/// member), is left out with the reason.
#[test]
fn a_member_on_the_dialed_number_or_already_in_the_chain_is_left_out() {
    for mode in [RingMode::Simultaneous, RingMode::Sequential] {
        let mut f = tenant_v2();
        number(&mut f, |n| {
            n.ring_group = group(&["u1", "u5", "u3", "u6", "u4"], mode, None);
        });
        f.user("u5", Some(DIALED), true).user("u6", Some(M3), true);
        let d = f.decide(&call_from(CALLER));
        let numbers: Vec<_> = legs(&d)
            .iter()
            .flat_map(|t| t.numbers().map(E164::as_str).collect::<Vec<_>>())
            .collect();
        assert_eq!(
            numbers,
            vec![USER_PHONE, M3, M4, FORWARDING, COMPANY],
            "{mode:?}"
        );
        for reason in [
            Reason::AlreadyInChain {
                rule: Rule::RingGroup,
                user_id: Some(id("u1")),
                number: e164(USER_PHONE),
                earlier_rule: Rule::AssignedUser,
            },
            Reason::DialedNumberSkipped(Offer {
                rule: Rule::RingGroup,
                user_id: Some(id("u5")),
                number: e164(DIALED),
            }),
            Reason::AlreadyInChain {
                rule: Rule::RingGroup,
                user_id: Some(id("u6")),
                number: e164(M3),
                earlier_rule: Rule::RingGroup,
            },
        ] {
            assert!(has(&d, &reason), "{mode:?} {reason:?}: {:#?}", d.reasons);
        }
        match mode {
            RingMode::Simultaneous => {
                assert_eq!(legs(&d)[1].group.len(), 2);
                assert_eq!(
                    legs(&d)[1].group[1],
                    GroupMember {
                        number: e164(M4),
                        user_id: id("u4")
                    }
                );
            }
            RingMode::Sequential => assert_eq!(legs(&d).len(), 5),
        }
    }
}

/// Issue 17: a group with no eligible member rings nobody (`ring_group_empty`) and the chain
/// goes on to the forwarding number.
#[test]
fn a_group_with_no_eligible_member_is_empty_and_the_chain_goes_on() {
    for mode in [RingMode::Simultaneous, RingMode::Sequential] {
        let mut f = tenant_v2();
        number(&mut f, |n| n.ring_group = group(&["u3", "u1"], mode, None));
        unavailable(&mut f, "u3", M3);
        // u1 is eligible but rings already as the lead's owner.
        let d = f.decide(&call_from(CALLER));
        assert_eq!(
            chain(&d),
            vec![
                (USER_PHONE.into(), "assigned_user"),
                (FORWARDING.into(), "forwarding_number"),
                (COMPANY.into(), "company_phone"),
            ],
            "{mode:?}"
        );
        assert!(has(&d, &Reason::RingGroupEmpty), "{mode:?}");
        assert!(explains(
            &d,
            "No member of the ring group can take the call; the forwarding number comes next."
        ));
        // Nobody at all: the final action.
        number(&mut f, |n| {
            n.forwarding_number = None;
            n.ring_group = group(&["u3"], mode, None);
        });
        company(&mut f, |c| c.company_phone = None);
        f.contact("c1", &[CALLER], None);
        let d = f.decide(&call_from(CALLER));
        assert_eq!(d.rule, Rule::NoRoute, "{mode:?}");
        assert!(has(&d, &Reason::RingGroupEmpty));
        assert_eq!(d.final_action, FinalAction::default());
    }
}

// ---------------------------------------------------------------------------------------------
// Screening
// ---------------------------------------------------------------------------------------------

/// Issue 17: `screening` `"forwarded"`: "legs to numbers outside the company — forwarding
/// numbers, users' mobile phones — hear a whisper and must press 1": every leg but the company
/// phone is screened (and the decision says so once); `"off"` (the default) screens none.
#[test]
fn screening_marks_every_leg_but_the_company_phone() {
    for setting in [None, Some(Screening::Off), Some(Screening::Forwarded)] {
        let on = setting == Some(Screening::Forwarded);
        let mut f = tenant_v2();
        company(&mut f, |c| {
            c.screening = setting;
            c.returning_caller_days = 30;
        });
        number(&mut f, |n| {
            n.user_id = Some(id("u2"));
            n.ring_group = group(&["u4", "u5"], RingMode::Simultaneous, None);
        });
        f.contact("c1", &[CALLER], None);
        let d = decide_with_book(&f, CALLER, &u3_answered_two_days_ago());
        let rules: Vec<_> = legs(&d).iter().map(|t| (t.rule, t.screen)).collect();
        assert_eq!(
            rules,
            vec![
                (Rule::DirectLine, on),
                (Rule::ReturningCaller, on),
                (Rule::RingGroup, on),
                (Rule::ForwardingNumber, on),
                (Rule::CompanyPhone, false),
            ],
            "{setting:?}"
        );
        assert_eq!(
            d.reasons
                .iter()
                .filter(|r| **r == Reason::ScreeningOn)
                .count(),
            usize::from(on),
            "{setting:?}"
        );
        assert_eq!(explains(&d, "Call screening is on"), on);

        // After hours, the forward is screened too.
        company(&mut f, |c| {
            c.screening = setting;
            closed_chicago(c);
        });
        let d = f.decide(&call_at(CALLER, MON_1805_CHICAGO));
        assert_eq!(d.rule, Rule::AfterHours);
        assert_eq!(d.target.as_ref().unwrap().screen, on, "{setting:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Explanations
// ---------------------------------------------------------------------------------------------

/// Issue 17: the explanation is structured reasons rendered in English; every new reason has
/// its own sentence, and no sentence spells out a phone number or a block-list entry.
#[test]
fn every_new_reason_renders_masked() {
    let mut decisions = Vec::new();
    let mut f = tenant_v2();
    company(&mut f, |c| {
        c.blocked_callers = vec!["+1206555".into(), "+14085550123".into()];
        c.anonymous_callers = Some(AnonymousCallers::Voicemail);
        c.returning_caller_days = 30;
        c.screening = Some(Screening::Forwarded);
    });
    number(&mut f, |n| {
        n.user_id = Some(id("u2"));
        n.ring_group = group(&["u4", "u5", "u3"], RingMode::Simultaneous, None);
    });
    unavailable(&mut f, "u1", USER_PHONE);
    unavailable(&mut f, "u3", M3);
    let history = u3_answered_two_days_ago();
    for from in [CALLER, "+12065550199", "+14085550123", "", "+14158675399"] {
        decisions.push(decide_with_book(&f, from, &history));
    }
    number(&mut f, |n| {
        n.ring_group = group(&["u3"], RingMode::Sequential, None);
    });
    decisions.push(decide_with_book(&f, CALLER, &history));

    let mut seen = std::collections::BTreeSet::new();
    for d in &decisions {
        let lines = d.explanation();
        for reason in &d.reasons {
            let code = serde_json::to_value(reason).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned();
            seen.insert(code);
        }
        for line in &lines {
            assert!(!line.contains("does not know"), "{line}");
            for number in [
                DIALED,
                CALLER,
                USER_PHONE,
                OWNER_PHONE,
                M3,
                M4,
                M5,
                FORWARDING,
                COMPANY,
                "+12065550199",
                "+14085550123",
                "+14158675399",
                "+1206555",
            ] {
                assert!(!line.contains(number), "{number} in {line:?}");
            }
        }
    }
    for code in [
        "caller_blocked",
        "anonymous_caller",
        "returning_caller",
        "not_returning_caller",
        "ring_group",
        "group_member",
        "ring_group_empty",
        "screening_on",
        "user_unavailable",
    ] {
        assert!(seen.contains(code), "{code} not exercised: {seen:?}");
    }
    let all: Vec<String> = decisions.iter().flat_map(Decision::explanation).collect();
    for needle in [
        "The caller +12*******99 is blocked (blocked_callers entry +12***55):",
        "The caller +14*******23 is blocked (blocked_callers entry +14*******23):",
        "anonymous callers are sent to voicemail; nothing rings.",
        "The caller +14*******10 last spoke with user u3",
        "User u3 answered this caller last, who is unavailable (do not disturb); the ring group comes next.",
        "Ring group member user u3, who is unavailable (do not disturb); the forwarding number comes next.",
        "The dialed number's ring group rings 3 users at once: u4, u5, u3.",
        "Nobody answered this caller in the last 30 days; the ring group comes next.",
    ] {
        assert!(
            all.iter().any(|l| l.contains(needle)),
            "{needle:?} not in {all:#?}"
        );
    }
}
