//! How long an ephemeral Lanyard takes from nothing to ready: settings validated (the seed
//! parsed, its keys imported), database created and migrated, seed applied, server bound,
//! and `/readyz` answering 200. A measurement to run by hand, never a test assertion:
//!
//! ```sh
//! cargo run --release --example startup_time            # 20 runs per scenario
//! cargo run --release --example startup_time -- 50      # or as many as you like
//! ```
//!
//! Scenarios: a seed with fixed signing keys (nothing generated; the bootstrap admin's
//! password is still hashed with argon2), the same plus a user, an API and a client (one
//! more argon2 hash), and no seed at all (an RSA 2048 and a P-256 key generated per start).

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use lanyard::app::Application;
use lanyard::config::Settings;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let runs: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(20).max(1);
    let dir = std::env::temp_dir().join(format!("lanyard-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let keys = fixed_keys()?;
    let keys_only = dir.join("keys.toml");
    std::fs::write(&keys_only, &keys)?;
    let full = dir.join("full.toml");
    std::fs::write(&full, format!("{keys}\n{ENTRIES}"))?;

    // Made once, outside the measurement (loading the system's root certificates takes a while).
    let http = reqwest::Client::new();
    println!("ephemeral start-to-ready, {runs} runs each (ms: min / median / max)");
    let scenarios: [(&str, Option<&Path>); 3] = [
        ("seed: fixed keys", Some(&keys_only)),
        ("seed: fixed keys + user, API, client", Some(&full)),
        ("no seed: keys generated", None),
    ];
    for (name, seed) in scenarios {
        let mut built = Vec::with_capacity(runs);
        let mut ready = Vec::with_capacity(runs);
        // One unmeasured start warms the page cache and the allocator.
        start_once(&http, seed).await?;
        for _ in 0..runs {
            let (b, r) = start_once(&http, seed).await?;
            built.push(b);
            ready.push(r);
        }
        println!("{name:<40} built {}   ready {}", summary(&mut built), summary(&mut ready));
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Starts Lanyard once and stops it; returns (until `build` returned, until `/readyz` said 200).
async fn start_once(http: &reqwest::Client, seed: Option<&Path>) -> Result<(Duration, Duration), Error> {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let settings = Settings {
        issuer: Some(format!("http://127.0.0.1:{port}")),
        bind: Some(format!("127.0.0.1:{port}")),
        ephemeral: true,
        demo: false,
        seed: seed.map(Path::to_path_buf),
        admin_password: Some("startup-admin-password".into()),
        ..Settings::default()
    };
    let app = Application::build_with_listener(settings.validate()?, listener).await?;
    let built = started.elapsed();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let url = format!("http://127.0.0.1:{port}/readyz");
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ready = started.elapsed();
    handle.stop(true).await;
    task.await??;
    Ok((built, ready))
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[samples.len() / 2];
    format!("{:6.1} / {:6.1} / {:6.1}", ms(samples[0]), ms(median), ms(samples[samples.len() - 1]))
}

/// A `[[keys]]` section with an RS256 and an ES256 key, generated once for all runs.
fn fixed_keys() -> Result<String, Error> {
    let rsa = openssl::rsa::Rsa::generate(2048)?;
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let ec = openssl::ec::EcKey::generate(&group)?;
    Ok(format!(
        "[[keys]]\nalg = \"RS256\"\npem = \"\"\"\n{}\"\"\"\n\n[[keys]]\nalg = \"ES256\"\npem = \"\"\"\n{}\"\"\"\n",
        String::from_utf8(rsa.private_key_to_pem()?)?,
        String::from_utf8(ec.private_key_to_pem()?)?
    ))
}

const ENTRIES: &str = r#"
[[users]]
username = "alice"
password = "alice-password"
name = "Alice"

[[apis]]
identifier = "https://api.example.test/appointments"
name = "Calendar"
scopes = ["read:appointments", "write:appointments"]

[[clients]]
client_id = "todo"
client_secret = "todo-secret-for-development"
redirect_uris = ["http://127.0.0.1:3000/callback"]
scope = "openid profile read:appointments write:appointments"
"#;
