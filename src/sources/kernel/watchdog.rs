//! The watchdog: a forked child that removes the daemon's kernel instance when the daemon is
//! gone however it went (SIGKILL included). It blocks reading a pipe whose only write end the
//! daemon holds; end of file means the daemon has exited, and it removes the instance (waiting
//! out EBUSY while the dead daemon's files close), then exits.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct Watchdog {
    pid: libc::pid_t,
    /// Closing it (drop, or the daemon's death) sets the watchdog off.
    pipe: Option<OwnedFd>,
}

/// Forks the watchdog for instance `rel` under tracefs root `root`.
pub fn spawn(root: &OwnedFd, rel: &str) -> io::Result<Watchdog> {
    let path = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut p = [0; 2];
    // SAFETY: p has room for two descriptors.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just returned to us.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: the child only makes async-signal-safe calls (the daemon may have threads).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see `watch`.
        unsafe { watch(r.as_raw_fd(), root.as_raw_fd(), &path) }
    }
    drop(r);
    Ok(Watchdog { pid, pipe: Some(w) })
}

/// The child. Only async-signal-safe calls: no allocation, no locks.
unsafe fn watch(pipe: RawFd, root: RawFd, path: &CString) -> ! {
    unsafe {
        // Terminal signals are the daemon's to handle; the watchdog outlives them.
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_NAME, c"utracefs-wd".as_ptr());
        // Keep only the pipe and the tracefs root: above all not the daemon's /dev/fuse or
        // the write end of this pipe.
        let (lo, hi) = (pipe.min(root), pipe.max(root));
        let close = |a: RawFd, b: RawFd| {
            if a <= b {
                libc::syscall(
                    libc::SYS_close_range,
                    a as libc::c_uint,
                    b as libc::c_uint,
                    0,
                );
            }
        };
        close(3, lo - 1);
        close(lo + 1, hi - 1);
        close(hi + 1, RawFd::MAX);
        let mut b = 0u8;
        loop {
            let n = libc::read(pipe, (&mut b as *mut u8).cast(), 1);
            if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                break;
            }
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        for _ in 0..250 {
            if libc::unlinkat(root, path.as_ptr(), libc::AT_REMOVEDIR) == 0
                || *libc::__errno_location() == libc::ENOENT
            {
                break;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
        libc::_exit(0)
    }
}

impl Watchdog {
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }
}

impl Drop for Watchdog {
    /// Sets the watchdog off (it finds the instance gone, or removes it) and reaps it.
    fn drop(&mut self) {
        drop(self.pipe.take());
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}
