//! Planning only the refs that moved (`Scope::Changed`, what `serve` does on a poll or webhook,
//! and `build --changed`) publishes the same repository as planning every ref.

use std::collections::BTreeMap;
use std::path::Path;

use coordinator::pipeline::{BuildOptions, run_scoped};
use coordinator::plan::Scope;
use coordinator::report::BuildReport;
use tests::generated::{CONFIG, Shape, generate, write_module};
use tests::load_config;

async fn build_scoped(config: &Path, upstream: &Path, cache: &Path, out: &Path, scope: Scope) -> BuildReport {
    let config = load_config(config, upstream, cache, 2);
    let report = run_scoped(BuildOptions { config, out: out.to_owned(), progress: false }, scope).await.expect("build");
    assert!(report.failed.is_empty(), "{}", report.summary());
    report
}

fn public(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    tests::snapshot(dir).into_iter().filter(|(path, _)| !path.starts_with(".farm")).collect()
}

#[tokio::test]
async fn planning_only_moved_refs_publishes_what_planning_every_ref_does() {
    let temp = tempfile::tempdir().unwrap();
    let shape = Shape { modules: 12, files: 6, tags: 4, base_files: 10, change_every: 4, binary_every: 0 };
    let mut upstream = generate(&temp.path().join("upstream/mirror-magento2.git"), shape).upstream;
    let config = temp.path().join("farm.toml");
    std::fs::write(&config, CONFIG.replace("from_tag = \"2.4.0\"", "from_tag = \"2.4.0\"\nbranches = [\"main\"]"))
        .unwrap();
    let (base, cache) = (temp.path().join("upstream"), temp.path().join("cache"));
    let (changed, every) = (temp.path().join("changed"), temp.path().join("every"));
    for out in [&changed, &every] {
        build_scoped(&config, &base, &cache, out, Scope::All).await;
    }

    // Nothing moved: nothing is planned, so nothing is even looked at.
    let idle = build_scoped(&config, &base, &cache, &changed, Scope::Changed(None)).await;
    assert!(idle.built.is_empty() && idle.unchanged.is_empty(), "{}", idle.summary());

    // One module on main, then a new tag with two more.
    write_module(&mut upstream, 3, 6, 50);
    upstream.commit("main: one module");
    write_module(&mut upstream, 5, 6, 51);
    write_module(&mut upstream, 8, 6, 51);
    upstream.commit_and_tag("2.4.4");
    let moved = build_scoped(&config, &base, &cache, &changed, Scope::Changed(None)).await;
    let all = build_scoped(&config, &base, &cache, &every, Scope::All).await;
    let ids =
        |report: &BuildReport| report.built.iter().map(|b| format!("{}@{}", b.package, b.version)).collect::<Vec<_>>();
    assert_eq!(ids(&moved), ids(&all));
    assert!(ids(&moved).contains(&"magento/module-module005@100.0.51".to_owned()), "{:?}", ids(&moved));
    // Two refs planned (the new tag and main), 13 packages each (12 modules and the base).
    assert_eq!(moved.built.len() + moved.unchanged.len(), 2 * 13, "{}", moved.summary());
    assert!(all.unchanged.len() > moved.unchanged.len(), "{}", all.summary());
    assert_eq!(format!("{:?}", moved.source_changed), format!("{:?}", all.source_changed));
    assert_eq!(public(&changed), public(&every));
}
