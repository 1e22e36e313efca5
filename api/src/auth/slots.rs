//! A bound on concurrent password hashing: argon2 is deliberately costly,
//! and a storm of logins must leave CPU for every other request.

use std::sync::{Condvar, Mutex};

/// A counting semaphore for blocking threads.
#[derive(Debug)]
pub struct HashSlots {
    free: Mutex<usize>,
    released: Condvar,
}

impl HashSlots {
    /// `n` hashes at once (at least one).
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            released: Condvar::new(),
        }
    }

    /// Slots for this machine: one core is left for everything else.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores.saturating_sub(1))
    }

    /// Runs `f` when a slot is free (call from a blocking thread).
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            while *free == 0 {
                free = self.released.wait(free).unwrap_or_else(|e| e.into_inner());
            }
            *free -= 1;
        }
        let result = f();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.released.notify_one();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_n_run_at_once() {
        let slots = Arc::new(HashSlots::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (slots, running, peak) = (slots.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    slots.run(|| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
