//! The routing decision: given an inbound call and a read-only view of one tenant's settings,
//! which number rings first, which follow, what runs when all fail, and why.
//!
//! Responsible for: the rules of the product spec (assigned user's phone → the dialed number's
//! forwarding number → the company phone → no route with a final action), lead lookup by
//! caller number, loop and duplicate avoidance, and an explanation of every step. Also the
//! in-memory tenant state the decision reads ([`TenantState`]), with the per-entity version
//! guard, so that the router, replay and what-if all decide from the same code.
//!
//! Must not: do I/O, read the clock or hold global state. Same inputs, same decision.

mod decide;
mod state;
mod view;

pub use decide::{Decision, decide};
pub use state::{Applied, StateError, TenantState};
pub use view::{ContactView, NumberView, SettingPhone, SettingsView, UserView};
