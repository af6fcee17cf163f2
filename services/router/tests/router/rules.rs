//! Every rule and edge case of the routing core, end to end: settings and calls published on
//! NATS, decisions read back from the CALLS stream. The same scenario runs on SQLite and on
//! PostgreSQL.

use crate::support::*;
use switchboard_contracts::schedule::Schedule;
use switchboard_contracts::{
    AfterHours, AfterHoursKind, AnonymousCallers, BlockedAction, FinalAction, FinalActionKind,
    GroupMember, NumberSettings, Prefer, RingGroup, RingMode, Rule, Screening, Target,
    UserSettings,
};
use time::OffsetDateTime;
use time::macros::datetime;

const ACME: &str = "acme";
/// Tenants whose settings hold nothing to ring / a final action of their own / nothing at all.
const BARE: &str = "bare";
const CLOSING: &str = "closing";
const UNKNOWN_TENANT: &str = "nobody-home";
/// Routing policy v2 (issue 15): business hours in America/Chicago with an after-hours forward,
/// a direct line with each `prefer`, an unavailable user, a user ringing only in working hours,
/// ring timeouts from the number and from the company.
const OFFICE: &str = "office";
/// Business hours whose after-hours action is the final action.
const OFFICE_CLOSED: &str = "office-closed";
/// Routing policy v2, part 2 (issue 17): a block list (an exact number and a prefix),
/// anonymous callers to voicemail, screening, and ring groups of both modes.
const POLICY: &str = "policy";
const POLICY_GROUP: &str = "+16502532000";
const POLICY_SEQUENCE: &str = "+16502532001";
const GINA_PHONE: &str = "+12064563001";
const HAL_PHONE: &str = "+12064563002";
const BLOCKED_CALLER: &str = "+14158679999";
const PREMIUM_CALLER: &str = "+19005550123";

const DIALED: &str = "+16502530000";
const DIALED_NO_FORWARDING: &str = "+16502530001";
const DIALED_RELEASED: &str = "+16502530002";
const DIALED_LOOP: &str = "+16502530003";
const NOT_PROVISIONED: &str = "+16502539999";

const FORWARDING: &str = "+13127654321";
const COMPANY: &str = "+16172531234";
const ALICE_PHONE: &str = "+12064561234";
const CAROL_PHONE: &str = "+12064561235";

const OFFICE_MAIN: &str = "+16502531000";
const OFFICE_DANA: &str = "+16502531001";
const OFFICE_DANA_OWNER_FIRST: &str = "+16502531002";
const AFTER_HOURS_DESK: &str = "+13127650000";
const DANA_PHONE: &str = "+12064562001";
const ERIN_PHONE: &str = "+12064562002";
const FAY_PHONE: &str = "+12064562003";
const ERIN_CALLER: &str = "+14158676002";
const FAY_CALLER: &str = "+14158676003";

/// Monday 2026-12-07 10:05 in Chicago (CST, UTC−6): open, Dana inside her hours.
const MON_1005: OffsetDateTime = datetime!(2026-12-07 16:05 UTC);
/// Monday 13:05 in Chicago: open, Dana (09:00–12:00) outside hers.
const MON_1305: OffsetDateTime = datetime!(2026-12-07 19:05 UTC);
/// Monday 18:05 in Chicago: closed.
const MON_1805: OffsetDateTime = datetime!(2026-12-08 00:05 UTC);
/// Thursday 2026-12-24 13:00 in Chicago: a weekday, but the override closes at 12:00.
const XMAS_EVE_1300: OffsetDateTime = datetime!(2026-12-24 19:00 UTC);

const ALICE_CALLER: &str = "+14158675310";
const BOB_CALLER: &str = "+14158675311";
const CAROL_CALLER: &str = "+14158675312";
const GHOST_CALLER: &str = "+14158675313";
const NOBODY_CALLER: &str = "+14158675314";
const STRANGER: &str = "+14158675319";

/// Every full number of the scenario: none may appear in an explanation (they are masked).
const NUMBERS: [&str; 31] = [
    POLICY_GROUP,
    POLICY_SEQUENCE,
    GINA_PHONE,
    HAL_PHONE,
    BLOCKED_CALLER,
    PREMIUM_CALLER,
    OFFICE_MAIN,
    OFFICE_DANA,
    OFFICE_DANA_OWNER_FIRST,
    AFTER_HOURS_DESK,
    DANA_PHONE,
    ERIN_PHONE,
    FAY_PHONE,
    ERIN_CALLER,
    FAY_CALLER,
    DIALED,
    DIALED_NO_FORWARDING,
    DIALED_RELEASED,
    DIALED_LOOP,
    NOT_PROVISIONED,
    FORWARDING,
    COMPANY,
    ALICE_PHONE,
    CAROL_PHONE,
    ALICE_CALLER,
    BOB_CALLER,
    CAROL_CALLER,
    GHOST_CALLER,
    NOBODY_CALLER,
    STRANGER,
    "6502530000",
];

fn closed() -> FinalAction {
    FinalAction {
        kind: FinalActionKind::AnnounceHangup,
        message: "We are closed. Please call again tomorrow.".into(),
    }
}

/// Publishes the settings of every tenant of the scenario; the last SETTINGS sequence.
async fn provision(nats: &Nats) -> u64 {
    nats.settings(company(ACME, Some(COMPANY), None)).await;
    nats.settings(number(ACME, DIALED, Some(FORWARDING))).await;
    nats.settings(number(ACME, DIALED_NO_FORWARDING, None))
        .await;
    nats.settings(released(ACME, DIALED_RELEASED, Some(FORWARDING)))
        .await;
    // Written the way people enter it: still the dialed number itself.
    nats.settings(number(ACME, DIALED_LOOP, Some("(650) 253-0003")))
        .await;
    nats.settings(user(ACME, "u-alice", Some(ALICE_PHONE), true))
        .await;
    nats.settings(user(ACME, "u-bob", None, true)).await;
    nats.settings(user(ACME, "u-carol", Some(CAROL_PHONE), false))
        .await;
    // A national-format phone still identifies the lead.
    nats.settings(contact(
        ACME,
        "c-alice",
        &["(415) 867-5310"],
        Some("u-alice"),
    ))
    .await;
    nats.settings(contact(ACME, "c-bob", &[BOB_CALLER], Some("u-bob")))
        .await;
    nats.settings(contact(ACME, "c-carol", &[CAROL_CALLER], Some("u-carol")))
        .await;
    nats.settings(contact(ACME, "c-ghost", &[GHOST_CALLER], Some("u-ghost")))
        .await;
    nats.settings(contact(ACME, "c-nobody", &[NOBODY_CALLER], None))
        .await;

    nats.settings(number(BARE, DIALED, None)).await;

    nats.settings(company(CLOSING, None, Some(closed()))).await;
    nats.settings(number(CLOSING, DIALED, None)).await;
    nats.settings(number(CLOSING, DIALED_NO_FORWARDING, Some(FORWARDING)))
        .await;

    provision_office(nats).await;
    provision_policy(nats).await
}

/// The issue-17 tenant; the last SETTINGS sequence.
async fn provision_policy(nats: &Nats) -> u64 {
    let mut company = company(POLICY, Some(COMPANY), None);
    company.blocked_callers = vec![BLOCKED_CALLER.into(), "+1900".into()];
    company.blocked_action = Some(BlockedAction::Reject);
    company.anonymous_callers = Some(AnonymousCallers::Voicemail);
    company.screening = Some(Screening::Forwarded);
    nats.settings(company).await;
    nats.settings(user(POLICY, "u-gina", Some(GINA_PHONE), true))
        .await;
    nats.settings(user(POLICY, "u-hal", Some(HAL_PHONE), true))
        .await;
    nats.settings(user(POLICY, "u-ivy", Some(ALICE_PHONE), false))
        .await;
    let group = |mode, ring_timeout_secs| RingGroup {
        user_ids: vec![id("u-gina"), id("u-ivy"), id("u-hal")],
        mode,
        ring_timeout_secs,
    };
    let mut together = number(POLICY, POLICY_GROUP, Some(FORWARDING));
    together.ring_group = Some(group(RingMode::Simultaneous, None));
    nats.settings(together).await;
    let mut in_turn = number(POLICY, POLICY_SEQUENCE, None);
    in_turn.ring_group = Some(group(RingMode::Sequential, Some(25)));
    nats.settings(in_turn).await
}

fn schedule(json: serde_json::Value) -> Option<Schedule> {
    Some(serde_json::from_value(json).unwrap())
}

/// The two policy-v2 tenants; the last SETTINGS sequence.
async fn provision_office(nats: &Nats) -> u64 {
    let weekdays = |hours: serde_json::Value| {
        serde_json::json!({
            "mon": hours, "tue": hours, "wed": hours, "thu": hours, "fri": hours
        })
    };
    let business_hours = schedule(serde_json::json!({
        "weekly": weekdays(serde_json::json!([["09:00", "17:00"]])),
        "overrides": [{"date": "2026-12-24", "hours": [["09:00", "12:00"]]}]
    }));
    for (t, after_hours) in [
        (
            OFFICE,
            Some(AfterHours {
                kind: AfterHoursKind::Forward,
                number: Some(AFTER_HOURS_DESK.into()),
            }),
        ),
        (OFFICE_CLOSED, None),
    ] {
        let mut c = company(t, Some(COMPANY), Some(closed()));
        c.time_zone = Some("America/Chicago".into());
        c.business_hours = business_hours.clone();
        c.after_hours = after_hours;
        c.ring_timeout_secs = Some(18);
        nats.settings(c).await;
    }
    nats.settings(number(OFFICE_CLOSED, OFFICE_MAIN, Some(FORWARDING)))
        .await;
    nats.settings(NumberSettings {
        ring_timeout_secs: Some(15),
        ..number(OFFICE, OFFICE_MAIN, Some(FORWARDING))
    })
    .await;
    nats.settings(NumberSettings {
        user_id: Some(id("u-dana")),
        ..number(OFFICE, OFFICE_DANA, None)
    })
    .await;
    nats.settings(NumberSettings {
        user_id: Some(id("u-dana")),
        prefer: Prefer::NumberOwner,
        ..number(OFFICE, OFFICE_DANA_OWNER_FIRST, None)
    })
    .await;
    nats.settings(UserSettings {
        working_hours: schedule(serde_json::json!({
            "weekly": weekdays(serde_json::json!([["09:00", "12:00"]]))
        })),
        ring_only_in_working_hours: true,
        ..user(OFFICE, "u-dana", Some(DANA_PHONE), true)
    })
    .await;
    nats.settings(UserSettings {
        available: false,
        ..user(OFFICE, "u-erin", Some(ERIN_PHONE), true)
    })
    .await;
    nats.settings(user(OFFICE, "u-fay", Some(FAY_PHONE), true))
        .await;
    nats.settings(contact(OFFICE, "c-erin", &[ERIN_CALLER], Some("u-erin")))
        .await;
    nats.settings(contact(OFFICE, "c-fay", &[FAY_CALLER], Some("u-fay")))
        .await
}

/// One call and the decision it must get.
struct Case {
    /// What the case proves (the spec line, or the edge case).
    why: &'static str,
    tenant: &'static str,
    to: &'static str,
    from: &'static str,
    contact_id: Option<&'static str>,
    rule: Rule,
    chain: Vec<Target>,
    final_action: FinalAction,
    /// A phrase the explanation must contain.
    explains: &'static str,
    /// When the call came (`received_at`); now if `None`.
    at: Option<OffsetDateTime>,
    /// A reason code the decision must carry.
    code: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let fwd = || target(FORWARDING, Rule::ForwardingNumber, None);
    let company_ = || target(COMPANY, Rule::CompanyPhone, None);
    let alice = || target(ALICE_PHONE, Rule::AssignedUser, Some("u-alice"));
    let default = FinalAction::default;
    let case = |why, tenant, to, from, rule, chain, explains| Case {
        why,
        tenant,
        to,
        from,
        contact_id: None,
        rule,
        chain,
        final_action: default(),
        explains,
        at: None,
        code: None,
    };
    // Policy v2: `at` and the reason code that proves the case; legs ring for the number's
    // `ring_timeout_secs` (15 on OFFICE_MAIN), else the company's (18).
    let leg = |number, rule, user, secs| Target {
        ring_timeout_secs: Some(secs),
        ..target(number, rule, user)
    };
    let dana = |secs| leg(DANA_PHONE, Rule::DirectLine, Some("u-dana"), secs);
    let fay = |secs| leg(FAY_PHONE, Rule::AssignedUser, Some("u-fay"), secs);
    let office_company = |secs| leg(COMPANY, Rule::CompanyPhone, None, secs);
    let office_fwd = |secs| leg(FORWARDING, Rule::ForwardingNumber, None, secs);
    // Issue 17: every leg but the company phone is screened in the POLICY tenant.
    let screened = |t: Target| Target { screen: true, ..t };
    let gina = |secs| screened(leg(GINA_PHONE, Rule::RingGroup, Some("u-gina"), secs));
    let hal = |secs| screened(leg(HAL_PHONE, Rule::RingGroup, Some("u-hal"), secs));
    let together = Target {
        group: vec![
            GroupMember {
                number: e164(GINA_PHONE),
                user_id: id("u-gina"),
            },
            GroupMember {
                number: e164(HAL_PHONE),
                user_id: id("u-hal"),
            },
        ],
        ..gina(20)
    };
    let reject = FinalAction {
        kind: FinalActionKind::Reject,
        message: Default::default(),
    };
    let v2 = |why, to, from, rule, chain, code, explains| Case {
        code: Some(code),
        ..case(why, POLICY, to, from, rule, chain, explains)
    };
    let issue_17 = vec![
        Case {
            final_action: reject.clone(),
            ..v2(
                "Issue 17: \"a blocked caller → `blocked` (reject …)\": nothing rings.",
                POLICY_GROUP,
                BLOCKED_CALLER,
                Rule::Blocked,
                vec![],
                "caller_blocked",
                "is blocked (blocked_callers entry",
            )
        },
        Case {
            final_action: reject,
            ..v2(
                "Issue 17: a `+`-prefix entry blocks every number under it.",
                POLICY_SEQUENCE,
                PREMIUM_CALLER,
                Rule::Blocked,
                vec![],
                "caller_blocked",
                "the call is rejected unanswered",
            )
        },
        v2(
            "Issue 17: \"an anonymous caller under `voicemail` → that action (rule `anonymous`)\".",
            POLICY_GROUP,
            "anonymous",
            Rule::Anonymous,
            vec![],
            "anonymous_caller",
            "anonymous callers are sent to voicemail",
        ),
        v2(
            "Issue 17: a simultaneous ring group is one leg ringing every eligible member (the \
             deactivated one left out), before the forwarding number; every leg but the company \
             phone is screened.",
            POLICY_GROUP,
            STRANGER,
            Rule::RingGroup,
            vec![
                together,
                screened(target(FORWARDING, Rule::ForwardingNumber, None)),
                target(COMPANY, Rule::CompanyPhone, None),
            ],
            "group_member",
            "rings with the rest of the group",
        ),
        v2(
            "Issue 17: a sequential ring group rings its eligible members one after another, \
             each for the group's ring timeout.",
            POLICY_SEQUENCE,
            STRANGER,
            Rule::RingGroup,
            vec![gina(25), hal(25), target(COMPANY, Rule::CompanyPhone, None)],
            "ring_group",
            "one after another",
        ),
    ];
    let policy = |why, tenant, to, from, at, rule, chain, code, explains| Case {
        at: Some(at),
        code: Some(code),
        final_action: closed(),
        ..case(why, tenant, to, from, rule, chain, explains)
    };
    vec![
        policy(
            "Issue 15: \"the dialed number is an eligible user's direct line → that user's \
             phone (rule `direct_line`)\"; legs ring for the company's `ring_timeout_secs`.",
            OFFICE,
            OFFICE_DANA,
            STRANGER,
            MON_1005,
            Rule::DirectLine,
            vec![dana(18), office_company(18)],
            "target",
            "The dialed number is the direct line of user u-dana, who is active, inside working \
             hours: Mon 09:00–12:00 America/Chicago, the call came at 10:05 local.",
        ),
        policy(
            "Issue 15: `prefer` defaults to \"contact_owner\": the lead's owner comes before \
             the number's owner.",
            OFFICE,
            OFFICE_DANA,
            FAY_CALLER,
            MON_1005,
            Rule::AssignedUser,
            vec![fay(18), dana(18), office_company(18)],
            "user_eligible",
            "Lead c-fay is assigned to user u-fay, who is active.",
        ),
        policy(
            "Issue 15: \"With `prefer: \"number_owner\"` the first two swap places.\"",
            OFFICE,
            OFFICE_DANA_OWNER_FIRST,
            FAY_CALLER,
            MON_1005,
            Rule::DirectLine,
            vec![dana(18), fay(18), office_company(18)],
            "number_prefers_owner",
            "This number prefers its owner",
        ),
        policy(
            "Issue 15: \"`available` … false is do-not-disturb: skip this user\"; the \
             number's `ring_timeout_secs` sets every leg.",
            OFFICE,
            OFFICE_MAIN,
            ERIN_CALLER,
            MON_1005,
            Rule::ForwardingNumber,
            vec![office_fwd(15), office_company(15)],
            "user_unavailable",
            "who is unavailable (do not disturb)",
        ),
        policy(
            "Issue 15: \"if `ring_only_in_working_hours` — the call falls inside their working \
             hours\": outside them the direct line is skipped.",
            OFFICE,
            OFFICE_DANA,
            STRANGER,
            MON_1305,
            Rule::CompanyPhone,
            vec![office_company(18)],
            "user_outside_working_hours",
            "who is outside working hours: Mon 09:00–12:00 America/Chicago, the call came at \
             13:05 local",
        ),
        policy(
            "Issue 15: \"The company is closed (business hours) → the after-hours action … with \
             `forward`, that number is the target and has no fallbacks\".",
            OFFICE,
            OFFICE_MAIN,
            FAY_CALLER,
            MON_1805,
            Rule::AfterHours,
            vec![leg(AFTER_HOURS_DESK, Rule::AfterHours, None, 15)],
            "company_closed",
            "The company is closed: Mon 09:00–17:00 America/Chicago, the call came at 18:05 \
             local.",
        ),
        policy(
            "Issue 15: \"an override replaces that date's weekly hours\": closed at 13:00 on \
             a weekday whose override ends at 12:00.",
            OFFICE,
            OFFICE_MAIN,
            FAY_CALLER,
            XMAS_EVE_1300,
            Rule::AfterHours,
            vec![leg(AFTER_HOURS_DESK, Rule::AfterHours, None, 15)],
            "after_hours_forward_only",
            "2026-12-24 (override) 09:00–12:00 America/Chicago",
        ),
        policy(
            "Issue 15: \"with `final_action`, there is no target. Nothing else rings.\"",
            OFFICE_CLOSED,
            OFFICE_MAIN,
            FAY_CALLER,
            MON_1805,
            Rule::AfterHours,
            vec![],
            "after_hours_final_action",
            "After hours nothing rings",
        ),
        case(
            "Spec: \"If a phone number is assigned to a user, the inbound call will route to \
             that user if the lead is assigned to a user.\" Fallbacks follow in rule order.",
            ACME,
            DIALED,
            ALICE_CALLER,
            Rule::AssignedUser,
            vec![alice(), fwd(), company_()],
            "Lead c-alice is assigned to user u-alice, who is active.",
        ),
        case(
            "Spec: \"If no phone number is assigned to the user, even if the lead is assigned to \
             the user, it will forward to the forwarding number.\"",
            ACME,
            DIALED,
            BOB_CALLER,
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "who has no phone number",
        ),
        case(
            "A deactivated user is never rung: forwarding number.",
            ACME,
            DIALED,
            CAROL_CALLER,
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "who is deactivated",
        ),
        case(
            "A lead assigned to a user the router never heard of: forwarding number.",
            ACME,
            DIALED,
            GHOST_CALLER,
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "who is unknown",
        ),
        case(
            "Spec: \"If the lead is not assigned to a user, it will go to the forwarding number.\"",
            ACME,
            DIALED,
            NOBODY_CALLER,
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "is not assigned to a user",
        ),
        case(
            "A caller who is no lead: forwarding number.",
            ACME,
            DIALED,
            STRANGER,
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "is not a known lead",
        ),
        case(
            "A withheld caller (`anonymous`) matches no lead: forwarding number.",
            ACME,
            DIALED,
            "anonymous",
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "withheld",
        ),
        case(
            "A withheld caller (empty `from`) matches no lead: forwarding number.",
            ACME,
            DIALED,
            "",
            Rule::ForwardingNumber,
            vec![fwd(), company_()],
            "withheld",
        ),
        case(
            "Spec: \"If no forwarding number is set up, the call will route to the company \
             number.\"",
            ACME,
            DIALED_NO_FORWARDING,
            NOBODY_CALLER,
            Rule::CompanyPhone,
            vec![company_()],
            "has no forwarding number",
        ),
        case(
            "The assigned user still comes first on a number without forwarding.",
            ACME,
            DIALED_NO_FORWARDING,
            ALICE_CALLER,
            Rule::AssignedUser,
            vec![alice(), company_()],
            "Lead c-alice is assigned to user u-alice",
        ),
        case(
            "A released number routes nowhere, whoever calls.",
            ACME,
            DIALED_RELEASED,
            ALICE_CALLER,
            Rule::NoRoute,
            vec![],
            "has been released",
        ),
        case(
            "A number the tenant never provisioned routes nowhere.",
            ACME,
            NOT_PROVISIONED,
            ALICE_CALLER,
            Rule::NoRoute,
            vec![],
            "is not provisioned for this tenant",
        ),
        case(
            "A forwarding number equal to the dialed number is skipped as a loop.",
            ACME,
            DIALED_LOOP,
            NOBODY_CALLER,
            Rule::CompanyPhone,
            vec![company_()],
            "skipped to avoid a forwarding loop",
        ),
        case(
            "Nothing to ring (no forwarding, no company phone): no route, default voicemail.",
            BARE,
            DIALED,
            ALICE_CALLER,
            Rule::NoRoute,
            vec![],
            "No number is left to ring.",
        ),
        case(
            "A tenant with no settings at all: no route, default voicemail.",
            UNKNOWN_TENANT,
            DIALED,
            ALICE_CALLER,
            Rule::NoRoute,
            vec![],
            "is not provisioned for this tenant",
        ),
        Case {
            final_action: closed(),
            ..case(
                "The tenant's final action replaces the default when nothing rings.",
                CLOSING,
                DIALED,
                ALICE_CALLER,
                Rule::NoRoute,
                vec![],
                "then the call ends",
            )
        },
        Case {
            final_action: closed(),
            ..case(
                "The tenant's final action also ends a routed call.",
                CLOSING,
                DIALED_NO_FORWARDING,
                ALICE_CALLER,
                Rule::ForwardingNumber,
                vec![fwd()],
                "then the call ends",
            )
        },
        Case {
            contact_id: Some("c-alice"),
            ..case(
                "The lead named by the producer wins over the caller lookup.",
                ACME,
                DIALED,
                STRANGER,
                Rule::AssignedUser,
                vec![alice(), fwd(), company_()],
                "Lead c-alice was named by the producer.",
            )
        },
    ]
    .into_iter()
    .chain(issue_17)
    .collect()
}

/// Given the settings of four tenants, when one call per case is published, then each gets
/// exactly the decision the rules give, made at settings at least as new as what was published.
async fn every_rule_end_to_end(db: Db) {
    let nats = Nats::start().await;
    let settings_seq = provision(&nats).await;
    let router = Router::start(&nats.url(), db.url()).await;

    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        let mut inbound = call(case.tenant, &format!("rule-{i}"), case.to, case.from);
        inbound.contact_id = case.contact_id.map(id);
        if let Some(at) = case.at {
            inbound.received_at = at;
        }
        nats.call(inbound).await;
    }
    for (i, case) in cases.iter().enumerate() {
        let route = nats.route(case.tenant, &format!("rule-{i}")).await;
        let why = case.why;
        let mut chain = route.target.iter().chain(&route.fallbacks).cloned();
        assert_eq!(
            route.rule,
            case.rule,
            "{why}\n{:#?}",
            route.explanation_lines()
        );
        assert_eq!(route.target.as_ref(), case.chain.first(), "{why}");
        assert_eq!(chain.by_ref().collect::<Vec<_>>(), case.chain, "{why}");
        assert_eq!(route.final_action, case.final_action, "{why}");
        assert_eq!(route.tenant_id, tenant(case.tenant), "{why}");
        assert!(
            route
                .explanation_lines()
                .iter()
                .any(|line| line.contains(case.explains)),
            "{why}: no {:?} in {:#?}",
            case.explains,
            route.explanation_lines()
        );
        if let Some(code) = case.code {
            let codes: Vec<String> = route
                .reasons
                .iter()
                .map(|r| serde_json::to_value(r).unwrap()["code"].to_string())
                .collect();
            assert!(
                codes.contains(&format!("{code:?}")),
                "{why}: no reason {code} in {codes:?}"
            );
        }
        let explanation = route.explanation_lines().join("\n");
        for number in NUMBERS {
            let digits = number.trim_start_matches('+');
            assert!(
                !explanation.contains(digits),
                "{why}: the explanation shows {number} unmasked: {explanation}"
            );
        }
        assert!(
            route.settings_seq >= settings_seq,
            "{why}: decided at SETTINGS {} before the settings published at {settings_seq}",
            route.settings_seq
        );
    }
    assert_eq!(nats.count("call.route.>").await, cases.len());
    router.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_end_to_end_on_sqlite() {
    every_rule_end_to_end(Db::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_end_to_end_on_postgres() {
    every_rule_end_to_end(Db::postgres()).await;
}
