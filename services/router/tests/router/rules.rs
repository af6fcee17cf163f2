//! Every rule and edge case of the routing core, end to end: settings and calls published on
//! NATS, decisions read back from the CALLS stream. The same scenario runs on SQLite and on
//! PostgreSQL.

use crate::support::*;
use switchboard_contracts::{FinalAction, FinalActionKind, Rule, Target};

const ACME: &str = "acme";
/// Tenants whose settings hold nothing to ring / a final action of their own / nothing at all.
const BARE: &str = "bare";
const CLOSING: &str = "closing";
const UNKNOWN_TENANT: &str = "nobody-home";

const DIALED: &str = "+16502530000";
const DIALED_NO_FORWARDING: &str = "+16502530001";
const DIALED_RELEASED: &str = "+16502530002";
const DIALED_LOOP: &str = "+16502530003";
const NOT_PROVISIONED: &str = "+16502539999";

const FORWARDING: &str = "+13127654321";
const COMPANY: &str = "+16172531234";
const ALICE_PHONE: &str = "+12064561234";
const CAROL_PHONE: &str = "+12064561235";

const ALICE_CALLER: &str = "+14158675310";
const BOB_CALLER: &str = "+14158675311";
const CAROL_CALLER: &str = "+14158675312";
const GHOST_CALLER: &str = "+14158675313";
const NOBODY_CALLER: &str = "+14158675314";
const STRANGER: &str = "+14158675319";

/// Every full number of the scenario: none may appear in an explanation (they are masked).
const NUMBERS: [&str; 16] = [
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
    };
    vec![
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
        nats.call(inbound).await;
    }
    for (i, case) in cases.iter().enumerate() {
        let route = nats.route(case.tenant, &format!("rule-{i}")).await;
        let why = case.why;
        let mut chain = route.target.iter().chain(&route.fallbacks).cloned();
        assert_eq!(route.rule, case.rule, "{why}\n{:#?}", route.explanation);
        assert_eq!(route.target.as_ref(), case.chain.first(), "{why}");
        assert_eq!(chain.by_ref().collect::<Vec<_>>(), case.chain, "{why}");
        assert_eq!(route.final_action, case.final_action, "{why}");
        assert_eq!(route.tenant_id, tenant(case.tenant), "{why}");
        assert!(
            route
                .explanation
                .iter()
                .any(|line| line.contains(case.explains)),
            "{why}: no {:?} in {:#?}",
            case.explains,
            route.explanation
        );
        let explanation = route.explanation.join("\n");
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
