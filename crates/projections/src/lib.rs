//! Settings projections: the SETTINGS stream applied exactly once to a durable store (SQLite
//! file by default, PostgreSQL in production, one set of sea-orm migrations) and to the
//! in-memory index the router decides from.
//!
//! Responsible for: the one SETTINGS decoder ([`decode`]: what is applied, skipped or refused,
//! shared with the audit); the per-tenant company, number, user and contact rows (each
//! entity's settings kept as its event's `data` document) with the per-entity version guard
//! (duplicated and out-of-order events never regress state); the last applied SETTINGS
//! sequence, written in the same transaction as the rows, so applying is exactly once
//! and resumable after a crash; hydrating the in-memory [`Projection`] from the store; the
//! [`Follower`] that keeps both current from an ordered consumer, files rejections for events
//! it cannot apply, and tells readiness ("caught up with SETTINGS as of start") and freshness
//! ("applied at least sequence N").
//!
//! Must not: decide routes or normalize phone numbers (that is `switchboard-routing`: rows hold
//! what the events carried and are turned back into events to hydrate), define streams or
//! consumers' durable state (that is `switchboard-bus`), mix tenants (every row and query is
//! keyed by tenant id), or log phone numbers or event payloads.

pub mod decode;
mod error;
mod follower;
mod migration;
mod projection;
mod store;

pub use decode::{Decoded, MAX_VERSION};
pub use error::ProjectionError;
pub use follower::{Follower, settings_last_seq};
pub use migration::Migrator;
pub use projection::{Projection, Record};
pub use store::{OpenError, Store, StoreOptions};
