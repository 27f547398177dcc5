//! Serving one clone: the registry the options describe, the FUSE session on a mounted
//! /dev/fuse descriptor with its notifier, counters and process events; and `utracefs DIR`,
//! which mounts on DIR and serves until unmounted or signalled.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fuser::{Config, Session, SessionACL};
use tracing::{error, info, warn};

use super::CloneArgs;
use super::mount::{self, MountOptions};
use crate::events::catalog::{Catalog, Features};
use crate::events::registry::{MountOwner, Registry};
use crate::fs::spin::Spin;
use crate::fs::{Core, TraceFs};
use crate::sources::{kernel, process};

/// A clone ready to be served: its options checked, its registry built.
pub struct Clone {
    pub opts: MountOptions,
    pub reg: Arc<Registry>,
    threads: usize,
    spin: Duration,
    ttl: Duration,
    proc_events: bool,
    /// `--kernel-source`: started by [`Clone::kernel_source`].
    kernel: Option<kernel::Options>,
}

/// Checks the options that need no mount (`-o`, `--threads`); the catalog is loaded by
/// [`Clone::new`].
pub fn check_args(args: &CloneArgs) -> Result<MountOptions, String> {
    if args.kernel_source {
        kernel::check_privilege()?;
    }
    let opts = MountOptions::parse(&args.options)?;
    if !(1..=super::MAX_THREADS).contains(&args.threads) {
        return Err(format!(
            "--threads {} is out of range: 1 to {}",
            args.threads,
            super::MAX_THREADS
        ));
    }
    Ok(opts)
}

impl Clone {
    pub fn new(args: &CloneArgs) -> Result<Clone, String> {
        let opts = check_args(args)?;
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
        Ok(Clone {
            reg: Arc::new(Registry::new(catalog, owner, crate::ncpu())),
            opts,
            threads: args.threads,
            spin: Duration::from_micros(args.spin_us),
            ttl: Duration::from_secs(args.ttl),
            proc_events: !args.no_proc_events,
            kernel: args.kernel_source.then_some(kernel::Options {
                buffer_kb: args.kernel_buffer_kb,
            }),
        })
    }

    /// Whether process events were asked for (not `--no-proc-events`).
    pub fn wants_proc_events(&self) -> bool {
        self.proc_events
    }

    /// Answers FUSE's handshake on `fuse` (already mounted) and starts the notifier and the
    /// counters socket. The session is returned unstarted.
    pub fn session(
        &self,
        fuse: OwnedFd,
        stats: Option<UnixListener>,
    ) -> Result<(Session<TraceFs>, Arc<Core>), String> {
        let spin = Spin::new(self.spin, self.threads);
        let mut config = Config::default();
        config.n_threads = Some(spin.workers());
        let fs = TraceFs::new(self.reg.clone(), self.ttl, spin);
        let core = fs.core();
        let session = Session::from_fd(fs, fuse, SessionACL::All, config)
            .map_err(|e| format!("FUSE handshake failed: {e}"))?;
        core.spin.set_fd(session.as_fd().as_raw_fd());
        core.set_notifier(crate::fs::notify::NotifyQueue::start(
            session.notifier(),
            &crate::fs::NOTIFY_COUNTERS,
        ));
        if let Some(listener) = stats {
            super::stats::serve(listener, core.clone())
                .map_err(|e| format!("stats thread: {e}"))?;
        }
        Ok((session, core))
    }

    /// With `--kernel-source`, the host kernel's records. Start it before the mount (a
    /// failure leaves nothing mounted) with the signals blocked (its watchdog inherits that),
    /// and drop it after the session (that removes its kernel instance).
    pub fn kernel_source(&self) -> Result<Option<kernel::KernelSource>, String> {
        match &self.kernel {
            Some(opts) => kernel::KernelSource::start(self.reg.clone(), opts).map(Some),
            None => Ok(None),
        }
    }

    /// The machine's process events from the kernel's process connector, unless
    /// `--no-proc-events`; it needs root, so anyone else gets one log line and no records.
    /// With `--kernel-source` the kernel records these events itself: the connector then only
    /// follows comms and `event-fork` (one record per fork, not two).
    pub fn connector(&self) -> Option<process::Listener> {
        if !self.proc_events {
            return None;
        }
        let r = self.reg.clone();
        let records = self.kernel.is_none();
        match process::spawn(move |meta, ev| {
            if records {
                process::process_event(&r, meta, &ev)
            } else {
                process::follow_tasks(&r, &ev)
            }
        }) {
            Ok(l) => Some(l),
            Err(e) => {
                let why = if e.raw_os_error() == Some(libc::EPERM) {
                    "it needs root".to_string()
                } else {
                    e.to_string()
                };
                warn!("process connector unavailable ({why}): no sched_process_* records");
                None
            }
        }
    }

    pub fn log_mounted(&self, mountpoint: &Path, core: &Core) {
        info!(
            "mounted {} ({} events in {} subsystems, {} threads, {} waiting on CPUs)",
            mountpoint.display(),
            self.reg.event_count(),
            self.reg.system_count(),
            core.spin.workers(),
            core.spin.slots(),
        );
    }
}

/// Binds the counters socket, if asked for (before the mount appears, so it is ready once the
/// mount is visible).
pub fn bind_stats(args: &CloneArgs) -> Result<Option<UnixListener>, String> {
    match &args.stats {
        Some(sock) => super::stats::bind(sock)
            .map(Some)
            .map_err(|e| format!("stats socket {}: {e}", sock.display())),
        None => Ok(None),
    }
}

/// Held, never released, by the one thread that ends the process.
static EXIT: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// `utracefs DIR`: mounts on DIR (mount(2) as root, fusermount3 otherwise) and serves until
/// the mount goes away (`umount`, `fusermount3 -u`) or a termination signal unmounts it.
pub fn mount_and_serve(args: &CloneArgs, mountpoint: &Path) -> Result<(), String> {
    let opts = check_args(args)?;
    let mut checked = mount::check_mount_point(mountpoint, opts.over)?;
    // Before anything else, so a user without /dev/fuse or fusermount3 learns it at once.
    let how = mount::Mounter::for_this_user()?;
    let clone = Clone::new(args)?;

    // Signals are handled by one thread with sigwait; block them before any thread exists so
    // every thread inherits the mask.
    let signals = super::signals::block_termination_signals();
    let stats = bind_stats(args)?;
    let kernel = clone.kernel_source()?;
    // A mount left by a daemon that died answers ENOTCONN until replaced: replace it here.
    while checked.dead {
        how.detach_dead(&checked.path)?;
        warn!(
            "recovered {}: unmounted the dead utracefs mount left there by a daemon that died",
            checked.path.display()
        );
        checked = mount::check_mount_point(&checked.path, opts.over)?;
    }
    let mountpoint = checked.path;
    let fuse_fd = how.mount(&mountpoint, &clone.opts)?;
    let (session, core) = match clone.session(fuse_fd, stats) {
        Ok(s) => s,
        Err(e) => {
            let _ = how.unmount(&mountpoint);
            return Err(e);
        }
    };
    // Held until the process exits: dropping it unsubscribes.
    let _proc_events = clone.connector();
    clone.log_mounted(&mountpoint, &core);

    let (mp, unmounter) = (mountpoint.clone(), how.clone());
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let sig = super::signals::wait(&signals);
            info!("signal {sig}: unmounting {}", mp.display());
            if let Err(e) = unmounter.unmount(&mp) {
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
        let _ = how.unmount(&mountpoint);
    }
    info!("unmounted {}", mountpoint.display());
    drop(kernel);
    match result {
        // The kernel aborts the connection as the mount goes; a worker that was just taking a
        // request then reads ECONNABORTED instead of ENODEV (more likely with waiting workers,
        // which read as soon as they see one queued). That is the same end.
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
            tracing::debug!("FUSE session: {e} (the connection went with the mount)");
            Ok(())
        }
        r => r.map_err(|e| format!("FUSE session: {e}")),
    }
}
