//! The content digest of a branch archive: what its bytes are made from, so that a moved branch
//! whose package did not change keeps its archive, and one that changed gets a new key.

use git2::Repository;
use shared::git::{self, GitError};
use shared::messages::Content;

/// sha1 (hex) over what an archive's bytes are made from: the entries of the package tree that
/// are not excluded (an excluded subfolder, such as the modules below the root package, may
/// change without changing the archive), the `.gitattributes` of the folders above it (they
/// decide eol conversion), the composer.json and the content rules.
pub(super) fn content_digest(
    repo: &Repository,
    root: &git2::Tree<'_>,
    dir: &str,
    tree: &git2::Tree<'_>,
    composer_json: &str,
    content: &Content,
) -> Result<String, GitError> {
    use sha1::Digest as _;
    let mut hasher = sha1::Sha1::new();
    let excludes: &[String] = match content {
        Content::PackageTree { excludes, .. } => excludes,
        Content::ComposerJsonOnly => &[],
    };
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    digest_tree(repo, tree, &prefix, excludes, &mut hasher)?;
    // .gitattributes of the root and of every folder above the package.
    let mut ancestor = Some(root.clone());
    let mut path = String::new();
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for index in 0..=segments.len() {
        let Some(current) = ancestor.take() else { break };
        if index < segments.len()
            && let Some(entry) = current.get_name(".gitattributes")
        {
            hasher.update(format!("attributes {path}\0").as_bytes());
            hasher.update(entry.id().as_bytes());
        }
        if let Some(segment) = segments.get(index) {
            path = format!("{path}{segment}/");
            ancestor = git::subtree(repo, &current, segment)?;
        }
    }
    hasher.update(composer_json.as_bytes());
    hasher.update(content_rules(content));
    Ok(hex::encode(hasher.finalize()))
}

/// Hashes the entries below `prefix` that the excludes (repository-relative path prefixes) leave
/// in; only folders holding an exclude are walked, the others count by their tree id.
fn digest_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    prefix: &str,
    excludes: &[String],
    hasher: &mut sha1::Sha1,
) -> Result<(), GitError> {
    use sha1::Digest as _;
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes());
        let is_tree = entry.kind() == Some(git2::ObjectType::Tree);
        let path = if is_tree { format!("{prefix}{name}/") } else { format!("{prefix}{name}") };
        if excludes.iter().any(|e| path.starts_with(e.as_str())) {
            continue;
        }
        if is_tree && excludes.iter().any(|e| e.starts_with(path.as_str())) {
            let subtree = repo
                .find_tree(entry.id())
                .map_err(|e| GitError::Git { context: format!("cannot read tree {path}"), source: e })?;
            digest_tree(repo, &subtree, &path, excludes, hasher)?;
            continue;
        }
        hasher.update(format!("{:o} {path}\0", entry.filemode()).as_bytes());
        hasher.update(entry.id().as_bytes());
    }
    Ok(())
}

/// The encoding of the content rules that the digest covers, version 1 (the only one so far):
/// `{"kind":"package_tree","dir":…,"excludes":[…],"empty_dirs":[…]}` or
/// `{"kind":"composer_json_only"}`, JSON strings escaped as serde_json does. It is written out
/// here, not derived from the job message's `Content`, so a field added to the message does not
/// move every branch archive's key. A change of what the rules mean needs a new version whose
/// bytes start with `content-rules v2\n` (v1 has no prefix: it is what keys were always made of).
fn content_rules(content: &Content) -> Vec<u8> {
    let string = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let list = |items: &[String]| format!("[{}]", items.iter().map(|i| string(i)).collect::<Vec<_>>().join(","));
    match content {
        Content::PackageTree { dir, excludes, empty_dirs } => format!(
            r#"{{"kind":"package_tree","dir":{},"excludes":{},"empty_dirs":{}}}"#,
            string(dir),
            list(excludes),
            list(empty_dirs)
        )
        .into_bytes(),
        Content::ComposerJsonOnly => br#"{"kind":"composer_json_only"}"#.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_content() -> Content {
        Content::PackageTree {
            dir: "app/code/Magento/Catalog".to_owned(),
            excludes: vec![
                "app/code/Magento/Catalog/Test/".to_owned(),
                "composer.json".to_owned(),
                "a\"q\u{e9}".to_owned(),
            ],
            empty_dirs: vec!["view/empty".to_owned()],
        }
    }

    #[test]
    fn the_content_rules_encoding_is_stable() {
        assert_eq!(
            String::from_utf8(content_rules(&tree_content())).unwrap(),
            r#"{"kind":"package_tree","dir":"app/code/Magento/Catalog","excludes":["app/code/Magento/Catalog/Test/","composer.json","a\"qé"],"empty_dirs":["view/empty"]}"#
        );
        assert_eq!(content_rules(&Content::ComposerJsonOnly), br#"{"kind":"composer_json_only"}"#);
    }

    #[test]
    fn the_branch_digest_of_a_fixed_tree_is_stable() {
        // Blob and tree ids depend only on content, so this digest is the same on every machine
        // and must never change: a change would give every published branch archive a new key.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = |text: &str| repo.blob(text.as_bytes()).unwrap();
        let mut package = repo.treebuilder(None).unwrap();
        package.insert("Model.php", blob("<?php\n"), 0o100644).unwrap();
        package.insert("bin", blob("#!/bin/sh\n"), 0o100755).unwrap();
        let mut test = repo.treebuilder(None).unwrap();
        test.insert("ModelTest.php", blob("<?php // test\n"), 0o100644).unwrap();
        package.insert("Test", test.write().unwrap(), 0o040000).unwrap();
        let package = package.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert(".gitattributes", blob("* text=auto\n"), 0o100644).unwrap();
        root.insert("Catalog", package, 0o040000).unwrap();
        let root = repo.find_tree(root.write().unwrap()).unwrap();
        let package = repo.find_tree(package).unwrap();
        let content = Content::PackageTree {
            dir: "Catalog".to_owned(),
            excludes: vec!["Catalog/Test/".to_owned(), "composer.json".to_owned()],
            empty_dirs: Vec::new(),
        };
        let digest = content_digest(&repo, &root, "Catalog", &package, "{\"name\": \"a/b\"}", &content).unwrap();
        assert_eq!(digest, "e2f6ce1f11e205087485dc161a70a1ccb5b0cce1");
        let meta = content_digest(&repo, &root, "", &root, "{}", &Content::ComposerJsonOnly).unwrap();
        assert_ne!(meta, digest);
    }
}
