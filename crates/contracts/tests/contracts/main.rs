//! Contract conformance tests.
