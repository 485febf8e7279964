//! A full disk: the writes that do not fit get a clear error, nothing is lost,
//! reads keep working, and writes resume once space is back.
//!
//! The store's log directory is a small tmpfs mounted by the test, so only the
//! log fills up. Mounting needs root: without it the test fails on CI (which
//! runs as root) and says why elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use etcd_client::Client;
use skiff_e2e::InProcessStore;

/// Mounts a tmpfs of `size` at `dir` and unmounts it when dropped.
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn new(dir: &Path, size: &str) -> TmpfsMount {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed",
            dir.display()
        );
        TmpfsMount(dir.to_path_buf())
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a failed assertion left the store open): detach it now,
            // the kernel frees it when the last file closes.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_and_loses_nothing() {
    if !is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this suite as root"
        );
        eprintln!("skipping: mounting a tmpfs needs root");
        return;
    }
    let holder = tempfile::tempdir().unwrap();
    let data_dir = holder.path().join("data");
    let mount = TmpfsMount::new(&data_dir.join("wal"), "8m");
    // Room we can give back later.
    let filler = mount.0.join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();

    let dir_for_store = data_dir.clone();
    let store = InProcessStore::start_with(move |c| c.data_dir = dir_for_store).await;
    let mut c = Client::connect([store.endpoint.as_str()], None)
        .await
        .unwrap();
    let value = vec![b'v'; 256 * 1024];
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let key = format!("/fill/{:04}", acknowledged.len());
        match c.put(key.clone(), value.clone(), None).await {
            Ok(resp) => acknowledged.push((key, resp.header().unwrap().revision())),
            Err(err) => break err.to_string(),
        }
        assert!(acknowledged.len() < 1000, "an 8 MiB log never filled up");
    };
    assert!(
        refusal.contains("write to the log failed"),
        "unclear refusal: {refusal}"
    );
    assert!(
        refusal.contains("No space left on device"),
        "the cause is not named: {refusal}"
    );
    assert!(!acknowledged.is_empty());

    // Reads keep working, and every acknowledged write is there.
    for (key, rev) in &acknowledged {
        let got = c.get(key.as_str(), None).await.unwrap();
        assert_eq!(got.kvs()[0].mod_revision(), *rev, "{key}");
    }
    // Space is back: writes resume at the next revision, with no hole.
    std::fs::remove_file(&filler).unwrap();
    let last = acknowledged.last().unwrap().1;
    let resumed = c
        .put("/after", "ok", None)
        .await
        .expect("writes resume once space is back");
    assert_eq!(resumed.header().unwrap().revision(), last + 1);
    drop(c);
    store.store.close().await;
    drop(store);
    drop(mount);
}
