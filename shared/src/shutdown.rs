//! Graceful shutdown on SIGTERM/SIGINT, the same for `coordinator serve` and the worker: the first
//! signal cancels one [`CancellationToken`] that every long-lived loop watches (each stops at its
//! next safe point); a second signal exits the process at once with code 130.
//!
//! The binaries create the token here and hand it (or its `cancelled_owned()` future) to the
//! library's `run`, which never installs handlers of its own: a test passes a token it cancels
//! itself.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Exit code after a second signal (128 + SIGINT, as a shell reports an interrupted program).
pub const EXIT_AT_ONCE: i32 = 130;

/// What the process logs when it is asked to stop; each binary says what stopping means for it.
#[derive(Debug, Clone, Copy)]
pub struct Notices {
    /// Logged at INFO on the first signal, when the token is cancelled.
    pub stopping: &'static str,
    /// Logged at WARN on the second signal, right before the process exits.
    pub exiting: &'static str,
}

/// The signal handlers could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the {signal} handler: {source}")]
pub struct ShutdownError {
    /// `SIGTERM` or `SIGINT`.
    pub signal: &'static str,
    /// What the operating system said.
    #[source]
    pub source: std::io::Error,
}

/// Installs the SIGTERM and SIGINT handlers before it returns (so no signal after this call is
/// lost) and returns the token the first signal cancels. Must be called inside a Tokio runtime.
pub fn on_signals(notices: Notices) -> Result<CancellationToken, ShutdownError> {
    let install =
        |kind: SignalKind, name: &'static str| signal(kind).map_err(|source| ShutdownError { signal: name, source });
    let terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    let token = CancellationToken::new();
    tokio::spawn(watch(terminate, interrupt, token.clone(), notices));
    Ok(token)
}

/// [`on_signals`]; when the handlers cannot be installed, says so (WARN) and returns a token no
/// signal cancels (the process then stops only by being killed, as before it had handlers).
pub fn on_signals_or_warn(notices: Notices) -> CancellationToken {
    on_signals(notices).unwrap_or_else(|error| {
        warn!(%error, "cannot install signal handlers");
        CancellationToken::new()
    })
}

/// First signal: cancel `token`. Second: exit at once.
async fn watch(mut terminate: Signal, mut interrupt: Signal, token: CancellationToken, notices: Notices) {
    next_signal(&mut terminate, &mut interrupt).await;
    info!("{}", notices.stopping);
    token.cancel();
    next_signal(&mut terminate, &mut interrupt).await;
    warn!("{}", notices.exiting);
    std::process::exit(EXIT_AT_ONCE);
}

async fn next_signal(terminate: &mut Signal, interrupt: &mut Signal) {
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_signal_cancels_the_token() {
        let token = on_signals(Notices { stopping: "test: stopping", exiting: "test: exiting" }).unwrap();
        assert!(!token.is_cancelled());
        // SIGINT to this test process; the handler is installed, so the process lives on.
        let sent = std::process::Command::new("kill").args(["-INT", &std::process::id().to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()), "kill -INT failed");
        token.cancelled().await;
    }
}
