//! `certhist user add|list|disable|enable|passwd|key new|key revoke`: accounts of the team
//! server. A new API key is printed once and never again (only its SHA-256 is stored);
//! passwords are read from stdin or a prompt that does not echo, never from the command line.

use std::io::{BufRead, IsTerminal, Write};

use certhist_model::views::{Role, UserView};
use certhist_store::{read, Actor};
use clap::{Subcommand, ValueEnum};

use super::Failure;
use crate::cli::Cli;
use crate::exit;
use crate::output::{clean, ndjson, opt, opt_time, time, Table};

/// `certhist user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account and print its first API key (shown once).
    Add {
        /// Account name: 1–64 characters a-z 0-9 . _ @ -.
        name: String,
        /// What the account may do: reader (every read), analyst (+ tags, notes, uploads,
        /// exports), admin (+ accounts and the audit log).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Also set a password (for the web login and Basic user:password), read from the
        /// first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts and their keys (prefixes only, never keys).
    List,
    /// Disable an account: its keys, password and sessions stop working.
    Disable {
        /// Account name.
        name: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Account name.
        name: String,
    },
    /// Set an account's password: read from stdin when it is not a terminal, otherwise
    /// prompted for twice without echo. Ends the account's web sessions.
    Passwd {
        /// Account name.
        name: String,
    },
    /// API keys of an account.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `certhist user key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new API key for an account and print it (shown once).
    New {
        /// Account name.
        name: String,
        /// What the key is for (shown in `user list`).
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a key, given by its id or its prefix as `user list` shows them.
    Revoke {
        /// Account name.
        name: String,
        /// The key's id or prefix (e.g. 3 or chk_3f9a1c2b).
        key: String,
    },
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Every read.
    Reader,
    /// Reader + tags, notes, uploads, exports.
    Analyst,
    /// Analyst + accounts and the audit log.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Reader => Role::Reader,
            RoleArg::Analyst => Role::Analyst,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// The audit actor of command-line changes: `cli:<the operating-system user>`.
pub(crate) fn cli_actor() -> Actor {
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Actor {
        name: Some(format!("cli:{os_user}")),
        source: Some("cli".to_owned()),
    }
}

pub(crate) async fn run(cli: &Cli, command: &UserCommand) -> Result<u8, Failure> {
    let store = crate::open_store(cli).await?;
    let mut conn = store.conn().await?;
    let who = cli_actor();
    let mut out = std::io::stdout().lock();
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = if *password_stdin {
                Some(read_stdin_line()?)
            } else {
                None
            };
            let role = Role::from(*role);
            let key = conn.user_add(&who, name, role, password.as_deref()).await?;
            if cli.json {
                ndjson(
                    &mut out,
                    &serde_json::json!({
                        "user": name, "role": role, "key": key.secret(),
                        "key_id": key.id, "key_prefix": key.prefix,
                    }),
                )?;
            } else {
                writeln!(out, "created user {} ({role})", clean(name))?;
                writeln!(
                    out,
                    "API key (shown only now; store it safely): {}",
                    key.secret()
                )?;
            }
        }
        UserCommand::List => {
            let users = read::accounts::users(&conn).await?;
            if cli.json {
                for u in &users {
                    ndjson(&mut out, u)?;
                }
            } else {
                user_table(&users).print(&mut out)?;
            }
        }
        UserCommand::Disable { name } => {
            conn.user_set_disabled(&who, name, true).await?;
            if !cli.json {
                writeln!(out, "disabled user {}", clean(name))?;
            }
        }
        UserCommand::Enable { name } => {
            conn.user_set_disabled(&who, name, false).await?;
            if !cli.json {
                writeln!(out, "enabled user {}", clean(name))?;
            }
        }
        UserCommand::Passwd { name } => {
            let password = read_new_password()?;
            conn.user_set_password(&who, name, &password).await?;
            if !cli.json {
                writeln!(out, "password of {} set", clean(name))?;
            }
        }
        UserCommand::Key(KeyCommand::New { name, label }) => {
            let key = conn.key_new(&who, name, label.as_deref()).await?;
            if cli.json {
                ndjson(
                    &mut out,
                    &serde_json::json!({
                        "user": name, "key": key.secret(), "key_id": key.id,
                        "key_prefix": key.prefix,
                    }),
                )?;
            } else {
                writeln!(
                    out,
                    "new API key {} for {} (shown only now; store it safely): {}",
                    key.id,
                    clean(name),
                    key.secret()
                )?;
            }
        }
        UserCommand::Key(KeyCommand::Revoke { name, key }) => {
            let revoked = conn.key_revoke(&who, name, key).await?;
            if cli.json {
                ndjson(&mut out, &revoked)?;
            } else {
                writeln!(
                    out,
                    "revoked key {} ({}) of {}",
                    revoked.id,
                    clean(&revoked.prefix),
                    clean(name)
                )?;
            }
        }
    }
    Ok(exit::OK)
}

fn user_table(users: &[UserView]) -> Table {
    let mut t = Table::new(&[
        "NAME",
        "ROLE",
        "STATUS",
        "PASSWORD",
        "KEYS",
        "CREATED",
        "LAST USED",
    ]);
    for u in users {
        let active = u.keys.iter().filter(|k| k.revoked_at.is_none()).count();
        let last_used = u.keys.iter().filter_map(|k| k.last_used_at).max();
        t.row(vec![
            clean(&u.name),
            u.role.to_string(),
            if u.disabled { "disabled" } else { "enabled" }.to_owned(),
            if u.has_password { "set" } else { "-" }.to_owned(),
            format!("{active} active / {}", u.keys.len()),
            time(&u.created_at),
            opt_time(&last_used),
        ]);
        for k in &u.keys {
            let state = match &k.revoked_at {
                Some(at) => format!("revoked {}", time(at)),
                None => "active".to_owned(),
            };
            t.detail(
                "key",
                &format!(
                    "{} {} label {} created {} last used {} {state}",
                    k.id,
                    clean(&k.prefix),
                    opt(&k.label),
                    time(&k.created_at),
                    opt_time(&k.last_used_at),
                ),
            );
        }
    }
    t
}

/// The first line of stdin, without its line ending.
fn read_stdin_line() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::Usage(
            "no password on stdin (give it as the first line)".to_owned(),
        ));
    }
    Ok(password)
}

/// A new password: the first line of stdin when it is not a terminal, otherwise prompted for
/// twice without echo.
fn read_new_password() -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return read_stdin_line();
    }
    let first = rpassword::prompt_password("new password: ")?;
    let second = rpassword::prompt_password("again: ")?;
    if first != second {
        return Err(Failure::Usage(
            "the passwords differ; nothing changed".to_owned(),
        ));
    }
    Ok(first)
}
