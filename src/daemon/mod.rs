//! The process around the filesystem: mount and unmount, the signal thread, the counters
//! socket. Wires the other rooms together; nothing else depends on it.
pub mod mount;
pub mod signals;
pub mod stats;
