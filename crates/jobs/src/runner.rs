//! What every job shares, written once:
//!
//! - [`Lease`]: how work is claimed. A run takes rows for a limited time
//!   under its own token (`claim_token`, `claimed_until`), with one atomic
//!   `UPDATE ... WHERE claimed_until IS NULL OR claimed_until < now`; a run
//!   that dies lets go when the lease ends.
//! - [`Stop`]: how a run is asked to stop, by SIGTERM or SIGINT (`guichet
//!   jobs ...`) or by the server's shutdown (`guichet serve`). A run that
//!   sees it finishes what it has in hand, releases what it holds, and
//!   returns its report.
//! - [`Ending`]: how a run ended, and so the exit status of `guichet jobs
//!   ...`: 0 done, 1 failed (aborted), 3 unfinished, 4 stopped.
//! - [`Periodic`]: the thread `guichet serve` runs a job on, every interval,
//!   until it is stopped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use guichet_domain::ids;
use serde::Serialize;

/// A lease on rows of work: the token written in `claim_token` and how long
/// the claim lasts. One per claim, so that a run only ever releases its own.
#[derive(Debug, Clone)]
pub struct Lease {
    pub token: String,
    pub duration: chrono::Duration,
}

impl Lease {
    /// A new token (`prefix_...`) for `duration`.
    pub fn new(prefix: &str, duration: Duration) -> Lease {
        Lease {
            token: ids::new_id(prefix),
            duration: chrono::Duration::from_std(duration)
                .unwrap_or_else(|_| chrono::Duration::minutes(5)),
        }
    }

    /// When a claim taken at `now` ends.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.duration
    }
}

/// A request to stop, shared by a run and whoever may stop it. Clones share
/// the same flag.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag nobody has set yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop after what it has in hand.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for the runs that take an `&AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }

    /// A flag set by the first SIGTERM or SIGINT the process receives (the
    /// run then stops cleanly); a second one ends the process at once with
    /// status 130 (the claims it held end with their lease).
    pub fn on_signals() -> Result<Stop, String> {
        let stop = Stop::new();
        let flag = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| format!("cannot watch for signals: {e}"))?;
        let (ready, installed) = mpsc::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let handlers = signal(SignalKind::terminate())
                        .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
                    let (mut term, mut int) = match handlers {
                        Ok(handlers) => {
                            let _ = ready.send(Ok(()));
                            handlers
                        }
                        Err(e) => {
                            let _ = ready.send(Err(format!("cannot watch for signals: {e}")));
                            return;
                        }
                    };
                    let mut received = 0;
                    loop {
                        let name = tokio::select! {
                            _ = term.recv() => "SIGTERM",
                            _ = int.recv() => "SIGINT",
                        };
                        received += 1;
                        if received > 1 {
                            eprintln!("guichet: {name} again: stopping now");
                            std::process::exit(130);
                        }
                        tracing::warn!(
                            signal = name,
                            "stopping after the work in hand; what is held is released"
                        );
                        flag.request();
                    }
                });
            })
            .map_err(|e| format!("cannot watch for signals: {e}"))?;
        installed
            .recv()
            .map_err(|_| "cannot watch for signals".to_owned())??;
        Ok(stop)
    }
}

/// How a run ended. Its [`Ending::exit_code`] is the exit status of the
/// command that ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Everything that was due is settled.
    Done,
    /// The run went through, but due work is left: items that failed,
    /// outcomes still unknown, or claims held by another (possibly dead)
    /// run. Run again later.
    Unfinished,
    /// Stopped by a signal before the end; what it held was released.
    Stopped,
    /// Aborted: the database became unavailable (or another failure that
    /// stops the whole run).
    Failed,
}

impl Ending {
    /// 0 done, 1 failed, 3 unfinished, 4 stopped (2 is the command line's
    /// own usage error).
    pub fn exit_code(self) -> u8 {
        match self {
            Ending::Done => 0,
            Ending::Failed => 1,
            Ending::Unfinished => 3,
            Ending::Stopped => 4,
        }
    }

    /// The worse of two endings, for a command that runs several jobs.
    pub fn worst(self, other: Ending) -> Ending {
        self.max(other)
    }
}

/// The periodic thread of a job in `guichet serve`.
#[derive(Debug)]
pub struct Periodic {
    name: &'static str,
    wake: mpsc::Sender<()>,
    stop: Stop,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Runs `pass` on a thread named `name` at once, then every `interval`,
    /// until [`Periodic::stop`]. `pass` gets the stop flag, which it checks
    /// between items. A panic in a pass is logged and the next pass runs.
    pub fn spawn(
        name: &'static str,
        interval: Duration,
        mut pass: impl FnMut(&Stop) + Send + 'static,
    ) -> Periodic {
        let (wake, sleep) = mpsc::channel::<()>();
        let stop = Stop::new();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                tracing::info!(
                    job = name,
                    interval_secs = interval.as_secs(),
                    "job started"
                );
                loop {
                    if catch_unwind(AssertUnwindSafe(|| pass(&flag))).is_err() {
                        tracing::error!(job = name, "job panicked; trying again at the next pass");
                    }
                    if flag.requested() {
                        break;
                    }
                    match sleep.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                tracing::info!(job = name, "job stopped");
            })
            .map_err(|e| tracing::error!(job = name, error = %e, "cannot start the job thread"))
            .ok();
        Periodic {
            name,
            wake,
            stop,
            thread,
        }
    }

    /// Asks the thread to stop without waiting for it (a pass in progress
    /// finishes what it has in hand).
    pub fn request_stop(&self) {
        self.stop.request();
        let _ = self.wake.send(());
    }

    /// Stops the thread and waits for it: a pause ends at once, a pass ends
    /// after what it has in hand, releasing what it holds.
    pub fn stop(mut self) {
        self.request_stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(job = self.name, "the job thread panicked");
        }
    }
}

/// Sets the calling thread's nice value to `nice` (1 to 19: lower
/// priority; threads it starts afterwards inherit it). Linux only; elsewhere
/// it does nothing.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn lower_thread_priority(nice: i32) -> std::io::Result<()> {
    // SAFETY: `gettid` and `setpriority` take no pointer; on Linux
    // `PRIO_PROCESS` with a thread id changes that thread only, and raising
    // one's own nice value needs no privilege.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the calling thread's nice value (Linux only; here, nothing).
#[cfg(not(target_os = "linux"))]
pub fn lower_thread_priority(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_order_by_gravity_and_map_to_exit_codes() {
        assert_eq!(Ending::Done.worst(Ending::Unfinished), Ending::Unfinished);
        assert_eq!(Ending::Stopped.worst(Ending::Unfinished), Ending::Stopped);
        assert_eq!(Ending::Failed.worst(Ending::Stopped), Ending::Failed);
        let codes: Vec<u8> = [
            Ending::Done,
            Ending::Failed,
            Ending::Unfinished,
            Ending::Stopped,
        ]
        .iter()
        .map(|e| e.exit_code())
        .collect();
        assert_eq!(codes, [0, 1, 3, 4]);
    }

    #[test]
    fn a_periodic_job_runs_at_once_and_stops_when_asked() {
        let (tx, rx) = mpsc::channel();
        let job = Periodic::spawn("test-job", Duration::from_secs(3600), move |stop| {
            let _ = tx.send(stop.requested());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(false));
        job.stop();
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    }
}
