//! SIGINT/SIGTERM/SIGHUP are blocked in every thread and taken by one thread with sigwait, so
//! shutdown runs ordinary code (unmount) instead of a signal handler.

/// Blocks the termination signals in the calling thread (and the threads it will start).
pub fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on the calling thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the signals in `set`; returns its number.
pub fn wait(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: sigwait reads the set and writes the signal number.
    while unsafe { libc::sigwait(set, &mut sig) } != 0 {}
    sig
}
