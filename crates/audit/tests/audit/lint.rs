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
