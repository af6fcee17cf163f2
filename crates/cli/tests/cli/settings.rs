//! `switchboard settings apply` and a tenant SETTINGS has never seen (issue 16: "an unknown
//! tenant is a warning you have to confirm"): refused with exit 6 and nothing published unless
//! confirmed with `--new-tenant`; `--dry-run` warns and exits as it does otherwise.

use crate::support::*;

const INITECH: &str = r#"[
 {"type": "switchboard.settings.company.v1", "data": {"tenant_id": "initech", "version": 1,
   "company_phone": "+16172532000", "default_region": "US"}},
 {"type": "switchboard.settings.number.v1", "data": {"tenant_id": "initech", "version": 1,
   "number": "+16502532000", "forwarding_number": "+13127652000"}}]"#;

/// Given SETTINGS with no event of `initech`, when its file is applied without
/// `--new-tenant`, then nothing is published, exit 6, and the message names the tenant and the
/// flag; `--dry-run` warns of it and exits 0 (clean lint); with `--new-tenant initech` it is
/// published; then a further file for initech needs no flag, while a typo (`initehc`) is
/// refused although `--new-tenant initech` is given (the flag names the tenant it confirms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_settings_never_saw_is_published_only_once_confirmed() {
    let stack = Stack::start().await;
    let initech = stack.file("initech.json", INITECH);

    let refused = stack.run(&["settings", "apply", &initech]).await;
    refused.code(6);
    assert_eq!(refused.stdout, "", "{refused}");
    assert!(
        refused.stderr.contains("nothing published")
            && refused
                .stderr
                .contains("SETTINGS holds no event of tenant initech")
            && refused.stderr.contains("--new-tenant initech"),
        "{refused}"
    );
    assert_eq!(stack.settings_count("settings.>").await, 0);

    let dry = stack
        .run(&["settings", "apply", "--dry-run", &initech])
        .await;
    dry.code(0);
    assert!(
        dry.stderr
            .contains("warning: SETTINGS holds no event of tenant initech")
            && dry.stderr.contains("--new-tenant initech"),
        "{dry}"
    );
    assert_eq!(stack.settings_count("settings.>").await, 0);

    let applied = stack
        .run(&["settings", "apply", "--new-tenant", "initech", &initech])
        .await;
    applied.code(0);
    assert_eq!(applied.stdout, "", "{applied}");
    assert_eq!(
        applied
            .stderr
            .lines()
            .filter(|l| l.starts_with("published switchboard.settings."))
            .count(),
        2,
        "{applied}"
    );
    assert_eq!(stack.settings_count("settings.initech.>").await, 2);

    let user = stack.file(
        "user.json",
        r#"[{"type": "switchboard.settings.user.v1",
             "data": {"tenant_id": "initech", "version": 1, "user_id": "u-peter", "phone": "+12064562000", "active": true}}]"#,
    );
    stack.run(&["settings", "apply", &user]).await.code(0);
    assert_eq!(stack.settings_count("settings.initech.>").await, 3);

    let typo = stack.file(
        "typo.json",
        r#"[{"type": "switchboard.settings.user.v1",
             "data": {"tenant_id": "initech", "version": 2, "user_id": "u-peter", "phone": null, "active": true}},
            {"type": "switchboard.settings.user.v1",
             "data": {"tenant_id": "initehc", "version": 1, "user_id": "u-milton", "phone": null, "active": true}}]"#,
    );
    let refused = stack
        .run(&["settings", "apply", "--new-tenant", "initech", &typo])
        .await;
    refused.code(6);
    assert!(
        refused
            .stderr
            .contains("SETTINGS holds no event of tenant initehc")
            && refused.stderr.contains("--new-tenant initehc"),
        "{refused}"
    );
    assert_eq!(
        stack.settings_count("settings.>").await,
        3,
        "nothing of the refused file is published"
    );
}

/// Given initech's user u-peter at version 1, then a version 2 a NATS producer published with a
/// body the router refuses (a wrong type) under the deterministic event id: applying a
/// corrected version 2 is refused as spent (JetStream would keep the refused event for that
/// id) and nothing is stored — never "duplicate, already stored"; version 1 again is
/// `unchanged` (it is the one in force, the refused event is not); version 3 is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_spent_by_a_refused_event_is_reported_never_taken_as_stored() {
    let stack = Stack::start().await;
    let initech = stack.file("initech.json", INITECH);
    stack
        .run(&["settings", "apply", "--new-tenant", "initech", &initech])
        .await
        .code(0);
    let user = |version: u64, active: bool| {
        format!(
            r#"[{{"type": "switchboard.settings.user.v1",
                 "data": {{"tenant_id": "initech", "version": {version}, "user_id": "u-peter", "phone": "+12064562000", "active": {active}}}}}]"#
        )
    };
    let v1 = stack.file("v1.json", &user(1, true));
    stack.run(&["settings", "apply", &v1]).await.code(0);

    let refused = serde_json::json!({
        "specversion": "1.0", "id": "initech:user:u-peter:v2", "source": "/crm/producer",
        "type": "switchboard.settings.user.v1", "time": "2026-12-05T10:00:00Z",
        "subject": "u-peter", "datacontenttype": "application/json",
        "data": {"tenant_id": "initech", "user_id": "u-peter", "version": 2, "active": "yes"}
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "initech:user:u-peter:v2");
    stack
        .js
        .publish_with_headers(
            "settings.initech.user.u-peter",
            headers,
            refused.to_string().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(stack.settings_count("settings.initech.user.>").await, 2);

    let v2 = stack.file("v2.json", &user(2, false));
    let spent = stack.run(&["settings", "apply", &v2]).await;
    assert_ne!(spent.code, 0, "{spent}");
    assert!(
        spent.stderr.contains("version 2 is spent") && spent.stderr.contains("use version 3"),
        "{spent}"
    );
    assert!(!spent.stderr.contains("already stored"), "{spent}");
    assert_eq!(stack.settings_count("settings.initech.user.>").await, 2);

    let again = stack.run(&["settings", "apply", &v1]).await;
    again.code(0);
    assert!(
        again
            .stderr
            .contains("unchanged settings.initech.user.u-peter"),
        "{again}"
    );

    let v3 = stack.file("v3.json", &user(3, false));
    stack.run(&["settings", "apply", &v3]).await.code(0);
    assert_eq!(stack.settings_count("settings.initech.user.>").await, 3);
}
