//! `skiff up` as a real process for a test: its own temporary data directory
//! and HOME, free ports, its log in a file, stopped by pid when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::Duration;

use crate::{free_port, skiff_binary};

/// A running `skiff up`.
pub struct UpProcess {
    child: Child,
    dir: tempfile::TempDir,
    argv: Vec<String>,
    /// The API server's URL, `http://127.0.0.1:PORT`.
    pub server: String,
    /// The store's client URL (etcd's API), `http://127.0.0.1:PORT`.
    pub store: String,
}

impl UpProcess {
    /// Starts `skiff up` on free ports with `args` added (such as
    /// `--runtime process` or `--disable …`), and waits until its API
    /// server answers.
    pub fn start(args: &[&str]) -> UpProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir_all(dir.path().join("home")).expect("the test's HOME is created");
        let (api, store, kubelet) = (free_port(), free_port(), free_port());
        let mut argv: Vec<String> = vec!["up".into(), "--data-dir".into()];
        argv.push(dir.path().join("data").display().to_string());
        argv.extend(["--listen".into(), format!("127.0.0.1:{api}")]);
        argv.extend([
            "--listen-client-urls".into(),
            format!("http://127.0.0.1:{store}"),
        ]);
        argv.extend(["--kubelet-port".into(), kubelet.to_string()]);
        argv.extend(args.iter().map(|a| a.to_string()));
        let child = spawn(dir.path(), &argv);
        let mut up = UpProcess {
            child,
            dir,
            argv,
            server: format!("http://127.0.0.1:{api}"),
            store: format!("http://127.0.0.1:{store}"),
        };
        up.wait_ready();
        up
    }

    /// Starts it again, after [`UpProcess::stop`], with the same flags, data
    /// and ports, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(
            matches!(self.child.try_wait(), Ok(Some(_))),
            "restart only a stopped skiff up"
        );
        self.child = spawn(self.dir.path(), &self.argv);
        self.wait_ready();
    }

    /// Polls, a bounded number of times, until the default namespace is
    /// served (bootstrap done); panics with the log if `skiff up` exits.
    fn wait_ready(&mut self) {
        for _ in 0..1200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("skiff up exited with {status}; its log:\n{}", self.log());
            }
            if self
                .skiff(&["get", "ns", "default", "-o", "name"])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "skiff up at {} never answered; its log:\n{}",
            self.server,
            self.log()
        );
    }

    /// The HOME its client config was written under.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Its temporary directory (data, log, and room for a test's files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `program` with this cluster's HOME and no server from the environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("HOME", self.home()).env_remove("SKIFF_SERVER");
        command
    }

    /// Runs `skiff ARGS --server URL`.
    pub fn skiff(&self, args: &[&str]) -> Output {
        self.command(skiff_binary())
            .args(args)
            .args(["--server", &self.server])
            .output()
            .expect("skiff runs")
    }

    /// What `skiff up` printed on standard output (its banner).
    pub fn banner(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.out")).unwrap_or_default()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `INT`) by pid and waits, a bounded number of
    /// times, for the exit.
    pub fn stop(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        for _ in 0..1200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "skiff up did not stop after SIG{signal}; its log:\n{}",
            self.log()
        );
    }
}

/// `skiff ARGV` with HOME and its output files in `dir` (the log appended to).
fn spawn(dir: &Path, argv: &[String]) -> Child {
    let output = |name: &str| {
        std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Command::new(skiff_binary())
        .args(argv)
        .env("HOME", dir.join("home"))
        .stdout(output("up.out"))
        .stderr(output("up.log"))
        .spawn()
        .expect("skiff up starts")
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Drop outputs the process log when a test failed, for the reader.
        if std::thread::panicking() {
            eprintln!("skiff up's log:\n{}", self.log());
        }
    }
}
