//! Property test of the tree-to-archive path: arbitrary tree entries (name bytes, mode, data)
//! through git's path rules and the zip writer, checked by the oracle of the `tree_to_archive`
//! fuzz target. One oracle, two drivers: libFuzzer (coverage-guided, `scripts/fuzz.sh`) and
//! proptest here, in every `cargo test`.

#[path = "../../fuzz/src/tree_to_archive.rs"]
pub mod tree_to_archive;

use proptest::prelude::*;
use tree_to_archive::{RawEntry, check, encode};

/// Path components, weighted towards the names git's rules are about.
fn component() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        ".git",
        ".GIT",
        ".Git",
        "git~1",
        "GIT~1",
        ".git.",
        ".git ",
        ".git:x",
        ".g\u{200c}it",
        "\u{feff}.git",
        "..",
        ".",
        "",
        "\\",
        "a\\b",
        "..\\x",
        ".gitattributes",
        ".github",
        ".gitignore",
        "composer.json",
        "0",
        "10",
        "über",
        "a",
        "B.php",
        "a\0b",
    ]);
    prop_oneof![
        3 => interesting.prop_map(str::to_owned),
        2 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        2 => prop::collection::vec(prop::sample::select(b"abAB./\\~: ".to_vec()), 1..6)
            .prop_map(|bytes| String::from_utf8(bytes).expect("ASCII")),
    ]
}

/// A name: components joined by `/` (sometimes with a leading or trailing one), or raw bytes.
fn name() -> impl Strategy<Value = Vec<u8>> {
    let path = (prop::collection::vec(component(), 1..4), any::<bool>(), any::<bool>()).prop_map(
        |(components, leading, trailing)| {
            let joined = components.join("/");
            format!("{}{joined}{}", if leading { "/" } else { "" }, if trailing { "/" } else { "" }).into_bytes()
        },
    );
    prop_oneof![8 => path, 1 => prop::collection::vec(any::<u8>(), 0..12)].prop_map(|mut bytes| {
        bytes.truncate(255);
        bytes
    })
}

fn entry() -> impl Strategy<Value = RawEntry> {
    (prop::sample::select(b"fxdlsq".to_vec()), name(), prop::collection::vec(any::<u8>(), 0..8))
        .prop_map(|(mode, name, data)| RawEntry { mode, name, data })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn tree_entries_to_archive(entries in prop::collection::vec(entry(), 0..10)) {
        check(&encode(&entries));
    }

    #[test]
    fn raw_fuzzer_bytes_to_archive(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes);
    }
}
