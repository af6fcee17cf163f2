//! `replay --json`, `what-if --json` and `lint --json`: the reports as JSON documents, with
//! the counts the recorded calls and the settings call for.

use crate::support::*;
use serde_json::{Value, json};

/// Places a call through the CLI and waits for its decision (human output).
async fn call(stack: &Stack, id: &str, to: &str, from: &str) {
    let out = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            to,
            "--from",
            from,
            "--call-id",
            id,
            "--wait",
            "20",
        ])
        .await;
    out.code(0);
}

/// The counts of `rule` in a what-if report.
fn rule<'a>(report: &'a Value, rule: &str) -> &'a Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("no rule {rule} in {report:#}"))
}

/// Given the demo tenant and three decided calls (one per rule: assigned_user,
/// forwarding_number, company_phone), then `replay --json` replays three with no difference,
/// and `what-if --json` for u-alice losing her phone counts one call moving from
/// assigned_user to forwarding_number, that call as the example; nothing else on stdout, the
/// timing and progress on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_what_if_json_count_the_recorded_calls() {
    let stack = Stack::with_router().await;
    let demo = demo_acme().display().to_string();
    stack
        .run(&["settings", "apply", "--new-tenant", "acme", &demo])
        .await
        .code(0);
    call(&stack, "cli-a", "+16502530000", "(415) 867-5310").await;
    call(&stack, "cli-f", "+16502530000", "+14158675311").await;
    call(&stack, "cli-c", "+16502530001", "anonymous").await;

    let replay = stack.run(&["replay", "--json"]).await;
    replay.code(0);
    let report = replay.json();
    assert_eq!(report["calls_replayed"], 3, "{replay}");
    assert_eq!(report["differences"], json!([]));
    assert_eq!(report["unreplayable"], json!([]));
    assert!(replay.stderr.contains("replayed 3 decision(s)"), "{replay}");

    let alice = stack.file(
        "alice.json",
        r#"[{"type": "switchboard.settings.user.v1",
             "data": {"tenant_id": "acme", "version": 2, "user_id": "u-alice", "phone": null, "active": true}}]"#,
    );
    let what_if = stack
        .run(&["what-if", "--settings", &alice, "--json"])
        .await;
    what_if.code(0);
    let report = what_if.json();
    assert_eq!(report["tenants"], json!(["acme"]), "{what_if}");
    assert_eq!(report["calls"], 3);
    assert_eq!(report["changed"], 1);
    let assigned = rule(&report, "assigned_user");
    assert_eq!(
        (
            &assigned["recorded"],
            &assigned["before"],
            &assigned["after"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{report:#}"
    );
    let forwarded = rule(&report, "forwarding_number");
    assert_eq!(
        (
            &forwarded["recorded"],
            &forwarded["before"],
            &forwarded["after"]
        ),
        (&json!(1), &json!(1), &json!(2)),
        "{report:#}"
    );
    assert_eq!(rule(&report, "company_phone")["after"], 1);
    let examples = report["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 1, "{report:#}");
    assert_eq!(examples[0]["call_id"], "cli-a");
    assert!(
        examples[0]["before"]
            .as_str()
            .unwrap()
            .starts_with("assigned_user")
            && examples[0]["after"]
                .as_str()
                .unwrap()
                .starts_with("forwarding_number"),
        "{report:#}"
    );
}

/// Given a tenant whose number has no forwarding number and which has no company phone, then
/// `lint --json` exits 4 and lists that number as `no_target`; given a tenant with nothing
/// wrong, `lint --tenant … --json` exits 0 with no finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_json_lists_the_finding() {
    let stack = Stack::start().await;
    let settings = stack.file(
        "lintco.json",
        r#"[{"type": "switchboard.settings.number.v1",
             "data": {"tenant_id": "lintco", "version": 1, "number": "+16502539000"}},
            {"type": "switchboard.settings.company.v1",
             "data": {"tenant_id": "okco", "version": 1, "company_phone": "+16172539000"}}]"#,
    );
    stack
        .run(&[
            "settings",
            "apply",
            "--new-tenant",
            "lintco",
            "--new-tenant",
            "okco",
            &settings,
        ])
        .await
        .code(0);

    let lint = stack.run(&["lint", "--json"]).await;
    lint.code(4);
    let report = lint.json();
    assert_eq!(report["tenants"], 2, "{lint}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["tenant_id"], "lintco");
    assert_eq!(findings[0]["code"], "no_target");
    let entity = findings[0]["entity"].as_str().unwrap();
    assert!(entity.starts_with("number/"), "{report:#}");
    assert!(
        !entity.contains("16502539000"),
        "numbers are masked: {entity}"
    );

    let clean = stack.run(&["lint", "--tenant", "okco", "--json"]).await;
    clean.code(0);
    let report = clean.json();
    assert_eq!(report["tenants"], 1, "{clean}");
    assert_eq!(report["findings"], json!([]));
}
