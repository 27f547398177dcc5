//! The commit path: every source (`crate::sources`: `trace_marker`, `trace_marker_raw`, an
//! event's `inject`, the process connector) commits through [`commit`], which applies what the
//! kernel applies between a tracepoint and the ring buffer (`trace_event_buffer_reserve` and
//! `__event_trigger_test_discard` in `kernel/trace/`):
//!
//! 1. `tracing_on`, `tracing_cpumask` (against the writer's CPU) and
//!    `set_event_pid`/`set_event_notrace_pid` (against the writing task);
//! 2. the event's triggers: those without a condition fire first, those with an `if` filter
//!    are evaluated against the record;
//! 3. a soft-disabled event, or a record its filter rejects, is discarded;
//! 4. the record goes to the trace array's ring buffer of the writer's CPU, stamped with the
//!    trace array's clock, and blocked readers are woken.

use crate::control::filter::{self, RecordContext};
use crate::control::trigger;
use crate::events::registry::{Event, Registry};
use crate::trace::record;
use crate::trace::snapshot;
use crate::trace::state::{self, TaState, TraceArray};

// The options the data path reads on every record.
const OVERWRITE: usize = state::option_index("overwrite");
const RECORD_CMD: usize = state::option_index("record-cmd");
const RECORD_TGID: usize = state::option_index("record-tgid");

/// Who a record is charged to: the task that caused it and the CPU it ran on.
#[derive(Clone, Copy, Debug)]
pub struct Writer {
    pub pid: i32,
    pub cpu: usize,
    /// The `common_preempt_count` the kernel records: 1 for a write(2) path that disables
    /// preemption around the buffer reservation (markers, inject), 0 for tracepoints in
    /// process context.
    pub preempt: u8,
}

impl Writer {
    /// A task writing to one of our files: its CPU is taken to be the one this daemon thread
    /// runs on (FUSE does not say; the writer ran there a moment ago in the common case).
    pub fn task(pid: i32, ncpu: usize) -> Writer {
        // SAFETY: sched_getcpu has no preconditions.
        let cpu = unsafe { libc::sched_getcpu() };
        Writer {
            pid,
            cpu: usize::try_from(cpu)
                .unwrap_or(0)
                .min(ncpu.saturating_sub(1)),
            preempt: 1,
        }
    }
}

/// Where a record comes from, which decides what may stop it. A tracepoint only fires while
/// its event is enabled; `inject` writes whatever the enable state but is discarded like a
/// tracepoint's record (soft-disabled, filtered); a marker is only subject to its triggers
/// (`tracing_mark_write` commits without the discard check).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Tracepoint,
    Inject,
    Marker,
}

/// A record from a source outside any trace array (the process connector): committed to every
/// trace array that has `ev` enabled. `mono_ns` is when it happened on CLOCK_MONOTONIC.
pub fn broadcast(reg: &Registry, ev: &Event, rec: &[u8], w: Writer, mono_ns: u64) {
    for ta in reg.trace_arrays() {
        commit(reg, &ta, ev, rec, w, Some(mono_ns), Source::Tracepoint);
    }
}

/// The common fields of a record of `ev` written by `w`.
pub fn common(ev: &Event, w: Writer) -> record::Common {
    record::Common {
        type_id: ev.def.id.unwrap_or(0) as u16,
        flags: 0,
        preempt_count: w.preempt,
        pid: w.pid,
    }
}

/// A record buffer holding the common header, with room for `extra` more bytes.
pub fn header(ev: &Event, w: Writer, extra: usize) -> Vec<u8> {
    let mut rec = Vec::with_capacity(8 + extra);
    rec.extend_from_slice(&common(ev, w).to_bytes());
    rec
}

/// Commits one record of `ev` to `ta` (see the module doc). Returns whether it was stored.
pub fn commit(
    reg: &Registry,
    ta: &TraceArray,
    ev: &Event,
    rec: &[u8],
    w: Writer,
    mono_ns: Option<u64>,
    source: Source,
) -> bool {
    commit_views(reg, ta, ev, rec, false, w, mono_ns, source)
}

/// A `trace_marker` record whose text ends in the newline the write supplied: the event's
/// triggers see the text without it, as the kernel tests them before adding it.
pub fn commit_marker_with_newline(
    reg: &Registry,
    ta: &TraceArray,
    ev: &Event,
    rec: &[u8],
    w: Writer,
) -> bool {
    commit_views(reg, ta, ev, rec, true, w, None, Source::Marker)
}

#[allow(clippy::too_many_arguments)]
fn commit_views(
    reg: &Registry,
    ta: &TraceArray,
    ev: &Event,
    full: &[u8],
    added_newline: bool,
    w: Writer,
    mono_ns: Option<u64>,
    source: Source,
) -> bool {
    // A record stamped now goes after the late records of every source that catches up.
    if mono_ns.is_none()
        && let Some(catch_up) = reg.catch_up.get()
    {
        catch_up(Some(w.cpu));
    }
    let mut st = ta.state.lock();
    // What triggers see: the record without a supplied trailing newline (only built when the
    // event has triggers).
    let rec: std::borrow::Cow<[u8]> = match st.events.get(&ev.serial) {
        Some(e) if added_newline && (!e.triggers.is_empty() || !e.hists.is_empty()) => {
            let mut r = full[..full.len().saturating_sub(2)].to_vec();
            r.push(0);
            r.into()
        }
        _ => full.into(),
    };
    let rec = &*rec;
    let soft = st
        .events
        .get(&ev.serial)
        .map(|e| e.soft)
        .unwrap_or_default();
    if source == Source::Tracepoint && !soft.is_enabled() {
        return false;
    }
    let ctx = RecordContext {
        cpu: w.cpu as u32,
        comm: String::new(),
    };
    let tracepoint = source == Source::Tracepoint;
    let was_on = st.tracing_on;
    // A CPU outside `tracing_cpumask` has its ring buffer disabled: nothing is stored there,
    // as with tracing off, while a tracepoint's triggers still fire.
    let cpu_traced = st.traces_cpu(w.cpu);
    let stores = was_on && cpu_traced;
    if !tracepoint && !stores {
        return false;
    }
    // A tracepoint's triggers fire whether tracing is on or not, so `traceon` works while it
    // is off. Those that need no record (no `if` filter, no `stacktrace`) fire before the pid
    // lists are looked at (the kernel's `trace_trigger_soft_disabled`), the others only for a
    // task the pid lists let through. The record that fired them is written if tracing was on
    // before or is on after (all checked on 6.18 with the process connector's fork events).
    let early = tracepoint && !needs_record(&st, ev);
    // These fire before the record is reserved: a snapshot they take leaves it to the new
    // live buffer.
    if early && fire_triggers(reg, &mut st, ev, rec, &ctx).snapshot {
        snapshot::take(reg, ta, &mut st);
    }
    if ignores_pid(&st, w.pid) {
        return false;
    }
    let fired = match early {
        true => Fired::default(),
        false => fire_triggers(reg, &mut st, ev, rec, &ctx),
    };
    // These fire once the record is reserved in the live buffer, which a snapshot they take
    // turns into the snapshot: the record is committed there (as `trace_marker` with a
    // `snapshot` trigger shows in the kernel).
    let mut into_snapshot = fired.snapshot && snapshot::take(reg, ta, &mut st);
    let hists = st.events.get(&ev.serial).map(|e| e.hists.clone());
    let clock = st.trace_clock;
    let now = || match mono_ns {
        Some(m) => state::clock_from_mono(clock, m),
        None => state::clock_ns(clock),
    };
    // Hist triggers update their maps outside the state lock (each map locks per record).
    let hist_ts = match hists.filter(|h| !h.is_empty()) {
        Some(hists) => {
            drop(st);
            let ts = now();
            for h in hists.iter() {
                let out = h.update(rec, &ctx, ts, || hist_comm(reg, w.pid));
                for f in out.synth {
                    trace_synth(reg, ta, &f, w, mono_ns);
                }
                // Like the `snapshot` trigger's, the record lands in what became the snapshot.
                if out.snapshot {
                    into_snapshot |= snapshot::take_unlocked(reg, ta);
                }
            }
            st = ta.state.lock();
            Some(ts)
        }
        None => None,
    };
    if !(st.tracing_on || was_on) || !cpu_traced {
        return false;
    }
    let filtered = st
        .filters
        .get(&ev.serial)
        .and_then(|f| f.compiled.as_ref())
        .is_some_and(|f| !f.matches(rec, &ctx));
    let keep = source == Source::Marker || (!soft.is_soft_disabled() && !filtered);
    let overwrite = st.options[OVERWRITE];
    // Cheapest tests first: this runs for every record.
    let save_comm = st.options[RECORD_CMD]
        && !reg.tasks.knows(w.pid)
        && (soft.is_enabled() || st.any_enabled());
    let save_tgid = st.options[RECORD_TGID];
    let cmdlines = st.saved_cmdlines_size as usize;
    drop(st);
    let stored = {
        let mut buf = ta.buffer.lock();
        let ts = hist_ts.unwrap_or_else(now);
        let mut stored = keep
            && if into_snapshot && let Some(snap) = buf.snapshot_mut() {
                snap.write(w.cpu, ts, full, overwrite)
            } else {
                buf.write(w.cpu, ts, full, overwrite)
            };
        if fired.stack {
            stored |= write_stack(reg, &mut buf, w, ts, overwrite);
        }
        stored
    };
    if stored {
        if save_comm {
            reg.tasks.save(w.pid, cmdlines);
        }
        if save_tgid {
            reg.tasks.save_tgid(w.pid);
        }
        if let Some(wake) = reg.on_commit.get() {
            wake();
        }
    }
    stored
}

/// Does any trigger of `ev` need the record (the kernel's `EVENT_FILE_FL_TRIGGER_COND`): one
/// with an `if` filter, a post-trigger (`stacktrace`) or a `hist`? Then all of them fire at
/// commit.
fn needs_record(st: &TaState, ev: &Event) -> bool {
    st.events.get(&ev.serial).is_some_and(|e| {
        !e.hists.is_empty()
            || e.triggers
                .iter()
                .any(|t| t.filter.is_some() || t.cmd == trigger::TriggerCmd::StackTrace)
    })
}

/// A synthetic event generated by a histogram action (`trace_synth()`): a tracepoint record
/// of the same task, through this same commit path (its own filters, triggers and soft mode).
/// Actions feeding each other are cut off a few levels deep, as the kernel's recursion guard
/// does. It carries the time of the record that fired it (`mono_ns`): a late record's
/// synthetic event is as late, and is never stamped now from inside a source's catch-up
/// (which would wait for the very lock that source holds while committing).
fn trace_synth(
    reg: &Registry,
    ta: &TraceArray,
    f: &crate::trace::hist::Fired,
    w: Writer,
    mono_ns: Option<u64>,
) {
    use crate::trace::hist::ActionValue;
    thread_local! {
        static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    let Some(ev) = reg.find_event("synthetic", &f.synth) else {
        return;
    };
    if DEPTH.with(|d| d.get()) >= 4 {
        return;
    }
    let layout = ev.layout();
    let values: Vec<(&str, record::Value)> = layout
        .fields
        .event_fields()
        .iter()
        .zip(&f.values)
        .map(|(field, v)| {
            let v = match v {
                ActionValue::Num(n) if field.signed => record::Value::Int(i128::from(*n as i64)),
                ActionValue::Num(n) => record::Value::Int(i128::from(*n)),
                ActionValue::Str(b) => record::Value::str(b),
            };
            (field.name.as_str(), v)
        })
        .collect();
    let Ok(rec) = layout.record.build(&common(&ev, w), &values) else {
        return;
    };
    DEPTH.with(|d| d.set(d.get() + 1));
    commit(reg, ta, &ev, &rec, w, mono_ns, Source::Tracepoint);
    DEPTH.with(|d| d.set(d.get() - 1));
}

/// The comm a new histogram entry keyed `.execname` shows (`save_comm()`).
fn hist_comm(reg: &Registry, pid: i32) -> String {
    let mut s = String::new();
    reg.tasks.comm_of(pid, &mut s);
    if s == "<...>" {
        return crate::trace::tasks::proc_comm(pid).unwrap_or(s);
    }
    s
}

/// `set_event_pid`/`set_event_notrace_pid` (§10.8): is the writing task filtered out?
fn ignores_pid(st: &TaState, pid: i32) -> bool {
    let pid = pid as u32;
    (!st.event_pids.is_empty() && !st.event_pids.contains(&pid))
        || st.event_notrace_pids.contains(&pid)
}

/// What the triggers fired for one record ask of the commit path.
#[derive(Clone, Copy, Default)]
struct Fired {
    /// A `stacktrace` fired: a stack record follows the record.
    stack: bool,
    /// A `snapshot` fired.
    snapshot: bool,
}

/// Fires the triggers of `ev` for one record.
fn fire_triggers(
    reg: &Registry,
    st: &mut TaState,
    ev: &Event,
    rec: &[u8],
    ctx: &RecordContext,
) -> Fired {
    let Some(mut triggers) = st.events.get(&ev.serial).map(|e| e.triggers.clone()) else {
        return Fired::default();
    };
    if triggers.is_empty() {
        return Fired::default();
    }
    let mut fired = Fired::default();
    for t in triggers.iter_mut() {
        if let Some(text) = t.filter.as_deref()
            && !trigger_filter_matches(ev, text, rec, ctx)
        {
            continue;
        }
        let target = t.cmd.target().and_then(|(s, e)| reg.find_event(s, e));
        let mut tracing_on = st.tracing_on;
        let action = match &target {
            Some(tgt) => {
                let mut soft = st
                    .events
                    .get(&tgt.serial)
                    .map(|e| e.soft)
                    .unwrap_or_default();
                let a = trigger::fire(t, &mut tracing_on, Some(&mut soft));
                st.with_event(tgt.serial, |e| e.soft = soft);
                a
            }
            None => trigger::fire(t, &mut tracing_on, None),
        };
        // hist_enable_trigger(): pauses or continues every hist trigger of the target.
        if let (trigger::Action::HistTarget(on), Some(tgt)) = (action, &target)
            && let Some(e) = st.events.get(&tgt.serial)
        {
            for h in e.hists.iter() {
                h.set_paused(!on);
            }
        }
        fired.stack |= action == trigger::Action::StackTrace;
        fired.snapshot |= action == trigger::Action::Snapshot;
        st.tracing_on = tracing_on;
    }
    // Counts changed: store the fired list back.
    st.with_event(ev.serial, |e| e.triggers = triggers);
    fired
}

fn trigger_filter_matches(ev: &Event, text: &str, rec: &[u8], ctx: &RecordContext) -> bool {
    filter::compile_condition(text.as_bytes(), &ev.layout().fields)
        .is_ok_and(|f| f.matches(rec, ctx))
}

/// A `stacktrace` trigger's record: `ftrace:kernel_stack` with no kernel frames (a task in
/// userspace has none the daemon could know), which `trace` shows as `<stack trace>`.
fn write_stack(
    reg: &Registry,
    buf: &mut crate::trace::buffer::TraceBuffer,
    w: Writer,
    ts: u64,
    overwrite: bool,
) -> bool {
    let Some(ks) = reg.find_event("ftrace", "kernel_stack") else {
        return false;
    };
    match ks.layout().record.build::<&str>(&common(&ks, w), &[]) {
        Ok(rec) => buf.write(w.cpu, ts, &rec, overwrite),
        Err(_) => false,
    }
}
