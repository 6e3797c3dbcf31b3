//! Fuzz target: composer.json names and versions through Composer's rules and the archive-key
//! rules; see [`farm_fuzz::composer_identity`] for the format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| farm_fuzz::composer_identity::check(data));
