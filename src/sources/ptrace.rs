//! Process events of one command's process tree through ptrace, for a daemon that cannot
//! subscribe to the kernel's process connector (it needs CAP_NET_ADMIN in the initial user
//! namespace): `utracefs run` as a normal user traces COMMAND and every process and thread it
//! starts, stopping each only at fork, exec and exit (and to pass on its signals), and turns
//! those stops into the same [`ProcEvent`]s the connector gives. Processes outside the tree
//! are not seen. A traced process cannot be traced again (gdb, strace inside fail) and
//! set-uid programs run without their privileges, as under strace. Tracees are seized
//! (PTRACE_SEIZE), so job control works: a stopped job stays stopped (PTRACE_LISTEN) until
//! SIGCONT.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use super::process::{Meta, ProcEvent, Resolver};

/// COMMAND ready to start: its path found on PATH (execvp's rules), argv and environment as
/// C strings, built before the fork (the child of a threaded process may only make
/// async-signal-safe calls).
pub struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Program {
    /// `argv[0]` is looked up on PATH unless it holds a `/`; NotFound if it is nowhere,
    /// PermissionDenied if what is found cannot be executed.
    pub fn new(argv: &[OsString], env: &[(OsString, OsString)]) -> io::Result<Program> {
        let c =
            |b: &[u8]| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
        let name = argv.first().ok_or(io::ErrorKind::InvalidInput)?;
        let executable = |p: &std::path::Path| {
            let cp = CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
            // SAFETY: access(2) on a valid C string.
            p.is_file() && unsafe { libc::access(cp.as_ptr(), libc::X_OK) } == 0
        };
        let path = if name.as_bytes().contains(&b'/') {
            let p = std::path::PathBuf::from(name);
            if !p.exists() {
                return Err(io::ErrorKind::NotFound.into());
            }
            p
        } else {
            let paths = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
            let all: Vec<_> = std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .collect();
            match all.iter().find(|p| executable(p)) {
                Some(p) => p.clone(),
                None if all.iter().any(|p| p.is_file()) => {
                    return Err(io::ErrorKind::PermissionDenied.into());
                }
                None => return Err(io::ErrorKind::NotFound.into()),
            }
        };
        Ok(Program {
            path: c(path.as_os_str().as_bytes())?,
            argv: argv
                .iter()
                .map(|a| c(a.as_bytes()))
                .collect::<io::Result<_>>()?,
            envp: env
                .iter()
                .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
                .collect::<io::Result<_>>()?,
        })
    }
}

/// Starts `prog` seized by the calling thread (which must then call [`trace`]: ptrace
/// belongs to the thread) before it execs, so its own exec is seen too. Returns its pid and
/// a pipe that carries the errno of a failed exec (EOF once the exec succeeded).
pub fn spawn(prog: &Program) -> io::Result<(i32, OwnedFd)> {
    let ptrs = |v: &[CString]| {
        let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
        p.push(std::ptr::null());
        p
    };
    let (argv, envp) = (ptrs(&prog.argv), ptrs(&prog.envp));
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors; we own them at once.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (err_r, err_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child makes only async-signal-safe calls on memory prepared before the fork
    // (the mask and SIGPIPE go back to what COMMAND would get without us, it waits stopped
    // until seized, then execs), and leaves through execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        unsafe {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGSTOP);
            libc::execve(prog.path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            let e = *libc::__errno_location();
            libc::write(err_w.as_raw_fd(), (&e as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    drop(err_w);
    let mut status = 0;
    // SAFETY: waiting for our child's stop; then seizing and continuing it.
    unsafe {
        while libc::waitpid(pid, &mut status, libc::WUNTRACED) < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
        let options = libc::PTRACE_O_TRACEFORK
            | libc::PTRACE_O_TRACEVFORK
            | libc::PTRACE_O_TRACECLONE
            | libc::PTRACE_O_TRACEEXEC
            | libc::PTRACE_O_TRACEEXIT;
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, options as libc::c_long) != 0 {
            let e = io::Error::last_os_error();
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut status, 0);
            return Err(e);
        }
        libc::kill(pid, libc::SIGCONT);
    }
    Ok((pid, err_r))
}

/// The errno a failed exec left in the pipe from [`spawn`], if it failed.
pub fn exec_error(pipe: &OwnedFd) -> Option<io::Error> {
    let mut e = [0u8; 4];
    // SAFETY: reads at most 4 bytes into e.
    let n = unsafe { libc::read(pipe.as_raw_fd(), e.as_mut_ptr().cast(), 4) };
    (n == 4).then(|| io::Error::from_raw_os_error(i32::from_ne_bytes(e)))
}

fn meta() -> Meta {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() }.max(0) as u32;
    Meta {
        cpu,
        timestamp_ns: crate::trace::state::mono_now_ns(),
    }
}

/// The thread group of `pid` from /proc (`pid` itself if unreadable).
fn tgid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(pid)
}

fn event_msg(pid: i32) -> u64 {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: GETEVENTMSG writes one unsigned long.
    unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg) };
    msg as u64
}

fn resume(pid: i32, sig: i32) {
    // SAFETY: resuming a stopped tracee of ours; ESRCH (killed meanwhile) is harmless.
    unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, sig as libc::c_long) };
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// Follows the tree started by [`spawn`] (`main` its pid) until `main` ends, calling `emit`
/// for every fork, exec and exit in it; returns `main`'s wait status. Tracees left running
/// when `main` ends are detached as the tracer exits.
pub fn trace(main: i32, mut emit: impl FnMut(Meta, ProcEvent)) -> i32 {
    let mut res = Resolver::new("/proc");
    let mut send = |ev: ProcEvent| {
        let mut ev = ev;
        res.fill(&mut ev);
        emit(meta(), ev);
    };
    let exec = |pid: i32| ProcEvent::Exec {
        pid,
        tgid: tgid(pid),
        filename: String::new(),
        comm: String::new(),
    };
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
        if pid < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // No child left: `main` was reaped elsewhere, which cannot happen; report a kill.
            return libc::SIGKILL;
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if pid == main {
                return status;
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        match status >> 16 {
            libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                let child = event_msg(pid) as i32;
                let (parent_tgid, child_tgid) = (tgid(pid), tgid(child));
                send(ProcEvent::Fork {
                    parent_pid: pid,
                    parent_tgid,
                    child_pid: child,
                    child_tgid,
                    parent_comm: String::new(),
                    child_comm: String::new(),
                });
                resume(pid, 0);
            }
            libc::PTRACE_EVENT_EXEC => {
                send(exec(pid));
                resume(pid, 0);
            }
            libc::PTRACE_EVENT_EXIT => {
                // The connector's values: the wait status, the signal the parent gets.
                send(ProcEvent::Exit {
                    pid,
                    tgid: tgid(pid),
                    exit_code: event_msg(pid) as u32,
                    exit_signal: libc::SIGCHLD as u32,
                    comm: String::new(),
                    prio: 0,
                    group_dead: false,
                });
                resume(pid, 0);
            }
            // A group-stop (SIGSTOP, Ctrl-Z…): stopped it stays, yet its parent learns of it
            // and SIGCONT ends it. Any other PTRACE_EVENT_STOP is a new tracee's first stop.
            libc::PTRACE_EVENT_STOP if is_stop_signal(sig) => {
                // SAFETY: listening on our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid, 0, 0) };
            }
            libc::PTRACE_EVENT_STOP => resume(pid, 0),
            // A signal about to be delivered: deliver it.
            _ => resume(pid, sig),
        }
    }
}
