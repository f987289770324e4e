//! Accounts and projects as the browser and programs see them.

use serde::{Deserialize, Serialize};

/// A workspace role: the first account becomes the admin, later ones members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceRole {
    /// Sees and manages every project and the workspace-wide dashboards.
    Admin,
    /// Sees the projects they belong to.
    Member,
}

impl WorkspaceRole {
    /// The value stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::Admin => "admin",
            WorkspaceRole::Member => "member",
        }
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// Stable user id (UUID).
    pub id: String,
    /// Login email, lower-cased.
    pub email: String,
    /// Workspace role.
    pub role: WorkspaceRole,
}

/// What a project is mostly used for; drives model recommendations (FR-002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    /// Answering customers' questions.
    CustomerSupport,
    /// Qualifying and converting leads.
    Sales,
    /// Answering from technical documentation.
    TechnicalDocs,
    /// Anything else.
    Other,
}

impl UseCase {
    /// Every use case, in display order.
    pub const ALL: [UseCase; 4] = [
        UseCase::CustomerSupport,
        UseCase::Sales,
        UseCase::TechnicalDocs,
        UseCase::Other,
    ];

    /// The value stored in the database and used in forms.
    pub fn as_str(self) -> &'static str {
        match self {
            UseCase::CustomerSupport => "customer_support",
            UseCase::Sales => "sales",
            UseCase::TechnicalDocs => "technical_docs",
            UseCase::Other => "other",
        }
    }

    /// Parses the stored/form value.
    pub fn parse(value: &str) -> Option<UseCase> {
        UseCase::ALL.into_iter().find(|u| u.as_str() == value)
    }

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

/// The caller's role inside one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// Created the project; may rename it and add members.
    Owner,
    /// Was added to the project.
    Member,
    /// Not a member, but a workspace admin.
    Admin,
}

/// A project as listed for its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
