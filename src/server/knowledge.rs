//! The knowledge base's pure parts: documents into text, text into chunks,
//! chunks' vectors into bytes and back, and the nearest of them to a
//! question. No I/O here: the service (`services::knowledge`) stores and
//! embeds; these are what it calls, and what the unit tests pin down.

pub mod chunking;
pub mod extract;
pub mod vectors;
