//! Test-only harness (placeholder until written).
