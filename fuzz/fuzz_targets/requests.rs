//! Any bytes as one of landsby's request messages (the first byte picks which), as a server decodes
//! them. See `landsby_proto::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    landsby_proto::fuzz::decode_any_request(data);
});
