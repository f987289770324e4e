//! Project API tokens as the settings page and programs see them.

use crate::model::access::Scope;
use serde::{Deserialize, Serialize};

/// A token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    /// Token id (for revoking).
    pub id: String,
    /// Its name.
    pub name: String,
    /// The first characters, to recognise it.
    pub prefix: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last use (RFC 3339).
    pub last_used_at: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// A token just created: the only answer that carries its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiToken {
    /// The token's facts.
    #[serde(flatten)]
    pub token: ApiToken,
    /// The token itself (`cov_…`); store it now, it is not shown again.
    pub secret: String,
}
