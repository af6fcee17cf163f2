//! testkit tests
