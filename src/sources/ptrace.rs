//! Process events of one command's process tree through ptrace, for a daemon that cannot
//! subscribe to the kernel's process connector (it needs CAP_NET_ADMIN in the initial user
//! namespace): `utracefs run` as a normal user traces COMMAND and every process and thread it
//! starts, stopping each only at fork, exec and exit (and to pass on its signals), and turns
//! those stops into the same [`ProcEvent`]s the connector gives. Processes outside the tree
//! are not seen. A traced process cannot be traced again (gdb, strace inside fail),
//! set-uid programs run without their privileges, as under strace, and a group-stop (Ctrl-Z
//! of a job in a nested shell) does not hold: without PTRACE_SEIZE, which needs the tracee
//! stopped before its exec, there is no PTRACE_LISTEN to keep it stopped.

use std::collections::HashSet;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::process::{Meta, ProcEvent, Resolver};

/// Starts `cmd` traced by the calling thread, which must then call [`trace`] (ptrace belongs
/// to the thread). Errors are `Command::spawn`'s (not found, not executable).
pub fn spawn(cmd: &mut Command) -> io::Result<i32> {
    // SAFETY: the hook runs in the child between fork and exec and only makes a syscall.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd.spawn()?.id() as i32)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn meta() -> Meta {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() }.max(0) as u32;
    Meta {
        cpu,
        timestamp_ns: now_ns(),
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

/// Is this stop a group-stop (SIGSTOP and friends taking effect) rather than a signal about
/// to be delivered? Only the latter has siginfo.
fn is_group_stop(pid: i32, sig: i32) -> bool {
    if !matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    ) {
        return false;
    }
    // SAFETY: siginfo_t is plain data; GETSIGINFO writes one.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    unsafe { libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut si) != 0 }
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
    // Tasks seen at least once: a new one's first SIGSTOP is ptrace's attach stop, not a
    // signal for it.
    let mut known: HashSet<i32> = HashSet::from([main]);
    let options = libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT;
    let mut first = true;
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
            known.remove(&pid);
            if pid == main {
                return status;
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        if first && pid == main {
            // PTRACE_TRACEME's stop after COMMAND's exec: COMMAND's own exec record.
            first = false;
            // SAFETY: setting options on our stopped tracee.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options as libc::c_long) };
            send(exec(pid));
            resume(pid, 0);
            continue;
        }
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
            _ if sig == libc::SIGSTOP && known.insert(pid) => resume(pid, 0),
            _ if is_group_stop(pid, sig) => resume(pid, 0),
            _ => resume(pid, sig),
        }
        known.insert(pid);
    }
}
