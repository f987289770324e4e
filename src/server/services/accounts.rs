//! Sign-up and log-in rules: who may create an account (`COVER_SIGNUP`, an
//! invitation, the one-time setup token that makes the first admin), input
//! validation, one answer for "wrong password" and "unknown email", and the
//! throttles that slow guessing down without locking the real owner out.

use crate::error::AppError;
use crate::model::account::{normalise_email, SignupMode, UserView, WorkspaceRole};
use crate::server::auth::{hash_password, verify_password};
use crate::server::crypto::{one_time_secret, sha256_hex};
use crate::server::db::users::{self, UserRecord};
use crate::server::db::{login_throttle, workspace_settings, Db};
use crate::server::error::{Error, Result};
use crate::server::services::invitations;
use std::net::IpAddr;

/// A failure streak older than this is forgotten.
pub const FORGET_AFTER_MS: i64 = 60 * 60 * 1000;
/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Passwords longer than this are refused (argon2 input bound).
pub const MAX_PASSWORD_LEN: usize = 256;

const BAD_CREDENTIALS: &str = "wrong email or password";

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        UserView {
            id: user.user_id.clone(),
            email: user.email.clone(),
            role: user.role,
        }
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(AppError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ))
    } else if len > MAX_PASSWORD_LEN {
        Err(AppError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ))
    } else {
        Ok(())
    }
}

/// What a sign-up form or body carries.
#[derive(Debug, Default)]
pub struct SignUp<'a> {
    /// The new account's email.
    pub email: &'a str,
    /// Its password.
    pub password: &'a str,
    /// An invitation link's secret (`inv_…`).
    pub invitation: Option<&'a str>,
    /// The one-time setup token printed at first start (makes an admin).
    pub setup_token: Option<&'a str>,
}

/// The workspace setting holding the setup token's hash while there is no admin.
const SETUP_TOKEN: &str = "setup_token_sha256";
/// What the setup token starts with.
pub const SETUP_TOKEN_PREFIX: &str = "setup_";

/// Creates an account. The setup token makes the workspace's admin; an
/// invitation makes a member of its project (in the same transaction, so a
/// link works once); otherwise `mode` decides. No one becomes admin by being
/// first.
pub async fn sign_up(db: &Db, mode: SignupMode, form: SignUp<'_>) -> Result<UserRecord> {
    let email = normalise_email(form.email)?;
    check_password(form.password)?;
    let invitation = match form.invitation.filter(|s| !s.trim().is_empty()) {
        Some(secret) => Some(invitations::usable(db, secret.trim(), &email).await?),
        None => None,
    };
    let setup = form.setup_token.filter(|s| !s.trim().is_empty());
    if invitation.is_none() && setup.is_none() {
        match mode {
            SignupMode::Open => {}
            SignupMode::Invite => {
                return Err(AppError::Forbidden {
                    message:
                        "sign-up is by invitation: ask a project owner or the admin for a link"
                            .into(),
                }
                .into())
            }
            SignupMode::Closed => {
                return Err(AppError::Forbidden {
                    message: "sign-up is closed on this server; ask its operator for an account"
                        .into(),
                }
                .into())
            }
        }
    }
    let hash = hash_password(form.password.to_owned()).await?;
    let role = if setup.is_some() {
        WorkspaceRole::Admin
    } else {
        WorkspaceRole::Member
    };
    let mut tx = db.writer.begin().await?;
    if let Some(token) = setup {
        if !workspace_settings::take(&mut tx, SETUP_TOKEN, &sha256_hex(token.trim())).await? {
            return Err(AppError::invalid(
                "setupToken",
                "is not the setup token this server printed (or it was used already)",
            )
            .into());
        }
    }
    let user = users::insert(&mut tx, &email, &hash, role)
        .await?
        .ok_or_else(|| {
            Error::App(AppError::Conflict {
                field: "email".into(),
                message: "this email cannot sign up; if it is yours, log in instead".into(),
            })
        })?;
    if let Some(invitation) = &invitation {
        invitations::accept_in(&mut tx, invitation, &user.user_id).await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// While the workspace has no admin, makes a fresh one-time setup token (the
/// one made at an earlier start stops working) and answers it, to be printed
/// once; `None` once an admin exists.
pub async fn fresh_setup_token(db: &Db) -> Result<Option<String>> {
    if users::admin_exists(&db.writer).await? {
        return Ok(None);
    }
    let token = one_time_secret(SETUP_TOKEN_PREFIX);
    workspace_settings::set(&db.writer, SETUP_TOKEN, &sha256_hex(&token)).await?;
    Ok(Some(token))
}

/// One throttle on logins: failures counted per key, free up to `free`, then
/// a wait doubling from one second up to `max_wait_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    /// What is counted (`account:…`, `account:…|address:…`, `address:…`).
    pub key: String,
    /// Failures allowed before any wait.
    pub free: i64,
    /// The longest wait.
    pub max_wait_secs: i64,
}

impl Throttle {
    /// Seconds to wait after `failures` consecutive failures.
    pub fn wait_secs(&self, failures: i64) -> i64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(20) as u32;
        (1_i64 << doublings).min(self.max_wait_secs)
    }
}

/// The throttles a login passes. Guessing one account from one address is
/// stopped hard (up to 15 minutes); one address trying many accounts too. The
/// account alone, whatever the address, waits at most 30 s: an attacker with
/// many addresses slows the owner down but never locks them out.
pub fn throttles(email: &str, address: Option<IpAddr>) -> Vec<Throttle> {
    let mut throttles = vec![Throttle {
        key: format!("account:{email}"),
        free: 10,
        max_wait_secs: 30,
    }];
    if let Some(address) = address {
        throttles.push(Throttle {
            key: format!("account:{email}|address:{address}"),
            free: 5,
            max_wait_secs: 15 * 60,
        });
        throttles.push(Throttle {
            key: format!("address:{address}"),
            free: 30,
            max_wait_secs: 15 * 60,
        });
    }
    throttles
}

/// Checks credentials from `address` at `now` (Unix ms, so waits are tested
/// without sleeping). Every throttle is checked before the password is hashed,
/// so a throttled guess costs no CPU; unknown emails and wrong passwords get
/// the same answer and cost the same time.
pub async fn log_in(
    db: &Db,
    email: &str,
    password: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Result<UserRecord> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::invalid("email", "is required").into());
    }
    if password.is_empty() {
        return Err(AppError::invalid("password", "is required").into());
    }
    let throttles = throttles(&email, address);
    let mut wait = 0;
    for throttle in &throttles {
        if let Some(failures) = login_throttle::get(&db.pool, &throttle.key).await? {
            let elapsed = (now - failures.last_at) / 1000;
            if now - failures.last_at < FORGET_AFTER_MS {
                wait = wait.max(throttle.wait_secs(failures.count) - elapsed);
            }
        }
    }
    if wait > 0 {
        return Err(too_many(wait));
    }
    let user = users::find_by_email(&db.pool, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if verify_password(password.to_owned(), stored).await? {
        // The address's count stays: signing in to one's own account must not
        // reset a spray against others.
        for throttle in throttles.iter().filter(|t| t.key.starts_with("account:")) {
            login_throttle::clear(&db.writer, &throttle.key).await?;
        }
        return user.ok_or_else(|| Error::internal("verified without a user"));
    }
    let mut wait = 0;
    for throttle in &throttles {
        let count =
            login_throttle::record_failure(&db.writer, &throttle.key, now, now - FORGET_AFTER_MS)
                .await?;
        wait = wait.max(throttle.wait_secs(count));
    }
    if wait > 0 {
        return Err(too_many(wait));
    }
    Err(AppError::Unauthenticated {
        message: BAD_CREDENTIALS.into(),
    }
    .into())
}

fn too_many(wait_secs: i64) -> Error {
    AppError::TooManyRequests {
        message: format!("{BAD_CREDENTIALS}; too many failed attempts, try again in {wait_secs} s"),
        retry_after_secs: wait_secs.max(1) as u64,
    }
    .into()
}

/// Creates or updates an account from the command line (`cover user create`).
pub async fn create_or_update(
    db: &Db,
    email: &str,
    password: &str,
    admin: bool,
) -> Result<(UserRecord, bool)> {
    let email = normalise_email(email)?;
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let role = if admin {
        WorkspaceRole::Admin
    } else {
        WorkspaceRole::Member
    };
    let mut tx = db.writer.begin().await?;
    let inserted = users::insert(&mut tx, &email, &hash, role).await?;
    tx.commit().await?;
    if let Some(user) = inserted {
        return Ok((user, true));
    }
    let existing = users::find_by_email(&db.writer, &email)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))?;
    let role = if admin {
        WorkspaceRole::Admin
    } else {
        existing.role
    };
    users::set_password_and_role(&db.writer, &existing.user_id, &hash, role).await?;
    let updated = users::find_by_id(&db.writer, &existing.user_id)
        .await?
        .ok_or_else(|| Error::internal("user vanished"))?;
    Ok((updated, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_eight_characters() {
        assert_eq!(
            check_password("1234567").unwrap_err().field(),
            Some("password")
        );
        assert!(check_password("12345678").is_ok());
    }

    #[test]
    fn one_account_from_one_address_waits_up_to_fifteen_minutes_the_account_alone_thirty_seconds() {
        let address: IpAddr = "203.0.113.9".parse().unwrap();
        let [account, pair, from_address] =
            <[Throttle; 3]>::try_from(throttles("a@example.com", Some(address))).unwrap();
        assert_eq!(pair.key, "account:a@example.com|address:203.0.113.9");
        assert_eq!(pair.wait_secs(4), 0);
        assert_eq!(pair.wait_secs(5), 1);
        assert_eq!(pair.wait_secs(6), 2);
        assert_eq!(pair.wait_secs(10), 32);
        assert_eq!(pair.wait_secs(100), 15 * 60);
        assert_eq!(account.wait_secs(9), 0);
        assert_eq!(account.wait_secs(1_000), 30);
        assert_eq!(from_address.key, "address:203.0.113.9");
        assert_eq!(from_address.wait_secs(29), 0);
        assert_eq!(throttles("a@example.com", None).len(), 1);
    }
}
