//! The `Watch` RPC served straight onto HTTP/2, one event frame at a time.
//!
//! A change watched by a thousand clients is sent a thousand times. The
//! generated gRPC service encodes each copy into an encode buffer the stream
//! owns; the buffers grow with a slow client and stay with the stream, and
//! every frame sent pins the buffer it was cut from. Here the response body is
//! written by hand instead: each event becomes one gRPC message in a buffer of
//! exactly its size, freed as soon as the connection has written it.
//!
//! Sending the shared JSON as a DATA frame of its own, after a few bytes of
//! prefix, would copy nothing, but doubles the HTTP/2 frames per event; in
//! `skiff bench api --workload watch` that cost more CPU than the copy.
//!
//! [`ApiWithWatch`] is the `skiff.api.v1.Api` service: it answers `Watch`
//! itself and hands every other method to the generated [`ApiServer`]. The
//! registry work behind a watch (resolving the resource, parsing the options,
//! opening the cache watch) is the service's [`OpenWatches`], shared with the
//! generated path, so both answer alike. This module knows nothing of the
//! service beyond that trait: the gRPC service module builds the routes on it.
//!
//! # Layout
//! - [`OpenWatches`] and [`OpenWatch`]: what the service does for a watch.
//! - [`ApiWithWatch`]: the routing by method path.
//! - `serve_watch`: reads the request message and opens the watch.
//! - [`WatchBody`]: the streaming response body.
//! - [`event_message`]: one `WatchEvent` framed as a gRPC message.
//!
//! # Caveats
//! Compressed request messages are refused, as the generated service (which
//! enables no compression) refuses them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use http_body::{Body as HttpBody, Frame};
use prost::Message;
use skiff_proto::api::api_server::{Api, ApiServer};
use skiff_proto::api::{WatchEvent, WatchRequest};
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderMap, HeaderValue, Request, Response};
use tonic::server::NamedService;
use tonic::Status;

/// The path of the `Watch` method.
const WATCH_PATH: &str = "/skiff.api.v1.Api/Watch";

/// gRPC's message prefix: the compressed flag and the length.
const PREFIX_LEN: usize = 5;

/// An open watch: its events as messages, and how long it may stay open.
pub(crate) struct OpenWatch {
    /// Every event; never ends by itself unless the watch does (410 Expired).
    pub(crate) events: BoxStream<'static, WatchEvent>,
    /// The request's timeout, or the server's default.
    pub(crate) timeout: std::time::Duration,
}

/// Opens the watch a `WatchRequest` asks for: the registry work behind the
/// `Watch` RPC, whichever path serves it.
pub(crate) trait OpenWatches: Clone + Send + Sync + 'static {
    /// Resolves the request's resource and options and opens the watch.
    fn open_watch(
        &self,
        request: WatchRequest,
    ) -> impl Future<Output = Result<OpenWatch, Status>> + Send;
}

/// The `skiff.api.v1.Api` service with `Watch` answered by [`WatchBody`].
#[derive(Clone)]
pub(crate) struct ApiWithWatch<S: Api> {
    api: ApiServer<S>,
    watches: S,
    max_request_bytes: usize,
}

impl<S: Api + OpenWatches> ApiWithWatch<S> {
    /// `api` for every method but `Watch`, which `watches` opens; its
    /// requests are read up to `max_request_bytes`.
    pub(crate) fn new(api: ApiServer<S>, watches: S, max_request_bytes: usize) -> ApiWithWatch<S> {
        ApiWithWatch {
            api,
            watches,
            max_request_bytes,
        }
    }
}

impl<S: Api> NamedService for ApiWithWatch<S> {
    const NAME: &'static str = <ApiServer<S> as NamedService>::NAME;
}

impl<S: Api + OpenWatches> tower::Service<Request<Body>> for ApiWithWatch<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.uri().path() != WATCH_PATH {
            return Box::pin(tower::Service::call(&mut self.api, request));
        }
        let watches = self.watches.clone();
        let max = self.max_request_bytes;
        Box::pin(async move {
            let response = match serve_watch(&watches, request.into_body(), max).await {
                Ok(body) => {
                    let mut response = Response::new(Body::new(body));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/grpc"),
                    );
                    response
                }
                Err(status) => status.into_http(),
            };
            Ok(response)
        })
    }
}

/// Reads the `WatchRequest` from `body` and opens the watch it asks for.
async fn serve_watch(
    watches: &impl OpenWatches,
    body: Body,
    max: usize,
) -> Result<WatchBody, Status> {
    let message = read_message(body, max).await?;
    let request = WatchRequest::decode(message)
        .map_err(|err| Status::internal(format!("failed to decode Protobuf message: {err}")))?;
    let watch = watches.open_watch(request).await?;
    let deadline = tokio::time::Instant::now() + watch.timeout;
    Ok(WatchBody {
        events: watch.events,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        ends_at: deadline,
        ended: false,
    })
}

/// The one message of a unary request body, without its gRPC prefix.
async fn read_message(mut body: Body, max: usize) -> Result<Bytes, Status> {
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > max + PREFIX_LEN {
                return Err(too_large(buf.len() + data.len() - PREFIX_LEN, max));
            }
            buf.extend_from_slice(&data);
        }
    }
    if buf.len() < PREFIX_LEN {
        return Err(Status::internal("the request has no complete gRPC message"));
    }
    if buf[0] != 0 {
        return Err(Status::unimplemented(
            "the request message is compressed, and this server enables no compression",
        ));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max {
        return Err(too_large(len, max));
    }
    if buf.len() != PREFIX_LEN + len {
        return Err(Status::internal(format!(
            "the request carries {} bytes after its gRPC prefix, which announces {len}",
            buf.len() - PREFIX_LEN
        )));
    }
    Ok(buf.freeze().split_off(PREFIX_LEN))
}

fn too_large(len: usize, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "Error, decoded message length too large: found {len} bytes, the limit is: {max} bytes"
    ))
}

/// The response body of one watch: a gRPC message per event, then the
/// trailers of a call that ended well (the watch's timeout or its last event).
///
/// The timer is polled only when no event is ready, so that it registers
/// with the task; while events keep coming, the clock is read instead, which
/// costs less than polling the timer for every event.
pub(crate) struct WatchBody {
    events: BoxStream<'static, WatchEvent>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    ends_at: tokio::time::Instant,
    ended: bool,
}

impl WatchBody {
    /// The trailers of a call that ended well; nothing follows them.
    fn end(&mut self) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.ended = true;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl HttpBody for WatchBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.events.poll_next_unpin(cx) {
            Poll::Ready(Some(_)) if tokio::time::Instant::now() >= self.ends_at => self.end(),
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(Frame::data(event_message(&event))))),
            Poll::Ready(None) => self.end(),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => self.end(),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

/// `event` encoded as protobuf behind gRPC's uncompressed message prefix, in
/// one buffer of exactly its size.
pub(crate) fn event_message(event: &WatchEvent) -> Bytes {
    let len = event.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).expect("a watch event is far below 4 GiB"));
    event
        .encode(&mut buf)
        .expect("the buffer was sized for the message");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_prefixed_protobuf_message() {
        for event in [
            WatchEvent {
                r#type: "MODIFIED".into(),
                object: Bytes::from(vec![b'x'; 300]),
            },
            WatchEvent {
                r#type: "BOOKMARK".into(),
                object: Bytes::new(),
            },
        ] {
            let message = event_message(&event);
            assert_eq!(message[0], 0, "not compressed");
            let len = u32::from_be_bytes([message[1], message[2], message[3], message[4]]) as usize;
            assert_eq!(len, message.len() - PREFIX_LEN);
            assert_eq!(WatchEvent::decode(&message[PREFIX_LEN..]).unwrap(), event);
        }
    }

    /// A request body of one data frame.
    struct OneFrame(Option<Bytes>);

    impl HttpBody for OneFrame {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
        }
    }

    async fn read(bytes: &[u8], max: usize) -> Result<Bytes, Status> {
        let body = Body::new(OneFrame(Some(Bytes::copy_from_slice(bytes))));
        read_message(body, max).await
    }

    #[tokio::test]
    async fn a_request_is_one_whole_uncompressed_message_within_the_limit() {
        assert_eq!(read(&[0, 0, 0, 0, 2, 7, 9], 10).await.unwrap(), [7, 9][..]);
        assert_eq!(read(&[0, 0, 0, 0, 0], 10).await.unwrap(), Bytes::new());

        let compressed = read(&[1, 0, 0, 0, 1, 7], 10).await.unwrap_err();
        assert_eq!(compressed.code(), tonic::Code::Unimplemented);
        let short = read(&[0, 0, 0, 0, 3, 7], 10).await.unwrap_err();
        assert_eq!(short.code(), tonic::Code::Internal);
        assert!(short.message().contains("announces 3"), "{short:?}");
        let no_prefix = read(&[0, 0], 10).await.unwrap_err();
        assert_eq!(no_prefix.code(), tonic::Code::Internal);
        let announced = read(&[0, 0, 0, 0, 11], 10).await.unwrap_err();
        assert_eq!(announced.code(), tonic::Code::ResourceExhausted);
        let sent = read(&[0; 17], 10).await.unwrap_err();
        assert_eq!(sent.code(), tonic::Code::ResourceExhausted);
    }
}
