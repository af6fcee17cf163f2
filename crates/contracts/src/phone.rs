//! Phone numbers: normalization to E.164 (with the `phonenumber` crate and the tenant's default
//! region for national-format input) and masking for logs and traces.
//!
//! **Possible, not necessarily known.** A number is accepted when it parses and its length is
//! one the country code's numbers can have ([`E164::parse`]): the phone-number metadata lags
//! the numbering plans (new area codes appear every year), so a call is never refused because
//! the metadata does not know its number. Whether the metadata calls a number valid (an
//! assigned range) is [`E164::is_known_valid`], which `switchboard lint` reports on.
//!
//! **Masking.** [`mask`] (and `E164`'s `Display` and `Debug`) is the fixed masked form that
//! data and people-facing output use (decision reasons, errors, the CLI). Logs and span
//! attributes use [`logged`] / [`E164::logged`], whose form the operator chooses once per
//! process ([`set_log_form`]: masked by default, or the last four digits for support staff).

use crate::ContractError;
use compact_str::CompactString;
use phonenumber::metadata::DATABASE;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// Why a string is not a usable phone number.
///
/// As data (in a decision's reasons): `{"problem": "unparseable", "detail": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "problem", content = "detail", rename_all = "snake_case")]
pub enum PhoneError {
    /// Empty, `anonymous` or similar: the caller withheld the number.
    #[error("no number (withheld or empty)")]
    Withheld,
    /// The string does not parse as a phone number.
    #[error("not a phone number: {0}")]
    Unparseable(String),
    /// It parses, but no such number can exist: its length is not one its country code's
    /// numbers have (too short, too long, a local number without its area code). On the wire
    /// `invalid` (the name predates the leniency: a number the metadata merely does not know
    /// is accepted, see [`E164::parse`]).
    #[error("not a possible number: wrong number of digits for its country code")]
    Invalid,
}

/// An ISO 3166-1 alpha-2 region used to read numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// The default when a tenant configured none: the United States.
    pub const DEFAULT: Region = Region(phonenumber::country::Id::US);

    /// Parses an ISO 3166-1 alpha-2 code such as `US` or `GB`.
    pub fn parse(code: &str) -> Option<Region> {
        phonenumber::country::Id::from_str(&code.to_ascii_uppercase())
            .ok()
            .map(Region)
    }
}

impl Default for Region {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Caller-id values carriers use when the number is withheld.
const WITHHELD: [&str; 5] = [
    "anonymous",
    "restricted",
    "unknown",
    "private",
    "unavailable",
];

/// The same words spelled on a phone keypad, as Twilio sends them in `From` for a withheld
/// caller id (`+266696687` is ANONYMOUS, `+7378742833` RESTRICTED, `+8656696` UNKNOWN,
/// `+2562533` BLOCKED, `+86282452253` UNAVAILABLE): numbers in form, but nobody's, so a
/// company's `anonymous_callers` policy must see them as withheld.
const WITHHELD_SPELLED: [&str; 5] = [
    "+266696687",
    "+7378742833",
    "+8656696",
    "+2562533",
    "+86282452253",
];

fn is_withheld(raw: &str) -> bool {
    raw.is_empty()
        || WITHHELD.iter().any(|w| raw.eq_ignore_ascii_case(w))
        || WITHHELD_SPELLED.contains(&raw)
}

/// A phone number in E.164 form (`+` and up to 15 digits). Its `Display` is masked; use
/// [`E164::as_str`] where the full number is needed (events, carrier requests), never in logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164(CompactString);

impl E164 {
    /// Normalizes `raw` to E.164, reading national numbers in `region`: the one reading of a
    /// number wherever numbers are accepted (carriers' webhooks, the API, settings, events,
    /// `switchboard call`).
    ///
    /// Accepted: a number that parses and is *possible*, i.e. its national significant number
    /// has one of the lengths the metadata lists for its country code (libphonenumber's
    /// `isPossibleNumber`: the lengths of every number type of the code's main country;
    /// lengths that are only dialable locally, without the area code, do not count), and it
    /// has at most 15 digits in all (E.164's limit). Whether the metadata knows the number's
    /// range plays no part here: see [`E164::is_known_valid`].
    pub fn parse(raw: &str, region: Region) -> Result<E164, PhoneError> {
        let trimmed = raw.trim();
        if is_withheld(trimmed) {
            return Err(PhoneError::Withheld);
        }
        // A number in international form carries its country: read it without a region, whose
        // metadata would otherwise decide validity (a valid +44 number failed under US).
        let region = (!trimmed.starts_with('+')).then_some(region.0);
        let parsed = phonenumber::parse(region, trimmed)
            .map_err(|e| PhoneError::Unparseable(e.to_string()))?;
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        let code = parsed.code().value();
        // `+`, the country code, then the national significant number (leading zeros kept); at
        // most 15 digits in all (E.164's limit, which some countries' metadata lengths exceed).
        let national = e164.len().saturating_sub(1 + code.to_string().len());
        if e164.len() > 16 || !possible_length(code, national) {
            return Err(PhoneError::Invalid);
        }
        Ok(E164(CompactString::from(e164)))
    }

    /// [`E164::parse`] for a field of a request, a webhook or an event: the error names the
    /// field and masks the value (`invalid_phone`). The gateway's webhooks and API and
    /// `switchboard call` read the dialed number with it, so they accept exactly the same.
    pub fn accept(field: &'static str, raw: &str, region: Region) -> Result<E164, ContractError> {
        E164::parse(raw, region).map_err(|e| ContractError::InvalidPhone {
            field,
            masked: mask(raw),
            reason: match e {
                PhoneError::Withheld => "withheld or empty".to_string(),
                other => other.to_string(),
            },
        })
    }

    /// Whether the phone-number metadata knows this number: its range is assigned as the
    /// `phonenumber` crate's metadata (libphonenumber's) says. A number it does not know is
    /// still accepted and dialed (the metadata lags new area codes); `switchboard lint` warns
    /// about such numbers in settings, where a typo is the likelier cause.
    pub fn is_known_valid(&self) -> bool {
        phonenumber::parse(None, self.0.as_str()).is_ok_and(|n| phonenumber::is_valid(&n))
    }

    /// A lookup key for `raw` without the cost of full parsing when `raw` is already in
    /// canonical E.164 form (`+`, a non-zero digit, 7 to 14 more digits), as carriers send
    /// numbers. Such a key is not checked for validity: use it only to look up numbers that
    /// were validated when stored (a miss then means "unknown"). Other input is parsed.
    pub fn lookup_key(raw: &str, region: Region) -> Result<E164, PhoneError> {
        let bytes = raw.as_bytes();
        let canonical = bytes.len() >= 9
            && bytes.len() <= 16
            && bytes[0] == b'+'
            && bytes[1] != b'0'
            && bytes[1..].iter().all(u8::is_ascii_digit);
        if canonical && !WITHHELD_SPELLED.contains(&raw) {
            Ok(E164(CompactString::from(raw)))
        } else {
            Self::parse(raw, region)
        }
    }

    /// Parses a number that must already be in E.164 form (leading `+`).
    pub fn parse_strict(raw: &str) -> Result<E164, PhoneError> {
        if !raw.starts_with('+') {
            return Err(PhoneError::Unparseable(
                "expected E.164 form with a leading +".into(),
            ));
        }
        let number = Self::parse(raw, Region::DEFAULT)?;
        if number.0 != raw {
            return Err(PhoneError::Unparseable(format!(
                "not in canonical E.164 form (expected {})",
                number.masked()
            )));
        }
        Ok(number)
    }

    /// The full number. Only for events and carrier requests, never for logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`: the token used in NATS subjects.
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }

    /// The number with its middle hidden ([`mask`]): for data and people-facing output. Logs
    /// and span attributes use [`E164::logged`].
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// The number as logs and span attributes show it: in the process's [`LogForm`].
    pub fn logged(&self) -> Logged<'_> {
        logged(&self.0)
    }
}

/// Whether a national significant number of `len` digits is possible for country `code`: one
/// of the lengths of the number types (fixed line, mobile, toll free, …) of the code's main
/// country, as libphonenumber's `isPossibleNumber` reads them; local-only lengths excluded.
/// A code the metadata does not know has no possible number.
fn possible_length(code: u16, len: usize) -> bool {
    let Ok(len) = u16::try_from(len) else {
        return false;
    };
    let Some(countries) = DATABASE.by_code(&code) else {
        return false;
    };
    let Some(main) = countries
        .iter()
        .find(|m| m.is_main_country_for_code())
        .or(countries.first())
    else {
        return false;
    };
    let d = main.descriptors();
    [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ]
    .into_iter()
    .flatten()
    .any(|kind| kind.possible_length().contains(&len))
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, &self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E164(")?;
        write_masked(f, &self.0)?;
        f.write_str(")")
    }
}

/// Masks any string that may hold a phone number: keeps the first three and last two
/// characters of what is long enough to identify a person, stars the rest
/// (`+14*******10`). The fixed form: data (decision reasons, errors) and people-facing output
/// never depend on the process's [`LogForm`].
pub fn mask(raw: &str) -> String {
    let mut masked = String::with_capacity(raw.len());
    // Writing to a String cannot fail.
    let _ = write_masked(&mut masked, raw);
    masked
}

/// [`mask`] written straight into `out`: explanations and logs mask numbers on every
/// decision, so this path does not allocate.
fn write_masked(out: &mut impl fmt::Write, raw: &str) -> fmt::Result {
    let len = raw.chars().count();
    if len <= 6 {
        for _ in 0..len {
            out.write_char('*')?;
        }
        return Ok(());
    }
    let (head, tail) = (3, 2);
    for (i, c) in raw.chars().enumerate() {
        out.write_char(if i < head || i >= len - tail { c } else { '*' })?;
    }
    Ok(())
}

/// How phone numbers appear in logs and span attributes: the operator's choice, one per
/// process (`SWITCHBOARD_LOG_NUMBERS`, read by every service at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogForm {
    /// [`mask`]'s form, `+14*******10`: the default.
    #[default]
    Masked,
    /// The country code's first digit and the last four digits, `+1******5310`: for support
    /// staff who match a number to a CRM record. Strings too short to hide four characters
    /// this way (under 10) keep the masked form.
    LastFour,
}

impl LogForm {
    /// Every form, in the order help texts list them.
    pub const ALL: [LogForm; 2] = [LogForm::Masked, LogForm::LastFour];

    /// The name operators write: `masked` or `last-four`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogForm::Masked => "masked",
            LogForm::LastFour => "last-four",
        }
    }

    /// The form named `name` exactly (no other spelling: a typo must not pass unnoticed).
    pub fn parse(name: &str) -> Option<LogForm> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for LogForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

static LOG_FORM: OnceLock<LogForm> = OnceLock::new();

/// Sets the process's [`LogForm`], once, at start. `false` (and no change) when another form
/// was set before: the first one stays.
pub fn set_log_form(form: LogForm) -> bool {
    *LOG_FORM.get_or_init(|| form) == form
}

/// The process's [`LogForm`]: [`LogForm::Masked`] unless [`set_log_form`] said otherwise.
pub fn log_form() -> LogForm {
    LOG_FORM.get().copied().unwrap_or_default()
}

/// `raw` (anything that may hold a phone number) as logs and span attributes show it: in the
/// process's [`LogForm`]. `Display` and `Debug` alike, so `%` and `?` fields both work.
pub fn logged(raw: &str) -> Logged<'_> {
    Logged {
        raw,
        form: log_form(),
    }
}

/// [`logged`] in a given form.
pub fn logged_as(raw: &str, form: LogForm) -> Logged<'_> {
    Logged { raw, form }
}

/// A number as logs show it (see [`logged`]); writes without allocating.
#[derive(Clone, Copy)]
pub struct Logged<'a> {
    raw: &'a str,
    form: LogForm,
}

impl fmt::Display for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            LogForm::Masked => write_masked(f, self.raw),
            LogForm::LastFour => write_last_four(f, self.raw),
        }
    }
}

impl fmt::Debug for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// [`LogForm::LastFour`]: the first two characters (`+` and the country code's first digit)
/// and the last four, the rest starred; the masked form when fewer than four would be hidden.
fn write_last_four(out: &mut impl fmt::Write, raw: &str) -> fmt::Result {
    let len = raw.chars().count();
    if len < 10 {
        return write_masked(out, raw);
    }
    let (head, tail) = (2, 4);
    for (i, c) in raw.chars().enumerate() {
        out.write_char(if i < head || i >= len - tail { c } else { '*' })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_do_not_depend_on_the_region() {
        // Found by the `phone` fuzz target: valid under GB, refused when read under US.
        let gb = E164::parse("011 7946 0958", Region::parse("GB").unwrap()).unwrap();
        assert_eq!(gb.as_str(), "+441179460958");
        assert_eq!(E164::parse_strict("+441179460958").unwrap(), gb);
        assert_eq!(E164::parse("+441179460958", Region::DEFAULT).unwrap(), gb);
    }

    #[test]
    fn national_numbers_are_read_in_the_region() {
        let us = Region::DEFAULT;
        assert_eq!(
            E164::parse("(415) 867-5310", us).unwrap().as_str(),
            "+14158675310"
        );
        assert_eq!(
            E164::parse("+1 415 867 5310", us).unwrap().as_str(),
            "+14158675310"
        );
        let gb = Region::parse("gb").unwrap();
        assert_eq!(
            E164::parse("020 7946 0018", gb).unwrap().as_str(),
            "+442079460018"
        );
    }

    #[test]
    fn withheld_and_bad_numbers_are_told_apart() {
        let us = Region::DEFAULT;
        assert_eq!(E164::parse("", us), Err(PhoneError::Withheld));
        assert_eq!(E164::parse("Anonymous", us), Err(PhoneError::Withheld));
        assert!(matches!(
            E164::parse("not a number", us),
            Err(PhoneError::Unparseable(_))
        ));
        assert_eq!(E164::parse("+1 200 555 010", us), Err(PhoneError::Invalid));
    }

    /// Issue 16: a number the metadata does not know (an unassigned or brand-new area code) is
    /// accepted when it is possible, and is_known_valid tells it apart.
    #[test]
    fn possible_numbers_the_metadata_does_not_know_are_accepted() {
        let us = Region::DEFAULT;
        // Area codes 555 (never assigned), 200 (N00, unassigned) and 411 (N11, a service
        // code): the metadata calls each invalid, yet each has a NANP number's ten digits.
        for (raw, canonical) in [
            ("+1 555 010 0199", "+15550100199"),
            ("+1 200 555 0100", "+12005550100"),
            ("(411) 555-0100", "+14115550100"),
        ] {
            let metadata = phonenumber::parse(Some(phonenumber::country::Id::US), raw).unwrap();
            assert!(!phonenumber::is_valid(&metadata), "{raw}: the premise");
            let number = E164::parse(raw, us).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(number.as_str(), canonical);
            assert!(!number.is_known_valid(), "{raw}");
            assert_eq!(E164::parse_strict(canonical), Ok(number.clone()));
            assert_eq!(E164::lookup_key(raw, us), Ok(number));
        }
        // Elsewhere too: UK numbers starting 04 are not assigned.
        let gb = E164::parse("+44 4000 000000", us).unwrap();
        assert_eq!(gb.as_str(), "+444000000000");
        assert!(!gb.is_known_valid());
        // Numbers the metadata knows stay known.
        for known in ["+14158675310", "+442079460018", "+393123456789"] {
            assert!(
                E164::parse_strict(known).unwrap().is_known_valid(),
                "{known}"
            );
        }
    }

    /// Impossible numbers (a length no number of the country code has) are still refused,
    /// with an error that says why.
    #[test]
    fn impossible_numbers_are_refused_with_a_clear_error() {
        let us = Region::DEFAULT;
        for raw in [
            "+1 415 867 531",   // nine digits after +1
            "+1 415 867 53100", // eleven
            "867-5310",         // a local number without its area code
            "+44 12",
            "+49 1234 5678 9012 3456",
            "+49 1234 5678 9012 34", // a length of German numbers, but 16 digits with the +49
        ] {
            assert_eq!(E164::parse(raw, us), Err(PhoneError::Invalid), "{raw}");
        }
        assert_eq!(
            PhoneError::Invalid.to_string(),
            "not a possible number: wrong number of digits for its country code"
        );
        assert!(matches!(
            E164::parse("+999 1234 5678", us),
            Err(PhoneError::Unparseable(_))
        ));
        let err = E164::accept("to", "+1 415 867 531", us).unwrap_err();
        assert_eq!(err.code(), "invalid_phone");
        assert_eq!(
            err.to_string(),
            "invalid phone number in `to` (+1 *********31): not a possible number: wrong number \
             of digits for its country code"
        );
        let err = E164::accept("to", " ", us).unwrap_err();
        assert!(err.to_string().ends_with(": withheld or empty"), "{err}");
        assert_eq!(
            E164::accept("to", "+1 555 010 0199", us).unwrap().as_str(),
            "+15550100199"
        );
    }

    #[test]
    fn lookup_keys_skip_parsing_only_for_canonical_numbers() {
        let us = Region::DEFAULT;
        assert_eq!(
            E164::lookup_key("+14158675310", us).unwrap().as_str(),
            "+14158675310"
        );
        assert_eq!(
            E164::lookup_key("(415) 867-5310", us).unwrap().as_str(),
            "+14158675310"
        );
        assert_eq!(E164::lookup_key("anonymous", us), Err(PhoneError::Withheld));
        // Twilio's keypad spellings of a withheld caller id are no one's number.
        for spelled in [
            "+266696687",
            "+7378742833",
            "+8656696",
            "+2562533",
            "+86282452253",
        ] {
            assert_eq!(E164::lookup_key(spelled, us), Err(PhoneError::Withheld));
            assert_eq!(E164::parse(spelled, us), Err(PhoneError::Withheld));
        }
        assert!(E164::lookup_key("+1 415", us).is_err());
        assert!(E164::lookup_key("+0123456789", us).is_err());
    }

    #[test]
    fn strict_parsing_wants_canonical_e164() {
        assert!(E164::parse_strict("+14158675310").is_ok());
        assert!(E164::parse_strict("4158675310").is_err());
        assert!(E164::parse_strict("+1 415 867 5310").is_err());
    }

    #[test]
    fn display_and_debug_mask_the_number() {
        let n = E164::parse("+14158675310", Region::DEFAULT).unwrap();
        assert_eq!(n.to_string(), "+14*******10");
        assert!(!format!("{n:?}").contains("8675"));
        assert_eq!(n.digits(), "14158675310");
        assert_eq!(mask("12345"), "*****");
    }

    #[test]
    fn logs_show_numbers_masked_by_default_or_with_their_last_four_digits() {
        let n = E164::parse_strict("+14158675310").unwrap();
        // The default, unless the process set another form (no test here does).
        assert_eq!(log_form(), LogForm::Masked);
        assert_eq!(n.logged().to_string(), "+14*******10");
        assert_eq!(format!("{:?}", n.logged()), "+14*******10");
        assert_eq!(logged("+14158675310").to_string(), n.to_string());

        let four = |raw| logged_as(raw, LogForm::LastFour).to_string();
        assert_eq!(four("+14158675310"), "+1******5310");
        assert_eq!(
            format!("{:?}", logged_as("+442079460018", LogForm::LastFour)),
            "+4*******0018"
        );
        // Too short to hide four characters besides: the masked form.
        assert_eq!(four("+1555010"), mask("+1555010"));
        assert_eq!(four("123"), "***");
        // The data form never changes.
        assert_eq!(n.masked(), "+14*******10");

        assert_eq!(LogForm::parse("masked"), Some(LogForm::Masked));
        assert_eq!(LogForm::parse("last-four"), Some(LogForm::LastFour));
        for typo in ["Masked", "last_four", "lastfour", ""] {
            assert_eq!(LogForm::parse(typo), None, "{typo}");
        }
        assert_eq!(LogForm::default(), LogForm::Masked);
    }
}
