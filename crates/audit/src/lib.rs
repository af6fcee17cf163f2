//! Audit over the streams: CALLS and SETTINGS are the audit log, and this crate answers the
//! questions people ask of it — "why did this call go there?" ([`explain`]), "does the
//! current routing code still decide what was decided?" ([`replay`]), "what would this
//! settings change do to calls like the past ones?" ([`what_if`]) and "where can a call end
//! with no target or a bad one?" ([`lint`]).
//!
//! Responsible for: reading the streams with ephemeral consumers (never a durable position),
//! rebuilding settings exactly as of any SETTINGS sequence with the routing crate's own
//! [`switchboard_routing::TenantState`], re-deciding with the routing crate's own
//! [`switchboard_routing::decide`] (or an injected one), and reports that are deterministic
//! (same streams, same report) with phone numbers masked.
//!
//! Must not: publish or change anything in the streams, hold a durable consumer, contain
//! routing rules of its own, print (the CLI renders the reports), or show a full phone number.

mod error;
pub mod explain;
pub mod index;
pub mod lint;
pub mod proposal;
pub mod read;
pub mod replay;
pub mod settings;
mod table;
pub mod what_if;

pub use error::AuditError;
pub use explain::{CallLife, explain};
pub use lint::{Finding, LintReport, lint, lint_with};
pub use proposal::parse_settings_file;
pub use read::{NoProgress, Progress, Selection};
pub use replay::{
    Difference, ReplayOptions, ReplayReport, Replayer, replay, replay_with, replay_with_options,
};
pub use settings::SettingsLog;
pub use what_if::{WhatIfReport, what_if};
