//! A private PostgreSQL cluster on its own port, for tests that stop, restart or freeze the
//! database under a running server. The shared server (port 5432) is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::free_port;

/// A PostgreSQL cluster in a temporary directory, stopped and removed when dropped.
pub struct PrivateCluster {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: then every command runs as `postgres`.
    as_root: bool,
    frozen: Vec<i32>,
}

/// The newest `/usr/lib/postgresql/*/bin` that has `initdb` and `pg_ctl`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl PrivateCluster {
    /// Creates and starts a cluster on a free port. `None` (after a loud SKIP) when the
    /// PostgreSQL binaries are missing locally; a failure under `CI`.
    pub fn start() -> Option<PrivateCluster> {
        let Some(bin) = postgres_bin() else {
            let why = "no initdb/pg_ctl under /usr/lib/postgresql/*/bin";
            if std::env::var_os("CI").is_some() {
                panic!("a private PostgreSQL cluster is required in CI but {why}");
            }
            eprintln!("\n*** SKIP: private PostgreSQL cluster test skipped: {why} ***\n");
            return None;
        };
        let root = std::env::temp_dir().join(format!("lanyard-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(root.join("sock")).expect("cluster directory");
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        let cluster = PrivateCluster { bin, root, port: free_port(), as_root, frozen: Vec::new() };
        if as_root {
            let chown = Command::new("chown").arg("-R").arg("postgres").arg(&cluster.root).output().expect("chown");
            assert!(chown.status.success(), "chown: {}", String::from_utf8_lossy(&chown.stderr));
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &["-D", path(&data), "-A", "trust", "-U", "postgres", "--no-sync", "--no-locale", "-E", "UTF8"],
        );
        cluster.start_server();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the cluster with a fast shutdown (sessions are disconnected).
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", path(&data), "-m", "fast", "-w", "-t", "30", "stop"]);
    }

    /// Starts the stopped cluster again, on the same port with the same data.
    pub fn restart(&self) {
        self.start_server();
    }

    /// SIGSTOP to every process of the cluster: connections stay open, nothing answers.
    pub fn freeze(&mut self) {
        let pids = self.processes();
        assert!(!pids.is_empty(), "no cluster processes to freeze");
        for &pid in &pids {
            // SAFETY: signalling a process of our own cluster.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        self.frozen = pids;
    }

    /// SIGCONT to every process frozen by [`PrivateCluster::freeze`].
    pub fn thaw(&mut self) {
        for pid in std::mem::take(&mut self.frozen) {
            // SAFETY: signalling a process of our own cluster.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn start_server(&self) {
        let data = self.data();
        let log = self.root.join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            self.port,
            self.root.join("sock").display()
        );
        self.run("pg_ctl", &["-D", path(&data), "-l", path(&log), "-w", "-t", "30", "-o", &options, "start"]);
    }

    /// The postmaster (first line of `postmaster.pid`) and its children.
    fn processes(&self) -> Vec<i32> {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap_or_default();
        let Some(postmaster) = pid_file.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid …`: comm may hold spaces, so read after the last ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Runs one of the cluster's binaries (as `postgres` when we are root); panics on failure
    /// with its output and the server log.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let output = if self.as_root {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n--- server log ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
        );
        output
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.thaw();
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let exe = self.bin.join("pg_ctl");
            let args = ["-D", path(&data), "-m", "immediate", "-w", "-t", "30", "stop"];
            let _ = if self.as_root {
                Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
            } else {
                Command::new(&exe).args(args).output()
            };
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
