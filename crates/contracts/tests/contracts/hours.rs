//! Issue 15's settings fields: what they default to, and every refusal naming its field.
//! Issue 15: "A settings event that fails validation (unknown time zone, malformed interval
//! such as `"9am"` or one crossing midnight, overlapping intervals, an after-hours forward to
//! an invalid number) is refused with a `settings.rejected` whose reason names the field — as
//! today for bad phone numbers."

use crate::support::example_json;
use serde_json::{Value, json};
use switchboard_contracts::schedule::time_zone;
use switchboard_contracts::{
    AfterHoursKind, CompanySettings, ContractError, Envelope, NumberSettings, Prefer, UserSettings,
};

const COMPANY: &str = "switchboard.settings.company.v1.json";
const NUMBER: &str = "switchboard.settings.number.v1.json";
const USER: &str = "switchboard.settings.user.v1.json";

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn user_with(f: impl FnOnce(&mut Value)) -> Result<UserSettings, ContractError> {
    let mut v = example_json(USER);
    f(&mut v["data"]);
    Envelope::<UserSettings>::decode(&body(&v), "settings.acme.user.u-42").map(|e| e.data)
}

fn company_with(f: impl FnOnce(&mut Value)) -> Result<CompanySettings, ContractError> {
    let mut v = example_json(COMPANY);
    f(&mut v["data"]);
    Envelope::<CompanySettings>::decode(&body(&v), "settings.acme.company.main").map(|e| e.data)
}

fn number_with(f: impl FnOnce(&mut Value)) -> Result<NumberSettings, ContractError> {
    let mut v = example_json(NUMBER);
    f(&mut v["data"]);
    Envelope::<NumberSettings>::decode(&body(&v), "settings.acme.number.16502530000")
        .map(|e| e.data)
}

/// The refusal's field and reason, for an `invalid_setting`.
fn invalid_setting(result: Result<impl std::fmt::Debug, ContractError>) -> (String, String) {
    match result {
        Err(e @ ContractError::InvalidSetting { .. }) => {
            assert_eq!(e.code(), "invalid_setting");
            let text = e.to_string();
            let ContractError::InvalidSetting { field, reason } = e else {
                unreachable!()
            };
            assert!(text.contains(&format!("`{field}`")), "{text}");
            (field, reason)
        }
        other => panic!("expected invalid_setting, got {other:?}"),
    }
}

/// Issue 15: "Omitted fields take their defaults (`available` true;
/// `ring_only_in_working_hours` false)", and `prefer` "`contact_owner` (default)".
#[test]
fn omitted_fields_take_their_defaults() {
    let user = user_with(|d| {
        for f in ["available", "working_hours", "ring_only_in_working_hours"] {
            d.as_object_mut().unwrap().remove(f);
        }
    })
    .unwrap();
    assert!(user.available);
    assert!(!user.ring_only_in_working_hours);
    assert_eq!(user.working_hours, None);
    // proto3 JSON: null is the default too.
    let user = user_with(|d| {
        d["available"] = Value::Null;
        d["working_hours"] = Value::Null;
        d["ring_only_in_working_hours"] = Value::Null;
    })
    .unwrap();
    assert!(user.available && !user.ring_only_in_working_hours);

    let number = number_with(|d| {
        for f in ["user_id", "prefer", "ring_timeout_secs"] {
            d.as_object_mut().unwrap().remove(f);
        }
    })
    .unwrap();
    assert_eq!(
        (number.user_id, number.prefer, number.ring_timeout_secs),
        (None, Prefer::ContactOwner, None)
    );
    let number = number_with(|d| d["prefer"] = json!("number_owner")).unwrap();
    assert_eq!(number.prefer, Prefer::NumberOwner);

    let company = company_with(|d| {
        for f in [
            "time_zone",
            "business_hours",
            "after_hours",
            "ring_timeout_secs",
        ] {
            d.as_object_mut().unwrap().remove(f);
        }
    })
    .unwrap();
    assert_eq!(company.after_hours, None);
    assert_eq!(company.ring_timeout_secs, None);
    let company = company_with(|d| d["ring_timeout_secs"] = json!("15")).unwrap();
    assert_eq!(
        company.ring_timeout_secs,
        Some(15),
        "a decimal string is read as a number"
    );
    let company = company_with(|d| d["after_hours"] = json!({"kind": "final_action"})).unwrap();
    assert_eq!(
        company.after_hours.map(|a| a.kind),
        Some(AfterHoursKind::FinalAction)
    );
}

/// Issue 15: "malformed interval such as `"9am"`" … "refused … whose reason names the field".
#[test]
fn a_malformed_time_is_refused_naming_the_interval() {
    for (bad, at) in [
        (json!([["9am", "17:00"]]), "working_hours.weekly.mon[0]"),
        (
            json!([["09:00", "12:00"], ["13:00", "5pm"]]),
            "working_hours.weekly.mon[1]",
        ),
        (json!([["9:00", "17:00"]]), "working_hours.weekly.mon[0]"),
        (json!([["09:00", "17:60"]]), "working_hours.weekly.mon[0]"),
        (json!([["24:00", "24:00"]]), "working_hours.weekly.mon[0]"),
        (json!([["09:00", "24:01"]]), "working_hours.weekly.mon[0]"),
        (json!([[" 09:00", "17:00"]]), "working_hours.weekly.mon[0]"),
    ] {
        let (field, reason) = invalid_setting(user_with(|d| {
            d["working_hours"]["weekly"]["mon"] = bad.clone();
        }));
        assert_eq!(field, at, "{bad}: {reason}");
        assert!(
            reason.contains("HH:MM") || reason.contains("24:00"),
            "{reason}"
        );
    }
    // The company's business hours, and an override's hours, the same way.
    let (field, _) = invalid_setting(company_with(|d| {
        d["business_hours"]["weekly"]["fri"] = json!([["9am", "5pm"]]);
    }));
    assert_eq!(field, "business_hours.weekly.fri[0]");
    let (field, _) = invalid_setting(company_with(|d| {
        d["business_hours"]["overrides"][1]["hours"] = json!([["09:00", "noon"]]);
    }));
    assert_eq!(field, "business_hours.overrides[1].hours[0]");
}

/// Issue 15: "an interval may not cross midnight (write two)"; `end` may be `"24:00"`.
#[test]
fn an_interval_crossing_midnight_is_refused() {
    let (field, reason) = invalid_setting(user_with(|d| {
        d["working_hours"]["weekly"]["fri"] = json!([["22:00", "02:00"]]);
    }));
    assert_eq!(field, "working_hours.weekly.fri[0]");
    assert!(reason.contains("crosses midnight"), "{reason}");
    let (_, reason) = invalid_setting(user_with(|d| {
        d["working_hours"]["weekly"]["fri"] = json!([["10:00", "10:00"]]);
    }));
    assert!(reason.contains("empty"), "{reason}");
    // Written as two, it is accepted.
    user_with(|d| {
        d["working_hours"]["weekly"]["fri"] = json!([["22:00", "24:00"]]);
        d["working_hours"]["weekly"]["sat"] = json!([["00:00", "02:00"]]);
    })
    .unwrap();
}

/// Issue 15: "overlapping intervals" are refused; touching ones are not (half-open).
#[test]
fn overlapping_intervals_are_refused() {
    let (field, reason) = invalid_setting(user_with(|d| {
        d["working_hours"]["weekly"]["tue"] = json!([["13:00", "17:00"], ["09:00", "13:30"]]);
    }));
    assert_eq!(field, "working_hours.weekly.tue[1]");
    assert!(reason.contains("overlaps"), "{reason}");
    user_with(|d| {
        d["working_hours"]["weekly"]["tue"] = json!([["13:00", "17:00"], ["09:00", "13:00"]]);
    })
    .unwrap();
}

/// Issue 15: "unknown time zone" is refused, for the company and for a schedule.
#[test]
fn an_unknown_time_zone_is_refused() {
    for bad in [
        "Mars/Olympus_Mons",
        "CST",
        "america/chicago",
        "",
        "Etc/Unknown",
    ] {
        let (field, reason) = invalid_setting(company_with(|d| d["time_zone"] = json!(bad)));
        assert_eq!(field, "time_zone", "{bad}");
        assert!(reason.contains("IANA"), "{reason}");
    }
    let (_, reason) = invalid_setting(company_with(|d| d["time_zone"] = json!("america/chicago")));
    assert!(
        reason.contains("did you mean \"America/Chicago\""),
        "{reason}"
    );
    let (field, _) = invalid_setting(user_with(|d| {
        d["working_hours"]["time_zone"] = json!("Europe/Berln");
    }));
    assert_eq!(field, "working_hours.time_zone");
    assert!(time_zone("Pacific/Auckland").is_ok());
    assert!(time_zone("UTC").is_ok());
}

/// Day keys are `mon` … `sun`; a typo is refused rather than closing the day silently.
#[test]
fn unknown_day_keys_are_refused() {
    let err = user_with(|d| {
        d["working_hours"]["weekly"]["monday"] = json!([["09:00", "17:00"]]);
    })
    .unwrap_err();
    assert_eq!(err.code(), "malformed");
    assert!(err.to_string().contains("monday"), "{err}");
}

/// Overrides: a date that exists, written YYYY-MM-DD, once per date.
#[test]
fn override_dates_are_strict() {
    for (bad, what) in [
        ("2027-02-29", "exists"),
        ("2026-13-01", "exists"),
        ("24.12.2026", "YYYY-MM-DD"),
        ("2026-12-4", "YYYY-MM-DD"),
    ] {
        let (field, reason) = invalid_setting(company_with(|d| {
            d["business_hours"]["overrides"][0]["date"] = json!(bad);
        }));
        assert_eq!(field, "business_hours.overrides[0].date");
        assert!(reason.contains(what), "{bad}: {reason}");
    }
    // 29 February of a leap year exists.
    company_with(|d| d["business_hours"]["overrides"][0]["date"] = json!("2028-02-29")).unwrap();
    let (field, reason) = invalid_setting(company_with(|d| {
        d["business_hours"]["overrides"][1]["date"] = json!("2026-12-24");
    }));
    assert_eq!(field, "business_hours.overrides[1].date");
    assert!(reason.contains("twice"), "{reason}");
}

/// Issue 15: "an after-hours forward to an invalid number" is refused "as today for bad phone
/// numbers" (`invalid_phone`, the field named, the value masked).
#[test]
fn an_after_hours_forward_to_an_invalid_number_is_refused() {
    let err = company_with(|d| {
        d["after_hours"] = json!({"kind": "forward", "number": "+1 312 555 01"});
    })
    .unwrap_err();
    match &err {
        ContractError::InvalidPhone { field, .. } => assert_eq!(*field, "after_hours.number"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), "invalid_phone");
    assert!(err.to_string().contains("`after_hours.number`"), "{err}");

    let err = company_with(|d| d["after_hours"] = json!({"kind": "forward"})).unwrap_err();
    assert_eq!(err, ContractError::Missing("after_hours.number"));
    let (field, _) = invalid_setting(company_with(|d| {
        d["after_hours"] = json!({"kind": "final_action", "number": "+13125550100"});
    }));
    assert_eq!(field, "after_hours.number");
    // A national number is read in the company's region.
    let company = company_with(|d| {
        d["after_hours"] = json!({"kind": "forward", "number": "(312) 555-0100"});
    })
    .unwrap();
    assert_eq!(
        company.after_hours.and_then(|a| a.number).as_deref(),
        Some("(312) 555-0100")
    );
}

/// Ring timeouts: what a carrier's dial timeout accepts (5–600 s).
#[test]
fn ring_timeouts_out_of_range_are_refused() {
    for bad in [0, 4, 601] {
        let (field, _) = invalid_setting(number_with(|d| d["ring_timeout_secs"] = json!(bad)));
        assert_eq!(field, "ring_timeout_secs");
        let (field, _) = invalid_setting(company_with(|d| d["ring_timeout_secs"] = json!(bad)));
        assert_eq!(field, "ring_timeout_secs");
    }
    number_with(|d| d["ring_timeout_secs"] = json!(5)).unwrap();
    number_with(|d| d["ring_timeout_secs"] = json!(600)).unwrap();
}
