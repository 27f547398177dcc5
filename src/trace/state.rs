//! Per trace array state: which events are enabled and the tracing settings a trace array has
//! (the top level now; instances share this type). Compact by design: an event costs nothing
//! here until it is enabled.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::control::trigger::{SoftState, TriggerList};
use crate::events::life::Life;

/// Trace options: name, default at the top level, default in an instance, whether an
/// instance's `options/` directory offers it. In the kernel's `trace_options` order.
pub const OPTIONS: &[(&str, bool, bool, bool)] = &[
    ("print-parent", true, true, true),
    ("sym-offset", false, false, true),
    ("sym-addr", false, false, true),
    ("verbose", false, false, true),
    ("raw", false, false, true),
    ("hex", false, false, true),
    ("bin", false, false, true),
    ("block", false, false, true),
    ("fields", false, false, true),
    ("trace_printk", true, true, false),
    ("annotate", true, true, true),
    ("userstacktrace", false, false, true),
    ("sym-userobj", false, false, true),
    ("printk-msg-only", false, false, false),
    ("context-info", true, true, true),
    ("latency-format", false, false, true),
    ("record-cmd", true, true, false),
    ("record-tgid", false, false, true),
    ("overwrite", true, true, true),
    ("disable_on_free", false, false, true),
    ("irq-info", true, true, true),
    ("markers", true, true, true),
    ("event-fork", false, false, true),
    ("trace_printk_dest", true, false, true),
    ("copy_trace_marker", true, false, true),
    ("pause-on-trace", false, false, true),
    ("hash-ptr", true, true, true),
    ("function-trace", true, true, true),
    ("function-fork", false, false, true),
    ("stacktrace", false, false, true),
    ("test_nop_accept", false, false, true),
    ("test_nop_refuse", false, false, true),
    // Tracer-specific options: files in options/, not shown by `trace_options`.
    ("blk_cgname", false, false, false),
    ("blk_cgroup", false, false, false),
    ("blk_classic", false, false, false),
    ("func-no-repeats", false, false, true),
    ("func_stack_trace", false, false, true),
];

/// How many leading entries of [`OPTIONS`] `trace_options` lists.
pub const TRACE_OPTIONS_SHOWN: usize = 32;

/// Tracers this kernel offers (instances do not get `blk`). utracefs accepts them as the
/// kernel does; only events produce records.
pub fn tracers(top: bool) -> &'static [&'static str] {
    if top {
        &["blk", "function", "nop"]
    } else {
        &["function", "nop"]
    }
}

pub const TRACE_CLOCKS: &[&str] = &[
    "local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot", "tai", "x86-tsc",
];

/// Entries kept by `error_log` (§10.7).
pub const ERROR_LOG_ENTRIES: usize = 8;

/// Per-CPU ring buffer size in KiB before the top-level buffer is first expanded, and the
/// size it expands to (what the kernel shows as `7 (expanded: 1408)`).
pub const UNEXPANDED_KB: u64 = 7;
pub const EXPANDED_KB: u64 = 1408;

/// The top level (serial 0) or an instance: its own events state and settings over the shared
/// event tree.
pub struct TraceArray {
    /// 0 for the top level; instances count from 1 and numbers are never reused.
    pub serial: u32,
    /// The instance's directory name (empty for the top level): any bytes, as the kernel
    /// takes them.
    pub name: Box<std::ffi::OsStr>,
    pub created: SystemTime,
    /// The registry's serial counter when the instance was made (0 for the top level): the
    /// directories older than it list in the kernel's list order (§2.3).
    pub born: u64,
    /// Taken (shared) by every lookup and open inside the instance; rmdir takes it exclusively
    /// to mark the instance removed.
    pub life: RwLock<Life>,
    /// Open files that pin the instance (rmdir gives EBUSY while any is open); see
    /// [`TraceArray::pin`].
    busy: AtomicU32,
    /// Signalled (under `unpin_lock`) when the last pin goes.
    unpinned: Condvar,
    unpin_lock: Mutex<()>,
    pub state: Mutex<TaState>,
    /// The ring buffers. Taken after `state` when both are needed, never before.
    pub buffer: Mutex<crate::trace::buffer::TraceBuffer>,
}

pub struct TaState {
    /// Per-event state, keyed by event serial, only for events that differ from the default
    /// (disabled, no triggers): an event costs nothing here until it is used.
    pub events: HashMap<u64, EventState>,
    pub tracing_on: bool,
    pub current_tracer: &'static str,
    pub trace_clock: usize,
    /// Per-CPU buffer sizes in KiB (as read back); `None` until first expanded (top level).
    pub buffer_kb: Option<Vec<u64>>,
    pub buffer_percent: u64,
    pub subbuf_kb: u64,
    /// 64-bit words, CPU n = bit n (the layout `control::parse_tracing_cpumask_for` gives).
    pub cpumask: Vec<u64>,
    pub saved_cmdlines_size: u64,
    pub tracing_thresh: u64,
    /// `tracing_max_latency` as it reads back (µs); no latency tracer here sets it.
    pub max_latency: u64,
    pub options: Vec<bool>,
    pub error_log: VecDeque<String>,
    pub event_pids: BTreeSet<u32>,
    pub event_notrace_pids: BTreeSet<u32>,
    pub ftrace_pids: BTreeSet<u32>,
    pub ftrace_notrace_pids: BTreeSet<u32>,
    /// Events with a filter or a failed filter's error record (§7).
    pub filters: HashMap<u64, EventFilter>,
}

impl TraceArray {
    /// An open file now pins the instance. Taken under `life` (shared) by the opener, so
    /// rmdir, which checks under `life` (exclusive), sees it or has already removed it.
    pub fn pin(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    /// A pinning file was released.
    pub fn unpin(&self) {
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _g = self.unpin_lock.lock();
            self.unpinned.notify_all();
        }
    }

    pub fn is_pinned(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0
    }

    /// Waits until no file pins the instance or `deadline` passes; true if unpinned.
    pub fn wait_unpinned(&self, deadline: Instant) -> bool {
        let mut g = self.unpin_lock.lock();
        while self.is_pinned() {
            if self.unpinned.wait_until(&mut g, deadline).timed_out() {
                return !self.is_pinned();
            }
        }
        true
    }

    pub fn new(serial: u32, name: impl AsRef<std::ffi::OsStr>, created: SystemTime) -> TraceArray {
        let top = serial == 0;
        let ncpu = crate::ncpu();
        TraceArray {
            serial,
            name: name.as_ref().into(),
            created,
            born: 0,
            life: RwLock::new(Life::Alive),
            busy: AtomicU32::new(0),
            unpinned: Condvar::new(),
            unpin_lock: Mutex::new(()),
            buffer: Mutex::new(crate::trace::buffer::TraceBuffer::new(
                &vec![
                    if top {
                        UNEXPANDED_KB
                    } else {
                        crate::control::values::round_buffer_size_kb(EXPANDED_KB)
                    };
                    ncpu
                ],
                4096,
            )),
            state: Mutex::new(TaState {
                events: HashMap::new(),
                tracing_on: true,
                current_tracer: "nop",
                trace_clock: 0,
                buffer_kb: (!top)
                    .then(|| vec![crate::control::values::round_buffer_size_kb(EXPANDED_KB); ncpu]),
                buffer_percent: 50,
                subbuf_kb: 4,
                cpumask: (0..ncpu.div_ceil(64))
                    .map(|w| u64::MAX >> (64 - (ncpu - w * 64).min(64)))
                    .collect(),
                saved_cmdlines_size: 6552,
                tracing_thresh: 0,
                max_latency: 0,
                options: OPTIONS
                    .iter()
                    .map(|o| if top { o.1 } else { o.2 })
                    .collect(),
                error_log: VecDeque::new(),
                event_pids: BTreeSet::new(),
                event_notrace_pids: BTreeSet::new(),
                ftrace_pids: BTreeSet::new(),
                ftrace_notrace_pids: BTreeSet::new(),
                filters: Default::default(),
            }),
        }
    }

    pub fn is_top(&self) -> bool {
        self.serial == 0
    }

    pub fn is_alive(&self) -> bool {
        *self.life.read() == Life::Alive
    }

    /// Does this trace array offer option `idx` as a file in `options/`?
    pub fn offers_option(&self, idx: usize) -> bool {
        self.is_top() || OPTIONS[idx].3
    }
}

/// An event's filter: what its `filter` file shows, and the compiled predicate (None after a
/// failed write: the error record is shown and filtering is off, §7.2).
#[derive(Clone)]
pub struct EventFilter {
    pub shown: Vec<u8>,
    pub compiled: Option<std::sync::Arc<crate::control::filter::Filter>>,
}

/// One event's state in one trace array: enable and soft mode (§5.1) and its triggers (§8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventState {
    pub soft: SoftState,
    pub triggers: TriggerList,
    /// `hist:` triggers, listed after the others.
    pub hists: crate::trace::hist::HistList,
}

impl TaState {
    /// The raw enabled flag (soft mode counts): what `set_event` lists and the subsystem `X`
    /// and EBUSY on deletion look at.
    pub fn is_enabled(&self, serial: u64) -> bool {
        self.events
            .get(&serial)
            .is_some_and(|e| e.soft.is_enabled())
    }

    /// Does this trace array hold the event, so that deleting it fails with EBUSY: enabled
    /// (soft mode counts, as a trigger on it makes), or, for a synthetic event (`synthetic`
    /// names it), generated by a histogram's action (the kernel's `synth_event->ref`)?
    pub fn holds_event(&self, serial: u64, synthetic: Option<&str>) -> bool {
        self.is_enabled(serial)
            || synthetic.is_some_and(|name| {
                self.events
                    .values()
                    .any(|e| e.hists.iter().any(|t| t.generates(name)))
            })
    }

    /// What an event's `enable` file reads: `0`, `1`, `0*` or `1*`.
    pub fn enable_text(&self, serial: u64) -> &'static str {
        self.events.get(&serial).map_or("0\n", |e| e.soft.read())
    }

    /// Applies `f` to an event's state, dropping the record again if it is back to default.
    pub fn with_event<R>(&mut self, serial: u64, f: impl FnOnce(&mut EventState) -> R) -> R {
        let e = self.events.entry(serial).or_default();
        let r = f(e);
        if *e == EventState::default() {
            self.events.remove(&serial);
        }
        r
    }

    /// Per-CPU ring sizes in KiB: as set, or the boot size before the first expansion.
    pub fn buffer_sizes(&self, ncpu: usize) -> Vec<u64> {
        self.buffer_kb
            .clone()
            .unwrap_or_else(|| vec![UNEXPANDED_KB; ncpu])
    }

    /// The sub-buffer (page) size in bytes.
    pub fn subbuf_bytes(&self) -> usize {
        (self.subbuf_kb as usize).max(1) * 1024
    }

    /// Does `cpu`'s ring buffer take records? Not while tracing is off, nor for a CPU outside
    /// `tracing_cpumask` (the kernel disables that CPU's buffer).
    pub fn records_on(&self, cpu: usize) -> bool {
        self.tracing_on && self.traces_cpu(cpu)
    }

    /// Is `cpu` in `tracing_cpumask`?
    pub fn traces_cpu(&self, cpu: usize) -> bool {
        self.cpumask
            .get(cpu / 64)
            .is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// Does any event record (or fire triggers) here? Command recording follows it (§10.1:
    /// comms show as `<...>` until an event is enabled).
    pub fn any_enabled(&self) -> bool {
        self.events.values().any(|e| e.soft.is_enabled())
    }

    /// A user write of `0`/`1` to an event (its `enable`, its subsystem's, `set_event`).
    pub fn user_enable(&mut self, serial: u64, on: bool) {
        self.with_event(serial, |e| e.soft.user_write(on));
    }

    /// Adds an `error_log` entry in the kernel's layout (§10.7), dropping the oldest past 8.
    pub fn log_error(&mut self, location: &str, message: &str, command: &str, pos: usize) {
        let (sec, usec) = uptime();
        let entry = format!(
            "[{sec:5}.{usec:06}] {location}: error: {message}\n  Command: {command}\n{:width$}^\n",
            "",
            width = 11 + pos
        );
        if self.error_log.len() == ERROR_LOG_ENTRIES {
            self.error_log.pop_front();
        }
        self.error_log.push_back(entry);
    }
}

/// Index of option `name` in [`OPTIONS`]; a `const fn`, so the data path names options by
/// constants (`const OVERWRITE: usize = option_index("overwrite")`) at no run-time cost. A
/// name not in the table fails the build where used in a constant.
pub const fn option_index(name: &str) -> usize {
    let mut i = 0;
    while i < OPTIONS.len() {
        if str_eq(OPTIONS[i].0, name) {
            return i;
        }
        i += 1;
    }
    panic!("unknown trace option")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Clocks that count something other than nanoseconds (`trace` prints their raw value).
pub fn clock_in_ns(idx: usize) -> bool {
    !matches!(TRACE_CLOCKS.get(idx), Some(&"counter") | Some(&"x86-tsc"))
}

/// CLOCK_MONOTONIC now, in nanoseconds: the time sources stamp their records with.
pub fn mono_now_ns() -> u64 {
    clock_gettime(libc::CLOCK_MONOTONIC)
}

fn clock_gettime(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Now on trace clock `idx` (§10, `trace_clock`). `local`, `global`, `perf` and `mono` are the
/// kernel's sched_clock/ktime variants, all CLOCK_MONOTONIC seen from userspace; `uptime` is
/// jiffies-based (whole jiffies of 4 ms at HZ=250); `counter` counts records.
pub fn clock_ns(idx: usize) -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match TRACE_CLOCKS.get(idx).copied().unwrap_or("local") {
        "counter" => COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        "uptime" => clock_gettime(libc::CLOCK_MONOTONIC) / 4_000_000 * 4_000_000,
        "mono_raw" => clock_gettime(libc::CLOCK_MONOTONIC_RAW),
        "boot" => clock_gettime(libc::CLOCK_BOOTTIME),
        "tai" => clock_gettime(libc::CLOCK_TAI),
        // SAFETY: rdtsc has no preconditions on x86-64.
        #[cfg(target_arch = "x86_64")]
        "x86-tsc" => unsafe { core::arch::x86_64::_rdtsc() },
        _ => clock_gettime(libc::CLOCK_MONOTONIC),
    }
}

/// A CLOCK_MONOTONIC time `mono_ns` (a source's timestamp) expressed on trace clock `idx`.
pub fn clock_from_mono(idx: usize, mono_ns: u64) -> u64 {
    match TRACE_CLOCKS.get(idx).copied().unwrap_or("local") {
        "local" | "global" | "perf" | "mono" => mono_ns,
        _ => {
            let now = clock_ns(idx);
            let age = clock_gettime(libc::CLOCK_MONOTONIC).saturating_sub(mono_ns);
            now.saturating_sub(age)
        }
    }
}

/// Seconds and microseconds since boot (the kernel's `local` trace clock is close to this).
pub fn uptime() -> (u64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64, (ts.tv_nsec / 1000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_table_matches_kernel_counts() {
        assert_eq!(OPTIONS.len(), 37);
        assert_eq!(OPTIONS.iter().filter(|o| o.3).count(), 31);
        assert_eq!(OPTIONS[TRACE_OPTIONS_SHOWN - 1].0, "test_nop_refuse");
    }

    #[test]
    fn error_log_keeps_eight() {
        let ta = TraceArray::new(0, "", SystemTime::now());
        let mut st = ta.state.lock();
        for i in 0..10 {
            st.log_error(
                "event filter parse error",
                "Field not found",
                &format!("n{i} == 1"),
                0,
            );
        }
        assert_eq!(st.error_log.len(), 8);
        assert!(st.error_log[0].contains("Command: n2 == 1"));
        assert!(st.error_log[0].ends_with("\n           ^\n"));
    }
}
