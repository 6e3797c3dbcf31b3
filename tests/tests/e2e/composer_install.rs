//! The real Composer client installs from a built repository served over HTTP on 127.0.0.1, with
//! packagist.org disabled, and verifies the archives' sha1.

use tests::{PhpServer, Upstream, build, composer, composer_project, free_port, write_shop_config as write_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composer_installs_a_package_and_its_dependency() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/shop.git"));
    upstream
        .file("packages/Module/composer.json", r#"{"name":"acme/module-shop","type":"library","version":"1.0.0","require":{"acme/library-money":"^2.0"},"autoload":{"psr-4":{"Acme\\Shop\\":""}}}"#)
        .file("packages/Module/Cart.php", "<?php\nnamespace Acme\\Shop;\nclass Cart {}\n")
        .file("packages/Money/composer.json", r#"{"name":"acme/library-money","type":"library","version":"2.1.0","require":{"php":">=7.4"}}"#)
        .file("packages/Money/Money.php", "<?php\n// money\n");
    upstream.commit_and_tag("1.0.0");

    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}/");
    let config_path = temp.path().join("farm.toml");
    write_config(&config_path, &base_url);
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let report = build(config, &out).await;
    assert_eq!(report.built.len(), 2, "{}", report.summary());

    let server = PhpServer::start(&out, port);
    let project = temp.path().join("consumer");
    composer_project(&project, &server.url, &[("acme/module-shop", "1.0.0")]);
    let output = composer(&project, &["install"]);
    assert!(
        output.status.success(),
        "composer install failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(project.join("vendor/acme/module-shop/Cart.php").is_file());
    assert!(project.join("vendor/acme/library-money/Money.php").is_file());

    // The lock file carries our sha1s: Composer verified them on download.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(project.join("composer.lock")).unwrap()).unwrap();
    let manifest = tests::manifest(&out);
    for package in lock["packages"].as_array().unwrap() {
        let id = format!("{}@{}", package["name"].as_str().unwrap(), package["version"].as_str().unwrap());
        assert_eq!(package["dist"]["shasum"], manifest["packages"][&id]["sha1"], "{id}");
        assert!(package["dist"]["url"].as_str().unwrap().starts_with(&base_url));
    }
    assert_eq!(lock["packages"].as_array().unwrap().len(), 2);

    // A tampered archive is refused by Composer's checksum verification.
    let archive = out.join("packages/acme/library-money-2.1.0.zip");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    std::fs::remove_dir_all(project.join("vendor")).unwrap();
    std::fs::remove_dir_all(project.join(".composer-home")).unwrap();
    let output = composer(&project, &["install"]);
    assert!(!output.status.success(), "composer accepted a tampered archive");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("checksum"), "{stderr}");
}
