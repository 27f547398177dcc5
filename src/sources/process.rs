//! Process lifecycle events from the kernel's netlink process connector
//! (`NETLINK_CONNECTOR`, `CN_IDX_PROC`), turned into the values of real catalog events:
//! fork → `sched:sched_process_fork`, exec → `sched:sched_process_exec`, exit →
//! `sched:sched_process_exit`, comm (prctl `PR_SET_NAME`, `/proc/<pid>/comm` writes) →
//! `task:task_rename`. The connector carries pids, the CPU and a `CLOCK_MONOTONIC` stamp; the
//! strings come from `/proc` as soon as a message is read, and from a bounded pid→comm cache
//! kept in event order (so an exit still knows its comm). Approximations, all documented on
//! [`ProcEvent`]: a comm nobody could read is `<...>`, as the kernel prints unknown comms.
//! [`process_event`] commits each message's record to the trace arrays.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::events::registry::Registry;
use crate::trace::commit::{Writer, broadcast, common};
use crate::trace::record;

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const EV_NONE: u32 = 0;
const EV_FORK: u32 = 1;
const EV_EXEC: u32 = 2;
const EV_COMM: u32 = 0x200;
const EV_EXIT: u32 = 0x8000_0000;
const UNKNOWN_COMM: &str = "<...>";
/// The kernel's `prio` of a SCHED_NORMAL nice-0 task, used when no `/proc` value was seen.
const DEFAULT_PRIO: i32 = 120;
const CACHE_MAX: usize = 1 << 16;

/// A field value for the daemon's record builder (strings without the trailing NUL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Int(i64),
    Str(Vec<u8>),
}

/// Where and when the kernel sent the message: `smp_processor_id()` and `ktime_get_ns()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub cpu: u32,
    pub timestamp_ns: u64,
}

/// One process event. pids are kernel pids (thread ids), tgids process ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcEvent {
    /// `parent_*` are the connector's (the child's `real_parent`); `parent_comm`/`child_comm`
    /// are the comm of the forking task as last known (cache, else `/proc`), which the kernel
    /// copies into the child. For a thread (`child_pid != child_tgid`) the connector names the
    /// process's parent, not the creating thread, so the tracepoint's parent is approximated by
    /// the group leader (`child_tgid`); `CLONE_PARENT` forks cannot be told apart.
    Fork {
        parent_pid: i32,
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
        parent_comm: String,
        child_comm: String,
    },
    /// `filename` approximates `bprm->filename` (see [`exec_filename`]); empty if the task was
    /// reaped before `/proc` could be read. `comm` is the comm after exec.
    Exec {
        pid: i32,
        tgid: i32,
        filename: String,
        comm: String,
    },
    /// `prio` is `/proc/<pid>/stat` priority + 100 if still readable, else the value cached at
    /// exec, else 120. `group_dead`: no other thread of the group is alive (not Z/X) when the
    /// message is processed — the kernel decides it at the exit itself.
    Exit {
        pid: i32,
        tgid: i32,
        exit_code: u32,
        exit_signal: u32,
        comm: String,
        prio: i32,
        group_dead: bool,
    },
    /// `old_comm` from the cache (None if the task was never seen); `oom_score_adj` from `/proc`
    /// (0 if gone). The connector does not report exec's own rename, so neither do we.
    Comm {
        pid: i32,
        tgid: i32,
        old_comm: Option<String>,
        new_comm: String,
        oom_score_adj: i16,
    },
}

impl ProcEvent {
    /// The catalog event this becomes: (system, name).
    pub fn event(&self) -> (&'static str, &'static str) {
        match self {
            ProcEvent::Fork { .. } => ("sched", "sched_process_fork"),
            ProcEvent::Exec { .. } => ("sched", "sched_process_exec"),
            ProcEvent::Exit { .. } => ("sched", "sched_process_exit"),
            ProcEvent::Comm { .. } => ("task", "task_rename"),
        }
    }

    /// The task that was `current` when the kernel's tracepoint fired (for a thread's fork,
    /// the group leader stands in for the unknown creating thread).
    pub fn common_pid(&self) -> i32 {
        match *self {
            ProcEvent::Fork {
                parent_pid: p,
                child_pid: c,
                child_tgid: t,
                ..
            } => {
                if c == t {
                    p
                } else {
                    t
                }
            }
            ProcEvent::Exec { pid, .. } | ProcEvent::Exit { pid, .. } => pid,
            ProcEvent::Comm { pid, .. } => pid,
        }
    }

    /// The process (tgid) whose action caused the event, for [`Options::skip_tgid`].
    fn causer_tgid(&self) -> i32 {
        match *self {
            ProcEvent::Fork {
                parent_tgid: p,
                child_pid: c,
                child_tgid: t,
                ..
            } => {
                if c == t {
                    p
                } else {
                    t
                }
            }
            ProcEvent::Exec { tgid, .. } | ProcEvent::Exit { tgid, .. } => tgid,
            ProcEvent::Comm { tgid, .. } => tgid,
        }
    }

    /// The event's fields (format names), in format order.
    pub fn fields(&self) -> Vec<(&'static str, FieldValue)> {
        let s = |v: &str| FieldValue::Str(v.as_bytes().to_vec());
        let i = |v: i32| FieldValue::Int(v.into());
        match self {
            ProcEvent::Fork {
                child_pid: c,
                parent_comm: pc,
                child_comm: cc,
                ..
            } => vec![
                ("parent_comm", s(pc)),
                ("parent_pid", i(self.common_pid())),
                ("child_comm", s(cc)),
                ("child_pid", i(*c)),
            ],
            // old_pid differs from pid only when a non-leader thread execs; the connector
            // reports the pid after de_thread(), so old_pid = pid is an approximation.
            ProcEvent::Exec { pid, filename, .. } => {
                vec![
                    ("filename", s(filename)),
                    ("pid", i(*pid)),
                    ("old_pid", i(*pid)),
                ]
            }
            ProcEvent::Exit {
                pid,
                comm,
                prio: p,
                group_dead: g,
                ..
            } => vec![
                ("comm", s(comm)),
                ("pid", i(*pid)),
                ("prio", i(*p)),
                ("group_dead", i((*g).into())),
            ],
            ProcEvent::Comm {
                pid,
                old_comm: o,
                new_comm: n,
                oom_score_adj: a,
                ..
            } => vec![
                ("pid", i(*pid)),
                ("oldcomm", s(o.as_deref().unwrap_or(UNKNOWN_COMM))),
                ("newcomm", s(n)),
                ("oom_score_adj", i((*a).into())),
            ],
        }
    }
}

/// A parsed connector message: an event (strings/prio still to be filled) or an ack.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Msg {
    Ack(u32, u32),
    Event(ProcEvent),
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// Parses one datagram: any number of `nlmsghdr`+`cn_msg`+`proc_event`; foreign connector
/// messages, unknown `what`s and truncated tails are skipped. Returns (meta, cn seq, message).
fn parse(buf: &[u8]) -> Vec<(Meta, u32, Msg)> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Some(len) = u32_at(buf, off).map(|l| l as usize) {
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            break;
        }
        out.extend(parse_cn(&buf[off + NLMSG_HDRLEN..off + len]));
        off += (len + 3) & !3;
    }
    out
}

fn parse_cn(m: &[u8]) -> Option<(Meta, u32, Msg)> {
    if (u32_at(m, 0)?, u32_at(m, 4)?) != (CN_IDX_PROC, CN_VAL_PROC) {
        return None;
    }
    let (seq, ack) = (u32_at(m, 8)?, u32_at(m, 12)?);
    let dlen = u16::from_ne_bytes(m.get(16..18)?.try_into().ok()?) as usize;
    let ev = m.get(CN_MSG_LEN..CN_MSG_LEN + dlen)?;
    let timestamp_ns = u64::from_ne_bytes(ev.get(8..16)?.try_into().ok()?);
    let meta = Meta {
        cpu: u32_at(ev, 4)?,
        timestamp_ns,
    };
    let d = ev.get(16..)?;
    let w = |i: usize| u32_at(d, 4 * i);
    let (pid, tgid, s) = (w(0)? as i32, w(1)? as i32, String::new());
    let msg = match u32_at(ev, 0)? {
        EV_NONE => Msg::Ack(ack, w(0)?),
        EV_FORK => Msg::Event(ProcEvent::Fork {
            parent_pid: pid,
            parent_tgid: tgid,
            child_pid: w(2)? as i32,
            child_tgid: w(3)? as i32,
            parent_comm: s.clone(),
            child_comm: s,
        }),
        EV_EXEC => Msg::Event(ProcEvent::Exec {
            pid,
            tgid,
            filename: s.clone(),
            comm: s,
        }),
        EV_COMM => {
            let c = d.get(8..24)?;
            let c = &c[..c.iter().position(|&b| b == 0).unwrap_or(16)];
            let new_comm = String::from_utf8_lossy(c).into();
            let (old_comm, oom_score_adj) = (None, 0);
            Msg::Event(ProcEvent::Comm {
                pid,
                tgid,
                old_comm,
                new_comm,
                oom_score_adj,
            })
        }
        EV_EXIT => Msg::Event(ProcEvent::Exit {
            pid,
            tgid,
            exit_code: w(2)?,
            exit_signal: w(3)?,
            comm: s,
            prio: DEFAULT_PRIO,
            group_dead: false,
        }),
        _ => return None,
    };
    Some((meta, seq, msg))
}

/// Fills events' strings and guesses from `/proc` and the pid→(comm, prio) cache.
pub(crate) struct Resolver {
    proc: PathBuf,
    cache: HashMap<i32, (String, Option<i32>)>,
}

/// (comm, prio, state) from `<proc>/<pid>/stat`; prio is the kernel's (`stat` shows prio-100).
fn read_stat(proc: &Path, pid: i32) -> Option<(String, i32, char)> {
    let s = std::fs::read(proc.join(pid.to_string()).join("stat")).ok()?;
    let open = s.iter().position(|&b| b == b'(')?;
    let close = s.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(s.get(open + 1..close)?).into_owned();
    let rest = String::from_utf8_lossy(s.get(close + 2..)?).into_owned();
    let f: Vec<&str> = rest.split(' ').collect();
    // fields after comm start at #3 (state); priority is #18.
    Some((
        comm,
        f.get(15)?.parse::<i32>().ok()? + 100,
        f.first()?.chars().next()?,
    ))
}

/// `bprm->filename` (the path as passed to execve) as closely as the kernel's own publications
/// allow: only `/proc/<pid>/{exe,cwd}` are read as links and `/proc/<pid>/cmdline` as text;
/// no path of the task is ever looked up (that would be a lookup in whatever file system the
/// task's cwd or argv names, another FUSE mount included). In order:
/// - argv[0] as given, when its basename (truncated to 15 bytes) is the new comm — the kernel
///   derives comm from the filename's basename — and it is a path (`/bin/sleep`, `./prog`) or,
///   a bare name, names `exe` relative to `cwd`. A caller that passes such an argv[0] for a
///   different file (`exec -a /x/prog prog`) is named by its argv[0];
/// - argv[1] or argv[2] whose basename is the comm while `exe`'s is not: a `#!` script, whose
///   argv the kernel rewrites to `interp [arg] filename …`;
/// - the `exe` link: the kernel's filename with symlinks resolved, the full path where the
///   caller searched PATH itself and passed a bare argv[0] (`ls` → `/usr/bin/ls`);
/// - for a task already exited (a zombie has no exe/cmdline), the comm.
fn exec_filename(proc: &Path, pid: i32, comm: &str) -> String {
    let dir = proc.join(pid.to_string());
    let link = |name| {
        std::fs::read_link(dir.join(name)).ok().map(|p| {
            let s = p.to_string_lossy().into_owned();
            s.strip_suffix(" (deleted)").map(str::to_owned).unwrap_or(s)
        })
    };
    let Some(exe) = link("exe") else {
        return comm.to_owned();
    };
    let is_comm = |a: &str| {
        let base = a.rsplit('/').next().unwrap_or(a).as_bytes();
        !a.is_empty() && base.get(..base.len().min(15)) == Some(comm.as_bytes())
    };
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .take(3)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if let Some(a0) = argv.first().filter(|a| is_comm(a)) {
        let cwd = link("cwd").unwrap_or_default();
        if a0.contains('/') || lexical_join(&cwd, a0) == exe {
            return a0.clone();
        }
    }
    if !is_comm(&exe)
        && let Some(script) = argv.iter().skip(1).find(|a| is_comm(a))
    {
        return script.clone();
    }
    exe
}

/// `rel` resolved against the directory `base` by text alone (`.`, `..`, repeated `/`), as
/// the kernel would resolve it if no component were a symlink.
fn lexical_join(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let whole = if rel.starts_with('/') {
        rel.to_owned()
    } else {
        format!("{base}/{rel}")
    };
    for c in whole.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Resolver {
    pub(crate) fn new(proc: impl Into<PathBuf>) -> Self {
        Resolver {
            proc: proc.into(),
            cache: HashMap::new(),
        }
    }

    fn remember(&mut self, pid: i32, v: (String, Option<i32>)) {
        if self.cache.len() >= CACHE_MAX && !self.cache.contains_key(&pid) {
            self.cache.clear();
        }
        self.cache.insert(pid, v);
    }

    fn stat(&self, pid: i32) -> (String, Option<i32>) {
        let s = read_stat(&self.proc, pid);
        s.map_or((UNKNOWN_COMM.into(), None), |(c, p, _)| (c, Some(p)))
    }

    /// Whether no thread of `tgid` but `pid` is still alive (a missing group counts as dead).
    fn group_dead(&self, pid: i32, tgid: i32) -> bool {
        let task = self.proc.join(tgid.to_string()).join("task");
        let Ok(rd) = std::fs::read_dir(&task) else {
            return true;
        };
        let mut tids = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
        !tids.any(|t| t != pid && read_stat(&task, t).is_some_and(|s| !matches!(s.2, 'Z' | 'X')))
    }

    pub(crate) fn fill(&mut self, ev: &mut ProcEvent) {
        let forker = ev.common_pid();
        match ev {
            ProcEvent::Fork {
                child_pid,
                parent_comm,
                child_comm,
                ..
            } => {
                let known = self.cache.get(&forker).cloned();
                let (comm, prio) = known.unwrap_or_else(|| self.stat(forker));
                self.remember(forker, (comm.clone(), prio));
                self.remember(*child_pid, (comm.clone(), prio));
                (*parent_comm, *child_comm) = (comm.clone(), comm);
            }
            ProcEvent::Exec {
                pid,
                filename,
                comm,
                ..
            } => {
                let (c, prio) = self.stat(*pid);
                if prio.is_some() {
                    *filename = exec_filename(&self.proc, *pid, &c);
                }
                self.remember(*pid, (c.clone(), prio));
                *comm = c;
            }
            ProcEvent::Comm {
                pid,
                old_comm,
                new_comm,
                oom_score_adj,
                ..
            } => {
                let old = self.cache.get(pid).cloned();
                self.remember(*pid, (new_comm.clone(), old.as_ref().and_then(|o| o.1)));
                *old_comm = old.map(|o| o.0);
                let f = self.proc.join(pid.to_string()).join("oom_score_adj");
                let adj = std::fs::read_to_string(f)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                *oom_score_adj = adj.unwrap_or(0);
            }
            ProcEvent::Exit {
                pid,
                tgid,
                comm,
                prio,
                group_dead,
                ..
            } => {
                *group_dead = self.group_dead(*pid, *tgid);
                let fresh = Some(self.stat(*pid)).filter(|f| f.1.is_some());
                let cached = self.cache.remove(pid);
                let p = fresh
                    .as_ref()
                    .and_then(|f| f.1)
                    .or(cached.as_ref().and_then(|c| c.1));
                *prio = p.unwrap_or(DEFAULT_PRIO);
                *comm = cached.or(fresh).map_or(UNKNOWN_COMM.into(), |c| c.0);
            }
        }
    }
}

/// Listener options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Drop events caused by this process (tgid), e.g. the daemon itself. Default: none.
    pub skip_tgid: Option<i32>,
}

/// Counters shared with the listener thread.
#[derive(Debug, Default)]
pub struct Stats {
    /// `ENOBUFS` from recv: the socket overflowed (the pid→comm cache is reset then).
    pub overruns: AtomicU64,
    /// Messages missed, from gaps in the kernel's per-CPU sequence numbers.
    pub lost: AtomicU64,
}

/// The running listener thread; stops (and unsubscribes) on [`Listener::stop`] or drop.
pub struct Listener {
    wake: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Stats>,
}

impl Listener {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Wakes the thread, which sends `PROC_CN_MCAST_IGNORE`, closes the socket and ends.
    pub fn stop(&mut self) {
        if let Some(w) = self.wake.take() {
            // SAFETY: writes one byte from a valid buffer to an open pipe.
            unsafe { libc::write(w.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn send_op(sock: &OwnedFd, op: u32, ack: u32) -> io::Result<()> {
    let mut m = Vec::with_capacity(NLMSG_HDRLEN + CN_MSG_LEN + 4);
    m.extend(((NLMSG_HDRLEN + CN_MSG_LEN + 4) as u32).to_ne_bytes());
    m.extend((libc::NLMSG_DONE as u16).to_ne_bytes());
    m.extend([0u8; 10]); // flags, seq, pid
    for v in [CN_IDX_PROC, CN_VAL_PROC, 0, ack] {
        m.extend(v.to_ne_bytes());
    }
    m.extend(4u16.to_ne_bytes());
    m.extend([0u8; 2]);
    m.extend(op.to_ne_bytes());
    // SAFETY: a valid buffer of m.len() bytes; MSG_NOSIGNAL-free send on a netlink socket.
    cvt(unsafe { libc::send(sock.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) } as libc::c_int)
        .map(drop)
}

fn open_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscalls on a fresh descriptor we own; the structs are zero-initialised.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_CONNECTOR,
        ))?;
        let sock = OwnedFd::from_raw_fd(fd);
        let size: libc::c_int = 8 << 20;
        let p = (&size as *const libc::c_int).cast();
        let n = size_of::<libc::c_int>() as libc::socklen_t;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, n) < 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, n);
        }
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        let alen = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        cvt(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            alen,
        ))?;
        Ok(sock)
    }
}

/// [`spawn_with`] with default options.
pub fn spawn(cb: impl Fn(Meta, ProcEvent) + Send + 'static) -> io::Result<Listener> {
    spawn_with(Options::default(), cb)
}

/// Subscribes and starts the `proc-events` thread, which calls `cb` for every event. Returns
/// once the kernel acknowledged the subscription, or its error (EPERM, no connector, no ack
/// within 2 s — e.g. outside the initial pid/user namespace, where the kernel stays silent).
pub fn spawn_with(
    opts: Options,
    cb: impl Fn(Meta, ProcEvent) + Send + 'static,
) -> io::Result<Listener> {
    let sock = open_socket()?;
    let mut p = [0; 2];
    // SAFETY: p has room for the two descriptors pipe2 returns; we take ownership at once.
    cvt(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let (wake_r, wake_w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ack = std::process::id() ^ nanos.subsec_nanos().rotate_left(16);
    send_op(&sock, PROC_CN_MCAST_LISTEN, ack)?;
    let (tx, rx) = mpsc::channel();
    let stats = Arc::new(Stats::default());
    let st = stats.clone();
    let thread = std::thread::Builder::new()
        .name("proc-events".into())
        .spawn(move || run(sock, wake_r, opts, (ack, tx), &st, cb))?;
    let mut l = Listener {
        wake: Some(wake_w),
        thread: Some(thread),
        stats,
    };
    match rx.recv() {
        Ok(Ok(())) => Ok(l),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            l.stop();
            Err(io::Error::other("proc-events thread ended"))
        }
    }
}

/// Answers `spawn_with` once (ack, error or timeout); false if it had already been answered.
fn settle(w: &mut Option<mpsc::Sender<io::Result<()>>>, r: io::Result<()>) -> bool {
    w.take().map(|tx| tx.send(r)).is_some()
}

fn run(
    sock: OwnedFd,
    wake: OwnedFd,
    opts: Options,
    (ack, tx): (u32, mpsc::Sender<io::Result<()>>),
    stats: &Stats,
    cb: impl Fn(Meta, ProcEvent),
) {
    let (mut res, mut next_seq) = (Resolver::new("/proc"), HashMap::<u32, u32>::new());
    let (mut waiting, deadline) = (Some(tx), Instant::now() + Duration::from_secs(2));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        let fd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [fd(sock.as_raw_fd()), fd(wake.as_raw_fd())];
        // SAFETY: fds is a valid array of two pollfds.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                2,
                if waiting.is_some() { left } else { -1 },
            )
        };
        if fds[1].revents != 0 {
            break;
        }
        let (p, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: buf is valid for len bytes.
        let got = unsafe { libc::recv(sock.as_raw_fd(), p, len, libc::MSG_DONTWAIT) };
        let got = match got {
            _ if n == 0 => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no proc connector ack",
            )),
            g if g < 0 => Err(io::Error::last_os_error()),
            g => Ok(g as usize),
        };
        let got = match got {
            Ok(g) => g,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                stats.overruns.fetch_add(1, Relaxed);
                res.cache.clear();
                settle(&mut waiting, Ok(())); // the ack may have been dropped with the rest
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            Err(e) => {
                let msg = e.to_string();
                if !settle(&mut waiting, Err(e)) {
                    tracing::warn!("proc connector: {msg}");
                }
                break;
            }
        };
        for (meta, seq, msg) in parse(&buf[..got]) {
            if let Some(exp) = next_seq.insert(meta.cpu, seq.wrapping_add(1)) {
                let gap = seq.wrapping_sub(exp);
                if gap < 1 << 20 {
                    stats.lost.fetch_add(gap.into(), Relaxed);
                }
            }
            match msg {
                Msg::Ack(a, 0) if a == ack.wrapping_add(1) => drop(settle(&mut waiting, Ok(()))),
                Msg::Ack(a, err) if a == ack.wrapping_add(1) && waiting.is_some() => {
                    settle(&mut waiting, Err(io::Error::from_raw_os_error(err as i32)));
                    return;
                }
                Msg::Ack(..) => {}
                Msg::Event(mut ev) if opts.skip_tgid != Some(ev.causer_tgid()) => {
                    res.fill(&mut ev);
                    cb(meta, ev);
                }
                Msg::Event(_) => {}
            }
        }
    }
    let _ = send_op(&sock, PROC_CN_MCAST_IGNORE, ack);
}

/// `event-fork`: a forked child of a `set_event_pid` task joins the list.
const EVENT_FORK: usize = crate::trace::state::option_index("event-fork");

/// One message of the process connector (§4 of ecosystem-tools.md): the saved comms follow
/// it, then its record goes to every trace array with the event enabled (`event-fork` adds a
/// forked child of a `set_event_pid` task to the list, as the kernel does).
pub fn process_event(reg: &Registry, meta: Meta, pe: &ProcEvent) {
    use ProcEvent as P;
    let cap = reg.top.state.lock().saved_cmdlines_size as usize;
    match pe {
        P::Exec { pid, comm, .. } => reg.tasks.set_comm(*pid, comm, cap),
        P::Comm { pid, new_comm, .. } => reg.tasks.set_comm(*pid, new_comm, cap),
        P::Fork {
            child_pid,
            child_comm,
            parent_pid,
            ..
        } => {
            reg.tasks.set_comm(*child_pid, child_comm, cap);
            for ta in reg.trace_arrays() {
                let mut st = ta.state.lock();
                if st.options[EVENT_FORK] && st.event_pids.contains(&(*parent_pid as u32)) {
                    st.event_pids.insert(*child_pid as u32);
                }
            }
        }
        P::Exit { .. } => {}
    }
    let (system, name) = pe.event();
    let Some(ev) = reg.find_event(system, name) else {
        return;
    };
    let w = Writer {
        pid: pe.common_pid(),
        cpu: (meta.cpu as usize).min(reg.ncpu.saturating_sub(1)),
        preempt: 0,
    };
    let values: Vec<(&str, record::Value)> = pe
        .fields()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Int(i) => record::Value::Int(i128::from(i)),
                FieldValue::Str(b) => record::Value::Str(b.into()),
            };
            (k, v)
        })
        .collect();
    match ev.layout().record.build(&common(&ev, w), &values) {
        Ok(rec) => broadcast(reg, &ev, &rec, w, meta.timestamp_ns),
        Err(e) => tracing::debug!(%e, system, name, "process event not recorded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nlmsghdr + cn_msg + proc_event{what, cpu, timestamp_ns, data} (the union is 24 bytes).
    fn msg(what: u32, cpu: u32, seq: u32, data: &[u8]) -> Vec<u8> {
        let mut ev = [what, cpu, 1000 + seq, 0].map(u32::to_ne_bytes).concat();
        ev.extend(data);
        ev.resize(16 + 24, 0);
        let len = (NLMSG_HDRLEN + CN_MSG_LEN + ev.len()) as u32;
        let mut m = [len, 3, 0, 0, 1, 1, seq, 0].map(u32::to_ne_bytes).concat();
        m.extend([(ev.len() as u16).to_ne_bytes(), [0, 0]].concat());
        m.extend(ev);
        m
    }
    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }
    fn ev(m: &(Meta, u32, Msg)) -> &ProcEvent {
        match &m.2 {
            Msg::Event(e) => e,
            Msg::Ack(..) => panic!("ack"),
        }
    }

    #[test]
    fn parses_each_kind_and_several_per_datagram() {
        let mut buf = msg(EV_FORK, 3, 9, &ints(&[1, 1, 42, 42]));
        buf.extend(msg(EV_EXEC, 0, 1, &ints(&[42, 42])));
        buf.extend(msg(4 /* UID: ignored */, 0, 2, &ints(&[42, 42, 0, 0])));
        buf.extend(msg(
            EV_COMM,
            1,
            0,
            &[ints(&[7, 5]), b"worker\0".to_vec()].concat(),
        ));
        buf.extend(msg(EV_EXIT, 2, 0, &ints(&[42, 42, 256, 17, 1, 1])));
        buf.extend(&msg(EV_EXIT, 2, 1, &ints(&[1, 1, 0, 0]))[..30]); // truncated tail
        let p = parse(&buf);
        assert_eq!(p.len(), 4);
        assert_eq!(
            (p[0].0, p[0].1),
            (
                Meta {
                    cpu: 3,
                    timestamp_ns: 1009
                },
                9
            )
        );
        assert!(matches!(
            ev(&p[0]),
            ProcEvent::Fork {
                parent_pid: 1,
                child_pid: 42,
                ..
            }
        ));
        assert!(matches!(
            ev(&p[1]),
            ProcEvent::Exec {
                pid: 42,
                tgid: 42,
                ..
            }
        ));
        assert!(
            matches!(ev(&p[2]), ProcEvent::Comm { pid: 7, tgid: 5, new_comm, .. } if new_comm == "worker")
        );
        let e = ev(&p[3]);
        assert!(matches!(
            e,
            ProcEvent::Exit {
                pid: 42,
                exit_code: 256,
                exit_signal: 17,
                ..
            }
        ));
        assert_eq!(
            (e.event(), e.common_pid()),
            (("sched", "sched_process_exit"), 42)
        );
        let mut ack = msg(EV_NONE, u32::MAX, 0, &ints(&[1]));
        ack[28..32].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(parse(&ack)[0].2, Msg::Ack(8, 1));
        for cut in 0..buf.len() {
            parse(&buf[..cut]); // never panics
        }
    }

    #[test]
    fn fills_from_a_fake_proc() {
        let root = std::env::temp_dir().join(format!("procev-{}", std::process::id()));
        let p = root.join("100");
        std::fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::symlink("/bin/sh", p.join("exe")).unwrap();
        std::os::unix::fs::symlink(&root, p.join("cwd")).unwrap();
        let stat = "100 (s.sh) R 1 100 100 0 -1 0 0 0 0 0 0 0 0 0 21 0 1 0 5";
        std::fs::write(p.join("stat"), stat).unwrap();
        std::fs::write(p.join("cmdline"), "/bin/sh\0./s.sh\0arg\0").unwrap();
        let mut r = Resolver::new(&root);
        let mut fill = |m: Vec<u8>| {
            let Msg::Event(mut e) = parse(&m).remove(0).2 else {
                panic!()
            };
            r.fill(&mut e);
            e.fields()
        };
        let (s, i) = (|v: &str| FieldValue::Str(v.into()), FieldValue::Int);
        // a #! script: bprm->filename is argv[1], not the interpreter
        let exec = fill(msg(EV_EXEC, 0, 0, &ints(&[100, 100])));
        assert_eq!(
            exec,
            [
                ("filename", s("./s.sh")),
                ("pid", i(100)),
                ("old_pid", i(100))
            ]
        );
        let fork = fill(msg(EV_FORK, 0, 0, &ints(&[100, 100, 101, 101])));
        assert_eq!(
            fork[1..3],
            [("parent_pid", i(100)), ("child_comm", s("s.sh"))]
        );
        let fork = fill(msg(EV_FORK, 0, 0, &ints(&[100, 100, 102, 101])));
        assert_eq!(
            fork[..2],
            [("parent_comm", s("s.sh")), ("parent_pid", i(101))]
        );
        let mut comm = [ints(&[101, 101]), b"renamed".to_vec()].concat();
        let rename = fill(msg(EV_COMM, 0, 0, &comm));
        assert_eq!(
            rename[1..3],
            [("oldcomm", s("s.sh")), ("newcomm", s("renamed"))]
        );
        let exit = fill(msg(EV_EXIT, 0, 0, &ints(&[101, 101, 0, 17])));
        let want = [("comm", s("renamed")), ("pid", i(101)), ("prio", i(121))];
        assert_eq!((&exit[..3], &exit[3]), (&want[..], &("group_dead", i(1))));
        comm[..4].copy_from_slice(&555i32.to_ne_bytes());
        assert_eq!(fill(msg(EV_COMM, 0, 0, &comm))[1], ("oldcomm", s("<...>")));
        let ghost = fill(msg(EV_EXIT, 0, 0, &ints(&[556, 556, 9, 0])));
        assert_eq!(
            ghost[..3],
            [("comm", s("<...>")), ("pid", i(556)), ("prio", i(120))]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn exec_filename_from_links_and_cmdline_only() {
        let root = std::env::temp_dir().join(format!("procexe-{}", std::process::id()));
        // (exe link, cwd link, cmdline, comm, expected filename); no target exists anywhere.
        let cases = [
            ("/x/y/prog", "/x/y", "./prog\0-v\0", "prog", "./prog"),
            ("/x/prog", "/x/y", "../y/../prog\0", "prog", "../y/../prog"),
            ("/x/prog", "/x", "prog\0", "prog", "prog"),
            (
                "/usr/bin/prog",
                "/x",
                "/usr//bin/./prog\0",
                "prog",
                "/usr//bin/./prog",
            ),
            // through symlinks (/bin -> usr/bin, /bin/sh -> dash): as passed, like the kernel
            (
                "/usr/bin/sleep",
                "/x",
                "/bin/sleep\x001\0",
                "sleep",
                "/bin/sleep",
            ),
            ("/usr/bin/dash", "/x", "/bin/sh\0-c\0", "sh", "/bin/sh"),
            // PATH searched by the caller: argv[0] is only the name.
            ("/usr/bin/prog", "/x", "prog\0", "prog", "/usr/bin/prog"),
            // a free-form argv[0] that is not the comm
            ("/usr/bin/bash", "/x", "-bash\0", "bash", "/usr/bin/bash"),
            // a #! script run by its interpreter
            (
                "/usr/bin/dash",
                "/x",
                "/bin/sh\0./s.sh\0a\0",
                "s.sh",
                "./s.sh",
            ),
            (
                "/usr/bin/env",
                "/x",
                "/usr/bin/env\0-S\0/x/s.py\0",
                "s.py",
                "/x/s.py",
            ),
            // an interpreter running a file that merely shares the comm's name
            (
                "/usr/bin/prog",
                "/x",
                "prog\0prog\0",
                "prog",
                "/usr/bin/prog",
            ),
            ("/x/prog (deleted)", "/x", "./prog\0", "prog", "./prog"),
        ];
        for (pid, (exe, cwd, cmdline, comm, want)) in cases.iter().enumerate() {
            let p = root.join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            std::os::unix::fs::symlink(exe, p.join("exe")).unwrap();
            std::os::unix::fs::symlink(cwd, p.join("cwd")).unwrap();
            std::fs::write(p.join("cmdline"), cmdline).unwrap();
            assert_eq!(exec_filename(&root, pid as i32, comm), *want, "{cmdline:?}");
        }
        // A task already gone: the comm.
        assert_eq!(exec_filename(&root, 999, "gone"), "gone");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn live_fork_exec_exit() {
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let mut l = match spawn(move |m, e| drop(tx.lock().unwrap().send((m, e)))) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return eprintln!("skipped: {e}"),
            Err(e) => panic!("{e}"),
        };
        let mut cmd = std::process::Command::new("/bin/sh");
        let child = cmd.args(["-c", "exec /bin/true"]).spawn().unwrap();
        let pid = child.id() as i32;
        let (mut fork, mut exec, mut exit) = (false, false, false);
        let deadline = Instant::now() + Duration::from_secs(3);
        while !(fork && exec && exit) && Instant::now() < deadline {
            let Ok((m, e)) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            assert!(m.timestamp_ns > 0);
            match e {
                ProcEvent::Fork { child_pid, .. } if child_pid == pid => fork = true,
                ProcEvent::Exec {
                    pid: p,
                    filename: f,
                    ..
                } if p == pid => exec = exec || f.ends_with("true"),
                ProcEvent::Exit { pid: p, .. } if p == pid => exit = true,
                _ => {}
            }
        }
        let _ = child.wait_with_output();
        assert!(fork && exec && exit, "fork={fork} exec={exec} exit={exit}");
        l.stop();
    }
}
