//! Container logs in CRI's format: how a runtime writes them and how the
//! kubelet reads them back for `skiff logs` (pods/log).
//!
//! Each record is one line: `<RFC 3339 timestamp> <stdout|stderr> <F|P> <text>`,
//! `P` marking a partial line that continues in the next record — the format
//! containerd and CRI-O write under `/var/log/pods`. A container's log lives
//! at `<pod log dir>/<container>/<attempt>.log`, so `--previous` is the file
//! of the attempt before the current one.
//!
//! # Caveats
//! No log rotation; `follow` polls the file for growth rather than using
//! inotify.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The longest text one record carries (containerd's default, 16 KiB); a
/// longer line is split into partial records.
pub const MAX_RECORD: usize = 16 * 1024;

/// Which output stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The timestamp as written.
    pub time: String,
    /// Its stream.
    pub stream: Stream,
    /// Whether the line continues in the next record.
    pub partial: bool,
    /// The text, without the newline.
    pub text: String,
}

/// The file of one attempt of a container, under the pod's log directory.
pub fn container_log_path(pod_log_dir: &Path, container: &str, attempt: u32) -> PathBuf {
    pod_log_dir.join(container).join(format!("{attempt}.log"))
}

/// One record, newline-terminated: `text` (without its newline) written at
/// `time`; `partial` marks a line that continues in the next record.
pub fn format_record(time: SystemTime, stream: Stream, partial: bool, text: &[u8]) -> Vec<u8> {
    let tag = if partial { "P" } else { "F" };
    let stamp = crate::clock::timestamp(time);
    let mut record = format!("{stamp} {} {tag} ", stream.as_str()).into_bytes();
    record.extend_from_slice(text);
    record.push(b'\n');
    record
}

/// The records for `bytes` (one or more lines of output, with or without a
/// final newline), written at `time`. Text after the last newline is a
/// partial record.
pub fn format_records(time: SystemTime, stream: Stream, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 48);
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, full, taken) = match rest.iter().position(|b| *b == b'\n') {
            Some(n) if n <= MAX_RECORD => (&rest[..n], true, n + 1),
            _ => {
                let n = rest.len().min(MAX_RECORD);
                (&rest[..n], false, n)
            }
        };
        out.extend(format_record(time, stream, !full, line));
        rest = &rest[taken..];
    }
    out
}

/// Parses one record; `None` for a line that is not in CRI's format.
pub fn parse_record(line: &str) -> Option<Record> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?.to_string();
    let stream = match parts.next()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        "F" => false,
        "P" => true,
        _ => return None,
    };
    let text = parts.next().unwrap_or_default().to_string();
    Some(Record {
        time,
        stream,
        partial,
        text,
    })
}

/// What to read of a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last this many lines.
    pub tail_lines: Option<usize>,
    /// Prefix each line with its timestamp, as `kubectl logs --timestamps`.
    pub timestamps: bool,
}

/// The container's output from a CRI-format log text: partial records joined
/// into their lines, the last `tail_lines` kept.
pub fn render(content: &str, options: LogOptions) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for record in content.lines().filter_map(parse_record) {
        if pending.is_empty() && options.timestamps {
            pending.push_str(&record.time);
            pending.push(' ');
        }
        pending.push_str(&record.text);
        if !record.partial {
            lines.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    let skip = match options.tail_lines {
        Some(n) => lines.len().saturating_sub(n),
        None => 0,
    };
    let mut out = String::new();
    for line in &lines[skip..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads and renders a log file.
pub async fn read(path: &Path, options: LogOptions) -> io::Result<String> {
    let content = tokio::fs::read(path).await?;
    Ok(render(&String::from_utf8_lossy(&content), options))
}

/// Follows a log file from byte `from`: each call of the returned reader's
/// [`Follower::next`] waits until whole records were appended and returns
/// them rendered.
pub struct Follower {
    path: PathBuf,
    offset: u64,
    options: LogOptions,
}

impl Follower {
    /// Follows `path` from byte `offset`.
    pub fn new(path: PathBuf, offset: u64, options: LogOptions) -> Follower {
        Follower {
            path,
            offset,
            options: LogOptions {
                tail_lines: None,
                ..options
            },
        }
    }

    /// The next whole records, rendered; polls the file every 100 ms until
    /// some appear.
    pub async fn next(&mut self) -> io::Result<String> {
        loop {
            let mut file = tokio::fs::File::open(&self.path).await?;
            file.seek(io::SeekFrom::Start(self.offset)).await?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).await?;
            if let Some(end) = buf.iter().rposition(|b| *b == b'\n') {
                self.offset += end as u64 + 1;
                return Ok(render(&String::from_utf8_lossy(&buf[..=end]), self.options));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_time_stream_tag_and_text_on_one_line() {
        let time = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let record = format_record(time, Stream::Stdout, false, b"hello");
        assert_eq!(
            String::from_utf8(record).unwrap(),
            "2023-11-14T22:13:20.123456789Z stdout F hello\n"
        );
    }

    #[test]
    fn a_partial_stderr_record_is_tagged_p() {
        let record = format_record(SystemTime::UNIX_EPOCH, Stream::Stderr, true, b"x");
        assert_eq!(
            String::from_utf8(record).unwrap(),
            "1970-01-01T00:00:00Z stderr P x\n"
        );
    }

    #[test]
    fn each_line_becomes_a_full_record_and_a_trailing_fragment_a_partial_one() {
        let out = format_records(SystemTime::UNIX_EPOCH, Stream::Stdout, b"one\ntwo\nthr");
        let out = String::from_utf8(out).unwrap();
        let records: Vec<Record> = out.lines().map(|l| parse_record(l).unwrap()).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].time, "1970-01-01T00:00:00Z");
        assert_eq!(
            (records[0].text.as_str(), records[0].partial),
            ("one", false)
        );
        assert_eq!(
            (records[2].text.as_str(), records[2].partial),
            ("thr", true)
        );
    }

    #[test]
    fn render_joins_partial_records_and_keeps_the_tail() {
        let mut log = format_records(SystemTime::UNIX_EPOCH, Stream::Stdout, b"a\nb");
        log.extend(format_records(
            SystemTime::UNIX_EPOCH,
            Stream::Stderr,
            b"c\nd\n",
        ));
        let log = String::from_utf8(log).unwrap();
        assert_eq!(render(&log, LogOptions::default()), "a\nbc\nd\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(render(&log, tail), "bc\nd\n");
    }

    #[tokio::test]
    async fn a_follower_returns_only_what_was_appended_after_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let before = format_records(SystemTime::UNIX_EPOCH, Stream::Stdout, b"old\n");
        std::fs::write(&path, &before).unwrap();
        let mut follower = Follower::new(path.clone(), before.len() as u64, LogOptions::default());
        let mut all = before;
        all.extend(format_records(
            SystemTime::UNIX_EPOCH,
            Stream::Stdout,
            b"new\nnewer\n",
        ));
        std::fs::write(&path, &all).unwrap();
        assert_eq!(follower.next().await.unwrap(), "new\nnewer\n");
    }

    #[test]
    fn lines_not_in_cri_format_are_skipped() {
        assert_eq!(parse_record("garbage"), None);
        assert_eq!(render("garbage\n", LogOptions::default()), "");
    }
}
