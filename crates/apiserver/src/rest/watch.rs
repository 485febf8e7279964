//! Watches over HTTP: `?watch=true` (or the legacy `/watch/` paths) answers
//! a chunked `application/json` stream of Kubernetes `WatchEvent`s, one JSON
//! document per line, each sent as soon as it happens:
//!
//! ```text
//! {"type":"ADDED","object":{"kind":"Pod",...}}
//! {"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}
//! {"type":"ERROR","object":{"kind":"Status","code":410,...}}
//! ```
//!
//! The stream ends after `timeoutSeconds` (or the server's default), or
//! after an ERROR event — such as 410 Expired when the watch starts from a
//! resourceVersion older than the watch cache keeps — as the Kubernetes API
//! server ends it. A watch asking for Tables (`kubectl get -w`) gets each
//! object as a one-row Table; only the first carries the column definitions,
//! as kube-apiserver does to save bandwidth (kubectl reuses the last ones).
//!
//! # Where to start
//! [`serve`], then `Events::next_line`.
//!
//! # Caveats
//! Bookmarks and ERROR events are sent as they are also in a Table watch.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::Value;
use skiff_api::printers::{self, IncludeObject};
use skiff_api::resources::Resource;
use skiff_api::status::ApiError;

use super::negotiation::Output;
use super::response::partial_metadata;
use super::{Call, RestBody};
use crate::registry::Registry;
use crate::watch_cache::{EventType, WatchEvent, WatchStream};

/// Starts a watch and answers its stream.
pub(crate) async fn serve(
    call: &Call,
    output: Output,
) -> Result<http::Response<RestBody>, ApiError> {
    let options = call.query.watch_options(&call.info.name)?;
    let timeout = call.query.watch_timeout()?;
    let include = call.query.include_object()?;
    let (stream, expired) = match call
        .registry
        .watch(call.resource, &call.info.namespace, &options)
        .await
    {
        Ok(stream) => (Some(stream), None),
        // Too old a resourceVersion: the stream opens and says so, as
        // kube-apiserver's watch cache answers, so a client re-lists.
        Err(err) if err.code == 410 => (None, Some(err)),
        Err(err) => return Err(err),
    };
    let events = Events {
        stream,
        expired,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        form: match output {
            Output::Table => Form::Table {
                registry: call.registry.clone(),
                resource: call.resource,
                include,
                first: true,
            },
            Output::Metadata => Form::Metadata,
            Output::Json | Output::Yaml => Form::Object,
        },
    };
    let body = futures::stream::unfold(events, |mut events| async move {
        let line = events.next_line().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(line)), events))
    });
    let content_type = match output {
        Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
        _ => "application/json",
    };
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-cache, private")
        .body(StreamBody::new(body.boxed()).boxed_unsync())
        .expect("static headers are valid"))
}

/// What each event's object is sent as.
enum Form {
    Object,
    Metadata,
    Table {
        registry: Arc<Registry>,
        resource: &'static Resource,
        include: IncludeObject,
        /// Whether the next Table is the first (the one with columns).
        first: bool,
    },
}

/// The events of one watch, until its deadline.
struct Events {
    stream: Option<WatchStream>,
    /// The error a watch that could not start ends with, sent as its only event.
    expired: Option<ApiError>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    form: Form,
}

impl Events {
    /// The next event as a line of JSON; `None` once the watch is over.
    async fn next_line(&mut self) -> Option<Bytes> {
        if let Some(err) = self.expired.take() {
            let status = serde_json::to_vec(&err.to_json()).expect("a Value always encodes");
            return Some(line(EventType::Error, &status));
        }
        let stream = self.stream.as_mut()?;
        let event = tokio::select! {
            _ = &mut self.deadline => return None,
            event = stream.next() => event?,
        };
        Some(self.encode(&event))
    }

    fn encode(&mut self, event: &WatchEvent) -> Bytes {
        let object_event = !matches!(event.kind, EventType::Bookmark | EventType::Error);
        let converted = match &mut self.form {
            Form::Object => None,
            _ if !object_event => None,
            Form::Metadata => Some(partial_metadata(event.object.value())),
            Form::Table {
                registry,
                resource,
                include,
                first,
            } => {
                let mut table = printers::table(
                    resource.kind,
                    std::slice::from_ref(event.object.value()),
                    *include,
                    registry.unix_now(),
                );
                if !std::mem::replace(first, false) {
                    if let Some(table) = table.as_object_mut() {
                        table.remove("columnDefinitions");
                    }
                }
                Some(table)
            }
        };
        let object: &[u8] = match &converted {
            Some(value) => &serde_json::to_vec(value).expect("a Value always encodes"),
            None => event.object.json(),
        };
        line(event.kind, object)
    }
}

/// `{"type":"ADDED","object":<object>}\n`.
fn line(kind: EventType, object: &[u8]) -> Bytes {
    let head = format!(r#"{{"type":{},"object":"#, Value::from(kind.as_str()));
    let mut out = Vec::with_capacity(head.len() + object.len() + 2);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_of_json() {
        let line = line(EventType::Added, br#"{"kind":"Pod"}"#);
        assert_eq!(
            &line[..],
            b"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"}}\n"
        );
    }
}
