//! The tracefs file set and what each file reads and accepts: names, modes, contents, write
//! semantics and errno, on top of the registry and a trace array's state. No FUSE here: the
//! filesystem adapter maps its inodes to a [`File`] and calls [`read`], [`write`] and [`open`].

use std::fmt::Write as _;
use std::sync::Arc;

use libc::EINVAL;

use crate::control::dynevent;
use crate::control::filter;
use crate::control::trigger;
use crate::control::values;
use crate::control::{cpumask, set_event};
use crate::events::catalog::EventFile;
use crate::events::registry::{Event, Registry, RemovedEvent, System};
use crate::fs::hist;
use crate::sources::{inject, markers};
use crate::trace::commit;
use crate::trace::snapshot;
use crate::trace::state::{self, OPTIONS, TRACE_CLOCKS, TaState, TraceArray};

/// Files in the root of a trace array (the mount root or an instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopFile {
    Readme,
    AvailableEvents,
    AvailableFilterFunctions,
    AvailableFilterFunctionsAddrs,
    AvailableTracers,
    BufferPercent,
    BufferSizeKb,
    BufferSubbufSizeKb,
    BufferTotalSizeKb,
    CurrentTracer,
    DynFtraceTotalInfo,
    DynamicEvents,
    EnabledFunctions,
    ErrorLog,
    FreeBuffer,
    PrintkFormats,
    SavedCmdlines,
    SavedCmdlinesSize,
    SavedTgids,
    SetEvent,
    SetEventNotracePid,
    SetEventPid,
    SetFtraceFilter,
    SetFtraceNotrace,
    SetFtraceNotracePid,
    SetFtracePid,
    Snapshot,
    SyntheticEvents,
    TimestampMode,
    TouchedFunctions,
    Trace,
    TraceClock,
    TraceMarker,
    TraceMarkerRaw,
    TraceOptions,
    TracePipe,
    TracingCpumask,
    TracingMaxLatency,
    TracingOn,
    TracingThresh,
    UprobeEvents,
    UprobeProfile,
}

/// One row of the root file table: name, mode, and whether instances have it too.
pub struct TopSpec {
    pub name: &'static str,
    pub mode: u16,
    pub file: TopFile,
    pub in_instance: bool,
}

impl TopSpec {
    /// Does `ta`'s root offer this file? Instances have fewer files than the top level, and
    /// `synthetic_events` and `snapshot` exist only where the kernel has the feature (and
    /// `tracing_max_latency` with `snapshot`: CONFIG_TRACER_SNAPSHOT selects
    /// CONFIG_TRACER_MAX_TRACE).
    pub fn offered(&self, reg: &Registry, ta: &TraceArray) -> bool {
        let feature = match self.file {
            TopFile::SyntheticEvents => reg.features.synthetic_events,
            TopFile::Snapshot | TopFile::TracingMaxLatency => reg.features.snapshot,
            _ => true,
        };
        (ta.is_top() || self.in_instance) && feature
    }
}

const fn top(name: &'static str, mode: u16, file: TopFile, in_instance: bool) -> TopSpec {
    TopSpec {
        name,
        mode,
        file,
        in_instance,
    }
}

/// The root files of spec §2.1 (and which of them an instance has, §11).
pub const TOP_FILES: &[TopSpec] = {
    use TopFile::*;
    &[
        top("README", 0o440, Readme, false),
        top("available_events", 0o440, AvailableEvents, false),
        top(
            "available_filter_functions",
            0o440,
            AvailableFilterFunctions,
            false,
        ),
        top(
            "available_filter_functions_addrs",
            0o440,
            AvailableFilterFunctionsAddrs,
            false,
        ),
        top("available_tracers", 0o440, AvailableTracers, true),
        top("buffer_percent", 0o640, BufferPercent, true),
        top("buffer_size_kb", 0o640, BufferSizeKb, true),
        top("buffer_subbuf_size_kb", 0o640, BufferSubbufSizeKb, true),
        top("buffer_total_size_kb", 0o440, BufferTotalSizeKb, true),
        top("current_tracer", 0o640, CurrentTracer, true),
        top("dyn_ftrace_total_info", 0o440, DynFtraceTotalInfo, false),
        top("dynamic_events", 0o640, DynamicEvents, false),
        top("enabled_functions", 0o440, EnabledFunctions, false),
        top("error_log", 0o640, ErrorLog, true),
        top("free_buffer", 0o200, FreeBuffer, true),
        top("printk_formats", 0o440, PrintkFormats, false),
        top("saved_cmdlines", 0o440, SavedCmdlines, false),
        top("saved_cmdlines_size", 0o640, SavedCmdlinesSize, false),
        top("saved_tgids", 0o440, SavedTgids, false),
        top("set_event", 0o640, SetEvent, true),
        top("set_event_notrace_pid", 0o640, SetEventNotracePid, true),
        top("set_event_pid", 0o640, SetEventPid, true),
        top("set_ftrace_filter", 0o640, SetFtraceFilter, true),
        top("set_ftrace_notrace", 0o640, SetFtraceNotrace, true),
        top("set_ftrace_notrace_pid", 0o640, SetFtraceNotracePid, true),
        top("set_ftrace_pid", 0o640, SetFtracePid, true),
        top("snapshot", 0o640, Snapshot, true),
        top("synthetic_events", 0o640, SyntheticEvents, false),
        top("timestamp_mode", 0o440, TimestampMode, true),
        top("touched_functions", 0o440, TouchedFunctions, false),
        top("trace", 0o640, Trace, true),
        top("trace_clock", 0o640, TraceClock, true),
        top("trace_marker", 0o220, TraceMarker, true),
        top("trace_marker_raw", 0o220, TraceMarkerRaw, true),
        top("trace_options", 0o640, TraceOptions, true),
        top("trace_pipe", 0o440, TracePipe, true),
        top("tracing_cpumask", 0o640, TracingCpumask, true),
        top("tracing_max_latency", 0o640, TracingMaxLatency, true),
        top("tracing_on", 0o640, TracingOn, true),
        top("tracing_thresh", 0o640, TracingThresh, false),
        top("uprobe_events", 0o640, UprobeEvents, false),
        top("uprobe_profile", 0o440, UprobeProfile, false),
    ]
};

/// The root's names in the kernel's readdir order: newest dentry first (a dcache artefact,
/// spec §2.3), so the reverse of the order the kernel creates them in. `synthetic_events`
/// (absent from the reference kernel) sits where its initcall would create it.
pub const TOP_READDIR: &[&str] = &[
    "instances",
    "dyn_ftrace_total_info",
    "saved_tgids",
    "saved_cmdlines_size",
    "saved_cmdlines",
    "README",
    "tracing_thresh",
    "set_ftrace_notrace",
    "set_ftrace_filter",
    "touched_functions",
    "enabled_functions",
    "available_filter_functions_addrs",
    "available_filter_functions",
    "set_ftrace_notrace_pid",
    "set_ftrace_pid",
    "per_cpu",
    "error_log",
    "snapshot",
    "tracing_max_latency",
    "options",
    "buffer_subbuf_size_kb",
    "buffer_percent",
    "timestamp_mode",
    "tracing_on",
    "trace_clock",
    "trace_marker_raw",
    "trace_marker",
    "free_buffer",
    "buffer_total_size_kb",
    "buffer_size_kb",
    "trace_pipe",
    "trace",
    "trace_options",
    "tracing_cpumask",
    "current_tracer",
    "available_tracers",
    "set_event_notrace_pid",
    "set_event_pid",
    "events",
    "uprobe_profile",
    "uprobe_events",
    "set_event",
    "dynamic_events",
    "synthetic_events",
    "available_events",
    "printk_formats",
];

/// An instance root's names in the kernel's readdir order.
pub const INSTANCE_READDIR: &[&str] = &[
    "set_ftrace_notrace_pid",
    "set_ftrace_pid",
    "per_cpu",
    "error_log",
    "snapshot",
    "set_ftrace_notrace",
    "set_ftrace_filter",
    "tracing_max_latency",
    "options",
    "buffer_subbuf_size_kb",
    "buffer_percent",
    "timestamp_mode",
    "tracing_on",
    "trace_clock",
    "trace_marker_raw",
    "trace_marker",
    "free_buffer",
    "buffer_total_size_kb",
    "buffer_size_kb",
    "trace_pipe",
    "trace",
    "trace_options",
    "tracing_cpumask",
    "current_tracer",
    "available_tracers",
    "set_event_notrace_pid",
    "set_event_pid",
    "events",
    "set_event",
];

/// `options/` in the kernel's readdir order: the tracers' options (created as each tracer
/// registers) before the core ones, all newest first.
pub const OPTIONS_READDIR: &[&str] = &[
    "blk_cgname",
    "blk_cgroup",
    "blk_classic",
    "test_nop_refuse",
    "test_nop_accept",
    "func-no-repeats",
    "func_stack_trace",
    "stacktrace",
    "function-fork",
    "function-trace",
    "hash-ptr",
    "pause-on-trace",
    "copy_trace_marker",
    "trace_printk_dest",
    "event-fork",
    "markers",
    "irq-info",
    "disable_on_free",
    "overwrite",
    "record-tgid",
    "record-cmd",
    "latency-format",
    "context-info",
    "printk-msg-only",
    "sym-userobj",
    "userstacktrace",
    "annotate",
    "trace_printk",
    "fields",
    "block",
    "bin",
    "hex",
    "raw",
    "verbose",
    "sym-addr",
    "sym-offset",
    "print-parent",
];

/// `per_cpu/cpuN/` in the kernel's readdir order.
pub const CPU_READDIR: &[&str] = &[
    "snapshot_raw",
    "snapshot",
    "buffer_size_kb",
    "stats",
    "trace_pipe_raw",
    "trace",
    "trace_pipe",
];

/// Files in `per_cpu/cpuN/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuFile {
    BufferSizeKb,
    Stats,
    Trace,
    TracePipe,
    TracePipeRaw,
    Snapshot,
    SnapshotRaw,
}

impl CpuFile {
    /// The snapshot files exist only where the kernel has the snapshot buffer.
    pub fn offered(self, reg: &Registry) -> bool {
        !matches!(self, CpuFile::Snapshot | CpuFile::SnapshotRaw) || reg.features.snapshot
    }
}

pub const CPU_FILES: &[(&str, u16, CpuFile)] = &[
    ("buffer_size_kb", 0o640, CpuFile::BufferSizeKb),
    ("stats", 0o440, CpuFile::Stats),
    ("trace", 0o640, CpuFile::Trace),
    ("trace_pipe", 0o440, CpuFile::TracePipe),
    ("trace_pipe_raw", 0o440, CpuFile::TracePipeRaw),
    ("snapshot", 0o640, CpuFile::Snapshot),
    ("snapshot_raw", 0o440, CpuFile::SnapshotRaw),
];

/// Files directly in `events/`, in readdir order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventsFile {
    Enable,
    HeaderPage,
    HeaderEvent,
}

pub const EVENTS_FILES: &[(&str, u16, EventsFile)] = &[
    ("enable", 0o640, EventsFile::Enable),
    ("header_page", 0o440, EventsFile::HeaderPage),
    ("header_event", 0o440, EventsFile::HeaderEvent),
];

/// Files in a subsystem directory, in readdir order (`filter` before `enable`, §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemFile {
    Filter,
    Enable,
}

pub const SYSTEM_FILES: &[(&str, u16, SystemFile)] = &[
    ("filter", 0o640, SystemFile::Filter),
    ("enable", 0o640, SystemFile::Enable),
];

/// Any tracefs file, resolved to what it acts on.
#[derive(Clone)]
pub enum File {
    Top(TopFile),
    Option(usize),
    Cpu(usize, CpuFile),
    Events(EventsFile),
    System(Arc<System>, SystemFile),
    Event(Arc<Event>, EventFile),
}

impl File {
    /// Files that answer EOF to any read past offset 0 (§3.3).
    pub fn eof_past_zero(&self) -> bool {
        matches!(
            self,
            File::Events(EventsFile::HeaderPage | EventsFile::HeaderEvent)
                | File::System(_, SystemFile::Filter)
                | File::Event(_, EventFile::Filter)
        )
    }

    /// Open files of these hold a reference on their trace array, so `rmdir` of an instance
    /// fails with EBUSY while one is open; an event's `format`, `trigger` and `id` do not
    /// (verified on 6.18, §11).
    pub fn pins_trace_array(&self) -> bool {
        !matches!(
            self,
            File::Event(_, EventFile::Format | EventFile::Trigger | EventFile::Id)
        )
    }

    /// Consuming readers that block while the buffer is empty.
    pub fn is_pipe(&self) -> bool {
        matches!(
            self,
            File::Top(TopFile::TracePipe)
                | File::Cpu(
                    _,
                    CpuFile::TracePipe | CpuFile::TracePipeRaw | CpuFile::SnapshotRaw
                )
        )
    }
}

const SYSTEM_FILTER_BANNER: &str = "### global filter ###\n\
# Use this to set filters for multiple events.\n\
# Only events with the given fields will be affected.\n\
# If no events are modified, an error message will be displayed here\n";

const README: &str = include_str!("tracefs_readme.txt");

/// `readme_msg`'s line for the hist `snapshot()` action.
const SNAPSHOT_ACTION_LINE: &str =
    "\t        snapshot()                           - snapshot the trace buffer\n\n";

/// `README` on this kernel: the lines the kernel has under CONFIG_TRACER_SNAPSHOT join where
/// its `readme_msg` has them when the snapshot buffer is offered (the `snapshot` file after
/// the function tracer's files, which this README leaves out, and the `snapshot` trigger
/// after `stacktrace`).
fn readme(reg: &Registry) -> String {
    if !reg.features.snapshot {
        // The hist actions' `snapshot()` line is the kernel's under CONFIG_TRACER_SNAPSHOT too.
        return README.replacen(SNAPSHOT_ACTION_LINE, "", 1);
    }
    README
        .replacen(
            "comm-pid list\n\n",
            "comm-pid list\n\n  snapshot\t\t- Like 'trace' but shows the content of the static\n\
             \t\t\t  snapshot buffer. Read the contents for more\n\
             \t\t\t  information\n",
            1,
        )
        .replacen(
            "\t\t    stacktrace\n",
            "\t\t    stacktrace\n\t\t    snapshot\n",
            1,
        )
}

/// The content of a file, generated from the current state.
pub fn read(reg: &Registry, ta: &TraceArray, file: &File) -> Result<Vec<u8>, i32> {
    // What records change (`trace`, stats, soft mode set by triggers, pid lists grown by
    // `event-fork`) shows the late records made before this read too.
    if !matches!(
        file,
        File::Event(_, EventFile::Format | EventFile::Id)
            | File::Events(EventsFile::HeaderPage | EventsFile::HeaderEvent)
            | File::Cpu(_, CpuFile::Trace)
    ) {
        catch_up(reg);
    }
    let text: String = match file {
        // Filter text is kept as written, which need not be UTF-8.
        File::Event(ev, EventFile::Filter) => {
            return Ok(match ta.state.lock().filters.get(&ev.serial) {
                Some(f) => f.shown.clone(),
                None => b"none\n".to_vec(),
            });
        }
        File::Top(f) => read_top(reg, ta, *f)?,
        File::Option(i) => format!("{}\n", u8::from(ta.state.lock().options[*i])),
        File::Cpu(cpu, f) => read_cpu(reg, ta, *cpu, *f)?,
        File::Events(EventsFile::Enable) => {
            let events = reg.all_events();
            summary(&ta.state.lock(), events.iter())
        }
        File::Events(EventsFile::HeaderPage) => {
            header_page(&reg.header_page, ta.state.lock().subbuf_bytes())
        }
        File::Events(EventsFile::HeaderEvent) => reg.header_event.to_string(),
        File::System(_, SystemFile::Filter) => SYSTEM_FILTER_BANNER.into(),
        File::System(sys, SystemFile::Enable) => {
            let events: Vec<_> = sys.events.read().iter().cloned().collect();
            summary(&ta.state.lock(), events.iter())
        }
        File::Event(ev, EventFile::Enable) => ta.state.lock().enable_text(ev.serial).into(),
        File::Event(ev, EventFile::Trigger) => hist::read_trigger(reg, ta, ev),
        File::Event(ev, EventFile::Hist) => hist::read_hist(ta, ev),
        File::Event(ev, EventFile::Format) => ev.def.format.to_string(),
        File::Event(ev, EventFile::Id) => format!("{}\n", ev.def.id.unwrap_or(0)),
        File::Event(_, EventFile::Inject) => return Err(EINVAL),
    };
    Ok(text.into_bytes())
}

/// `0`, `1`, `X` (mixed) or `?` (nothing in scope) over the enableable events (§5.2).
fn summary<'a>(st: &TaState, events: impl Iterator<Item = &'a Arc<Event>>) -> String {
    let (mut on, mut off) = (false, false);
    for ev in events.filter(|e| e.enableable()) {
        if st.is_enabled(ev.serial) {
            on = true;
        } else {
            off = true;
        }
    }
    match (on, off) {
        (false, false) => "?\n",
        (true, false) => "1\n",
        (false, true) => "0\n",
        (true, true) => "X\n",
    }
    .into()
}

fn read_top(reg: &Registry, ta: &TraceArray, f: TopFile) -> Result<String, i32> {
    use TopFile::*;
    let st = ta.state.lock();
    Ok(match f {
        Readme => hist::readme(reg, readme(reg)),
        AvailableEvents => {
            drop(st);
            let mut out = String::new();
            for ev in reg.listed_events() {
                let _ = writeln!(out, "{}:{}", ev.def.system, ev.def.name);
            }
            out
        }
        // utracefs traces events, not kernel functions: these lists are empty.
        AvailableFilterFunctions
        | AvailableFilterFunctionsAddrs
        | EnabledFunctions
        | TouchedFunctions
        | UprobeProfile
        | UprobeEvents => String::new(),
        // Nothing can be written into the function filters, so they always show what
        // `ftrace.c:t_show` prints for an empty hash.
        SetFtraceFilter => "#### all functions enabled ####\n".into(),
        SetFtraceNotrace => "#### no functions disabled ####\n".into(),
        DynamicEvents | SyntheticEvents => {
            drop(st);
            let mut out = String::new();
            for ev in reg.dynamic_events() {
                let Some(d) = &ev.dynamic else { continue };
                match f {
                    DynamicEvents => out.push_str(&d.dynamic_events_line()),
                    _ if d.kind == dynevent::Kind::Synthetic => {
                        out.push_str(&d.synthetic_events_line())
                    }
                    _ => {}
                }
            }
            out
        }
        PrintkFormats => reg.printk_formats.to_string(),
        SavedCmdlines => reg.tasks.saved_cmdlines(),
        SavedTgids => reg.tasks.saved_tgids(),
        DynFtraceTotalInfo => "0 pages:0 groups: 0\n".into(),
        AvailableTracers => format!("{}\n", state::tracers(ta.is_top()).join(" ")),
        CurrentTracer => format!("{}\n", st.current_tracer),
        BufferPercent => format!("{}\n", st.buffer_percent),
        BufferSizeKb => match &st.buffer_kb {
            None => format!(
                "{} (expanded: {})\n",
                state::UNEXPANDED_KB,
                state::EXPANDED_KB
            ),
            Some(v) if v.iter().all(|k| *k == v[0]) => format!("{}\n", v[0]),
            Some(_) => "X\n".into(),
        },
        BufferTotalSizeKb => match &st.buffer_kb {
            None => {
                let n = reg.ncpu as u64;
                format!(
                    "{} (expanded: {})\n",
                    state::UNEXPANDED_KB * n,
                    state::EXPANDED_KB * n
                )
            }
            Some(v) => format!("{}\n", v.iter().sum::<u64>()),
        },
        BufferSubbufSizeKb => format!("{}\n", st.subbuf_kb),
        SavedCmdlinesSize => format!("{}\n", st.saved_cmdlines_size),
        TracingThresh => format!("{}\n", st.tracing_thresh),
        TracingMaxLatency => format!("{}\n", st.max_latency),
        TracingOn => format!("{}\n", u8::from(st.tracing_on)),
        TracingCpumask => cpumask::format_tracing_cpumask(&st.cpumask, reg.ncpu),
        TimestampMode => "[delta] absolute\n".into(),
        TraceClock => {
            let names: Vec<String> = TRACE_CLOCKS
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == st.trace_clock {
                        format!("[{c}]")
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            format!("{}\n", names.join(" "))
        }
        TraceOptions => {
            let mut out = String::new();
            for (i, o) in OPTIONS[..state::TRACE_OPTIONS_SHOWN].iter().enumerate() {
                let _ = writeln!(out, "{}{}", if st.options[i] { "" } else { "no" }, o.0);
            }
            out
        }
        ErrorLog => st.error_log.iter().map(String::as_str).collect(),
        SetEvent => {
            let enabled: std::collections::HashSet<u64> = st
                .events
                .keys()
                .copied()
                .filter(|s| st.is_enabled(*s))
                .collect();
            drop(st);
            let mut out = String::new();
            // Soft mode counts, so an ignore-enable event with a trigger (`ftrace:print`)
            // is listed too.
            for ev in reg
                .events_in_order()
                .iter()
                .filter(|e| enabled.contains(&e.serial))
            {
                let _ = writeln!(out, "{}:{}", ev.def.system, ev.def.name);
            }
            out
        }
        SetEventPid => pid_lines(&st.event_pids),
        SetEventNotracePid => pid_lines(&st.event_notrace_pids),
        SetFtracePid => pid_lines(&st.ftrace_pids),
        SetFtraceNotracePid => pid_lines(&st.ftrace_notrace_pids),
        Trace => {
            let opts = text_opts(&st);
            drop(st);
            ta.buffer.lock().trace_text(reg, None, opts)
        }
        Snapshot => {
            let opts = text_opts(&st);
            drop(st);
            snapshot::text(reg, &ta.buffer.lock(), None, opts)
        }
        TracePipe => String::new(),
        TraceMarker | TraceMarkerRaw | FreeBuffer => return Err(EINVAL),
    })
}

fn pid_lines(pids: &std::collections::BTreeSet<u32>) -> String {
    pids.iter().map(|p| format!("{p}\n")).collect()
}

/// How `trace` text shows timestamps under the current clock.
fn text_opts(st: &TaState) -> crate::trace::render::text::TextOpts {
    use crate::trace::render::text::TextMode;
    let on = |name| st.options[state::option_index(name)];
    crate::trace::render::text::TextOpts {
        ns: state::clock_in_ns(st.trace_clock),
        tgid: on("record-tgid"),
        irq_info: on("irq-info"),
        context_info: on("context-info"),
        mode: if on("raw") {
            TextMode::Raw
        } else if on("hex") {
            TextMode::Hex
        } else {
            TextMode::Text
        },
    }
}

fn read_cpu(reg: &Registry, ta: &TraceArray, cpu: usize, f: CpuFile) -> Result<String, i32> {
    let st = ta.state.lock();
    Ok(match f {
        // Unlike the top-level file, the per-CPU one shows no "(expanded: …)" note.
        CpuFile::BufferSizeKb => match &st.buffer_kb {
            None => format!("{}\n", state::UNEXPANDED_KB),
            Some(v) => format!("{}\n", v[cpu]),
        },
        CpuFile::Stats => {
            let now = state::clock_ns(st.trace_clock);
            let opts = text_opts(&st);
            drop(st);
            ta.buffer.lock().stats_text(cpu, now, opts)
        }
        CpuFile::Trace => {
            let opts = text_opts(&st);
            drop(st);
            if let Some(catch_up) = reg.catch_up.get() {
                catch_up(Some(cpu));
            }
            ta.buffer.lock().trace_text(reg, Some(cpu), opts)
        }
        CpuFile::Snapshot => {
            let opts = text_opts(&st);
            drop(st);
            snapshot::text(reg, &ta.buffer.lock(), Some(cpu), opts)
        }
        CpuFile::TracePipe | CpuFile::TracePipeRaw | CpuFile::SnapshotRaw => String::new(),
    })
}

/// A consuming read of at least `want` bytes when there is data (`trace_pipe`, per-CPU
/// `trace_pipe` and `trace_pipe_raw`); `None` while the buffer in scope is empty.
pub fn read_pipe(reg: &Registry, ta: &TraceArray, file: &File, want: usize) -> Option<Vec<u8>> {
    let opts = text_opts(&ta.state.lock());
    let mut buf = ta.buffer.lock();
    let out = match file {
        File::Top(TopFile::TracePipe) => buf.consume_text(reg, None, want, opts).into_bytes(),
        File::Cpu(cpu, CpuFile::TracePipe) => {
            buf.consume_text(reg, Some(*cpu), want, opts).into_bytes()
        }
        File::Cpu(cpu, CpuFile::TracePipeRaw) => buf.read_page(*cpu)?,
        File::Cpu(cpu, CpuFile::SnapshotRaw) => snapshot::read_page(&mut buf, *cpu)?,
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

/// Would a consuming read of `file` find data?
pub fn pipe_ready(ta: &TraceArray, file: &File) -> bool {
    let buf = ta.buffer.lock();
    match file {
        File::Cpu(cpu, CpuFile::SnapshotRaw) => {
            buf.snapshot().is_some_and(|s| !s.is_empty(Some(*cpu)))
        }
        File::Cpu(cpu, _) => !buf.is_empty(Some(*cpu)),
        _ => !buf.is_empty(None),
    }
}

/// Side effects of closing a file: closing `free_buffer` shrinks the ring buffers to their
/// minimum (keeping the newest records) and, with `options/disable_on_free`, stops tracing
/// (the kernel's `tracing_free_buffer_release`).
pub fn release(ta: &TraceArray, file: &File) {
    if !matches!(file, File::Top(TopFile::FreeBuffer)) {
        return;
    }
    let mut st = ta.state.lock();
    if st.options[state::option_index("disable_on_free")] {
        st.tracing_on = false;
    }
    let ncpu = ta.buffer.lock().ncpu();
    // A ring never has fewer than two sub-buffers (7 KiB with 4 KiB sub-buffers).
    let min_kb = crate::trace::ringbuf::kb_for_pages(2, st.subbuf_bytes());
    st.buffer_kb = Some(vec![min_kb; ncpu]);
    resize_buffer(ta, &st);
}

/// Side effects of opening with O_TRUNC (§3.4). Events it deletes are added to `removed`.
pub fn open_truncate(
    reg: &Registry,
    ta: &TraceArray,
    file: &File,
    removed: &mut Vec<RemovedEvent>,
) -> Result<(), i32> {
    match file {
        File::Top(TopFile::DynamicEvents) => return delete_all_dynamic(reg, None, removed),
        File::Top(TopFile::SyntheticEvents) => {
            return delete_all_dynamic(reg, Some(dynevent::Kind::Synthetic), removed);
        }
        _ => {}
    }
    catch_up(reg);
    let mut st = ta.state.lock();
    match file {
        File::Top(TopFile::SetEvent) => {
            let serials: Vec<u64> = st.events.keys().copied().collect();
            for serial in serials {
                st.user_enable(serial, false);
            }
            drop(st);
            enables_changed(reg);
            return Ok(());
        }
        File::Top(TopFile::ErrorLog) => st.error_log.clear(),
        File::Top(TopFile::Trace) => ta.buffer.lock().clear(None),
        File::Cpu(cpu, CpuFile::Trace) => ta.buffer.lock().clear(Some(*cpu)),
        File::Top(TopFile::SetEventPid) => st.event_pids.clear(),
        File::Top(TopFile::SetEventNotracePid) => st.event_notrace_pids.clear(),
        File::Top(TopFile::SetFtracePid) => st.ftrace_pids.clear(),
        File::Top(TopFile::SetFtraceNotracePid) => st.ftrace_notrace_pids.clear(),
        _ => {}
    }
    Ok(())
}

/// Applies one write(2); returns the count to report. Events it deletes are added to
/// `removed` (the adapter invalidates what the kernel caches of them before replying).
pub fn write(
    reg: &Registry,
    ta: &TraceArray,
    file: &File,
    data: &[u8],
    pid: i32,
    removed: &mut Vec<RemovedEvent>,
) -> Result<usize, i32> {
    // Late records (the kernel source's) made before this write are committed under the
    // state they were made in: `tracing_on`, pid lists, filters, enables. Markers and
    // `inject` catch up on their own CPU in the commit path.
    let own_record = matches!(
        file,
        File::Top(TopFile::TraceMarker | TopFile::TraceMarkerRaw)
            | File::Event(_, EventFile::Inject)
    );
    if !own_record {
        catch_up(reg);
    }
    let result = write_file(reg, ta, file, data, pid, removed);
    if result.is_ok() && changes_enables(file) {
        enables_changed(reg);
    }
    result
}

/// Can a write to `file` change which events are enabled or in soft mode?
fn changes_enables(file: &File) -> bool {
    matches!(
        file,
        File::Top(TopFile::SetEvent)
            | File::Events(EventsFile::Enable)
            | File::System(_, SystemFile::Enable)
            | File::Event(_, EventFile::Enable | EventFile::Trigger)
    )
}

/// Brings every CPU's late records in (see `Registry::catch_up`).
fn catch_up(reg: &Registry) {
    if let Some(f) = reg.catch_up.get() {
        f(None);
    }
}

/// Tells the sources that follow the enabled events (`sources::kernel`) before the write
/// returns, so records flow from then on.
fn enables_changed(reg: &Registry) {
    if let Some(f) = reg.enables_changed.get() {
        f();
    }
}

fn write_file(
    reg: &Registry,
    ta: &TraceArray,
    file: &File,
    data: &[u8],
    pid: i32,
    removed: &mut Vec<RemovedEvent>,
) -> Result<usize, i32> {
    let n = data.len();
    let writer = || commit::Writer::task(pid, reg.ncpu);
    match file {
        File::Top(f @ (TopFile::DynamicEvents | TopFile::SyntheticEvents)) => {
            write_dynamic(reg, *f == TopFile::SyntheticEvents, data, removed)
        }
        File::Top(TopFile::TraceMarker) => markers::marker(reg, ta, data, writer()),
        File::Top(TopFile::TraceMarkerRaw) => markers::marker_raw(reg, ta, data, writer()),
        File::Event(ev, EventFile::Inject) => inject::inject(reg, ta, ev, data, writer()),
        File::Top(f) => write_top(reg, ta, *f, data),
        File::Option(i) => {
            set_option(ta, *i, values::parse_option_file(data)?)?;
            Ok(n)
        }
        File::Cpu(cpu, CpuFile::BufferSizeKb) => {
            let kb = values::parse_buffer_size_kb(data)?;
            let mut st = ta.state.lock();
            let kb = values::round_buffer_size_kb_for_subbuf(kb, st.subbuf_kb);
            let ncpu = reg.ncpu;
            st.buffer_kb
                .get_or_insert_with(|| vec![state::UNEXPANDED_KB; ncpu])[*cpu] = kb;
            resize_buffer(ta, &st);
            Ok(n)
        }
        File::Cpu(_, CpuFile::Trace) => Ok(n),
        File::Cpu(cpu, CpuFile::Snapshot) => write_snapshot(reg, ta, Some(*cpu), data),
        File::Cpu(..) => Err(EINVAL),
        File::Events(EventsFile::Enable) => {
            let on = values::parse_enable(data)?;
            let events = reg.all_events();
            set_enabled(ta, events.iter(), on).map(|()| n)
        }
        File::Events(_) => Err(EINVAL),
        File::System(sys, SystemFile::Enable) => {
            let on = values::parse_enable(data)?;
            let events: Vec<_> = sys.events.read().iter().cloned().collect();
            set_enabled(ta, events.iter(), on).map(|()| n)
        }
        File::System(sys, SystemFile::Filter) => write_system_filter(ta, sys, data),
        File::Event(ev, EventFile::Enable) => {
            let on = values::parse_enable(data)?;
            set_enabled(ta, std::iter::once(ev), on).map(|()| n)
        }
        File::Event(ev, EventFile::Filter) => {
            let result = filter::compile(data, &filter::Fields::from_format(&ev.def.format));
            let mut st = ta.state.lock();
            apply_filter(&mut st, ev.serial, data, result).map(|()| n)
        }
        File::Event(ev, EventFile::Trigger) => write_trigger(reg, ta, ev, data),
        File::Event(_, EventFile::Format | EventFile::Id | EventFile::Hist) => Err(EINVAL),
    }
}

/// One write to an event's `trigger` file (§8.2). Adding a trigger puts the event in soft
/// mode, and an enable/disable_event trigger its target too (§5.1); removing undoes both.
fn write_trigger(reg: &Registry, ta: &TraceArray, ev: &Event, data: &[u8]) -> Result<usize, i32> {
    let command = trigger::split_command(data);
    if !reg.features.snapshot && matches!(command, Ok(Some((_, b"snapshot", _))))
        || !reg.features.hist
            && matches!(command, Ok(Some((_, b"enable_hist" | b"disable_hist", _))))
    {
        return Err(EINVAL);
    }
    if hist::is_hist_command(reg, data) {
        return hist::write(reg, ta, ev, data).map(|()| data.len());
    }
    let target_ok = |s: &str, e: &str| reg.find_event(s, e).is_some_and(|t| t.enableable());
    let write = trigger::parse_write(data, target_ok, |text| {
        compile_trigger_filter(ta, ev, text).map(drop)
    })?;
    let target = |t: &trigger::Trigger| t.cmd.target().and_then(|(s, e)| reg.find_event(s, e));
    let mut st = ta.state.lock();
    match write {
        trigger::TriggerWrite::Nothing => return Ok(0),
        trigger::TriggerWrite::Add(t) => {
            // Registering arms the snapshot first: a duplicate fails with EEXIST after the
            // buffer is allocated, as in the kernel (`register_snapshot_trigger`).
            if t.cmd == trigger::TriggerCmd::Snapshot {
                snapshot::arm(ta);
            }
            let tgt = target(&t);
            st.with_event(ev.serial, |e| {
                e.triggers.add(t).map(|()| e.soft.own_trigger_added())
            })?;
            if let Some(tgt) = tgt {
                st.with_event(tgt.serial, |e| e.soft.soft_ref());
            }
        }
        trigger::TriggerWrite::Remove(t) => {
            let removed = st.with_event(ev.serial, |e| {
                let r = e.triggers.remove(&t);
                if r.is_some() {
                    e.soft.own_trigger_removed();
                }
                r
            });
            if let Some(tgt) = removed.as_ref().and_then(target) {
                st.with_event(tgt.serial, |e| e.soft.soft_unref());
            }
        }
    }
    Ok(data.len())
}

/// Sets the enable flag of every enableable event among `events`; EINVAL if there is none.
fn set_enabled<'a>(
    ta: &TraceArray,
    events: impl Iterator<Item = &'a Arc<Event>>,
    on: bool,
) -> Result<(), i32> {
    let mut st = ta.state.lock();
    expand_buffer(ta, &mut st);
    let mut any = false;
    for ev in events.filter(|e| e.enableable()) {
        any = true;
        st.user_enable(ev.serial, on);
    }
    if any { Ok(()) } else { Err(EINVAL) }
}

/// The top level's buffer stays at its boot size until tracing is first set up (an enable
/// write, §10.5), as the kernel's `tracing_update_buffers` does.
fn expand_buffer(ta: &TraceArray, st: &mut TaState) {
    if st.buffer_kb.is_none() {
        let kb = values::round_buffer_size_kb(state::EXPANDED_KB);
        let ncpu = ta.buffer.lock().ncpu();
        st.buffer_kb = Some(vec![kb; ncpu]);
        resize_buffer(ta, st);
    }
}

/// `events/header_page` of a trace array whose sub-buffers are `subbuf` bytes: the kernel
/// prints the `data` field's size from the trace array's own buffer (`8176` after `echo 8 >
/// buffer_subbuf_size_kb`, verified on 6.18), so the catalog's line is rewritten to match.
fn header_page(text: &str, subbuf: usize) -> String {
    let num = |line: &str, key: &str| -> Option<(usize, usize)> {
        let at = line.find(key)? + key.len();
        let len = line[at..].find(';')?;
        Some((at, at + len))
    };
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.split_inclusive('\n') {
        if line.contains(" data;")
            && let (Some((o0, o1)), Some((s0, s1))) = (num(line, "offset:"), num(line, "size:"))
            && let Ok(offset) = line[o0..o1].parse::<usize>()
        {
            out.push_str(&line[..s0]);
            out.push_str(&subbuf.saturating_sub(offset).to_string());
            out.push_str(&line[s1..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Makes the ring buffers follow `buffer_size_kb` and `buffer_subbuf_size_kb`.
fn resize_buffer(ta: &TraceArray, st: &TaState) {
    let kb = st.buffer_sizes(ta.buffer.lock().ncpu());
    ta.buffer.lock().resize(&kb, st.subbuf_bytes());
}

/// A write to `snapshot` or `per_cpu/cpuN/snapshot`: like the kernel's
/// `tracing_snapshot_write`, it sets up the buffers (as an enable write does) before it
/// looks at the value.
fn write_snapshot(
    reg: &Registry,
    ta: &TraceArray,
    cpu: Option<usize>,
    data: &[u8],
) -> Result<usize, i32> {
    expand_buffer(ta, &mut ta.state.lock());
    let val = values::parse_unsigned(data)?;
    snapshot::write(reg, ta, cpu, val).map(|()| data.len())
}

/// Sets trace option `idx`. The nop tracer refuses to set `test_nop_refuse` (its test flag).
fn set_option(ta: &TraceArray, idx: usize, on: bool) -> Result<(), i32> {
    if on && OPTIONS[idx].0 == "test_nop_refuse" {
        return Err(EINVAL);
    }
    ta.state.lock().options[idx] = on;
    Ok(())
}

fn write_top(reg: &Registry, ta: &TraceArray, f: TopFile, data: &[u8]) -> Result<usize, i32> {
    use TopFile::*;
    let n = data.len();
    match f {
        SetEvent => {
            let w = set_event::parse_set_event(data)?;
            if let Some(cmd) = w.command {
                let matched: Vec<_> = reg
                    .listed_events()
                    .into_iter()
                    .filter(|e| cmd.selector.matches(&e.def.system, &e.def.name))
                    .collect();
                set_enabled(ta, matched.iter(), cmd.enable)?;
            }
            Ok(w.consumed)
        }
        TracingOn => {
            ta.state.lock().tracing_on = values::parse_tracing_on(data)?;
            Ok(n)
        }
        CurrentTracer => {
            let word = values::parse_current_tracer(data)?;
            let name = state::tracers(ta.is_top())
                .iter()
                .find(|t| **t == word)
                .ok_or(EINVAL)?;
            // An instance lists `function` but refuses to switch to it (verified on 6.18).
            if !ta.is_top() && *name != "nop" {
                return Err(libc::EPERM);
            }
            ta.state.lock().current_tracer = name;
            Ok(n)
        }
        TraceClock => {
            let word = values::parse_trace_clock(data)?;
            let idx = TRACE_CLOCKS.iter().position(|c| *c == word).ok_or(EINVAL)?;
            ta.state.lock().trace_clock = idx;
            Ok(n)
        }
        BufferSizeKb => {
            let kb = values::parse_buffer_size_kb(data)?;
            let mut st = ta.state.lock();
            let kb = values::round_buffer_size_kb_for_subbuf(kb, st.subbuf_kb);
            st.buffer_kb = Some(vec![kb; reg.ncpu]);
            resize_buffer(ta, &st);
            Ok(n)
        }
        BufferPercent => {
            ta.state.lock().buffer_percent = values::parse_buffer_percent(data)?;
            Ok(n)
        }
        BufferSubbufSizeKb => {
            let mut st = ta.state.lock();
            st.subbuf_kb = values::parse_buffer_subbuf_size_kb(data)?;
            // A new sub-buffer size rebuilds the buffer (the kernel discards its contents).
            ta.buffer.lock().clear(None);
            resize_buffer(ta, &st);
            Ok(n)
        }
        SavedCmdlinesSize => {
            let n_cmdlines = values::parse_saved_cmdlines_size(data)?;
            ta.state.lock().saved_cmdlines_size = values::saved_cmdlines_capacity(n_cmdlines);
            Ok(n)
        }
        TracingThresh => {
            let usecs = values::parse_tracing_thresh(data)?;
            ta.state.lock().tracing_thresh = values::tracing_thresh_readback(usecs);
            Ok(n)
        }
        // The same `tracing_nsecs_write` as `tracing_thresh`, per trace array.
        TracingMaxLatency => {
            let usecs = values::parse_tracing_thresh(data)?;
            ta.state.lock().max_latency = values::tracing_thresh_readback(usecs);
            Ok(n)
        }
        TracingCpumask => {
            ta.state.lock().cpumask = cpumask::parse_tracing_cpumask_for(data, reg.ncpu)?;
            Ok(n)
        }
        TraceOptions => {
            let names: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
            let (name, on) = values::parse_trace_options(data, &names)?;
            let idx = names.iter().position(|o| *o == name).ok_or(EINVAL)?;
            set_option(ta, idx, on)?;
            Ok(n)
        }
        SetEventPid | SetEventNotracePid | SetFtracePid | SetFtraceNotracePid => {
            let w = set_event::parse_pid_list_write(data)?;
            let mut st = ta.state.lock();
            let set = match f {
                SetEventPid => &mut st.event_pids,
                SetEventNotracePid => &mut st.event_notrace_pids,
                SetFtracePid => &mut st.ftrace_pids,
                _ => &mut st.ftrace_notrace_pids,
            };
            set.extend(w.pids);
            Ok(w.consumed)
        }
        // No kernel functions to filter on: only blank writes are accepted.
        SetFtraceFilter | SetFtraceNotrace => {
            if data.trim_ascii().is_empty() {
                Ok(n)
            } else {
                Err(EINVAL)
            }
        }
        // No uprobes here: blank lines and comments only.
        UprobeEvents => {
            let ok = data.split(|c| *c == b'\n').all(|l| {
                let l = l.trim_ascii();
                l.is_empty() || l.starts_with(b"#")
            });
            if ok { Ok(n) } else { Err(EINVAL) }
        }
        ErrorLog | Trace | FreeBuffer => Ok(n),
        Snapshot => write_snapshot(reg, ta, None, data),
        DynamicEvents | SyntheticEvents => Err(EINVAL), // handled by `write`
        TraceMarker | TraceMarkerRaw => Err(EINVAL),    // handled by `write`
        Readme
        | AvailableEvents
        | AvailableFilterFunctions
        | AvailableFilterFunctionsAddrs
        | AvailableTracers
        | BufferTotalSizeKb
        | DynFtraceTotalInfo
        | EnabledFunctions
        | PrintkFormats
        | SavedCmdlines
        | SavedTgids
        | TimestampMode
        | TouchedFunctions
        | TracePipe
        | UprobeProfile => Err(EINVAL),
    }
}

/// Stores the outcome of compiling `text` for one event (§7.2): the filter, a cleared filter,
/// or — for a rejected expression — the error record (filtering off) plus an error_log entry.
/// Only a write of 4096+ bytes leaves the old filter in place.
fn apply_filter(
    st: &mut TaState,
    serial: u64,
    text: &[u8],
    result: Result<Option<filter::Filter>, filter::FilterError>,
) -> Result<(), i32> {
    let stored = filter::stored_bytes(text);
    match result {
        Ok(None) => {
            st.filters.remove(&serial);
            Ok(())
        }
        Ok(Some(f)) => {
            let mut shown = stored;
            shown.push(b'\n');
            let compiled = Some(Arc::new(f));
            st.filters
                .insert(serial, state::EventFilter { shown, compiled });
            Ok(())
        }
        Err(e) if !e.recorded => Err(e.errno),
        Err(e) => {
            let (location, message, pos) = e.log_entry();
            st.log_error(location, message, &String::from_utf8_lossy(&stored), pos);
            let shown = filter::error_bytes(&stored, &e);
            st.filters.insert(
                serial,
                state::EventFilter {
                    shown,
                    compiled: None,
                },
            );
            Err(e.errno)
        }
    }
}

/// A subsystem `filter` write (§7.6): compiled for each of its events; where it fails, that
/// event's filter becomes the subsystem error record. Succeeds if the subsystem has events.
fn write_system_filter(ta: &TraceArray, sys: &System, data: &[u8]) -> Result<usize, i32> {
    let events: Vec<_> = sys
        .events
        .read()
        .iter()
        .filter(|e| e.enableable())
        .cloned()
        .collect();
    if events.is_empty() {
        return Err(EINVAL);
    }
    let mut st = ta.state.lock();
    for ev in events {
        let result =
            filter::compile_for_subsystem(data, &filter::Fields::from_format(&ev.def.format));
        match apply_filter(&mut st, ev.serial, data, result) {
            Err(e) if e == EINVAL && data.len() >= filter::MAX_WRITE => return Err(e),
            _ => {}
        }
    }
    Ok(data.len())
}

/// Compiles a trigger's `if` filter against the event's fields (§8.2): a bad one fails with
/// the filter's own errno and adds its error_log entry, as an event filter write would.
pub(crate) fn compile_trigger_filter(
    ta: &TraceArray,
    ev: &Event,
    text: &str,
) -> Result<filter::Filter, i32> {
    filter::compile_condition(text.as_bytes(), &ev.layout().fields).map_err(|e| {
        let (location, message, pos) = e.log_entry();
        ta.state.lock().log_error(location, message, text, pos);
        e.errno
    })
}

/// Can a write to `file` create events (and so change the listings of `events/` and of the
/// subsystems dynamic events live in)?
pub fn creates_events(file: &File) -> bool {
    matches!(
        file,
        File::Top(TopFile::DynamicEvents | TopFile::SyntheticEvents)
    )
}

/// Is `system` one that events created at run time go to?
pub fn is_dynamic_system(system: &str) -> bool {
    [dynevent::Kind::Synthetic, dynevent::Kind::User]
        .into_iter()
        .any(|k| dyn_system(k) == system)
}

/// The subsystem a kind of dynamic event lives in.
fn dyn_system(kind: dynevent::Kind) -> &'static str {
    match kind {
        dynevent::Kind::Synthetic => "synthetic",
        dynevent::Kind::User => "user_events",
    }
}

/// A write to `dynamic_events` or `synthetic_events` (§12): one command per line, stopping at
/// the first failing line with its errno (earlier lines keep their effect). Errors the kernel
/// logs go to the top-level `error_log`.
fn write_dynamic(
    reg: &Registry,
    synthetic_file: bool,
    data: &[u8],
    removed: &mut Vec<RemovedEvent>,
) -> Result<usize, i32> {
    let (lines, split_error) = dynevent::split_lines_partial(data);
    // A kernel without a handler for the command answers as for any unknown command.
    let handled = |line: &[u8]| match dynevent::create_kind(line) {
        Some(dynevent::Kind::Synthetic) => reg.features.synthetic_events,
        Some(dynevent::Kind::User) => reg.features.user_events,
        None => true,
    };
    let exists =
        |kind: dynevent::Kind, name: &str| reg.find_event(dyn_system(kind), name).is_some();
    for line in lines {
        if !synthetic_file && !handled(line) {
            return Err(EINVAL);
        }
        let parsed = if synthetic_file {
            dynevent::parse_synthetic_events_line_with(line, &exists)
        } else {
            dynevent::parse_dynamic_events_line_with(line, &exists)
        };
        let command = match parsed {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                if e.logged() {
                    reg.top
                        .state
                        .lock()
                        .log_error(e.location, &e.message, &e.command, e.pos);
                }
                return Err(e.errno);
            }
        };
        match command {
            dynevent::Command::Create(def) => create_dynamic(reg, def)?,
            dynevent::Command::Delete { kind, system, name } => {
                let args = dynevent::delete_args(line);
                let victims: Vec<_> = reg
                    .dynamic_events()
                    .into_iter()
                    .filter(|e| {
                        e.dynamic.as_ref().is_some_and(|d| {
                            kind.is_none_or(|k| k == d.kind)
                                && d.matches_delete(system.as_deref(), &name, &args)
                        })
                    })
                    .collect();
                if victims.is_empty() {
                    return Err(libc::ENOENT);
                }
                for ev in victims {
                    removed.push(reg.remove_event(&ev.def.system, &ev.def.name)?);
                }
            }
        }
    }
    match split_error {
        Some(e) => Err(e),
        None => Ok(data.len()),
    }
}

/// Registers a new dynamic event in every trace array. Re-registering a user event with the
/// same fields is a no-op; with other fields it is EADDRINUSE.
fn create_dynamic(reg: &Registry, def: dynevent::DynEventDef) -> Result<(), i32> {
    let system = def.system();
    if let Some(old) = reg.find_event(system, &def.name) {
        return match (&old.dynamic, def.kind) {
            (Some(d), dynevent::Kind::User) if d.fields == def.fields => Ok(()),
            (_, dynevent::Kind::User) => Err(libc::EADDRINUSE),
            _ => Err(libc::EEXIST),
        };
    }
    let id = reg.next_event_id();
    let event = crate::events::catalog::EventDef {
        system: system.into(),
        name: def.name.clone(),
        seq: None,
        files: crate::events::catalog::FileSet::STANDARD,
        id: Some(id),
        format: def.format(id).into(),
    };
    reg.add_event(event, Some(Arc::new(def))).map(|_| ())
}

/// O_TRUNC of `dynamic_events` (every dynamic event) or `synthetic_events` (the synthetic
/// ones): EBUSY, deleting nothing, if any of them is in use.
fn delete_all_dynamic(
    reg: &Registry,
    kind: Option<dynevent::Kind>,
    removed: &mut Vec<RemovedEvent>,
) -> Result<(), i32> {
    let victims: Vec<_> = reg
        .dynamic_events()
        .into_iter()
        .filter(|e| {
            e.dynamic
                .as_ref()
                .is_some_and(|d| kind.is_none_or(|k| k == d.kind))
        })
        .collect();
    let arrays = reg.trace_arrays();
    if victims.iter().any(|e| {
        arrays
            .iter()
            .any(|ta| ta.state.lock().holds_event(e.serial, e.synthetic_name()))
    }) {
        return Err(libc::EBUSY);
    }
    for ev in victims {
        removed.push(reg.remove_event(&ev.def.system, &ev.def.name)?);
    }
    Ok(())
}

#[cfg(test)]
mod readdir_tests {
    use super::*;

    #[test]
    fn readdir_tables_name_every_entry_once() {
        let sorted = |names: &[&str]| {
            let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        let dirs = ["events", "instances", "options", "per_cpu"];
        let top: Vec<&str> = TOP_FILES.iter().map(|f| f.name).chain(dirs).collect();
        assert_eq!(sorted(TOP_READDIR), sorted(&top));
        let inst: Vec<&str> = TOP_FILES
            .iter()
            .filter(|f| f.in_instance)
            .map(|f| f.name)
            .chain(["events", "options", "per_cpu"])
            .collect();
        assert_eq!(sorted(INSTANCE_READDIR), sorted(&inst));
        let options: Vec<&str> = OPTIONS.iter().map(|o| o.0).collect();
        assert_eq!(sorted(OPTIONS_READDIR), sorted(&options));
        let cpu: Vec<&str> = CPU_FILES.iter().map(|f| f.0).collect();
        assert_eq!(sorted(CPU_READDIR), sorted(&cpu));
    }
}

#[cfg(test)]
mod tests {
    //! Property tests: nothing a user writes panics, and a rejected write changes nothing.
    use super::*;
    use crate::events::catalog::Catalog;
    use crate::events::registry::MountOwner;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn registry() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(|| {
            let owner = MountOwner {
                uid: 0,
                gid: 0,
                root_mode: 0o700,
            };
            Registry::new(Catalog::embedded(), owner, 2)
        })
    }

    /// Every file a write can change state through, in a fresh instance of its own.
    fn targets(reg: &Registry) -> Vec<File> {
        let ev = reg.find_event("sched", "sched_process_exec").unwrap();
        let print = reg.find_event("ftrace", "print").unwrap();
        let sys = reg.systems.read().get("sched").cloned().unwrap();
        let mut out: Vec<File> = TOP_FILES.iter().map(|t| File::Top(t.file)).collect();
        out.extend((0..OPTIONS.len()).map(File::Option));
        out.push(File::Cpu(0, CpuFile::BufferSizeKb));
        out.push(File::Events(EventsFile::Enable));
        out.push(File::System(sys.clone(), SystemFile::Enable));
        out.push(File::System(sys, SystemFile::Filter));
        for f in EventFile::ALL {
            out.push(File::Event(ev.clone(), f));
        }
        out.push(File::Event(print, EventFile::Trigger));
        out
    }

    /// What every target reads, as one snapshot (error_log excluded: rejected writes add to it
    /// by design, and event filters become error records by design, §7.2).
    fn snapshot(reg: &Registry, ta: &TraceArray, files: &[File]) -> Vec<String> {
        files
            .iter()
            .filter(|f| {
                !matches!(
                    f,
                    File::Top(TopFile::ErrorLog | TopFile::Trace) | File::Cpu(..)
                )
            })
            .filter(|f| !matches!(f, File::Event(_, EventFile::Filter)))
            .map(|f| String::from_utf8_lossy(&read(reg, ta, f).unwrap_or_default()).into_owned())
            .collect()
    }

    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            "[ -~\t\n]{0,80}".prop_map(String::into_bytes),
            proptest::sample::select(vec![
                "1",
                "0",
                "2",
                "+1",
                "1\n",
                "sched:sched_switch",
                "!*:*",
                "traceon:3",
                "enable_event:sched:sched_switch",
                "pid == 1",
                "s:ev u64 x",
                "-:synthetic/ev",
                "nop",
                "local",
                "64",
                "ff",
                "1 2 3",
                "noraw",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn rejected_writes_change_nothing(which in 0usize..200, data in input()) {
            let reg = registry();
            let ta = crate::trace::state::TraceArray::new(9, "prop", std::time::SystemTime::now());
            let files = targets(reg);
            let file = &files[which % files.len()];
            // Dynamic-event files change the shared registry: exercised for panics only.
            let shared = matches!(file, File::Top(TopFile::DynamicEvents | TopFile::SyntheticEvents));
            let before = snapshot(reg, &ta, &files);
            let mut removed = Vec::new();
            let result = write(reg, &ta, file, &data, 1, &mut removed);
            if result.is_err() && !shared {
                prop_assert_eq!(before, snapshot(reg, &ta, &files), "{:?} changed state", data);
            }
            if shared {
                // Leave the shared registry as it was for the next case.
                let _ = open_truncate(reg, &ta, &File::Top(TopFile::DynamicEvents), &mut removed);
            }
        }
    }
}
