//! Waiting for the next request on a CPU that would otherwise halt (`--spin-us`).
//!
//! What a request that reaches the daemon costs is mostly scheduling, not the daemon's code:
//! on these VMs a FUSE round trip is ~6 µs when the caller's CPU is awake and ~46 µs when a
//! halted CPU must be woken, for the request and again for the reply (see
//! `../shared/reference/perf-anchors.md`). The kernel has one request queue per connection,
//! so the daemon cannot choose where it is woken; it can keep CPUs from halting while
//! requests keep coming. After answering a request, a worker waits up to the window for the
//! next one instead of sleeping in read(2): pinned to a CPU no other worker waits on, and at
//! SCHED_IDLE, so that any other task on that CPU runs first. The caller's CPU then runs
//! that worker, not the halt loop, while the caller waits; the worker takes the request at
//! once, and its reply wakes the caller where it is (a CPU running only SCHED_IDLE work
//! counts as idle to the scheduler).
//!
//! What keeps this from ever starving a request:
//! - there are fewer CPU slots than workers, so at least one worker always sleeps in read(2)
//!   at normal priority, where the kernel wakes it for the next request;
//! - a worker that leaves its wait (a request is there and it saw it first) keeps SCHED_IDLE
//!   into that request, so it could be stalled by other work on its CPU. The rescuer thread
//!   looks every `RESCUE_AFTER` while any slot is held, and gives a worker that has been out
//!   of its wait that long SCHED_OTHER and every CPU back;
//! - every other way out of a wait restores SCHED_OTHER and the CPU mask first.
//!
//! Leaving SCHED_IDLE needs CAP_SYS_NICE (root, not root in a user namespace): for anyone
//! else workers always sleep in read(2).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::trace::state::mono_now_ns;

/// How long a waiter that saw a request lets another have it (ns): longer than read(2) takes.
const TAKE_TIMEOUT: u64 = 100_000;

/// How long a worker may be out of its wait at SCHED_IDLE before the rescuer restores it.
const RESCUE_AFTER: Duration = Duration::from_millis(2);

pub struct Spin {
    window: Duration,
    workers: usize,
    /// The session's /dev/fuse descriptor (one open file shared by every worker).
    fd: OnceLock<RawFd>,
    /// One per CPU of `cpus`, fewer than the workers.
    slots: Arc<[Slot]>,
    /// The CPU of each slot: those the daemon could run on when it started.
    cpus: Vec<usize>,
    /// CLOCK_MONOTONIC ns when a waiter last saw a request and went to take it; 0 once a
    /// request started. Until then (or `TAKE_TIMEOUT`: some requests never start one) other
    /// waiters keep waiting rather than race it to read(2).
    taken: AtomicU64,
    /// Slots held, and the rescuer's wake-up when the first is taken.
    held: Arc<(Mutex<usize>, Condvar)>,
    rescuer: OnceLock<()>,
    pub counters: Arc<SpinCounters>,
}

/// What the stats socket shows of waiting workers.
#[derive(Default)]
pub struct SpinCounters {
    /// Waits begun after a request.
    pub waits: AtomicU64,
    /// Waits that ended with this worker taking the next request.
    pub takes: AtomicU64,
    /// Workers the rescuer gave SCHED_OTHER back while out of their wait.
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
    /// (`--threads`): with waiting on there is one slot per CPU and one worker more than
    /// slots at least, so one worker always sleeps in read(2).
    pub fn new(window: Duration, asked: usize) -> Spin {
        let cpus = allowed_cpus().map(|set| cpu_list(&set)).unwrap_or_default();
        let n = if window.is_zero() {
            0
        } else if !can_leave_idle() {
            tracing::info!("workers sleep in read(2): --spin-us needs CAP_SYS_NICE (root)");
            0
        } else {
            cpus.len()
        };
        Spin {
            window,
            workers: if n == 0 { asked } else { asked.max(n + 1) },
            fd: OnceLock::new(),
            slots: (0..n).map(|_| Slot::default()).collect(),
            cpus,
            taken: AtomicU64::new(0),
            held: Arc::new((Mutex::new(0), Condvar::new())),
            rescuer: OnceLock::new(),
            counters: Arc::default(),
        }
    }

    /// The FUSE worker threads the session must run.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many workers may wait at once (0: waiting is off).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Starts waiting once the session's descriptor is known.
    pub fn set_fd(&self, fd: RawFd) {
        let _ = self.fd.set(fd);
    }

    /// A request starts: the next waiter that sees one may keep it.
    pub fn request_started(&self) {
        if !self.slots.is_empty() && self.taken.load(Ordering::Relaxed) != 0 {
            self.taken.store(0, Ordering::Relaxed);
        }
    }

    /// A request was answered: wait here for the next one, or go back to read(2) as usual.
    pub fn request_done(&self) {
        let Some(&fd) = self.fd.get().filter(|_| !self.slots.is_empty()) else {
            return;
        };
        WORKER.with(|w| {
            let mut me = w.get();
            if let Some((k, claim)) = me.slot {
                let slot = &self.slots[k];
                let rescued = slot.claims.load(Ordering::Acquire) != claim
                    || slot.out_since.swap(0, Ordering::AcqRel) == 0;
                if rescued {
                    // SCHED_OTHER, every CPU and the slot freed already.
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
        if me.slot.is_none() {
            // A free slot on a CPU this thread may run on now.
            let Some(mine) = allowed_cpus() else {
                return false;
            };
            let free = self.slots.iter().enumerate().position(|(k, s)| {
                // SAFETY: CPU_ISSET reads within the set; the CPU came from a cpu_set_t.
                let allowed = unsafe { libc::CPU_ISSET(self.cpus[k], &mine) };
                allowed
                    && s.held
                        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
            });
            let Some(k) = free else { return false };
            let slot = &self.slots[k];
            let claim = slot.claims.fetch_add(1, Ordering::AcqRel) + 1;
            me.slot = Some((k, claim));
            // SAFETY: gettid cannot fail.
            slot.tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
            *slot.saved.lock() = Some(mine);
            self.hold();
            if !pin(&one_cpu(self.cpus[k])) {
                return false;
            }
        }
        if !me.idle {
            if !set_policy(libc::SCHED_IDLE) {
                return false;
            }
            me.idle = true;
        }
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        loop {
            match pending(fd) {
                Some(true) => {
                    let now = mono_now_ns();
                    let last = self.taken.load(Ordering::Acquire);
                    let free = last == 0 || now.saturating_sub(last) > TAKE_TIMEOUT;
                    let first = free
                        && self
                            .taken
                            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok();
                    if first && let Some((k, _)) = me.slot {
                        self.slots[k].out_since.store(now, Ordering::Relaxed);
                        self.counters.takes.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                }
                Some(false) => {}
                None => return false,
            }
            if start.elapsed() >= self.window {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// Back to a worker like any other: SCHED_OTHER, every CPU, no slot.
    fn leave(&self, me: &mut Worker) {
        if me.idle && set_policy(libc::SCHED_OTHER) {
            me.idle = false;
        }
        if let Some((k, _)) = me.slot.take() {
            unpin(0, self.cpus[k], self.slots[k].saved.lock().take());
            release(&self.slots[k], &self.held);
        }
    }

    fn hold(&self) {
        let (count, cv) = &*self.held;
        *count.lock() += 1;
        cv.notify_one();
        self.rescuer.get_or_init(|| self.start_rescuer());
    }

    /// While any slot is held, looks every RESCUE_AFTER for a holder out of its wait that
    /// long and gives it SCHED_OTHER and every CPU back.
    fn start_rescuer(&self) {
        let (slots, held, cpus) = (self.slots.clone(), self.held.clone(), self.cpus.clone());
        let counters = self.counters.clone();
        let spawned = std::thread::Builder::new()
            .name("spin-rescuer".into())
            .spawn(move || {
                loop {
                    {
                        let (count, cv) = &*held;
                        let mut n = count.lock();
                        while *n == 0 {
                            cv.wait(&mut n);
                        }
                    }
                    std::thread::sleep(RESCUE_AFTER);
                    let now = mono_now_ns();
                    for (s, &cpu) in slots.iter().zip(&cpus) {
                        let since = s.out_since.load(Ordering::Relaxed);
                        if since == 0 || now.saturating_sub(since) < RESCUE_AFTER.as_nanos() as u64
                        {
                            continue;
                        }
                        let tid = s.tid.load(Ordering::Relaxed);
                        if s.out_since.swap(0, Ordering::AcqRel) != 0 {
                            let param = libc::sched_param { sched_priority: 0 };
                            // SAFETY: a thread of this process, a valid sched_param.
                            unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) };
                            unpin(tid, cpu, s.saved.lock().take());
                            counters.rescues.fetch_add(1, Ordering::Relaxed);
                            release(s, &held);
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no spin rescuer thread ({e}): workers will not wait");
        }
    }
}

fn release(slot: &Slot, held: &(Mutex<usize>, Condvar)) {
    slot.held.store(false, Ordering::Release);
    let mut n = held.0.lock();
    *n = n.saturating_sub(1);
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
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: this thread, a valid sched_param.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
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
