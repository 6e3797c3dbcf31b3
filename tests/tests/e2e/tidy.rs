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

/// The farm.toml embedded in the ConfigMap (a `farm.toml: |` block scalar).
fn configmap_toml(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|line| !line.trim_start().starts_with("farm.toml: |"));
    let header = lines.next().expect("configmap has farm.toml");
    let key_indent = header.len() - header.trim_start().len();
    let mut out = String::new();
    let mut indent = None;
    for line in lines {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() <= key_indent {
            break;
        }
        let width = *indent.get_or_insert(line.len() - line.trim_start().len());
        out.push_str(line.get(width..).unwrap_or(""));
        out.push('\n');
    }
    out
}

#[test]
fn deploy_configs_load_with_the_real_parser() {
    let temp = tempfile::tempdir().unwrap();
    let configmap = configmap_toml(&std::fs::read_to_string(root().join("deploy/k8s/configmap.yaml")).unwrap());
    let compose = std::fs::read_to_string(root().join("deploy/farm.compose.toml")).unwrap();
    let mut paths = Vec::new();
    for (name, text) in [("compose.toml", compose), ("configmap.toml", configmap)] {
        // The broker URL (with its password) comes from FARM_QUEUE__URL, out of a secret.
        assert!(!text.contains("amqp://"), "{name} holds a broker URL; it belongs in a secret");
        let path = temp.path().join(name);
        std::fs::write(&path, text.replacen("[queue]", "[queue]\nurl = \"amqp://from-the-secret\"", 1)).unwrap();
        paths.push(path);
    }
    for path in paths {
        let config = shared::config::FarmConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(config.is_distributed(), "{} has no [queue]", path.display());
        assert_eq!(config.storage.kind, shared::config::StorageKind::S3, "{}", path.display());
        assert!(!config.upstreams.is_empty(), "{} has no upstreams", path.display());
        // Workers read the same file.
        shared::config::WorkerConfig::load(Some(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
