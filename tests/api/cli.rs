//! The binary itself: configuration errors, precedence, migrate.

use std::process::Command;

fn lanyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
    // The tests must not pick up a developer's own configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("LANYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn bad_configuration_is_refused_with_a_message_naming_the_setting() {
    let cases: [(&[&str], &[(&str, &str)], &str); 5] = [
        (
            &["--issuer", "https://id.example.test/?tenant=1", "migrate"],
            &[],
            "issuer",
        ),
        (&["--issuer", "id.example.test", "migrate"], &[], "issuer"),
        (&["--bind", "nowhere", "migrate"], &[], "bind"),
        (
            &["migrate"],
            &[("LANYARD_DATABASE_URL", "mysql://db")],
            "database_url",
        ),
        (
            &["migrate"],
            &[("LANYARD_KEY_ENCRYPTION_KEY", "too-short")],
            "key_encryption_key",
        ),
    ];
    for (args, env, setting) in cases {
        let output = lanyard()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run lanyard");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(setting),
            "{args:?}: message should name {setting}: {stderr}"
        );
    }
}

#[test]
fn flags_override_environment_which_overrides_the_config_file() {
    let dir = std::env::temp_dir().join(format!("lanyard-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lanyard.toml");
    // The file sets a bad issuer and a good database; env fixes the issuer badly again
    // in a way the flag then fixes: the outcome shows each layer's rank.
    std::fs::write(
        &file,
        "issuer = \"file-issuer-invalid\"\ndatabase_url = \"sqlite://FILE\"\n"
            .replace("FILE", &dir.join("a.db").display().to_string()),
    )
    .unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        lanyard()
            .arg("--config")
            .arg(&file)
            .args(args)
            .arg("migrate")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let from_file = run(&[], &[]);
    assert!(
        String::from_utf8_lossy(&from_file.stderr).contains("issuer"),
        "the file's issuer is used"
    );
    let from_env = run(&[("LANYARD_ISSUER", "http://127.0.0.1:1")], &[]);
    assert!(
        from_env.status.success(),
        "env overrides file: {}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    assert!(dir.join("a.db").exists(), "the file's database is used");
    let from_flag = run(
        &[("LANYARD_ISSUER", "http://127.0.0.1:1")],
        &["--issuer", "bad flag issuer"],
    );
    assert_eq!(from_flag.status.code(), Some(2), "flag overrides env");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_settings_in_the_config_file_are_refused() {
    let dir = std::env::temp_dir().join(format!("lanyard-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lanyard.toml");
    std::fs::write(&file, "isuer = \"http://localhost\"\n").unwrap();
    let output = lanyard()
        .arg("--config")
        .arg(&file)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("isuer"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_explains_every_flag() {
    let output = lanyard().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--issuer",
        "--bind",
        "--database-url",
        "--log-format",
        "serve",
        "migrate",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
