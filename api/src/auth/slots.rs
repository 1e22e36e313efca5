//! Password hashing on a few dedicated threads.
//!
//! argon2 is deliberately costly in CPU and memory (19 MiB per hash). Two
//! things follow. A storm of sign-ins must leave CPU for every other
//! request, so at most `n` hashes run at once. And each hash must run on
//! one of the same `n` threads: the allocator keeps a freed 19 MiB block
//! for the thread that used it, so hashing on whichever of the hundreds of
//! blocking threads is free would keep hundreds of blocks (gigabytes).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of hashing threads.
#[derive(Debug)]
pub struct HashSlots {
    jobs: Mutex<Sender<Job>>,
    threads: usize,
}

impl HashSlots {
    /// `n` hashing threads (at least one).
    pub fn new(n: usize) -> Self {
        let threads = n.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue: Arc<Mutex<Receiver<Job>>> = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            // The sender is gone: the server is shutting down.
                            Err(_) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self {
            jobs: Mutex::new(jobs),
            threads,
        }
    }

    /// How many hashes can run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a hashing thread and returns its result; waits for a
    /// free thread. Call from a blocking thread (inside `web::block`).
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        if let Err(mpsc::SendError(job)) = sent {
            // No hashing thread could be started: hash here rather than fail.
            job();
        }
        rx.recv()
            .unwrap_or_else(|_| panic!("a password-hashing job panicked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_n_run_at_once_and_always_on_the_same_threads() {
        let slots = Arc::new(HashSlots::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (slots, running, peak, names) =
                    (slots.clone(), running.clone(), peak.clone(), names.clone());
                std::thread::spawn(move || {
                    slots.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        names
                            .lock()
                            .unwrap()
                            .insert(std::thread::current().name().unwrap_or("").to_owned());
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                        7
                    })
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), 7);
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let names = names.lock().unwrap();
        assert!(names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("password-hash-")));
    }
}
