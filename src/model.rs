//! Shared, serialisable types: what the browser and programs see. No database,
//! no secrets, no server-only dependencies, so the same types compile to WASM.

pub mod account;
pub mod api_token;
pub mod catalog;
pub mod chat;
pub mod costs;
pub mod llm_config;
pub mod money;
pub mod parameters;
pub mod pricing;
pub mod recommend;
