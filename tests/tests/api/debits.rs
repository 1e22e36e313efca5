//! Debit runs: presenting due instalments exactly once.
