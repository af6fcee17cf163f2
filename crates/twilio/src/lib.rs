//! Everything Switchboard says to Twilio, in one place, so the gateway (which answers Twilio's
//! webhooks) and the dialer (which modifies live calls through Twilio's REST API) cannot
//! drift apart:
//!
//! - [`twiml`]: every TwiML document either service hands to Twilio — ringback, ringback then a
//!   redirect, a `<Dial>` of one step, the final action (never silent), a spoken error, a bare
//!   hang-up — written with an XML writer, so every text and attribute is escaped;
//! - [`urls`]: the gateway's callback URLs that TwiML points to (a step's dial status, the
//!   hang-up, the voice webhook and its sync-mode redirect, the no-instruction fallback), and
//!   the route templates the gateway serves them under;
//! - [`rest`]: the REST request "modify a live call" (`POST …/Calls/{CallSid}.json` with
//!   `Twiml`), its sending and the classification of its outcome (accepted, transient, refused).
//!
//! Must not: decide anything about a call (what to ring or say is the caller's), retry (the
//! dialer's policy), or log or format a credential.

pub mod rest;
pub mod twiml;
pub mod urls;
