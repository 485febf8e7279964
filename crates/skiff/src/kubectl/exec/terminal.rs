//! This side's terminal during `skiff exec -it`: raw mode for the session,
//! restored however the session ends, and the terminal's size as it
//! changes.
//!
//! In raw mode the terminal neither echoes nor edits lines nor turns Ctrl-C
//! into SIGINT: every key goes to the remote terminal, which does all that
//! for the command, as on a local shell. Raw mode is undone when
//! [`RawMode`] is dropped (a return, an error, a panic's unwinding) and by
//! the handler of the signals that end a process (SIGTERM, SIGHUP, SIGQUIT),
//! which restores the terminal before exiting as the signal would.

use std::io;
use std::io::stdin;

use rustix::termios::{self, OptionalActions, Termios};
use skiff_client::TerminalSize;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Whether standard input is a terminal.
pub(super) fn stdin_is_terminal() -> bool {
    termios::isatty(stdin())
}

/// Standard input in raw mode until dropped.
pub(super) struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts standard input's terminal in raw mode, and restores it if a
    /// terminating signal comes first.
    pub(super) fn enter() -> io::Result<RawMode> {
        let saved = termios::tcgetattr(stdin())?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin(), OptionalActions::Now, &raw)?;
        let restore = saved.clone();
        tokio::spawn(async move {
            let code = ended_by_signal().await;
            let _ = termios::tcsetattr(stdin(), OptionalActions::Now, &restore);
            std::process::exit(code);
        });
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Waits for SIGTERM, SIGHUP or SIGQUIT; the exit code a shell reports for
/// it (128 + the signal's number).
async fn ended_by_signal() -> i32 {
    let kinds = [
        (SignalKind::terminate(), 15),
        (SignalKind::hangup(), 1),
        (SignalKind::quit(), 3),
    ];
    let mut waits = Vec::new();
    for (kind, number) in kinds {
        if let Ok(mut stream) = signal(kind) {
            waits.push(Box::pin(async move {
                stream.recv().await;
                128 + number
            }));
        }
    }
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures::future::select_all(waits).await.0
}

/// The size of the terminal on standard input, if it is one.
fn size() -> Option<TerminalSize> {
    let size = termios::tcgetwinsize(stdin()).ok()?;
    Some(TerminalSize {
        width: size.ws_col,
        height: size.ws_row,
    })
}

/// Sends the terminal's size now and after every change (SIGWINCH), until
/// the session ends.
pub(super) async fn send_sizes(sizes: mpsc::Sender<TerminalSize>) {
    if let Some(size) = size() {
        if sizes.send(size).await.is_err() {
            return;
        }
    }
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return;
    };
    while changes.recv().await.is_some() {
        if let Some(size) = size() {
            if sizes.send(size).await.is_err() {
                return;
            }
        }
    }
}
