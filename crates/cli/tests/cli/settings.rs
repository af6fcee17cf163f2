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
