//! Cover's integration tests: the real router over real HTTP, on real SQLite and
//! real PostgreSQL. One binary, one module per area.

mod helpers;

mod auth;
mod authorization;
mod budgets;
mod catalog;
mod chat;
mod compare;
mod costs;
mod demo;
mod documents;
mod durability;
mod experiments;
mod gateway;
mod images;
mod knowledge;
mod layout;
mod limits;
mod metrics;
mod openapi;
mod outbound;
mod pages;
mod performance;
mod prices;
mod projects;
mod protections;
mod repository;
mod settings;
mod telemetry;
