//! `lanyard healthcheck`: asks a running server whether it is ready, for a container's
//! `HEALTHCHECK` (the image has no curl). Exit 0 when `/readyz` answers 200, else 1, with the
//! reason on stderr (Docker keeps it in `docker inspect`'s health log).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// Checks that a running Lanyard is ready: GET /readyz, exit 0 on 200, otherwise 1.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// URL to check [default: http://BIND/readyz, where a wildcard bind such as 0.0.0.0 is
    /// asked on loopback].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Seconds to wait for the answer before reporting the server unhealthy.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub timeout: u64,
}

/// The readiness URL of a server listening on `bind`. A wildcard address accepts
/// connections on loopback, and only there is it certain to reach this very server.
pub fn readyz_url(bind: &str) -> Result<String, String> {
    let addr: SocketAddr = bind.trim().parse().map_err(|_| format!("`bind` must be IP:PORT, got {bind:?}"))?;
    Ok(format!("{}/readyz", local_base(addr)))
}

/// `http://IP:PORT` of a server listening on `bind`, as a process on this machine reaches
/// it (a wildcard address through loopback).
pub fn local_base(mut bind: SocketAddr) -> String {
    if bind.ip().is_unspecified() {
        bind.set_ip(match bind.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    format!("http://{bind}")
}

/// Runs the check; `bind` is the configured listen address (used when no `--url` is given).
pub fn run(args: &HealthcheckArgs, bind: &str) -> ExitCode {
    let url = match args.url.clone().map_or_else(|| readyz_url(bind), Ok) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("unhealthy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(check(&url, Duration::from_secs(args.timeout.max(1)))) {
        Ok(()) => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: {url} {why}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok` when `url` answers 200 within `timeout`; otherwise what happened, in words.
async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot be checked: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("did not answer within {} s", timeout.as_secs())
        } else if e.is_connect() {
            "refused the connection (is the server running, on this address?)".to_owned()
        } else {
            format!("failed: {e}")
        }
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::OK {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(200).collect();
    Err(format!("answered {status}: {body}"))
}

#[cfg(test)]
mod tests {
    use super::readyz_url;

    #[test]
    fn a_wildcard_bind_is_checked_on_loopback() {
        assert_eq!(readyz_url("0.0.0.0:8080").as_deref(), Ok("http://127.0.0.1:8080/readyz"));
        assert_eq!(readyz_url("[::]:8080").as_deref(), Ok("http://[::1]:8080/readyz"));
        assert_eq!(readyz_url("127.0.0.1:9000").as_deref(), Ok("http://127.0.0.1:9000/readyz"));
        assert_eq!(readyz_url("10.1.2.3:80").as_deref(), Ok("http://10.1.2.3:80/readyz"));
    }

    #[test]
    fn a_bind_that_is_no_address_is_named() {
        let err = readyz_url("localhost").expect_err("not IP:PORT");
        assert!(err.contains("bind"), "{err}");
    }
}
