//! Container output to the kubelet's log file, in CRI's log format: one
//! record per line, `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`, as
//! containerd's CRI plugin writes it and `kubectl logs` reads it.
//!
//! The shim writes the container's stdout and stderr into two FIFOs; one copier
//! per stream reads its FIFO until the last writer closes it, cuts the bytes
//! into lines ([`LineSplitter`]) and appends one record per line. A line
//! longer than [`MAX_RECORD`] is cut into partial (`P`) records and a final `F`
//! one, as containerd does; text left at the end without a newline is a full
//! record.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

pub use crate::logs::{format_record, Stream, MAX_RECORD};

/// Cuts a byte stream into log lines: `(text without its newline, partial)`.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Takes the next chunk; returns the lines it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                lines.push((std::mem::take(&mut self.pending), false));
            } else {
                self.pending.push(byte);
                if self.pending.len() == MAX_RECORD {
                    lines.push((std::mem::take(&mut self.pending), true));
                }
            }
        }
        lines
    }

    /// The text left when the stream ends, as a full line.
    pub fn finish(self) -> Option<(Vec<u8>, bool)> {
        (!self.pending.is_empty()).then_some((self.pending, false))
    }
}

/// Creates the FIFO the shim writes a stream into (replacing a stale one)
/// and opens its read end, so it is ready before the task starts.
pub(crate) fn open_fifo(path: &Path) -> std::io::Result<pipe::Receiver> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)?;
    reopen_fifo(path)
}

/// Opens the read end of an existing FIFO (after a restart, for a task that
/// still runs).
pub(crate) fn reopen_fifo(path: &Path) -> std::io::Result<pipe::Receiver> {
    pipe::OpenOptions::new().open_receiver(path)
}

/// Copies one stream from its FIFO into the log file until the shim closes it.
pub(crate) fn spawn_copier(fifo: pipe::Receiver, stream: Stream, log_path: PathBuf) {
    tokio::spawn(async move {
        if let Err(error) = copy(fifo, stream, &log_path).await {
            tracing::warn!(log = %log_path.display(), %error, "container log copy failed");
        }
    });
}

async fn copy(mut fifo: pipe::Receiver, stream: Stream, log_path: &Path) -> std::io::Result<()> {
    if let Some(parent) = log_path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    // Both streams append to the same file; each record is one write.
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .await?;
    let mut splitter = LineSplitter::default();
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        let read = fifo.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        let now = SystemTime::now();
        for (text, partial) in splitter.push(&buffer[..read]) {
            log.write_all(&format_record(now, stream, partial, &text))
                .await?;
        }
    }
    if let Some((text, partial)) = splitter.finish() {
        log.write_all(&format_record(SystemTime::now(), stream, partial, &text))
            .await?;
    }
    log.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_across_chunks() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"one\ntw"), vec![(b"one".to_vec(), false)]);
        assert_eq!(
            splitter.push(b"o\n\nthree"),
            vec![(b"two".to_vec(), false), (Vec::new(), false)]
        );
        assert_eq!(splitter.finish(), Some((b"three".to_vec(), false)));
    }

    #[test]
    fn a_stream_ending_in_a_newline_leaves_nothing() {
        let mut splitter = LineSplitter::default();
        splitter.push(b"done\n");
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn an_overlong_line_is_partial_records_then_a_full_one() {
        let mut splitter = LineSplitter::default();
        let mut chunk = vec![b'a'; MAX_RECORD + 3];
        chunk.push(b'\n');
        let lines = splitter.push(&chunk);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].0.len(), lines[0].1), (MAX_RECORD, true));
        assert_eq!(lines[1], (b"aaa".to_vec(), false));
    }
}
