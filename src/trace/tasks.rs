//! The tasks records name: pid → comm (`saved_cmdlines`) and pid → tgid (`saved_tgids`), as
//! the kernel keeps them for the `trace` text. Shared by every trace array, like the kernel's.
//!
//! The kernel saves a task's comm while it runs with command recording on; a userspace daemon
//! learns it the first time a pid records, from what sources saw (`hint`: a record's comm
//! fields) or else from `/proc/<pid>/comm` (once: a pid whose /proc
//! cannot be read is not asked again), and from the process connector (exec, comm changes)
//! after that.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use parking_lot::Mutex;

/// The kernel's `saved_cmdlines_size` default.
pub const DEFAULT_CMDLINES: usize = 128;

#[derive(Default)]
struct Inner {
    comms: HashMap<i32, Box<str>>,
    /// Pids in the order their comm was saved; the oldest is recycled past the capacity.
    order: VecDeque<i32>,
    tgids: HashMap<i32, i32>,
    /// Comms learned from records and the process connector (`hint`), for pids that have not
    /// recorded yet: a task's first record takes its comm from here, not from /proc.
    hints: HashMap<i32, Box<str>>,
    /// Pids whose /proc comm could not be read (gone): not tried again per record.
    unreadable: std::collections::HashSet<i32>,
}

/// Most hints and unreadable pids kept (both are reset past it).
const KNOWN_MAX: usize = 1 << 16;

#[derive(Default)]
pub struct Tasks {
    inner: Mutex<Inner>,
}

impl Tasks {
    /// Is a comm saved for `pid` (or is it the idle task, which needs none)?
    pub fn knows(&self, pid: i32) -> bool {
        pid <= 0 || self.inner.lock().comms.contains_key(&pid)
    }

    /// Saves the comm of `pid` if it is not known yet (read from /proc), keeping at most `cap`.
    pub fn save(&self, pid: i32, cap: usize) {
        let hint = {
            let t = self.inner.lock();
            if pid <= 0 || t.comms.contains_key(&pid) || t.unreadable.contains(&pid) {
                return;
            }
            t.hints.get(&pid).cloned()
        };
        if let Some(comm) = hint {
            return self.set_comm(pid, &comm, cap);
        }
        // Read outside the lock: /proc can be slow and many writers share this table.
        match proc_comm(pid) {
            Some(comm) => self.set_comm(pid, &comm, cap),
            None => {
                let mut t = self.inner.lock();
                if t.unreadable.len() >= KNOWN_MAX {
                    t.unreadable.clear();
                }
                t.unreadable.insert(pid);
            }
        }
    }

    /// A source saw `pid` named `comm` (a record's comm field): used when `pid` first
    /// records. It never replaces a saved comm: a late source's record may be older than the
    /// exec or rename the process connector already reported.
    pub fn hint(&self, pid: i32, comm: &str) {
        let mut t = self.inner.lock();
        t.unreadable.remove(&pid);
        if t.hints.len() >= KNOWN_MAX {
            t.hints.clear();
        }
        t.hints.insert(pid, comm.into());
    }

    /// Records `comm` for `pid` (exec, rename, or a first sighting).
    pub fn set_comm(&self, pid: i32, comm: &str, cap: usize) {
        let mut t = self.inner.lock();
        if t.comms.insert(pid, comm.into()).is_none() {
            t.order.push_back(pid);
        }
        while t.order.len() > cap.max(1) {
            if let Some(old) = t.order.pop_front() {
                t.comms.remove(&old);
            }
        }
    }

    /// Saves the thread group of `pid` (the `record-tgid` option).
    pub fn save_tgid(&self, pid: i32) {
        if pid <= 0 || self.inner.lock().tgids.contains_key(&pid) {
            return;
        }
        if let Some(tgid) = proc_tgid(pid) {
            self.inner.lock().tgids.insert(pid, tgid);
        }
    }

    /// What `trace` shows for `pid`: `<idle>` for 0, the saved comm, or `<...>`.
    pub fn comm_of(&self, pid: i32, out: &mut String) {
        if pid == 0 {
            out.push_str("<idle>");
            return;
        }
        match self.inner.lock().comms.get(&pid) {
            Some(c) => out.push_str(c),
            None => out.push_str("<...>"),
        }
    }

    pub fn tgid(&self, pid: i32) -> Option<i32> {
        self.inner.lock().tgids.get(&pid).copied()
    }

    /// `saved_cmdlines`: `<pid> <comm>` lines.
    pub fn saved_cmdlines(&self) -> String {
        let t = self.inner.lock();
        let mut out = String::new();
        for pid in &t.order {
            if let Some(c) = t.comms.get(pid) {
                let _ = writeln!(out, "{pid} {c}");
            }
        }
        out
    }

    /// `saved_tgids`: `<pid> <tgid>` lines, by pid.
    pub fn saved_tgids(&self) -> String {
        let t = self.inner.lock();
        let mut pairs: Vec<_> = t.tgids.iter().map(|(p, g)| (*p, *g)).collect();
        pairs.sort_unstable();
        let mut out = String::new();
        for (pid, tgid) in pairs {
            let _ = writeln!(out, "{pid} {tgid}");
        }
        out
    }
}

/// The comm of task `pid` (a thread id works too), at most 15 bytes as the kernel keeps it.
pub fn proc_comm(pid: i32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim_end_matches('\n').to_string())
}

/// The thread group id of task `pid`.
pub fn proc_tgid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_comm_is_saved_and_recycled() {
        let t = Tasks::default();
        let me = std::process::id() as i32;
        t.save(me, 2);
        let mut s = String::new();
        t.comm_of(me, &mut s);
        assert_eq!(s, proc_comm(me).unwrap());
        t.set_comm(1_000_001, "a", 2);
        t.set_comm(1_000_002, "b", 2);
        let mut s = String::new();
        t.comm_of(me, &mut s);
        assert_eq!(s, "<...>", "oldest recycled");
        assert_eq!(t.saved_cmdlines(), "1000001 a\n1000002 b\n");
        let mut s = String::new();
        t.comm_of(0, &mut s);
        t.comm_of(7, &mut s);
        assert_eq!(s, "<idle><...>");
    }

    #[test]
    fn hints_name_tasks_proc_cannot() {
        let t = Tasks::default();
        // A pid no task has: /proc fails, and is not asked again.
        let gone = 4_000_000;
        t.save(gone, 8);
        assert!(!t.knows(gone));
        assert!(t.inner.lock().unreadable.contains(&gone));
        t.hint(gone, "sh");
        t.save(gone, 8);
        let mut s = String::new();
        t.comm_of(gone, &mut s);
        assert_eq!(s, "sh");
        // A late hint does not undo a saved comm (an exec the connector reported).
        t.hint(gone, "bash");
        assert_eq!(t.saved_cmdlines(), format!("{gone} sh\n"));
    }

    #[test]
    fn tgid_of_self() {
        let t = Tasks::default();
        let me = std::process::id() as i32;
        t.save_tgid(me);
        assert_eq!(t.tgid(me), Some(me));
        assert_eq!(t.saved_tgids(), format!("{me} {me}\n"));
    }
}
