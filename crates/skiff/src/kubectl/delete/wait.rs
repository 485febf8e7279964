//! `skiff delete --wait`: returns once every deleted object is gone, each
//! followed by watch from the resourceVersion its delete answered with, as
//! kubectl's `wait --for=delete`. An object whose uid changed was deleted
//! and made again: the one deleted is gone.

use std::time::Duration;

use skiff_client::{Api, DynamicObject, ResourceExt, Served};

use crate::kubectl::follow::{Follower, Seen};
use crate::kubectl::{Error, Session};

/// kubectl's wait when `--timeout` is zero: a week.
const NO_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// An object the server kept after its delete (finalizers, a grace period).
pub(crate) struct Pending {
    /// Its name.
    pub name: String,
    /// The uid of the object deleted.
    pub uid: String,
    /// The resourceVersion the delete answered with.
    pub resource_version: String,
    /// Its resource, for messages.
    pub resource: Served,
    /// The objects of its resource and namespace.
    pub api: Api<DynamicObject>,
}

/// Waits until every object of `pending` is gone, or fails once `timeout`
/// (zero: a week) has passed, naming the first object still there.
pub(crate) async fn all_gone(
    session: &Session,
    pending: Vec<Pending>,
    timeout: Duration,
) -> Result<(), Error> {
    let timeout = if timeout.is_zero() {
        NO_TIMEOUT
    } else {
        timeout
    };
    let deadline = tokio::time::Instant::now() + timeout;
    for object in pending {
        match tokio::time::timeout_at(deadline, gone(session, &object)).await {
            Ok(result) => result?,
            Err(_) => {
                let group_resource = match object.resource.resource.group.as_str() {
                    "" => object.resource.resource.plural.clone(),
                    group => format!("{}.{group}", object.resource.resource.plural),
                };
                return Err(Error::Usage(format!(
                    "timed out waiting for the condition on {group_resource}/{}",
                    object.name
                )));
            }
        }
    }
    Ok(())
}

/// Follows one object until it is gone.
async fn gone(session: &Session, object: &Pending) -> Result<(), Error> {
    let mut follower = Follower::after(
        object.api.clone(),
        &object.name,
        object.resource_version.clone(),
        &session.server,
    );
    loop {
        match follower.next().await? {
            Seen::Gone => return Ok(()),
            Seen::Now(now) if now.uid().as_deref() != Some(object.uid.as_str()) => return Ok(()),
            Seen::Now(_) => {}
        }
    }
}
