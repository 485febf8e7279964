//! The three kinds of check a probe runs.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Target;
use crate::runtime::Runtime;

/// Runs the probe's check once; `Err` says why it failed.
pub(super) async fn run(
    probe: &Probe,
    container: &Container,
    container_id: &str,
    target: &Target,
    runtime: &dyn Runtime,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        let output = runtime
            .exec_sync(container_id, &command, timeout)
            .await
            .map_err(|e| e.to_string())?;
        return match output.exit_code {
            0 => Ok(()),
            code => Err(format!(
                "command {command:?} exited with {code}: {}",
                String::from_utf8_lossy(&output.stdout).trim()
            )),
        };
    }
    let host = |explicit: &Option<String>| {
        explicit
            .clone()
            .or_else(|| target.pod_ip.clone())
            .unwrap_or_else(|| "127.0.0.1".to_string())
    };
    if let Some(http) = &probe.http_get {
        let port = port(&http.port, container)?;
        let address = format!("{}:{port}", host(&http.host));
        let path = http.path.clone().unwrap_or_else(|| "/".to_string());
        return within(timeout, http_get(&address, &path)).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port(&tcp.port, container)?;
        let address = format!("{}:{port}", host(&tcp.host));
        let connect = async {
            TcpStream::connect(&address)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        return within(timeout, connect).await;
    }
    Err("the probe has no exec, httpGet or tcpSocket".to_string())
}

async fn within(
    timeout: Duration,
    check: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| format!("timeout after {timeout:?}"))?
}

/// A port number, or a container port's name.
fn port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
            .ok_or_else(|| format!("no port named {name:?}"))?,
    };
    u16::try_from(number).map_err(|_| format!("invalid port {number}"))
}

/// A plain HTTP/1.1 GET; 200–399 is success, as Kubernetes'.
async fn http_get(address: &str, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: kube-probe/skiff\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
    match code {
        200..=399 => Ok(()),
        _ => Err(format!("HTTP probe failed with statuscode: {code}")),
    }
}
