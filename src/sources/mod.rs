//! Where records come from: markers, `inject`, the netlink process connector, and ptrace of a
//! command's own processes (where the connector needs a root we lack). Each builds its record
//! and hands it to the commit path; none touches a ring buffer itself.
pub mod inject;
pub mod markers;
pub mod process;
pub mod ptrace;
