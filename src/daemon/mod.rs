//! The process around the filesystem: the options a clone is made with, mount and unmount
//! (root's mount(2), everyone else's fusermount3), serving a mount until it ends (`serve`),
//! running a command in a world whose tracefs is the clone (`run`), the signal thread, the
//! counters socket. Wires the other rooms together; nothing else depends on it.
pub mod fusermount;
pub mod mount;
pub mod run;
pub mod serve;
pub mod signals;
pub mod stats;

use std::path::PathBuf;

/// What a clone is made with: the same for a mount (`utracefs DIR`) and `utracefs run`.
#[derive(clap::Args, Debug, Clone)]
pub struct CloneArgs {
    /// Event definitions: a catalog file or a tracefs-like directory (e.g. a mounted kernel
    /// tracefs), mirrored exactly: only the features that kernel had. Default: the embedded
    /// catalog of Linux 6.18, with every feature (see --extras).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// With --catalog: also offer what utracefs has beyond the catalog's kernel:
    /// synthetic_events and `s:` in dynamic_events, `u:` user events, an `inject` file in
    /// every event that can be enabled, the snapshot buffer and hist triggers. Always on with
    /// the embedded catalog.
    #[arg(long)]
    pub extras: bool,
    /// FUSE worker threads, 1 to 64 (default: CPUs, at least 2, at most 8; with --spin-us,
    /// at least one per CPU).
    #[arg(long, default_value_t = default_threads())]
    pub threads: usize,
    /// Mount options: uid=N, gid=N (default: yours), mode=OCTAL (root directory),
    /// allow_other, over (mount on top of an existing mount, e.g. a kernel tracefs).
    #[arg(short = 'o', value_name = "OPTS")]
    pub options: Vec<String>,
    /// Serve the daemon's counters (`key value` lines) on this unix socket.
    #[arg(long, value_name = "SOCKET")]
    pub stats: Option<PathBuf>,
    /// Seconds the kernel may cache positive entries and attributes (every change
    /// invalidates them at once; negative entries are never cached).
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
    /// Do not record process fork/exec/exit/rename events (by default they feed
    /// sched:sched_process_* and task:task_rename: from the kernel's process connector as
    /// root, from COMMAND's own processes under `utracefs run` otherwise).
    #[arg(long)]
    pub no_proc_events: bool,
    /// Record the host kernel's own events (root only): an instance of the kernel's tracefs
    /// carries every event a clone trace array enables (see README "Kernel events").
    #[arg(long)]
    pub kernel_source: bool,
    /// Microseconds a FUSE worker that answered a request waits for the next one, keeping
    /// its CPU awake at SCHED_IDLE, before it sleeps in read(2) (root only; 0: never wait).
    #[arg(long, value_name = "US", default_value_t = 200)]
    pub spin_us: u64,
    /// With --kernel-source: buffer_size_kb of the kernel instance (default: the kernel's).
    #[arg(long, value_name = "KB", requires = "kernel_source")]
    pub kernel_buffer_kb: Option<u64>,
}

/// Each FUSE worker holds a 16 MiB request buffer and its own /dev/fuse clone; blocking reads
/// are parked without a thread, so more than this only costs memory.
pub const MAX_THREADS: usize = 64;

fn default_threads() -> usize {
    crate::ncpu().clamp(2, 8)
}

/// Are we root in the user namespace we run in (`run` makes us root in one of our own)?
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
