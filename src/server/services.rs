//! Plain service functions: the logic behind both the server functions and the
//! JSON API, testable without HTTP.

pub mod accounts;
pub mod api_tokens;
pub mod key_rotation;
pub mod llm_settings;
pub mod projects;
