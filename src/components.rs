//! Reusable UI pieces.

pub mod capability;
pub mod error_notice;
