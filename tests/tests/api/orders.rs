//! The business side of schedules: orders, cancellations, payment settings, contact channels.
