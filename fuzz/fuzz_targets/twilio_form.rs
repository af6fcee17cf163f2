//! Fuzz target `twilio_form`: see `src/harness.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = switchboard_fuzz::twilio_form(data);
});
