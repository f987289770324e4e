//! Invitations: how people join when sign-up is by invitation (the default).
//! An owner invites an email to a project, an admin to the workspace; the
//! inviter gets a one-time link to pass on. The answer is the same whether
//! the email has an account or not (nothing is revealed about who exists); a
//! new person signs up through the link, someone with an account opens it
//! signed in and accepts.

use crate::error::AppError;
use crate::model::access::Scope;
use crate::model::account::{normalise_email, CreatedInvitation, InvitationView, WorkspaceRole};
use crate::server::auth::check_role;
use crate::server::crypto::{one_time_secret, sha256_hex};
use crate::server::db::invitations::{self, InvitationRecord};
use crate::server::db::users::UserRecord;
use crate::server::db::{now_ms, projects, rfc3339, Db};
use crate::server::error::{Error, Result};

/// How long a link works.
pub const VALID_FOR_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// What an invitation secret starts with.
const PREFIX: &str = "inv_";

/// Invites `email` to `project_id` (its owners and admins may) or, with no
/// project, to the workspace (admins only). The link is in the answer only.
pub async fn create(
    db: &Db,
    inviter: &UserRecord,
    project_id: Option<&str>,
    email: &str,
) -> Result<CreatedInvitation> {
    match project_id {
        Some(project_id) => {
            check_role(&db.pool, inviter, project_id, Scope::Manage).await?;
        }
        None if inviter.role != WorkspaceRole::Admin => {
            return Err(AppError::Forbidden {
                message: "only workspace admins can invite people to the workspace".into(),
            }
            .into())
        }
        None => {}
    }
    let email = normalise_email(email)?;
    let secret = one_time_secret(PREFIX);
    let expires_at = now_ms() + VALID_FOR_MS;
    invitations::insert(
        &db.writer,
        &sha256_hex(&secret),
        &email,
        project_id,
        &inviter.user_id,
        expires_at,
    )
    .await?;
    Ok(CreatedInvitation {
        email,
        link: format!("/signup?invitation={secret}"),
        expires_at: rfc3339(expires_at),
    })
}

async fn live(db: &Db, secret: &str) -> Result<InvitationRecord> {
    invitations::find(&db.pool, &sha256_hex(secret.trim()))
        .await?
        .filter(|i| i.accepted_at.is_none() && i.expires_at > now_ms())
        .ok_or_else(|| {
            Error::App(AppError::invalid(
                "invitation",
                "this invitation link is unknown, used already or expired; ask for a new one",
            ))
        })
}

/// What a live invitation link says (for the sign-up page).
pub async fn view(db: &Db, secret: &str) -> Result<InvitationView> {
    let invitation = live(db, secret).await?;
    Ok(InvitationView {
        email: invitation.email,
        project_name: invitation.project_name,
    })
}

/// A live invitation for exactly `email` (a link works for the person it
/// was made for only).
pub async fn usable(db: &Db, secret: &str, email: &str) -> Result<InvitationRecord> {
    let invitation = live(db, secret).await?;
    if invitation.email != email {
        return Err(
            AppError::invalid("email", "this invitation is for another email address").into(),
        );
    }
    Ok(invitation)
}

/// Uses an invitation for `user_id` inside the caller's transaction: marks it
/// used (once: a second use is 409) and adds them to its project.
pub async fn accept_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    invitation: &InvitationRecord,
    user_id: &str,
) -> Result<()> {
    if !invitations::mark_accepted(tx, &invitation.invitation_id, user_id).await? {
        return Err(AppError::Conflict {
            field: "invitation".into(),
            message: "this invitation was used already".into(),
        }
        .into());
    }
    if let Some(project_id) = &invitation.project_id {
        projects::add_member(tx, project_id, user_id).await?;
    }
    Ok(())
}

/// A signed-in person accepts an invitation made for their email; answers
/// the project it opened, if any.
pub async fn accept(db: &Db, user: &UserRecord, secret: &str) -> Result<Option<String>> {
    let invitation = usable(db, secret, &user.email).await?;
    let mut tx = db.writer.begin().await?;
    accept_in(&mut tx, &invitation, &user.user_id).await?;
    tx.commit().await?;
    Ok(invitation.project_id)
}
