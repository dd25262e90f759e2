//! Any bytes as the policy file: parsed (UTF-8 only, as the service reads it) and, if it parses, run
//! through the engine. See `landsby_domain::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        landsby_domain::fuzz::policy_text(text);
    }
});
