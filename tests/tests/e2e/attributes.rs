//! `.gitattributes` at the root, in a folder above the package and inside it, read from a real
//! git tree: archived bytes are what `git checkout` would write.

use std::io::Read;

use tests::{Upstream, build};

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "attrs"
url = "https://github.com/mage-os/attrs.git"

[[upstreams.package_dirs]]
dir = "pkgs"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_attributes_decide_line_ends() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/attrs.git"));
    upstream
        .file(".gitattributes", "*.txt eol=crlf\n")
        .file("pkgs/.gitattributes", "*.md text eol=crlf\n")
        .file("pkgs/A/composer.json", r#"{"name":"acme/a","version":"1.0.0"}"#)
        .file("pkgs/A/a.txt", "one\ntwo\r\n")
        .file("pkgs/A/readme.md", "# A\n")
        .file("pkgs/A/keep.php", "<?php\n")
        .file("pkgs/A/sub/.gitattributes", "*.txt -text\n")
        .file("pkgs/A/sub/b.txt", "x\ny\n");
    upstream.commit_and_tag("1.0.0");

    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 1);
    let report = build(config, &out).await;
    assert_eq!(report.built.len(), 1, "{}", report.summary());

    let file = std::fs::File::open(out.join("packages/acme/a-1.0.0.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
        text
    };
    assert_eq!(read("a.txt"), "one\r\ntwo\r\n", "root attributes apply");
    assert_eq!(read("readme.md"), "# A\r\n", "attributes of a folder above the package apply");
    assert_eq!(read("sub/b.txt"), "x\ny\n", "a deeper file overrides");
    assert_eq!(read("keep.php"), "<?php\n");
    assert_eq!(read("sub/.gitattributes"), "*.txt -text\n", "attribute files are archived as files");
}
