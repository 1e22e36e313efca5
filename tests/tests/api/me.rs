//! The signed-in customer: profile, password, sessions.
