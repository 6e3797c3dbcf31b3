//! The repository as probes see it, served on loopback: candidate metadata from memory (rendered
//! with the loopback address as base, so dist URLs lead back here) and archives from the farm's
//! storage or a folder. Read-only; only metadata keys and archive keys are answered.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use shared::storage::{AnyStorage, Storage as _};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Where archives are read from.
pub enum Archives {
    /// The farm's storage.
    Storage(Arc<AnyStorage>),
    /// A repository folder (archives at their keys).
    Folder(PathBuf),
}

struct Served {
    metadata: BTreeMap<String, Vec<u8>>,
    archives: Archives,
}

/// A running loopback server; stops when dropped.
pub struct ProbeServer {
    /// Its base URL, with a trailing slash.
    pub url: String,
    stop: tokio_util::sync::DropGuard,
}

impl ProbeServer {
    /// Binds 127.0.0.1 on a free port; `render` gets the base URL and returns the metadata files.
    pub async fn start(
        render: impl FnOnce(&str) -> Vec<shared::metadata::MetadataFile>,
        archives: Archives,
    ) -> std::io::Result<ProbeServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}/", listener.local_addr()?);
        let metadata = render(&url).into_iter().map(|file| (file.key, file.bytes)).collect();
        let served = Arc::new(Served { metadata, archives });
        let router = axum::Router::new().fallback(answer).with_state(served);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(stopped.cancelled_owned());
            if let Err(error) = server.await {
                warn!(%error, "the probes' loopback server stopped");
            }
        });
        Ok(ProbeServer { url, stop: stop.drop_guard() })
    }

    /// Stops serving.
    pub fn stop(self) {
        drop(self.stop);
    }
}

async fn answer(State(served): State<Arc<Served>>, uri: Uri) -> Response {
    let key = uri.path().trim_start_matches('/');
    if let Some(bytes) = served.metadata.get(key) {
        return ([(header::CONTENT_TYPE, "application/json")], bytes.clone()).into_response();
    }
    if shared::identity::validate_key(key).is_err() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let found = match &served.archives {
        Archives::Storage(storage) => storage.get(key).await.map_err(|e| e.to_string()),
        Archives::Folder(root) => match tokio::fs::read(root.join(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.to_string()),
        },
    };
    match found {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/zip")], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            warn!(key, %error, "cannot read an archive for a probe");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
