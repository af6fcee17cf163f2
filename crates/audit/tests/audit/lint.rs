use crate::support::*;
use switchboard_audit::read::NoProgress;
use switchboard_audit::{Selection, lint};

#[tokio::test]
async fn lint_finds_each_way_a_call_can_end_badly_and_says_how_to_fix_it() {
    // Given tenant "acme" with: no company phone; N1 without a forwarding number (and so no
    // target); N2 forwarding to N1 (a loop, though it rings); N3 released, then called; bob without a phone owning two
    // leads; carol deactivated owning one; a lead of an unknown user
    let mut rec = Recorder::start().await;
    rec.settings(vec![
        company("acme", 1, None),
        num("acme", 1, N1, None, false),
        num("acme", 1, N2, Some(N1), false),
        num("acme", 1, N3, Some(FORWARD), false),
        user("acme", 1, "u-alice", Some(ALICE), true),
        user("acme", 1, "u-bob", None, true),
        user("acme", 1, "u-carol", Some(BOB), false),
        contact("acme", 1, "c-1", CALLERS[0], Some("u-alice")),
        contact("acme", 1, "c-2", CALLERS[1], Some("u-bob")),
        contact("acme", 1, "c-4", "+14152000004", Some("u-bob")),
        contact("acme", 1, "c-5", "+14152000005", Some("u-carol")),
        contact("acme", 1, "c-6", "+14152000006", Some("u-ghost")),
    ])
    .await;
    // (a call to N3 before its release is fine; two after it are not)
    rec.call(inbound("acme", "CA-before", N3, CALLERS[3])).await;
    rec.settings(vec![num("acme", 2, N3, Some(FORWARD), true)])
        .await;
    rec.call(inbound("acme", "CA-after-1", N3, CALLERS[3]))
        .await;
    rec.call(inbound("acme", "CA-after-2", N3, CALLERS[0]))
        .await;
    // and a tenant whose settings are sound
    rec.settings(day_start("globex")).await;
    rec.settings(vec![user("globex", 2, "u-bob", Some(BOB), true)])
        .await;

    // When linted
    let report = lint(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then exactly these, sorted, each with a fix
    let found: Vec<(&str, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.tenant_id.as_str(), f.code.as_str(), f.entity.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("acme", "forwarding_loop", "number/+16*******01"),
            ("acme", "lead_user_deactivated", "user/u-carol"),
            ("acme", "lead_user_unknown", "user/u-ghost"),
            ("acme", "lead_user_without_phone", "user/u-bob"),
            ("acme", "no_target", "number/+16*******00"),
            (
                "acme",
                "released_number_receiving_calls",
                "number/+16*******02"
            ),
        ],
        "{}",
        report.to_text()
    );
    assert_eq!(report.tenants, 2);
    let bob = &report.findings[3];
    assert!(
        bob.problem.contains("2 leads (c-2, c-4)"),
        "{}",
        bob.problem
    );
    assert!(
        bob.fix.contains("`phone`") && bob.fix.contains("settings/user/"),
        "{}",
        bob.fix
    );
    let released = &report.findings[5];
    assert!(
        released.problem.contains("2 call(s)"),
        "{}",
        released.problem
    );
    assert!(report.findings.iter().all(|f| !f.fix.is_empty()));
    let text = report.to_text();
    assert!(text.contains("6 problem(s)"), "{text}");
    assert!(!text.contains(N1) && !text.contains(&N1[1..]), "{text}");

    // And one tenant alone can be linted: the sound one has nothing
    let globex = Selection {
        tenant: Some(tenant("globex")),
        ..Selection::default()
    };
    let report = lint(&rec.streams.js, &globex, &NoProgress).await.unwrap();
    assert_eq!(report.tenants, 1);
    assert!(report.findings.is_empty(), "{}", report.to_text());
    assert!(report.to_text().contains("no problems found"));
}

/// Issue 16: "numbers the metadata calls invalid are reported by `lint`, not refused at the
/// door". Numbers of possible length in ranges the phone-number metadata does not know (area
/// codes 555, 200 and 411 in the NANP) are accepted in every settings field and routed to,
/// and lint warns about each, with a fix that names the field and how to publish it.
#[tokio::test]
async fn numbers_unknown_to_the_metadata_are_routed_and_only_warned_about() {
    use switchboard_contracts::{AfterHours, AfterHoursKind, CompanySettings, SettingsChange};
    // Given every settings field holding such a number (all accepted by the contract)
    let unknown_own = "+15550100123";
    let mut rec = Recorder::start().await;
    let SettingsChange::Company(company) = company("acme", 1, Some("+1 555 010 0199")) else {
        unreachable!()
    };
    rec.settings(vec![
        SettingsChange::Company(CompanySettings {
            after_hours: Some(AfterHours {
                kind: AfterHoursKind::Forward,
                number: Some("(555) 010-0198".into()),
            }),
            ..company
        }),
        num("acme", 1, N1, Some("+1 200 555 0100"), false),
        num("acme", 1, unknown_own, Some(FORWARD), false),
        user("acme", 1, "u-alice", Some("(411) 555-0100"), true),
        // (a deactivated user's phone and a deleted contact's are not worth a warning)
        user("acme", 1, "u-old", Some("+1 555 010 0197"), false),
        contact("acme", 1, "c-1", "+1 555 010 0101", Some("u-alice")),
        contact("acme", 1, "c-2", CALLERS[1], None),
        contact("acme", 1, "c-3", "+1 555 010 0103", None),
        SettingsChange::Contact(switchboard_contracts::ContactSettings {
            deleted: true,
            ..match contact("acme", 1, "c-4", "+1 555 010 0104", None) {
                SettingsChange::Contact(c) => c,
                _ => unreachable!(),
            }
        }),
    ])
    .await;
    // and the router's decision for a call to N1 from c-1: alice's phone, then the forwarding
    // number, then the company phone, all of them unknown to the metadata and dialed
    let (_, route) = rec
        .call(inbound("acme", "CA-unknown", N1, "+1 555 010 0101"))
        .await;
    let legs: Vec<&str> = route
        .target
        .iter()
        .chain(&route.fallbacks)
        .map(|t| t.number.as_str())
        .collect();
    assert_eq!(legs, vec!["+14115550100", "+12005550100", "+15550100199"]);
    // and one to the unknown own number rings its forwarding number
    let (_, route) = rec
        .call(inbound("acme", "CA-own", unknown_own, CALLERS[3]))
        .await;
    assert_eq!(
        route.target.map(|t| t.number.as_str().to_string()),
        Some(FORWARD.into())
    );

    // When linted
    let report = lint(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();

    // Then no problem (each number is usable), and a warning per field holding one
    assert!(report.findings.is_empty(), "{}", report.to_text());
    let warned: Vec<(&str, &str)> = report
        .warnings
        .iter()
        .map(|f| (f.code.as_str(), f.entity.as_str()))
        .collect();
    let code = "number_unknown_to_metadata";
    assert_eq!(
        warned,
        vec![
            (code, "company/main"),
            (code, "company/main"),
            (code, "contacts"),
            (code, "number/+15*******23"),
            (code, "number/+16*******00"),
            (code, "user/u-alice"),
        ],
        "{}",
        report.to_text()
    );
    let by_problem = |needle: &str| {
        report
            .warnings
            .iter()
            .find(|f| f.problem.contains(needle))
            .unwrap_or_else(|| panic!("no warning about {needle}: {}", report.to_text()))
    };
    for (needle, field, path) in [
        (
            "the company phone",
            "`company_phone`",
            "settings/company/main",
        ),
        (
            "the after-hours forward",
            "`after_hours.number`",
            "settings/company/main",
        ),
        (
            "the forwarding number",
            "`forwarding_number`",
            "settings/number/<digits>",
        ),
        ("of user u-alice", "`phone`", "settings/user/<user_id>"),
        (
            "contacts (c-1, c-3)",
            "`phones`",
            "settings/contact/<contact_id>",
        ),
        (
            "this tenant's number",
            "`released: true`",
            "settings/number/<digits>",
        ),
    ] {
        let warning = by_problem(needle);
        assert!(
            warning.problem.contains("metadata") && warning.problem.contains("dials it"),
            "{}",
            warning.problem
        );
        assert!(
            warning.fix.contains(field)
                && warning.fix.contains(path)
                && warning.fix.contains("switchboard settings apply")
                && warning.fix.contains("if it is right, nothing needs doing"),
            "{needle}: {}",
            warning.fix
        );
    }
    let text = report.to_text();
    assert!(
        text.contains("no problems found") && text.contains("6 warning(s)"),
        "{text}"
    );
    for raw in [
        "5550100199",
        "2005550100",
        "4115550100",
        "5550100101",
        "5550100123",
    ] {
        assert!(!text.contains(raw), "{raw} unmasked: {text}");
    }

    // And a number that is not even possible is still a problem, not a warning
    rec.settings(vec![num("acme", 2, N1, Some("+1 200 555 010"), false)])
        .await;
    let report = lint(&rec.streams.js, &Selection::default(), &NoProgress)
        .await
        .unwrap();
    let found: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(found, vec!["bad_forwarding_number"], "{}", report.to_text());
    assert!(
        report.findings[0].problem.contains("not a possible number"),
        "{}",
        report.findings[0].problem
    );
}
