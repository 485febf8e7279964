//! The store members' peer relays, and partitions without root.
//!
//! Each member advertises a relay's address as its peer URL, so every raft
//! connection to it passes through the supervisor. A partition of member M
//! refuses, and cuts, every relayed connection to M and every one from M.
//! "From M" is found as `ss -p` finds it: the connection's source port names
//! a socket in `/proc/net/tcp`, and its inode is among the open files of M's
//! process. A member's client port is not relayed: clients still reach it.
//!
//! # Caveats
//! Linux only (`/proc`); a connection whose sender cannot be found is judged
//! by its receiver alone.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use super::plan::RelaySpec;

/// The relays and who is partitioned; cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Relays {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    partitioned: BTreeSet<String>,
    member_pids: HashMap<String, u32>,
    connections: Vec<Relayed>,
    next_id: u64,
}

/// One relayed connection.
struct Relayed {
    id: u64,
    from: Option<String>,
    to: String,
    abort: AbortHandle,
}

impl Relays {
    /// Binds every relay and forwards connections until `shutdown`.
    pub(crate) async fn start(
        specs: &[RelaySpec],
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Relays> {
        let relays = Relays::default();
        for spec in specs {
            let listener = TcpListener::bind(spec.listen)
                .await
                .with_context(|| format!("the peer relay of {} on {}", spec.member, spec.listen))?;
            tokio::spawn(
                relays
                    .clone()
                    .accept_loop(listener, spec.clone(), shutdown.clone()),
            );
        }
        Ok(relays)
    }

    /// Records the pid of store member `name`, to recognise its connections.
    pub(crate) fn set_pid(&self, name: &str, pid: u32) {
        self.lock().member_pids.insert(name.to_string(), pid);
    }

    /// Cuts `name` off: cuts its relayed connections, refuses new ones.
    pub(crate) fn partition(&self, name: &str) {
        let mut inner = self.lock();
        inner.partitioned.insert(name.to_string());
        inner.connections.retain(|c| {
            let cut = c.to == name || c.from.as_deref() == Some(name);
            if cut {
                c.abort.abort();
            }
            !cut
        });
    }

    /// Lets `name`'s (or, with `None`, everyone's) connections through again.
    pub(crate) fn heal(&self, name: Option<&str>) {
        let mut inner = self.lock();
        match name {
            Some(name) => {
                inner.partitioned.remove(name);
            }
            None => inner.partitioned.clear(),
        }
    }

    /// Whether `name` is partitioned.
    pub(crate) fn is_partitioned(&self, name: &str) -> bool {
        self.lock().partitioned.contains(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn accept_loop(
        self,
        listener: TcpListener,
        spec: RelaySpec,
        shutdown: CancellationToken,
    ) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => return,
            };
            match accepted {
                Ok((stream, source)) => {
                    tokio::spawn(self.clone().relay(stream, source, spec.clone()));
                }
                Err(err) => {
                    tracing::warn!(%err, relay = %spec.listen, "accepting a peer connection")
                }
            }
        }
    }

    /// Forwards one connection unless either end is partitioned.
    async fn relay(self, mut stream: TcpStream, source: SocketAddr, spec: RelaySpec) {
        let pids: Vec<(String, u32)> = {
            let inner = self.lock();
            inner
                .member_pids
                .iter()
                .map(|(n, p)| (n.clone(), *p))
                .collect()
        };
        let listen = spec.listen;
        let from = tokio::task::spawn_blocking(move || sender(source, listen, &pids))
            .await
            .ok()
            .flatten();
        {
            let inner = self.lock();
            let cut = inner.partitioned.contains(&spec.member)
                || from.as_ref().is_some_and(|f| inner.partitioned.contains(f));
            if cut {
                return;
            }
        }
        let Ok(mut target) = TcpStream::connect(spec.target).await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let _ = target.set_nodelay(true);
        let task = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut target).await;
        });
        let id = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = inner.next_id;
            inner.connections.push(Relayed {
                id,
                from,
                to: spec.member.clone(),
                abort: task.abort_handle(),
            });
            id
        };
        let _ = task.await;
        self.lock().connections.retain(|c| c.id != id);
    }
}

/// The member (of `pids`) whose process owns the client end of the
/// connection from `source` to `relay`.
fn sender(source: SocketAddr, relay: SocketAddr, pids: &[(String, u32)]) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = socket_inode(&table, source, relay)?;
    let link = format!("socket:[{inode}]");
    pids.iter().find_map(|(name, pid)| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == link.as_str()))
            .then(|| name.clone())
    })
}

/// The inode of the socket in `/proc/net/tcp`'s `table` whose local end is
/// `local` and remote end `remote`.
fn socket_inode(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (parse_address(l)? == local && parse_address(r)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
    })
}

/// `0100007F:1F90` (the IPv4 address as the kernel's native-endian word, the
/// port in hex) as `127.0.0.1:8080`.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::new(
        Ipv4Addr::from(ip.to_ne_bytes()).into(),
        port,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A000 0200007F:0CEB 01 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn proc_net_tcp_addresses_read_as_socket_addresses() {
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_address("0100007F:1F90"),
                "127.0.0.1:8080".parse().ok()
            );
        }
        assert_eq!(parse_address("nonsense"), None);
    }

    #[test]
    fn a_connection_is_found_by_both_its_ends() {
        if cfg!(target_endian = "big") {
            return;
        }
        let source = "127.0.0.1:40960".parse().unwrap();
        let relay = "127.0.0.2:3307".parse().unwrap();
        assert_eq!(socket_inode(TABLE, source, relay), Some(2222));
        assert_eq!(socket_inode(TABLE, relay, source), None);
    }

    #[tokio::test]
    async fn the_sender_of_a_connection_is_the_process_owning_its_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = listener.local_addr().unwrap();
        let client = TcpStream::connect(relay).await.unwrap();
        let (_server, source) = listener.accept().await.unwrap();
        let me = vec![("store-1".to_string(), std::process::id())];
        let found = tokio::task::spawn_blocking(move || sender(source, relay, &me))
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some("store-1"));
        let nobody = vec![("store-2".to_string(), u32::MAX)];
        assert_eq!(sender(source, relay, &nobody), None);
        drop(client);
    }

    #[tokio::test]
    async fn a_partitioned_member_gets_no_relayed_connections_until_healed() {
        let member = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let spec = RelaySpec {
            member: "store-1".into(),
            listen: relay_addr,
            target: member.local_addr().unwrap(),
        };
        let shutdown = CancellationToken::new();
        let relays = Relays::start(&[spec], &shutdown).await.unwrap();
        relays.partition("store-1");
        assert!(relays.is_partitioned("store-1"));
        // Refused: the relay accepts and closes; the member sees nothing.
        let mut refused = TcpStream::connect(relay_addr).await.unwrap();
        let mut byte = [0u8; 1];
        use tokio::io::AsyncReadExt;
        assert_eq!(refused.read(&mut byte).await.unwrap(), 0, "closed at once");
        relays.heal(None);
        let _through = TcpStream::connect(relay_addr).await.unwrap();
        let accepted = member.accept().await;
        assert!(accepted.is_ok(), "a healed member is reached again");
        shutdown.cancel();
    }
}
