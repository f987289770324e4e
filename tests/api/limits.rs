//! What makes Cover safe to expose on the internet, at the HTTP boundary:
//! pages' content policy and answers to malformed server-function bodies.

mod csp;
mod server_fn_bodies;
