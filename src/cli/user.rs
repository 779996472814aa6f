//! `yiwang user …`: people who sign in with a user name and password (the pages'
//! sign-in; bearer tokens stay for machines and Open311). A password is read from
//! the terminal without echo (twice), or from standard input's first line when it
//! is piped, so a script can set one: `printf '%s\n' "$PW" | yiwang user create …`.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::Subcommand;

use crate::auth::Role;
use crate::auth::password::{self, UserError};
use crate::org::Org;
use crate::store;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a person who signs in with a password (prompted for, or read from
    /// standard input when piped); the same role and unit a token would have.
    Create {
        #[arg(long)]
        user: String,
        /// What the person may do.
        #[arg(long, value_enum)]
        role: Role,
        /// The person's unit code (admin defaults to the root unit).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Set a new password (prompted for, or read from standard input); the user's
    /// sessions end.
    Passwd {
        #[arg(long)]
        user: String,
    },
    /// Lock an account: it cannot sign in, and its sessions end at once.
    Lock {
        #[arg(long)]
        user: String,
    },
    /// Unlock an account: lifts a lock and a lock-out after wrong passwords.
    Unlock {
        #[arg(long)]
        user: String,
        /// Also release the grid worker's device binding (人机格): the next
        /// sign-in binds the device it comes from.
        #[arg(long)]
        forget_device: bool,
    },
    /// List the users (never the passwords): name, role, unit, state, device.
    List,
}

/// The unit of a new token or user: `--unit`, or the root for an admin; it must be
/// in the organisation, and an appraiser's is the district or a township.
pub fn resolve_unit(o: &Org, role: Role, unit: Option<String>) -> anyhow::Result<String> {
    let unit = match (unit, role) {
        (Some(u), _) => u,
        (None, Role::Admin) => o.root().code.clone(),
        (None, _) => anyhow::bail!("--unit is required for the {} role", role.as_str()),
    };
    anyhow::ensure!(
        o.unit(&unit).is_some(),
        "no unit {unit:?} in the organisation (yiwang org load …)"
    );
    // A district appraiser (the root) or a township's (auth::appraisal).
    anyhow::ensure!(
        role != Role::Appraiser
            || unit == o.root().code
            || o.unit(&unit)
                .is_some_and(|u| u.kind == crate::org::UnitKind::Township),
        "an appraiser's unit is the district or a township, not {unit:?}"
    );
    Ok(unit)
}

/// The new password: asked twice on a terminal, else standard input's first line
/// (without its line end). Checked against the rules before anything is stored.
fn read_password(user: &str) -> anyhow::Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!(
            "new password for {user} (at least {} characters): ",
            password::MIN_LEN
        ))
        .context("cannot read the password from the terminal")?;
        let again = rpassword::prompt_password("the same again: ")
            .context("cannot read the password from the terminal")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was changed"
        );
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    password::check_new(user, &pw).map_err(|why| anyhow::anyhow!("{why}; nothing was changed"))?;
    Ok(pw)
}

fn refused(e: UserError) -> anyhow::Error {
    match e {
        UserError::Refused(m) => anyhow::anyhow!(m),
        UserError::Store(e) => e.into(),
    }
}

pub async fn run(url: &str, cmd: UserCommand) -> anyhow::Result<()> {
    let s = store::open(url, true).await?;
    let pool = s.pool();
    match cmd {
        UserCommand::Create { user, role, unit } => {
            let user = user.trim();
            anyhow::ensure!(
                !user.is_empty() && user.chars().count() <= 100,
                "--user must be 1 to 100 characters"
            );
            let o = crate::org::current_or_demo(&pool).await?;
            let unit = resolve_unit(&o, role, unit)?;
            let pw = read_password(user)?;
            password::create_user(&pool, user, role, &unit, &pw)
                .await
                .map_err(refused)?;
            println!(
                "user {user} ({}, {unit}) can sign in with the password just set",
                role.as_str()
            );
        }
        UserCommand::Passwd { user } => {
            let pw = read_password(&user)?;
            password::set_password(&pool, &user, &pw)
                .await
                .map_err(refused)?;
            println!("new password for {user}; its sessions have ended");
        }
        UserCommand::Lock { user } => {
            password::lock_user(&pool, &user).await.map_err(refused)?;
            println!("locked {user}; its sessions have ended");
        }
        UserCommand::Unlock {
            user,
            forget_device,
        } => {
            password::unlock_user(&pool, &user, forget_device)
                .await
                .map_err(refused)?;
            let device = if forget_device {
                "; its next sign-in binds a new device"
            } else {
                ""
            };
            println!("unlocked {user}{device}");
        }
        UserCommand::List => {
            for u in crate::repo::users::list(&pool).await? {
                let state = if u.locked { "locked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{state}\t{}",
                    u.user_name,
                    u.role,
                    u.unit,
                    u.device_id.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}
