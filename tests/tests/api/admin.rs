//! The business side: customers, staff, API keys, organization settings.
