use crate::support::*;
use switchboard_audit::read::NoProgress;
use switchboard_audit::{Selection, lint};
use switchboard_contracts::{
    CompanySettings, NumberSettings, RingGroup, RingMode, SettingsChange, UserSettings,
};

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
        bob.fix.contains("`user.phone`")
            && bob
                .fix
                .contains("`PUT /v1/tenants/acme/settings/user/u-bob`")
            && bob.fix.contains("`contact.assigned_user_id`"),
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
            "`company.company_phone`",
            "settings/company/main",
        ),
        (
            "the after-hours forward",
            "`company.after_hours.number`",
            "settings/company/main",
        ),
        (
            "the forwarding number",
            "`number.forwarding_number`",
            "settings/number/<digits>",
        ),
        ("of user u-alice", "`user.phone`", "settings/user/u-alice"),
        (
            "contacts (c-1, c-3)",
            "`contact.phones`",
            "settings/contact/<contact_id>",
        ),
        (
            "this tenant's number",
            "`number.released`",
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

/// Every code lint can report, problems and warnings (the list in [`switchboard_audit::Finding`]).
const ALL_CODES: [&str; 21] = [
    "after_hours_forward_loop",
    "bad_company_phone",
    "bad_forwarding_number",
    "blocked_own_number",
    "business_hours_never_open",
    "company_phone_loop",
    "direct_line_owner_deactivated",
    "direct_line_owner_unknown",
    "direct_line_owner_without_phone",
    "forwarding_loop",
    "lead_user_deactivated",
    "lead_user_unknown",
    "lead_user_without_phone",
    "no_target",
    "number_unknown_to_metadata",
    "released_number_receiving_calls",
    "ring_group_member_unknown",
    "ring_group_never_rings",
    "ring_timeout_outside_15_20",
    "screening_ring_timeout_too_short",
    "working_hours_never_open",
];

/// Number `n` of tenant `t` (forwarding to FORWARD) with a simultaneous ring group of `users`.
fn grouped(t: &str, n: &str, users: &[&str], secs: Option<u32>) -> SettingsChange {
    match num(t, 1, n, Some(FORWARD), false) {
        SettingsChange::Number(number) => SettingsChange::Number(NumberSettings {
            ring_group: Some(RingGroup {
                user_ids: users.iter().map(|u| id(u)).collect(),
                mode: RingMode::Simultaneous,
                ring_timeout_secs: secs,
            }),
            ..number
        }),
        _ => unreachable!(),
    }
}

/// `change` (a company's) with `f` applied.
fn company_with(change: SettingsChange, f: impl FnOnce(&mut CompanySettings)) -> SettingsChange {
    match change {
        SettingsChange::Company(mut c) => {
            f(&mut c);
            SettingsChange::Company(c)
        }
        _ => unreachable!(),
    }
}

/// `change` (a user's) with `f` applied.
fn user_with(change: SettingsChange, f: impl FnOnce(&mut UserSettings)) -> SettingsChange {
    match change {
        SettingsChange::User(mut u) => {
            f(&mut u);
            SettingsChange::User(u)
        }
        _ => unreachable!(),
    }
}

/// A table row: its name, its settings (on top of a sound tenant), the findings expected.
type Case = (
    &'static str,
    Vec<SettingsChange>,
    Vec<(&'static str, &'static str)>,
);

/// The codes of issue 17's checks.
const CALLER_POLICY_CODES: [&str; 4] = [
    "blocked_own_number",
    "ring_group_member_unknown",
    "ring_group_never_rings",
    "screening_ring_timeout_too_short",
];

/// Issue 17's lint, a table: ring groups nobody in can ever ring (unknown, deactivated,
/// phoneless, a phone that is the number itself, working hours never open — availability does
/// not count: it changes through the day), groups naming unknown users (a group over the limit
/// cannot be in force: the contract refuses it), block-list entries covering the company's own
/// numbers, its forwarding numbers or the after-hours forward, and screening with a ring
/// timeout under 15 s. Each with its negative case.
#[test]
fn lint_finds_ring_groups_block_lists_and_screening_that_fail_callers() {
    use switchboard_audit::SettingsLog;
    use switchboard_audit::lint::lint_settings;

    let never: switchboard_contracts::schedule::Schedule =
        serde_json::from_str(r#"{"weekly": {}}"#).unwrap();
    let base = || {
        vec![
            company("acme", 1, Some(COMPANY)),
            num("acme", 1, N2, Some(FORWARD_2), false),
            user("acme", 1, "u-alice", Some(ALICE), true),
        ]
    };
    let screening = |secs: Option<u32>| {
        company_with(company("acme", 1, Some(COMPANY)), |c| {
            c.screening = Some(switchboard_contracts::Screening::Forwarded);
            c.ring_timeout_secs = secs;
        })
    };
    let blocking = |entries: &[&str]| {
        company_with(company("acme", 1, Some(COMPANY)), |c| {
            c.blocked_callers = entries.iter().map(|e| e.to_string()).collect();
            c.after_hours = Some(switchboard_contracts::AfterHours {
                kind: switchboard_contracts::AfterHoursKind::Forward,
                number: Some("+13125550142".into()),
            });
        })
    };
    let g = |users: &[&str]| grouped("acme", N1, users, None);
    let n1 = "number/+16*******00";
    let company_entity = "company/main";
    let cases: Vec<Case> = vec![
        // (a) a group nobody in can ring, at any hour
        (
            "every member unknown",
            vec![g(&["u-ghost", "u-phantom"])],
            vec![("ring_group_never_rings", n1)],
        ),
        (
            "deactivated, phoneless, a bad phone, never-open hours, the number itself",
            vec![
                g(&["u-off", "u-mute", "u-bad", "u-never", "u-loop"]),
                user("acme", 1, "u-off", Some(BOB), false),
                user("acme", 1, "u-mute", None, true),
                user("acme", 1, "u-bad", Some("+1 650 253"), true),
                user_with(user("acme", 1, "u-never", Some(BOB), true), |u| {
                    u.working_hours = Some(never.clone());
                    u.ring_only_in_working_hours = true;
                }),
                user("acme", 1, "u-loop", Some(N1), true),
            ],
            vec![("ring_group_never_rings", n1)],
        ),
        (
            "one member can ring",
            vec![
                g(&["u-off", "u-alice"]),
                user("acme", 1, "u-off", Some(BOB), false),
            ],
            vec![],
        ),
        (
            "a member on do-not-disturb can still ring later",
            vec![
                g(&["u-dnd"]),
                user_with(user("acme", 1, "u-dnd", Some(BOB), true), |u| {
                    u.available = false
                }),
            ],
            vec![],
        ),
        (
            "never-open hours that do not restrict ringing",
            vec![
                g(&["u-hours"]),
                user_with(user("acme", 1, "u-hours", Some(BOB), true), |u| {
                    u.working_hours = Some(never.clone());
                }),
            ],
            vec![],
        ),
        (
            "a released number's group",
            vec![match g(&["u-ghost"]) {
                SettingsChange::Number(n) => SettingsChange::Number(NumberSettings {
                    released: true,
                    ..n
                }),
                _ => unreachable!(),
            }],
            vec![],
        ),
        // (b) a group naming users that do not exist
        (
            "one member unknown",
            vec![g(&["u-alice", "u-ghost"])],
            vec![("ring_group_member_unknown", n1)],
        ),
        // (c) block lists
        (
            "an entry covering one of the tenant's numbers",
            vec![
                blocking(&["+1650253", "+1900"]),
                num("acme", 1, N1, None, false),
            ],
            vec![("blocked_own_number", company_entity)],
        ),
        (
            "the company phone, exactly",
            vec![blocking(&[COMPANY])],
            vec![("blocked_own_number", company_entity)],
        ),
        (
            "a number's forwarding number and the after-hours forward, each by its own entry",
            vec![blocking(&[FORWARD_2, "+1312555"])],
            vec![
                ("blocked_own_number", company_entity),
                ("blocked_own_number", company_entity),
            ],
        ),
        (
            "entries covering none of them",
            vec![blocking(&["+1900", "+14155550199", "+16502531"])],
            vec![],
        ),
        (
            "an entry covering only a released number",
            vec![blocking(&[N1]), num("acme", 1, N1, None, true)],
            vec![],
        ),
        // (d) screening with ring timeouts under 15 s
        (
            "the company's timeout",
            vec![screening(Some(10))],
            vec![("screening_ring_timeout_too_short", company_entity)],
        ),
        (
            "a number's and a group's timeout",
            vec![
                screening(None),
                match grouped("acme", N1, &["u-alice"], Some(12)) {
                    SettingsChange::Number(n) => SettingsChange::Number(NumberSettings {
                        ring_timeout_secs: Some(14),
                        ..n
                    }),
                    _ => unreachable!(),
                },
            ],
            vec![
                ("screening_ring_timeout_too_short", n1),
                ("screening_ring_timeout_too_short", n1),
            ],
        ),
        (
            "15 s is enough",
            vec![
                screening(Some(15)),
                grouped("acme", N1, &["u-alice"], Some(15)),
            ],
            vec![],
        ),
        (
            "short timeouts without screening",
            vec![
                company_with(company("acme", 1, Some(COMPANY)), |c| {
                    c.ring_timeout_secs = Some(10)
                }),
                grouped("acme", N1, &["u-alice"], Some(10)),
            ],
            vec![],
        ),
    ];
    for (name, changes, expected) in cases {
        let mut log = SettingsLog::new();
        // The case's changes after the base (a company of the case replaces the base's).
        let mut all = base();
        all.retain(|b| !changes.iter().any(|c| c.key() == b.key()));
        all.extend(changes);
        for (i, change) in all.iter().enumerate() {
            log.apply(i as u64 + 1, time::OffsetDateTime::UNIX_EPOCH, change);
        }
        let findings = lint_settings(&log);
        let found: Vec<(&str, &str)> = findings
            .iter()
            .filter(|f| CALLER_POLICY_CODES.contains(&f.code.as_str()))
            .map(|f| (f.code.as_str(), f.entity.as_str()))
            .collect();
        assert_eq!(found, expected, "{name}: {findings:#?}");
    }
}

/// What the findings say: why each member cannot ring, what an entry blocks (numbers masked),
/// why screening needs 15 s.
#[test]
fn caller_policy_findings_say_why() {
    use switchboard_audit::SettingsLog;
    use switchboard_audit::lint::lint_settings;

    let changes = [
        company_with(company("acme", 1, Some(COMPANY)), |c| {
            c.screening = Some(switchboard_contracts::Screening::Forwarded);
            c.ring_timeout_secs = Some(10);
            c.blocked_callers = vec![N2.into(), "+1617".into()];
        }),
        grouped("acme", N1, &["u-ghost", "u-off"], None),
        num("acme", 1, N2, None, false),
        user("acme", 1, "u-off", Some(BOB), false),
    ];
    let mut log = SettingsLog::new();
    for (i, change) in changes.iter().enumerate() {
        log.apply(i as u64 + 1, time::OffsetDateTime::UNIX_EPOCH, change);
    }
    let findings = lint_settings(&log);
    let by_code = |code: &str| -> Vec<&switchboard_audit::Finding> {
        findings.iter().filter(|f| f.code == code).collect()
    };
    let group = by_code("ring_group_never_rings");
    assert_eq!(group.len(), 1, "{findings:#?}");
    assert!(
        group[0]
            .problem
            .contains("u-ghost is unknown; u-off is deactivated")
            && group[0].fix.contains("`number.ring_group.user_ids`"),
        "{:#?}",
        group[0]
    );
    let blocked = by_code("blocked_own_number");
    let problems: Vec<&str> = blocked.iter().map(|f| f.problem.as_str()).collect();
    assert_eq!(blocked.len(), 2, "{findings:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("entry +1617 blocks the company phone +16*******34")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("entry +16*******01 blocks this tenant's number +16*******01")),
        "{problems:#?}"
    );
    assert!(
        blocked
            .iter()
            .all(|f| f.fix.contains("`company.blocked_callers`"))
    );
    let screening = by_code("screening_ring_timeout_too_short");
    assert_eq!(screening.len(), 1, "{findings:#?}");
    assert!(
        screening[0].problem.contains("10 s, under 15 s")
            && screening[0].fix.contains("`company.ring_timeout_secs`")
            && screening[0].fix.contains("`company.screening`"),
        "{:#?}",
        screening[0]
    );
}

/// Words of other products' screens (a CRM's menus, the contract's old doc comments) that a
/// lint text must not send anyone to.
const FOREIGN_UI: [&str; 11] = [
    "Team Management",
    "Settings >",
    " > ",
    "Lead owner",
    "Business Info",
    "Company Data",
    "Phone Numbers",
    "User Phone",
    "menu",
    "CRM",
    "Close",
];

/// The settings fields of each entity kind, as the contract serializes them: every field set,
/// so that none is skipped (and the compiler insists on every field of each struct).
fn contract_fields() -> std::collections::BTreeMap<&'static str, Vec<String>> {
    use switchboard_contracts::{
        AfterHours, AfterHoursKind, AnonymousCallers, BlockedAction, CompanySettings,
        ContactSettings, FinalAction, NumberSettings, Prefer, RingGroup, RingMode, Screening,
        UserSettings,
    };
    let schedule: switchboard_contracts::schedule::Schedule = serde_json::from_str(
        r#"{"time_zone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]},
            "overrides": [{"date": "2026-12-25", "hours": []}]}"#,
    )
    .unwrap();
    let keys = |value: serde_json::Value| -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    let after_hours = AfterHours {
        kind: AfterHoursKind::Forward,
        number: Some(FORWARD.into()),
    };
    let company = CompanySettings {
        tenant_id: tenant("acme"),
        version: 1,
        company_phone: Some(COMPANY.into()),
        default_region: Some("US".into()),
        final_action: Some(FinalAction::default()),
        time_zone: Some("UTC".into()),
        business_hours: Some(schedule.clone()),
        after_hours: Some(after_hours.clone()),
        ring_timeout_secs: Some(20),
        returning_caller_days: 30,
        blocked_callers: vec!["+1900".into()],
        blocked_action: Some(BlockedAction::Announce),
        anonymous_callers: Some(AnonymousCallers::Voicemail),
        screening: Some(Screening::Forwarded),
    };
    let ring_group = RingGroup {
        user_ids: vec![id("u-1")],
        mode: RingMode::Sequential,
        ring_timeout_secs: Some(20),
    };
    let number = NumberSettings {
        tenant_id: tenant("acme"),
        version: 1,
        number: self::number(N1),
        forwarding_number: Some(FORWARD.into()),
        released: true,
        user_id: Some(id("u-1")),
        prefer: Prefer::NumberOwner,
        ring_timeout_secs: Some(20),
        ring_group: Some(ring_group.clone()),
    };
    let user = UserSettings {
        tenant_id: tenant("acme"),
        version: 1,
        user_id: id("u-1"),
        phone: Some(ALICE.into()),
        active: true,
        available: false,
        working_hours: Some(schedule),
        ring_only_in_working_hours: true,
    };
    let contact = ContactSettings {
        tenant_id: tenant("acme"),
        version: 1,
        contact_id: id("c-1"),
        phones: vec![CALLERS[0].into()],
        assigned_user_id: Some(id("u-1")),
        deleted: true,
    };
    let mut company_fields = keys(serde_json::to_value(company).unwrap());
    // `after_hours` is an object: its fields are named as paths below it.
    for field in keys(serde_json::to_value(after_hours).unwrap()) {
        company_fields.push(format!("after_hours.{field}"));
    }
    // So is `ring_group`.
    let mut number_fields = keys(serde_json::to_value(number).unwrap());
    for field in keys(serde_json::to_value(ring_group).unwrap()) {
        number_fields.push(format!("ring_group.{field}"));
    }
    [
        ("company", company_fields),
        ("number", number_fields),
        ("user", keys(serde_json::to_value(user).unwrap())),
        ("contact", keys(serde_json::to_value(contact).unwrap())),
    ]
    .into_iter()
    .collect()
}

/// Issue 16: "`lint` fix texts speak of Switchboard's own settings (the field and the command
/// or API call that fixes it), not another CRM's menus." Settings that produce every code lint
/// has, problems and warnings; each fix names the settings field to change as `kind.field` (a
/// field the contract has), the `PUT` of that entity's settings and `switchboard settings
/// apply`, and no text names another product's screens or shows a number.
#[test]
fn every_fix_names_the_settings_field_and_how_to_publish_it() {
    use std::collections::BTreeSet;
    use switchboard_audit::SettingsLog;
    use switchboard_audit::lint::{lint_settings, lint_warnings, released_receiving};
    use switchboard_contracts::{
        AfterHours, AfterHoursKind, CompanySettings, NumberSettings, SettingsChange, UserSettings,
    };
    use time::OffsetDateTime;

    let never: switchboard_contracts::schedule::Schedule =
        serde_json::from_str(r#"{"weekly": {}}"#).unwrap();
    let released_number = "+16502530003";
    let bad = "+1 650 253";
    let with_company = |c: SettingsChange, f: fn(&mut CompanySettings)| match c {
        SettingsChange::Company(mut c) => {
            f(&mut c);
            SettingsChange::Company(c)
        }
        _ => unreachable!(),
    };
    let with_number = |c: SettingsChange, owner: &str, secs: Option<u32>| match c {
        SettingsChange::Number(n) => SettingsChange::Number(NumberSettings {
            user_id: Some(id(owner)),
            ring_timeout_secs: secs,
            ..n
        }),
        _ => unreachable!(),
    };
    let changes = vec![
        // acme: a company phone that is not possible, hours never open, after hours forwarding
        // to its own N1, ringing 30 s
        with_company(company("acme", 1, Some(bad)), |c| {
            c.business_hours = Some(serde_json::from_str(r#"{"weekly": {}}"#).unwrap());
            c.after_hours = Some(AfterHours {
                kind: AfterHoursKind::Forward,
                number: Some(N1.into()),
            });
            c.ring_timeout_secs = Some(30);
        }),
        // N1 with no forwarding number (no target), the direct line of an unknown user;
        // N2 forwarding to a number that is not possible, the line of a deactivated user;
        // N3 forwarding to N2 (a loop), the line of a user without a phone, ringing 10 s;
        // a released number, called since
        with_number(num("acme", 1, N1, None, false), "u-ghost", None),
        with_number(
            num("acme", 1, N2, Some("+1 200 555 010"), false),
            "u-carol",
            None,
        ),
        with_number(num("acme", 1, N3, Some(N2), false), "u-dan", Some(10)),
        num("acme", 1, released_number, Some(FORWARD), true),
        user("acme", 1, "u-carol", Some(BOB), false),
        user("acme", 1, "u-dan", None, true),
        user("acme", 1, "u-erin", Some(bad), true),
        SettingsChange::User(UserSettings {
            working_hours: Some(never),
            ring_only_in_working_hours: true,
            ..match user("acme", 1, "u-eve", Some(ALICE), true) {
                SettingsChange::User(u) => u,
                _ => unreachable!(),
            }
        }),
        // a phone in no range the metadata knows
        user("acme", 1, "u-fay", Some("(411) 555-0100"), true),
        // leads of an unknown, a deactivated, a phoneless and a bad-phoned user
        contact("acme", 1, "c-1", CALLERS[0], Some("u-ghost")),
        contact("acme", 1, "c-2", CALLERS[1], Some("u-carol")),
        contact("acme", 1, "c-3", "+14152000003", Some("u-dan")),
        contact("acme", 1, "c-4", "+14152000004", Some("u-dan")),
        contact("acme", 1, "c-5", "+14152000005", Some("u-erin")),
        // globex: the company phone is one of its own numbers
        company("globex", 1, Some(N1)),
        num("globex", 1, N1, Some(FORWARD), false),
        // initech: screening on with a 10 s ring timeout, a block list covering its own
        // number, a ring group of nobody who can ring and one naming an unknown user
        with_company(company("initech", 1, Some(COMPANY)), |c| {
            c.screening = Some(switchboard_contracts::Screening::Forwarded);
            c.ring_timeout_secs = Some(10);
            c.blocked_callers = vec!["+1650253".into()];
        }),
        grouped("initech", N1, &["u-ghost"], None),
        grouped("initech", N2, &["u-ok", "u-nobody"], None),
        user("initech", 1, "u-ok", Some(ALICE), true),
    ];
    let mut log = SettingsLog::new();
    let released_at = OffsetDateTime::UNIX_EPOCH;
    for (i, change) in changes.iter().enumerate() {
        log.apply(i as u64 + 1, released_at, change);
    }
    let later = released_at + time::Duration::hours(1);
    let mut findings = lint_settings(&log);
    findings.extend(released_receiving(
        &log,
        [(later, inbound("acme", "CA-1", released_number, CALLERS[3]))],
    ));
    let warnings = lint_warnings(&log);
    let all: Vec<_> = findings.iter().chain(&warnings).collect();

    // Every code is produced
    let codes: BTreeSet<&str> = all.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        ALL_CODES.into_iter().collect::<BTreeSet<_>>(),
        "{all:#?}"
    );

    let fields = contract_fields();
    for f in &all {
        // The fix names at least one settings field as `kind.field`, each one the contract has
        let paths: Vec<(&str, &str)> = f
            .fix
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|quoted| quoted.split_once('.'))
            .filter(|(kind, _)| fields.contains_key(kind))
            .collect();
        assert!(
            !paths.is_empty(),
            "{}: no settings field in {:?}",
            f.code,
            f.fix
        );
        for (kind, field) in &paths {
            let field = field.split_once(' ').map_or(*field, |(f, _)| f);
            assert!(
                fields[kind].iter().any(|known| known == field),
                "{}: `{kind}.{field}` is not a field of the contract ({:?}): {:?}",
                f.code,
                fields[kind],
                f.fix
            );
            // and how to publish that entity's settings: its PUT, or a settings file
            let put = format!("`PUT /v1/tenants/{}/settings/{kind}/", f.tenant_id);
            assert!(
                f.fix.contains(&put) && f.fix.contains("`switchboard settings apply FILE`"),
                "{}: no {put}… or `switchboard settings apply FILE` in {:?}",
                f.code,
                f.fix
            );
        }
        // the entity at fault is the one whose settings are PUT
        let entity_path = match f.entity.split_once('/') {
            Some(("number", _)) => "settings/number/<digits>`".to_string(),
            Some((kind, id)) => format!("settings/{kind}/{id}`"),
            None => "settings/contact/".to_string(),
        };
        assert!(
            f.fix.contains(&entity_path),
            "{}: {entity_path} not in {:?}",
            f.code,
            f.fix
        );
        // and nothing sends anyone to another product's screens
        for phrase in FOREIGN_UI {
            assert!(
                !f.fix.contains(phrase) && !f.problem.contains(phrase),
                "{}: {phrase:?} in {f:#?}",
                f.code
            );
        }
        // and numbers stay masked
        for raw in [
            N1,
            N2,
            N3,
            released_number,
            BOB,
            ALICE,
            "4115550100",
            "2005550100",
        ] {
            let digits = raw.trim_start_matches("+1");
            assert!(
                !f.fix.contains(digits) && !f.problem.contains(digits),
                "{raw} unmasked: {f:#?}"
            );
        }
    }
}
