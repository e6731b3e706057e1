//! SIGTERM on the real binary: `/readyz` turns 503 at once, requests keep being served for
//! the drain period (none already sent is reset), then the process exits with status 0.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, wait_for_status};

/// The `lanyard` binary serving an ephemeral database on its own port; killed if still
/// running when dropped.
struct Lanyard {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Lanyard {
    fn start(drain: &str) -> Lanyard {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("lanyard-shutdown-{}.log", uuid::Uuid::new_v4().simple()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_lanyard"));
        // The test must not pick up a developer's own configuration.
        for (key, _) in std::env::vars() {
            if key.starts_with("LANYARD_") {
                command.env_remove(key);
            }
        }
        let child = command
            .args(["--ephemeral", "--bind", &format!("127.0.0.1:{port}"), "--issuer", &base])
            .env("LANYARD_SHUTDOWN_DRAIN", drain)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("run lanyard");
        Lanyard { child, base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        assert!(
            wait_for_status(&http, &self.url("/readyz"), 200, Duration::from_secs(30)).await,
            "the server did not become ready: {}",
            self.log()
        );
    }

    fn terminate(&self) {
        // SAFETY: signalling the child we started.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
    }

    /// Waits for the process to exit, for at most `limit`.
    async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Lanyard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One request of the stream: when it was sent, and its status or why it failed.
type Sent = (Instant, Result<u16, String>);

/// Requests discovery in a loop until `stop`, on fresh connections or kept-alive ones.
async fn request_loop(url: String, fresh_connections: bool, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Sent>>>) {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(15));
    if fresh_connections {
        builder = builder.pool_max_idle_per_host(0);
    }
    let http = builder.build().expect("http client");
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let result = match http.get(&url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map(|_| status).map_err(|e| format!("body: {e:?}"))
            }
            Err(e) => Err(format!("{e:?}")),
        };
        let failed = result.is_err();
        log.lock().expect("log").push((sent, result));
        tokio::time::sleep(Duration::from_millis(if failed { 20 } else { 2 })).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readyz_503_at_once_serves_every_request_during_the_drain_and_exits_0() {
    const DRAIN: Duration = Duration::from_secs(2);
    let mut server = Lanyard::start("2");
    server.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let loops: Vec<_> = (0..8)
        .map(|i| {
            let url = server.url("/.well-known/openid-configuration");
            tokio::spawn(request_loop(url, i % 2 == 0, stop.clone(), log.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    server.terminate();

    // Readiness turns 503 at once (a load balancer stops sending), while the port still answers.
    let probe = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http client");
    let mut readyz = Vec::new();
    while signalled.elapsed() < Duration::from_secs(1) {
        let status = match probe.get(server.url("/readyz")).send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) => Err(format!("{e:?}")),
        };
        let done = status != Ok(200);
        readyz.push(status);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let exited = server.exit_within(DRAIN + Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for task in loops {
        let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    }
    let log = log.lock().expect("log").clone();

    // Every request sent before the signal, or during the drain (less a margin for the
    // request in flight when it ends), got its 200.
    let must_succeed = signalled + DRAIN - Duration::from_millis(500);
    let before = log.iter().filter(|(sent, _)| *sent < signalled).count();
    let during = log.iter().filter(|(sent, _)| (signalled..must_succeed).contains(sent)).count();
    let lost: Vec<String> = log
        .iter()
        .filter(|(sent, result)| *sent < must_succeed && *result != Ok(200))
        .map(|(sent, result)| {
            let at = if *sent >= signalled {
                (*sent - signalled).as_millis() as i128
            } else {
                -((signalled - *sent).as_millis() as i128)
            };
            format!("sent at {at:+} ms: {result:?}")
        })
        .collect();
    eprintln!(
        "SIGTERM: {before} requests sent before the signal, {during} during the drain, {} not served",
        lost.len()
    );
    assert_eq!(
        readyz.last(),
        Some(&Ok(503)),
        "/readyz right after SIGTERM, in order: {readyz:?} ({} of {} requests sent before the signal or during \
         the drain were not served)\n{}",
        lost.len(),
        before + during,
        server.log()
    );
    assert!(before > 0 && during > 0, "the stream ran: {before} requests before the signal, {during} during the drain");
    assert!(
        lost.is_empty(),
        "{} of {} requests sent before the signal or during the drain were not served:\n{}",
        lost.len(),
        before + during,
        lost.join("\n")
    );

    let status = exited.unwrap_or_else(|| {
        panic!("still running {:?} after SIGTERM\n{}", DRAIN + Duration::from_secs(5), server.log())
    });
    assert_eq!(status.code(), Some(0), "exit status after a graceful stop\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_no_drain_period_exits_0_promptly() {
    let mut server = Lanyard::start("0");
    server.wait_ready().await;
    server.terminate();
    let status = server.exit_within(Duration::from_secs(5)).await;
    let status = status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", server.log()));
    assert_eq!(status.code(), Some(0), "{}", server.log());
}
