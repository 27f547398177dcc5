//! Blocked readers and pollers of the consuming files (`trace_pipe`, `per_cpu/cpuN/trace_pipe`,
//! `trace_pipe_raw`): their replies wait here, not in a worker thread, so one blocked reader
//! never stalls the mount.
//!
//! One thread serves them. When the data path commits a record it calls [`Waiters::wake`]; the
//! thread then retries every parked read (answering those that now have data) and notifies every
//! poller whose file became readable. Kernel notifications (poll wake-ups) are thus sent from
//! this thread, never from a request handler.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS, after which the kernel waits for the reply of a
//! request in flight even when its caller is killed. So the thread also answers `EINTR` as soon
//! as a blocked thread has a deliverable signal pending, or has gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use fuser::{Errno, PollNotifier, ReplyData};
use parking_lot::{Condvar, Mutex};

/// What the waiter thread asks of the filesystem about an open consuming file.
pub trait PipeSource: Send + Sync {
    /// `Some` when a read of `size` bytes on handle `fh` can complete now (data or an error).
    fn try_read(&self, fh: u64, size: u32) -> Option<Result<Vec<u8>, Errno>>;
    /// Would a read on `fh` return without blocking?
    fn readable(&self, fh: u64) -> bool;
}

struct ParkedRead {
    /// The blocked caller's thread id (FUSE passes the tid).
    tid: u32,
    fh: u64,
    size: u32,
    reply: ReplyData,
}

struct ParkedPoll {
    fh: u64,
    notifier: PollNotifier,
}

#[derive(Default)]
struct Parked {
    reads: Vec<ParkedRead>,
    polls: Vec<ParkedPoll>,
    /// Data arrived (or something was parked) since the last pass.
    dirty: bool,
    /// A pass holds the parked reads outside the lock.
    in_pass: bool,
    /// Handles kicked during a pass: their reads end when the pass puts them back.
    kicked: Vec<u64>,
}

#[derive(Default)]
pub struct Waiters {
    parked: Mutex<Parked>,
    wake: Condvar,
    /// Parked reads plus polls, readable without the lock (the data path's fast check).
    count: AtomicUsize,
}

/// How often blocked callers are checked for pending signals.
const REAP_INTERVAL: Duration = Duration::from_millis(50);

impl Waiters {
    pub fn start(source: Weak<dyn PipeSource>) -> Arc<Waiters> {
        let w = Arc::new(Waiters::default());
        let me = w.clone();
        std::thread::Builder::new()
            .name("pipe-waiters".into())
            .spawn(move || me.serve(source))
            .expect("spawn pipe-waiters thread");
        w
    }

    pub fn park_read(&self, tid: u32, fh: u64, size: u32, reply: ReplyData) {
        self.park(|p| {
            p.reads.push(ParkedRead {
                tid,
                fh,
                size,
                reply,
            })
        });
    }

    pub fn park_poll(&self, fh: u64, notifier: PollNotifier) {
        self.park(|p| p.polls.push(ParkedPoll { fh, notifier }));
    }

    fn park(&self, add: impl FnOnce(&mut Parked)) {
        let mut p = self.parked.lock();
        add(&mut p);
        // Data may have arrived between the caller's check and now: retry once.
        p.dirty = true;
        self.count.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Records were committed: parked readers and pollers get another look.
    pub fn wake(&self) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.parked.lock().dirty = true;
        self.wake.notify_one();
    }

    /// Ends the reads blocked on handle `fh` with 0 bytes (`ioctl(fd, 0)`: a recorder stopping
    /// its readers). Reads not blocked at this moment are not affected.
    pub fn kick(&self, fh: u64) {
        let kicked: Vec<ParkedRead> = {
            let mut p = self.parked.lock();
            let (kicked, keep) = std::mem::take(&mut p.reads)
                .into_iter()
                .partition(|r| r.fh == fh);
            p.reads = keep;
            if p.in_pass {
                p.kicked.push(fh);
            }
            self.count
                .store(p.reads.len() + p.polls.len(), Ordering::Relaxed);
            kicked
        };
        for r in kicked {
            r.reply.data(&[]);
        }
    }

    /// Blocked reads right now.
    pub fn blocked_reads(&self) -> usize {
        self.parked.lock().reads.len()
    }

    fn serve(&self, source: Weak<dyn PipeSource>) {
        let mut parked = self.parked.lock();
        loop {
            if parked.reads.is_empty() && parked.polls.is_empty() {
                parked.dirty = false;
                self.wake.wait(&mut parked);
                continue;
            }
            if !parked.dirty {
                self.wake.wait_for(&mut parked, REAP_INTERVAL);
            }
            let Some(source) = source.upgrade() else {
                return;
            };
            let data = std::mem::take(&mut parked.dirty);
            let reads = std::mem::take(&mut parked.reads);
            let polls = std::mem::take(&mut parked.polls);
            parked.in_pass = true;
            drop(parked);
            let (reads, polls) = pass(&*source, reads, polls, data);
            parked = self.parked.lock();
            parked.in_pass = false;
            let kicked = std::mem::take(&mut parked.kicked);
            let (ended, reads): (Vec<_>, Vec<_>) =
                reads.into_iter().partition(|r| kicked.contains(&r.fh));
            for r in ended {
                r.reply.data(&[]);
            }
            parked.reads.extend(reads);
            parked.polls.extend(polls);
            let n = parked.reads.len() + parked.polls.len();
            self.count.store(n, Ordering::Relaxed);
        }
    }
}

/// One pass over the parked callers, without the lock: interrupted readers get EINTR; after new
/// data (`data`), reads that can complete are answered and readable pollers notified. Returns
/// those still waiting.
fn pass(
    source: &dyn PipeSource,
    reads: Vec<ParkedRead>,
    polls: Vec<ParkedPoll>,
    data: bool,
) -> (Vec<ParkedRead>, Vec<ParkedPoll>) {
    let mut keep_reads = Vec::with_capacity(reads.len());
    for r in reads {
        if interrupted(r.tid) {
            r.reply.error(Errno::EINTR);
            continue;
        }
        match data.then(|| source.try_read(r.fh, r.size)).flatten() {
            Some(Ok(bytes)) => r.reply.data(&bytes),
            Some(Err(e)) => r.reply.error(e),
            None => keep_reads.push(r),
        }
    }
    let mut keep_polls = Vec::with_capacity(polls.len());
    for p in polls {
        if data && source.readable(p.fh) {
            // ENOENT: the poller went away meanwhile; nothing to do.
            let _ = p.notifier.notify();
        } else {
            keep_polls.push(p);
        }
    }
    (keep_reads, keep_polls)
}

/// Has thread `tid` a pending signal it does not block, or has it exited?
fn interrupted(tid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return true;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (mask("SigPnd:") | mask("ShdPnd:")) & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_thread_is_not_interrupted() {
        let tid = unsafe { libc::gettid() } as u32;
        assert!(!super::interrupted(tid));
        assert!(super::interrupted(u32::MAX - 1));
    }
}
