//! The text views of a trace array's buffer — `trace` (header plus every record, not
//! consuming), `trace_pipe` (consuming, merged across CPUs by time),
//! `per_cpu/cpuN/{trace,trace_pipe,stats}`.
//!
//! A line is `%16s-%-7d [%03d] %5s %5lu.%06lu: <event>: <rendered>` (§10.1), the record
//! rendered through its event's `print fmt` by [`PrintFmt`].

use std::fmt::Write as _;
use std::sync::Arc;

use crate::events::registry::Registry;
use crate::trace::buffer::TraceBuffer;
use crate::trace::render::PrintFmt;
use crate::trace::render::symbols::symbolize;
use crate::trace::ringbuf;

/// What the trace options ask of the text (`options/*`, `trace_clock`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOpts {
    /// Timestamps as seconds.microseconds (false: a raw count, for non-ns clocks).
    pub ns: bool,
    /// `record-tgid`: a TGID column.
    pub tgid: bool,
    /// `irq-info`: the five latency columns.
    pub irq_info: bool,
    /// `context-info`: task, CPU and time before each event (and the column header).
    pub context_info: bool,
    /// `raw` / `hex`: the kernel's raw and hex record formats instead of the rendered text.
    pub mode: TextMode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextMode {
    #[default]
    Text,
    Raw,
    Hex,
}

impl TraceBuffer {
    /// The `trace` file (or `per_cpu/cpuN/trace` for `Some(n)`): header and every record.
    pub fn trace_text(&self, reg: &Registry, cpu: Option<usize>, opts: TextOpts) -> String {
        let (entries, written) = self.totals();
        let mut out = header(entries, written, self.ncpu(), opts);
        let mut iters: Vec<_> = self
            .cpus()
            .iter()
            .enumerate()
            .filter(|(i, _)| cpu.is_none_or(|n| n == *i))
            .map(|(i, c)| (i, c.iter().peekable()))
            .collect();
        // Merge the CPUs by time, as the kernel's iterator does.
        loop {
            let next = iters
                .iter_mut()
                .filter_map(|(i, it)| it.peek().map(|r| (r.ts, *i)))
                .min();
            let Some((_, i)) = next else { break };
            let Some((_, it)) = iters.iter_mut().find(|(n, _)| *n == i) else {
                break;
            };
            if let Some(r) = it.next() {
                line(reg, i, r.ts, r.data, opts, &mut out);
            }
        }
        out
    }

    /// `trace_pipe`: consumes records, oldest first across the CPUs in scope, rendering whole
    /// lines until at least `want` bytes are out (or nothing is left).
    pub fn consume_text(
        &mut self,
        reg: &Registry,
        cpu: Option<usize>,
        want: usize,
        opts: TextOpts,
    ) -> String {
        let mut out = String::new();
        while out.len() < want {
            let next = self
                .cpus_mut()
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| cpu.is_none_or(|n| n == *i))
                .filter_map(|(i, c)| c.peek_ts().map(|ts| (ts, i)))
                .min();
            let Some((_, i)) = next else { break };
            let Some(rec) = self.cpus_mut()[i].pop() else {
                break;
            };
            if rec.lost > 0 {
                let _ = writeln!(out, "CPU:{i} [LOST {} EVENTS]", rec.lost);
            }
            line(reg, i, rec.ts, &rec.data, opts, &mut out);
        }
        out
    }

    /// `per_cpu/cpuN/stats`.
    pub fn stats_text(&self, cpu: usize, now_ns: u64, opts: TextOpts) -> String {
        match self.cpus().get(cpu) {
            Some(c) => ringbuf::format_stats(&c.stats(), now_ns, opts.ns),
            None => String::new(),
        }
    }
}

/// The `trace` header of the nop tracer (§10.1; `print_func_help_header[_irq]`), as the
/// kernel shows it for each combination of `context-info`, `irq-info` and `record-tgid`.
pub fn header(entries: u64, written: u64, ncpu: usize, opts: TextOpts) -> String {
    let mut out = String::from("# tracer: nop\n#\n");
    if !opts.context_info {
        return out;
    }
    let _ = write!(
        out,
        "# entries-in-buffer/entries-written: {entries}/{written}   #P:{ncpu}\n#\n"
    );
    // The TGID column widens everything to its right by ten.
    let (pad, tgid_head, tgid_bar) = if opts.tgid {
        ("          ", "    TGID  ", "      |   ")
    } else {
        ("", "", "")
    };
    if opts.irq_info {
        for (spaces, text) in [
            (32, "_-----=> irqs-off/BH-disabled"),
            (31, "/ _----=> need-resched"),
            (30, "| / _---=> hardirq/softirq"),
            (30, "|| / _--=> preempt-depth"),
            (30, "||| / _-=> migrate-disable"),
            (30, "|||| /     delay"),
        ] {
            let width = spaces + pad.len();
            let _ = writeln!(out, "#{:width$}{text}", "");
        }
        let _ = writeln!(
            out,
            "#           TASK-PID   {tgid_head}  CPU#  |||||  TIMESTAMP  FUNCTION"
        );
        let _ = writeln!(
            out,
            "#              | |     {tgid_bar}    |   |||||     |         |"
        );
    } else {
        let _ = writeln!(
            out,
            "#           TASK-PID   {tgid_head}  CPU#     TIMESTAMP  FUNCTION"
        );
        let _ = writeln!(
            out,
            "#              | |     {tgid_bar}    |         |         |"
        );
    }
    out
}

/// One record as a `trace` line (`print_trace_fmt`: context, then the event's output; or the
/// `raw`/`hex` formats of `print_raw_fmt`/`print_hex_fmt`).
pub fn line(reg: &Registry, cpu: usize, ts: u64, rec: &[u8], opts: TextOpts, out: &mut String) {
    let b = |i: usize| rec.get(i).copied().unwrap_or(0);
    let type_id = u16::from_le_bytes([b(0), b(1)]);
    let pid = i32::from_le_bytes([b(4), b(5), b(6), b(7)]);
    if opts.mode != TextMode::Text {
        return raw_line(reg, cpu, ts, rec, opts, out);
    }
    if opts.context_info {
        let mut comm = String::new();
        reg.tasks.comm_of(pid, &mut comm);
        let _ = write!(out, "{comm:>16}-{pid:<7} ");
        if opts.tgid {
            match reg.tasks.tgid(pid) {
                Some(tgid) => {
                    let _ = write!(out, "({tgid:7}) ");
                }
                None => out.push_str("(-------) "),
            }
        }
        let _ = write!(out, "[{cpu:03}] ");
        if opts.irq_info {
            lat_flags(b(2), b(3), out);
        }
        if opts.ns {
            // ns2usecs rounds to the nearest microsecond.
            let us = ts.saturating_add(500) / 1000;
            let _ = write!(out, " {:5}.{:06}: ", us / 1_000_000, us % 1_000_000);
        } else {
            let _ = write!(out, " {ts:12}: ");
        }
    }
    let Some(ev) = reg.event_by_id(u32::from(type_id)) else {
        let _ = writeln!(out, "Unknown type {type_id}");
        return;
    };
    let fmt: &Arc<PrintFmt> = ev.print_fmt.get_or_init(|| {
        let output = ev.dynamic.as_ref().map(|d| {
            let format = &ev.def.format;
            let head = format.rfind("print fmt: ").map_or(format.len(), |p| p);
            format!("{}print fmt: {}\n", &format[..head], d.output_print_fmt())
        });
        let format = output.as_deref().unwrap_or(&ev.def.format);
        Arc::new(PrintFmt::for_event(&ev.def.system, &ev.def.name, format))
    });
    // ftrace's own events print without their name (`tracing_mark_write: …`).
    if fmt.has_name_prefix() {
        out.push_str(&ev.def.name);
        out.push_str(": ");
    }
    // The renderer leaves the line's newline to us (for `print` it drops the one the record
    // holds: one newline is supplied if missing, §10.1).
    fmt.render(rec, &symbolize, out);
    out.push('\n');
}

/// The `raw` and `hex` formats: context as numbers, then the event's raw output, which only
/// ftrace's `print` has (`# <ip> <text>`); every other event prints `type: <id>`.
fn raw_line(reg: &Registry, cpu: usize, ts: u64, rec: &[u8], opts: TextOpts, out: &mut String) {
    let b = |i: usize| rec.get(i).copied().unwrap_or(0);
    let type_id = u16::from_le_bytes([b(0), b(1)]);
    let pid = i32::from_le_bytes([b(4), b(5), b(6), b(7)]);
    if opts.context_info {
        let _ = match opts.mode {
            TextMode::Hex => write!(out, "{:08x} {cpu:08x} {ts:016x} ", pid as u32),
            _ => write!(out, "{pid} {cpu} {ts} "),
        };
    }
    let print = reg
        .event_by_id(u32::from(type_id))
        .filter(|e| e.def.system == "ftrace" && e.def.name == "print");
    if opts.mode == TextMode::Raw && print.is_some() {
        let ip = u64::from_le_bytes(std::array::from_fn(|i| b(8 + i)));
        let text = rec.get(16..).unwrap_or_default();
        let text = &text[..text.iter().position(|c| *c == 0).unwrap_or(text.len())];
        let _ = write!(out, "# {ip:x} {}", String::from_utf8_lossy(text));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    } else {
        let _ = writeln!(out, "type: {type_id}");
    }
    // print_hex_fmt ends every record with a newline of its own.
    if opts.mode == TextMode::Hex {
        out.push('\n');
    }
}

/// The five latency columns (`trace_print_lat_fmt`): irqs-off, need-resched, hard/softirq,
/// preempt depth, migrate-disable depth.
fn lat_flags(flags: u8, preempt: u8, out: &mut String) {
    const IRQS_OFF: u8 = 0x01;
    const NEED_RESCHED: u8 = 0x04;
    const HARDIRQ: u8 = 0x08;
    const SOFTIRQ: u8 = 0x10;
    const PREEMPT_RESCHED: u8 = 0x20;
    const NMI: u8 = 0x40;
    const BH_OFF: u8 = 0x80;
    let has = |f: u8| flags & f != 0;
    out.push(match (has(IRQS_OFF), has(BH_OFF)) {
        (true, true) => 'D',
        (true, false) => 'd',
        (false, true) => 'b',
        _ => '.',
    });
    out.push(match (has(NEED_RESCHED), has(PREEMPT_RESCHED)) {
        (true, true) => 'N',
        (true, false) => 'n',
        (false, true) => 'p',
        _ => '.',
    });
    out.push(match (has(NMI), has(HARDIRQ), has(SOFTIRQ)) {
        (true, true, _) => 'Z',
        (true, false, _) => 'z',
        (false, true, true) => 'H',
        (false, true, false) => 'h',
        (false, false, true) => 's',
        _ => '.',
    });
    let hex = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('.');
    out.push(if preempt & 0xf != 0 {
        hex(preempt & 0xf)
    } else {
        '.'
    });
    out.push(if preempt >> 4 != 0 {
        hex(preempt >> 4)
    } else {
        '.'
    });
}
