//! Property test of composer.json identity: names and versions through Composer's rules and the
//! archive-key rules, checked by the oracle of the `composer_identity` fuzz target (a hand-written
//! reading of Composer's name rules). One oracle, two drivers: libFuzzer (`scripts/fuzz.sh`) and
//! proptest here, in every `cargo test`.

#[path = "../../fuzz/src/composer_identity.rs"]
pub mod composer_identity;

use proptest::prelude::*;

/// Name parts, weighted towards the characters and words the rules are about.
fn part() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        "magento",
        "module-catalog",
        "mage-os",
        "a",
        "0",
        "con",
        "LPT1",
        "x.json",
        "a--b",
        "a---b",
        "a_-b",
        "-a",
        "a-",
        "A",
        "ä",
        "a b",
        "a~dev",
        "a?#",
        "",
        ".",
        "..",
    ]);
    prop_oneof![
        3 => interesting.prop_map(str::to_owned),
        3 => prop::collection::vec(prop::sample::select(b"ab09-_.~A /".to_vec()), 0..8)
            .prop_map(|bytes| String::from_utf8(bytes).expect("ASCII")),
        1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
    ]
}

fn version() -> impl Strategy<Value = String> {
    let interesting =
        prop::sample::select(vec!["1.0.0", "103.0.7-p3", "dev-main", "dev-feature/x", "1.0.0-1", "", "1.0\0", "v2"]);
    prop_oneof![
        2 => interesting.prop_map(str::to_owned),
        1 => prop::collection::vec(prop::sample::select(b"0123.-+avdp/ ".to_vec()), 0..10)
            .prop_map(|bytes| String::from_utf8(bytes).expect("ASCII")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8192, ..ProptestConfig::default() })]

    #[test]
    fn names_and_versions_keep_composer_rules(vendor in part(), package in part(), version in version()) {
        let name = format!("{vendor}/{package}");
        composer_identity::check(format!("{name}\n{version}").as_bytes());
        let composer = serde_json::json!({"name": name, "version": version});
        composer_identity::check(composer.to_string().as_bytes());
    }

    #[test]
    fn raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        composer_identity::check(&bytes);
    }
}
