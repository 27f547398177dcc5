//! utracefs: a FUSE clone of Linux tracefs whose `events/` tree is built lazily from an
//! authoritative event registry. See ARCHITECTURE.md for the map.
pub mod buffer;
pub mod catalog;
pub mod control;
pub mod dynevent;
pub mod emit;
pub mod files;
pub mod filter;
pub mod fs;
pub mod mount;
pub mod proc_events;
pub mod record;
pub mod registry;
pub mod render;
pub mod ringbuf;
pub mod signals;
pub mod state;
pub mod stats;
pub mod tasks;
pub mod trigger;

/// Number of CPUs the machine has (one `per_cpu/cpuN` each), as the kernel counts them.
pub fn ncpu() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n > 0 { n as usize } else { 1 }
}
