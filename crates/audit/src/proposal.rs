//! Settings files: a JSON array of `{"type": "switchboard.settings.<kind>.v1", "data": {…}}`,
//! what `switchboard settings apply` publishes and `switchboard what-if` tries out.

use crate::AuditError;
use serde::Deserialize;
use switchboard_contracts::{
    CompanySettings, ContactSettings, EventData, NumberSettings, SettingsChange, UserSettings,
};

/// One item: exactly `type` and `data` (a typo such as `"date"` is refused by name).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
}

/// Strictly (people type these files): an unknown field is refused by name with the fields
/// allowed, a wrong type names its field.
fn typed<T: EventData>(index: usize, data: serde_json::Value) -> Result<T, AuditError> {
    let value: T = switchboard_contracts::strict::from_value(data).map_err(|e| {
        AuditError::BadInput(format!("item {index}: invalid data for {}: {e}", T::TYPE))
    })?;
    value
        .validate()
        .map_err(|e| AuditError::BadInput(format!("item {index}: invalid {}: {e}", T::TYPE)))?;
    Ok(value)
}

/// Parses and validates a settings file's text; items are numbered from 1 in errors.
pub fn parse_settings_file(text: &str) -> Result<Vec<SettingsChange>, AuditError> {
    let items: Vec<Item> = serde_json::from_str(text).map_err(|e| {
        AuditError::BadInput(format!(
            "not a JSON array of {{\"type\": …, \"data\": {{…}}}} objects: {e}"
        ))
    })?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let n = i + 1;
            Ok(match item.event_type.as_str() {
                CompanySettings::TYPE => SettingsChange::Company(typed(n, item.data)?),
                NumberSettings::TYPE => SettingsChange::Number(typed(n, item.data)?),
                UserSettings::TYPE => SettingsChange::User(typed(n, item.data)?),
                ContactSettings::TYPE => SettingsChange::Contact(typed(n, item.data)?),
                other => {
                    return Err(AuditError::BadInput(format!(
                        "item {n}: unknown settings type {other:?} (expected \
                         switchboard.settings.{{company,number,user,contact}}.v1)"
                    )));
                }
            })
        })
        .collect()
}
