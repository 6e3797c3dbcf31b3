//! The HTTP endpoint of `coordinator serve` (axum on hyper's HTTP/1 connections): webhooks
//! (`/hooks/github`, `/hooks/gitlab`, `/hooks/trigger`), health (`/healthz`, `/readyz`),
//! `/metrics`, and the status (`/status` as JSON, `/` as an HTML page).
//!
//! A webhook is checked in this order: body size (413), content type (415), authenticity (401),
//! replay (409), payload (400); then it is accepted (202) or ignored with the reason (202).
//!
//! The accept loop is our own so that every connection is bounded: at most `max_connections` are
//! open (the rest wait in the kernel's accept queue, holding no descriptor of ours), a request's
//! headers get `header_timeout`, and a kept-alive connection waits `idle_timeout` for its next
//! request.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use shared::config::ServeConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::build::Farm;
use crate::hooks::{self, Decision};
use crate::metrics::{HookLabels, Metrics};
use crate::serve::Triggers;
use crate::status::{StatusBoard, render_html};
use shared::config::Secret;

/// Deliveries remembered for replay detection.
const REMEMBERED_DELIVERIES: usize = 10_000;

/// Largest read buffer of a connection: bounds the headers (larger: 431) and the body bytes a
/// connection holds before the handler takes them.
const READ_BUFFER: usize = 64 * 1024;

/// What the handlers share.
pub struct AppState {
    /// Storage, lock and manifest.
    pub farm: Arc<Farm>,
    /// What every upstream is doing.
    pub status: Arc<StatusBoard>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where triggers go.
    pub triggers: Triggers,
    /// Cancelled on shutdown (then `/readyz` answers 503).
    pub stopping: CancellationToken,
    /// Delivery ids and body digests already accepted.
    seen: quick_cache::sync::Cache<String, ()>,
}

impl AppState {
    /// Shared state of the handlers.
    pub fn new(
        farm: Arc<Farm>,
        status: Arc<StatusBoard>,
        metrics: Arc<Metrics>,
        triggers: Triggers,
        stopping: CancellationToken,
    ) -> AppState {
        AppState {
            farm,
            status,
            metrics,
            triggers,
            stopping,
            seen: quick_cache::sync::Cache::new(REMEMBERED_DELIVERIES),
        }
    }
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.farm.config().serve.max_body;
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .route("/hooks/trigger", post(trigger))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.stopping.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else if !app.farm.lock_held() {
        (StatusCode::SERVICE_UNAVAILABLE, "the storage lock was lost\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.encode())
        .into_response()
}

async fn status(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Browsers ask for HTML first; everything else gets JSON.
    if accept.starts_with("text/html") {
        return Html(render_html(&app.status.snapshot())).into_response();
    }
    axum::Json(app.status.snapshot()).into_response()
}

async fn status_page(State(app): State<Arc<AppState>>) -> Html<String> {
    Html(render_html(&app.status.snapshot()))
}

/// A webhook answer, counted in the metrics.
fn answer(app: &AppState, source: &str, status: StatusCode, body: serde_json::Value) -> Response {
    app.metrics.webhooks.get_or_create(&HookLabels { source: source.to_owned(), status: status.as_u16() }).inc();
    (status, axum::Json(body)).into_response()
}

fn refuse(app: &AppState, source: &str, status: StatusCode, reason: &str) -> Response {
    // Never the secret, the signature or the headers: only what was wrong.
    warn!(source, status = status.as_u16(), reason, "webhook refused");
    answer(app, source, status, json!({ "status": "refused", "reason": reason }))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The checks every hook shares up to authenticity: the body arrived within the limit (413)
/// and is JSON (415).
fn read_body(
    app: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    allow_empty: bool,
) -> Result<Bytes, Box<Response>> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        Box::new(refuse(app, source, status, &rejection.body_text()))
    })?;
    if allow_empty && body.is_empty() {
        return Ok(body);
    }
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" {
        return Err(Box::new(refuse(
            app,
            source,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be application/json (GitHub: set the webhook's content type to application/json)",
        )));
    }
    Ok(body)
}

/// Replay check: a delivery id or an identical body seen before is refused (409). Both are
/// remembered only once a request was accepted or ignored, so a delivery that failed may be
/// redelivered.
fn replayed(app: &AppState, delivery: &str, body: &[u8]) -> Option<Vec<String>> {
    use sha2::Digest as _;
    let mut keys = vec![format!("body:{}", hex::encode(sha2::Sha256::digest(body)))];
    if !delivery.is_empty() {
        keys.push(format!("delivery:{delivery}"));
    }
    if keys.iter().any(|key| app.seen.get(key).is_some()) { None } else { Some(keys) }
}

fn remember(app: &AppState, keys: Vec<String>) {
    for key in keys {
        app.seen.insert(key, ());
    }
}

/// Sends the push on, or says why not.
fn dispatch_push(app: &AppState, source: &str, push: hooks::Push, delivery: &str, keys: Vec<String>) -> Response {
    remember(app, keys);
    match hooks::decide(&app.farm.config().upstreams, &push) {
        Decision::Ignore(reason) => {
            info!(source, delivery, repository = %push.repository, git_ref = %push.git_ref, %reason, "webhook ignored");
            answer(app, source, StatusCode::ACCEPTED, json!({ "status": "ignored", "reason": reason }))
        }
        Decision::Build(upstreams) => {
            let trigger = format!("{source} push {} {}", push.git_ref, short(&push.after));
            for upstream in &upstreams {
                app.triggers.send(upstream, &trigger);
            }
            info!(source, delivery, repository = %push.repository, git_ref = %push.git_ref, ?upstreams, "webhook accepted");
            answer(app, source, StatusCode::ACCEPTED, json!({ "status": "accepted", "upstreams": upstreams }))
        }
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// What differs between the forges' push hooks.
struct Forge {
    source: &'static str,
    secret: fn(&shared::config::ServeConfig) -> Option<&Secret>,
    disabled: &'static str,
    verify: fn(&Secret, &HeaderMap, &[u8]) -> Result<(), hooks::AuthError>,
    delivery_headers: &'static [&'static str],
    event_header: &'static str,
    push_events: &'static [&'static str],
    ping_event: Option<&'static str>,
    parse: fn(&[u8]) -> Result<hooks::Push, serde_json::Error>,
}

const GITHUB: Forge = Forge {
    source: "github",
    secret: |serve| serve.github_secret.as_ref(),
    disabled: "GitHub webhooks are not enabled (serve.github_secret)",
    verify: |secret, headers, body| hooks::verify_github(secret, header_str(headers, "x-hub-signature-256"), body),
    delivery_headers: &["x-github-delivery"],
    event_header: "x-github-event",
    push_events: &["push"],
    ping_event: Some("ping"),
    parse: hooks::github_push,
};

const GITLAB: Forge = Forge {
    source: "gitlab",
    secret: |serve| serve.gitlab_token.as_ref(),
    disabled: "GitLab webhooks are not enabled (serve.gitlab_token)",
    verify: |secret, headers, _| hooks::verify_token(secret, header_str(headers, "x-gitlab-token"), "X-Gitlab-Token"),
    delivery_headers: &["x-gitlab-event-uuid", "idempotency-key"],
    event_header: "x-gitlab-event",
    push_events: &["Push Hook", "Tag Push Hook"],
    ping_event: None,
    parse: hooks::gitlab_push,
};

async fn github(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    forge_hook(&app, &GITHUB, &headers, body)
}

async fn gitlab(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    forge_hook(&app, &GITLAB, &headers, body)
}

/// A forge's push hook: body, content type, authenticity, replay, event, payload.
fn forge_hook(app: &AppState, forge: &Forge, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let source = forge.source;
    let body = match read_body(app, source, headers, body, false) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let Some(secret) = (forge.secret)(&app.farm.config().serve) else {
        return refuse(app, source, StatusCode::NOT_FOUND, forge.disabled);
    };
    if let Err(error) = (forge.verify)(secret, headers, &body) {
        return refuse(app, source, StatusCode::UNAUTHORIZED, &error.to_string());
    }
    let delivery = forge.delivery_headers.iter().find_map(|name| header_str(headers, name)).unwrap_or("");
    let Some(keys) = replayed(app, delivery, &body) else {
        return refuse(app, source, StatusCode::CONFLICT, "this delivery was already received");
    };
    let event = header_str(headers, forge.event_header).unwrap_or("");
    if forge.ping_event == Some(event) {
        remember(app, keys);
        info!(source, delivery, "ping");
        return answer(app, source, StatusCode::OK, json!({ "status": "pong" }));
    }
    if !forge.push_events.contains(&event) {
        remember(app, keys);
        let reason = format!("event '{event}' is not handled (only {})", forge.push_events.join(", "));
        return answer(app, source, StatusCode::ACCEPTED, json!({ "status": "ignored", "reason": reason }));
    }
    match (forge.parse)(&body) {
        Ok(push) => dispatch_push(app, source, push, delivery, keys),
        Err(error) => refuse(app, source, StatusCode::BAD_REQUEST, &format!("not a push payload: {error}")),
    }
}

/// Body of `/hooks/trigger`: `{"upstream": "<key>"}`; empty or without `upstream`: every upstream.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerRequest {
    #[serde(default)]
    upstream: Option<String>,
}

async fn trigger(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const SOURCE: &str = "trigger";
    let body = match read_body(&app, SOURCE, &headers, body, true) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let Some(secret) = &app.farm.config().serve.trigger_token else {
        return refuse(&app, SOURCE, StatusCode::NOT_FOUND, "the trigger is not enabled (serve.trigger_token)");
    };
    if let Err(error) = hooks::verify_bearer(secret, header_str(&headers, header::AUTHORIZATION.as_str())) {
        return refuse(&app, SOURCE, StatusCode::UNAUTHORIZED, &error.to_string());
    }
    let request: TriggerRequest = if body.is_empty() {
        TriggerRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => return refuse(&app, SOURCE, StatusCode::BAD_REQUEST, &format!("bad request body: {error}")),
        }
    };
    let upstreams: Vec<String> = match request.upstream {
        // A script names what it wants: a name that does not exist is its mistake (404).
        Some(key) if !app.farm.config().upstreams.iter().any(|u| u.key == key) => {
            return refuse(&app, SOURCE, StatusCode::NOT_FOUND, &format!("no upstream '{key}' is configured"));
        }
        Some(key) => vec![key],
        None => app.farm.config().upstreams.iter().map(|u| u.key.clone()).collect(),
    };
    for upstream in &upstreams {
        app.triggers.send(upstream, "trigger");
    }
    info!(?upstreams, "build triggered");
    answer(&app, SOURCE, StatusCode::ACCEPTED, json!({ "status": "accepted", "upstreams": upstreams }))
}

/// Serves `router` on `listener` until `stopping`; then closes the connections that are between
/// requests, lets those in a request finish it, and returns once all are closed.
pub async fn serve(listener: TcpListener, router: Router, config: &ServeConfig, stopping: CancellationToken) {
    let timeouts = Timeouts { header: config.header_timeout, idle: config.idle_timeout };
    let slots = Arc::new(Semaphore::new(config.max_connections));
    loop {
        // A slot before accepting: connections beyond the limit stay in the kernel's accept
        // queue, where they hold no descriptor of this process, and are taken in arrival order.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = stopping.cancelled() => break,
        };
        let Some(stream) = accept(&listener, &stopping).await else { break };
        tokio::spawn(connection(stream, router.clone(), timeouts, stopping.clone(), slot));
    }
    drop(listener);
    // Every connection holds its slot until it is closed.
    let all = u32::try_from(config.max_connections).expect("serve.max_connections is validated");
    let _closed = slots.acquire_many(all).await;
}

/// The next connection; None once stopping.
async fn accept(listener: &TcpListener, stopping: &CancellationToken) -> Option<TcpStream> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping.cancelled() => return None,
        };
        match accepted {
            Ok((stream, _)) => return Some(stream),
            Err(error) => {
                // Out of descriptors, or reset while queued: try again shortly rather than spin.
                warn!(%error, "cannot accept a connection");
                if !shared::amqp::sleep_unless_stopped(Duration::from_millis(100), stopping).await {
                    return None;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// Where a connection is, for its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving a request's headers: since the connection was accepted, or since the first byte
    /// of the next request on a kept-alive connection.
    Head,
    /// A request is being handled (a webhook's body has its own timeout there).
    Busy,
    /// Kept alive after an answer, waiting for the next request.
    Idle,
}

/// A connection's phase and since when, shared by its reads, its service and its watchdog.
struct Clock {
    state: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Clock {
    fn new() -> Clock {
        Clock { state: Mutex::new((Phase::Head, Instant::now())), changed: Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (Phase, Instant)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, phase: Phase) {
        *self.state() = (phase, Instant::now());
        self.changed.notify_one();
    }

    /// Bytes arrived: on an idle connection, the next request's headers have begun.
    fn bytes_read(&self) {
        let mut state = self.state();
        if state.0 == Phase::Idle {
            *state = (Phase::Head, Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    fn phase(&self) -> Phase {
        self.state().0
    }

    /// When the connection is closed unless its phase changes first; None while a request is
    /// handled.
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        let (phase, since) = *self.state();
        match phase {
            Phase::Head => Some(since + timeouts.header),
            Phase::Idle => Some(since + timeouts.idle),
            Phase::Busy => None,
        }
    }
}

/// One connection: hyper's HTTP/1 state machine, closed at its clock's deadline, or at shutdown
/// (between requests at once, in a request once it is answered).
async fn connection(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    stopping: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched { stream, clock: Arc::clone(&clock) });
    let service = Tracked { router: TowerToHyperService::new(router), clock: Arc::clone(&clock) };
    let mut builder = http1::Builder::new();
    // The clock times headers: hyper's own timer would also cut kept-alive connections at the
    // header timeout.
    builder.header_read_timeout(Option::<Duration>::None).max_buf_size(READ_BUFFER);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopped = false;
    loop {
        let deadline = clock.deadline(timeouts);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if clock.deadline(timeouts).is_some_and(|at| at <= Instant::now()) {
                    debug!(phase = ?clock.phase(), "connection timed out; closed");
                    return;
                }
            }
            () = clock.changed.notified() => {}
            () = stopping.cancelled(), if !stopped => {
                stopped = true;
                if clock.phase() != Phase::Busy {
                    return;
                }
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The TCP stream, telling the clock when bytes arrive.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router as hyper's service, marking the connection busy while a request is handled.
struct Tracked {
    router: TowerToHyperService<Router>,
    clock: Arc<Clock>,
}

type Answering = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = Answering;

    fn call(&self, request: Request<Incoming>) -> Answering {
        self.clock.enter(Phase::Busy);
        let answered = Answered(Arc::clone(&self.clock));
        let response = self.router.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(answered);
            response
        })
    }
}

/// Puts the connection back to idle once its request is answered (or dropped unanswered).
struct Answered(Arc<Clock>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_times_headers_and_idle_waits() {
        let timeouts = Timeouts { header: Duration::from_secs(10), idle: Duration::from_secs(60) };
        let clock = Clock::new();
        let head = clock.deadline(timeouts).unwrap();
        clock.bytes_read();
        assert_eq!(clock.deadline(timeouts), Some(head), "bytes of the first head do not extend it");
        clock.enter(Phase::Busy);
        assert_eq!(clock.deadline(timeouts), None);
        clock.enter(Phase::Idle);
        let idle = clock.deadline(timeouts).unwrap();
        assert!(idle >= head + Duration::from_secs(50));
        clock.bytes_read();
        assert_eq!(clock.phase(), Phase::Head);
        assert!(clock.deadline(timeouts).unwrap() < idle);
    }
}
