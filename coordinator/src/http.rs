//! The HTTP endpoint of `coordinator serve` (axum on hyper's HTTP/1 connections): webhooks
//! (`/hooks/github`, `/hooks/gitlab`, `/hooks/trigger`), health (`/healthz`, `/readyz`),
//! `/metrics`, and the status (`/status` as JSON, `/` as an HTML page).
//!
//! A webhook is checked in this order, and no body byte is read before its credential header
//! passed: hook enabled (404), content type (415), credential header (401: missing, malformed, or
//! a wrong token), declared size (413), the shared body budget (503); then the body, within
//! `body_timeout` (408) and `max_body` (413), with GitHub's HMAC computed as it arrives (401),
//! replay (409), payload (400); then it is accepted (202) or ignored with the reason (202).
//!
//! The accept loop is our own so that every connection is bounded: at most `max_connections` are
//! open (the rest wait in the kernel's accept queue, holding no descriptor of ours), a request's
//! head gets `header_timeout` and 32 KiB, a kept-alive connection waits `idle_timeout` for its next
//! request, and the webhook bodies held in memory add up to at most `max_body_memory`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use shared::config::{Secret, ServeConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::hooks::{self, Decision};
use crate::metrics::{HookLabels, Metrics};
use crate::pipeline::Farm;
use crate::status::{StatusBoard, render_html};
use crate::triggers::Triggers;

/// Deliveries remembered for replay detection.
const REMEMBERED_DELIVERIES: usize = 10_000;

/// Largest request head (request line and headers; larger: 431). Forge deliveries and probes
/// send a few KiB; browsers opening the status page may bring cookies.
const MAX_HEAD: usize = 32 * 1024;

/// Bytes an answer's body must progress by within `idle_timeout` (about 1 KiB/s at the default
/// 60 s) for its connection to stay open: a client that takes a byte now and then cannot hold a
/// slot for ever.
const MIN_PROGRESS: usize = 64 * 1024;

/// Largest read buffer of a connection: bounds the body bytes a connection holds before the
/// handler takes them.
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
    /// Webhook bodies held in memory, over all requests.
    budget: Arc<BodyBudget>,
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
        let budget = Arc::new(BodyBudget::new(farm.config().serve.max_body_memory));
        let seen = quick_cache::sync::Cache::new(REMEMBERED_DELIVERIES);
        AppState { farm, status, metrics, triggers, stopping, seen, budget }
    }

    /// The status document: the board, and the repository's health as the farm records it.
    fn document(&self) -> crate::status::StatusDocument {
        crate::status::StatusDocument { health: Some(self.farm.health()), ..self.status.snapshot() }
    }
}

/// The routes. Handlers that take no body leave it unread (hyper then closes the connection
/// rather than wait for it); the webhooks read theirs with [`read_body`].
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/hooks/github", post(github))
        .route("/hooks/gitlab", post(gitlab))
        .route("/hooks/trigger", post(trigger))
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
        return Html(render_html(&app.document())).into_response();
    }
    axum::Json(app.document()).into_response()
}

async fn status_page(State(app): State<Arc<AppState>>) -> Html<String> {
    Html(render_html(&app.document()))
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

/// A refusal while (some of) the body is unread: the connection is closed after the answer, so
/// the client learns it need not send the rest.
fn refuse_unread(app: &AppState, source: &str, status: StatusCode, reason: &str) -> Box<Response> {
    let mut response = refuse(app, source, status, reason);
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    Box::new(response)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The body must be JSON (415), judged by its header before it is read.
fn require_json(app: &AppState, source: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" {
        return Ok(());
    }
    Err(refuse_unread(
        app,
        source,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body must be application/json (GitHub: set the webhook's content type to application/json)",
    ))
}

/// Bytes of webhook bodies held in memory at once, over all requests (`serve.max_body_memory`).
#[derive(Debug)]
struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
}

impl BodyBudget {
    /// A budget of `limit` bytes.
    fn new(limit: usize) -> BodyBudget {
        BodyBudget { limit, used: AtomicUsize::new(0) }
    }

    /// Reserves `bytes`, or None when that would exceed the limit.
    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut reservation = Reservation { budget: Arc::clone(self), bytes: 0 };
        reservation.grow_to(bytes).then_some(reservation)
    }
}

/// Bytes taken from the budget, given back when dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: usize,
}

impl Reservation {
    /// Takes more, up to `total`; false (and unchanged) when the budget has no room.
    fn grow_to(&mut self, total: usize) -> bool {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let limit = self.budget.limit;
        let taken = self.budget.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            used.checked_add(more).filter(|after| *after <= limit)
        });
        if taken.is_ok() {
            self.bytes = total;
        }
        taken.is_ok()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A webhook body in memory, counted against the budget until dropped.
struct HeldBody {
    bytes: Vec<u8>,
    reservation: Reservation,
}

impl HeldBody {
    /// Appends a chunk; room is reserved before it is allocated.
    fn append(&mut self, chunk: &[u8], max_body: usize) -> Result<(), BodyError> {
        let needed = self.bytes.len() + chunk.len();
        if needed > max_body {
            return Err(BodyError::TooLarge(max_body));
        }
        if needed > self.bytes.capacity() {
            let capacity = needed.max(self.bytes.capacity() * 2).min(max_body);
            if !self.reservation.grow_to(capacity) {
                return Err(BodyError::Busy);
            }
            self.bytes.reserve_exact(capacity - self.bytes.len());
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

/// Why a webhook body was not read.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// Declared or grown over `serve.max_body`.
    #[error("the body is larger than serve.max_body ({0} bytes)")]
    TooLarge(usize),
    /// The budget of bodies in memory is spent.
    #[error("too many webhook bodies are being received at once (serve.max_body_memory); try again later")]
    Busy,
    /// Not all there within `serve.body_timeout`.
    #[error("the body did not arrive within serve.body_timeout ({})", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// The coordinator is shutting down: it does not wait for a body still on its way.
    #[error("the coordinator is shutting down; deliver again later")]
    Stopping,
    /// The client broke off or sent a malformed body.
    #[error("the body could not be read: {0}")]
    Broken(#[source] axum::Error),
}

impl BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Busy | BodyError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a webhook body within `max_body`, `body_timeout` and the shared budget (and not past a
/// shutdown), feeding `signature` as the chunks arrive. A declared length is refused (413) or reserved in full (503
/// when there is no room) before the first byte is read; a body without one reserves as it grows.
async fn read_body(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    mut signature: Option<&mut hooks::BodySignature>,
) -> Result<HeldBody, BodyError> {
    let serve = &app.farm.config().serve;
    let declared = header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > serve.max_body) {
        return Err(BodyError::TooLarge(serve.max_body));
    }
    let length = declared.unwrap_or(0);
    let reservation = app.budget.reserve(length).ok_or(BodyError::Busy)?;
    let mut held = HeldBody { bytes: Vec::with_capacity(length), reservation };
    let mut chunks = body.into_data_stream();
    let receive = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(BodyError::Broken)?;
            held.append(&chunk, serve.max_body)?;
            if let Some(signature) = signature.as_deref_mut() {
                signature.update(&chunk);
            }
        }
        Ok(())
    };
    let received = tokio::select! {
        received = tokio::time::timeout(serve.body_timeout, receive) => received,
        () = app.stopping.cancelled() => return Err(BodyError::Stopping),
    };
    match received {
        Ok(Ok(())) => Ok(held),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(BodyError::TimedOut(serve.body_timeout)),
    }
}

fn body_refused(app: &AppState, source: &str, error: &BodyError) -> Box<Response> {
    refuse_unread(app, source, error.status(), &error.to_string())
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
    secret: fn(&ServeConfig) -> Option<&Secret>,
    disabled: &'static str,
    /// Checks the credential header before the body is read; Some when the body itself must be
    /// verified as well (a signature over it).
    credential: fn(&Secret, &HeaderMap) -> Result<Option<hooks::BodySignature>, hooks::AuthError>,
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
    credential: |secret, headers| {
        hooks::BodySignature::github(secret, header_str(headers, "x-hub-signature-256")).map(Some)
    },
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
    credential: |secret, headers| {
        hooks::verify_token(secret, header_str(headers, "x-gitlab-token"), "X-Gitlab-Token").map(|()| None)
    },
    delivery_headers: &["x-gitlab-event-uuid", "idempotency-key"],
    event_header: "x-gitlab-event",
    push_events: &["Push Hook", "Tag Push Hook"],
    ping_event: None,
    parse: hooks::gitlab_push,
};

async fn github(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    forge_hook(&app, &GITHUB, &headers, body).await
}

async fn gitlab(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    forge_hook(&app, &GITLAB, &headers, body).await
}

/// Everything up to authenticity: hook enabled (404), JSON (415) and the credential header (401)
/// before any body byte is read; then the body (413, 503, 408) and, for GitHub, its signature
/// (401).
async fn authentic_body(
    app: &AppState,
    forge: &Forge,
    headers: &HeaderMap,
    body: Body,
) -> Result<HeldBody, Box<Response>> {
    let source = forge.source;
    let Some(secret) = (forge.secret)(&app.farm.config().serve) else {
        return Err(refuse_unread(app, source, StatusCode::NOT_FOUND, forge.disabled));
    };
    require_json(app, source, headers)?;
    let mut signature = (forge.credential)(secret, headers)
        .map_err(|error| refuse_unread(app, source, StatusCode::UNAUTHORIZED, &error.to_string()))?;
    let held = read_body(app, headers, body, signature.as_mut()).await.map_err(|e| body_refused(app, source, &e))?;
    if let Some(signature) = signature {
        signature
            .verify()
            .map_err(|error| Box::new(refuse(app, source, StatusCode::UNAUTHORIZED, &error.to_string())))?;
    }
    Ok(held)
}

/// A forge's push hook: authenticity and body, replay, event, payload.
async fn forge_hook(app: &AppState, forge: &Forge, headers: &HeaderMap, body: Body) -> Response {
    let source = forge.source;
    // Held (and counted against the budget) until the answer.
    let held = match authentic_body(app, forge, headers, body).await {
        Ok(held) => held,
        Err(response) => return *response,
    };
    let body = held.bytes.as_slice();
    let delivery = forge.delivery_headers.iter().find_map(|name| header_str(headers, name)).unwrap_or("");
    let Some(keys) = replayed(app, delivery, body) else {
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
    match (forge.parse)(body) {
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

const TRIGGER: &str = "trigger";

/// The trigger's request: enabled (404) and the bearer token (401) before the body is read; then
/// the body (413, 503, 408), JSON when not empty (415), and its form (400).
async fn trigger_request(app: &AppState, headers: &HeaderMap, body: Body) -> Result<TriggerRequest, Box<Response>> {
    let Some(secret) = &app.farm.config().serve.trigger_token else {
        let reason = "the trigger is not enabled (serve.trigger_token)";
        return Err(refuse_unread(app, TRIGGER, StatusCode::NOT_FOUND, reason));
    };
    hooks::verify_bearer(secret, header_str(headers, header::AUTHORIZATION.as_str()))
        .map_err(|error| refuse_unread(app, TRIGGER, StatusCode::UNAUTHORIZED, &error.to_string()))?;
    let held = read_body(app, headers, body, None).await.map_err(|e| body_refused(app, TRIGGER, &e))?;
    if held.bytes.is_empty() {
        return Ok(TriggerRequest::default());
    }
    require_json(app, TRIGGER, headers)?;
    serde_json::from_slice(&held.bytes)
        .map_err(|error| Box::new(refuse(app, TRIGGER, StatusCode::BAD_REQUEST, &format!("bad request body: {error}"))))
}

async fn trigger(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let request = match trigger_request(&app, &headers, body).await {
        Ok(request) => request,
        Err(response) => return *response,
    };
    let upstreams: Vec<String> = match request.upstream {
        // A script names what it wants: a name that does not exist is its mistake (404).
        Some(key) if !app.farm.config().upstreams.iter().any(|u| u.key == key) => {
            return refuse(&app, TRIGGER, StatusCode::NOT_FOUND, &format!("no upstream '{key}' is configured"));
        }
        Some(key) => vec![key],
        None => app.farm.config().upstreams.iter().map(|u| u.key.clone()).collect(),
    };
    for upstream in &upstreams {
        app.triggers.send(upstream, "trigger");
    }
    info!(?upstreams, "build triggered");
    answer(&app, TRIGGER, StatusCode::ACCEPTED, json!({ "status": "accepted", "upstreams": upstreams }))
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
            Ok((stream, _)) => {
                // Answers end in small writes (a body's last bytes after its headers): without
                // this, each kept-alive request waits out the client's delayed ACK (~40 ms).
                if let Err(error) = stream.set_nodelay(true) {
                    debug!(%error, "cannot set TCP_NODELAY");
                }
                return Some(stream);
            }
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
    /// An answer's body is being sent: closed when the client takes no byte for the idle timeout.
    Sending,
    /// Kept alive after an answer, waiting for the next request.
    Idle,
}

/// A connection's phase and since when, shared by its reads, its service and its watchdog.
struct Clock {
    state: Mutex<(Phase, Instant)>,
    /// Bytes sent since the `Sending` deadline was last moved.
    unsent_credit: std::sync::atomic::AtomicUsize,
    changed: Notify,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            state: Mutex::new((Phase::Head, Instant::now())),
            unsent_credit: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (Phase, Instant)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, phase: Phase) {
        *self.state() = (phase, Instant::now());
        self.unsent_credit.store(0, Ordering::Release);
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

    /// `written` bytes were sent: a download that progresses by [`MIN_PROGRESS`] bytes per
    /// `idle_timeout` is not cut; one that trickles slower is, like an idle connection.
    fn bytes_written(&self, written: usize) {
        let sent = self.unsent_credit.fetch_add(written, Ordering::AcqRel) + written;
        if sent < MIN_PROGRESS {
            return;
        }
        let mut state = self.state();
        if state.0 == Phase::Sending {
            self.unsent_credit.store(0, Ordering::Release);
            state.1 = Instant::now();
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
            Phase::Idle | Phase::Sending => Some(since + timeouts.idle),
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
    builder.header_read_timeout(Option::<Duration>::None).max_header_size(MAX_HEAD).max_buf_size(READ_BUFFER);
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
                if clock.phase() == Phase::Head || clock.phase() == Phase::Idle {
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
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            this.clock.bytes_written(written);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled {
            this.clock.bytes_written(written);
        }
        polled
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
            let response = response.await?;
            // Sending until the body is sent (or dropped): a long download is timed by its
            // progress, not cut as an idle connection.
            answered.0.enter(Phase::Sending);
            Ok(response.map(|inner| Body::new(SentBody { inner, _answered: answered })))
        })
    }
}

/// Puts the connection back to idle once its request is answered (or dropped unanswered).
struct Answered(Arc<Clock>);

/// An answer's body, holding the connection in [`Phase::Sending`] until it is dropped.
struct SentBody {
    inner: Body,
    _answered: Answered,
}

impl http_body::Body for SentBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Arc::new(BodyBudget::new(100));
        let first = budget.reserve(60).unwrap();
        assert!(budget.reserve(41).is_none());
        let mut second = budget.reserve(40).unwrap();
        assert!(!second.grow_to(41));
        assert_eq!(second.bytes, 40);
        drop(first);
        assert!(second.grow_to(100));
        drop(second);
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_growing_body_reserves_before_it_allocates() {
        let budget = Arc::new(BodyBudget::new(1000));
        let mut held = HeldBody { bytes: Vec::new(), reservation: budget.reserve(0).unwrap() };
        held.append(&[1; 300], 800).unwrap();
        assert_eq!(held.reservation.bytes, 300);
        held.append(&[2; 300], 800).unwrap();
        assert_eq!((held.bytes.len(), held.reservation.bytes), (600, 600));
        assert!(matches!(held.append(&[3; 300], 800), Err(BodyError::TooLarge(800))));
        let mut other = HeldBody { bytes: Vec::new(), reservation: budget.reserve(0).unwrap() };
        other.append(&[4; 300], 800).unwrap();
        assert!(matches!(other.append(&[5; 300], 800), Err(BodyError::Busy)));
        drop((held, other));
        assert_eq!(budget.used.load(Ordering::Acquire), 0);
    }

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

    #[tokio::test(start_paused = true)]
    async fn a_download_stays_open_only_while_it_progresses() {
        let timeouts = Timeouts { header: Duration::from_secs(10), idle: Duration::from_secs(60) };
        let clock = Clock::new();
        clock.enter(Phase::Sending);
        let first = clock.deadline(timeouts).unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        // A trickle does not move the deadline.
        clock.bytes_written(MIN_PROGRESS - 1);
        assert_eq!(clock.deadline(timeouts), Some(first));
        // Progress does.
        clock.bytes_written(1);
        assert_eq!(clock.deadline(timeouts), Some(first + Duration::from_secs(30)));
        // Bytes after the body was sent keep the connection idle.
        clock.enter(Phase::Idle);
        let idle = clock.deadline(timeouts);
        clock.bytes_written(MIN_PROGRESS);
        assert_eq!(clock.deadline(timeouts), idle);
    }
}
