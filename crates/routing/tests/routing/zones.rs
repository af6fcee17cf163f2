//! Issue 15: "Semantics: the call's instant is converted to the schedule's local date and
//! wall-clock time, which is compared with that date's intervals — so on a spring-forward day
//! no call falls in the skipped hour, and in a fall-back hour both instants of 01:30 are at
//! 01:30 local." … "test the spring-forward gap and the fall-back overlap, a time zone east of
//! the date line (Pacific/Auckland), an override on a DST-change day, and 29 February."

use crate::fixture::*;
use switchboard_contracts::schedule::Schedule;
use switchboard_contracts::{AfterHours, AfterHoursKind, Rule};
use time::OffsetDateTime;
use time::macros::datetime;

const AFTER_HOURS: &str = "+13125550100";

/// A tenant whose business hours are `hours` in `zone`, forwarding after hours; lead c1 (the
/// caller) is assigned to u1. `assigned_user` means open, `after_hours` closed.
fn business(zone: &str, hours: Schedule) -> Fixture {
    let mut f = Fixture::new();
    f.company_with(|c| {
        c.time_zone = Some(zone.into());
        c.business_hours = Some(hours);
        c.after_hours = Some(AfterHours {
            kind: AfterHoursKind::Forward,
            number: Some(AFTER_HOURS.into()),
        });
    })
    .user("u1", Some(USER_PHONE), true)
    .contact("c1", &[CALLER], Some("u1"));
    f
}

fn open_at(f: &Fixture, at: OffsetDateTime) -> bool {
    let d = f.decide(&call_at(CALLER, at));
    match d.rule {
        Rule::AssignedUser => true,
        Rule::AfterHours => false,
        other => panic!("{other:?}: {:?}", d.explanation()),
    }
}

/// The local time the explanation reports for a call at `at`.
fn local_time(f: &Fixture, at: OffsetDateTime) -> String {
    let lines = f.decide(&call_at(CALLER, at)).explanation();
    let line = lines
        .iter()
        .find(|l| l.starts_with("The company is"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let (_, rest) = line.split_once("the call came at ").unwrap();
    rest.trim_end_matches(" local.").to_string()
}

/// America/Chicago springs forward on Sunday 2026-03-08 at 02:00 CST (08:00 UTC) to 03:00 CDT:
/// 02:00–03:00 does not exist that day, so a schedule open only then never opens, and the
/// instant after 01:59:59 CST is 03:00 CDT.
#[test]
fn spring_forward_no_call_falls_in_the_skipped_hour() {
    let gap = business(
        "America/Chicago",
        schedule(None, &[("sun", &[("02:00", "03:00")])], &[]),
    );
    let mut at = datetime!(2026-03-08 07:00 UTC); // 01:00 CST
    while at < datetime!(2026-03-08 10:00 UTC) {
        assert!(!open_at(&gap, at), "open at {at}: {}", local_time(&gap, at));
        at += time::Duration::minutes(1);
    }
    assert_eq!(
        local_time(&gap, datetime!(2026-03-08 07:59:59 UTC)),
        "01:59"
    );
    assert_eq!(local_time(&gap, datetime!(2026-03-08 08:00 UTC)), "03:00");
    // The same hours a week later, in CDT: 07:00–08:00 UTC.
    assert!(open_at(&gap, datetime!(2026-03-15 07:30 UTC)));

    // Hours across the gap are open on both sides of it, one wall-clock hour shorter.
    let across = business(
        "America/Chicago",
        schedule(None, &[("sun", &[("01:00", "04:00")])], &[]),
    );
    assert!(!open_at(&across, datetime!(2026-03-08 06:59 UTC))); // 00:59 CST
    assert!(open_at(&across, datetime!(2026-03-08 07:00 UTC))); // 01:00 CST
    assert!(open_at(&across, datetime!(2026-03-08 08:59 UTC))); // 03:59 CDT
    assert!(!open_at(&across, datetime!(2026-03-08 09:00 UTC))); // 04:00 CDT
}

/// America/Chicago falls back on Sunday 2026-11-01 at 02:00 CDT (07:00 UTC) to 01:00 CST:
/// 01:30 happens twice (06:30 and 07:30 UTC), and both are 01:30 local.
#[test]
fn fall_back_both_instants_of_0130_are_at_0130_local() {
    let f = business(
        "America/Chicago",
        schedule(None, &[("sun", &[("01:00", "02:00")])], &[]),
    );
    for at in [
        datetime!(2026-11-01 06:30 UTC),
        datetime!(2026-11-01 07:30 UTC),
    ] {
        assert_eq!(local_time(&f, at), "01:30", "{at}");
        assert!(open_at(&f, at), "{at}");
    }
    // 01:00–02:00 local is two hours of real time that day: 06:00–08:00 UTC.
    assert!(!open_at(&f, datetime!(2026-11-01 05:59 UTC)));
    assert!(open_at(&f, datetime!(2026-11-01 06:00 UTC)));
    assert!(open_at(&f, datetime!(2026-11-01 07:59 UTC)));
    assert!(!open_at(&f, datetime!(2026-11-01 08:00 UTC))); // 02:00 CST
}

/// Pacific/Auckland is UTC+12 (NZST) in June and east of the date line: Friday 22:30 UTC is
/// already Saturday 10:30 there, so Saturday's hours (and Saturday's date) apply.
#[test]
fn auckland_is_a_day_ahead() {
    let f = business(
        "Pacific/Auckland",
        schedule(
            None,
            &[
                ("fri", &[("09:00", "17:00")]),
                ("sat", &[("10:00", "12:00")]),
            ],
            &[("2026-06-13", &[])],
        ),
    );
    let friday_utc = datetime!(2026-06-05 22:30 UTC);
    assert_eq!(local_time(&f, friday_utc), "10:30");
    assert!(open_at(&f, friday_utc), "Saturday 10:30 in Auckland");
    let d = f.decide(&call_at(CALLER, friday_utc));
    assert!(
        explains(&d, "Sat 10:00–12:00 Pacific/Auckland"),
        "{:?}",
        d.explanation()
    );
    // Friday 10:00 in Auckland is Thursday 22:00 UTC.
    assert!(open_at(&f, datetime!(2026-06-04 22:00 UTC)));
    assert!(
        !open_at(&f, datetime!(2026-06-05 10:00 UTC)),
        "Friday 22:00 local"
    );
    // The override is read by the local date: Saturday 2026-06-13 is Friday 12 June in UTC.
    let d = f.decide(&call_at(CALLER, datetime!(2026-06-12 22:30 UTC)));
    assert_eq!(d.rule, Rule::AfterHours);
    assert!(
        explains(&d, "2026-06-13 (override) closed all day Pacific/Auckland"),
        "{:?}",
        d.explanation()
    );
}

/// An override on a DST-change day is read in that day's wall-clock time: Europe/Berlin
/// springs forward on Sunday 2026-03-29 at 02:00 CET (01:00 UTC), Pacific/Auckland falls back
/// on Sunday 2026-04-05 at 03:00 NZDT (14:00 UTC on the 4th).
#[test]
fn an_override_on_a_dst_change_day() {
    let berlin = business(
        "Europe/Berlin",
        schedule(None, &[], &[("2026-03-29", &[("01:00", "04:00")])]),
    );
    assert!(!open_at(&berlin, datetime!(2026-03-28 23:59 UTC))); // 00:59 CET
    assert!(open_at(&berlin, datetime!(2026-03-29 00:00 UTC))); // 01:00 CET
    assert_eq!(
        local_time(&berlin, datetime!(2026-03-29 01:00 UTC)),
        "03:00"
    );
    assert!(open_at(&berlin, datetime!(2026-03-29 01:59 UTC))); // 03:59 CEST
    assert!(!open_at(&berlin, datetime!(2026-03-29 02:00 UTC))); // 04:00 CEST
    // The week without the override is closed that Sunday of the next week.
    assert!(!open_at(&berlin, datetime!(2026-04-05 00:30 UTC)));

    let auckland = business(
        "Pacific/Auckland",
        schedule(
            None,
            &[("sun", &[("09:00", "17:00")])],
            &[("2026-04-05", &[("02:00", "03:00")])],
        ),
    );
    // 02:00–03:00 happens twice that night: 13:00–14:00 UTC (NZDT) and 14:00–15:00 (NZST).
    assert!(!open_at(&auckland, datetime!(2026-04-04 12:59 UTC)));
    assert!(open_at(&auckland, datetime!(2026-04-04 13:30 UTC)));
    assert!(open_at(&auckland, datetime!(2026-04-04 14:30 UTC)));
    assert_eq!(
        local_time(&auckland, datetime!(2026-04-04 14:30 UTC)),
        "02:30"
    );
    assert!(!open_at(&auckland, datetime!(2026-04-04 15:00 UTC))); // 03:00 NZST
    // The override replaces the Sunday hours: 10:00 that day is closed.
    assert!(!open_at(&auckland, datetime!(2026-04-04 22:00 UTC)));
    // The next Sunday, the weekly hours again.
    assert!(open_at(&auckland, datetime!(2026-04-11 22:00 UTC)));
}

/// 29 February: an override on it applies on that date only, and the weekday of 2028-02-29
/// (a Tuesday) is read right.
#[test]
fn the_29th_of_february() {
    let f = business(
        "America/New_York",
        schedule(
            None,
            &[
                ("mon", &[("09:00", "17:00")]),
                ("tue", &[("09:00", "17:00")]),
                ("wed", &[("09:00", "17:00")]),
            ],
            &[("2028-02-29", &[])],
        ),
    );
    // Noon EST is 17:00 UTC.
    assert!(open_at(&f, datetime!(2028-02-28 17:00 UTC)));
    let d = f.decide(&call_at(CALLER, datetime!(2028-02-29 17:00 UTC)));
    assert_eq!(d.rule, Rule::AfterHours);
    assert!(
        explains(&d, "2028-02-29 (override) closed all day America/New_York"),
        "{:?}",
        d.explanation()
    );
    assert!(open_at(&f, datetime!(2028-03-01 17:00 UTC)));
    // Without the override, 29 February 2028 is an ordinary Tuesday.
    let plain = business(
        "America/New_York",
        schedule(None, &[("tue", &[("09:00", "17:00")])], &[]),
    );
    assert!(open_at(&plain, datetime!(2028-02-29 17:00 UTC)));
    let d = plain.decide(&call_at(CALLER, datetime!(2028-02-29 17:00 UTC)));
    assert!(
        explains(&d, "Tue 09:00–17:00 America/New_York"),
        "{:?}",
        d.explanation()
    );
    // 29 February 2028 late evening in Auckland is still the 29th there, and 1 March is a
    // Wednesday.
    let auckland = business(
        "Pacific/Auckland",
        schedule(None, &[], &[("2028-02-29", &[("00:00", "24:00")])]),
    );
    assert!(open_at(&auckland, datetime!(2028-02-29 10:59 UTC))); // 23:59 NZDT
    assert!(!open_at(&auckland, datetime!(2028-02-29 11:00 UTC))); // 1 March 00:00
}
