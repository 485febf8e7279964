//! A private network for cluster tests: one network namespace per member, all
//! joined by a bridge that lives in a namespace of its own, plus one link from
//! the test's own namespace so that clients reach every member. Partitions are
//! blackhole routes inside the members' namespaces: an isolated member and the
//! others cannot reach each other, while the test's clients still reach all.
//!
//! Everything is created by the test (names carry its pid) and removed on
//! drop, even after a failure. Needs root and iproute2.

use std::process::Command;

/// The namespaces, links and addresses of one test network.
pub struct TestNet {
    prefix: String,
    subnet: String,
    members: usize,
    /// Partitions in force: (member, peer) pairs with blackhole routes.
    cut: Vec<(usize, usize)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TestNet {
    /// Whether this process may create namespaces (it runs as root).
    pub fn available() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    }

    /// Creates the network for `members` members.
    pub fn create(members: usize) -> Result<TestNet, String> {
        let pid = std::process::id();
        let net = TestNet {
            prefix: format!("skf{}", pid % 1_000_000),
            subnet: format!("10.213.{}", pid % 250),
            members,
            cut: Vec::new(),
        };
        // Leftovers of a crashed run with the same pid would clash.
        net.remove();
        net.build().inspect_err(|_| net.remove())?;
        Ok(net)
    }

    fn hub(&self) -> String {
        format!("{}hub", self.prefix)
    }

    /// Member `i`'s namespace name.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}n{i}", self.prefix)
    }

    /// Member `i`'s address.
    pub fn address(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        // The test's own link: one end here with an address, one on the bridge.
        let test_end = format!("{}t", self.prefix);
        ip(&[
            "link", "add", &test_end, "type", "veth", "peer", "name", "tport", "netns", &hub,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", self.subnet),
            "dev",
            &test_end,
        ])?;
        ip(&["link", "set", &test_end, "up"])?;
        ip(&["-n", &hub, "link", "set", "tport", "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", "tport", "up"])?;
        for i in 0..self.members {
            self.add_member(i)?;
        }
        Ok(())
    }

    fn add_member(&self, i: usize) -> Result<(), String> {
        let (hub, ns) = (self.hub(), self.namespace(i));
        let port = format!("m{i}");
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &hub,
        ])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.address(i)),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", &port, "up"])?;
        Ok(())
    }

    /// Cuts member `i` off from every other member, both ways.
    pub fn isolate(&mut self, i: usize) -> Result<(), String> {
        for j in (0..self.members).filter(|&j| j != i) {
            for (from, to) in [(i, j), (j, i)] {
                if !self.cut.contains(&(from, to)) {
                    ip(&[
                        "-n",
                        &self.namespace(from),
                        "route",
                        "add",
                        "blackhole",
                        &format!("{}/32", self.address(to)),
                    ])?;
                    self.cut.push((from, to));
                }
            }
        }
        Ok(())
    }

    /// Removes every partition.
    pub fn heal(&mut self) -> Result<(), String> {
        for (from, to) in std::mem::take(&mut self.cut) {
            ip(&[
                "-n",
                &self.namespace(from),
                "route",
                "del",
                "blackhole",
                &format!("{}/32", self.address(to)),
            ])?;
        }
        Ok(())
    }

    fn remove(&self) {
        let _ = ip(&["link", "del", &format!("{}t", self.prefix)]);
        for i in 0..self.members {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.remove();
    }
}
