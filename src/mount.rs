//! Mounting and unmounting: checks on the mount point with clear errors, mount(2) of a FUSE
//! filesystem of type `fuse.tracefs`, and a watchdog process that detaches the mount if the
//! daemon dies without unmounting (SIGKILL, abort), so users never meet a dead mount.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `-o` options with tracefs's meaning plus FUSE's `allow_other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub uid: u32,
    pub gid: u32,
    /// Mode of the root directory (tracefs default 0700).
    pub mode: u16,
    pub allow_other: bool,
    /// `over`: mount even on a directory that is already a mount point — typically a kernel
    /// tracefs, so that libtracefs/trace-cmd, which insist on a `tracefs` line in
    /// /proc/mounts, find one at that path and then use this mount on top of it.
    pub over: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            uid: 0,
            gid: 0,
            mode: 0o700,
            allow_other: false,
            over: false,
        }
    }
}

impl MountOptions {
    /// Parses comma-separated `-o` values (several `-o` may be given).
    pub fn parse(values: &[String]) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        for opt in values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|s| !s.is_empty())
        {
            let (key, val) = opt.split_once('=').unwrap_or((opt, ""));
            let num = |radix| {
                u32::from_str_radix(val, radix)
                    .map_err(|_| format!("invalid value in mount option `{opt}`"))
            };
            match key {
                "uid" => o.uid = num(10)?,
                "gid" => o.gid = num(10)?,
                "mode" => {
                    let m = num(8)?;
                    if m > 0o7777 {
                        return Err(format!("invalid value in mount option `{opt}`"));
                    }
                    o.mode = m as u16;
                }
                "allow_other" if val.is_empty() => o.allow_other = true,
                "over" if val.is_empty() => o.over = true,
                _ => {
                    return Err(format!(
                        "unknown mount option `{opt}` (known: uid=, gid=, mode=, allow_other, over)"
                    ));
                }
            }
        }
        Ok(o)
    }
}

/// Checks that `path` can be mounted on: exists, is a directory, is not already a mount point
/// (unless `over`).
pub fn check_mount_point(path: &Path, over: bool) -> Result<PathBuf, String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("mount point {shown} does not exist"));
        }
        Err(e) => return Err(format!("mount point {shown}: {e}")),
    };
    if !meta.is_dir() {
        return Err(format!("mount point {shown} is not a directory"));
    }
    let canon = path
        .canonicalize()
        .map_err(|e| format!("mount point {shown}: {e}"))?;
    if is_mount_point(&canon) && !over {
        return Err(format!(
            "mount point {shown} is already a mount point (use -o over to mount on top of it)"
        ));
    }
    Ok(canon)
}

/// Is `path` (canonical) listed as a mount point in /proc/self/mountinfo?
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = escape_mountinfo(path);
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn escape_mountinfo(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.push_str(&format!("\\{b:03o}")),
            _ => out.push(b as char),
        }
    }
    out
}

fn cstr(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| "path contains a NUL byte".to_string())
}

/// Opens /dev/fuse and mounts it on `path`; returns the FUSE channel fd.
pub fn mount(path: &Path, opts: &MountOptions) -> Result<OwnedFd, String> {
    // SAFETY: plain open(2) of a constant path.
    let fd = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot open /dev/fuse: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fuse = unsafe { OwnedFd::from_raw_fd(fd) };
    // default_permissions: the kernel checks modes and owners like tracefs does.
    let mut data = format!(
        "fd={fd},rootmode={:o},user_id={},group_id={},default_permissions",
        libc::S_IFDIR | u32::from(opts.mode),
        // SAFETY: getuid/getgid cannot fail.
        unsafe { libc::getuid() },
        unsafe { libc::getgid() },
    );
    if opts.allow_other {
        data.push_str(",allow_other");
    }
    let target = cstr(path)?;
    let data = CString::new(data).expect("no NUL in mount data");
    // SAFETY: all pointers are valid NUL-terminated strings for the duration of the call.
    let r = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"fuse.tracefs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RELATIME,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let hint = if e.raw_os_error() == Some(libc::EPERM) {
            " (mounting needs root)"
        } else {
            ""
        };
        return Err(format!("cannot mount on {}: {e}{hint}", path.display()));
    }
    Ok(fuse)
}

/// The type of the file system mounted on top at `path` (canonical), from
/// /proc/self/mountinfo (later lines are mounted over earlier ones). Asks no file system, so
/// it cannot hang on a FUSE mount whose daemon is gone.
fn top_fstype(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = escape_mountinfo(path);
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|t| t.split(' ').next())
        .map(str::to_string)
}

/// Is this daemon's kind of mount on top at `path`? With `-o over` something else lies below
/// it, which must never be unmounted in our place.
pub fn is_mounted(path: &Path) -> bool {
    top_fstype(path).as_deref() == Some("fuse.tracefs")
}

/// Unmounts `path`, lazily if it is busy; nothing if no FUSE mount is on top there.
pub fn unmount(path: &Path) -> std::io::Result<()> {
    if !is_mounted(path) {
        return Ok(());
    }
    let target = cstr(path).map_err(std::io::Error::other)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(target.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // SAFETY: valid C string.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(std::io::Error::last_os_error())
}

/// The write end of the pipe to the watchdog process; [`Watchdog::disarm`] on a clean exit.
pub struct Watchdog {
    fd: OwnedFd,
}

impl Watchdog {
    /// Forks a watchdog that waits for this process to die. If the daemon exits without
    /// disarming it (killed, crashed), the watchdog detaches the mount. Must be called before
    /// any thread is started (it forks).
    pub fn start(path: &Path) -> Result<Watchdog, String> {
        let target = cstr(path)?;
        let path = path.to_path_buf();
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: the process is single-threaded here, so the child may use the whole standard
        // library (no lock can be held by another thread); it ends with _exit.
        match unsafe { libc::fork() } {
            -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
            0 => unsafe {
                libc::close(fds[1]);
                // Ctrl-C reaches the whole process group: the watchdog must outlive it.
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                let mut byte = 0u8;
                let n = loop {
                    let n = libc::read(fds[0], (&mut byte as *mut u8).cast(), 1);
                    if n >= 0 || *libc::__errno_location() != libc::EINTR {
                        break n;
                    }
                };
                // EOF without the "clean" byte: the daemon died with the mount in place.
                if n == 0 && is_mounted(&path) {
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH);
                }
                libc::_exit(0)
            },
            _ => {
                // SAFETY: closing our copy of the read end; keeping the write end.
                unsafe { libc::close(fds[0]) };
                Ok(Watchdog {
                    fd: unsafe { OwnedFd::from_raw_fd(fds[1]) },
                })
            }
        }
    }

    /// Tells the watchdog the daemon has unmounted by itself.
    pub fn disarm(self) {
        use std::os::fd::AsRawFd;
        // SAFETY: writing one byte to our pipe fd.
        unsafe { libc::write(self.fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let o =
            MountOptions::parse(&["uid=5,gid=6".into(), "mode=755,allow_other".into()]).unwrap();
        assert_eq!(
            o,
            MountOptions {
                uid: 5,
                gid: 6,
                mode: 0o755,
                allow_other: true,
                over: false,
            }
        );
        assert!(
            MountOptions::parse(&["bogus".into()])
                .unwrap_err()
                .contains("unknown mount option")
        );
        assert!(MountOptions::parse(&["mode=999".into()]).is_err());
        assert!(MountOptions::parse(&["uid=x".into()]).is_err());
        assert_eq!(MountOptions::parse(&[]).unwrap(), MountOptions::default());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(escape_mountinfo(Path::new("/a b\\c")), "/a\\040b\\134c");
    }
}
