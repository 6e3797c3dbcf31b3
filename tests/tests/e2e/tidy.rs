//! Repository hygiene checked by `cargo test`: every Rust file says what it is for, and the
//! message documentation is updated whenever the wire types change.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for crate_dir in ["shared", "coordinator", "worker", "tests"] {
        rust_files(&root().join(crate_dir), &mut files);
    }
    assert!(files.len() > 20);
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading //! line: {missing:?}");
}

#[test]
fn message_docs_track_the_wire_types() {
    use sha2::Digest as _;
    let source = std::fs::read(root().join("shared/src/messages.rs")).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(&source));
    let docs = std::fs::read_to_string(root().join("docs/messages.md")).unwrap();
    assert!(
        docs.contains(&format!("messages.rs sha256: {hash}")),
        "shared/src/messages.rs changed: update docs/messages.md and its tracking line to sha256 {hash}"
    );
}
