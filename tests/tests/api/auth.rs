//! Customer and staff sign-in flows, tokens, throttling and abuse limits.
