//! Fuzz target: arbitrary tree entries (name bytes, mode, data) through git's path rules and the
//! zip writer; see [`farm_fuzz::tree_to_archive`] for the format and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| farm_fuzz::tree_to_archive::check(data));
