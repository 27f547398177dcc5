//! `utracefs`: arguments, logging, signals, mount. Everything else lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fuser::{Config, Session, SessionACL};
use tracing::{error, info, warn};

use utracefs::daemon::mount::{self, MountOptions};
use utracefs::events::catalog::{Catalog, Features};
use utracefs::events::registry::{MountOwner, Registry};
use utracefs::fs::TraceFs;

/// A FUSE clone of Linux tracefs with a lazily built eventfs tree.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Directory to mount on.
    mountpoint: PathBuf,
    /// Event definitions: a catalog file or a tracefs-like directory (e.g. a mounted kernel
    /// tracefs), mirrored exactly: only the features that kernel had. Default: the embedded
    /// catalog of Linux 6.18, with every feature (see --extras).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// With --catalog: also offer what utracefs has beyond the catalog's kernel:
    /// synthetic_events and `s:` in dynamic_events, `u:` user events, an `inject` file in
    /// every event that can be enabled, and hist triggers. Always on with the embedded catalog.
    #[arg(long)]
    extras: bool,
    /// FUSE worker threads, 1 to 64 (default: CPUs, at least 2, at most 8).
    #[arg(long, default_value_t = default_threads())]
    threads: usize,
    /// Mount options: uid=N, gid=N, mode=OCTAL (root directory), allow_other, over (mount on
    /// top of an existing mount, e.g. a kernel tracefs for trace-cmd).
    #[arg(short = 'o', value_name = "OPTS")]
    options: Vec<String>,
    /// Serve the daemon's counters (`key value` lines) on this unix socket.
    #[arg(long, value_name = "SOCKET")]
    stats: Option<PathBuf>,
    /// Seconds the kernel may cache positive entries and attributes (every change
    /// invalidates them at once; negative entries are never cached).
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Do not record process fork/exec/exit/rename events from the kernel's process
    /// connector (by default they feed sched:sched_process_* and task:task_rename).
    #[arg(long)]
    no_proc_events: bool,
}

/// Held, never released, by the one thread that ends the process.
static EXIT: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Each FUSE worker holds a 16 MiB request buffer and its own /dev/fuse clone; blocking reads
/// are parked without a thread, so more than this only costs memory.
const MAX_THREADS: usize = 64;

fn default_threads() -> usize {
    utracefs::ncpu().clamp(2, 8)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour escapes only on a terminal: logs sent to a file or a pipe stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("utracefs: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let opts = MountOptions::parse(&args.options)?;
    if !(1..=MAX_THREADS).contains(&args.threads) {
        return Err(format!(
            "--threads {} is out of range: 1 to {MAX_THREADS}",
            args.threads
        ));
    }
    let mut checked = mount::check_mount_point(&args.mountpoint, opts.over)?;
    let mut catalog = match &args.catalog {
        Some(p) => Catalog::load(p).map_err(|e| e.to_string())?,
        None => Catalog::embedded(),
    };
    if args.extras {
        catalog.features = Features::ALL;
    }
    let owner = MountOwner {
        uid: opts.uid,
        gid: opts.gid,
        root_mode: opts.mode,
    };
    let reg = Arc::new(Registry::new(catalog, owner, utracefs::ncpu()));

    // Signals are handled by one thread with sigwait; block them before any thread exists so
    // every thread inherits the mask.
    let signals = utracefs::daemon::signals::block_termination_signals();
    let stats = match &args.stats {
        Some(sock) => Some(
            utracefs::daemon::stats::bind(sock)
                .map_err(|e| format!("stats socket {}: {e}", sock.display()))?,
        ),
        None => None,
    };
    // A mount left by a daemon that died answers ENOTCONN until replaced: replace it here.
    while checked.dead {
        mount::detach_dead(&checked.path)?;
        warn!(
            "recovered {}: unmounted the dead utracefs mount left there by a daemon that died",
            checked.path.display()
        );
        checked = mount::check_mount_point(&checked.path, opts.over)?;
    }
    let mountpoint = checked.path;
    let fuse_fd = mount::mount(&mountpoint, &opts)?;

    let fs = TraceFs::new(reg.clone(), Duration::from_secs(args.ttl));
    let core = fs.core();
    let mut config = Config::default();
    config.n_threads = Some(args.threads);
    let session = match Session::from_fd(fs, fuse_fd, SessionACL::All, config) {
        Ok(s) => s,
        Err(e) => {
            let _ = mount::unmount(&mountpoint);
            return Err(format!("FUSE handshake failed: {e}"));
        }
    };
    core.set_notifier(utracefs::fs::notify::NotifyQueue::start(
        session.notifier(),
        &utracefs::fs::NOTIFY_COUNTERS,
    ));
    // Held until the process exits: dropping it unsubscribes.
    let _proc_events = if args.no_proc_events {
        None
    } else {
        let r = reg.clone();
        match utracefs::sources::process::spawn(move |meta, ev| {
            utracefs::sources::process::process_event(&r, meta, &ev)
        }) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("process connector unavailable ({e}): no sched_process_* records");
                None
            }
        }
    };
    if let Some(listener) = stats {
        utracefs::daemon::stats::serve(listener, core.clone())
            .map_err(|e| format!("stats thread: {e}"))?;
    }
    info!(
        "mounted {} ({} events in {} subsystems, {} threads)",
        mountpoint.display(),
        reg.event_count(),
        reg.system_count(),
        args.threads
    );

    let mp = mountpoint.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let sig = utracefs::daemon::signals::wait(&signals);
            info!("signal {sig}: unmounting {}", mp.display());
            if let Err(e) = mount::unmount(&mp) {
                error!("unmount {}: {e}", mp.display());
            }
            // A detached mount still in use keeps the session alive; do not wait long for it.
            // Exactly one thread may exit the process (concurrent exit() is undefined): if
            // the main thread is already finishing, it holds EXIT and this thread waits.
            std::thread::sleep(Duration::from_secs(2));
            std::mem::forget(EXIT.lock());
            std::process::exit(0);
        })
        .map_err(|e| format!("spawn signal thread: {e}"))?;

    let result = session.run();
    // From here on this thread owns the exit (see the signal thread).
    std::mem::forget(EXIT.lock());
    // The session ends when the kernel drops the mount (umount by us or by anyone).
    if mount::is_mounted(&mountpoint) {
        let _ = mount::unmount(&mountpoint);
    }
    info!("unmounted {}", mountpoint.display());
    result.map_err(|e| format!("FUSE session: {e}"))
}
