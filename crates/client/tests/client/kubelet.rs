//! A kubelet-like HTTP server for the pods/log and pods/exec tests: it serves
//! the kubelet's `/containerLogs` and `/exec` contract (see the API server's
//! `node_proxy` module) from logs the test writes and a few fake commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use skiff_proto::channel::{self, Outcome, TerminalSize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// The server's state: each container's current and previous log.
#[derive(Clone)]
pub struct FakeKubelet {
    pub port: u16,
    logs: Arc<Mutex<HashMap<(String, bool), String>>>,
    appended: broadcast::Sender<(String, String)>,
}

impl FakeKubelet {
    /// Serves on a free 127.0.0.1 port until the test ends.
    pub async fn start() -> FakeKubelet {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("a bound address").port();
        let kubelet = FakeKubelet {
            port,
            logs: Arc::default(),
            appended: broadcast::channel(64).0,
        };
        let serving = kubelet.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        kubelet
    }

    /// Sets the log of `container` (its previous attempt's when `previous`).
    pub fn set_log(&self, container: &str, previous: bool, text: &str) {
        let key = (container.to_string(), previous);
        self.logs.lock().unwrap().insert(key, text.to_string());
    }

    /// The container writes `text`: followers see it.
    pub fn append(&self, container: &str, text: &str) {
        let key = (container.to_string(), false);
        self.logs
            .lock()
            .unwrap()
            .entry(key)
            .or_default()
            .push_str(text);
        let _ = self
            .appended
            .send((container.to_string(), text.to_string()));
    }

    async fn serve(self, stream: TcpStream) {
        let mut reader = BufReader::new(stream);
        let Some((method, target, _body)) = read_request(&mut reader).await else {
            return;
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["containerLogs", _, pod, container]) => {
                self.logs(reader.get_mut(), pod, container, &params).await
            }
            ("POST", ["exec", _, _, _]) => exec(&mut reader, &params).await,
            _ => respond(reader.get_mut(), 404, "no such path").await,
        }
    }

    async fn logs(
        &self,
        stream: &mut TcpStream,
        pod: &str,
        container: &str,
        params: &[(String, String)],
    ) {
        let flag = |key: &str| params.iter().any(|(k, v)| k == key && v == "true");
        let tail = params
            .iter()
            .find(|(k, _)| k == "tailLines")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        // Subscribed before the snapshot, so no appended line is missed.
        let mut appended = self.appended.subscribe();
        let key = (container.to_string(), flag("previous"));
        let Some(text) = self.logs.lock().unwrap().get(&key).cloned() else {
            let message = match flag("previous") {
                true => {
                    format!("previous terminated container {container:?} in pod {pod:?} not found")
                }
                false => format!("container {container:?} in pod {pod:?} is waiting to start"),
            };
            return respond(stream, 400, &message).await;
        };
        let text = match tail {
            Some(n) => {
                let lines: Vec<&str> = text.split_inclusive('\n').collect();
                lines[lines.len().saturating_sub(n)..].concat()
            }
            None => text,
        };
        if !flag("follow") {
            return respond(stream, 200, &text).await;
        }
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() || !chunk(stream, &text).await {
            return;
        }
        while let Ok((from, text)) = appended.recv().await {
            if from == container && !chunk(stream, &text).await {
                return;
            }
        }
    }
}

/// Fake commands over the upgraded connection, as the kubelet streams an
/// exec: `echo ARGS…`, `cat` (each stdin frame echoed on stdout as it comes,
/// until stdin is closed), `stty size` (the first resize, as `rows cols`),
/// `sh -c "exit N"`, and anything else fails with 127 as a shell would.
async fn exec(reader: &mut BufReader<TcpStream>, params: &[(String, String)]) {
    let command: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.as_str())
        .collect();
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {}\r\n\r\n",
        channel::PROTOCOL
    );
    if reader.get_mut().write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let code = match command.as_slice() {
        ["echo", args @ ..] => {
            send(
                reader,
                channel::STDOUT,
                format!("{}\n", args.join(" ")).as_bytes(),
            )
            .await;
            0
        }
        ["cat"] => {
            while let Ok(Some(frame)) = channel::read_frame(reader).await {
                match frame.channel {
                    channel::STDIN => send(reader, channel::STDOUT, &frame.data).await,
                    channel::CLOSE => break,
                    _ => {}
                }
            }
            0
        }
        ["stty", "size"] => {
            while let Ok(Some(frame)) = channel::read_frame(reader).await {
                if frame.channel == channel::RESIZE {
                    let size = TerminalSize::decode(&frame.data).expect("a terminal size");
                    let line = format!("{} {}\r\n", size.height, size.width);
                    send(reader, channel::STDOUT, line.as_bytes()).await;
                    break;
                }
            }
            0
        }
        ["sh", "-c", script] if script.starts_with("exit ") => {
            script[5..].trim().parse().unwrap_or(2)
        }
        other => {
            let message = format!("{}: not found\n", other.join(" "));
            send(reader, channel::STDERR, message.as_bytes()).await;
            127
        }
    };
    send(reader, channel::ERROR, &Outcome::Exited(code).encode()).await;
}

async fn send(reader: &mut BufReader<TcpStream>, number: u8, data: &[u8]) {
    let _ = channel::write_frame(reader.get_mut(), number, data).await;
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
}

/// Writes one chunk of a chunked body; false once the client has gone.
async fn chunk(stream: &mut TcpStream, text: &str) -> bool {
    let framed = format!("{:x}\r\n{text}\r\n", text.len());
    stream.write_all(framed.as_bytes()).await.is_ok() && stream.flush().await.is_ok()
}

/// The method, target and body of one request.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((method, target, body))
}

/// Decodes `%XX` escapes.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
