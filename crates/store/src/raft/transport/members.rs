//! Asking peers for the member list: how a member that joins a running
//! cluster learns the ID MemberAdd gave it.
//!
//! Each peer named in `--initial-cluster` (other than the joining member) is
//! asked in turn with `Members`; the first list that holds a member with the
//! joining member's peer URLs gives its ID. Peers may still be starting, and
//! a lagging peer may not have applied the MemberAdd yet, so the round is
//! repeated until `patience` has passed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use skiff_proto::raftpb::raft_client::RaftClient;
use skiff_proto::raftpb::MembersRequest;
use skiff_proto::store::Member;
use tokio::time::Instant;

use super::{endpoint, error_chain};
use crate::error::{Result, StoreError};

/// The pause between two rounds of questions.
const ROUND_PAUSE: Duration = Duration::from_millis(200);
/// How long one question may take, connection included.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Finds the member whose peer URLs are `own_peer_urls` in the member list of
/// cluster `cluster_id`, asking the peers at `peer_urls`; returns its ID and
/// the whole list. Fails once `patience` has passed without an answer that
/// names it: unreachable peers and a list without it are told apart.
pub(crate) async fn learn_member_id(
    peer_urls: &[String],
    own_peer_urls: &[String],
    cluster_id: u64,
    patience: Duration,
) -> Result<(u64, Vec<Member>)> {
    let own: BTreeSet<&str> = own_peer_urls.iter().map(String::as_str).collect();
    let peers: Vec<&String> = peer_urls
        .iter()
        .filter(|url| !own.contains(url.as_str()))
        .collect();
    if peers.is_empty() {
        return Err(StoreError::InvalidRequest(format!(
            "could not reach any member of --initial-cluster to learn this member's ID: \
             it names no peer URL but this member's own ({own_peer_urls:?})"
        )));
    }
    let deadline = Instant::now() + patience;
    let mut failures: BTreeMap<&str, String> = BTreeMap::new();
    let mut answered: Option<Vec<Member>> = None;
    loop {
        for url in &peers {
            match ask(url, cluster_id).await {
                Ok(members) => {
                    failures.remove(url.as_str());
                    let mine = members.iter().find(|m| {
                        m.peer_urls
                            .iter()
                            .map(String::as_str)
                            .collect::<BTreeSet<_>>()
                            == own
                    });
                    if let Some(member) = mine {
                        let id = member.id;
                        tracing::info!(
                            member = %format!("{id:x}"),
                            peer = %url,
                            "learned this member's ID from the cluster's member list"
                        );
                        return Ok((id, members));
                    }
                    answered = Some(members);
                }
                Err(err) => {
                    failures.insert(url, err);
                }
            }
        }
        if Instant::now() + ROUND_PAUSE > deadline {
            break;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    match answered {
        Some(members) => {
            let listed: Vec<String> = members
                .iter()
                .map(|m| format!("{:x}={}", m.id, m.peer_urls.join("|")))
                .collect();
            Err(StoreError::InvalidRequest(format!(
                "this member's peer URLs {own_peer_urls:?} are not in the cluster's member list \
                 ({}); add it with `etcdctl member add` first",
                listed.join(", ")
            )))
        }
        None => {
            let reasons: Vec<String> = failures
                .iter()
                .map(|(url, err)| format!("{url}: {err}"))
                .collect();
            Err(StoreError::InvalidRequest(format!(
                "could not reach any member of --initial-cluster to learn this member's ID \
                 (tried for {patience:?}): {}",
                reasons.join("; ")
            )))
        }
    }
}

/// One `Members` question to the peer at `url`.
async fn ask(url: &str, cluster_id: u64) -> std::result::Result<Vec<Member>, String> {
    let question = async {
        let channel = endpoint(url)?
            .connect()
            .await
            .map_err(|e| error_chain(&e))?;
        let reply = RaftClient::new(channel)
            .members(MembersRequest { cluster_id })
            .await
            .map_err(|status| status.message().to_owned())?;
        Ok(reply.into_inner().members)
    };
    match tokio::time::timeout(ASK_TIMEOUT, question).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {ASK_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::raft::transport::Transport;

    const CLUSTER: u64 = 0xc1;

    fn member(id: u64, urls: &[&str]) -> Member {
        Member {
            id,
            name: format!("m{id}"),
            peer_urls: urls.iter().map(|u| u.to_string()).collect(),
            ..Member::default()
        }
    }

    /// A peer listener answering `Members` with `members`; returns its URL and
    /// the token that stops it.
    async fn peer(members: Vec<Member>) -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let transport = Transport::new(1, CLUSTER, Arc::new(|_| {}));
        transport.set_member_source(Arc::new(move || members.clone()));
        let (stop, _) = super::super::tests::serve(transport, listener);
        (url, stop)
    }

    /// Why member 10.0.0.4 of cluster `cluster` cannot learn its ID from
    /// `peers` within a short patience.
    async fn refusal(peers: &[String], cluster: u64) -> String {
        learn_member_id(
            peers,
            &urls(&["http://10.0.0.4:2380"]),
            cluster,
            Duration::from_millis(300),
        )
        .await
        .expect_err("no ID can be learned")
        .to_string()
    }

    /// A URL nothing listens on.
    async fn closed_url() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|u| u.to_string()).collect()
    }

    #[tokio::test]
    async fn a_joining_member_finds_its_id_by_its_peer_urls() {
        let own = ["http://10.0.0.4:2380", "http://10.0.0.40:2380"];
        let (url, stop) = peer(vec![
            member(0x11, &["http://10.0.0.1:2380"]),
            // Listed in another order than configured.
            member(0xa4, &[own[1], own[0]]),
        ])
        .await;
        let down = closed_url().await;
        // Its own URL is not asked; a peer that is down is passed over.
        let (id, members) = learn_member_id(
            &[own[0].to_string(), down, url],
            &urls(&own),
            CLUSTER,
            Duration::from_secs(30),
        )
        .await
        .expect("the ID is learned");
        assert_eq!(id, 0xa4);
        assert_eq!(members.len(), 2);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_member_missing_from_the_list_is_told_to_add_it_first() {
        let (url, stop) = peer(vec![member(0x11, &["http://10.0.0.1:2380"])]).await;
        let err = refusal(&[url], CLUSTER).await;
        assert!(
            err.contains(
                r#"this member's peer URLs ["http://10.0.0.4:2380"] are not in the cluster's member list"#
            ) && err.contains("add it with `etcdctl member add` first")
                && err.contains("11=http://10.0.0.1:2380"),
            "{err}"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn no_reachable_peer_of_the_same_cluster_is_an_error_naming_each() {
        let (other_cluster, stop) = peer(vec![member(0xa4, &["http://10.0.0.4:2380"])]).await;
        let down = closed_url().await;
        let err = refusal(&[down.clone(), other_cluster.clone()], CLUSTER + 1).await;
        assert!(
            err.contains(
                "could not reach any member of --initial-cluster to learn this member's ID"
            ) && err.contains(&down)
                && err.contains(&format!("{other_cluster}: cluster ID mismatch")),
            "{err}"
        );
        stop.cancel();

        // A list naming only the member itself asks nobody.
        let err = learn_member_id(
            &urls(&["http://10.0.0.4:2380"]),
            &urls(&["http://10.0.0.4:2380"]),
            CLUSTER,
            Duration::from_secs(30),
        )
        .await
        .expect_err("nobody to ask")
        .to_string();
        assert!(
            err.contains("it names no peer URL but this member's own"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_does_not_know_the_members_yet_is_not_an_answer() {
        let (url, stop) = peer(Vec::new()).await;
        let err = refusal(&[url], CLUSTER).await;
        assert!(
            err.contains("could not reach any member")
                && err.contains("does not know the member list yet"),
            "{err}"
        );
        stop.cancel();
    }
}
