//! The snapshot buffer (the kernel's CONFIG_TRACER_SNAPSHOT: `Documentation/trace/ftrace.rst`
//! "Snapshot", `events.rst` §6, `kernel/trace/trace.c`): a spare buffer per trace array,
//! swapped with the live rings on demand, so the records up to that moment are kept while
//! tracing goes on in the former spare.
//!
//! The spare lives in the trace array's [`TraceBuffer`] (same lock as the live rings), so a
//! swap is one exchange of ring vectors under that lock: every reader (`trace`, `trace_pipe`,
//! `trace_pipe_raw`, the per-CPU files) sees either the old or the new live rings, never a
//! mix. What the `snapshot` files read and accept is here too; the file set is `fs::files`'.

use libc::{EBUSY, EINVAL};

use crate::events::registry::Registry;
use crate::trace::buffer::TraceBuffer;
use crate::trace::render::text::{self, TextOpts};
use crate::trace::state::{TaState, TraceArray};

/// Takes a snapshot from the commit path: the `snapshot` trigger, and the hist `.snapshot()`
/// action. The caller holds `ta`'s state (`st`); this takes its buffer (the lock order's
/// next). Without an allocated snapshot tracing stops instead, as the kernel's
/// `tracing_snapshot_instance` does ("*** SNAPSHOT NOT ALLOCATED ***"). Returns whether the
/// buffers were swapped.
pub fn take(reg: &Registry, ta: &TraceArray, st: &mut TaState) -> bool {
    let swapped = swap(reg, ta);
    if !swapped {
        st.tracing_on = false;
    }
    swapped
}

/// [`take`] for a caller that holds none of `ta`'s locks (a hist action run outside the state
/// lock).
pub fn take_unlocked(reg: &Registry, ta: &TraceArray) -> bool {
    let swapped = swap(reg, ta);
    if !swapped {
        ta.state.lock().tracing_on = false;
    }
    swapped
}

fn swap(reg: &Registry, ta: &TraceArray) -> bool {
    let swapped = ta.buffer.lock().swap_snapshot(None);
    if swapped {
        wake_readers(reg);
    }
    swapped
}

/// Registers a conditional snapshot (the hist `.snapshot()` action,
/// `tracing_snapshot_cond_enable`): allocates the snapshot buffer; EBUSY if one is
/// registered already. Until [`cond_disable`], writes to the `snapshot` files are EBUSY.
pub fn cond_enable(ta: &TraceArray) -> Result<(), i32> {
    let mut buf = ta.buffer.lock();
    if buf.cond_snapshot {
        return Err(EBUSY);
    }
    buf.alloc_snapshot();
    buf.cond_snapshot = true;
    Ok(())
}

/// Unregisters the conditional snapshot (`tracing_snapshot_cond_disable`); the buffer stays.
pub fn cond_disable(ta: &TraceArray) {
    ta.buffer.lock().cond_snapshot = false;
}

/// Makes sure the snapshot buffer is allocated (registering a `snapshot` trigger arms it,
/// `tracing_arm_snapshot`).
pub fn arm(ta: &TraceArray) {
    ta.buffer.lock().alloc_snapshot();
}

/// A value written to `snapshot` (`cpu: None`) or `per_cpu/cpuN/snapshot`
/// (`tracing_snapshot_write`): `0` frees (EINVAL per CPU), `1` allocates if needed and swaps
/// (all CPUs, or the one CPU's ring), anything else clears the snapshot (that CPU's ring)
/// without allocating. EBUSY while a conditional snapshot is registered.
pub fn write(reg: &Registry, ta: &TraceArray, cpu: Option<usize>, val: u64) -> Result<(), i32> {
    let mut buf = ta.buffer.lock();
    if buf.cond_snapshot {
        return Err(EBUSY);
    }
    match val {
        0 if cpu.is_some() => return Err(EINVAL),
        0 => buf.free_snapshot(),
        1 => {
            buf.alloc_snapshot();
            buf.swap_snapshot(cpu);
            drop(buf);
            wake_readers(reg);
        }
        _ => {
            if let Some(snap) = buf.snapshot_mut() {
                snap.clear(cpu);
            }
        }
    }
    Ok(())
}

/// What `snapshot` (`cpu: None`) or `per_cpu/cpuN/snapshot` reads: the snapshot as `trace`
/// shows the live buffer, or, while it holds nothing in scope, the tracer line and the
/// kernel's help (`print_snapshot_help`).
pub fn text(reg: &Registry, buf: &TraceBuffer, cpu: Option<usize>, opts: TextOpts) -> String {
    match buf.snapshot() {
        Some(snap) if !snap.is_empty(cpu) => snap.trace_text(reg, cpu, opts),
        snap => {
            let mut out = text::header(0, 0, 0, TextOpts::default());
            out.push_str(&help(snap.is_some(), cpu.is_some()));
            out
        }
    }
}

/// `print_snapshot_help`, for a kernel that can swap one CPU's buffer
/// (CONFIG_RING_BUFFER_ALLOW_SWAP, so `echo 1` works per CPU).
fn help(allocated: bool, per_cpu: bool) -> String {
    let state = if allocated { "allocated" } else { "freed" };
    let commands = if per_cpu { PERCPU_HELP } else { MAIN_HELP };
    format!("#\n# * Snapshot is {state} *\n#\n# Snapshot commands:\n{commands}")
}

const MAIN_HELP: &str = "\
# echo 0 > snapshot : Clears and frees snapshot buffer
# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.
#                      Takes a snapshot of the main buffer.
# echo 2 > snapshot : Clears snapshot buffer (but does not allocate or free)
#                      (Doesn't have to be '2' works with any number that
#                       is not a '0' or '1')
";

const PERCPU_HELP: &str = "\
# echo 0 > snapshot : Invalid for per_cpu snapshot file.
# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.
#                      Takes a snapshot of the main buffer for this cpu.
# echo 2 > snapshot : Clears this cpu's snapshot buffer (but does not allocate)
#                      (Doesn't have to be '2' works with any number that
#                       is not a '0' or '1')
";

/// `per_cpu/cpuN/snapshot_raw`: the snapshot's next sub-buffer page on `cpu`, consumed (as
/// `trace_pipe_raw` reads the live ring); `None` while there is none (the reader blocks).
pub fn read_page(buf: &mut TraceBuffer, cpu: usize) -> Option<Vec<u8>> {
    buf.snapshot_mut()?.read_page(cpu)
}

/// Blocked `snapshot_raw` and `trace_pipe` readers look again: a swap changes what both read.
fn wake_readers(reg: &Registry) {
    if let Some(wake) = reg.on_commit.get() {
        wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer() -> TraceBuffer {
        TraceBuffer::new(&[8, 8], 4096)
    }

    #[test]
    fn swap_exchanges_rings_and_counters() {
        let mut b = buffer();
        assert!(!b.swap_snapshot(None), "no snapshot, no swap");
        b.write(0, 1, b"0123456789abcdef", true);
        b.alloc_snapshot();
        assert!(b.snapshot().unwrap().is_empty(None));
        assert!(b.swap_snapshot(None));
        assert!(b.is_empty(None));
        assert_eq!(b.totals(), (0, 0));
        assert_eq!(b.snapshot().unwrap().totals(), (1, 1));
    }

    #[test]
    fn per_cpu_swap_moves_one_ring() {
        let mut b = buffer();
        b.write(0, 1, b"0123456789abcdef", true);
        b.write(1, 2, b"0123456789abcdef", true);
        b.alloc_snapshot();
        b.swap_snapshot(Some(1));
        assert!(!b.is_empty(Some(0)));
        assert!(b.is_empty(Some(1)));
        let snap = b.snapshot().unwrap();
        assert!(snap.is_empty(Some(0)) && !snap.is_empty(Some(1)));
    }

    #[test]
    fn resize_follows_into_the_snapshot() {
        let mut b = buffer();
        b.alloc_snapshot();
        b.resize(&[64, 64], 4096);
        let pages = |t: &TraceBuffer| t.cpus().iter().map(|c| c.nr_pages()).collect::<Vec<_>>();
        assert_eq!(pages(&b), pages(b.snapshot().unwrap()));
    }

    #[test]
    fn take_swaps_or_stops_tracing() {
        use crate::events::catalog::Catalog;
        use crate::events::registry::MountOwner;
        let owner = MountOwner {
            uid: 0,
            gid: 0,
            root_mode: 0o700,
        };
        let reg = Registry::new(Catalog::embedded(), owner, 2);
        let ta = TraceArray::new(7, "t", std::time::SystemTime::now());
        assert!(!take_unlocked(&reg, &ta), "nothing allocated");
        assert!(!ta.state.lock().tracing_on, "so tracing stops");
        ta.state.lock().tracing_on = true;
        arm(&ta);
        ta.buffer.lock().write(0, 1, b"0123456789abcdef", true);
        assert!(take(&reg, &ta, &mut ta.state.lock()));
        assert!(ta.buffer.lock().is_empty(None));
        assert!(ta.state.lock().tracing_on);
        assert_eq!(cond_enable(&ta), Ok(()));
        assert_eq!(cond_enable(&ta), Err(EBUSY));
        assert_eq!(
            write(&reg, &ta, None, 1),
            Err(EBUSY),
            "busy while conditional"
        );
        cond_disable(&ta);
        assert_eq!(write(&reg, &ta, None, 0), Ok(()));
        assert!(ta.buffer.lock().snapshot().is_none());
    }

    #[test]
    fn help_texts_are_the_kernels() {
        assert!(help(false, false).starts_with("#\n# * Snapshot is freed *\n#\n# Snapshot commands:\n# echo 0 > snapshot : Clears and frees snapshot buffer\n"));
        assert!(
            help(true, true).contains("# echo 0 > snapshot : Invalid for per_cpu snapshot file.\n")
        );
        assert!(help(true, true).ends_with("#                       is not a '0' or '1')\n"));
    }
}
