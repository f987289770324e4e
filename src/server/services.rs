//! Plain service functions: the logic behind both the server functions and the
//! JSON API, testable without HTTP.

pub mod accounts;
pub mod api_tokens;
pub mod budgets;
pub mod capacity;
pub mod chat;
pub mod compare;
pub mod completions;
pub mod costs;
pub mod experiments;
pub mod images;
pub mod internal_rates;
pub mod invitations;
pub mod key_checks;
pub mod key_rotation;
pub mod knowledge;
pub mod llm_settings;
pub mod metering;
pub mod performance;
pub mod private_hosts;
pub mod projects;
pub mod recovery;
pub mod routing;
pub mod workspace_limits;
