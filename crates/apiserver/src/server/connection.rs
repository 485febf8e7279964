//! One port for every client: gRPC and REST, over TLS or plain TCP.
//!
//! Each accepted connection is looked at before anything is read from it: a
//! TLS handshake starts with the byte 0x16 (a handshake record), which no
//! HTTP request starts with. TLS connections are decrypted with the server's
//! certificate (ALPN picks h2 or http/1.1); either way, hyper then serves
//! HTTP/1.1 or HTTP/2 on it, and each request goes where its content type
//! says: `application/grpc…` to the gRPC routes, anything else to
//! [`Rest::handle`]. REST over plain TCP is served only with `--insecure`;
//! otherwise it gets Go's answer to plain HTTP on an HTTPS port. gRPC over
//! plain TCP is served as before (skiff's own components speak it).
//!
//! The bytes a connection writes go out through [`Coalesce`] under TLS, so a
//! change fanned out to many watches on one connection costs a few system
//! calls.
//!
//! Shutdown: the listener closes at once, every connection is asked to finish
//! (HTTP/2 GOAWAY; HTTP/1.1 closes after its current request), and whatever
//! is still open after the grace period is dropped.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use skiff_proto::conn::Coalesce;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::rest::Rest;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What answers requests on the API server's port.
pub(crate) struct Front {
    /// The gRPC services.
    pub(crate) grpc: tonic::service::Routes,
    /// Kubernetes' REST API.
    pub(crate) rest: Rest,
    /// Decrypts TLS connections, when the server has a certificate.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Serve REST over plain TCP too.
    pub(crate) insecure: bool,
    /// Bytes a connection gathers before a write must go out.
    pub(crate) max_buffered: usize,
}

/// Accepts connections on `listener` until `shutdown`, then drains them for
/// at most `grace`.
pub(crate) async fn accept(
    listener: TcpListener,
    front: Arc<Front>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    let force = CancellationToken::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let (front, shutdown, force) = (front.clone(), shutdown.clone(), force.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = connection(stream, front, shutdown) => {}
                _ = force.cancelled() => {}
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            ?grace,
            "connections still open after the shutdown grace period; closing them"
        );
        force.cancel();
        tracker.wait().await;
    }
}

/// Serves one connection: TLS or plain, then HTTP.
async fn connection(stream: TcpStream, front: Arc<Front>, shutdown: CancellationToken) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "setting TCP_NODELAY");
    }
    let mut first = [0u8; 1];
    let tls = match stream.peek(&mut first).await {
        Ok(1) => first[0] == TLS_HANDSHAKE,
        _ => return,
    };
    let io = Coalesce::with_max_buffered(stream, front.max_buffered);
    match (&front.tls, tls) {
        (Some(acceptor), true) => match acceptor.accept(io).await {
            Ok(io) => http(io, front, true, shutdown).await,
            Err(err) => tracing::debug!(%err, "TLS handshake failed"),
        },
        (None, true) => tracing::debug!("a TLS handshake on a server without a certificate"),
        (_, false) => http(io, front, false, shutdown).await,
    }
}

/// Serves HTTP/1.1 or HTTP/2 on `io` until the client leaves or `shutdown`.
async fn http<I>(io: I, front: Arc<Front>, secure: bool, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        // Clients put hundreds of watches on one connection.
        .max_concurrent_streams(None);
    builder.http1().timer(TokioTimer::new());
    let service = hyper::service::service_fn(move |request| {
        let front = front.clone();
        async move { Ok::<_, Infallible>(route(&front, secure, request).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_end(result),
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(err) = result {
        tracing::debug!(%err, "connection ended");
    }
}

/// Sends `request` to gRPC or REST by its content type.
async fn route(
    front: &Front,
    secure: bool,
    request: http::Request<Incoming>,
) -> http::Response<tonic::body::Body> {
    if is_grpc(&request) {
        return match front.grpc.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if !secure && !front.insecure {
        return plain_http_refused();
    }
    front.rest.handle(request).await.map(tonic::body::Body::new)
}

fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// The answer to REST over plain TCP on a server that wants TLS: what Go's
/// HTTPS servers answer (kube-apiserver's among them).
fn plain_http_refused() -> http::Response<tonic::body::Body> {
    http::Response::builder()
        .status(http::StatusCode::BAD_REQUEST)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from_static(b"Client sent an HTTP request to an HTTPS server.\n"),
        )))
        .expect("a static response is valid")
}
