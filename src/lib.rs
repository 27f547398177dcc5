//! utracefs: a FUSE clone of Linux tracefs whose `events/` tree is built lazily from an
//! authoritative event registry. See ARCHITECTURE.md for the map; each folder is one of its
//! rooms, and arrows between them point one way:
//! `control` (pure languages) ← `events` (what exists) ← `trace` (state, commit, rendering)
//! ← `sources` (records in) ← `fs` (file set and FUSE adapter) ← `daemon` (process wiring).
pub mod control;
pub mod daemon;
pub mod events;
pub mod fs;
pub mod sources;
pub mod trace;

/// Number of CPUs the machine has (one `per_cpu/cpuN` each), as the kernel counts them.
pub fn ncpu() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n > 0 { n as usize } else { 1 }
}
