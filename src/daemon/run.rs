//! `utracefs run [OPTIONS] -- COMMAND [ARGS…]`: runs COMMAND in a world whose tracefs is the
//! clone, so unmodified tools (trace-cmd, perf, bpftrace, ftracetest) use it and never the
//! kernel's:
//! - a private mount namespace, inside a user namespace of its own (the caller mapped to root)
//!   when not root, so nothing mounted here is seen outside and it all goes with the last
//!   process;
//! - the clone mounted on /sys/kernel/tracing, and bound over every other tracefs (and
//!   utracefs) mount and over debugfs's `tracing`, so whichever mount a tool picks — the first
//!   `/proc/mounts` line of type `tracefs` for libtracefs, of a type containing `tracefs` for
//!   ftracetest, the hard-coded paths of bpftrace — leads to the clone. In a user namespace
//!   inherited mounts cannot be unmounted but can be mounted over. libtracefs accepts only a
//!   mount of type exactly `tracefs`: as root a kernel tracefs is mounted under the clone if
//!   none is there; a normal user relies on one inherited (systemd mounts
//!   /sys/kernel/tracing);
//! - /proc/sys/kernel/ftrace_enabled and kptr_restrict covered by private copies, so
//!   trace-cmd's writes to them go nowhere; for a user who sees kallsyms without addresses, /proc/kallsyms covered by
//!   the one symbol the clone's records carry;
//! - `TRACEFS_PATH=/sys/kernel/tracing` (perf).
//!
//! Process events come from the kernel's process connector as root, from ptrace of
//! COMMAND's own processes otherwise (`sources::ptrace`). Signals sent to utracefs go to
//! COMMAND; its exit status is utracefs's. When utracefs exits, the clone's connection
//! closes: a process COMMAND left behind sees ENOTCONN there, never the kernel's tracefs.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use tracing::{debug, warn};

use super::CloneArgs;
use super::mount;
use super::serve::{Clone, bind_stats, check_args};
use crate::sources::{process, ptrace};

/// Where tools look for tracefs first; the clone is mounted here.
pub const TRACING: &str = "/sys/kernel/tracing";
/// Machine-wide settings trace-cmd writes: ftrace_enabled (1 before recording) and
/// kptr_restrict (0 while it reads kallsyms). Each gets a private copy, so the write succeeds
/// and changes nothing outside.
const SYSCTLS: [&str; 2] = [
    "/proc/sys/kernel/ftrace_enabled",
    "/proc/sys/kernel/kptr_restrict",
];
const KALLSYMS: &str = "/proc/kallsyms";

/// Signals passed on to COMMAND.
const FORWARDED: [i32; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
];

/// COMMAND's pid once started (0 before).
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Builds the world, runs COMMAND in it and returns its exit status (127: not found, 126: not
/// executable, 128+N: killed by signal N). An error means COMMAND did not run.
pub fn run(args: &CloneArgs, command: &[OsString]) -> Result<u8, String> {
    check_args(args)?;
    let root = super::is_root();
    // Before any thread exists: unshare(CLONE_NEWUSER) refuses a threaded process.
    enter_namespaces(root)?;
    // After: a normal user is root in the new namespace, and owns the clone as such.
    let clone = Clone::new(args)?;
    let signals = block_forwarded();
    let stats = bind_stats(args)?;
    // The session ends with the process (exit closes /dev/fuse): dropping it would wait for
    // a mount that only goes with the namespace.
    std::mem::forget(build_world(&clone, stats, root)?);
    let traced = !root && clone.wants_proc_events();
    let _connector = if root { clone.connector() } else { None };
    if !root && !traced {
        debug!("no process events (--no-proc-events)");
    }
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || forward_signals(&signals))
        .map_err(|e| format!("spawn signal thread: {e}"))?;

    let status = if traced {
        let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| k != "TRACEFS_PATH")
            .collect();
        env.push(("TRACEFS_PATH".into(), TRACING.into()));
        let started = ptrace::Program::new(command, &env).and_then(|p| ptrace::spawn(&p));
        let (pid, exec_pipe) = match started {
            Ok(s) => s,
            Err(e) => return Ok(not_started(&command[0], &e)),
        };
        CHILD.store(pid, Ordering::SeqCst);
        let reg = clone.reg.clone();
        let status = ptrace::trace(pid, move |meta, ev| process::process_event(&reg, meta, &ev));
        if let Some(e) = ptrace::exec_error(&exec_pipe) {
            return Ok(not_started(&command[0], &e));
        }
        status
    } else {
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..]).env("TRACEFS_PATH", TRACING);
        // SAFETY: runs in the child between fork and exec and only makes async-signal-safe
        // calls.
        unsafe {
            cmd.pre_exec(|| {
                // COMMAND gets the signal mask it would have without us (Command keeps ours).
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Ok(not_started(&command[0], &e)),
        };
        CHILD.store(child.id() as i32, Ordering::SeqCst);
        child.wait().map_err(|e| format!("wait: {e}"))?.into_raw()
    };
    Ok(if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status) as u8
    } else {
        libc::WEXITSTATUS(status) as u8
    })
}

/// Says why COMMAND could not start; the shell's status for it (127: not found, 126: found
/// but not executable).
fn not_started(name: &OsString, e: &std::io::Error) -> u8 {
    let name = Path::new(name).display();
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!("utracefs: {name}: command not found");
        127
    } else {
        eprintln!("utracefs: {name}: {e}");
        126
    }
}

/// A private mount namespace; for a normal user inside a new user namespace that maps them
/// to root (what tools that check for root expect; it grants nothing outside).
fn enter_namespaces(root: bool) -> Result<(), String> {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let flags = if root {
        libc::CLONE_NEWNS
    } else {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNS
    };
    // SAFETY: unshare affects only this (single-threaded) process.
    if unsafe { libc::unshare(flags) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if root {
            format!("cannot create a mount namespace: {e}")
        } else {
            format!(
                "cannot create a user namespace: {e} (user namespaces are disabled for this \
                 user: see sysctl user.max_user_namespaces and kernel.unprivileged_userns_clone, \
                 or run as root)"
            )
        });
    }
    if !root {
        let write = |file: &str, text: String| {
            std::fs::write(file, text).map_err(|e| format!("user namespace: {file}: {e}"))
        };
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("0 {uid} 1"))?;
        write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    }
    // Private: nothing mounted here propagates out, nothing from outside comes in.
    mount_call(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE)
        .map_err(|e| format!("cannot make the mount namespace private: {e}"))
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount_call(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> std::io::Result<()> {
    let source = source.map(cpath);
    let target = cpath(target);
    let fstype = fstype.map(|t| CString::new(t).unwrap_or_default());
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid C string for the duration of the call.
    let r = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// (mount point, type) of every mount in this namespace, in /proc/self/mountinfo order.
fn mounts() -> Vec<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?;
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            Some((PathBuf::from(unescape(point)), fstype.to_string()))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|o| {
            let o = std::str::from_utf8(o).ok()?;
            u8::from_str_radix(o, 8).ok()
        });
        match (b[i], oct) {
            (b'\\', Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

/// Mounts the clone on [`TRACING`], serves it from a background thread, covers every other
/// way to a tracefs, and makes trace-cmd's sysctl writes harmless.
fn build_world(
    clone: &Clone,
    stats: Option<std::os::unix::net::UnixListener>,
    root: bool,
) -> Result<fuser::BackgroundSession, String> {
    let target = Path::new(TRACING);
    if !target.is_dir() {
        return Err(format!(
            "{TRACING} is not a directory: nowhere to put the clone (is sysfs mounted?)"
        ));
    }
    let before = mounts();
    let is_tracefs = |t: &str| t == "tracefs" || t == "fuse.tracefs";
    if root && !before.iter().any(|(p, t)| p == target && t == "tracefs") {
        // libtracefs takes only a mount of type `tracefs`: give it the kernel's, under ours.
        if let Err(e) = mount_call(Some(Path::new("nodev")), target, Some("tracefs"), 0) {
            warn!(
                "cannot mount the kernel's tracefs under the clone ({e}): trace-cmd will not find it"
            );
        }
    }
    let fuse = mount::mount(target, &clone.opts)?;
    let (session, _core) = clone.session(fuse, stats)?;
    let session = session
        .spawn()
        .map_err(|e| format!("FUSE session thread: {e}"))?;
    debug!("clone on {TRACING} ({} events)", clone.reg.event_count());

    let mut covers: Vec<(PathBuf, bool)> = before
        .iter()
        .filter(|(p, t)| is_tracefs(t) && p != target)
        .map(|(p, t)| (p.clone(), t == "tracefs"))
        .collect();
    // debugfs's `tracing` is an automount of the kernel's tracefs.
    covers.extend(
        before
            .iter()
            .filter(|(_, t)| t == "debugfs")
            .map(|(p, _)| (p.join("tracing"), true)),
    );
    for (point, kernel) in covers {
        match mount_call(Some(target), &point, None, libc::MS_BIND) {
            Ok(()) => debug!("clone over {}", point.display()),
            // A path we cannot reach is one COMMAND (same credentials) cannot reach either.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EACCES | libc::ENOENT | libc::ENOTDIR | libc::ENOTCONN)
                ) =>
            {
                debug!("{} unreachable: {e}", point.display())
            }
            Err(e) if kernel => {
                return Err(format!(
                    "cannot put the clone over the kernel's tracefs on {}: {e}",
                    point.display()
                ));
            }
            Err(e) => warn!("cannot put the clone over {}: {e}", point.display()),
        }
    }
    if !mounts().iter().any(|(_, t)| t == "tracefs") {
        warn!(
            "no kernel tracefs is mounted to lie under the clone (only root can mount one): \
             tools that want a mount of type tracefs (trace-cmd, libtracefs) will not find the \
             clone; perf and bpftrace will"
        );
    }
    cover_sysctls()?;
    if !root {
        cover_hidden_kallsyms()?;
    }
    Ok(session)
}

/// Binds private copies over the sysctls trace-cmd writes ([`SYSCTLS`]).
fn cover_sysctls() -> Result<(), String> {
    // One missing from this kernel has nothing to protect.
    SYSCTLS
        .iter()
        .filter_map(|file| Some((file, std::fs::read(file).ok()?)))
        .try_for_each(|(file, value)| cover(file, &value))
}

/// A user who may not see kernel addresses reads /proc/kallsyms with every address 0, which
/// trace-cmd saves and `trace-cmd report` then resolves any `ip` against: the clone's
/// markers would print as whichever symbol sorts first. Such a user gets, in place of those
/// useless addresses, the one symbol the clone's records carry (`tracing_mark_write`, the
/// `ip` of `ftrace:print`, which the daemon reads from this same file).
fn cover_hidden_kallsyms() -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let hidden = std::fs::File::open(KALLSYMS)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head.iter().all(|&b| b == b'0'));
    if !hidden {
        return Ok(());
    }
    cover(KALLSYMS, b"ffffffff81000000 T tracing_mark_write\n")
}

/// Binds a private file holding `contents` over `real` (what is written there goes nowhere).
fn cover(real: &str, contents: &[u8]) -> Result<(), String> {
    let name = real.rsplit('/').next().unwrap_or("file");
    let copy = std::env::temp_dir().join(format!("utracefs-run-{}-{name}", std::process::id()));
    std::fs::write(&copy, contents).map_err(|e| format!("{}: {e}", copy.display()))?;
    let bound = mount_call(Some(&copy), Path::new(real), None, libc::MS_BIND);
    // The mount keeps the file; no name is left behind.
    let _ = std::fs::remove_file(&copy);
    bound.map_err(|e| format!("cannot cover {real}: {e}"))
}

fn block_forwarded() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on the calling thread, whose
    // mask the threads started later inherit (COMMAND's is reset by Command).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Passes every signal in `set` on to COMMAND, except those the terminal sent (Ctrl-C): they
/// went to COMMAND already, as it shares our process group. Before COMMAND starts, a
/// termination signal ends utracefs.
fn forward_signals(set: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: siginfo_t is plain data; sigwaitinfo fills it.
        let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(set, &mut si) };
        if sig < 0 {
            continue;
        }
        let child = CHILD.load(Ordering::SeqCst);
        if child == 0 {
            if sig != libc::SIGWINCH {
                // SAFETY: _exit ends the process without running anything else.
                unsafe { libc::_exit(128 + sig) };
            }
        } else if si.si_code != libc::SI_KERNEL {
            // SAFETY: kill(2) of our child.
            unsafe { libc::kill(child, sig) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(
            unescape("/a\\040b\\134c\\011d"),
            OsString::from("/a b\\c\td")
        );
        assert_eq!(unescape("/plain"), OsString::from("/plain"));
        // A backslash not followed by three octal digits stays.
        assert_eq!(unescape("/x\\9"), OsString::from("/x\\9"));
    }
}
