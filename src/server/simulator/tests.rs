//! Tests of the simulator's routing, auth and faults.
