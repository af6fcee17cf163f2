//! Strict reading of what people type (API bodies, settings files): an unknown field is refused
//! by name with the fields allowed, a wrong type names its field, and the body must be a JSON
//! object (serde's derive would also take a JSON array, field by field in order). Consumers of
//! the streams stay tolerant of unknown fields, as the contract says; strictness is for input.

use crate::ContractError;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The field names of a `#[derive(Deserialize)]` struct, read from what its derive passes to
/// `deserialize_struct` (so the list is the type's own, never a copy to keep in step).
pub fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

/// Reads `value` (a JSON object) as `T`, refusing fields `T` does not have and naming the
/// field of a wrong type.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ContractError> {
    let serde_json::Value::Object(object) = &value else {
        return Err(ContractError::Malformed(format!(
            "expected a JSON object, found {}",
            kind(&value)
        )));
    };
    let allowed = fields::<T>();
    if let Some(field) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ContractError::UnknownField {
            field: field.clone(),
            allowed,
        });
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ContractError::Malformed(inner.to_string())
        } else {
            ContractError::Malformed(format!("`{path}`: {inner}"))
        }
    })
}

/// [`from_value`] of a JSON body.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ContractError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ContractError::Malformed(format!("not JSON: {e}")))?;
    from_value(value)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CompanySettings, ContactSettings, NumberSettings, UserSettings};

    /// Every settings type's field list is read from its derive (an empty list would refuse
    /// every field as unknown).
    #[test]
    fn every_settings_type_lists_its_fields() {
        for (kind, fields) in [
            ("company", fields::<CompanySettings>()),
            ("number", fields::<NumberSettings>()),
            ("user", fields::<UserSettings>()),
            ("contact", fields::<ContactSettings>()),
        ] {
            assert!(
                fields.contains(&"tenant_id") && fields.contains(&"version"),
                "{kind}: {fields:?}"
            );
        }
        assert!(fields::<CompanySettings>().contains(&"business_hours"));
        assert!(fields::<ContactSettings>().contains(&"assigned_user_id"));
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_named() {
        assert!(fields::<UserSettings>().contains(&"ring_only_in_working_hours"));
        let user = serde_json::json!({
            "tenant_id": "acme", "version": 2, "user_id": "u-1", "phone": null, "active": true,
            "availble": false
        });
        let err = from_value::<UserSettings>(user).unwrap_err();
        assert_eq!(err.code(), "unknown_field");
        let text = err.to_string();
        assert!(
            text.contains("`availble`") && text.contains("`available`"),
            "{text}"
        );

        let number =
            serde_json::json!({"tenant_id": "acme", "version": "two", "number": "+16502530000"});
        let err = from_value::<NumberSettings>(number)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`version`"), "{err}");

        let array = serde_json::json!(["acme", 1, "+16502530000"]);
        let err = from_value::<NumberSettings>(array).unwrap_err().to_string();
        assert!(
            err.contains("expected a JSON object, found an array"),
            "{err}"
        );
    }
}
