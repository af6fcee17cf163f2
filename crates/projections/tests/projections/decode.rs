//! The one SETTINGS decoder (`switchboard_projections::decode`), which the follower applies
//! with and the audit rebuilds settings with: what is applied, skipped or refused.

use crate::support::*;
use switchboard_contracts::{
    ContractError, Envelope, EventData, Rejection, SettingsChange, SettingsRejected, UserSettings,
};
use switchboard_projections::{Decoded, MAX_VERSION, Record, decode};
use time::macros::datetime;

fn body<T: EventData>(data: T) -> (String, Vec<u8>) {
    let envelope = Envelope::new(data, "/switchboard/test", datetime!(2026-11-22 09:00 UTC));
    (envelope.data.nats_subject(), envelope.to_json().unwrap())
}

fn user_with_version(version: u64) -> UserSettings {
    let SettingsChange::User(mut u) = user("acme", "u1", 1, Some("+12064561234")) else {
        unreachable!()
    };
    u.version = version;
    u
}

#[test]
fn a_settings_event_is_a_change_to_apply() {
    let change = user("acme", "u1", 3, Some("+12064561234"));
    let SettingsChange::User(u) = change.clone() else {
        unreachable!()
    };
    let (subject, payload) = body(u);
    assert_eq!(
        decode::decode(&subject, &payload),
        Decoded::Change(change.clone())
    );
    assert_eq!(Record::decode(7, &subject, &payload), record(7, change));
}

#[test]
fn a_version_the_store_cannot_hold_is_refused() {
    let (subject, payload) = body(user_with_version(MAX_VERSION));
    assert!(matches!(
        decode::decode(&subject, &payload),
        Decoded::Change(_)
    ));
    let (subject, payload) = body(user_with_version(MAX_VERSION + 1));
    assert_eq!(
        decode::decode(&subject, &payload),
        Decoded::Reject(ContractError::Malformed(
            "`version` exceeds 9223372036854775807".into()
        ))
    );
    assert_eq!(Record::decode(8, &subject, &payload), skipped(8));
}

#[test]
fn rejection_records_are_skipped_only_on_their_own_subjects() {
    let error = ContractError::Malformed("not JSON".into());
    let rejection = SettingsRejected(Rejection::new(
        "SETTINGS",
        4,
        "settings.acme.user.u1",
        b"{",
        &error,
    ));
    let (subject, payload) = body(rejection);
    assert_eq!(subject, "settings.acme.rejected.4");
    assert_eq!(decode::decode(&subject, &payload), Decoded::Skip);
    assert_eq!(Record::decode(9, &subject, &payload), skipped(9));
    // The same record on an entity's subject is not ours: refused.
    assert!(matches!(
        decode::decode("settings.acme.user.u1", &payload),
        Decoded::Reject(ContractError::UnexpectedType { .. })
    ));
    // Anything undecodable is refused.
    assert!(matches!(
        decode::decode("settings.acme.user.u1", b"{"),
        Decoded::Reject(ContractError::Malformed(_))
    ));
}
