//! Tests of the anthropic adapter.
