//! What password verification alone achieves on this machine: the same
//! argon2id verification the server runs at login, in this process, on one
//! OS thread per core, with no HTTP and no database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use guichet_domain::password::{Verification, hash_password, verify_password};
use serde::Serialize;

/// A password and its hash, made once.
pub struct Verifier {
    password: String,
    phc: String,
}

impl Verifier {
    /// Hashes `password` with the server's parameters and checks that it
    /// verifies.
    pub fn new(password: &str) -> Result<Verifier, String> {
        let phc = hash_password(password).map_err(|e| format!("cannot hash: {e}"))?;
        let verifier = Verifier {
            password: password.to_owned(),
            phc,
        };
        if !verifier.verify() {
            return Err("the password does not verify against its own hash".to_owned());
        }
        Ok(verifier)
    }

    fn verify(&self) -> bool {
        matches!(
            verify_password(&self.password, &self.phc),
            Verification::Match { .. }
        )
    }

    /// Verifies back to back on `threads` threads: `warmup` first, then
    /// `duration`; returns the verifications that finished inside
    /// `duration`.
    pub fn run(&self, threads: usize, warmup: Duration, duration: Duration) -> Result<u64, String> {
        let measure_from = Instant::now() + warmup;
        let until = measure_from + duration;
        let counted = AtomicU64::new(0);
        let mismatches = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while Instant::now() < until {
                        let ok = self.verify();
                        let finished = Instant::now();
                        if !ok {
                            mismatches.fetch_add(1, Ordering::Relaxed);
                        } else if finished >= measure_from && finished <= until {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        if mismatches.load(Ordering::Relaxed) > 0 {
            return Err("a verification failed".to_owned());
        }
        Ok(counted.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Serialize)]
pub struct RawArgon2 {
    pub threads: usize,
    /// Verifications that finished inside the measured time.
    pub verifications: u64,
    pub measured_secs: f64,
    pub verifications_per_s: f64,
    /// Mean time of one verification on one thread.
    pub ms_per_verification: f64,
}

impl RawArgon2 {
    pub fn new(threads: usize, verifications: u64, measured: Duration) -> RawArgon2 {
        let per_s = verifications as f64 / measured.as_secs_f64();
        RawArgon2 {
            threads,
            verifications,
            measured_secs: crate::round(measured.as_secs_f64(), 3),
            verifications_per_s: crate::round(per_s, 1),
            ms_per_verification: if per_s > 0.0 {
                crate::round(threads as f64 * 1000.0 / per_s, 2)
            } else {
                0.0
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifications_are_counted() {
        let verifier = Verifier::new("a password").unwrap();
        let window = Duration::from_millis(500);
        let n = verifier.run(2, Duration::ZERO, window).unwrap();
        assert!(n > 0);
        let r = RawArgon2::new(2, n, window);
        assert_eq!(r.verifications, n);
        assert!(r.ms_per_verification > 0.0, "{r:?}");
    }

    #[test]
    fn rates_are_per_second() {
        let r = RawArgon2::new(2, 50, Duration::from_secs(2));
        assert_eq!(r.verifications_per_s, 25.0);
        assert_eq!(r.ms_per_verification, 80.0);
        assert_eq!(
            RawArgon2::new(2, 0, Duration::from_secs(1)).ms_per_verification,
            0.0
        );
    }
}
