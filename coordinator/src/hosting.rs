//! The repository as `serve` hosts it from a local output folder: every file under the base
//! URL's path, through [`crate::files`] (conditional requests, gzip, ranges, nothing under
//! `.farm/` or outside the folder), and the change feed answered per `?since=` (see
//! [`crate::feed`]).

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::feed::{Answer, FEED_KEY, Feed};
use crate::files::Repository;

/// The output folder, served under the base URL's path.
#[derive(Debug)]
pub struct Hosted {
    files: Repository,
    /// The base URL's path without its trailing slash (`""` or `/repo`).
    prefix: String,
}

impl Hosted {
    /// Serves `root` at the path of `base_url`.
    pub fn new(root: &Path, base_url: &str) -> std::io::Result<Hosted> {
        let path = url::Url::parse(base_url).map(|url| url.path().to_owned()).unwrap_or_default();
        Ok(Hosted { files: Repository::open(root)?, prefix: path.trim_end_matches('/').to_owned() })
    }

    /// `router` with the repository as its fallback (routes of its own come first).
    pub fn route(self: Arc<Self>, router: Router) -> Router {
        router.fallback(move |request: Request| {
            let hosted = Arc::clone(&self);
            async move { hosted.answer(request).await }
        })
    }

    async fn answer(&self, request: Request) -> Response {
        let path = request.uri().path();
        let Some(inside) = path.strip_prefix(&self.prefix).filter(|rest| rest.starts_with('/')) else {
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        };
        if inside == format!("/{FEED_KEY}") && matches!(*request.method(), Method::GET | Method::HEAD) {
            let gzip = crate::files::accepts_gzip(request.headers());
            return self.feed(request.uri().query(), gzip).await;
        }
        self.files.respond(request.method(), inside, request.headers()).await
    }

    /// The feed's answer to `?since=` (the stored feed, read at each request), gzipped when the
    /// client accepts it (composer/mirror asks for it).
    async fn feed(&self, query: Option<&str>, gzip: bool) -> Response {
        let since =
            query.into_iter().flat_map(|q| url::form_urlencoded::parse(q.as_bytes())).find(|(k, _)| k == "since");
        let since = since.map(|(_, value)| value.into_owned());
        let stored = match self.files.resolve(&format!("/{FEED_KEY}")) {
            Some(path) => match tokio::fs::read(path).await {
                Ok(bytes) => Feed::parse(&bytes),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                // Not "no feed": that would send every follower to a full resync.
                Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "the change feed cannot be read\n").into_response(),
            },
            None => None,
        };
        let (status, body) = match Feed::answer(stored.as_ref(), since.as_deref()) {
            Answer::Changes(body) => (StatusCode::OK, body),
            Answer::BadRequest(body) => (StatusCode::BAD_REQUEST, body),
        };
        let bytes = serde_json::to_vec(&body).expect("feed answers serialise");
        let mut response = if gzip {
            let zipped = crate::files::gzip(&bytes[..]).expect("gzip into memory");
            let mut response = (status, zipped).into_response();
            response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        } else {
            (status, bytes).into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response
    }
}
