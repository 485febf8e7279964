//! `pods/log`: a container's log as text, streamed from the pod's kubelet
//! through the API server's node proxy, as `kubectl logs` reads it.
//!
//! Query parameters are Kubernetes' `PodLogOptions`: `container`, `follow`,
//! `previous`, `timestamps`, `tailLines`, `limitBytes`, `sinceSeconds`.
//!
//! # Caveats
//! `sinceTime` and `insecureSkipTLSVerifyBackend` are not read.

use bytes::Bytes;
use futures::StreamExt;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use skiff_api::status::ApiError;
use skiff_proto::api::LogRequest;

use super::{Call, RestBody};
use crate::node_proxy::{self, PodRef};

/// Streams the log of the pod `call` names.
pub(crate) async fn serve(call: &Call) -> Result<http::Response<RestBody>, ApiError> {
    let query = &call.query;
    let request = LogRequest {
        r#ref: None,
        container: query.get("container").to_string(),
        follow: query.flag("follow"),
        previous: query.flag("previous"),
        timestamps: query.flag("timestamps"),
        tail_lines: query.integer("tailLines")?,
        limit_bytes: query.integer("limitBytes")?,
        since_seconds: query.integer("sinceSeconds")?,
    };
    let pod = PodRef {
        namespace: &call.info.namespace,
        name: &call.info.name,
    };
    let chunks = node_proxy::logs(&call.registry, &pod, &request).await?;
    let body = chunks.map(|chunk| match chunk {
        Ok(chunk) => Ok(Frame::data(Bytes::from(chunk.data))),
        Err(status) => Err(std::io::Error::other(status.message().to_string())),
    });
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(StreamBody::new(body).boxed_unsync())
        .expect("static headers are valid"))
}
