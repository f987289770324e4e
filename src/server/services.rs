//! Plain service functions: the logic behind both the server functions and the
//! JSON API, testable without HTTP.

pub mod accounts;
pub mod projects;
