//! Shared by the conformance tests: the compiled proto files, the one map from CloudEvents type
//! to proto message, strict validation of `data` against a message, and the examples.

use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor};
use serde_json::Value;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use switchboard_contracts::{
    CallDial, CallInbound, CallMissed, CallRejected, CallRoute, CallStatus, CompanySettings,
    ContactSettings, ContractError, Envelope, EventData, NumberSettings, RawEnvelope,
    SettingsRejected, UserSettings,
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The proto include root.
pub fn proto_dir() -> PathBuf {
    workspace_root().join("proto")
}

/// Every `.proto` file under `proto/switchboard`, relative to [`proto_dir`], sorted.
pub fn proto_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "proto") {
                out.push(path);
            }
        }
    }
    let root = proto_dir();
    let mut files = Vec::new();
    walk(&root.join("switchboard"), &mut files);
    let mut names: Vec<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("under proto/")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    names.sort();
    names
}

/// Compiles every proto file in pure Rust (no `protoc`), with source info (comments).
pub fn compile() -> Result<protox::Compiler, protox::Error> {
    let mut compiler = protox::Compiler::new([proto_dir()])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(proto_files())?;
    Ok(compiler)
}

/// The compiled descriptors, compiled once per test binary.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| match compile() {
        Ok(compiler) => compiler.descriptor_pool(),
        Err(e) => panic!("proto/ does not compile: {e:?}"),
    })
}

/// A proto message by full name.
pub fn message(name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("no message {name} in proto/"))
}

/// What the typed Rust decoder made of an envelope.
#[derive(Debug)]
pub struct Decoded {
    /// The envelope's `id`.
    pub id: String,
    /// The envelope's `subject`.
    pub subject: String,
    /// The NATS subject the data requires (and the body was decoded on).
    pub nats_subject: String,
    /// `event_id()` of the decoded data.
    pub event_id: String,
    /// `ce_subject()` of the decoded data.
    pub ce_subject: String,
}

/// One event type of the contract: its CloudEvents type, its proto message, its Rust decoder.
pub struct Contract {
    /// CloudEvents `type` (the Rust `EventData::TYPE`).
    pub event_type: &'static str,
    /// Full name of the proto message of its `data`.
    pub message: &'static str,
    /// Decodes a body with `Envelope::<T>::decode` on the subject its data requires.
    pub decode: fn(&[u8]) -> Result<Decoded, ContractError>,
}

fn contract<T: EventData + Debug>(message: &'static str) -> Contract {
    Contract {
        event_type: T::TYPE,
        message,
        decode: decode_as::<T>,
    }
}

/// THE map from event type to proto message: every event type the Rust code defines. The two
/// rejection types share `Rejection` (their Rust types are serde-transparent wrappers of one
/// struct).
pub fn contracts() -> [Contract; 11] {
    [
        contract::<CallInbound>("switchboard.v1.CallInbound"),
        contract::<CallRoute>("switchboard.v2.CallRoute"),
        contract::<CallStatus>("switchboard.v1.CallStatus"),
        contract::<CallDial>("switchboard.v1.CallDial"),
        contract::<CallMissed>("switchboard.v1.CallMissed"),
        contract::<CallRejected>("switchboard.v1.Rejection"),
        contract::<CompanySettings>("switchboard.v1.CompanySettings"),
        contract::<NumberSettings>("switchboard.v1.NumberSettings"),
        contract::<UserSettings>("switchboard.v1.UserSettings"),
        contract::<ContactSettings>("switchboard.v1.ContactSettings"),
        contract::<SettingsRejected>("switchboard.v1.Rejection"),
    ]
}

/// The contract of an event type.
pub fn contract_of(event_type: &str) -> Option<Contract> {
    contracts().into_iter().find(|c| c.event_type == event_type)
}

/// The proto message of `T`'s data, from [`contracts`].
pub fn message_of<T: EventData>() -> &'static str {
    contract_of(T::TYPE)
        .unwrap_or_else(|| panic!("{} is not in contracts()", T::TYPE))
        .message
}

/// Types `body` as `T`, the way a consumer subscribed to the right subject would.
pub fn decode_as<T: EventData + Debug>(body: &[u8]) -> Result<Decoded, ContractError> {
    let raw = RawEnvelope::parse(body)?;
    let data: T = serde_json::from_value(raw.data)
        .map_err(|e| ContractError::Malformed(format!("`data` of {}: {e}", T::TYPE)))?;
    let nats_subject = data.nats_subject();
    let env = Envelope::<T>::decode(body, &nats_subject)?;
    Ok(Decoded {
        id: env.id,
        subject: env.subject,
        event_id: env.data.event_id(),
        ce_subject: env.data.ce_subject(),
        nats_subject,
    })
}

/// Validates `data` as the proto3 JSON of `message_name`, strictly: unknown fields are denied,
/// and — beyond what proto3 JSON parsers require, matching what contract v1 accepts — enum
/// values must be names (not numbers) and never the `*_unspecified` zero value, and `null` is
/// only accepted for fields with presence (`optional` scalars and message fields).
pub fn validate(message_name: &str, data: &Value) -> Result<DynamicMessage, String> {
    let desc = message(message_name);
    let msg =
        DynamicMessage::deserialize_with_options(desc.clone(), data, &DeserializeOptions::new())
            .map_err(|e| e.to_string())?;
    check_strict(&desc, data)?;
    Ok(msg)
}

fn check_strict(desc: &MessageDescriptor, data: &Value) -> Result<(), String> {
    let Value::Object(map) = data else {
        return Ok(());
    };
    for (key, value) in map {
        let Some(field) = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key))
        else {
            continue;
        };
        let values: Vec<&Value> = match value {
            Value::Array(items) if field.is_list() => items.iter().collect(),
            Value::Null if field.supports_presence() => Vec::new(),
            Value::Null => {
                return Err(format!(
                    "`{key}`: null for a field without presence; omit it instead"
                ));
            }
            other => vec![other],
        };
        for v in values {
            match field.kind() {
                Kind::Enum(e) => match v {
                    Value::String(name)
                        if e.get_value_by_name(name).is_some_and(|ev| ev.number() != 0) => {}
                    other => {
                        return Err(format!(
                            "`{key}`: {other} is not a valid {} name",
                            e.full_name()
                        ));
                    }
                },
                Kind::Message(m) if !m.full_name().starts_with("google.protobuf.") => {
                    check_strict(&m, v)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Every file of `proto/examples` as `(file name, body)`, sorted by name.
pub fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = proto_dir().join("examples");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, body)
        })
        .filter(|(name, _)| name.ends_with(".json"))
        .collect();
    out.sort();
    out
}

/// The body of `proto/examples/<name>` as JSON.
pub fn example_json(name: &str) -> Value {
    let (_, body) = examples()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no example {name}"));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A structured-mode envelope around `data`, with the id and subject it should have.
pub fn envelope(event_type: &str, id: &str, subject: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "/test/producer",
        "type": event_type,
        "time": "2025-03-14T16:20:05Z",
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
    }))
    .expect("JSON")
}

/// Sets `path` (`a.b`, object keys) in `data` to `value`.
pub fn set_path(data: &mut Value, path: &str, value: Value) {
    match path.split_once('.') {
        Some((head, rest)) => set_path(&mut data[head], rest, value),
        None => data[path] = value,
    }
}
