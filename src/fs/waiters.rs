//! Blocked readers of `trace_pipe`: their replies wait here, not in a worker thread, so one
//! blocked reader never stalls the mount.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS, after which the kernel waits for the reply of a
//! request in flight even when its caller is killed. So a reaper thread answers `EINTR` as soon
//! as the blocked thread has a deliverable signal pending, or has gone.

use std::sync::Arc;
use std::time::Duration;

use fuser::{Errno, ReplyData};
use parking_lot::{Condvar, Mutex};

struct Parked {
    /// The blocked caller's thread id (FUSE passes the tid).
    tid: u32,
    reply: ReplyData,
}

#[derive(Default)]
pub struct Waiters {
    parked: Mutex<Vec<Parked>>,
    wake: Condvar,
}

impl Waiters {
    pub fn start() -> Arc<Waiters> {
        let w = Arc::new(Waiters::default());
        let reaper = w.clone();
        std::thread::Builder::new()
            .name("pipe-reaper".into())
            .spawn(move || reaper.reap_forever())
            .expect("spawn pipe-reaper thread");
        w
    }

    pub fn park(&self, tid: u32, reply: ReplyData) {
        self.parked.lock().push(Parked { tid, reply });
        self.wake.notify_one();
    }

    pub fn len(&self) -> usize {
        self.parked.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn reap_forever(&self) {
        let mut parked = self.parked.lock();
        loop {
            if parked.is_empty() {
                self.wake.wait(&mut parked);
                continue;
            }
            let (gone, keep): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut *parked)
                .into_iter()
                .partition(|p| interrupted(p.tid));
            *parked = keep;
            for p in gone {
                p.reply.error(Errno::EINTR);
            }
            self.wake.wait_for(&mut parked, Duration::from_millis(50));
        }
    }
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
