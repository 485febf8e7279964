//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! `leaderelection` package.
//!
//! Several replicas of a controller run; one must act. Each candidate tries
//! every `retry_period` to write its identity into one Lease object:
//!
//! - **Acquire**: create the Lease if there is none, or take it over when its
//!   holder has not renewed it for `leaseDurationSeconds`. A take-over sets
//!   `acquireTime` and adds one to `leaseTransitions`.
//! - **Renew**: the leader rewrites `renewTime` every `retry_period`. Writes
//!   carry the Lease's resourceVersion, so two candidates racing for one
//!   Lease cannot both win: the loser gets a Conflict.
//! - **Lose**: a leader that has not renewed for `renew_deadline` (the server
//!   is unreachable, or someone else holds the Lease) stops leading. As
//!   `renew_deadline < lease_duration`, it stops before anyone can take over.
//!
//! Expiry is judged as client-go judges it: by when *this* candidate last saw
//! the Lease change on its own monotonic clock, not by the `renewTime` written
//! in it, so clocks that disagree between machines do not matter.
//! See <https://kubernetes.io/docs/concepts/architecture/leases/>.
//!
//! # Caveats
//! No jitter on retries, no `preferredHolder`/coordinated election strategy,
//! and no callbacks: leadership is a `watch` channel ([`LeaderElector::leading`]).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::error::Error;
use crate::Client;
use kube_core::params::PostParams;

/// Which Lease, who is asking, and the timings. `Default` gives client-go's
/// timings (15 s, 10 s, 2 s) with an empty name and identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    /// The Lease's namespace (kube-system for the control plane's components).
    pub namespace: String,
    /// The Lease's name, such as `kube-scheduler`.
    pub lease_name: String,
    /// This candidate's identity, unique among candidates (host name + a uid).
    pub identity: String,
    /// How long a Lease stays held without renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it stops leading.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
    /// On shutdown, give the Lease up (empty holder) so another candidate
    /// takes over at once instead of after `lease_duration`.
    pub release_on_cancel: bool,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        LeaderElectionConfig {
            namespace: "kube-system".into(),
            lease_name: String::new(),
            identity: String::new(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }
}

/// A candidate in one leader election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    leading: watch::Sender<bool>,
    /// The Lease spec last seen, and when (on the local clock) it was first
    /// seen as it is.
    observed: Option<(LeaseSpec, Instant)>,
}

impl LeaderElector {
    /// A candidate; the timings must satisfy
    /// `lease_duration > renew_deadline > retry_period > 0`.
    pub fn new(client: Client, config: LeaderElectionConfig) -> Result<LeaderElector, Error> {
        let invalid = |why: &str| Err(Error::InvalidConfig(format!("leader election: {why}")));
        if config.lease_name.is_empty() || config.identity.is_empty() {
            return invalid("a lease name and an identity are required");
        }
        if config.lease_duration <= config.renew_deadline {
            return invalid("lease_duration must be greater than renew_deadline");
        }
        if config.renew_deadline <= config.retry_period || config.retry_period.is_zero() {
            return invalid(
                "renew_deadline must be greater than retry_period, which must not be zero",
            );
        }
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            leading: watch::Sender::new(false),
            observed: None,
        })
    }

    /// Whether this candidate leads, now and as it changes.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Campaigns until `shutdown` is cancelled: acquire, lead while renewals
    /// succeed, and after losing the Lease campaign again.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            // Acquire.
            loop {
                match self.attempt(&shutdown).await {
                    Some(true) => break,
                    Some(false) => {}
                    None => return,
                }
                if self.pause(&shutdown).await.is_none() {
                    return;
                }
            }
            tracing::info!(lease = %self.config.lease_name, identity = %self.config.identity, "started leading");
            self.leading.send_replace(true);

            // Renew, until the renew deadline passes without success.
            let mut renewed = Instant::now();
            loop {
                if self.pause(&shutdown).await.is_none() {
                    if self.config.release_on_cancel {
                        if let Err(err) = self.release().await {
                            tracing::warn!(error = %err, "could not release the lease");
                        }
                    }
                    self.leading.send_replace(false);
                    return;
                }
                match self.attempt(&shutdown).await {
                    Some(true) => renewed = Instant::now(),
                    Some(false) if renewed.elapsed() < self.config.renew_deadline => {}
                    Some(false) => break,
                    None => {}
                }
            }
            tracing::warn!(lease = %self.config.lease_name, identity = %self.config.identity, "stopped leading: the lease was not renewed in time");
            self.leading.send_replace(false);
        }
    }

    /// Waits one retry period; `None` on shutdown.
    async fn pause(&self, shutdown: &CancellationToken) -> Option<()> {
        tokio::select! {
            _ = shutdown.cancelled() => None,
            _ = tokio::time::sleep(self.config.retry_period) => Some(()),
        }
    }

    /// One try, bounded by the renew deadline; `None` on shutdown (the loop
    /// sees the cancelled token next).
    async fn attempt(&mut self, shutdown: &CancellationToken) -> Option<bool> {
        let deadline = self.config.renew_deadline;
        tokio::select! {
            _ = shutdown.cancelled() => None,
            result = tokio::time::timeout(deadline, self.try_acquire_or_renew()) => {
                Some(match result {
                    Ok(Ok(held)) => held,
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "acquiring or renewing the lease failed");
                        false
                    }
                    Err(_) => false,
                })
            }
        }
    }

    /// Tries once to take or keep the Lease: `true` when this candidate holds it.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let now = now_micro();
        let ours = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..Default::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(ours),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.unwrap_or_default());
                    Ok(true)
                }
                Err(err) if err.is_already_exists() => Ok(false),
                Err(err) => Err(err),
            };
        };

        let current = lease.spec.clone().unwrap_or_default();
        let seen_at = self.observe(current.clone());
        let holder = current.holder_identity.as_deref().unwrap_or_default();
        let held_by_us = holder == self.config.identity;
        let lease_seconds = current.lease_duration_seconds.unwrap_or(0).max(0) as u64;
        let expired = seen_at + Duration::from_secs(lease_seconds) <= Instant::now();
        if !holder.is_empty() && !held_by_us && !expired {
            return Ok(false);
        }

        let spec = if held_by_us {
            LeaseSpec {
                acquire_time: current.acquire_time.clone(),
                lease_transitions: current.lease_transitions,
                ..ours
            }
        } else {
            LeaseSpec {
                lease_transitions: Some(current.lease_transitions.unwrap_or(0) + 1),
                ..ours
            }
        };
        lease.spec = Some(spec);
        // The resourceVersion read above makes this a compare-and-swap.
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec.unwrap_or_default());
                Ok(true)
            }
            Err(err) if err.is_conflict() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Records the Lease spec as seen; answers when it was first seen as it is.
    fn observe(&mut self, spec: LeaseSpec) -> Instant {
        match &self.observed {
            Some((seen, at)) if *seen == spec => *at,
            _ => {
                let now = Instant::now();
                self.observed = Some((spec, now));
                now
            }
        }
    }

    /// Gives the Lease up, if this candidate still holds it.
    async fn release(&mut self) -> Result<(), Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.lease_name).await? else {
            return Ok(());
        };
        let current = lease.spec.clone().unwrap_or_default();
        if current.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let now = now_micro();
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: current.lease_transitions,
            ..Default::default()
        });
        self.api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}

/// The wall-clock time, to microseconds, as Lease times are written.
fn now_micro() -> MicroTime {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    MicroTime(
        k8s_openapi::jiff::Timestamp::from_microsecond(micros)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}
