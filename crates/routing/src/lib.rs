//! The routing decision: given an inbound call and a read-only view of one tenant's settings,
//! which number rings first, which follow, what runs when all fail, and why.
//!
//! Responsible for: the rules of the product spec and of issue 15 (a dead number → no route;
//! a closed company → its after-hours action; otherwise the eligible lead's assigned user → the
//! number owner's direct line (the two swapped with `prefer: number_owner`) → the dialed
//! number's forwarding number → the company phone → the final action; issue 17 adds blocked
//! and anonymous callers before the hours, and a returning caller's last answerer and the ring
//! group before the forwarding number), lead lookup by caller
//! number, eligibility (active, available, in working hours at the call's `received_at`, with a
//! phone), ring timeouts, loop and duplicate avoidance, and an explanation of every step. Also the
//! in-memory tenant state the decision reads ([`TenantState`]), with the per-entity version
//! guard, so that the router, replay and what-if all decide from the same code.
//!
//! Must not: do I/O, read the clock or hold global state. Same inputs, same decision.

mod answers;
mod decide;
mod state;
mod view;

pub use answers::{AnswerBook, AnswerLog, AsOf, TenantAnswers};
pub use decide::{Decision, decide, decide_with};
pub use state::{Applied, StateError, TenantState};
pub use view::{
    BlockList, CallerHistory, CompanyView, ContactView, LastAnswer, NoHistory, NumberView,
    SettingPhone, SettingsView, UTC, UserView,
};
