//! Community-edition metapackages (spec 3.8): the root composer.json made into a project or
//! product metapackage, at a tag or at the branch head of a nightly or release.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use shared::config::{Flavour, MetapackageKind, UpstreamConfig};
use shared::distribution::{self, Release};

use super::inputs::TargetState;

/// How a community-edition metapackage is made.
pub struct MetaRequest<'a> {
    /// Name without vendor.
    pub name: String,
    /// Project or product.
    pub kind: MetapackageKind,
    /// A flavour's product: filtered later; its description.
    pub flavour: Option<(usize, &'a Flavour)>,
    /// Files added after composer.json at some tags.
    pub extra_files: Vec<shared::config::MetapackageFile>,
}

/// The root composer.json made into a community-edition metapackage at a tag (the mirror and
/// release-history path, `createComposerJsonOnlyPackage`). Returns the config; the archive is
/// named with the tag.
pub fn tagged_metapackage(
    state: &TargetState,
    upstream: &UpstreamConfig,
    request: &MetaRequest<'_>,
    root_config: Map<String, Value>,
    tag: &str,
    pins: &BTreeMap<String, String>,
    composer_repo_url: &str,
) -> Result<(Map<String, Value>, bool), String> {
    let package = format!("{}/{}", upstream.vendor, request.name);
    let additional = state.additional_configuration(&package, tag)?;
    let mut release = state.release_state(&upstream.vendor, tag, pins, composer_repo_url);
    release.fallback_version = Some(tag);
    // History is rebuilt as it was tagged: no replace entries (spec 5.4 step 1).
    release.replace_versions = &shared::rules::NO_VERSIONS;
    let (config, verbatim) = edition_transforms(root_config, &package, &additional, request, &release);
    Ok((config, verbatim))
}

/// The nightly and new-release path (`createMetaPackage`): the root composer.json at the
/// branch head made into `<vendor>/<name>` at the map's (or the release's) version.
pub fn branch_metapackage(
    state: &TargetState,
    upstream: &UpstreamConfig,
    request: &MetaRequest<'_>,
    mut config: Map<String, Value>,
    release: &Release<'_>,
) -> Result<(Map<String, Value>, bool), String> {
    let magento_name = format!("magento/{}", request.name);
    let package = format!("{}/{}", upstream.vendor, request.name);
    let description = config.get("description").cloned().unwrap_or(Value::String(String::new()));
    let license = config.get("license").cloned().unwrap_or(Value::Array(Vec::new()));
    let require = config.get("require").cloned().unwrap_or(Value::Object(Map::new()));
    let version = release
        .version
        .filter(|v| !v.is_empty())
        .or_else(|| release.dependency_versions.get(&magento_name).map(String::as_str).filter(|v| !v.is_empty()))
        .or_else(|| release.dependency_versions.get(&package).map(String::as_str).filter(|v| !v.is_empty()))
        .unwrap_or(release.git_ref)
        .to_owned();
    let kind_type = match request.kind {
        MetapackageKind::Project => "project",
        MetapackageKind::Product => "metapackage",
    };
    config.insert("name".to_owned(), Value::String(magento_name.clone()));
    config.insert("description".to_owned(), description);
    config.insert("type".to_owned(), Value::String(kind_type.to_owned()));
    config.insert("license".to_owned(), license);
    config.insert("require".to_owned(), require);
    config.insert("version".to_owned(), Value::String(version.clone()));
    shared::rules::apply_transforms_to(&mut config, &magento_name, &version, &upstream.vendor, &upstream.transforms)
        .map_err(|e| e.to_string())?;
    let additional = state.additional_configuration(&package, release.git_ref)?;
    let (mut config, verbatim) = edition_transforms(config, &package, &additional, request, release);
    if upstream.vendor != shared::config::DEFAULT_VENDOR {
        distribution::vendor_rename(
            &mut config,
            &upstream.vendor,
            Some(release.dependency_versions),
            release.replace_versions,
        );
        distribution::set_dependency_versions(&mut config, release);
    }
    Ok((config, verbatim))
}

/// The community-edition transforms of spec 3.8 (and the vendor's variants). Returns whether the
/// result is a verbatim history snapshot (flavour filters leave those alone).
fn edition_transforms(
    config: Map<String, Value>,
    package: &str,
    additional: &Map<String, Value>,
    request: &MetaRequest<'_>,
    release: &Release<'_>,
) -> (Map<String, Value>, bool) {
    let verbatim = !release.dependency_versions.contains_key("*") && additional.contains_key("prefer-stable");
    let mage_os = release.vendor != shared::config::DEFAULT_VENDOR;
    let mut config = match request.kind {
        MetapackageKind::Project => {
            let config = distribution::community_project(config, package, additional, release);
            if mage_os { distribution::mage_os_project(config, release) } else { config }
        }
        MetapackageKind::Product => {
            let config = distribution::community_product(config, package, additional, release);
            if mage_os { distribution::mage_os_product(config, release) } else { config }
        }
    };
    if !verbatim
        && let Some((_, flavour)) = request.flavour
        && let Some(description) = &flavour.description
    {
        config.insert("description".to_owned(), Value::String(description.clone()));
    }
    (config, verbatim)
}
