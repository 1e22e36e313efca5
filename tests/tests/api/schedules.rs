//! The customer side of schedules: listing, card change, regularization, contact channels, sandbox cards.
