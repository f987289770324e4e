//! The `invitation` table: one-time links an owner or admin hands to the
//! person invited. Only the SHA-256 of a link's secret is stored.

use crate::server::db::{col, now_ms};
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A stored invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    /// Id.
    pub invitation_id: String,
    /// The (lower-cased) email invited: only that account may use it.
    pub email: String,
    /// The project it adds the account to; `None` for the workspace alone.
    pub project_id: Option<String>,
    /// That project's name, for the sign-up page.
    pub project_name: Option<String>,
    /// Who invited.
    pub invited_by: String,
    /// Until when it may be used (Unix ms).
    pub expires_at: i64,
    /// When it was used, if it was.
    pub accepted_at: Option<i64>,
}

const SELECT: &str = "select i.invitation_id, i.email, i.project_id, p.name as project_name, \
                             i.invited_by, i.expires_at, i.accepted_at \
                      from invitation i left join project p on p.project_id = i.project_id";

fn from_row(row: &AnyRow) -> Result<InvitationRecord> {
    Ok(InvitationRecord {
        invitation_id: col(row, "invitation_id")?,
        email: col(row, "email")?,
        project_id: col(row, "project_id")?,
        project_name: col(row, "project_name")?,
        invited_by: col(row, "invited_by")?,
        expires_at: col(row, "expires_at")?,
        accepted_at: col(row, "accepted_at")?,
    })
}

/// Stores a new invitation.
pub async fn insert(
    pool: &AnyPool,
    token_hash: &str,
    email: &str,
    project_id: Option<&str>,
    invited_by: &str,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "insert into invitation (invitation_id, token_hash, email, project_id, invited_by, created_at, expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(token_hash)
    .bind(email)
    .bind(project_id)
    .bind(invited_by)
    .bind(now_ms())
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The invitation with this secret's hash, used or not.
pub async fn find(pool: &AnyPool, token_hash: &str) -> Result<Option<InvitationRecord>> {
    let sql = format!("{SELECT} where i.token_hash = $1");
    let row = sqlx::query(&sql)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Marks an invitation used by `user_id`, inside the caller's transaction;
/// `false` when it was used already (two tabs racing: one wins).
pub async fn mark_accepted(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    invitation_id: &str,
    user_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "update invitation set accepted_at = $1, accepted_by = $2 \
         where invitation_id = $3 and accepted_at is null",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(invitation_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
