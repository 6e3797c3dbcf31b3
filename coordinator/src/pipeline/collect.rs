//! The result loop of a build: jobs go to the dispatcher (in-process workers or the broker), and
//! each result or dead letter is recorded as it arrives, until every job is answered, results stop
//! coming (`queue.result_timeout`), or the coordinator stops (after `serve.shutdown_grace`).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use shared::amqp::AmqpError;
use shared::git::GitCache;
use shared::messages::{BuildId, BuildJob, Outcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::farm::Farm;
use super::record;
use crate::dispatch::{self, Event};
use crate::plan::candidate::Candidate;
use crate::report::{BuildReport, DeadLetterNote};

/// Results between intermediate manifest saves.
const MANIFEST_SAVE_EVERY: usize = 100;

/// What the result loop hands on: the jobs never answered and why.
pub struct Collected {
    /// Candidates whose job has no result.
    pub unanswered: Vec<Candidate>,
    /// Why their results are missing (for the report).
    pub missing_reason: String,
}

/// How the wait for results ended, when it ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Every job answered, or the dispatcher closed.
    Answered,
    /// No result within `queue.result_timeout`.
    TimedOut,
    /// The coordinator stopped and the grace time passed.
    Stopped,
}

/// The deadlines of the wait: the idle limit (moved by each of this build's results) and, once
/// stopping, the end of the grace time.
struct Deadlines {
    idle_limit: Option<Duration>,
    idle: Option<Instant>,
    stop_at: Option<Instant>,
    /// Every job is out (the in-process queue has them at once; the broker confirms).
    published: bool,
}

impl Deadlines {
    fn wake(&self) -> Option<Instant> {
        [self.idle, self.stop_at].into_iter().flatten().min()
    }

    fn answered(&mut self) {
        if let (Some(at), Some(limit)) = (self.idle.as_mut(), self.idle_limit) {
            *at = Instant::now() + limit;
        }
    }
}

/// Sends `jobs` out and records every answer in the farm's manifest and in `report`.
pub async fn collect(
    farm: &Farm,
    build_id: &BuildId,
    jobs: Vec<BuildJob>,
    mut pending: HashMap<String, Candidate>,
    report: &mut BuildReport,
    progress: bool,
) -> anyhow::Result<Collected> {
    let (events, mut received) = mpsc::channel(1024);
    let done = CancellationToken::new();
    farm.metrics.jobs_published.inc_by(jobs.len() as u64);
    farm.metrics.jobs_pending.inc_by(jobs.len() as i64);
    let dispatcher = start_dispatcher(farm, build_id, jobs, events, done.clone());
    let idle_limit = farm.config().queue.as_ref().map(|queue| queue.result_timeout);
    let mut deadlines = Deadlines {
        idle_limit,
        idle: idle_limit.map(|limit| Instant::now() + limit),
        stop_at: None,
        published: farm.config().queue.is_none(),
    };
    let bar = progress_bar(progress, pending.len() as u64);
    let total = pending.len();
    let mut ended = Ended::Answered;
    while !pending.is_empty() {
        let event = match next_event(farm, &mut received, &mut deadlines, pending.len()).await {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(how) => {
                ended = how;
                break;
            }
        };
        let Some((candidate, outcome, attempts)) = answer(event, &mut pending, report, build_id) else {
            continue;
        };
        deadlines.answered();
        count(farm, &outcome, attempts);
        record::outcome(farm.storage.as_ref(), &farm.manifest, report, &candidate, outcome).await?;
        let done_count = report.built.len() + report.failed.len();
        // A killed build resumes from here instead of from the start.
        // (Best effort: storage may be away for a while; the final save retries.)
        if done_count.is_multiple_of(MANIFEST_SAVE_EVERY) {
            farm.lock_check()?;
            if let Err(error) = farm.save_manifest().await {
                warn!(error = format!("{error:#}"), "cannot save the manifest now; the final save tries again");
            }
        }
        match &bar {
            Some(bar) => {
                bar.set_message(format!("{} {}", candidate.package, candidate.version));
                bar.inc(1);
            }
            None => info!(package = %candidate.package, version = %candidate.version, "{done_count}/{total} done"),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    done.cancel();
    drop(received);
    let dispatch_error = stop_dispatcher(dispatcher).await?;
    let missing_reason = missing_reason(dispatch_error, ended, idle_limit);
    if !pending.is_empty() {
        warn!(missing = pending.len(), reason = %missing_reason, "results missing");
        farm.metrics.jobs_pending.dec_by(pending.len() as i64);
        // Jobs cut off by a shutdown are not failures: the next start finishes them.
        if ended != Ended::Stopped {
            farm.metrics.jobs_failed.inc_by(pending.len() as u64);
        }
    }
    Ok(Collected { unanswered: pending.into_values().collect(), missing_reason })
}

/// The in-process workers, or the broker, as the configuration says.
fn start_dispatcher(
    farm: &Farm,
    build_id: &BuildId,
    jobs: Vec<BuildJob>,
    events: mpsc::Sender<Event>,
    done: CancellationToken,
) -> JoinHandle<Result<(), AmqpError>> {
    let config = farm.config();
    match &config.queue {
        None => {
            let cache = Arc::new(GitCache::new(config.cache_dir()));
            let pipeline = worker::Pipeline::new(config.workers(), config.storage.uploads);
            tokio::spawn(dispatch::in_process(jobs, events, cache, Arc::clone(&farm.storage), pipeline, done))
        }
        Some(queue) => tokio::spawn(dispatch::amqp(queue.clone(), build_id.clone(), jobs, events, done)),
    }
}

/// The next event, `None` when the dispatcher closed, or how the wait ended early. On shutdown the
/// jobs are published first, then results are awaited for the grace time.
async fn next_event(
    farm: &Farm,
    received: &mut mpsc::Receiver<Event>,
    deadlines: &mut Deadlines,
    pending: usize,
) -> Result<Option<Event>, Ended> {
    loop {
        if deadlines.stop_at.is_none() && deadlines.published && farm.stopping.is_cancelled() {
            info!(pending, grace = ?farm.grace, "stopping: waiting for results in flight");
            deadlines.stop_at = Some(Instant::now() + farm.grace);
        }
        let watch_stop = deadlines.stop_at.is_none() && deadlines.published;
        let wake = deadlines.wake();
        tokio::select! {
            event = received.recv() => match event {
                Some(Event::Published) => deadlines.published = true,
                other => return Ok(other),
            },
            () = sleep_until(wake) => {
                let stopped = deadlines.stop_at.is_some_and(|at| Instant::now() >= at);
                return Err(if stopped { Ended::Stopped } else { Ended::TimedOut });
            }
            () = farm.stopping.cancelled(), if watch_stop => {}
        }
    }
}

/// The candidate an event answers, with its outcome and attempts; `None` for an event that
/// answers nothing of this build (a second answer of a redelivered job, another build's traffic).
fn answer(
    event: Event,
    pending: &mut HashMap<String, Candidate>,
    report: &mut BuildReport,
    build_id: &BuildId,
) -> Option<(Candidate, Outcome, u32)> {
    match event {
        Event::Published => None,
        Event::Result(result) => match pending.remove(&result.job_id.0) {
            Some(candidate) => Some((candidate, result.outcome, result.attempts)),
            None => {
                // A redelivered job answers twice; the first answer counted.
                debug!(job_id = %result.job_id.0, "result for a job already answered (or of another build)");
                None
            }
        },
        Event::DeadLetter(letter) => {
            let ours = letter.build_id.as_deref() == Some(build_id.0.as_str());
            if let Some(candidate) = letter.job_id.as_ref().filter(|_| ours).and_then(|id| pending.remove(id)) {
                let reason = format!("dead-lettered: {}", letter.reason);
                return Some((candidate, Outcome::Failed { reason }, 1));
            }
            if letter.build_id.is_none() {
                warn!(reason = %letter.reason, "a message that is not a job was dead-lettered");
                report.dead_letters.push(DeadLetterNote { reason: letter.reason, excerpt: letter.excerpt });
            }
            None
        }
    }
}

/// Job metrics of one answer.
fn count(farm: &Farm, outcome: &Outcome, attempts: u32) {
    farm.metrics.jobs_pending.dec();
    farm.metrics.jobs_retried.inc_by(u64::from(attempts.saturating_sub(1)));
    match outcome {
        Outcome::Built { size, .. } => {
            farm.metrics.jobs_succeeded.inc();
            farm.metrics.bytes_uploaded.inc_by(*size);
        }
        Outcome::Failed { .. } => {
            farm.metrics.jobs_failed.inc();
        }
    }
}

/// Waits for the dispatcher to stop (it stops at `done`); one stuck on an unresponsive broker is
/// not waited for. Returns its error, if it ended with one.
async fn stop_dispatcher(dispatcher: JoinHandle<Result<(), AmqpError>>) -> anyhow::Result<Option<String>> {
    let abort = dispatcher.abort_handle();
    match tokio::time::timeout(Duration::from_secs(30), dispatcher).await {
        Ok(joined) => Ok(joined.context("dispatcher panicked")?.err().map(|error| error.to_string())),
        Err(_) => {
            abort.abort();
            warn!("the dispatcher did not stop within 30s; abandoned");
            Ok(None)
        }
    }
}

/// A job whose result never arrived is a failure, not silence: this says why.
fn missing_reason(dispatch_error: Option<String>, ended: Ended, idle_limit: Option<Duration>) -> String {
    match (dispatch_error, idle_limit) {
        (Some(error), _) => format!("no result: {error}"),
        _ if ended == Ended::Stopped => "the coordinator stopped before the result came back; the next build records \
                                         the archive if it was stored, else builds it"
            .to_owned(),
        (None, Some(limit)) if ended == Ended::TimedOut => format!(
            "no result within {} (result_timeout): the job may still be queued or running; a later build picks it up",
            humantime::format_duration(limit)
        ),
        _ => "no result came back from the worker".to_owned(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn progress_bar(enabled: bool, total: u64) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} {msg}")
            .expect("valid template"),
    );
    Some(bar)
}
