//! `coordinator serve` hosting its own repository: what real clients get (the Composer client,
//! twice, the second time revalidating from its cache; a mirror following the change feed), and
//! what an attacker does not (anything under `.farm/` or outside the output folder).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Output;

use serde_json::{Value, json};

use super::{GITHUB_SECRET, Served, Settings, TRIGGER_TOKEN, set_module};

/// A request sent as written (no client normalises the path): status and body.
fn raw_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(Vec::new(), |at| answer[at + 4..].to_vec());
    (status, body)
}

/// A response body as JSON.
trait JsonBody {
    fn json_body(self) -> Value;
}

impl JsonBody for reqwest::blocking::Response {
    fn json_body(self) -> Value {
        serde_json::from_slice(&self.bytes().expect("body")).expect("a JSON body")
    }
}

fn composer(project: &std::path::Path, args: &[&str]) -> Output {
    let output = tests::composer(project, args);
    assert!(output.status.success(), "composer {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

#[test]
fn the_served_repository_answers_composer_twice_and_revalidates_from_its_cache() {
    let mut served = Served::new(Settings::default());
    served.start();
    served.wait_builds(1);
    let base = served.url("/repo/");

    // Headers real clients rely on.
    let root = served.client.get(format!("{base}packages.json")).send().unwrap();
    assert_eq!(root.status(), 200);
    let etag = root.headers()["etag"].to_str().unwrap().to_owned();
    let modified = root.headers()["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(root.headers()["content-type"], "application/json");
    let root = root.json_body();
    assert_eq!(root["metadata-changes-url"], format!("{base}metadata/changes.json"));
    for (name, value) in [("if-none-match", etag.as_str()), ("if-modified-since", modified.as_str())] {
        let again = served.client.get(format!("{base}packages.json")).header(name, value).send().unwrap();
        assert_eq!(again.status(), 304, "{name}");
        assert!(again.bytes().unwrap().is_empty(), "a 304 has an empty body");
    }
    let zipped = served.client.get(format!("{base}packages.json")).header("accept-encoding", "gzip").send().unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&zipped.bytes().unwrap()[..]).read_to_string(&mut unzipped).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&unzipped).unwrap(), root);

    // An archive: HEAD and a range.
    let archive = served.archives().into_iter().find(|a| a.starts_with("acme/module-module000-1.0.0")).unwrap();
    let bytes = std::fs::read(served.out.join("packages").join(&archive)).unwrap();
    let url = format!("{base}packages/{archive}");
    let head = served.client.head(&url).send().unwrap();
    assert_eq!(head.headers()["content-length"], bytes.len().to_string().as_str());
    let range = served.client.get(&url).header("range", "bytes=10-19").send().unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-range"], format!("bytes 10-19/{}", bytes.len()).as_str());
    assert_eq!(&range.bytes().unwrap()[..], &bytes[10..20]);

    // The real client, then again from its cache: every metadata file revalidated with a 304,
    // the archive taken from the cache.
    let project = served.dir.path().join("project");
    tests::composer_project(&project, &base, &[("acme/module-module000", "1.0.0")]);
    composer(&project, &["install"]);
    assert!(project.join("vendor/acme/module-module000/Model/Thing.php").is_file());
    std::fs::remove_dir_all(project.join("vendor")).unwrap();
    std::fs::remove_file(project.join("composer.lock")).unwrap();
    let second = composer(&project, &["update", "-vvv"]);
    let log = String::from_utf8_lossy(&second.stderr);
    for file in ["packages.json", "p2/acme/module-module000.json"] {
        assert!(log.contains(&format!("[304] {base}{file}")), "{file} was not revalidated:\n{log}");
    }
    assert!(log.contains("from cache"), "the archive was downloaded again:\n{log}");
    assert!(project.join("vendor/acme/module-module000/Model/Thing.php").is_file());
    assert_eq!(served.stop(), 0);
}

#[test]
fn nothing_under_the_farm_state_or_outside_the_output_folder_is_served() {
    let mut served = Served::new(Settings::default());
    served.start();
    served.wait_builds(1);
    // A symlink inside the output folder to the configuration (which holds the webhook secrets).
    std::os::unix::fs::symlink(&served.config, served.out.join("p2/acme/evil.json")).unwrap();
    std::os::unix::fs::symlink(served.dir.path(), served.out.join("p2/outside")).unwrap();
    let secret = GITHUB_SECRET.as_bytes();
    let manifest = std::fs::read(served.out.join(".farm/manifest.json")).unwrap();
    let attacks = [
        "/repo/../farm.toml",
        "/repo/%2e%2e/farm.toml",
        "/repo/%2E%2E/farm.toml",
        "/repo/p2/..%2f..%2ffarm.toml",
        "/repo/p2/%2e%2e/%2e%2e/farm.toml",
        "/repo/.farm/manifest.json",
        "/repo/%2efarm/manifest.json",
        "/repo/.farm/report.json",
        "//etc/passwd",
        "/repo//etc/passwd",
        "/repo/%2fetc%2fpasswd",
        "/repo/p2\\..\\..\\farm.toml",
        "/repo/p2/%5c..%5c..%5cfarm.toml",
        "/repo/p2/acme/evil.json",
        "/repo/p2/outside/farm.toml",
        "/repo/p2/a%00.json",
        "/etc/passwd",
        "/repo/p2/",
    ];
    for path in attacks {
        let (status, body) = raw_get(served.port, path);
        assert!(status == 404 || status == 400, "{path}: {status}");
        let leaked = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
        assert!(!leaked(secret) && !leaked(b"root:") && !leaked(&manifest[..manifest.len().min(64)]), "{path} leaked");
    }
    // What is there is served.
    assert_eq!(raw_get(served.port, "/repo/packages.json").0, 200);
    assert_eq!(served.stop(), 0);
}

#[test]
fn a_mirror_following_the_feed_ends_with_what_a_full_fetch_gets() {
    let mut served = Served::new(Settings::default());
    served.start();
    served.wait_builds(1);
    let feed = served.url("/repo/metadata/changes.json");
    let get = |url: &str| served.client.get(url).send().unwrap();
    // No `since`: a 400 with the timestamp to begin from, then a full fetch.
    for query in ["", "?since=", "?since=yesterday"] {
        let answer = get(&format!("{feed}{query}"));
        assert_eq!(answer.status(), 400, "{query}");
        let body: Value = answer.json_body();
        assert!(body["error"].as_str().unwrap().contains("since") && body["timestamp"].is_u64(), "{body}");
    }
    let start: Value = get(&feed).json_body();
    let mut since = start["timestamp"].as_u64().unwrap();
    let mut mirror = full_fetch(&served);
    assert!(mirror.len() >= 8, "{mirror:?}");
    let resync: Value = get(&format!("{feed}?since=0")).json_body();
    assert_eq!((&resync["actions"][0]["type"], &resync["actions"][0]["package"]), (&json!("resync"), &json!("*")));
    assert_eq!(resync["actions"].as_array().unwrap().len(), 1, "{resync}");

    // A new tag of one module, and a moved branch of another.
    set_module(&mut served.upstream, 1, "1.1.0", "new", 10);
    served.upstream.commit_and_tag("1.1.0");
    set_module(&mut served.upstream, 2, "1.0.0", "newer", 10);
    served.upstream.commit("main moves on");
    let trigger = [("authorization", format!("Bearer {TRIGGER_TOKEN}")), ("content-type", "application/json".into())];
    let headers: Vec<(&str, &str)> = trigger.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(served.post("/hooks/trigger", &headers, br#"{"upstream": "acme"}"#.to_vec()).0, 202);
    served.wait_builds(2);

    let changes: Value = get(&format!("{feed}?since={since}")).json_body();
    let mut updated = Vec::new();
    for action in changes["actions"].as_array().unwrap() {
        let package = action["package"].as_str().unwrap().to_owned();
        assert!(action["stamp"].as_u64().unwrap() > since, "{changes}");
        match action["type"].as_str().unwrap() {
            "update" => {
                let answer = get(&served.url(&format!("/repo/p2/{package}.json")));
                // As composer/mirror checks: the file is not older than the action (seconds).
                let modified = answer.headers()["last-modified"].to_str().unwrap().to_owned();
                let modified = httpdate::parse_http_date(&modified).unwrap();
                let modified = modified.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                assert!(action["time"].as_u64().unwrap() <= modified, "{action} after {modified}");
                mirror.insert(package.clone(), answer.bytes().unwrap().to_vec());
            }
            "delete" => {
                mirror.remove(&package);
            }
            other => panic!("unexpected action {other}: {changes}"),
        }
        updated.push(package);
    }
    assert!(updated.contains(&"acme/module-module001".to_owned()), "{changes}");
    assert!(updated.contains(&"acme/module-module002~dev".to_owned()), "{changes}");
    assert!(!updated.contains(&"acme/module-module000".to_owned()), "an unchanged file is in the feed: {changes}");
    assert_eq!(mirror, full_fetch(&served), "the mirror differs from a full fetch");
    since = changes["timestamp"].as_u64().unwrap();
    let quiet: Value = get(&format!("{feed}?since={since}")).json_body();
    let zipped = served.client.get(format!("{feed}?since={since}")).header("accept-encoding", "gzip").send().unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(quiet["actions"], json!([]));
    assert_eq!(quiet["timestamp"].as_u64(), Some(since));
    // The static file a plain web server would serve holds the same actions.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(served.out.join("metadata/changes.json")).unwrap()).unwrap();
    assert_eq!(stored["timestamp"].as_u64(), Some(since));
    assert_eq!(served.stop(), 0);
}

/// Every p2 file `packages.json` lists (and its `~dev` file), by package as the feed names them.
fn full_fetch(served: &Served) -> std::collections::BTreeMap<String, Vec<u8>> {
    let root: Value = served.client.get(served.url("/repo/packages.json")).send().unwrap().json_body();
    let mut files = std::collections::BTreeMap::new();
    for name in root["available-packages"].as_array().unwrap() {
        for package in [name.as_str().unwrap().to_owned(), format!("{}~dev", name.as_str().unwrap())] {
            let answer = served.client.get(served.url(&format!("/repo/p2/{package}.json"))).send().unwrap();
            assert_eq!(answer.status(), 200, "{package}");
            files.insert(package, answer.bytes().unwrap().to_vec());
        }
    }
    files
}
