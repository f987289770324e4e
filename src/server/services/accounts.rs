//! Sign-up and log-in rules: input validation, the first-account-is-admin rule,
//! one answer for "wrong password" and "unknown email", and slowing down
//! repeated failures.

use crate::error::AppError;
use crate::model::account::{UserView, WorkspaceRole};
use crate::server::auth::{hash_password, verify_password};
use crate::server::db::login_attempts;
use crate::server::db::users::{self, UserRecord};
use crate::server::db::Db;
use crate::server::error::{Error, Result};

/// Failures allowed before logins for an email are slowed down.
pub const FREE_FAILURES: i64 = 5;
/// The longest wait imposed after repeated failures.
pub const MAX_LOCKOUT_SECS: i64 = 15 * 60;
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

/// Normalises and checks an email address.
pub fn normalise_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            "email",
            "must be an email address like name@example.com",
        ))
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

/// Creates an account; the workspace's first account becomes its admin.
pub async fn sign_up(db: &Db, email: &str, password: &str) -> Result<UserRecord> {
    let email = normalise_email(email)?;
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    users::insert(&db.writer, &email, &hash, false)
        .await?
        .ok_or_else(|| {
            Error::App(AppError::Conflict {
                field: "email".into(),
                message: "an account with this email already exists; log in instead".into(),
            })
        })
}

/// Checks credentials. Unknown emails and wrong passwords get the same answer
/// and cost the same time; after [`FREE_FAILURES`] consecutive failures the
/// email must wait (doubling, up to [`MAX_LOCKOUT_SECS`]) before trying again.
/// `now` (Unix ms) is the time of the attempt, so waits are tested without sleeping.
pub async fn log_in(db: &Db, email: &str, password: &str, now: i64) -> Result<UserRecord> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::invalid("email", "is required").into());
    }
    if password.is_empty() {
        return Err(AppError::invalid("password", "is required").into());
    }
    if let Some(failures) = login_attempts::get(&db.pool, &email).await? {
        let wait = lockout_secs(failures.count);
        let elapsed = (now - failures.last_at) / 1000;
        if wait > elapsed {
            return Err(too_many(wait - elapsed));
        }
    }
    let user = users::find_by_email(&db.pool, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if verify_password(password.to_owned(), stored).await? {
        login_attempts::clear(&db.writer, &email).await?;
        return user.ok_or_else(|| Error::internal("verified without a user"));
    }
    let count = login_attempts::record_failure(&db.writer, &email, now).await?;
    let wait = lockout_secs(count);
    if wait > 0 {
        return Err(too_many(wait));
    }
    Err(AppError::Unauthenticated {
        message: BAD_CREDENTIALS.into(),
    }
    .into())
}

/// Seconds an email must wait after `failures` consecutive failures.
pub fn lockout_secs(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(20) as u32;
    (1_i64 << doublings).min(MAX_LOCKOUT_SECS)
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
    if let Some(user) = users::insert(&db.writer, &email, &hash, admin).await? {
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
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
        ] {
            let err = normalise_email(bad).unwrap_err();
            assert_eq!(err.field(), Some("email"), "{bad}");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert_eq!(
            check_password("1234567").unwrap_err().field(),
            Some("password")
        );
        assert!(check_password("12345678").is_ok());
    }

    #[test]
    fn lockout_starts_after_five_failures_and_doubles_up_to_fifteen_minutes() {
        assert_eq!(lockout_secs(4), 0);
        assert_eq!(lockout_secs(5), 1);
        assert_eq!(lockout_secs(6), 2);
        assert_eq!(lockout_secs(10), 32);
        assert_eq!(lockout_secs(100), MAX_LOCKOUT_SECS);
    }
}
