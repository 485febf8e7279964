//! Copying an exec's streams, the same for every runtime that runs commands:
//! what the caller types goes to the command's stdin as it comes, and what
//! the command writes goes to the caller as it is written.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::ExecChunk;

/// How much output is read at once.
const READ_BYTES: usize = 16 * 1024;

/// What a terminal's input ends with when the caller's stdin ends: Ctrl-D
/// (EOT), as a user at the keyboard ends it. Closing a terminal's input
/// instead would hang it up.
const EOT: u8 = 0x04;

/// Copies what the caller types to the command until the caller's stdin
/// ends; then, on a `terminal`, types Ctrl-D. Returns whether stdin ended
/// (rather than the command's input breaking); dropping `to` closes it.
pub(crate) async fn copy_stdin(
    mut from: mpsc::Receiver<Vec<u8>>,
    mut to: impl AsyncWrite + Unpin,
    terminal: bool,
) -> bool {
    while let Some(data) = from.recv().await {
        if to.write_all(&data).await.is_err() || to.flush().await.is_err() {
            return false;
        }
    }
    if terminal {
        return to.write_all(&[EOT]).await.is_ok() && to.flush().await.is_ok();
    }
    true
}

/// Sends what the command writes, as it writes it, until its end: the end
/// of the pipe or FIFO, or from a terminal the error that says its last
/// writer has closed it. Stops early when the caller has gone.
pub(crate) async fn copy_output(
    mut from: impl AsyncRead + Unpin,
    chunk: fn(Vec<u8>) -> ExecChunk,
    to: mpsc::Sender<ExecChunk>,
) {
    let mut buffer = vec![0; READ_BYTES];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if to.send(chunk(buffer[..read].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stdin_is_copied_then_closed_or_ended_with_ctrl_d_on_a_terminal() {
        for (terminal, expected) in [(false, &b"ls\n"[..]), (true, &b"ls\n\x04"[..])] {
            let (typing, typed) = mpsc::channel(4);
            typing.send(b"ls\n".to_vec()).await.unwrap();
            drop(typing);
            let mut written = Vec::new();
            assert!(copy_stdin(typed, &mut written, terminal).await);
            assert_eq!(written, expected);
        }
    }

    #[tokio::test]
    async fn output_comes_as_written_until_its_end() {
        let (to, mut received) = mpsc::channel(4);
        let from: &[u8] = b"hello";
        copy_output(from, ExecChunk::Stderr, to).await;
        assert_eq!(
            received.recv().await,
            Some(ExecChunk::Stderr(b"hello".to_vec()))
        );
        assert_eq!(received.recv().await, None, "the sender is gone at the end");
    }
}
