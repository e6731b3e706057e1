//! `lanyard user …`: add, list, set-password, set-claims, remove.

use std::io::BufRead;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::output::{print_details, print_json, print_table, yes_no};
use crate::config::Config;
use crate::registry::{self, RegistryError, user::UserSpec};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a user. The password is prompted for twice (never echoed) unless
    /// --password-stdin is given.
    Add(AddUser),
    /// List every user.
    List {
        /// Print a JSON array of users instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (prompted for twice unless --password-stdin is given).
    SetPassword {
        /// The user whose password changes.
        username: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set or remove claims of a user (others are kept): custom ones such as roles, groups
    /// or tenant, and standard ones.
    ///
    /// --claim NAME=VALUE sets a string; the same NAME again makes an array of strings
    /// (--claim roles=admin --claim roles=editor → ["admin","editor"]); NAME:=JSON sets any
    /// JSON value (--claim 'roles:=["admin"]' for an array of one, --claim level:=3).
    SetClaims(SetClaims),
    /// Delete a user with their sessions, consents and grants (their tokens are revoked).
    Remove {
        /// The user to delete.
        username: String,
    },
}

#[derive(Debug, Args)]
pub struct AddUser {
    /// Sign-in name: 1–64 characters, no spaces.
    username: String,
    #[command(flatten)]
    password: PasswordSource,
    /// The `email` claim.
    #[arg(long, value_name = "EMAIL")]
    email: Option<String>,
    /// Set the `email_verified` claim to true (the address is known to belong to the user).
    #[arg(long, requires = "email")]
    email_verified: bool,
    /// The `name` claim: full name for display.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The `given_name` claim.
    #[arg(long, value_name = "NAME")]
    given_name: Option<String>,
    /// The `family_name` claim.
    #[arg(long, value_name = "NAME")]
    family_name: Option<String>,
    /// The `picture` claim: URL of a profile picture.
    #[arg(long, value_name = "URL")]
    picture: Option<String>,
    /// The `phone_number` claim (E.164 recommended, e.g. +15551234567).
    #[arg(long, value_name = "PHONE")]
    phone_number: Option<String>,
    /// Make the user an administrator (may use the admin pages).
    #[arg(long)]
    admin: bool,
    /// Print the created user as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SetClaims {
    /// The user whose claims change.
    username: String,
    /// A JSON object of claims to set, e.g. '{"roles":["admin"],"tenant":"acme"}' (null removes one).
    #[arg(long, value_name = "JSON")]
    json: Option<String>,
    /// NAME=VALUE (a string; repeat NAME for an array) or NAME:=JSON (any JSON value).
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Remove a claim (repeat for several).
    #[arg(long, value_name = "NAME")]
    unset: Vec<String>,
    /// Print the updated user as one JSON object instead of text.
    #[arg(long = "print-json")]
    print_json: bool,
}

/// The claims that `--json`, `--claim` and `--unset` describe, `null` meaning "remove".
fn claims_from_args(json: Option<&str>, claims: &[String], unset: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = match json {
        Some(raw) => match serde_json::from_str::<Value>(raw).context("--json is not valid JSON")? {
            Value::Object(object) => object,
            _ => anyhow::bail!("--json must be a JSON object, such as '{{\"roles\":[\"admin\"]}}'"),
        },
        None => Map::new(),
    };
    // Names given with `=`, whose values collect into a string or an array of strings.
    let mut strings: Vec<(String, Vec<String>)> = Vec::new();
    for arg in claims {
        let Some((name, value)) = arg.split_once('=') else {
            anyhow::bail!("--claim {arg:?}: write NAME=VALUE (a string) or NAME:=JSON");
        };
        if let Some(name) = name.strip_suffix(':') {
            let value: Value = serde_json::from_str(value)
                .with_context(|| format!("--claim {arg:?}: the value after := is not JSON"))?;
            if out.contains_key(name) || strings.iter().any(|(n, _)| n == name) {
                anyhow::bail!("--claim {arg:?}: {name:?} is given more than once");
            }
            out.insert(name.to_owned(), value);
        } else {
            if out.contains_key(name) {
                anyhow::bail!("--claim {arg:?}: {name:?} is given more than once");
            }
            match strings.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(value.to_owned()),
                None => strings.push((name.to_owned(), vec![value.to_owned()])),
            }
        }
    }
    for (name, mut values) in strings {
        let value = if values.len() == 1 { Value::from(values.remove(0)) } else { Value::from(values) };
        out.insert(name, value);
    }
    for name in unset {
        out.insert(name.clone(), Value::Null);
    }
    if out.is_empty() {
        anyhow::bail!("nothing to set: give --json, --claim or --unset");
    }
    Ok(out)
}

impl SetClaims {
    async fn run(self, store: &Store) -> anyhow::Result<()> {
        let changes = claims_from_args(self.json.as_deref(), &self.claims, &self.unset)?;
        let user = registry::set_user_claims(store, &self.username, changes).await?;
        if self.print_json {
            return print_json(&user);
        }
        let fields: Vec<(&str, String)> = user.claims.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
        print_details(&format!("claims of user {} set", user.username), &fields);
        Ok(())
    }
}

/// Where a new password comes from.
#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of prompting
    /// (for scripts; the trailing newline is removed).
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordSource {
    /// Reads the password off the async executor: stdin and the terminal block.
    async fn read(&self, username: &str) -> anyhow::Result<String> {
        let from_stdin = self.password_stdin;
        let username = username.to_owned();
        tokio::task::spawn_blocking(move || if from_stdin { read_stdin_line() } else { prompt_twice(&username) })
            .await?
    }
}

fn read_stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    if read == 0 {
        anyhow::bail!("--password-stdin: standard input is empty");
    }
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

fn prompt_twice(username: &str) -> anyhow::Result<String> {
    let context = "cannot read the password from the terminal (use --password-stdin)";
    let first = rpassword::prompt_password(format!("Password for {username}: ")).context(context)?;
    let second = rpassword::prompt_password("Repeat the password: ").context(context)?;
    if first != second {
        anyhow::bail!("the passwords do not match");
    }
    Ok(first)
}

impl UserCommand {
    pub async fn run(self, config: &Config, store: &Store) -> anyhow::Result<()> {
        match self {
            Self::Add(add) => add.run(store).await,
            Self::List { json } => list(store, json).await,
            Self::SetPassword { username, password } => {
                let password = password.read(&username).await?;
                registry::set_password(store, &username, password).await?;
                println!("password of user {username} changed");
                Ok(())
            }
            Self::SetClaims(set) => set.run(store).await,
            Self::Remove { username } => remove(config, store, &username).await,
        }
    }
}

impl AddUser {
    async fn run(self, store: &Store) -> anyhow::Result<()> {
        let claims: Map<String, Value> = [
            ("email", self.email.map(Value::from)),
            ("email_verified", self.email_verified.then_some(Value::Bool(true))),
            ("name", self.name.map(Value::from)),
            ("given_name", self.given_name.map(Value::from)),
            ("family_name", self.family_name.map(Value::from)),
            ("picture", self.picture.map(Value::from)),
            ("phone_number", self.phone_number.map(Value::from)),
        ]
        .into_iter()
        .filter_map(|(claim, value)| Some((claim.to_owned(), value?)))
        .collect();
        let password = self.password.read(&self.username).await?;
        let spec = UserSpec { username: self.username, password, is_admin: self.admin, claims };
        let user = registry::create_user(store, spec).await?;
        if self.json {
            return print_json(&user);
        }
        let mut fields = vec![("admin", yes_no(user.is_admin))];
        fields.extend(user.claims.iter().map(|(k, v)| (k.as_str(), claim_text(v))));
        print_details(&format!("created user {} (id {})", user.username, user.id), &fields);
        Ok(())
    }
}

/// A claim for people: strings without quotes, anything else as JSON.
fn claim_text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let users = store.list_users("", i64::MAX).await?;
    if json {
        return print_json(&users);
    }
    let rows: Vec<[String; 6]> = users
        .iter()
        .map(|u| {
            let claim = |name: &str| u.claims.get(name).map(claim_text).unwrap_or_default();
            [u.username.clone(), u.id.clone(), claim("name"), claim("email"), yes_no(u.is_admin), yes_no(u.disabled)]
        })
        .collect();
    print_table(["username", "id", "name", "email", "admin", "disabled"], &rows, "no users");
    Ok(())
}

/// How long `user remove` waits for the logout tokens it sends.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Deletes the user as the server would: their sessions end, their tokens are revoked, and
/// the clients they were signed in to get a back-channel logout token (sent from here,
/// waited for before the command returns).
async fn remove(config: &Config, store: &Store, username: &str) -> anyhow::Result<()> {
    let not_found = || RegistryError::NotFound(format!("user {username:?}"));
    let user = store.user_by_username(username).await?.ok_or_else(not_found)?;
    let state = crate::state::AppState::for_command(config, store).await?;
    if !crate::oauth::session_end::delete_user(&state, &user.id).await? {
        return Err(not_found().into());
    }
    let unfinished = state.finish_deliveries(DELIVERY_WAIT).await;
    println!("removed user {} (id {})", user.username, user.id);
    if unfinished > 0 {
        eprintln!("warning: {unfinished} back-channel logout deliveries did not finish within {DELIVERY_WAIT:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::claims_from_args;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn claim_flags_make_strings_arrays_and_json() {
        let claims = claims_from_args(
            None,
            &args(&["tenant=acme", "roles=admin", "roles=editor", "level:=3", "groups:=[\"staff\"]", "motto=a=b"]),
            &args(&["old"]),
        )
        .unwrap();
        assert_eq!(
            serde_json::Value::Object(claims),
            json!({"tenant": "acme", "roles": ["admin", "editor"], "level": 3, "groups": ["staff"], "motto": "a=b", "old": null})
        );
    }

    #[test]
    fn claim_flags_that_cannot_be_read_are_refused_with_a_reason() {
        for (list, why) in [
            (&["roles"][..], "NAME=VALUE"),
            (&["level:=three"][..], "not JSON"),
            (&["roles=a", "roles:=[]"][..], "more than once"),
        ] {
            let err = claims_from_args(None, &args(list), &[]).unwrap_err().to_string();
            assert!(err.contains(why), "{list:?}: {err}");
        }
        assert!(claims_from_args(Some("[1]"), &[], &[]).unwrap_err().to_string().contains("JSON object"));
    }
}
