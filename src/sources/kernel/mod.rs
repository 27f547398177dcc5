//! The host kernel as a record source (`--kernel-source`, root only).
//!
//! The daemon makes one instance of the host's tracefs, `instances/utracefs-<pid>` (reached
//! through a private mount, see [`tracefs`]), with the `mono` trace clock (the clone's
//! timestamps are CLOCK_MONOTONIC), `event-fork` and the daemon's threads in
//! `set_event_notrace_pid` (so its own threads, and those they start, never record), and a
//! held `free_buffer` with `disable_on_free` (tracing there stops the moment the daemon dies).
//! Nothing is ever written outside that instance.
//!
//! - The instance's enabled events are kept equal to the union of the events any clone trace
//!   array has enabled or in soft mode: at once after a write that may change them
//!   ([`Registry::enables_changed`]), so records flow when the write returns, and every
//!   [`TICK`] by the *follower* thread (triggers change soft mode as records pass). An event is
//!   carried only if the host's `format` has exactly the catalog's fields; one that differs,
//!   or that the host lacks, is refused with one log line.
//! - One *reader* thread per CPU polls `per_cpu/cpuN/trace_pipe_raw` (`buffer_percent` 50,
//!   timeout [`TICK`]: never a wake-up per record, which would feed itself) and drains it.
//!   Each record is re-committed by (system, name), with the clone's type id, at its CPU with
//!   its own timestamp, through [`commit`] into every trace array. Pages flagged with missed
//!   events become overruns and `[LOST n EVENTS]` in the trace arrays that record anything.
//! - Ordering: the kernel's records arrive up to one tick late, while the clone's own records
//!   (markers, `inject`) are stamped when written. So before the commit path stamps one of
//!   those on CPU c, it calls [`Registry::catch_up`], which drains CPU c here under the lock
//!   the reader holds while committing: every kernel record of CPU c committed by then is in
//!   the ring first, and a CPU's ring never needs to go back in time. (A kernel record still
//!   in flight at that instant, reserved but not committed, comes later and is clamped by the
//!   ring to the last time on that CPU.) Reads of `trace` catch up the same way, so a record
//!   made before a read is in it.
//! - Comms: from the records (`prev_comm`/`next_comm`, `comm`, `child_comm`…, see
//!   [`page::comm_pairs`]) and the process connector, handed to [`Tasks::hint`]; never a
//!   `/proc` read per record.
//!
//! Teardown: [`KernelSource`]'s drop stops the threads and removes the instance; a daemon
//! that dies without it leaves that to the [`watchdog`].
//!
//! [`commit`]: crate::trace::commit::commit
//! [`Tasks::hint`]: crate::trace::tasks::Tasks::hint

pub mod page;
pub mod tracefs;
pub mod watchdog;

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

use crate::control::filter::Fields;
use crate::events::registry::{Event, Registry};
use crate::trace::commit::{Source, Writer, commit};
use crate::trace::state::TraceArray;

/// How often the follower applies enable changes and a reader drains an idle CPU.
pub const TICK: Duration = Duration::from_millis(100);
/// Pages one drain takes at most, so a CPU flooding its buffer cannot hold a writer waiting
/// on [`Registry::catch_up`] for long.
const DRAIN_PAGES: usize = 256;

/// What `--kernel-source` may be told.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `buffer_size_kb` of the kernel instance (default: the kernel's).
    pub buffer_kb: Option<u64>,
}

/// Counters of the source (records carried, pages read, records the kernel lost), served
/// on the `--stats` socket as `kernel_records`, `kernel_pages`, `kernel_lost`.
#[derive(Debug, Default)]
pub struct Counters {
    pub records: AtomicU64,
    pub pages: AtomicU64,
    pub lost: AtomicU64,
}

/// The process's one source's counters (zero without `--kernel-source`).
pub static COUNTERS: Counters = Counters {
    records: AtomicU64::new(0),
    pages: AtomicU64::new(0),
    lost: AtomicU64::new(0),
};

impl Counters {
    /// `key value` lines for the stats socket.
    pub fn text(&self) -> String {
        format!(
            "kernel_records {}\nkernel_pages {}\nkernel_lost {}\n",
            self.records.load(Relaxed),
            self.pages.load(Relaxed),
            self.lost.load(Relaxed)
        )
    }
}

/// A host event carried into the clone.
struct Carried {
    ev: Arc<Event>,
    /// The clone's `common_type` for it (the host's id may differ).
    clone_id: u16,
    comms: Vec<page::CommPair>,
}

/// One CPU's reader: its `trace_pipe_raw` and what decoding needs. Locked while draining and
/// committing, which is what orders the clone's own records after the kernel's.
struct CpuReader {
    fd: Option<OwnedFd>,
    page: Vec<u8>,
    /// Comms already handed to the task table, so a record teaches only changes.
    taught: HashMap<i32, Box<[u8]>>,
    /// Records the kernel reported lost on this CPU so far (its `overrun`, in overwrite mode).
    overrun: u64,
}

struct Shared {
    reg: Arc<Registry>,
    inst: OwnedFd,
    stop: AtomicBool,
    cpus: Vec<Mutex<CpuReader>>,
    /// Host type id → the clone's event.
    carried: RwLock<HashMap<u16, Arc<Carried>>>,
    follower: Mutex<Follower>,
}

/// The running source; dropping it stops it and removes the kernel instance.
pub struct KernelSource {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    root: OwnedFd,
    rel: String,
    free_buffer: Option<OwnedFd>,
    watchdog: Option<watchdog::Watchdog>,
}

fn ctx(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("--kernel-source: {what}: {e}")
}

impl KernelSource {
    /// Creates the kernel instance and starts the threads. Root only.
    pub fn start(reg: Arc<Registry>, opts: &Options) -> Result<KernelSource, String> {
        check_privilege()?;
        let root = tracefs::open_private().map_err(ctx("cannot mount the kernel's tracefs"))?;
        let name = format!("utracefs-{}", std::process::id());
        let rel = format!("instances/{name}");
        match tracefs::mkdir_at(&root, &rel) {
            // Left by a daemon of the same pid (so dead) whose watchdog could not remove it.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                tracefs::remove_instance(&root, &rel)
                    .and_then(|()| tracefs::mkdir_at(&root, &rel))
                    .map_err(ctx(format!("cannot replace {rel}")))?;
            }
            r => r.map_err(ctx(format!("cannot create {rel}")))?,
        }
        let inst = match tracefs::open_at(&root, &rel, libc::O_DIRECTORY | libc::O_RDONLY) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = tracefs::remove_instance(&root, &rel);
                return Err(ctx(format!("cannot open {rel}"))(e));
            }
        };
        let mut src = KernelSource {
            shared: Arc::new(Shared {
                reg: reg.clone(),
                inst,
                stop: AtomicBool::new(false),
                cpus: Vec::new(),
                carried: RwLock::new(HashMap::new()),
                follower: Mutex::new(Follower::default()),
            }),
            threads: Vec::new(),
            root,
            rel,
            free_buffer: None,
            watchdog: None,
        };
        // On error, dropping `src` removes the instance.
        src.setup(opts)?;
        info!(
            "kernel source: instance {} of the kernel's tracefs, {} CPUs",
            src.rel,
            src.shared.cpus.len()
        );
        Ok(src)
    }

    fn setup(&mut self, opts: &Options) -> Result<(), String> {
        let inst = &self.shared.inst;
        let set = |rel: &str, v: &str| {
            tracefs::write_at(inst, rel, v.as_bytes(), libc::O_TRUNC).map_err(ctx(rel.to_string()))
        };
        let reg = self.shared.reg.clone();
        let host_page = tracefs::read_at(&self.root, "events/header_page")
            .map_err(ctx("events/header_page"))?;
        if host_page != *reg.header_page {
            return Err(format!(
                "--kernel-source: the kernel's ring-buffer pages (events/header_page) are not \
                 the catalog's:\n{host_page}"
            ));
        }
        set("trace_clock", "mono")?;
        set("options/event-fork", "1")?;
        set("set_event_notrace_pid", &own_threads())?;
        set("options/disable_on_free", "1")?;
        set("buffer_percent", "50")?;
        if let Some(kb) = opts.buffer_kb {
            set("buffer_size_kb", &kb.to_string())?;
        }
        self.free_buffer = Some(
            tracefs::open_at(inst, "free_buffer", libc::O_WRONLY).map_err(ctx("free_buffer"))?,
        );
        // Forked from a thread in set_event_notrace_pid, with event-fork: it is excluded too.
        self.watchdog =
            Some(watchdog::spawn(&self.root, &self.rel).map_err(ctx("cannot fork the watchdog"))?);
        let page_bytes = tracefs::read_at(inst, "buffer_subbuf_size_kb")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .map_or(4096, |kb| kb * 1024);
        let mut cpus = Vec::new();
        for cpu in 0..reg.ncpu {
            let rel = format!("per_cpu/cpu{cpu}/trace_pipe_raw");
            let fd = tracefs::open_at(inst, &rel, libc::O_RDONLY | libc::O_NONBLOCK)
                .map_err(ctx(&rel))?;
            cpus.push(Mutex::new(CpuReader {
                fd: Some(fd),
                page: vec![0; page_bytes],
                taught: HashMap::new(),
                overrun: 0,
            }));
        }
        Arc::get_mut(&mut self.shared)
            .ok_or("--kernel-source: set up twice")?
            .cpus = cpus;
        let weak = Arc::downgrade(&self.shared);
        let _ = reg.catch_up.set(Box::new(move |cpu| catch_up(&weak, cpu)));
        let weak = Arc::downgrade(&self.shared);
        let _ = reg.enables_changed.set(Box::new(move || {
            if let Some(sh) = weak.upgrade().filter(|sh| !sh.stop.load(Relaxed)) {
                sync(&sh);
            }
        }));
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| format!("--kernel-source: thread: {e}"))
        };
        let sh = self.shared.clone();
        self.threads.push(spawn(
            "kernel-events".into(),
            Box::new(move || follow(&sh)),
        )?);
        for cpu in 0..self.shared.cpus.len() {
            let sh = self.shared.clone();
            let fd = sh.cpus[cpu]
                .lock()
                .fd
                .as_ref()
                .map_or(-1, |f| f.as_raw_fd());
            self.threads.push(spawn(
                format!("kernel-cpu{cpu}"),
                Box::new(move || read_cpu(&sh, cpu, fd)),
            )?);
        }
        Ok(())
    }

    /// The kernel instance's name (`utracefs-<pid>`).
    pub fn instance_name(&self) -> &str {
        self.rel.trim_start_matches("instances/")
    }

    pub fn watchdog_pid(&self) -> Option<i32> {
        self.watchdog.as_ref().map(|w| w.pid())
    }
}

/// The source needs root (the kernel's tracefs is root's): the error otherwise.
pub fn check_privilege() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "--kernel-source needs root: it makes an instance in the kernel's tracefs and reads its ring buffers"
                .into(),
        );
    }
    Ok(())
}

impl Drop for KernelSource {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for c in &self.shared.cpus {
            c.lock().fd = None;
        }
        drop(self.free_buffer.take());
        if let Err(e) = tracefs::remove_instance(&self.root, &self.rel) {
            warn!(
                "kernel source: cannot remove {} ({e}); its watchdog will",
                self.rel
            );
        }
        drop(self.watchdog.take());
    }
}

/// Every thread of this process, as `set_event_notrace_pid` takes them.
fn own_threads() -> String {
    let mut out = String::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            out.push_str(&e.file_name().to_string_lossy());
            out.push(' ');
        }
    }
    out
}

/// The registry's catch-up hook: drains `cpu` (or all) before a record is stamped now.
fn catch_up(weak: &Weak<Shared>, cpu: Option<usize>) {
    let Some(sh) = weak.upgrade() else { return };
    if sh.stop.load(Relaxed) {
        return;
    }
    match cpu {
        Some(c) => drain(&sh, c),
        None => (0..sh.cpus.len()).for_each(|c| drain(&sh, c)),
    }
}

/// A reader thread: wait for the buffer to be half full or a tick to pass, then drain.
fn read_cpu(sh: &Shared, cpu: usize, fd: RawFd) {
    while !sh.stop.load(Relaxed) {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; fd stays open until this thread is joined.
        unsafe { libc::poll(&mut p, 1, TICK.as_millis() as i32) };
        drain(sh, cpu);
    }
}

/// Reads `cpu`'s pages until none is left (or [`DRAIN_PAGES`]) and commits their records.
fn drain(sh: &Shared, cpu: usize) {
    let Some(slot) = sh.cpus.get(cpu) else { return };
    let mut r = slot.lock();
    let Some(fd) = r.fd.as_ref().map(|f| f.as_raw_fd()) else {
        return;
    };
    let mut tas: Option<Vec<Arc<TraceArray>>> = None;
    for _ in 0..DRAIN_PAGES {
        let len = r.page.len();
        // SAFETY: the page buffer is valid for len bytes.
        let n = unsafe { libc::read(fd, r.page.as_mut_ptr().cast(), len) };
        if n <= 0 {
            break;
        }
        let tas = tas.get_or_insert_with(|| sh.reg.trace_arrays());
        page_in(sh, &mut r, cpu, tas);
    }
}

/// One page: its losses, then its records.
fn page_in(sh: &Shared, r: &mut CpuReader, cpu: usize, tas: &[Arc<TraceArray>]) {
    let reg = &sh.reg;
    COUNTERS.pages.fetch_add(1, Relaxed);
    let lost = match page::page_missed(&r.page) {
        page::Missed::None => 0,
        page::Missed::Count(n) => n,
        // No room for the count on the page: the instance's stats have the total.
        page::Missed::Unknown => {
            kernel_overrun(&sh.inst, cpu).map_or(1, |n| n.saturating_sub(r.overrun).max(1))
        }
    };
    if lost > 0 {
        r.overrun += lost;
        COUNTERS.lost.fetch_add(lost, Relaxed);
        for ta in tas {
            if ta.state.lock().any_enabled() {
                ta.buffer.lock().note_lost(cpu, lost);
            }
        }
    }
    let Ok(recs) = crate::trace::ringbuf::decode_page(&r.page) else {
        return;
    };
    let carried = sh.carried.read();
    for (ts, range) in recs {
        let Some(rec) = r.page.get_mut(range) else {
            continue;
        };
        if rec.len() < 8 {
            continue;
        }
        let Some(c) = carried.get(&u16::from_le_bytes([rec[0], rec[1]])) else {
            continue;
        };
        rec[..2].copy_from_slice(&c.clone_id.to_le_bytes());
        let rec = &*rec;
        for (pid, comm) in page::record_comms(rec, &c.comms) {
            if r.taught.get(&pid).map(|b| &**b) != Some(comm) {
                reg.tasks.hint(pid, &String::from_utf8_lossy(comm));
                if r.taught.len() > 1 << 16 {
                    r.taught.clear();
                }
                r.taught.insert(pid, comm.into());
            }
        }
        let w = Writer {
            pid: i32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]),
            cpu,
            preempt: rec[3],
        };
        for ta in tas {
            commit(reg, ta, &c.ev, rec, w, Some(ts), Source::Tracepoint);
        }
        COUNTERS.records.fetch_add(1, Relaxed);
    }
}

/// `overrun:` of the kernel instance's `per_cpu/cpuN/stats`.
fn kernel_overrun(inst: &OwnedFd, cpu: usize) -> Option<u64> {
    let s = tracefs::read_at(inst, &format!("per_cpu/cpu{cpu}/stats")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("overrun:"))
        .and_then(|v| v.trim().parse().ok())
}

/// What the follower knows: the catalog's events, those on in the kernel instance, those
/// refused.
#[derive(Default)]
struct Follower {
    events: HashMap<u64, Arc<Event>>,
    on: HashSet<u64>,
    refused: HashSet<u64>,
}

/// The follower thread: every tick, the kernel instance's enabled events follow the clone's
/// (a write that changes them also syncs at once, through [`Registry::enables_changed`]).
fn follow(sh: &Shared) {
    while !sh.stop.load(Relaxed) {
        sync(sh);
        std::thread::sleep(TICK);
    }
}

/// Makes the kernel instance's enabled events the union of what the clone's trace arrays
/// have enabled or in soft mode (catalog events only: a dynamic event is the clone's own).
fn sync(sh: &Shared) {
    let mut f = sh.follower.lock();
    if f.events.is_empty() {
        f.events = sh
            .reg
            .all_events()
            .into_iter()
            .filter(|e| e.dynamic.is_none() && e.enableable())
            .map(|e| (e.serial, e))
            .collect();
    }
    let mut want = HashSet::new();
    for ta in sh.reg.trace_arrays() {
        let st = ta.state.lock();
        want.extend(
            st.events
                .iter()
                .filter(|(s, e)| e.soft.is_enabled() && f.events.contains_key(s))
                .map(|(s, _)| *s),
        );
    }
    let f = &mut *f;
    for s in want.difference(&f.on).copied().collect::<Vec<_>>() {
        if f.refused.contains(&s) {
            continue;
        }
        let ev = &f.events[&s];
        match carry(sh, ev) {
            Ok(()) => {
                f.on.insert(s);
            }
            Err(why) => {
                warn!(
                    "kernel source: not carrying {}:{}: {why}",
                    ev.def.system, ev.def.name
                );
                f.refused.insert(s);
            }
        }
    }
    for s in f.on.difference(&want).copied().collect::<Vec<_>>() {
        let rel = enable_file(&f.events[&s]);
        if let Err(e) = tracefs::write_at(&sh.inst, &rel, b"0", 0) {
            warn!("kernel source: {rel}: {e}");
        }
        f.on.remove(&s);
    }
}

fn enable_file(ev: &Event) -> String {
    format!("events/{}/{}/enable", ev.def.system, ev.def.name)
}

/// Starts carrying `ev`: checks the host's fields, maps its id, enables it in the instance.
fn carry(sh: &Shared, ev: &Arc<Event>) -> Result<(), String> {
    let dir = format!("events/{}/{}", ev.def.system, ev.def.name);
    let format = tracefs::read_at(&sh.inst, &format!("{dir}/format"))
        .map_err(|e| format!("the kernel has no such event ({e})"))?;
    let layout = ev.layout();
    if let Some(why) = page::field_difference(&Fields::from_format(&format), &layout.fields) {
        return Err(format!("its fields differ: {why}"));
    }
    let host_id: u16 = tracefs::read_at(&sh.inst, &format!("{dir}/id"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("the kernel gives it no id")?;
    let clone_id = ev.def.id.unwrap_or(0) as u16;
    sh.carried.write().entry(host_id).or_insert_with(|| {
        Arc::new(Carried {
            ev: ev.clone(),
            clone_id,
            comms: page::comm_pairs(&layout.fields),
        })
    });
    tracefs::write_at(&sh.inst, &enable_file(ev), b"1", 0)
        .map_err(|e| format!("the kernel refuses to enable it ({e})"))
}
