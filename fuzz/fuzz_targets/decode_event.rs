//! Fuzz target `decode_event`: see `src/harness.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = switchboard_fuzz::decode_event(data);
});
