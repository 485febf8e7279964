//! Graceful shutdown of the long-running subcommands (`skiff store`,
//! `skiff apiserver`, `skiff up`): the first SIGINT (Ctrl-C) or SIGTERM — what
//! a terminal, systemd or the kubelet send to stop a process — cancels one
//! [`CancellationToken`], which every server's `run(config, shutdown)` watches.
//!
//! # Caveats
//! - A second signal does nothing more: the servers' own grace periods bound
//!   how long the shutdown takes.
//! - Off Unix only Ctrl-C is watched.

use tokio_util::sync::CancellationToken;

/// A token cancelled by the first SIGINT or SIGTERM the process receives.
///
/// The signal handlers are installed before this returns, so a signal sent
/// afterwards is never missed; the wait runs on a task spawned on the current
/// Tokio runtime, so call it inside one. A handler that cannot be installed is
/// logged, and that signal is not watched (it keeps its default action).
pub(crate) fn cancel_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let received = first_signal();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let signal = received.await;
        tracing::info!(signal, "shutting down");
        token.cancel();
    });
    shutdown
}

/// Installs the handlers now; the future resolves to the name of the first
/// signal received.
#[cfg(unix)]
fn first_signal() -> impl std::future::Future<Output = &'static str> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};

    let install = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::warn!(%err, signal = name, "cannot watch for the signal");
            None
        }
    };
    let interrupt = install(SignalKind::interrupt(), "SIGINT");
    let terminate = install(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = received(interrupt) => "SIGINT",
            () = received(terminate) => "SIGTERM",
        }
    }
}

/// Resolves when `signal` arrives; never, when it is not watched.
#[cfg(unix)]
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Ctrl-C only, off Unix.
#[cfg(not(unix))]
fn first_signal() -> impl std::future::Future<Output = &'static str> + Send + 'static {
    async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(err) => {
                tracing::warn!(%err, "cannot watch for Ctrl-C");
                std::future::pending().await
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sigterm_to_the_process_cancels_the_token() {
        let shutdown = cancel_on_signal();
        assert!(!shutdown.is_cancelled());
        // The handler is installed: the signal is caught, not fatal.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill exited with {status}");
        shutdown.cancelled().await;
    }
}
