//! utracefs: a FUSE clone of Linux tracefs whose `events/` tree is built lazily from an
//! authoritative event registry. See ARCHITECTURE.md for the map; each folder is one of its
//! rooms. Module arrows point one way: `control` needs nothing; trace-array state needs only
//! its buffers; the registry needs the state (and the pure record layout and print-fmt
//! compiler) but no buffer or commit path; the commit path and the text views need the
//! registry; `sources` need the commit path; `fs` needs them all; `daemon` wires `fs`.
pub mod control;
pub mod daemon;
pub mod events;
pub mod fs;
pub mod kallsyms;
pub mod sources;
pub mod trace;

/// Number of CPUs the machine has (one `per_cpu/cpuN` each), as the kernel counts them.
pub fn ncpu() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n > 0 { n as usize } else { 1 }
}
