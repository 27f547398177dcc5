//! Waiting for the next request on a CPU that would otherwise halt (`--spin-us`).
//!
//! What a request that reaches the daemon costs is mostly scheduling, not the daemon's code:
//! on these VMs a FUSE round trip is ~6 µs when the caller's CPU is awake and ~46 µs when a
//! halted CPU must be woken, for the request and again for the reply (see
//! `../shared/reference/perf-anchors.md`). The kernel has one request queue per connection,
//! so the daemon cannot choose where it is woken; it can keep CPUs from halting while
//! requests keep coming. After answering a request, a worker waits up to the window for the
//! next one instead of sleeping in read(2): pinned to a CPU no other worker waits on, and at
//! SCHED_IDLE, so that any other task on that CPU runs first. A worker keeps SCHED_IDLE into
//! the request it takes, so its reply wakes the caller on a CPU the scheduler counts as idle.
//!
//! No worker is kept sleeping in read(2) while others wait: the caller of every request would
//! wake it (on a VM, ~10 µs of IPI on the caller's path, measured with bpftrace). So what keeps
//! requests from starving when other work takes the CPUs is the rescuer thread, which looks
//! every `RESCUE_AFTER` while any worker holds a slot:
//! - a waiter that has not run for `RESCUE_AFTER` (other work has its CPU) gets SCHED_OTHER
//!   back, and nobody waits for a while (`BACKOFF`, doubled while it keeps happening, up to
//!   `BACKOFF_MAX`): workers sleep in read(2), woken by the kernel, at normal priority;
//! - a worker out of its wait at SCHED_IDLE for `RESCUE_AFTER` (it took a request, and other
//!   work on its CPU starves it) gets SCHED_OTHER and its CPU mask back.
//!
//! Every other way out of a wait restores SCHED_OTHER and the CPU mask (unless someone pinned
//! the worker elsewhere meanwhile; a pin made at the very instant a worker reads or sets its
//! own mask can still be undone, so pin the daemon's threads from outside only with
//! `--spin-us 0`, or start it under `taskset`: slots are only on the CPUs it may use).
//!
//! Leaving SCHED_IDLE needs CAP_SYS_NICE (root, not root in a user namespace): for anyone else
//! workers always sleep in read(2).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::trace::state::mono_now_ns;

/// How long a waiter that saw a request lets another have it (ns): longer than read(2) takes.
const TAKE_TIMEOUT: u64 = 100_000;
/// How often the rescuer looks, and how long a worker may be out of its wait at SCHED_IDLE.
const RESCUE_AFTER: Duration = Duration::from_millis(2);
/// How long nobody waits after a waiter starved, at first and at most.
const BACKOFF: u64 = 20_000_000;
const BACKOFF_MAX: u64 = 640_000_000;

pub struct Spin {
    window: Duration,
    workers: usize,
    shared: Arc<Shared>,
    rescuer: OnceLock<()>,
}

/// What the workers and the rescuer share.
struct Shared {
    /// The session's /dev/fuse descriptor (one open file shared by every worker).
    fd: OnceLock<RawFd>,
    /// One per CPU of `cpus`.
    slots: Box<[Slot]>,
    /// The CPU of each slot: those the daemon could run on when it started.
    cpus: Vec<usize>,
    /// CLOCK_MONOTONIC ns when a waiter last saw a request and went to take it; 0 once a
    /// request started. Until then (or `TAKE_TIMEOUT`: some requests never start one) other
    /// waiters keep waiting rather than race it to read(2).
    taken: AtomicU64,
    /// CLOCK_MONOTONIC ns before which nobody waits, and the length of the last backoff.
    backoff_until: AtomicU64,
    backoff: AtomicU64,
    /// Slots held, and the rescuer's wake-up when the first is taken.
    held: (Mutex<usize>, Condvar),
    counters: SpinCounters,
}

/// What the stats socket shows of waiting workers.
#[derive(Default)]
pub struct SpinCounters {
    /// Waits begun after a request.
    pub waits: AtomicU64,
    /// Waits that ended with this worker taking the next request.
    pub takes: AtomicU64,
    /// Workers the rescuer gave SCHED_OTHER back (starved, in a wait or out of it).
    pub rescues: AtomicU64,
}

/// A CPU a worker waits on.
#[derive(Default)]
struct Slot {
    held: AtomicBool,
    /// The holder's thread id (for the rescuer).
    tid: AtomicI32,
    /// CLOCK_MONOTONIC ns when the holder left its wait at SCHED_IDLE; 0 while it waits.
    /// Whoever swaps it from non-zero to 0 ends that: the holder at its next request's end,
    /// or the rescuer, which then also frees the slot.
    out_since: AtomicU64,
    /// Counts claims, so that a holder can tell the rescuer freed its slot.
    claims: AtomicU64,
    /// CLOCK_MONOTONIC ns of the holder's last look at the queue while waiting.
    beat: AtomicU64,
    /// The holder's CPU mask before it was pinned here, given back when it leaves (someone
    /// may have pinned the daemon's threads: `taskset`, a test).
    saved: Mutex<Option<libc::cpu_set_t>>,
}

#[derive(Clone, Copy)]
struct Worker {
    /// The slot held and its claim number.
    slot: Option<(usize, u64)>,
    idle: bool,
}

thread_local! {
    static WORKER: Cell<Worker> = const { Cell::new(Worker { slot: None, idle: false }) };
}

impl Spin {
    /// `window` zero turns waiting off. `asked` is the number of FUSE workers asked for
    /// (`--threads`); with waiting on there are at least as many workers as slots, one slot
    /// per CPU.
    pub fn new(window: Duration, asked: usize) -> Spin {
        let cpus = allowed_cpus().map(|set| cpu_list(&set)).unwrap_or_default();
        let n = if window.is_zero() {
            0
        } else if !can_leave_idle() {
            tracing::debug!("workers sleep in read(2): --spin-us needs CAP_SYS_NICE (root)");
            0
        } else {
            cpus.len()
        };
        Spin {
            window,
            workers: asked.max(n),
            shared: Arc::new(Shared {
                fd: OnceLock::new(),
                slots: (0..n).map(|_| Slot::default()).collect(),
                cpus,
                taken: AtomicU64::new(0),
                backoff_until: AtomicU64::new(0),
                backoff: AtomicU64::new(0),
                held: (Mutex::new(0), Condvar::new()),
                counters: SpinCounters::default(),
            }),
            rescuer: OnceLock::new(),
        }
    }

    /// The FUSE worker threads the session must run.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many workers may wait at once (0: waiting is off).
    pub fn slots(&self) -> usize {
        self.shared.slots.len()
    }

    pub fn counters(&self) -> &SpinCounters {
        &self.shared.counters
    }

    /// Starts waiting once the session's descriptor is known.
    pub fn set_fd(&self, fd: RawFd) {
        let _ = self.shared.fd.set(fd);
    }

    /// A request starts: the next waiter that sees one may keep it.
    pub fn request_started(&self) {
        let s = &*self.shared;
        if !s.slots.is_empty() && s.taken.load(Ordering::Relaxed) != 0 {
            s.taken.store(0, Ordering::Relaxed);
        }
    }

    /// A request was answered: wait here for the next one, or go back to read(2) as usual.
    pub fn request_done(&self) {
        let s = &*self.shared;
        let Some(&fd) = s.fd.get().filter(|_| !s.slots.is_empty()) else {
            return;
        };
        WORKER.with(|w| {
            let mut me = w.get();
            if let Some((k, claim)) = me.slot {
                let slot = &s.slots[k];
                slot.beat.store(mono_now_ns(), Ordering::Relaxed);
                let rescued = slot.claims.load(Ordering::Acquire) != claim
                    || slot.out_since.swap(0, Ordering::AcqRel) == 0;
                if rescued {
                    // SCHED_OTHER, its CPU mask and the slot freed already.
                    me.slot = None;
                    me.idle = false;
                }
            }
            if !self.wait(fd, &mut me) {
                self.leave(&mut me);
            }
            w.set(me);
        });
    }

    /// Whether a request was seen first by this worker, which then keeps its slot and
    /// SCHED_IDLE into that request.
    fn wait(&self, fd: RawFd, me: &mut Worker) -> bool {
        let s = &*self.shared;
        if mono_now_ns() < s.backoff_until.load(Ordering::Relaxed) {
            return false;
        }
        if me.slot.is_none() && !self.claim(me) {
            return false;
        }
        if !me.idle {
            if !set_policy(libc::SCHED_IDLE) {
                return false;
            }
            me.idle = true;
        }
        s.counters.waits.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let beat = me.slot.map(|(k, _)| &s.slots[k].beat);
        loop {
            let now = mono_now_ns();
            if let Some(beat) = beat {
                beat.store(now, Ordering::Relaxed);
            }
            match pending(fd) {
                Some(true) => {
                    let last = s.taken.load(Ordering::Acquire);
                    let free = last == 0 || now.saturating_sub(last) > TAKE_TIMEOUT;
                    let first = free
                        && s.taken
                            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok();
                    if first && let Some((k, _)) = me.slot {
                        s.slots[k].out_since.store(now, Ordering::Relaxed);
                        s.counters.takes.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                }
                Some(false) => {}
                None => return false,
            }
            if start.elapsed() >= self.window || now < s.backoff_until.load(Ordering::Relaxed) {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Takes a free slot on a CPU this thread may run on now, and pins it there.
    fn claim(&self, me: &mut Worker) -> bool {
        let s = &*self.shared;
        let Some(mine) = allowed_cpus() else {
            return false;
        };
        let free = s.slots.iter().enumerate().position(|(k, slot)| {
            // SAFETY: CPU_ISSET reads within the set; the CPU came from a cpu_set_t.
            let allowed = unsafe { libc::CPU_ISSET(s.cpus[k], &mine) };
            allowed
                && slot
                    .held
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        });
        let Some(k) = free else { return false };
        let slot = &s.slots[k];
        let claim = slot.claims.fetch_add(1, Ordering::AcqRel) + 1;
        me.slot = Some((k, claim));
        // SAFETY: gettid cannot fail.
        slot.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
        slot.beat.store(mono_now_ns(), Ordering::Relaxed);
        *slot.saved.lock() = Some(mine);
        *s.held.0.lock() += 1;
        s.held.1.notify_one();
        self.rescuer
            .get_or_init(|| start_rescuer(self.shared.clone()));
        pin(&one_cpu(s.cpus[k]))
    }

    /// Back to a worker like any other: SCHED_OTHER, its CPU mask, no slot.
    fn leave(&self, me: &mut Worker) {
        let s = &*self.shared;
        if me.idle && set_policy(libc::SCHED_OTHER) {
            me.idle = false;
        }
        if let Some((k, _)) = me.slot.take() {
            unpin(0, s.cpus[k], s.slots[k].saved.lock().take());
            s.release(k);
        }
    }
}

impl Shared {
    fn release(&self, k: usize) {
        self.slots[k].held.store(false, Ordering::Release);
        let mut n = self.held.0.lock();
        *n = n.saturating_sub(1);
    }

    /// The rescuer's look: see the module's documentation.
    fn rescue(&self) {
        let now = mono_now_ns();
        let late = |t: u64| t != 0 && now.saturating_sub(t) >= RESCUE_AFTER.as_nanos() as u64;
        let mut starved = false;
        for (k, slot) in self.slots.iter().enumerate() {
            if !slot.held.load(Ordering::Acquire) {
                continue;
            }
            let tid = slot.tid.load(Ordering::Relaxed);
            let since = slot.out_since.load(Ordering::Relaxed);
            if since != 0 {
                if late(since) && slot.out_since.swap(0, Ordering::AcqRel) != 0 {
                    // Out of its wait: it may not run until given its priority back.
                    set_policy_of(tid, libc::SCHED_OTHER);
                    unpin(tid, self.cpus[k], slot.saved.lock().take());
                    self.release(k);
                    self.counters.rescues.fetch_add(1, Ordering::Relaxed);
                }
            } else if late(slot.beat.load(Ordering::Relaxed)) {
                // Waiting but not running: with its priority back it runs, sees the backoff
                // and leaves.
                starved = true;
                set_policy_of(tid, libc::SCHED_OTHER);
                self.counters.rescues.fetch_add(1, Ordering::Relaxed);
            }
        }
        if starved {
            let len = (self.backoff.load(Ordering::Relaxed) * 2).clamp(BACKOFF, BACKOFF_MAX);
            self.backoff.store(len, Ordering::Relaxed);
            self.backoff_until.store(now + len, Ordering::Relaxed);
        } else if now > self.backoff_until.load(Ordering::Relaxed) {
            self.backoff.store(0, Ordering::Relaxed);
        }
    }
}

/// While any slot is held, looks every RESCUE_AFTER (see the module's documentation).
fn start_rescuer(shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("spin-rescuer".into())
        .spawn(move || {
            loop {
                {
                    let (count, cv) = &shared.held;
                    let mut n = count.lock();
                    while *n == 0 {
                        cv.wait(&mut n);
                    }
                }
                std::thread::sleep(RESCUE_AFTER);
                shared.rescue();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no spin rescuer thread ({e}): workers will not wait");
    }
}

/// Gives thread `tid` (0: this one) its CPU mask from before it was pinned to `cpu`, unless
/// someone pinned it elsewhere since.
fn unpin(tid: libc::pid_t, cpu: usize, saved: Option<libc::cpu_set_t>) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a thread of this process, cpu_set_t buffers of the size given.
    unsafe {
        let mut now: libc::cpu_set_t = std::mem::zeroed();
        let ours = libc::sched_getaffinity(tid, size, &mut now) == 0 && now == one_cpu(cpu);
        if let Some(saved) = saved.filter(|_| ours) {
            libc::sched_setaffinity(tid, size, &saved);
        }
    }
}

/// Whether a request is queued on `fd` (None: the connection is gone or poll failed).
fn pending(fd: RawFd) -> Option<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    match n {
        0 => Some(false),
        1 if p.revents & libc::POLLIN != 0 && p.revents & libc::POLLERR == 0 => Some(true),
        _ => None,
    }
}

fn set_policy(policy: libc::c_int) -> bool {
    set_policy_of(0, policy)
}

fn set_policy_of(tid: libc::pid_t, policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a thread of this process (0: this one), a valid sched_param.
    unsafe { libc::sched_setscheduler(tid, policy, &param) == 0 }
}

fn one_cpu(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is empty; `cpu` came from a cpu_set_t, so it fits.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

fn pin(set: &libc::cpu_set_t) -> bool {
    // SAFETY: this thread, a valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Option<libc::cpu_set_t> {
    // SAFETY: sched_getaffinity fills the zeroed set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        (libc::sched_getaffinity(0, size, &mut set) == 0).then_some(set)
    }
}

fn cpu_list(set: &libc::cpu_set_t) -> Vec<usize> {
    // SAFETY: CPU_ISSET reads within the set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, set) })
        .collect()
}

/// Whether a thread may go back from SCHED_IDLE to SCHED_OTHER (tried on a thread of its own).
fn can_leave_idle() -> bool {
    std::thread::spawn(|| set_policy(libc::SCHED_IDLE) && set_policy(libc::SCHED_OTHER))
        .join()
        .unwrap_or(false)
}
