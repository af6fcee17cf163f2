//! Routing core tests: one table row per rule of the spec (quoted), then properties.

mod fixture;
mod properties;
mod rules;
mod state;
