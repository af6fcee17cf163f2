//! `switchboard call --wait --json`: the decision as one JSON document; `switchboard explain
//! --json`: the call's life as objects.

use crate::support::*;

/// Given the demo tenant acme and the router running, when a call from lead c-1001 (assigned
/// to u-alice, who has a phone) is placed with `--json`, then stdout is exactly the decision
/// (call id, rule `assigned_user`, alice's phone, the forwarding number as fallback, the
/// SETTINGS sequence) and the "published …" line is on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_json_is_the_decision_alone() {
    let stack = Stack::with_router().await;
    let demo = demo_acme().display().to_string();
    let applied = stack
        .run(&["settings", "apply", "--new-tenant", "acme", &demo])
        .await;
    applied.code(0);
    assert_eq!(applied.stdout, "", "{applied}");

    let out = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            "+16502530000",
            "--from",
            "(415) 867-5310",
            "--call-id",
            "cli-json-1",
            "--wait",
            "20",
            "--json",
        ])
        .await;
    out.code(0);
    let route = out.json();
    assert_eq!(route["call_id"], "cli-json-1", "{out}");
    assert_eq!(route["tenant_id"], "acme");
    assert_eq!(route["rule"], "assigned_user");
    assert_eq!(route["target"]["number"], "+12064561234");
    assert_eq!(route["target"]["user_id"], "u-alice");
    assert_eq!(route["fallbacks"][0]["number"], "+13127654321");
    assert_eq!(route["fallbacks"][0]["rule"], "forwarding_number");
    assert_eq!(route["final_action"]["kind"], "voicemail");
    // Decided at the last of the demo file's events (SETTINGS #1 to #n).
    let demo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo_acme()).unwrap()).unwrap();
    assert_eq!(route["settings_seq"], demo.as_array().unwrap().len());
    let published = out
        .stderr
        .lines()
        .find(|l| l.starts_with("published switchboard.call.inbound.v1"))
        .unwrap_or_else(|| panic!("no published line on stderr\n{out}"));
    assert!(
        published.contains("cli-json-1") && published.contains(" at CALLS #"),
        "{out}"
    );

    // And `explain --json` tells the same call's life as objects: the decision's chain
    // (numbers masked), the settings read with their kind, id and data, "replay agrees" as a
    // field, and how it was found (no gateway indexes here: CALLS and SETTINGS were scanned).
    let explained = stack
        .run(&["explain", "cli-json-1", "--tenant", "acme", "--json"])
        .await;
    explained.code(0);
    let life = explained.json();
    assert_eq!(life["call_id"], "cli-json-1", "{explained}");
    assert_eq!(life["inbound"][0]["contact_id"], serde_json::Value::Null);
    let decision = &life["decisions"][0];
    assert_eq!(decision["rule"], "assigned_user");
    assert_eq!(decision["chain"][0]["number"], "+12*******34");
    assert_eq!(decision["chain"][0]["user_id"], "u-alice");
    assert_eq!(decision["chain"][1]["rule"], "forwarding_number");
    assert_eq!(decision["final_action"]["kind"], "voicemail");
    assert!(decision["explanation"][0].is_string());
    assert_eq!(life["replay"]["agrees"], true, "{explained}");
    let user = life["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "user")
        .unwrap_or_else(|| panic!("no user among the settings read\n{explained}"));
    assert_eq!(user["id"], "u-alice");
    assert_eq!(user["data"]["phone"], "+12*******34");
    assert_eq!(
        life["lookup"],
        serde_json::json!({"indexed": 0, "scanned_from": 1, "settings_scanned": true})
    );
    assert!(!explained.stdout.contains("+12064561234"), "{explained}");

    let unknown = stack
        .run(&["explain", "cli-json-404", "--tenant", "acme", "--json"])
        .await;
    unknown.code(5);
    assert_eq!(unknown.stdout, "", "{unknown}");
}

/// Issue 17's demo: given the demo tenant acme as `make run` loads it (lint finds nothing
/// about its ring group, block list or screening), a call to its ring-group number prints the group's members on one leg (masked, "at
/// once"), and a call from its blocked number prints rule `blocked`, no target and a
/// rejection; `--json` carries the members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_a_ring_group_and_a_blocked_caller_of_the_demo() {
    let stack = Stack::with_router().await;
    let demo = demo_acme().display().to_string();
    stack
        .run(&["settings", "apply", "--new-tenant", "acme", &demo])
        .await
        .code(0);
    // (the demo's only finding is u-bob without a phone, on purpose: a rule of the spec)
    let lint = stack.run(&["lint", "--tenant", "acme", "--json"]).await;
    let codes: Vec<String> = lint.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .chain(lint.json()["warnings"].as_array().unwrap())
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, vec!["lead_user_without_phone"], "{lint}");

    let group = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            "+16502530002",
            "--from",
            "+14158675312",
            "--call-id",
            "cli-group",
            "--wait",
            "20",
        ])
        .await;
    group.code(0);
    for line in [
        "rule        ring_group",
        "target      +12*******34 (ring_group: u-alice +12*******34, u-carol +12*******35 at once, rings 15 s)",
        "then        +16*******34 (company_phone, rings 20 s)",
        "caller      +14*******12",
    ] {
        assert!(
            group.stdout.lines().any(|l| l == line),
            "{line:?} missing\n{group}"
        );
    }
    assert!(!group.stdout.contains("2064561235"), "{group}");

    let blocked = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            "+16502530000",
            "--from",
            "+14155550199",
            "--call-id",
            "cli-blocked",
            "--wait",
            "20",
        ])
        .await;
    blocked.code(0);
    for line in [
        "rule        blocked",
        "target      none",
        "finally     reject: refused unanswered (the caller's carrier plays busy)",
    ] {
        assert!(
            blocked.stdout.lines().any(|l| l == line),
            "{line:?} missing\n{blocked}"
        );
    }

    let json = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            "+16502530002",
            "--from",
            "+14158675312",
            "--call-id",
            "cli-group-json",
            "--wait",
            "20",
            "--json",
        ])
        .await;
    json.code(0);
    let route = json.json();
    assert_eq!(route["target"]["group"][1]["user_id"], "u-carol", "{json}");
    assert_eq!(route["target"]["group"][1]["number"], "+12064561235");
}

/// The demo's returning caller, as `make run` explains it: a caller u-carol answered on her
/// direct line (the dialer's `answered` event, with the caller, as the sandbox records it with
/// `SWITCHBOARD_SANDBOX_OUTCOMES=completed`) who calls the main number again goes to u-carol
/// first (rule `returning_caller`), then the forwarding number; `explain` decides it again
/// with the history as of the decision's `calls_seq` and agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_of_a_returning_caller_rings_who_answered_them() {
    use switchboard_bus::{Publisher, TraceContext};
    use switchboard_contracts::{CallDial, CallRoute, DialEventKind, Envelope};

    let stack = Stack::with_router().await;
    let demo = demo_acme().display().to_string();
    stack
        .run(&["settings", "apply", "--new-tenant", "acme", &demo])
        .await
        .code(0);
    let caller = "+14155550142";
    let first = stack
        .run(&[
            "call",
            "--tenant",
            "acme",
            "--to",
            "+16502530003",
            "--from",
            caller,
            "--call-id",
            "cli-first",
            "--wait",
            "20",
            "--json",
        ])
        .await;
    first.code(0);
    let route: CallRoute = serde_json::from_value(first.json()).unwrap();
    assert_eq!(route.rule.as_str(), "direct_line", "{first}");
    let answered = CallDial {
        call_id: route.call_id.clone(),
        tenant_id: route.tenant_id.clone(),
        step: 0,
        kind: DialEventKind::Answered,
        target: route.target.clone(),
        reason: None,
        carrier_sid: None,
        outcome_unknown: false,
        acted_by: None,
        caller: route.caller.clone(),
        at: time::OffsetDateTime::now_utc(),
    };
    Publisher::new(stack.js.clone())
        .publish(
            &Envelope::new(
                answered,
                "/switchboard/test",
                time::OffsetDateTime::now_utc(),
            ),
            &TraceContext::default(),
        )
        .await
        .unwrap();

    // The router learns answers asynchronously (it does not wait for them): calls until one
    // is decided with the answer.
    let mut n = 0;
    let returning = switchboard_testkit::eventually(WAIT, "a returning_caller decision", || {
        n += 1;
        let id = format!("cli-again-{n}");
        let stack = &stack;
        async move {
            let out = stack
                .run(&[
                    "call",
                    "--tenant",
                    "acme",
                    "--to",
                    "+16502530000",
                    "--from",
                    caller,
                    "--call-id",
                    &id,
                    "--wait",
                    "20",
                ])
                .await;
            out.code(0);
            out.stdout
                .lines()
                .any(|l| l == "rule        returning_caller")
                .then_some((id, out))
        }
    })
    .await
    .unwrap();
    let (id, out) = returning;
    for line in [
        "target      +12*******35 (returning_caller, rings 20 s)",
        "then        +13*******21 (forwarding_number, rings 20 s)",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line:?} missing\n{out}"
        );
    }
    assert!(
        out.stdout.contains(", answers up to CALLS #"),
        "the decision records its history position\n{out}"
    );

    let explained = stack
        .run(&["explain", &id, "--tenant", "acme", "--json"])
        .await;
    explained.code(0);
    let life = explained.json();
    assert_eq!(
        life["decisions"][0]["rule"], "returning_caller",
        "{explained}"
    );
    assert_eq!(life["replay"]["agrees"], true, "{explained}");
}
