//! Everything that runs only on the server (feature `ssr`): configuration,
//! start-up, storage, authentication, the JSON API and the LLM layer. Gated once,
//! here, so UI files never need `#[cfg]`.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod gateway;
pub mod hot_reads;
pub mod knowledge;
pub mod ledger;
pub mod llm;
pub mod metrics;
pub mod outbound;
pub mod protections;
pub mod rest;
pub mod services;
pub mod simulator;
pub mod startup;
pub mod state;
pub mod telemetry;
