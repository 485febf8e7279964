//! The supervisor's control socket, `DIR/lab.sock`: a Unix socket taking one
//! request line (`status`, `kill NAME`, `restart NAME`, `partition NAME`,
//! `heal [NAME]`, `down`) and answering one line, `ok TEXT` or `error TEXT`,
//! then closing. `status` answers `lab.json`'s record as one line of JSON.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Where the control socket lives in `dir`.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join("lab.sock")
}

/// One request as it travels: the verb and its argument.
pub(crate) fn request_line(verb: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{verb} {name}\n"),
        None => format!("{verb}\n"),
    }
}

/// Splits a request line into the verb and its argument.
pub(crate) fn parse_request(line: &str) -> (&str, Option<&str>) {
    let line = line.trim();
    match line.split_once(' ') {
        Some((verb, arg)) => (verb, Some(arg.trim())),
        None => (line, None),
    }
}

/// Sends one request to the lab in `dir`; answers the text of an `ok`.
pub(crate) async fn request(dir: &Path, verb: &str, name: Option<&str>) -> anyhow::Result<String> {
    let path = socket_path(dir);
    let Ok(mut stream) = UnixStream::connect(&path).await else {
        anyhow::bail!("no lab is running in {}", dir.display());
    };
    stream
        .write_all(request_line(verb, name).as_bytes())
        .await
        .context("sending to the lab's supervisor")?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .await
        .context("reading the lab supervisor's answer")?;
    let answer = answer.trim_end();
    if let Some(text) = answer.strip_prefix("ok") {
        Ok(text.trim_start().to_string())
    } else if let Some(text) = answer.strip_prefix("error ") {
        Err(anyhow::anyhow!("{text}"))
    } else {
        Err(anyhow::anyhow!("the lab's supervisor answered {answer:?}"))
    }
}

/// `skiff lab kill|restart|partition|heal|down`: one request, its answer printed.
pub(crate) async fn one_request(dir: &Path, verb: &str, name: Option<&str>) -> anyhow::Result<()> {
    let text = request(dir, verb, name).await?;
    if !text.is_empty() {
        println!("{text}");
    }
    Ok(())
}

/// `skiff lab down`: asks the supervisor to stop, then waits until it has
/// stopped every process and removed its socket.
pub(crate) async fn down(dir: &Path) -> anyhow::Result<()> {
    let text = request(dir, "down", None).await?;
    println!("{text}");
    let path = socket_path(dir);
    // Bounded: each role gets the stop grace, then SIGKILL.
    for _ in 0..1200 {
        if !path.exists() {
            println!("the lab in {} is stopped", dir.display());
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "the lab in {} is still stopping after 2 minutes",
        dir.display()
    )
}

/// Whether a supervisor answers on `dir`'s socket.
pub(crate) async fn is_running(dir: &Path) -> bool {
    UnixStream::connect(socket_path(dir)).await.is_ok()
}

/// Listens on `dir`'s socket, replacing a stale file no one answers on.
pub(crate) async fn listen(dir: &Path) -> anyhow::Result<UnixListener> {
    let path = socket_path(dir);
    if is_running(dir).await {
        anyhow::bail!(
            "a lab is already running in {}; `skiff lab down --dir {}` stops it",
            dir.display(),
            dir.display()
        );
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    UnixListener::bind(&path).with_context(|| format!("listening on {}", path.display()))
}

/// Reads one request from `stream`, answers what `handle` says.
pub(crate) async fn answer_one(
    stream: UnixStream,
    handle: impl FnOnce(&str, Option<&str>) -> Result<String, String>,
) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let (verb, arg) = parse_request(&line);
    let answer = match handle(verb, arg) {
        Ok(text) => format!("ok {}\n", text.replace('\n', " ")),
        Err(text) => format!("error {}\n", text.replace('\n', " ")),
    };
    // The asker may have gone; nothing to do about it.
    let _ = write.write_all(answer.as_bytes()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_verb_and_an_optional_name_on_one_line() {
        assert_eq!(request_line("kill", Some("node-1")), "kill node-1\n");
        assert_eq!(parse_request("kill node-1\n"), ("kill", Some("node-1")));
        assert_eq!(parse_request("heal\n"), ("heal", None));
    }

    #[tokio::test]
    async fn without_a_supervisor_the_commands_say_no_lab_is_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(dir.path(), "status", None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no lab is running in {}", dir.path().display())
        );
    }

    #[tokio::test]
    async fn answers_come_back_as_ok_text_or_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let listener = listen(dir.path()).await.unwrap();
        let serving = tokio::spawn(async move {
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.unwrap();
                answer_one(stream, |verb, name| match verb {
                    "kill" => Ok(format!("killed {}", name.unwrap_or("?"))),
                    _ => Err(format!("unknown request {verb:?}")),
                })
                .await;
            }
        });
        let killed = request(dir.path(), "kill", Some("node-1")).await.unwrap();
        assert_eq!(killed, "killed node-1");
        let err = request(dir.path(), "frob", None).await.unwrap_err();
        assert_eq!(err.to_string(), "unknown request \"frob\"");
        serving.await.unwrap();
        let again = listen(dir.path()).await;
        assert!(again.is_ok(), "a stale socket is replaced: {again:?}");
    }
}
