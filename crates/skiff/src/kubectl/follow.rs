//! Following one object by name through a watch: what `rollout status` and
//! `delete --wait` wait on, as kubectl's `watchtools.UntilWithSync` does
//! with a `metadata.name` field selector — no polling.
//!
//! # Caveats
//! A watch the server closes is opened again from the last resourceVersion
//! seen; one whose resourceVersion was compacted away (410 Gone) starts over
//! from a fresh read, so a change in between shows only as its result.

use futures::stream::BoxStream;
use futures::StreamExt;
use skiff_client::{Api, Object, ResourceExt, WatchEvent, WatchParams};

use super::Error;

/// What [`Follower::next`] saw.
pub(crate) enum Seen<K> {
    /// The object as it is after a change.
    Now(K),
    /// The object is gone.
    Gone,
}

/// One object, followed from a resourceVersion on.
pub(crate) struct Follower<K> {
    api: Api<K>,
    name: String,
    /// The server, for messages.
    server: String,
    /// The last resourceVersion seen; `None` when the object must be read again.
    resource_version: Option<String>,
    events: Option<BoxStream<'static, Result<WatchEvent<K>, skiff_client::Error>>>,
}

impl<K: Object + ResourceExt> Follower<K> {
    /// Follows `name`'s changes after `resource_version` (that of a read
    /// the caller made).
    pub fn after(api: Api<K>, name: &str, resource_version: String, server: &str) -> Follower<K> {
        Follower {
            api,
            name: name.to_string(),
            server: server.to_string(),
            resource_version: Some(resource_version),
            events: None,
        }
    }

    /// Waits for the next change to the object.
    pub async fn next(&mut self) -> Result<Seen<K>, Error> {
        loop {
            let Some(resource_version) = self.resource_version.clone() else {
                return match self
                    .api
                    .get_opt(&self.name)
                    .await
                    .map_err(|e| Error::from_client(e, &self.server))?
                {
                    Some(object) => Ok(self.seen(object)),
                    None => Ok(Seen::Gone),
                };
            };
            let events = match &mut self.events {
                Some(events) => events,
                None => {
                    let params =
                        WatchParams::default().fields(&format!("metadata.name={}", self.name));
                    let events = self
                        .api
                        .watch(&params, &resource_version)
                        .await
                        .map_err(|e| Error::from_client(e, &self.server))?;
                    self.events.insert(events)
                }
            };
            match events.next().await {
                // The server closed the watch (its timeout): open another.
                None => self.events = None,
                Some(Err(err)) => return Err(Error::from_client(err, &self.server)),
                Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                    return Ok(self.seen(object))
                }
                Some(Ok(WatchEvent::Deleted(_))) => return Ok(Seen::Gone),
                Some(Ok(WatchEvent::Bookmark(bookmark))) => {
                    self.resource_version = Some(bookmark.metadata.resource_version)
                }
                Some(Ok(WatchEvent::Error(status))) if status.code == 410 => {
                    self.events = None;
                    self.resource_version = None;
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    return Err(Error::Usage(format!("watch failed: {}", status.message)))
                }
            }
        }
    }

    fn seen(&mut self, object: K) -> Seen<K> {
        self.resource_version = object.resource_version();
        Seen::Now(object)
    }
}
