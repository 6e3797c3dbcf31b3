//! composer.json identity: what an upstream's composer.json (or any name and version) can hand
//! the planner, through `shared::identity` (Composer's name rules, its version parser, storable
//! archive keys).
//!
//! Input format: the bytes are tried twice: as a composer.json (its `name` and `version` strings,
//! parsed with the reference's JSON semantics), and as `name\nversion` raw text.
//!
//! Invariants: nothing panics; an accepted name passes an independent, hand-written reading of
//! Composer's rules (lower-case words of a-z and 0-9, one '/', '-', '.' or '_' between words, up
//! to two '-' in the package part, no reserved device name, no `.json` suffix), and `<name>~dev`
//! never passes; an accepted name@version gives a key within the storage rules (URL-safe, no
//! empty or dot segment, 255 bytes a segment, 1,024 in all); every message is one line.

use shared::identity;

/// Checks one input.
pub fn check(data: &[u8]) {
    if let Ok(serde_json::Value::Object(composer)) = shared::json::parse(&String::from_utf8_lossy(data)) {
        let name = composer.get("name").and_then(serde_json::Value::as_str).unwrap_or_default();
        let version = composer.get("version").and_then(serde_json::Value::as_str).unwrap_or_default();
        check_identity(name, version);
    }
    let text = String::from_utf8_lossy(data);
    let (name, version) = text.split_once('\n').unwrap_or((&text, "1.0.0"));
    check_identity(name, version);
}

fn check_identity(name: &str, version: &str) {
    match identity::validate_name(name) {
        Ok(()) => {
            assert!(composer_name(name), "accepted {name:?}, which Composer refuses");
            assert!(identity::validate_name(&format!("{name}~dev")).is_err(), "{name}~dev accepted");
        }
        Err(error) => {
            assert!(!composer_name(name), "refused {name:?}, which Composer accepts: {error}");
            one_line(&error.to_string());
        }
    }
    let key = identity::archive_key(name, &identity::key_version(version), None);
    match identity::check(name, version, &key) {
        Ok(()) => storable(&key),
        Err(error) => one_line(&error.to_string()),
    }
}

/// Composer 2's name rules, read by hand (no regex), to cross-check the implementation.
fn composer_name(name: &str) -> bool {
    let Some((vendor, package)) = name.split_once('/') else { return false };
    const RESERVED: [&str; 22] = [
        "nul", "con", "prn", "aux", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1",
        "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    words(vendor, 1)
        && words(package, 2)
        && !RESERVED.contains(&vendor)
        && !RESERVED.contains(&package)
        && !name.ends_with(".json")
}

/// Words of `a-z0-9` separated by one of `_` `.` or by 1..=`max_dashes` dashes.
fn words(part: &str, max_dashes: usize) -> bool {
    let bytes = part.as_bytes();
    let word = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !word(bytes[0]) || !word(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !word(bytes[i]) {
            i += 1;
        }
        let separator = &bytes[start..i];
        let ok = matches!(separator, b"_" | b"." | b"-") || (max_dashes == 2 && separator == b"--");
        if !ok {
            return false;
        }
    }
    true
}

fn storable(key: &str) {
    assert!(key.len() <= identity::MAX_KEY_BYTES, "{key:?} too long");
    for segment in key.split('/') {
        assert!(!segment.is_empty() && !segment.starts_with('.'), "{key:?} has a bad segment");
        assert!(segment.len() <= identity::MAX_SEGMENT_BYTES, "{key:?} has a long segment");
    }
    assert!(
        key.chars().all(|c| c.is_ascii_graphic() && !"?#%\\\"<>^`{|}[]".contains(c)),
        "{key:?} needs escaping in a URL"
    );
}

fn one_line(message: &str) {
    assert!(!message.chars().any(char::is_control), "message with a control character: {message:?}");
}
