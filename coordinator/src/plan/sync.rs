//! Reading the upstreams, in parallel (bounded) and combined in configuration order: first every
//! upstream is fetched and what spans upstreams is read (latest tags, the nightly version map),
//! then every upstream is planned against the complete inputs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context;
use git2::Repository;
use shared::config::{FarmConfig, redact_url};
use shared::git::{GitCache, TagRef};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::findings::RepositoryFailure;
use super::inputs::TargetState;
use super::nightly;
use super::upstream::{self, UpstreamPlan};

/// One upstream fetched: its repository, latest tag and (nightly) version map entries.
type Synced = (Repository, Option<TagRef>, Option<(String, Vec<(String, String)>)>);

/// Fetches the upstreams `in_scope` (indexes into `config.upstreams`) and adds their latest tags
/// and nightly entries to `state`. Returns the repositories read, in configuration order.
pub async fn fetch(
    config: &Arc<FarmConfig>,
    cache: &Arc<GitCache>,
    in_scope: &[usize],
    state: &mut TargetState,
    failures: &mut Vec<RepositoryFailure>,
) -> anyhow::Result<Vec<(usize, Repository)>> {
    let limit = Arc::new(Semaphore::new(config.workers().max(1)));
    let mut tasks = Vec::new();
    for &index in in_scope {
        let (cache, config, limit) = (Arc::clone(cache), Arc::clone(config), Arc::clone(&limit));
        let (nightly, resources) = (state.rule == shared::config::VersionRule::Nightly, state.resources.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore is never closed");
            tokio::task::spawn_blocking(move || fetch_one(&config, &cache, index, nightly, resources.as_deref())).await
        }));
    }
    let mut synced = Vec::new();
    for (&index, task) in in_scope.iter().zip(tasks) {
        let upstream = &config.upstreams[index];
        match task.await.context("fetching task panicked")?.context("fetching task panicked")? {
            Ok((repo, latest, nightly)) => {
                state.add_latest_tag(&upstream.url, latest.map(|tag| tag.name));
                if let Some((base, entries)) = nightly {
                    state.add_nightly_entries(&upstream.key, &base, entries);
                }
                synced.push((index, repo));
            }
            Err(failure) => {
                warn!(upstream = %failure.upstream, reason = %failure.reason, "upstream failed");
                failures.push(failure);
            }
        }
    }
    Ok(synced)
}

/// Fetches one upstream (blocking) and reads its latest tag and, for a nightly, its entries.
fn fetch_one(
    config: &FarmConfig,
    cache: &GitCache,
    index: usize,
    nightly: bool,
    resources: Option<&std::path::Path>,
) -> Result<Synced, RepositoryFailure> {
    let upstream = &config.upstreams[index];
    let url = config.resolve_url(&upstream.url);
    let shown = redact_url(&url);
    let failure = |e: shared::git::GitError| RepositoryFailure {
        upstream: upstream.key.clone(),
        url: shown.clone(),
        reason: e.to_string(),
    };
    info!(upstream = %upstream.key, url = %shown, "fetching upstream");
    let repo = cache.sync(&url).map_err(failure)?;
    let (tags, _) = shared::git::list_tags(&repo).map_err(failure)?;
    let latest = shared::distribution::latest_tag(tags.iter().map(|t| t.name.as_str()))
        .and_then(|name| tags.into_iter().find(|t| t.name == name));
    let entries = if nightly {
        let flavours = &config.target.flavours;
        Some(nightly::nightly_entries(upstream, &repo, latest.as_ref(), resources, flavours).map_err(failure)?)
    } else {
        None
    };
    Ok((repo, latest, entries))
}

/// Plans every fetched upstream against the complete inputs. Returns each upstream's plan, in
/// configuration order.
pub async fn plan(
    config: &Arc<FarmConfig>,
    synced: Vec<(usize, Repository)>,
    state: &Arc<TargetState>,
    known: &HashMap<usize, BTreeMap<String, String>>,
    failures: &mut Vec<RepositoryFailure>,
) -> anyhow::Result<Vec<(usize, UpstreamPlan)>> {
    let limit = Arc::new(Semaphore::new(config.workers().max(1)));
    let mut tasks = Vec::new();
    for (index, repo) in synced {
        let (config, limit, state) = (Arc::clone(config), Arc::clone(&limit), Arc::clone(state));
        let known = known.get(&index).cloned();
        tasks.push((
            index,
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore is never closed");
                tokio::task::spawn_blocking(move || {
                    let upstream = &config.upstreams[index];
                    info!(upstream = %upstream.key, "planning");
                    upstream::plan_upstream(&config, upstream, &repo, &state, known.as_ref()).map_err(|e| {
                        RepositoryFailure {
                            upstream: upstream.key.clone(),
                            url: redact_url(&config.resolve_url(&upstream.url)),
                            reason: e.to_string(),
                        }
                    })
                })
                .await
            }),
        ));
    }
    let mut plans = Vec::new();
    for (index, task) in tasks {
        match task.await.context("planning task panicked")?.context("planning task panicked")? {
            Ok(plan) => plans.push((index, plan)),
            Err(failure) => {
                warn!(upstream = %failure.upstream, reason = %failure.reason, "upstream failed");
                failures.push(failure);
            }
        }
    }
    Ok(plans)
}
