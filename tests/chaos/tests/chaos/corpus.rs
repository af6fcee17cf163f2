//! The fuzz corpora checked in under `fuzz/corpus/<target>/` replayed through the very harness
//! the cargo-fuzz targets run (`fuzz/src/harness.rs`): no input panics, every input yields a
//! result, and the seeds that are valid (the proto examples, Twilio's published signature
//! example) are accepted.

use crate::harness;
use std::path::PathBuf;
use switchboard_contracts::{CallRoute, EventData};

/// Every file of one target's corpus, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: only {} seeds",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `f` over every file of `target`'s corpus; fails naming every input that panicked.
fn replay<R: std::fmt::Debug>(target: &str, f: fn(&[u8]) -> R) -> Vec<(String, R)> {
    let mut results = Vec::new();
    let mut panicked = Vec::new();
    for (name, data) in corpus(target) {
        match std::panic::catch_unwind(|| f(&data)) {
            Ok(result) => {
                eprintln!("{target}/{name}: {result:?}");
                results.push((name, result));
            }
            Err(_) => panicked.push(name),
        }
    }
    assert!(
        panicked.is_empty(),
        "{target}: inputs that panic: {panicked:?}"
    );
    results
}

/// Given the decode corpus (every proto example plus malformed seeds), when each input goes
/// through `RawEnvelope::parse`, every typed `Envelope::<T>::decode` and `SettingsChange::decode`,
/// then nothing panics, each decoder answers, every proto example decodes as its own type
/// (and survives re-encoding), and the malformed seeds are refused as `malformed`.
#[test]
fn the_event_decoding_corpus_replays_without_a_panic() {
    let results = replay("decode_event", harness::decode_event);
    for (name, lines) in &results {
        assert_eq!(lines.len(), 8, "{name}: {lines:?}");
        if let Some(example) = name.strip_prefix("switchboard.") {
            // switchboard.<kind>.<name>.v<N>[.<variant>].json
            let parts: Vec<&str> = example.split('.').collect();
            let event_type = format!("switchboard.{}", parts[..3].join("."));
            let own_line = if event_type.starts_with("switchboard.settings.")
                && !event_type.ends_with(".rejected.v1")
            {
                "settings: ok".to_string()
            } else if CallRoute::EARLIER_TYPES.contains(&event_type.as_str()) {
                // History (v1 decisions) is decoded by today's type.
                format!("{}: ok", CallRoute::TYPE)
            } else {
                format!("{event_type}: ok")
            };
            assert!(
                lines.iter().any(|l| l.starts_with(&own_line)),
                "{name} is not decoded as {event_type}: {lines:?}"
            );
        }
    }
    for name in ["empty", "truncated", "array"] {
        let (_, lines) = results.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(lines[0], "raw: malformed", "{name}");
    }
}

/// Given the phone corpus, when each input is normalized, then nothing panics and national
/// numbers of their region, E.164 numbers and withheld callers come out as expected.
#[test]
fn the_phone_corpus_replays_without_a_panic() {
    let results = replay("phone", harness::phone);
    for (name, expected) in [
        ("e164-us", "phone: ok (strict true"),
        ("national-us", "phone: ok (strict false"),
        ("national-gb", "phone: ok (strict false"),
        ("withheld", "phone: refused"),
        ("empty", "phone: refused"),
    ] {
        let (_, result) = results.iter().find(|(n, _)| n == name).unwrap();
        assert!(result.starts_with(expected), "{name}: {result}");
    }
}

/// Given the Twilio corpus, when each body is parsed as the gateway parses it and its signature
/// checked with the gateway's `signature` module, then nothing panics, and Twilio's published
/// example (token, URL, parameters, signature) verifies while a wrong header does not.
#[test]
fn the_twilio_form_corpus_replays_without_a_panic() {
    let results = replay("twilio_form", harness::twilio_form);
    let find = |name: &str| results.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(
        find("twilio-published-example").contains("5 params, signed true"),
        "{}",
        find("twilio-published-example")
    );
    assert!(find("voice-webhook").contains("signed false, To Some(true)"));
    assert!(find("dial-status").contains("DialCallStatus Some(Some(\"no_answer\"))"));
}
