//! Tests of the ollama adapter.
