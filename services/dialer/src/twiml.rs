//! The TwiML the dialer hands to the carrier: the shared writer of every service
//! ([`switchboard_twilio::twiml`]), so it is exactly what the gateway answers in sync mode.

pub use switchboard_twilio::twiml::{dial, final_action};
