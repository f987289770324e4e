//! Reusable UI pieces.

pub mod capability;
pub mod chat_stream;
pub mod error_notice;
pub mod image_attach;
pub mod knowledge_progress;
pub mod period;
pub mod spend;
pub mod spend_chart;
