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
