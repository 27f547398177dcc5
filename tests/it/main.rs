//! Mounted behaviour tests: every test mounts the real `utracefs` binary and uses it through
//! the kernel, as a user would.
mod cli;
mod common;
mod conformance;
mod datapath;
mod differential;
mod dynamic;
mod filters;
mod hist;
mod history;
mod instances;
mod kernel_source;
mod listings;
mod reliability;
mod run;
mod snapshot;
mod spin;
mod tree;
mod triggers;
