//! Accounts and projects as the browser and programs see them.

use crate::error::AppError;
use serde::{Deserialize, Serialize};

crate::model::text_enum! {
    /// A workspace role.
    pub enum WorkspaceRole {
        /// Sees and manages every project and the workspace-wide dashboards.
        Admin = "admin",
        /// Sees the projects they belong to.
        Member = "member",
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Stable user id (UUID).
    pub id: String,
    /// Login email, lower-cased.
    pub email: String,
    /// Workspace role.
    pub role: WorkspaceRole,
}

crate::model::text_enum! {
    /// Who may create an account (`COVER_SIGNUP`).
    pub enum SignupMode {
        /// Only people holding an invitation link (the default).
        Invite = "invite",
        /// Anyone who reaches the server.
        Open = "open",
        /// No one; accounts come from `cover user create`.
        Closed = "closed",
    }
}

/// A member of a project, as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// The account's id.
    pub user_id: String,
    /// Its email.
    pub email: String,
    /// Owner or member.
    pub role: ProjectRole,
    /// When they joined, RFC 3339.
    pub joined_at: String,
}

/// An invitation just made: the link is shown this once, to pass on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvitation {
    /// Who may use it.
    pub email: String,
    /// The path to open (`/signup?invitation=inv_…`), relative to the site.
    pub link: String,
    /// Until when it works, RFC 3339.
    pub expires_at: String,
}

/// What an invitation link says before it is used (the sign-up page shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InvitationView {
    /// The email it is for.
    pub email: String,
    /// The project it opens, if any.
    pub project_name: Option<String>,
}

crate::model::text_enum! {
    /// What a project is mostly used for; drives model recommendations
    /// (FR-002). In display order.
    pub enum UseCase {
        /// Answering customers' questions.
        CustomerSupport = "customer_support",
        /// Qualifying and converting leads.
        Sales = "sales",
        /// Answering from technical documentation.
        TechnicalDocs = "technical_docs",
        /// Anything else.
        Other = "other",
    }
}

impl UseCase {
    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            UseCase::CustomerSupport => "Customer support",
            UseCase::Sales => "Sales",
            UseCase::TechnicalDocs => "Technical docs",
            UseCase::Other => "Other",
        }
    }
}

crate::model::text_enum! {
    /// The caller's role inside one project.
    pub enum ProjectRole {
        /// Created the project; may rename it and add members.
        Owner = "owner",
        /// Was added to the project.
        Member = "member",
        /// Not a member, but a workspace admin.
        Admin = "admin",
    }
}

/// A project as listed for its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    /// Stable project id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What the project's chatbot is for.
    pub use_case: UseCase,
    /// The caller's role in it.
    pub role: ProjectRole,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

/// Normalises (trimmed, lower case) and checks an email address: what
/// sign-up, invitations and the command line store and compare.
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
}
