//! Accounts and projects as the browser and programs see them.

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
