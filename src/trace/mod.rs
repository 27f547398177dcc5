//! How records flow once they exist: per trace array state, the commit path, the ring
//! buffers, the record layout and rendering. Knows the registry, never the file set or FUSE;
//! state and buffers never call the commit path.
pub mod buffer;
pub mod commit;
pub mod hist;
pub mod record;
pub mod render;
pub mod ringbuf;
pub mod snapshot;
pub mod state;
pub mod syscall_names;
pub mod tasks;
