//! Who may do what inside a project: the three scopes every project route
//! needs one of, what each project role grants, and the scope sets tokens
//! carry. The server's extractors, the settings page (read-only for members)
//! and the authorization-matrix test all read these rules from here; and
//! which private hosts the server itself may be sent to.

use crate::model::account::ProjectRole;
use serde::{Deserialize, Serialize};

crate::model::text_enum! {
    /// What a project route needs, and what a token may be given.
    pub enum Scope {
        /// Conversations, messages, ratings, Compare (and the program gateway).
        Chat = "chat",
        /// The configuration, costs, usage and budget, read only.
        Read = "read",
        /// Changing the configuration, keys, budget, members and tokens.
        Manage = "manage",
    }
}

impl Scope {
    /// A human label for the settings page.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Chat => "Chat (conversations, messages, ratings)",
            Scope::Read => "Read (configuration and usage)",
            Scope::Manage => "Manage (configuration and budget)",
        }
    }
}

/// The scopes a new token gets when none are named: enough for a chatbot
/// backend and its dashboards, nothing that changes the project.
pub const DEFAULT_TOKEN_SCOPES: [Scope; 2] = [Scope::Chat, Scope::Read];

impl ProjectRole {
    /// Whether this role may act with `scope`: owners and workspace admins
    /// may do everything; members chat, rate and read.
    pub fn grants(self, scope: Scope) -> bool {
        match self {
            ProjectRole::Owner | ProjectRole::Admin => true,
            ProjectRole::Member => scope != Scope::Manage,
        }
    }
}

/// Scopes as stored in one text column (`chat,read`), in declaration order.
pub fn scopes_to_text(scopes: &[Scope]) -> String {
    Scope::ALL
        .iter()
        .filter(|scope| scopes.contains(scope))
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Scopes read back from [`scopes_to_text`]; an unknown name is `Err(name)`.
pub fn scopes_from_text(text: &str) -> Result<Vec<Scope>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| Scope::parse(name).ok_or_else(|| name.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_may_do_everything_but_manage() {
        for scope in Scope::ALL {
            assert!(ProjectRole::Owner.grants(scope));
            assert!(ProjectRole::Admin.grants(scope));
            assert_eq!(ProjectRole::Member.grants(scope), scope != Scope::Manage);
        }
    }

    #[test]
    fn scope_sets_round_trip_through_text_in_a_fixed_order() {
        let text = scopes_to_text(&[Scope::Manage, Scope::Chat]);
        assert_eq!(text, "chat,manage");
        assert_eq!(
            scopes_from_text(&text).unwrap(),
            vec![Scope::Chat, Scope::Manage]
        );
        assert_eq!(scopes_from_text("chat, admin"), Err("admin".to_owned()));
        assert_eq!(scopes_from_text(""), Ok(vec![]));
    }
}

/// The private hosts and networks user-supplied URLs (self-hosted Llama base
/// URLs, webhooks) may reach besides the public internet: the operator's,
/// fixed in the environment, and the admin's, changed on the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PrivateHosts {
    /// `COVER_ALLOWED_PRIVATE_HOSTS`, read at start (read-only here).
    pub operator: Vec<String>,
    /// The admin's entries: host names, addresses and networks (`10.0.0.0/8`).
    pub admin: Vec<String>,
}
