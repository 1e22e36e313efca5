//! Notification delivery: the dispatcher thread that sends what the outbox
//! holds, with retries. Messages are queued with [`queue`] (in the jobs
//! crate, `guichet_jobs::notify`, so that background jobs queue them too).

pub mod dispatch;

pub use guichet_jobs::notify::{
    Channel, OutboxKey, Template, queue, queue_returning_id, queue_sealed, queue_with_attachments,
    templates,
};
