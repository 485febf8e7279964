//! etcd's gRPC `Watch` service over the [`WatchHub`].
//!
//! One bidirectional stream carries many watchers, as etcd's `serverWatchStream`:
//! the client sends create, cancel and progress requests; the server answers
//! with `created` and `canceled` responses, event batches and progress responses,
//! each tagged with the client's `watch_id`. See etcd's
//! [watch API](https://etcd.io/docs/v3.5/learning/api/#watch-api).
//!
//! Each stream is one task (a `Session`) that owns its watchers. Responses go
//! out through a bounded channel; when the client reads slowly the session
//! waits, its watchers' channels fill, and the hub moves them to catch-up —
//! the writers never notice.
//!
//! # Caveats
//! - Auth (etcd's per-key permission checks) is not implemented.
//! - A progress request with watchers still catching up is answered once they
//!   have caught up, with the lowest revision they report (etcd defers it too).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use skiff_proto::etcdserverpb::watch_request::RequestUnion;
use skiff_proto::etcdserverpb::watch_server::{Watch, WatchServer};
use skiff_proto::etcdserverpb::{
    ResponseHeader, WatchCancelRequest, WatchCreateRequest, WatchRequest, WatchResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamMap;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::watch::{WatchHub, WatchSpec, WatchUpdate, Watcher};

/// Fills a response header (cluster_id, member_id, raft_term) for a revision.
pub type HeaderFn = Arc<dyn Fn(i64) -> ResponseHeader + Send + Sync>;

/// The `watch_id` etcd puts on responses that are not about one watcher: a
/// stream-wide progress response, or a create that failed.
pub const NO_WATCH_ID: i64 = -1;

/// etcd's `MaxRequestBytes` default: responses above it are fragmented for
/// watchers that asked for `fragment`.
const DEFAULT_FRAGMENT_LIMIT: usize = 3 * 512 * 1024;

/// How many responses a stream buffers before its session waits for the client.
const RESPONSE_BUFFER: usize = 128;

const ERR_EMPTY_RANGE: &str = "mvcc: watcher range is empty";
const ERR_DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

/// etcd's `Watch` service.
pub struct WatchService {
    hub: WatchHub,
    header: HeaderFn,
    fragment_limit: usize,
}

impl WatchService {
    /// A service over `hub`; `header` fills the response headers.
    pub fn new(hub: WatchHub, header: HeaderFn) -> Self {
        WatchService {
            hub,
            header,
            fragment_limit: DEFAULT_FRAGMENT_LIMIT,
        }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> WatchServer<Self> {
        WatchServer::new(self)
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let span = tracing::debug_span!("watch_stream", peer = ?request.remote_addr());
        let (out, responses) = mpsc::channel(RESPONSE_BUFFER);
        let session = Session {
            hub: self.hub.clone(),
            header: Arc::clone(&self.header),
            fragment_limit: self.fragment_limit,
            out,
            watchers: StreamMap::new(),
            states: HashMap::new(),
            next_watch_id: 0,
            progress: None,
        };
        tokio::spawn(session.run(request.into_inner()).instrument(span));
        Ok(Response::new(ReceiverStream::new(responses)))
    }
}

/// What a session remembers about one of its watchers.
#[derive(Default)]
struct WatchState {
    progress_notify: bool,
    fragment: bool,
    /// Sent events since the last progress tick (etcd only notifies idle watchers).
    active: bool,
    /// A periodic progress notification is waiting for the hub's answer.
    notify_pending: bool,
}

/// A stream-wide progress request waiting for every watcher's answer.
struct PendingProgress {
    waiting: HashSet<i64>,
    revision: i64,
}

/// One client stream and the watchers it created.
struct Session {
    hub: WatchHub,
    header: HeaderFn,
    fragment_limit: usize,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    watchers: StreamMap<i64, Watcher>,
    states: HashMap<i64, WatchState>,
    next_watch_id: i64,
    progress: Option<PendingProgress>,
}

impl Session {
    /// Serves the stream until the client closes it or goes away; dropping the
    /// session drops its watchers, which removes them from the hub.
    async fn run(mut self, mut inbound: Streaming<WatchRequest>) {
        let period = self.hub.progress_notify_interval();
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let open = tokio::select! {
                request = inbound.message() => match request {
                    Ok(Some(request)) => self.on_request(request).await,
                    Ok(None) => false,
                    Err(status) => {
                        tracing::debug!(%status, "watch stream broken");
                        false
                    }
                },
                Some((watch_id, update)) = self.watchers.next() => {
                    self.on_update(watch_id, update).await
                }
                _ = ticker.tick() => {
                    self.on_progress_tick();
                    true
                }
            };
            if !open {
                tracing::debug!(watchers = self.watchers.len(), "watch stream closed");
                return;
            }
        }
    }

    /// Sends one response; false once the client is gone.
    async fn send(&self, response: WatchResponse) -> bool {
        self.out.send(Ok(response)).await.is_ok()
    }

    fn response(&self, revision: i64, watch_id: i64) -> WatchResponse {
        WatchResponse {
            header: Some((self.header)(revision)),
            watch_id,
            ..WatchResponse::default()
        }
    }

    async fn on_request(&mut self, request: WatchRequest) -> bool {
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.on_create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => self.on_cancel(cancel).await,
            Some(RequestUnion::ProgressRequest(_)) => self.on_progress_request().await,
            // An empty request: etcd ignores it.
            None => true,
        }
    }

    async fn on_create(&mut self, create: WatchCreateRequest) -> bool {
        let range_end = create.range_end.as_slice();
        let empty_range =
            !range_end.is_empty() && range_end != [0] && create.key.as_slice() >= range_end;
        let duplicate = create.watch_id != 0 && self.watchers.contains_key(&create.watch_id);
        if empty_range || duplicate {
            let mut response = self.response(self.hub.current_revision(), NO_WATCH_ID);
            response.created = true;
            response.canceled = true;
            response.cancel_reason = if empty_range {
                ERR_EMPTY_RANGE
            } else {
                ERR_DUPLICATE_ID
            }
            .into();
            return self.send(response).await;
        }
        let watch_id = self.assign_watch_id(create.watch_id);
        let spec = WatchSpec::from(&create);
        let watcher = self.hub.watch(spec);
        let mut response = self.response(watcher.created_revision(), watch_id);
        response.created = true;
        // Its updates are read by `run` only after this response is queued.
        self.watchers.insert(watch_id, watcher);
        let state = WatchState {
            progress_notify: create.progress_notify,
            fragment: create.fragment,
            ..WatchState::default()
        };
        self.states.insert(watch_id, state);
        tracing::debug!(watch_id, "watcher created");
        self.send(response).await
    }

    /// The client's id if it chose one, else the lowest free id from 0 up, as etcd.
    fn assign_watch_id(&mut self, requested: i64) -> i64 {
        if requested != 0 {
            return requested;
        }
        while self.watchers.contains_key(&self.next_watch_id) {
            self.next_watch_id += 1;
        }
        self.next_watch_id += 1;
        self.next_watch_id - 1
    }

    async fn on_cancel(&mut self, cancel: WatchCancelRequest) -> bool {
        let watch_id = cancel.watch_id;
        if self.watchers.remove(&watch_id).is_none() {
            // etcd answers nothing for an unknown watch_id.
            return true;
        }
        let mut response = self.response(self.hub.current_revision(), watch_id);
        response.canceled = true;
        self.forget(watch_id).await && self.send(response).await
    }

    /// Drops the session's record of a watcher that is gone; a progress request
    /// waiting on it may now be complete.
    async fn forget(&mut self, watch_id: i64) -> bool {
        self.states.remove(&watch_id);
        let waited = self
            .progress
            .as_mut()
            .is_some_and(|pending| pending.waiting.remove(&watch_id));
        !waited || self.finish_progress().await
    }

    async fn on_progress_request(&mut self) -> bool {
        if self.progress.is_some() {
            // Coalesced with the request already waiting.
            return true;
        }
        let waiting: HashSet<i64> = self.watchers.keys().copied().collect();
        for watcher in self.watchers.values() {
            watcher.request_progress();
        }
        self.progress = Some(PendingProgress {
            waiting,
            revision: i64::MAX,
        });
        self.finish_progress().await
    }

    /// Sends the stream-wide progress response once every watcher has answered.
    async fn finish_progress(&mut self) -> bool {
        match &self.progress {
            Some(pending) if pending.waiting.is_empty() => {
                let revision = match pending.revision {
                    i64::MAX => self.hub.current_revision(),
                    revision => revision,
                };
                self.progress = None;
                self.send(self.response(revision, NO_WATCH_ID)).await
            }
            _ => true,
        }
    }

    /// etcd's progress_notify: every interval, each idle watcher that asked for it
    /// gets an empty response once the hub confirms it is up to date.
    fn on_progress_tick(&mut self) {
        for (watch_id, watcher) in self.watchers.iter() {
            let Some(state) = self.states.get_mut(watch_id) else {
                continue;
            };
            if state.progress_notify && !state.active && !state.notify_pending {
                state.notify_pending = true;
                watcher.request_progress();
            }
            state.active = false;
        }
    }

    async fn on_update(&mut self, watch_id: i64, update: WatchUpdate) -> bool {
        match update {
            WatchUpdate::Events { revision, events } => {
                let fragment = match self.states.get_mut(&watch_id) {
                    Some(state) => {
                        state.active = true;
                        state.fragment
                    }
                    None => false,
                };
                let mut response = self.response(revision, watch_id);
                response.events = events;
                let limit = if fragment {
                    self.fragment_limit
                } else {
                    usize::MAX
                };
                for part in fragment_response(response, limit) {
                    if !self.send(part).await {
                        return false;
                    }
                }
                true
            }
            WatchUpdate::Progress { revision } => self.on_progress(watch_id, revision).await,
            WatchUpdate::Canceled {
                compact_revision,
                reason,
            } => {
                self.watchers.remove(&watch_id);
                let mut response = self.response(self.hub.current_revision(), watch_id);
                response.canceled = true;
                response.compact_revision = compact_revision;
                response.cancel_reason = reason;
                tracing::debug!(watch_id, compact_revision, "watcher canceled by the hub");
                self.forget(watch_id).await && self.send(response).await
            }
        }
    }

    async fn on_progress(&mut self, watch_id: i64, revision: i64) -> bool {
        let notify = self
            .states
            .get_mut(&watch_id)
            .is_some_and(|state| std::mem::take(&mut state.notify_pending));
        if notify && !self.send(self.response(revision, watch_id)).await {
            return false;
        }
        let Some(pending) = self.progress.as_mut() else {
            return true;
        };
        if !pending.waiting.remove(&watch_id) {
            return true;
        }
        pending.revision = pending.revision.min(revision);
        self.finish_progress().await
    }
}

/// Splits `response` into fragments of at most `limit` encoded bytes (at least one
/// event each), all but the last marked `fragment`, as etcd does for watchers
/// created with `fragment: true`.
fn fragment_response(response: WatchResponse, limit: usize) -> Vec<WatchResponse> {
    use prost::Message;
    if response.encoded_len() <= limit {
        return vec![response];
    }
    let empty = WatchResponse {
        events: Vec::new(),
        ..response.clone()
    };
    let mut parts = vec![empty.clone()];
    for event in response.events {
        let part = parts.last_mut().expect("parts is never empty");
        // Each event adds its length plus a tag and a length prefix (at most 6 bytes).
        let grown = part.encoded_len() + event.encoded_len() + 6;
        if !part.events.is_empty() && grown > limit {
            parts.push(empty.clone());
        }
        parts
            .last_mut()
            .expect("parts is never empty")
            .events
            .push(event);
    }
    let last = parts.len() - 1;
    for part in &mut parts[..last] {
        part.fragment = true;
    }
    parts
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use skiff_proto::etcdserverpb::watch_client::WatchClient;
    use skiff_proto::etcdserverpb::WatchProgressRequest;
    use skiff_proto::mvccpb::Event;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::transport::Channel;

    use super::*;
    use crate::watch::mock::MemStore;
    use crate::watch::WatchOptions;

    const CLUSTER_ID: u64 = 0x5eed;

    /// A client stream: send requests with `send`, read responses with `next`.
    struct Stream {
        requests: mpsc::Sender<WatchRequest>,
        responses: Streaming<WatchResponse>,
    }

    impl Stream {
        async fn send(&self, request: RequestUnion) {
            let request = WatchRequest {
                request_union: Some(request),
            };
            self.requests
                .send(request)
                .await
                .expect("request stream open");
        }

        async fn create(&self, create: WatchCreateRequest) {
            self.send(RequestUnion::CreateRequest(create)).await;
        }

        async fn next(&mut self) -> WatchResponse {
            tokio::time::timeout(Duration::from_secs(5), self.responses.message())
                .await
                .expect("no watch response within 5s")
                .expect("watch stream healthy")
                .expect("watch stream open")
        }
    }

    /// Serves a `WatchService` over `hub` on 127.0.0.1:0 and connects a client.
    async fn serve(hub: WatchHub) -> WatchClient<Channel> {
        let header: HeaderFn = Arc::new(|revision| ResponseHeader {
            cluster_id: CLUSTER_ID,
            member_id: 1,
            revision,
            raft_term: 1,
        });
        let service = WatchService::new(hub, header);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let server = tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        WatchClient::connect(format!("http://{address}"))
            .await
            .expect("connect")
    }

    async fn open(client: &mut WatchClient<Channel>) -> Stream {
        let (requests, rx) = mpsc::channel(16);
        let responses = client
            .watch(ReceiverStream::new(rx))
            .await
            .expect("watch call")
            .into_inner();
        Stream {
            requests,
            responses,
        }
    }

    fn on_key(key: &[u8]) -> WatchCreateRequest {
        WatchCreateRequest {
            key: key.to_vec(),
            ..WatchCreateRequest::default()
        }
    }

    fn revisions(events: &[Event]) -> Vec<i64> {
        events
            .iter()
            .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
            .collect()
    }

    fn revision(response: &WatchResponse) -> i64 {
        response.header.as_ref().map_or(0, |h| h.revision)
    }

    #[tokio::test]
    async fn grpc_watch_creates_streams_events_and_cancels() {
        let (store, hub) = MemStore::with_hub(WatchOptions::default());
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;

        stream.create(on_key(b"a")).await;
        let created = stream.next().await;
        assert!(created.created && !created.canceled);
        assert_eq!(
            (created.watch_id, revision(&created)),
            (0, 1),
            "server ids start at 0"
        );
        assert_eq!(
            created.header.as_ref().map(|h| h.cluster_id),
            Some(CLUSTER_ID)
        );

        stream
            .create(WatchCreateRequest {
                watch_id: 7,
                ..on_key(b"a")
            })
            .await;
        assert_eq!(stream.next().await.watch_id, 7);
        stream
            .create(WatchCreateRequest {
                watch_id: 7,
                ..on_key(b"b")
            })
            .await;
        let duplicate = stream.next().await;
        assert!(duplicate.created && duplicate.canceled);
        assert_eq!(duplicate.watch_id, NO_WATCH_ID);
        assert_eq!(duplicate.cancel_reason, ERR_DUPLICATE_ID);

        let put = store.put(&hub, b"a", b"v");
        let mut by_id = HashMap::new();
        for _ in 0..2 {
            let response = stream.next().await;
            assert_eq!(revision(&response), put);
            by_id.insert(response.watch_id, revisions(&response.events));
        }
        assert_eq!(by_id, HashMap::from([(0, vec![put]), (7, vec![put])]));

        stream
            .send(RequestUnion::CancelRequest(WatchCancelRequest {
                watch_id: 0,
            }))
            .await;
        let canceled = stream.next().await;
        assert!(canceled.canceled && !canceled.created);
        assert_eq!((canceled.watch_id, canceled.compact_revision), (0, 0));
        assert!(canceled.cancel_reason.is_empty());
    }

    #[tokio::test]
    async fn cancel_stops_events() {
        let (store, hub) = MemStore::with_hub(WatchOptions::default());
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;
        stream.create(on_key(b"a")).await;
        stream.create(on_key(b"a")).await;
        assert_eq!(
            (stream.next().await.watch_id, stream.next().await.watch_id),
            (0, 1)
        );
        stream
            .send(RequestUnion::CancelRequest(WatchCancelRequest {
                watch_id: 0,
            }))
            .await;
        assert!(stream.next().await.canceled);
        let put = store.put(&hub, b"a", b"v");
        let response = stream.next().await;
        assert_eq!(
            (response.watch_id, revisions(&response.events)),
            (1, vec![put])
        );
        store.put(&hub, b"a", b"v");
        assert_eq!(
            stream.next().await.watch_id,
            1,
            "watcher 0 sends nothing after its cancel"
        );
    }

    #[tokio::test]
    async fn grpc_watch_from_compacted_revision_is_created_then_canceled() {
        let (store, hub) = MemStore::with_hub(WatchOptions::default());
        for _ in 0..4 {
            store.put(&hub, b"a", b"v"); // revisions 2..=5
        }
        store.compact(4);
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;
        stream
            .create(WatchCreateRequest {
                start_revision: 2,
                ..on_key(b"a")
            })
            .await;
        assert!(stream.next().await.created);
        let canceled = stream.next().await;
        assert!(canceled.canceled);
        assert_eq!((canceled.watch_id, canceled.compact_revision), (0, 4));
        assert_eq!(
            canceled.cancel_reason,
            "mvcc: required revision has been compacted"
        );
    }

    #[tokio::test]
    async fn grpc_progress_request_answers_for_the_whole_stream() {
        let (store, hub) = MemStore::with_hub(WatchOptions::default());
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;
        stream.create(on_key(b"a")).await;
        assert!(stream.next().await.created);
        store.put(&hub, b"a", b"v"); // 2
        let current = store.put(&hub, b"b", b"v"); // 3
        assert_eq!(revisions(&stream.next().await.events), vec![2]);
        stream
            .send(RequestUnion::ProgressRequest(WatchProgressRequest {}))
            .await;
        let progress = stream.next().await;
        assert_eq!(
            (progress.watch_id, revision(&progress)),
            (NO_WATCH_ID, current)
        );
        assert!(progress.events.is_empty() && !progress.created && !progress.canceled);
    }

    #[tokio::test]
    async fn idle_progress_notify_watcher_gets_empty_responses() {
        let options = WatchOptions {
            progress_notify_interval: Duration::from_millis(20),
            ..WatchOptions::default()
        };
        let (store, hub) = MemStore::with_hub(options);
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;
        let create = WatchCreateRequest {
            progress_notify: true,
            ..on_key(b"a")
        };
        stream.create(create).await;
        assert!(stream.next().await.created);
        let current = store.put(&hub, b"other", b"v");
        let notify = stream.next().await;
        assert_eq!((notify.watch_id, revision(&notify)), (0, current));
        assert!(notify.events.is_empty());
    }

    #[tokio::test]
    async fn closing_the_stream_removes_its_watchers() {
        let (_store, hub) = MemStore::with_hub(WatchOptions::default());
        let mut client = serve(hub.clone()).await;
        let mut stream = open(&mut client).await;
        stream.create(on_key(b"a")).await;
        assert!(stream.next().await.created);
        assert_eq!(hub.watcher_count(), 1);
        drop(stream);
        tokio::time::timeout(Duration::from_secs(5), async {
            while hub.watcher_count() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("watchers removed after the stream closed");
    }

    #[test]
    fn large_responses_are_fragmented_when_asked() {
        let event = |revision| Event {
            kv: Some(skiff_proto::mvccpb::KeyValue {
                key: b"a".to_vec(),
                mod_revision: revision,
                value: vec![b'x'; 100],
                ..Default::default()
            }),
            ..Event::default()
        };
        let response = WatchResponse {
            watch_id: 3,
            events: (1..=10).map(event).collect(),
            ..WatchResponse::default()
        };
        let parts = fragment_response(response.clone(), 350);
        assert!(parts.len() > 3, "split into {} parts", parts.len());
        let flags: Vec<bool> = parts.iter().map(|p| p.fragment).collect();
        assert_eq!(flags.iter().filter(|f| !**f).count(), 1);
        assert!(!flags[flags.len() - 1], "only the last part is unmarked");
        let events: Vec<Event> = parts.into_iter().flat_map(|p| p.events).collect();
        assert_eq!(events, response.events);
        assert_eq!(
            fragment_response(response.clone(), usize::MAX),
            vec![response]
        );
    }
}
