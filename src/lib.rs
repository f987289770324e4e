//! Cover: multi-LLM support for chatbots. One crate, two builds: the server
//! (`ssr`: axum + Leptos SSR + storage + the LLM layer) and the browser bundle
//! (`hydrate`: the same pages, hydrated as WASM).
//!
//! Layout: `app` (shell and routes) → `pages` (one file per screen) →
//! `components` (reusable UI) → `api` (server functions) → `model` (shared
//! types) and `error` (the user-safe error). Everything server-only lives under
//! `server`, gated once here.

#![recursion_limit = "256"]

pub mod app;
pub mod components;
pub mod error;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod server_fns;

/// Browser entry point: hydrates the server-rendered page. `hydrate_lazy`
/// (not `hydrate_body`): the heavy screens are lazy routes whose code is
/// fetched as separate wasm chunks, so hydration waits for a route's chunk
/// before it hydrates that route.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
