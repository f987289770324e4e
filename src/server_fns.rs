//! Server functions: the browser's calls to the server. Thin: each checks who is
//! calling and calls the same service as its JSON twin in `server::rest`.
//! Endpoints are stable (`/sfn/<endpoint>`), so pages work before hydration
//! through plain form posts, and after it through fetch.

pub mod admin;
pub mod auth;
pub mod budgets;
pub mod catalog;
pub mod chat;
pub mod compare;
pub mod costs;
pub mod experiments;
pub mod knowledge;
pub mod projects;
pub mod settings;
