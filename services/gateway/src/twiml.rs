//! TwiML answers: the shared writer of every service ([`switchboard_twilio::twiml`]), so the
//! gateway's answers and the dialer's live-call modifications cannot drift apart.

pub(crate) use switchboard_twilio::twiml::*;
