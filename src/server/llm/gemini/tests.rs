//! Tests of the gemini adapter.
