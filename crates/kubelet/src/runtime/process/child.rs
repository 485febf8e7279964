//! The operating-system side of the process runtime: spawning a container's
//! process group, signalling it, telling whether it still runs, and copying
//! its output into the CRI-format log.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::logs::{self, Stream};

/// How often a log copier looks for new output, and a stop waits for an
/// adopted process to end.
const POLL: Duration = Duration::from_millis(100);

/// The PATH a container starts with when its env does not set one (the
/// default of container images).
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to start a container's process.
pub(super) struct Launch<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub dir: &'a Path,
}

/// Where the wrapper shell records the exit code of the command.
pub(super) fn exit_code_file(dir: &Path) -> PathBuf {
    dir.join("exit-code")
}

/// Looks `program` up as `execvp` would, in the container's PATH.
pub(super) fn find_program(program: &str, env: &[(String, String)], cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = cwd.join(program);
        return is_executable(&path).then_some(path);
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Starts the container's process as the leader of a new process group, so
/// that signals reach everything it forks. A small `sh` wrapper runs the
/// command and writes its exit code to a file: that is how an adopted
/// process's exit code is known after a kubelet restart. The wrapper catches
/// SIGTERM (so it outlives its child to write the code); a caught signal is
/// reset to its default in the child, which therefore sees SIGTERM as usual.
/// The wrapper's own stdout and stderr go to /dev/null and the command gets
/// the container's inside a subshell, so the wrapper's notices (dash writes
/// "Terminated" to the stderr it waits with) stay out of the log.
pub(super) fn spawn(launch: &Launch<'_>) -> io::Result<tokio::process::Child> {
    let exit_file = exit_code_file(launch.dir);
    let stdout = std::fs::File::create(launch.dir.join("stdout"))?;
    let stderr = std::fs::File::create(launch.dir.join("stderr"))?;
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(r#"trap : TERM INT; exec 3>&1 4>&2 >/dev/null 2>&1; ( exec "$@" >&3 2>&4 3>&- 4>&- ); echo $? > "$0""#)
        .arg(&exit_file)
        .args(launch.argv)
        .current_dir(launch.cwd)
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    command.spawn()
}

/// Sends `signal` ("TERM", "KILL") to the process group led by `pid`, with the
/// `kill` command (the crate forbids the unsafe code a direct call needs).
pub(super) async fn signal_group(pid: u32, signal: &str) {
    let sent = tokio::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(error) = sent {
        tracing::warn!(pid, signal, %error, "could not run kill");
    }
}

/// Whether `pid` is still the wrapper of the container in `dir` (not ended,
/// not a zombie, not a reused pid): its command line names the container's
/// exit-code file.
pub(super) fn is_ours(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = exit_code_file(dir);
    let needle = needle.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == needle)
}

/// The exit code the wrapper wrote, or 137 (SIGKILL) when it was killed
/// before it could write one.
pub(super) fn read_exit_code(dir: &Path) -> i32 {
    std::fs::read_to_string(exit_code_file(dir))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(137)
}

/// Waits until the process has ended: through `exited` for a child of this
/// kubelet, else by polling `/proc`.
pub(super) async fn wait_ended(pid: u32, dir: &Path, exited: Option<watch::Receiver<bool>>) {
    match exited {
        Some(mut exited) => {
            let _ = exited.wait_for(|done| *done).await;
        }
        None => {
            while is_ours(pid, dir) {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Copies one stream's raw output file into the CRI-format log, from byte
/// `offset`, until the process has ended and everything is copied. Whole
/// lines are copied as they come; a trailing fragment only at the end. A
/// raw file that is gone means the container was removed (its directory
/// with it) while the copier had not yet seen its end: there is nothing
/// left to copy, and nothing wrong.
pub(super) async fn copy_log(
    raw: PathBuf,
    offset: u64,
    log_path: Arc<PathBuf>,
    stream: Stream,
    ended: impl Fn() -> bool + Send + 'static,
) {
    let mut offset = offset;
    loop {
        let finished = ended();
        match copy_new_output(&raw, &mut offset, &log_path, stream, finished).await {
            Ok(0) if finished => return,
            Ok(0) => tokio::time::sleep(POLL).await,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return,
            Err(error) => {
                tracing::warn!(raw = %raw.display(), %error, "log copy stopped");
                return;
            }
        }
    }
}

async fn copy_new_output(
    raw: &Path,
    offset: &mut u64,
    log_path: &Path,
    stream: Stream,
    take_fragment: bool,
) -> io::Result<usize> {
    let mut file = tokio::fs::File::open(raw).await?;
    file.seek(io::SeekFrom::Start(*offset)).await?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).await?;
    let end = match buf.iter().rposition(|b| *b == b'\n') {
        _ if take_fragment => buf.len(),
        Some(n) => n + 1,
        None => 0,
    };
    if end == 0 {
        return Ok(0);
    }
    let records = logs::format_records(SystemTime::now(), stream, &buf[..end]);
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .await?;
    log.write_all(&records).await?;
    *offset += end as u64;
    Ok(end)
}
