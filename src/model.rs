//! Shared, serialisable types: what the browser and programs see. No database,
//! no secrets, no server-only dependencies, so the same types compile to WASM.

pub mod account;
pub mod catalog;
pub mod money;
