//! Mounting as a normal user through the setuid `fusermount3` (package fuse3), the way libfuse
//! does: it mounts on our behalf and hands the /dev/fuse descriptor back over a unix socket
//! named by `_FUSE_COMMFD`; `fusermount3 -u` unmounts. It applies /etc/fuse.conf
//! (`user_allow_other` for `-o allow_other`, `mount_max`) and refuses mount points the user
//! does not own.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::mount::MountOptions;

const NAME: &str = "fusermount3";

/// fusermount3 on PATH, or where Debian installs it; one line saying what to install if absent.
pub fn find() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join(NAME))
        .find(|p| {
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
            // SAFETY: access(2) on a valid C string.
            unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
        })
        .ok_or_else(|| {
            format!(
                "{NAME} not found: a normal user mounts FUSE through it (install the fuse3 \
                 package, e.g. `apt-get install fuse3`), or mount as root"
            )
        })
}

/// Has `bin` mount `path` and returns the /dev/fuse descriptor it sends back.
pub fn mount(bin: &Path, path: &Path, opts: &MountOptions) -> Result<OwnedFd, String> {
    let (ours, theirs) = socketpair().map_err(|e| format!("socketpair: {e}"))?;
    // fusermount3 adds fd, rootmode, user_id and group_id itself, and nosuid,nodev for users.
    let mut o = String::from("fsname=tracefs,subtype=tracefs,default_permissions,noexec");
    if opts.allow_other {
        o.push_str(",allow_other");
    }
    let out = Command::new(bin)
        .arg("-o")
        .arg(&o)
        .arg("--")
        .arg(path)
        .env("_FUSE_COMMFD", theirs.as_raw_fd().to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    drop(theirs);
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim().lines().last().unwrap_or("").trim();
        return Err(format!(
            "cannot mount on {}: {NAME} failed: {msg}",
            path.display()
        ));
    }
    receive_fd(ours.as_raw_fd()).map_err(|e| {
        format!(
            "cannot mount on {}: no descriptor from {NAME}: {e}",
            path.display()
        )
    })
}

/// `fusermount3 -u -z PATH`: lazy, like root's unmount of a busy mount.
pub fn unmount(bin: &Path, path: &Path) -> std::io::Result<()> {
    let out = Command::new(bin)
        .args(["-u", "-z", "--"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// A connected pair: ours close-on-exec, theirs inherited by fusermount3.
fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors; we take ownership of both at once.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok((ours, theirs))
}

/// Receives one descriptor sent with SCM_RIGHTS.
fn receive_fd(sock: RawFd) -> std::io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one cmsghdr carrying one int, aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer in it is valid for the call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(std::io::Error::other("no SCM_RIGHTS message"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
