//! Generated upstreams shaped like Magento's monorepo: module folders under `app/code/Magento`
//! with mostly small PHP files (optionally a large binary file in some), a base package at the
//! root, and many tags, each of which changes some of the modules (a quarter, as Magento releases
//! do, with [`Shape::change_every`] 4). For the benchmarks and the fault tests that need a
//! thousand archives and more.

use std::path::Path;

use crate::Upstream;

/// The size of a generated upstream.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Module folders.
    pub modules: usize,
    /// Files per module (at least 2: composer.json and registration.php).
    pub files: usize,
    /// Tags `2.4.0`, `2.4.1`, ...
    pub tags: usize,
    /// Files of the base package (the root, without `app/code/`).
    pub base_files: usize,
    /// Which modules a tag after the first changes: module `index` at tag `tag` when
    /// `(index + tag) % change_every == 0`. 4 changes a quarter of the modules at every tag (as
    /// Magento releases do), 1 every module.
    pub change_every: usize,
    /// Every module whose `index % binary_every == 0` also holds one file of
    /// `1 + index * 37 % 8` MiB of pseudo-random (incompressible) bytes, the same blob at every
    /// tag; 0: no module does.
    pub binary_every: usize,
}

/// What [`generate`] made.
pub struct Generated {
    /// The repository, for later commits.
    pub upstream: Upstream,
    /// Files at the last tag.
    pub files: usize,
    /// Archives a full build makes (one per new module version, plus one base per tag).
    pub archives: usize,
    /// Bytes of the files in those archives (uncompressed, as a full build reads them).
    pub content_bytes: u64,
}

/// A farm configuration for a generated upstream (key `magento2`), before `[queue]`/`[storage]`.
pub const CONFIG: &str = r#"
[repository]
base_url = "http://127.0.0.1:8080/"

[[upstreams]]
key = "magento2"
url = "https://github.com/mage-os/mirror-magento2.git"
from_tag = "2.4.0"

[[upstreams.package_dirs]]
label = "modules"
dir = "app/code/Magento"

[[upstreams.single_packages]]
label = "base"
dir = ""
excludes = ["app/code/", "composer.lock"]
empty_dirs = ["app/code/Magento"]
"#;

/// Deterministic pseudo-random PHP-looking text of about `size` bytes.
pub fn php_file(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(size + 64);
    out.push_str("<?php\n/**\n * Copyright (c) generated benchmark file.\n */\ndeclare(strict_types=1);\n\n");
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(&format!(
            "    public function method{:x}(int $value): int {{ return $value * {}; }}\n",
            state,
            state % 977
        ));
    }
    out.into_bytes()
}

fn module_name(index: usize) -> String {
    format!("Module{index:03}")
}

/// Deterministic pseudo-random bytes (incompressible), `size` of them.
pub fn binary_file(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// The binary file of module `index` when it has one (see [`Shape::binary_every`]): its path in
/// the repository and its size in bytes.
fn binary_of(index: usize, binary_every: usize) -> Option<(String, usize)> {
    (binary_every > 0 && index.is_multiple_of(binary_every)).then(|| {
        let path = format!("app/code/Magento/{}/Setup/Data/sample.bin", module_name(index));
        (path, (1 + index * 37 % 8) << 20)
    })
}

/// Writes module `index` at patch level `patch` (only its first file changes between patches).
///
/// The other files' content depends on `index` and their number only, so a file already set at
/// its path (by an earlier call) is left as it is rather than generated again.
pub fn write_module(upstream: &mut Upstream, index: usize, files: usize, patch: usize) {
    let name = module_name(index);
    let dir = format!("app/code/Magento/{name}");
    let composer = format!(
        r#"{{"name":"magento/module-{}","description":"Benchmark module","type":"magento2-module","license":["OSL-3.0","AFL-3.0"],"version":"100.0.{patch}","require":{{"php":"~8.1.0||~8.2.0","magento/framework":"103.0.*"}},"autoload":{{"files":["registration.php"],"psr-4":{{"Magento\\{name}\\":""}}}}}}"#,
        name.to_lowercase()
    );
    upstream.file(&format!("{dir}/composer.json"), composer);
    upstream.file(&format!("{dir}/registration.php"), php_file(index as u64, 300));
    for file in 0..files.saturating_sub(2) {
        let folder =
            ["Model", "Controller/Adminhtml", "Block", "etc", "view/frontend/templates", "Test/Unit/Model"][file % 6];
        let path = format!("{dir}/{folder}/File{file:03}.php");
        if file > 0 && upstream.files.contains_key(&path) {
            continue;
        }
        let size = 1000 + (file * 397 + index * 131) % 5000;
        // The changed file of a patch release gets new content; the rest stays the same blob.
        let seed = (index * 1000 + file) as u64 + if file == 0 { patch as u64 * 7_919 } else { 0 };
        upstream.file(&path, php_file(seed, size));
    }
}

/// Creates the repository at `path` (a bare-able work folder; see [`Upstream`]).
pub fn generate(path: &Path, shape: Shape) -> Generated {
    let Shape { modules, files, tags, base_files, change_every, binary_every } = shape;
    assert!(change_every > 0, "Shape::change_every must be at least 1");
    let mut upstream = Upstream::create(path);
    let base = r#"{"name":"magento/magento2-base","description":"Benchmark base","type":"magento2-component","license":["OSL-3.0"],"require":{"php":"~8.1.0||~8.2.0"}}"#;
    upstream.file("composer.json", base);
    for i in 0..base_files {
        let folder =
            ["lib/web/js", "setup/src/Magento/Setup", "dev/tools", "pub/static", "lib/internal/Magento/Framework"]
                [i % 5];
        upstream.file(&format!("{folder}/f{i:04}.php"), php_file(1_000_000 + i as u64, 800 + i % 3000));
    }
    let mut patches = vec![0usize; modules];
    for (index, patch) in patches.iter().enumerate() {
        write_module(&mut upstream, index, files, *patch);
        if let Some((path, size)) = binary_of(index, binary_every) {
            upstream.file(&path, binary_file(2_000_000 + index as u64, size));
        }
    }
    let (mut archives, mut content_bytes) = (0, 0u64);
    for tag in 0..tags {
        let changed: Vec<usize> = if tag == 0 {
            (0..modules).collect()
        } else {
            (0..modules).filter(|i| (i + tag) % change_every == 0).collect()
        };
        if tag > 0 {
            for &index in &changed {
                patches[index] += 1;
                write_module(&mut upstream, index, files, patches[index]);
            }
        }
        let version = format!("2.4.{tag}");
        upstream.file("composer.json", base.replace("\"require\"", &format!("\"version\":\"{version}\",\"require\"")));
        content_bytes += package_bytes(&upstream, &changed);
        archives += changed.len() + 1;
        upstream.commit_and_tag(&version);
    }
    let files = upstream.files.len();
    Generated { upstream, files, archives, content_bytes }
}

/// Bytes of the files of the base package and of the modules `changed`, as they are now.
fn package_bytes(upstream: &Upstream, changed: &[usize]) -> u64 {
    let names: std::collections::HashSet<String> = changed.iter().map(|&index| module_name(index)).collect();
    let counted = |path: &str| match path.strip_prefix("app/code/Magento/") {
        Some(rest) => rest.split_once('/').is_some_and(|(module, _)| names.contains(module)),
        None => !path.starts_with("app/code/") && path != "composer.lock",
    };
    upstream.files.iter().filter(|(path, _)| counted(path)).map(|(_, (content, _))| content.len() as u64).sum()
}
