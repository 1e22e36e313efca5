//! Background jobs, run by `guichet serve` on their own threads and by
//! `guichet jobs ...` once from the command line.

pub mod debit;
pub mod sepa;
