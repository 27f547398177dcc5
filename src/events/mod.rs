//! What exists: the static event catalog and the registry (the `events/` tree, the trace
//! arrays, events added and removed at run time, chmod/chown overrides).
//! Knows nothing of FUSE, of ring buffers or of the commit path.
pub mod catalog;
pub mod life;
pub mod registry;
