//! End-to-end tests of the adapters against the simulator.
