//! Kernel notifications (entry and listing invalidation) go through one dedicated thread,
//! never from inside a request handler: the kernel takes the parent directory's lock to apply
//! them, and a handler may be serving a request that holds that very lock.
//!
//! A handler that removes entries queues their invalidations here and never waits for them
//! (the request it serves may hold the very lock the kernel needs). When its caller must not
//! see the old entries once the call returns (deleting a dynamic event), it hands its reply
//! over too (`Then`): the notifier sends it after the invalidations, and the worker thread is
//! free meanwhile, so the lookups those invalidations wait for can still be served.

use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use fuser::{INodeNo, Notifier};

pub enum Notice {
    /// Forget the kernel's cached entry `name` in directory `parent`.
    InvalEntry { parent: u64, name: OsString },
    /// Drop the kernel's cached listing (and data) of directory `ino`.
    InvalInode { ino: u64 },
    /// Runs after every earlier notice has been sent (a deferred reply).
    Then(Box<dyn FnOnce() + Send>),
}

/// What the notifier has done and has still to do (for `--stats`).
#[derive(Default)]
pub struct NotifyCounters {
    /// Invalidations sent to the kernel.
    pub sent: AtomicU64,
    /// Notices queued and not yet carried out: 0 means every change so far is visible.
    pub pending: AtomicU64,
}

#[derive(Clone)]
pub struct NotifyQueue {
    tx: mpsc::Sender<Notice>,
    counters: &'static NotifyCounters,
}

impl NotifyQueue {
    /// Starts the notifier thread. It ends when every queue handle is dropped.
    pub fn start(notifier: Notifier, counters: &'static NotifyCounters) -> NotifyQueue {
        let (tx, rx) = mpsc::channel::<Notice>();
        std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || {
                for notice in rx {
                    match notice {
                        Notice::InvalEntry { parent, name } => {
                            // ENOENT means the kernel had nothing cached: not an error.
                            match notifier.inval_entry(INodeNo(parent), &name) {
                                Ok(()) => {}
                                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                                Err(e) => tracing::warn!(parent, ?name, "inval_entry: {e}"),
                            }
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Notice::InvalInode { ino } => {
                            // ENOENT: the kernel holds no such inode, so nothing is cached.
                            match notifier.inval_inode(INodeNo(ino), 0, 0) {
                                Ok(()) => {}
                                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                                Err(e) => tracing::warn!(ino, "inval_inode: {e}"),
                            }
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Notice::Then(f) => f(),
                    }
                    counters.pending.fetch_sub(1, Ordering::Release);
                }
            })
            .expect("spawn notifier thread");
        NotifyQueue { tx, counters }
    }

    /// Queues `notices` in order. All count as pending before the first can run, so a reply
    /// among them (`Then`) is never sent while `notifications_pending` misses later ones.
    pub fn send_all(&self, notices: Vec<Notice>) {
        self.counters
            .pending
            .fetch_add(notices.len() as u64, Ordering::Release);
        for notice in notices {
            // The receiver only goes away at shutdown; a lost notice then changes nothing.
            if self.tx.send(notice).is_err() {
                self.counters.pending.fetch_sub(1, Ordering::Release);
            }
        }
    }
}
