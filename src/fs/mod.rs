//! The tracefs file set ([`files`]: what each file reads and accepts, no FUSE) and the FUSE
//! adapter on it (this module and the rest): maps kernel requests onto the registry and the
//! file set. No other room knows FUSE; the adapter reaches ring buffers only through the file set.
//!
//! Invariants kept here (see ARCHITECTURE.md):
//! - **No negative entry is ever cached.** A name that does not exist is answered with a plain
//!   `ENOENT` error (never an entry with inode 0 and a timeout), so the next lookup asks again.
//! - **Every lookup consults the registry under the searched directory's lock**, and holds it
//!   until the reply is sent, so a concurrent removal is ordered entirely before or after it.
//! - **Every inode is complete before it is named**: the node is recorded with all it needs
//!   and its attributes computed before the LOOKUP/READDIRPLUS reply goes out.
//! - **Positive entries are cached** (`--ttl`) because every removal invalidates them through
//!   the notifier thread ([`notify`]), never from a request handler.
//! - **Every change to a directory's children invalidates its cached listing before the change
//!   is acknowledged**: `invalidate_dynamic_then` (events created or deleted at run time) and
//!   `rmdir` (an instance's tree) queue the listings' `InvalInode`s ahead of the reply; mkdir
//!   and rmdir in `instances/` reset its listing in the kernel itself. No other directory's
//!   children ever change.

pub mod entry;
pub mod files;
pub mod hist;
pub mod nodes;
pub mod notify;
pub mod passthrough;
pub mod spin;
pub mod waiters;

use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::events::catalog::EventFile;
use crate::events::life::Life;
use crate::events::registry::{AttrOverride, Registry, RemovedEvent};
use crate::trace::state::TraceArray;
use entry::Entry;
use files::File;
use nodes::{Nodes, Times};

/// Counters a stress run or a person can read (see `stats_text`).
#[derive(Default)]
pub struct Counters {
    pub lookups: AtomicU64,
    pub lookup_misses: AtomicU64,
    pub forgets: AtomicU64,
    pub readdirs: AtomicU64,
    pub opens: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub write_errors: AtomicU64,
    pub parked_pipe_reads: AtomicU64,
    /// FLUSH requests (the first is answered ENOSYS, after which the kernel sends none).
    pub flushes: AtomicU64,
    /// Requests being handled right now (a deferred reply counts until it is handed over).
    pub in_flight: AtomicU64,
    /// Error replies by errno, for the kinds a stress run tells apart.
    pub errors: [AtomicU64; ERROR_KINDS.len() + 1],
}

/// The errnos counted one by one; everything else counts as `errors_other`.
pub const ERROR_KINDS: [(i32, &str); 10] = [
    (libc::ENOENT, "enoent"),
    (libc::EINVAL, "einval"),
    (libc::EPERM, "eperm"),
    (libc::EACCES, "eacces"),
    (libc::EBUSY, "ebusy"),
    (libc::EEXIST, "eexist"),
    (libc::ENODEV, "enodev"),
    (libc::ESTALE, "estale"),
    (libc::EIO, "eio"),
    (libc::EAGAIN, "eagain"),
];

/// Counts one request as in flight until dropped, then logs it (debug level).
struct InFlight<'a>(&'a Core, &'static str);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(op = self.1, "handled");
        // The reply is sent: this worker may wait here for the next request.
        self.0.spin.request_done();
    }
}

/// The longest name a tracefs directory entry may have.
const NAME_MAX: usize = 255;

/// The notifier's counters live for the whole process (the notifier thread holds them).
pub static NOTIFY_COUNTERS: notify::NotifyCounters = notify::NotifyCounters {
    sent: AtomicU64::new(0),
    pending: AtomicU64::new(0),
};

/// An open file: what it acts on and, for chunked reads, the content generated at offset 0.
impl Handle {
    /// Its trace array and the event or subsystem it acts on still exist.
    fn file_alive(&self) -> bool {
        self.ta.is_alive()
            && match &self.file {
                File::Event(e, _) => *e.life.read() == Life::Alive,
                File::System(s, _) => !s.events.read().removed,
                _ => true,
            }
    }
}

struct Handle {
    ta: Arc<TraceArray>,
    file: File,
    /// Pins `ta` (see `TraceArray::pin`) until released.
    pins: bool,
    snapshot: Mutex<Option<Arc<Vec<u8>>>>,
    /// A consuming read's output not yet handed out (the rest of a line or a raw page).
    pending: Mutex<Vec<u8>>,
}

/// The filesystem handed to the FUSE session; a cheap handle on [`Core`], which the stats
/// socket and the notifier share.
pub struct TraceFs {
    core: Arc<Core>,
    /// The kernel opens directories by itself (FUSE_NO_OPENDIR_SUPPORT, Linux 5.1 on).
    no_opendir: bool,
}

impl std::ops::Deref for TraceFs {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

pub struct Core {
    pub reg: Arc<Registry>,
    pub nodes: Nodes,
    pub counters: Counters,
    handles: nodes::InoMap<Handle>,
    next_fh: AtomicU64,
    ttl: Duration,
    /// Set once the session exists (the notifier needs its channel).
    notify: std::sync::OnceLock<notify::NotifyQueue>,
    /// Blocked `trace_pipe` readers; the data path answers them when records arrive.
    pub waiters: Arc<waiters::Waiters>,
    /// Backing files of the static files the kernel reads by itself.
    passthrough: passthrough::Passthrough,
    /// Workers waiting for the next request on an awake CPU (`--spin-us`).
    pub spin: spin::Spin,
}

fn errno(e: i32) -> Errno {
    Errno::from_i32(e)
}

impl TraceFs {
    pub fn new(reg: Arc<Registry>, ttl: Duration, spin: spin::Spin) -> TraceFs {
        let core = Arc::new_cyclic(|me: &std::sync::Weak<Core>| {
            let source: std::sync::Weak<dyn waiters::PipeSource> = me.clone();
            Core::new(reg, ttl, waiters::Waiters::start(source), spin)
        });
        // Committed records wake blocked readers and pollers (from the waiter thread).
        let waiters = core.waiters.clone();
        let _ = core.reg.on_commit.set(Box::new(move || waiters.wake()));
        TraceFs {
            core,
            no_opendir: false,
        }
    }

    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }
}

impl Core {
    fn new(
        reg: Arc<Registry>,
        ttl: Duration,
        waiters: Arc<waiters::Waiters>,
        spin: spin::Spin,
    ) -> Core {
        Core {
            reg,
            nodes: Nodes::default(),
            counters: Counters::default(),
            handles: nodes::InoMap::default(),
            next_fh: AtomicU64::new(1),
            ttl,
            waiters,
            notify: std::sync::OnceLock::new(),
            passthrough: passthrough::Passthrough::default(),
            spin,
        }
    }

    /// The trace array, entry and times of `ino`, if the kernel may name it.
    fn resolve(&self, ino: INodeNo) -> Option<(Arc<TraceArray>, Entry, Times)> {
        if ino == INodeNo::ROOT {
            return Some((
                self.reg.top.clone(),
                Entry::Root,
                Times::at(self.reg.mounted_at),
            ));
        }
        self.nodes.get(ino.0)
    }

    /// Attributes of `entry`: defaults, then the registry's chmod/chown overrides.
    fn attr(&self, ta: &TraceArray, entry: &Entry, times: Times) -> FileAttr {
        let ino = entry.ino(ta);
        let o = self.reg.override_of(ino);
        let (uid, gid) = self.default_owner(ta);
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: times.atime,
            mtime: times.mtime,
            ctime: times.ctime,
            crtime: times.ctime,
            kind: entry.kind(),
            perm: o.mode.unwrap_or_else(|| entry.default_mode(&self.reg, ta)),
            nlink: entry.nlink(&self.reg, ta),
            uid: o.uid.unwrap_or(uid),
            gid: o.gid.unwrap_or(gid),
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Connects the notifier thread (once, right after the session is created).
    pub fn set_notifier(&self, queue: notify::NotifyQueue) {
        let _ = self.notify.set(queue);
    }

    /// `InvalEntry` notices for every entry the kernel holds for which `pred` holds. The
    /// kernel applies one under its parent directory's lock (and resets that directory's
    /// cached listing), so a handler must not wait for them while a lock it was called
    /// under is held.
    fn entry_notices(&self, pred: impl Fn(&TraceArray, &Entry) -> bool) -> Vec<notify::Notice> {
        self.nodes
            .matching(pred)
            .into_iter()
            .map(|(ta, e)| {
                let (pta, parent) = self.parent_of(&ta, &e);
                notify::Notice::InvalEntry {
                    parent: parent.ino(&pta),
                    name: e.name(),
                }
            })
            .collect()
    }

    /// `InvalInode` notices for every directory the kernel holds for which `pred` holds: its
    /// cached listing goes. These take no directory lock, so a reply may wait for them.
    fn listing_notices(&self, pred: impl Fn(&TraceArray, &Entry) -> bool) -> Vec<notify::Notice> {
        self.nodes
            .matching(|t, e| e.is_dir() && pred(t, e))
            .into_iter()
            .map(|(ta, e)| notify::Notice::InvalInode { ino: e.ino(&ta) })
            .collect()
    }

    /// Queues `notices`, or if there is no notifier yet (no session), runs the replies now.
    fn send_notices(&self, notices: Vec<notify::Notice>) {
        match self.notify.get() {
            Some(q) => q.send_all(notices),
            None => notices.into_iter().for_each(|n| {
                if let notify::Notice::Then(f) = n {
                    f()
                }
            }),
        }
    }

    /// After a write that created or deleted events at run time: invalidate every cached entry
    /// of the deleted ones (and of subsystems that went with them), and the cached listings
    /// such changes touch — every trace array's `events/`, the subsystems dynamic events live
    /// in, the deleted events' own directories — then send `reply`, so that when the writer's
    /// call returns no lookup or listing is stale. (The writer holds no directory lock.)
    fn invalidate_dynamic_then(&self, removed: &[RemovedEvent], reply: Box<dyn FnOnce() + Send>) {
        let gone = |e: &Entry| {
            removed.iter().any(|r| {
                e.belongs_to_event(&r.event) || (r.system_removed && e.belongs_to_system(&r.system))
            })
        };
        let mut notices = self.entry_notices(|_, e| gone(e));
        notices.extend(self.listing_notices(|_, e| match e {
            Entry::EventsDir => true,
            Entry::SystemDir(s) => files::is_dynamic_system(&s.name),
            _ => gone(e),
        }));
        notices.push(notify::Notice::Then(reply));
        self.send_notices(notices);
    }

    /// The owner of an entry nobody chowned: the mount's, or inside an instance the owner
    /// given to `instances/` if it was set explicitly (§11).
    fn default_owner(&self, ta: &TraceArray) -> (u32, u32) {
        let (uid, gid) = (self.reg.owner.uid, self.reg.owner.gid);
        if ta.is_top() {
            return (uid, gid);
        }
        let o = self.reg.override_of(Entry::InstancesDir.ino(&self.reg.top));
        (o.uid.unwrap_or(uid), o.gid.unwrap_or(gid))
    }

    /// The parent of directory `dir` of trace array `ta` (an instance's root sits in the top
    /// level's `instances/`).
    fn parent_of(&self, ta: &Arc<TraceArray>, dir: &Entry) -> (Arc<TraceArray>, Entry) {
        match dir {
            Entry::Root if !ta.is_top() => (self.reg.top.clone(), Entry::InstancesDir),
            _ => (ta.clone(), entry::parent_of(&self.reg, dir)),
        }
    }

    /// Records one kernel reference to `entry` and returns its complete attributes. Called
    /// under the parent directory's lock, before the reply naming the entry is sent.
    fn remember(&self, ta: &Arc<TraceArray>, entry: &Entry) -> FileAttr {
        // Entries outside eventfs carry the time their trace array was created, like tracefs;
        // eventfs entries carry the time their node was built (§4.3).
        let born = || match entry {
            Entry::EventsDir
            | Entry::EventsFile(_)
            | Entry::SystemDir(_)
            | Entry::SystemFile(..)
            | Entry::EventDir(_)
            | Entry::EventFile(..) => SystemTime::now(),
            Entry::Instance(i) => i.created,
            _ => ta.created,
        };
        let times = self.nodes.remember(entry.ino(ta), ta, entry, born);
        self.attr(ta, entry, times)
    }

    /// Counts an error reply by kind (and logs it at debug level); returns it for the reply.
    fn fail(&self, op: &'static str, e: Errno) -> Errno {
        let code = e.code();
        let i = ERROR_KINDS
            .iter()
            .position(|k| k.0 == code)
            .unwrap_or(ERROR_KINDS.len());
        self.counters.errors[i].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(op, errno = code, "request failed");
        e
    }

    /// Counts request `op` in flight until the guard drops, which logs it at debug level
    /// (a failed one has logged its errno through [`Core::fail`] already).
    fn in_flight(&self, op: &'static str) -> InFlight<'_> {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        self.spin.request_started();
        InFlight(self, op)
    }

    /// The daemon's counters as `key value` lines.
    pub fn stats_text(&self) -> String {
        let c = &self.counters;
        let (dirs, files) = self.nodes.count_by_kind();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "nodes {}\nnodes_dir {dirs}\nnodes_file {files}\nhandles {}\nevents {}\nsystems {}\n\
overrides {}\nlookups {}\nlookup_misses {}\nforgets {}\nreaddirs {}\nopens {}\nreads {}\n\
writes {}\nwrite_errors {}\nparked_pipe_reads {}\nblocked_readers {}\nnotifications {}\n\
notifications_pending {}\nflushes {}\nbackings {}\nspin_slots {}\nspin_waits {}\n\
spin_takes {}\nspin_rescues {}\n",
            self.nodes.len(),
            self.handles.len(),
            self.reg.event_count(),
            self.reg.system_count(),
            self.reg.override_count(),
            get(&c.lookups),
            get(&c.lookup_misses),
            get(&c.forgets),
            get(&c.readdirs),
            get(&c.opens),
            get(&c.reads),
            get(&c.writes),
            get(&c.write_errors),
            get(&c.parked_pipe_reads),
            self.waiters.blocked_reads(),
            get(&NOTIFY_COUNTERS.sent),
            get(&NOTIFY_COUNTERS.pending),
            get(&c.flushes),
            self.passthrough.backing_count(),
            self.spin.slots(),
            get(&self.spin.counters().waits),
            get(&self.spin.counters().takes),
            get(&self.spin.counters().rescues),
        ) + &self.error_stats()
    }

    fn error_stats(&self) -> String {
        let c = &self.counters;
        let mut out = format!("in_flight {}\n", c.in_flight.load(Ordering::Relaxed));
        let names = ERROR_KINDS
            .iter()
            .map(|k| k.1)
            .chain(std::iter::once("other"));
        for (name, n) in names.zip(&c.errors) {
            out.push_str(&format!("errors_{name} {}\n", n.load(Ordering::Relaxed)));
        }
        out
    }

    /// The directory behind `ino`, for a readdir from `offset`, and whether its trace array
    /// still exists. A directory of a removed instance still lists `.` and `..`; reading past
    /// them gives EINVAL (§4.5, as the kernel's `dcache_readdir` then eventfs do).
    fn dir_of(
        &self,
        ino: INodeNo,
        offset: u64,
    ) -> Result<(Arc<TraceArray>, Entry, Times, bool), Errno> {
        match self.resolve(ino) {
            Some((ta, dir, times)) if dir.is_dir() => {
                let (ta, dir) = dir.contents(ta);
                let alive = ta.is_alive();
                if alive || offset < 2 {
                    Ok((ta, dir, times, alive))
                } else {
                    Err(Errno::EINVAL)
                }
            }
            Some(_) => Err(Errno::ENOTDIR),
            None => Err(Errno::ESTALE),
        }
    }
}

impl waiters::PipeSource for Core {
    fn try_read(&self, fh: u64, size: u32) -> Option<Result<Vec<u8>, Errno>> {
        let Some(h) = self.handles.get(&fh) else {
            return Some(Err(Errno::EBADF));
        };
        if !h.ta.is_alive() {
            return Some(Err(Errno::ENODEV));
        }
        let mut pending = h.pending.lock();
        if pending.is_empty() {
            *pending = files::read_pipe(&self.reg, &h.ta, &h.file, size as usize)?;
        }
        let n = pending.len().min(size as usize);
        Some(Ok(pending.drain(..n).collect()))
    }

    fn readable(&self, fh: u64) -> bool {
        // A handle that went away is "ready": its poller learns so on its next poll.
        self.handles.get(&fh).is_none_or(|h| {
            !h.pending.lock().is_empty() || !h.ta.is_alive() || files::pipe_ready(&h.ta, &h.file)
        })
    }
}

impl Filesystem for TraceFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // O_TRUNC must reach `open` (set_event, trace, error_log clear on it); READDIRPLUS
        // lets `ls -l` fill the cache without a LOOKUP per entry.
        let wanted = InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_NO_OPENDIR_SUPPORT
            | InitFlags::FUSE_PASSTHROUGH;
        let granted = match config.add_capabilities(wanted) {
            Ok(()) => wanted,
            Err(missing) => {
                tracing::warn!("kernel lacks FUSE capabilities {missing:?}");
                let _ = config.add_capabilities(wanted - missing);
                wanted - missing
            }
        };
        self.no_opendir = granted.contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        // Passthrough needs a stacking depth of 1 (the backing memfd is on no stacked fs).
        if granted.contains(InitFlags::FUSE_PASSTHROUGH) && config.set_max_stack_depth(1).is_ok() {
            self.passthrough.enable();
        } else {
            tracing::info!("no FUSE passthrough: static files are read through the daemon");
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _busy = self.in_flight("lookup");
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let Some((ta, dir, _)) = self.resolve(parent) else {
            return reply.error(self.fail("lookup", Errno::ESTALE));
        };
        let (ta, dir) = dir.contents(ta);
        // Lock order: the trace array's life, then the directory.
        // tracefs answers names longer than NAME_MAX with ENAMETOOLONG (simple_lookup).
        if name.len() > NAME_MAX {
            return reply.error(self.fail("lookup", Errno::ENAMETOOLONG));
        }
        let life = ta.life.read();
        let name = Some(name).filter(|_| *life == Life::Alive);
        let Some(name) = name else {
            self.counters.lookup_misses.fetch_add(1, Ordering::Relaxed);
            return reply.error(self.fail("lookup", Errno::ENOENT));
        };
        let guard = dir.lock(&self.reg);
        match guard.find(&self.reg, &ta, &dir, name) {
            Some(child) => {
                let attr = self.remember(&ta, &child);
                tracing::debug!(?name, ino = attr.ino.0, pid = req.pid(), "lookup");
                reply.entry_with_ttls(&self.ttl, &self.ttl, &attr, Generation(0));
            }
            None => {
                self.counters.lookup_misses.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?name, pid = req.pid(), "lookup: ENOENT");
                reply.error(self.fail("lookup", Errno::ENOENT));
            }
        }
        drop(guard);
        drop(life);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        // No reply, so no wait after it; but a waiter may have taken it (see fs/spin.rs).
        self.spin.request_started();
        self.counters.forgets.fetch_add(1, Ordering::Relaxed);
        if !self.nodes.forget(ino.0, nlookup) && ino != INodeNo::ROOT {
            tracing::warn!(ino = ino.0, nlookup, "forget of an unknown inode");
        }
        if self.passthrough.backing_count() > 0 && !self.nodes.contains(ino.0) {
            self.passthrough.forget(ino.0);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _busy = self.in_flight("getattr");
        match self.resolve(ino) {
            Some((ta, entry, times)) => reply.attr(&self.ttl, &self.attr(&ta, &entry, times)),
            None => reply.error(self.fail("getattr", Errno::ESTALE)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _busy = self.in_flight("setattr");
        let Some((ta, entry, _)) = self.resolve(ino) else {
            return reply.error(self.fail("setattr", Errno::ESTALE));
        };
        // chmod/chown touch only this entry and live in the registry, so they survive the
        // kernel forgetting the inode (§4.4). A size change is accepted and ignored (§1).
        let change = AttrOverride {
            mode: mode.map(|m| (m & 0o7777) as u16),
            uid,
            gid,
        };
        if change != AttrOverride::default() {
            self.reg.set_override(entry.ino(&ta), change);
        }
        let now = SystemTime::now();
        let at = |t: TimeOrNow| match t {
            TimeOrNow::Now => now,
            TimeOrNow::SpecificTime(t) => t,
        };
        self.nodes.update_times(ino.0, |t| {
            if let Some(a) = atime {
                t.atime = at(a);
            }
            if let Some(m) = mtime {
                t.mtime = at(m);
            }
            if size.is_some() || mtime.is_some() || change != AttrOverride::default() {
                t.ctime = now;
            }
            if size.is_some() {
                t.mtime = now;
            }
        });
        let times = self.resolve(ino).map_or(Times::at(now), |r| r.2);
        reply.attr(&self.ttl, &self.attr(&ta, &entry, times));
    }

    fn mknod(
        &self,
        _: &Request,
        _: INodeNo,
        _: &OsStr,
        mode: u32,
        _: u32,
        _: u32,
        reply: ReplyEntry,
    ) {
        let _busy = self.in_flight("mknod");
        // The VFS turns mknod of a regular file into create, which tracefs refuses with EACCES.
        if mode & libc::S_IFMT == libc::S_IFREG {
            reply.error(self.fail("mknod", Errno::EACCES))
        } else {
            reply.error(self.fail("mknod", Errno::EPERM))
        }
    }

    /// Only `instances/` accepts mkdir (a new instance); everywhere else EPERM (§1, §11).
    fn mkdir(&self, _: &Request, parent: INodeNo, name: &OsStr, _: u32, _: u32, reply: ReplyEntry) {
        let _busy = self.in_flight("mkdir");
        match self.resolve(parent) {
            Some((_, Entry::InstancesDir, _)) => {}
            Some(_) => return reply.error(self.fail("mkdir", Errno::EPERM)),
            None => return reply.error(self.fail("mkdir", Errno::ESTALE)),
        }
        if name.len() > NAME_MAX {
            return reply.error(self.fail("mkdir", Errno::ENAMETOOLONG));
        }
        match self.reg.create_instance(name) {
            Ok(inst) => {
                tracing::info!(?name, serial = inst.serial, "instance created");
                let top = self.reg.top.clone();
                let attr = self.remember(&top, &Entry::Instance(inst));
                reply.entry_with_ttls(&self.ttl, &self.ttl, &attr, Generation(0));
            }
            Err(e) => reply.error(self.fail("mkdir", errno(e))),
        }
    }

    fn unlink(&self, _: &Request, _: INodeNo, _: &OsStr, reply: ReplyEmpty) {
        let _busy = self.in_flight("unlink");
        reply.error(self.fail("unlink", Errno::EPERM));
    }

    /// Only instances can be removed; the kernel drops the directory's dentry itself.
    fn rmdir(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _busy = self.in_flight("rmdir");
        match self.resolve(parent) {
            Some((_, Entry::InstancesDir, _)) => {}
            Some(_) => return reply.error(self.fail("rmdir", Errno::EPERM)),
            None => return reply.error(self.fail("rmdir", Errno::ESTALE)),
        }
        match self.reg.remove_instance(name) {
            Ok(inst) => {
                tracing::info!(?name, "instance removed");
                // The kernel drops `instances/<name>` itself; what lies below it may still be
                // cached: listings (a held directory fd) go before the reply, entries (a cwd
                // inside) after it, since the kernel applies those under the directory locks
                // this rmdir holds until it has its reply. All are queued at once, so
                // `notifications_pending` counts them once rmdir returns.
                let mine = |t: &TraceArray, _: &Entry| t.serial == inst.serial;
                let mut notices = self.listing_notices(mine);
                notices.push(notify::Notice::Then(Box::new(move || reply.ok())));
                notices.extend(self.entry_notices(mine));
                self.send_notices(notices);
            }
            Err(e) => reply.error(self.fail("rmdir", errno(e))),
        }
    }

    fn symlink(&self, _: &Request, _: INodeNo, _: &OsStr, _: &std::path::Path, reply: ReplyEntry) {
        let _busy = self.in_flight("symlink");
        reply.error(self.fail("symlink", Errno::EPERM));
    }

    fn rename(
        &self,
        _: &Request,
        _: INodeNo,
        _: &OsStr,
        _: INodeNo,
        _: &OsStr,
        _: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _busy = self.in_flight("rename");
        reply.error(self.fail("rename", Errno::EPERM));
    }

    fn link(&self, _: &Request, _: INodeNo, _: INodeNo, _: &OsStr, reply: ReplyEntry) {
        let _busy = self.in_flight("link");
        reply.error(self.fail("link", Errno::EPERM));
    }

    /// tracefs cannot create files (EACCES); in a directory of a removed instance the name
    /// simply does not exist any more (ENOENT, as for a dead directory).
    fn create(
        &self,
        _: &Request,
        parent: INodeNo,
        _: &OsStr,
        _: u32,
        _: u32,
        _: i32,
        reply: ReplyCreate,
    ) {
        let _busy = self.in_flight("create");
        let alive = self
            .resolve(parent)
            .is_some_and(|(ta, dir, _)| dir.contents(ta).0.is_alive());
        reply.error(self.fail("create", if alive { Errno::EACCES } else { Errno::ENOENT }));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _busy = self.in_flight("open");
        self.counters.opens.fetch_add(1, Ordering::Relaxed);
        let Some((ta, entry, _)) = self.resolve(ino) else {
            return reply.error(self.fail("open", Errno::ESTALE));
        };
        let Some(file) = entry.file() else {
            return reply.error(self.fail("open", Errno::EISDIR));
        };
        // Files that pin their instance make rmdir fail with EBUSY while open (§11); the
        // count is taken under the instance's life lock so rmdir cannot slip in between.
        let pins = file.pins_trace_array();
        {
            let life = ta.life.read();
            if *life != Life::Alive {
                return reply.error(self.fail("open", Errno::ENODEV));
            }
            if pins {
                ta.pin();
            }
        }
        let mut pending_removed = Vec::new();
        if flags.0 & libc::O_TRUNC != 0 && flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            let mut removed = Vec::new();
            let truncated = files::open_truncate(&self.reg, &ta, &file, &mut removed);
            if !removed.is_empty() {
                // Deleted dynamic events: the reply waits for their invalidation (below).
                pending_removed = removed;
            }
            if let Err(e) = truncated {
                if pins {
                    ta.unpin();
                }
                let e = self.fail("open", errno(e));
                if pending_removed.is_empty() {
                    return reply.error(e);
                }
                // Some events went before the failure: they are gone from every cache first.
                return self
                    .invalidate_dynamic_then(&pending_removed, Box::new(move || reply.error(e)));
            }
            // A truncating open goes through setattr in the kernel: mtime and ctime move.
            let now = SystemTime::now();
            self.nodes.update_times(ino.0, |t| {
                t.mtime = now;
                t.ctime = now;
            });
        }
        let mut open_flags = FopenFlags::FOPEN_DIRECT_IO;
        if file.is_pipe() {
            open_flags |= FopenFlags::FOPEN_NONSEEKABLE;
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        // A static file's content, for the kernel to read without us (if it can).
        let content = (pending_removed.is_empty() && passthrough::is_static(&ta, &file))
            .then(|| (ta.clone(), file.clone()));
        self.handles.insert(
            fh,
            Handle {
                ta,
                file,
                pins,
                snapshot: Mutex::new(None),
                pending: Mutex::new(Vec::new()),
            },
        );
        let reply = match content {
            Some((ta, file)) => {
                let read_only = flags.0 & libc::O_ACCMODE == libc::O_RDONLY;
                let text = || files::read(&self.reg, &ta, &file).ok();
                match self.passthrough.open(ino.0, fh, read_only, text, reply) {
                    Ok(()) => return,
                    Err(reply) => reply,
                }
            }
            None => reply,
        };
        if pending_removed.is_empty() {
            reply.opened(FileHandle(fh), open_flags);
        } else {
            let reply = Box::new(move || reply.opened(FileHandle(fh), open_flags));
            self.invalidate_dynamic_then(&pending_removed, reply);
        }
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _busy = self.in_flight("read");
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        let Some(h) = self.handles.get(&fh.0) else {
            return reply.error(self.fail("read", Errno::EBADF));
        };
        if h.file.is_pipe() {
            drop(h);
            // An empty buffer: a non-blocking reader gets EAGAIN, a blocking one waits
            // (without holding a worker thread) until a commit lets the waiter thread answer.
            return match waiters::PipeSource::try_read(&*self.core, fh.0, size) {
                Some(Ok(data)) => reply.data(&data),
                Some(Err(e)) => reply.error(self.fail("read", e)),
                None if flags.0 & libc::O_NONBLOCK != 0 => {
                    reply.error(self.fail("read", Errno::EAGAIN))
                }
                None => {
                    self.counters
                        .parked_pipe_reads
                        .fetch_add(1, Ordering::Relaxed);
                    self.waiters.park_read(req.pid(), fh.0, size, reply);
                }
            };
        }
        // After its instance is removed a file fails with ENODEV, except `id`, which the
        // kernel keeps in the open file (§4.5).
        if !h.file_alive() && !matches!(h.file, File::Event(_, EventFile::Id)) {
            return reply.error(self.fail("read", Errno::ENODEV));
        }
        if h.file.eof_past_zero() && offset > 0 {
            return reply.data(&[]);
        }
        // Content is generated at offset 0 and kept for the later chunks of the same read
        // sequence, so `cat` with small buffers sees one consistent text.
        let content = {
            let mut snap = h.snapshot.lock();
            match (&*snap, offset) {
                (Some(c), o) if o > 0 => c.clone(),
                _ => match files::read(&self.reg, &h.ta, &h.file) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        *snap = Some(c.clone());
                        c
                    }
                    Err(e) => return reply.error(self.fail("read", errno(e))),
                },
            }
        };
        let start = (offset as usize).min(content.len());
        let end = start.saturating_add(size as usize).min(content.len());
        reply.data(&content[start..end]);
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _busy = self.in_flight("write");
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let Some(h) = self.handles.get(&fh.0) else {
            return reply.error(self.fail("write", Errno::EBADF));
        };
        if !h.file_alive() {
            return reply.error(self.fail("write", Errno::ENODEV));
        }
        // Every write(2) is parsed on its own, whatever the offset (§3.1).
        let mut removed = Vec::new();
        let pid = req.pid() as i32;
        let creates = files::creates_events(&h.file);
        let result = files::write(&self.reg, &h.ta, &h.file, data, pid, &mut removed);
        drop(h);
        if let Err(e) = result {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(len = data.len(), errno = e, "write rejected");
        }
        if creates {
            // Events it created or deleted must be in, or gone from, every cache when the
            // writer's call returns.
            let result = result.map_err(|e| self.fail("write", errno(e)));
            let reply = Box::new(move || match result {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(e),
            });
            return self.invalidate_dynamic_then(&removed, reply);
        }
        match result {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(self.fail("write", errno(e))),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _busy = self.in_flight("release");
        if let Some((_, h)) = self.handles.remove(&fh.0) {
            if passthrough::is_static(&h.ta, &h.file) {
                self.passthrough.release(ino.0, fh.0);
            }
            if h.ta.is_alive() {
                files::release(&h.ta, &h.file);
            }
            if h.pins {
                h.ta.unpin();
            }
        }
        reply.ok();
    }

    /// No OPENDIR round trip where the kernel allows it: ENOSYS makes it open directories by
    /// itself from then on (FUSE_NO_OPENDIR_SUPPORT), with a cached listing (FOPEN_CACHE_DIR |
    /// FOPEN_KEEP_CACHE, what an older kernel is told here). `readdir` checks that the
    /// directory still exists; every change to a listing invalidates it before the change is
    /// acknowledged (see `invalidate_dynamic_then` and `rmdir`).
    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.no_opendir {
            return reply.error(Errno::ENOSYS);
        }
        let _busy = self.in_flight("opendir");
        match self.resolve(ino) {
            Some((_, e, _)) if e.is_dir() => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Some(_) => reply.error(self.fail("opendir", Errno::ENOTDIR)),
            None => reply.error(self.fail("opendir", Errno::ESTALE)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _busy = self.in_flight("readdir");
        self.counters.readdirs.fetch_add(1, Ordering::Relaxed);
        let (ta, dir, _, alive) = match self.dir_of(ino, offset) {
            Ok(d) => d,
            Err(e) => return reply.error(self.fail("readdir", e)),
        };
        // The parent is resolved before taking this directory's lock (lock order).
        let (pta, parent) = self.parent_of(&ta, &dir);
        let parent = parent.ino(&pta);
        let guard = dir.lock(&self.reg);
        if offset < 1 && reply.add(ino, 1, FileType::Directory, ".") {
            return reply.ok();
        }
        if offset < 2 && reply.add(INodeNo(parent), 2, FileType::Directory, "..") {
            return reply.ok();
        }
        if !alive {
            return reply.ok();
        }
        for l in guard.list(&self.reg, &ta, &dir, offset) {
            if reply.add(INodeNo(l.entry.ino(&ta)), l.cookie, l.entry.kind(), &l.name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _busy = self.in_flight("readdirplus");
        self.counters.readdirs.fetch_add(1, Ordering::Relaxed);
        let (ta, dir, times, alive) = match self.dir_of(ino, offset) {
            Ok(d) => d,
            Err(e) => return reply.error(self.fail("readdirplus", e)),
        };
        // `.` and `..` are resolved before taking this directory's lock: their attributes may
        // take directory locks themselves (`instances/`'s link count), and a lock is never
        // taken twice or against the order. The kernel does not count them: no node is taken.
        let (pta, parent) = self.parent_of(&ta, &dir);
        let dot = self.attr(&ta, &dir, times);
        let dotdot = self.attr(&pta, &parent, times);
        let guard = dir.lock(&self.reg);
        if offset < 1 && reply.add(ino, 1, ".", &self.ttl, &dot, Generation(0)) {
            return reply.ok();
        }
        if offset < 2 && reply.add(dotdot.ino, 2, "..", &self.ttl, &dotdot, Generation(0)) {
            return reply.ok();
        }
        if !alive {
            return reply.ok();
        }
        for l in guard.list(&self.reg, &ta, &dir, offset) {
            // Counted before it can reach the kernel; uncounted again if it did not fit.
            let attr = self.remember(&ta, &l.entry);
            if reply.add(attr.ino, l.cookie, &l.name, &self.ttl, &attr, Generation(0)) {
                self.nodes.forget(attr.ino.0, 1);
                break;
            }
        }
        reply.ok();
    }

    /// The consuming files are readable when their buffer has data; a poller waits for a
    /// commit otherwise. Every other file is always ready, like the kernel's default.
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: fuser::PollNotifier,
        _events: fuser::PollEvents,
        flags: fuser::PollFlags,
        reply: fuser::ReplyPoll,
    ) {
        use fuser::PollEvents as P;
        let _busy = self.in_flight("poll");
        let Some(h) = self.handles.get(&fh.0) else {
            return reply.error(self.fail("poll", Errno::EBADF));
        };
        if !h.file.is_pipe() {
            return reply.poll(P::POLLIN | P::POLLRDNORM | P::POLLOUT | P::POLLWRNORM);
        }
        drop(h);
        if waiters::PipeSource::readable(&*self.core, fh.0) {
            return reply.poll(P::POLLIN | P::POLLRDNORM);
        }
        if flags.contains(fuser::PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            self.waiters.park_poll(fh.0, ph);
        }
        reply.poll(P::empty());
    }

    /// `ioctl(fd, 0)` on `trace_pipe_raw` wakes its blocked readers with an empty read (the
    /// kernel's `tracing_buffers_ioctl`); nothing else is supported (ENOTTY, as for tracefs
    /// files without an ioctl, `trace_pipe` included).
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: fuser::IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        let _busy = self.in_flight("ioctl");
        match self.handles.get(&fh.0) {
            Some(h)
                if matches!(
                    h.file,
                    File::Cpu(
                        _,
                        files::CpuFile::TracePipeRaw | files::CpuFile::SnapshotRaw
                    )
                ) && cmd == 0 =>
            {
                drop(h);
                self.waiters.kick(fh.0);
                reply.ioctl(0, &[]);
            }
            Some(_) => reply.error(self.fail("ioctl", Errno::ENOTTY)),
            None => reply.error(self.fail("ioctl", Errno::EBADF)),
        }
    }

    /// No tracefs file acts on close(2) before its release (`free_buffer`, the pins and the
    /// consuming readers all act on RELEASE): ENOSYS once, and the kernel sends no more FLUSH.
    fn flush(&self, _: &Request, _: INodeNo, _: FileHandle, _: LockOwner, reply: ReplyEmpty) {
        let _busy = self.in_flight("flush");
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        reply.error(Errno::ENOSYS);
    }

    fn fsync(&self, _: &Request, _: INodeNo, _: FileHandle, _: bool, reply: ReplyEmpty) {
        let _busy = self.in_flight("fsync");
        reply.ok();
    }

    // No extended attributes (like tracefs). ENOSYS makes the kernel stop asking, which saves a
    // round trip per `ls -l` entry.
    fn getxattr(&self, _: &Request, _: INodeNo, _: &OsStr, _: u32, reply: fuser::ReplyXattr) {
        let _busy = self.in_flight("getxattr");
        reply.error(self.fail("getxattr", Errno::ENOSYS));
    }

    fn listxattr(&self, _: &Request, _: INodeNo, _: u32, reply: fuser::ReplyXattr) {
        let _busy = self.in_flight("listxattr");
        reply.error(self.fail("listxattr", Errno::ENOSYS));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _busy = self.in_flight("statfs");
        reply.statfs(0, 0, 0, 0, 0, 4096, 255, 4096);
    }
}
