//! The host kernel's tracefs, reached through a private mount: a detached mount
//! (`fsopen`/`fsmount`, visible to no one), or a tracefs mounted on a fresh directory and
//! detached at once, its opened root keeping it reachable. A path such as
//! `/sys/kernel/tracing` is never used: the clone itself may be mounted over it.
//! Everything is done relative to directory descriptors.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The root directory of a private tracefs mount.
pub fn open_private() -> io::Result<OwnedFd> {
    detached().or_else(|_| mounted_then_detached())
}

/// `fsopen("tracefs")` → `fsmount`: a mount attached nowhere.
fn detached() -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_long = 1;
    const FSCONFIG_CMD_CREATE: libc::c_long = 6;
    const FSMOUNT_CLOEXEC: libc::c_long = 1;
    let name = cstr("tracefs")?;
    // SAFETY: plain syscalls with valid arguments; each returned fd is owned at once.
    unsafe {
        let fs = cvt(libc::syscall(
            libc::SYS_fsopen,
            name.as_ptr(),
            FSOPEN_CLOEXEC,
        ))?;
        let fs = OwnedFd::from_raw_fd(fs as RawFd);
        cvt(libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            0usize,
            0usize,
            0,
        ))?;
        let mnt = cvt(libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            0,
        ))?;
        Ok(OwnedFd::from_raw_fd(mnt as RawFd))
    }
}

/// Older kernels: mount on a fresh directory, open its root, detach and remove the directory.
fn mounted_then_detached() -> io::Result<OwnedFd> {
    let dir = std::env::temp_dir().join(format!("utracefs-ktr-{}", std::process::id()));
    std::fs::create_dir(&dir)?;
    let path = cstr(dir.to_str().unwrap_or_default())?;
    let (src, ty) = (cstr("nodev")?, cstr("tracefs")?);
    // SAFETY: valid C strings; the fd is owned at once.
    let res = unsafe {
        if libc::mount(
            src.as_ptr(),
            path.as_ptr(),
            ty.as_ptr(),
            0,
            std::ptr::null(),
        ) < 0
        {
            Err(io::Error::last_os_error())
        } else {
            let fd = libc::open(path.as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC);
            let e = io::Error::last_os_error();
            libc::umount2(path.as_ptr(), libc::MNT_DETACH);
            if fd < 0 {
                Err(e)
            } else {
                Ok(OwnedFd::from_raw_fd(fd))
            }
        }
    };
    let _ = std::fs::remove_dir(&dir);
    res
}

/// `openat(dir, rel, flags)`.
pub fn open_at(dir: &OwnedFd, rel: &str, flags: i32) -> io::Result<OwnedFd> {
    let p = cstr(rel)?;
    // SAFETY: a valid C string; the fd is owned at once.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), p.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One write(2) of `data` to `dir/rel` (opened with `extra` flags besides O_WRONLY).
pub fn write_at(dir: &OwnedFd, rel: &str, data: &[u8], extra: i32) -> io::Result<()> {
    let fd = open_at(dir, rel, libc::O_WRONLY | extra)?;
    // SAFETY: data is valid for its length.
    let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The whole of `dir/rel`, read in large pieces: some tracefs files (`header_page`) give
/// only the first read's worth, so a small first read would cut them short.
pub fn read_at(dir: &OwnedFd, rel: &str) -> io::Result<String> {
    let fd = open_at(dir, rel, libc::O_RDONLY)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => break,
            n if n < 0 => return Err(io::Error::last_os_error()),
            n => out.extend_from_slice(&buf[..n as usize]),
        }
    }
    String::from_utf8(out).map_err(|_| io::Error::from_raw_os_error(libc::EILSEQ))
}

pub fn mkdir_at(dir: &OwnedFd, rel: &str) -> io::Result<()> {
    let p = cstr(rel)?;
    // SAFETY: a valid C string.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), p.as_ptr(), 0o755) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn rmdir_at(dir: &OwnedFd, rel: &str) -> io::Result<()> {
    let p = cstr(rel)?;
    // SAFETY: a valid C string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), p.as_ptr(), libc::AT_REMOVEDIR) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes `dir/rel`, waiting out EBUSY (files of the instance still closing) for up to 2 s.
/// Ok when it is gone, whoever removed it.
pub fn remove_instance(dir: &OwnedFd, rel: &str) -> io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match rmdir_at(dir, rel) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if std::time::Instant::now() > deadline {
                    return Err(e);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}
