//! `trace_marker` and `trace_marker_raw`: a write becomes one `ftrace:print` or
//! `ftrace:raw_data` record, with the kernel's limits and errno.

use libc::{EBADF, EINVAL};

use crate::events::registry::Registry;
use crate::trace::commit::{Source, Writer, commit, commit_marker_with_newline, header};
use crate::trace::render::symbols::mark_write_ip;
use crate::trace::state::{self, TraceArray};

const MARKERS: usize = state::option_index("markers");

/// The most one marker write records (§10.3): what a 4 KiB sub-buffer holds of a `print`
/// record's text (`ringbuf::max_payload`, less 16 bytes of common fields and `ip`, and the
/// supplied newline and NUL). Larger sub-buffers do not raise it (verified on 6.18 with
/// 8 KiB).
const MARKER_MAX: usize = 4054;

/// A `trace_marker` write: one `ftrace:print` record of what fits one sub-buffer, with a
/// newline supplied if missing; the write returns that count and the writer writes the rest
/// again (§10.3). EINVAL with the `markers` option off, else EBADF while the writer's CPU
/// buffer takes no record (tracing off, CPU outside `tracing_cpumask`).
pub fn marker(reg: &Registry, ta: &TraceArray, text: &[u8], w: Writer) -> Result<usize, i32> {
    if !marker_gate(ta, w.cpu)?.open {
        return Err(EBADF);
    }
    let n = text.len().min(MARKER_MAX);
    let Some(print) = reg.find_event("ftrace", "print") else {
        return Ok(n);
    };
    let text = &text[..n];
    let mut rec = header(&print, w, 8 + n + 2);
    rec.extend_from_slice(&mark_write_ip().to_le_bytes());
    rec.extend_from_slice(text);
    let add_newline = text.last() != Some(&b'\n');
    if add_newline {
        rec.push(b'\n');
    }
    rec.push(0);
    if add_newline {
        commit_marker_with_newline(reg, ta, &print, &rec, w);
    } else {
        commit(reg, ta, &print, &rec, w, None, Source::Marker);
    }
    Ok(n)
}

/// A `trace_marker_raw` write: a 4-byte id then binary data, one `ftrace:raw_data` record,
/// all or nothing. The kernel's checks in order: `markers` off, fewer than 4 bytes, or more
/// than one record holds (4064 with 4 KiB sub-buffers) are EINVAL; then the CPU's buffer
/// taking no record is EBADF.
pub fn marker_raw(reg: &Registry, ta: &TraceArray, data: &[u8], w: Writer) -> Result<usize, i32> {
    let gate = marker_gate(ta, w.cpu)?;
    // The record is the 8-byte common header, then the id and data as written.
    if data.len() < 4 || 8 + data.len() > crate::trace::ringbuf::max_payload(gate.subbuf_bytes) {
        return Err(EINVAL);
    }
    if !gate.open {
        return Err(EBADF);
    }
    if let Some(raw) = reg.find_event("ftrace", "raw_data") {
        let mut rec = header(&raw, w, data.len());
        rec.extend_from_slice(data);
        commit(reg, ta, &raw, &rec, w, None, Source::Marker);
    }
    Ok(data.len())
}

/// What a marker write finds: whether the writer's CPU buffer takes a record now, and the
/// sub-buffer size.
struct MarkerGate {
    open: bool,
    subbuf_bytes: usize,
}

/// EINVAL with the `markers` option off (the kernel checks it first), else the gate.
fn marker_gate(ta: &TraceArray, cpu: usize) -> Result<MarkerGate, i32> {
    let st = ta.state.lock();
    if !st.options[MARKERS] {
        return Err(EINVAL);
    }
    Ok(MarkerGate {
        open: st.records_on(cpu),
        subbuf_bytes: st.subbuf_bytes(),
    })
}
