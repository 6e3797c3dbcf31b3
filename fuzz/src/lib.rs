//! The oracles of the fuzz targets, one module per target (`fuzz_targets/<name>.rs` only calls
//! `<name>::check`): each decodes raw fuzzer bytes into the input it stands for and asserts the
//! invariants of the code under test. A new target is a module here, a file under
//! `fuzz_targets/`, a `[[bin]]` in Cargo.toml and seeds under `corpus/<name>/`.

pub mod composer_identity;
pub mod tree_to_archive;
