//! One file per screen.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod compare;
pub mod costs;
pub mod knowledge;
pub mod not_found;
pub mod performance;
pub mod project;
pub mod projects;
pub mod settings;
