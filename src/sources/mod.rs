//! Where records come from: markers, `inject` and the netlink process connector. Each
//! builds its record and hands it to the commit path; none touches a ring buffer itself.
pub mod inject;
pub mod markers;
pub mod process;
