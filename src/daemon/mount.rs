//! Mounting and unmounting: checks on the mount point with clear errors, mount(2) of a FUSE
//! filesystem of type `fuse.tracefs` by root or fusermount3 for everyone else ([`Mounter`]),
//! and recovery of a dead one.
//!
//! If the daemon dies without unmounting (SIGKILL, crash), its mount stays in place on purpose:
//! the kernel aborts a FUSE connection when the last /dev/fuse descriptor closes (only the
//! daemon holds one), and from then on every call on the mount — blocked readers, open fds, new
//! lookups, creates — fails at once with ENOTCONN. Detaching it instead would turn the mount
//! point back into the bare directory, where lookups answer a plausible ENOENT and a write such
//! as `echo > trace_marker` creates a stray file. The next start on that mount point finds the
//! dead `fuse.tracefs` mount (stat answers ENOTCONN), detaches it and mounts afresh.

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
    /// Everything owned by the user who mounts (root for a tracefs-like mount by root).
    fn default() -> Self {
        MountOptions {
            // SAFETY: getuid/getgid cannot fail.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
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

/// A mount point that passed [`check_mount_point`].
#[derive(Debug)]
pub struct MountPoint {
    /// Canonical path.
    pub path: PathBuf,
    /// A dead utracefs mount is on top there (its daemon died); [`detach_dead`] removes it,
    /// after which the directory below must be checked again.
    pub dead: bool,
}

/// Checks that `path` can be mounted on: exists, is a directory, is not already a mount point
/// (unless `over`), or is a dead utracefs mount. Warns if the directory is not empty: its
/// contents are hidden while mounted.
pub fn check_mount_point(path: &Path, over: bool) -> Result<MountPoint, String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("mount point {shown} does not exist"));
        }
        // A FUSE mount whose connection is gone; only a `fuse.tracefs` one is ours to clear.
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            let canon = canonical_parent(path).map_err(|e| format!("mount point {shown}: {e}"))?;
            if top_fstype(&canon).as_deref() == Some("fuse.tracefs") {
                return Ok(MountPoint {
                    path: canon,
                    dead: true,
                });
            }
            return Err(format!(
                "mount point {shown}: {e} (a dead FUSE mount of another file system)"
            ));
        }
        Err(e) => return Err(format!("mount point {shown}: {e}")),
    };
    if !meta.is_dir() {
        return Err(format!("mount point {shown} is not a directory"));
    }
    let canon = path
        .canonicalize()
        .map_err(|e| format!("mount point {shown}: {e}"))?;
    if is_mount_point(&canon) {
        if !over {
            return Err(format!(
                "mount point {shown} is already a mount point (use -o over to mount on top of it)"
            ));
        }
    } else if std::fs::read_dir(&canon).is_ok_and(|mut d| d.next().is_some()) {
        tracing::warn!(
            "mount point {} is not empty: its contents are hidden until it is unmounted",
            canon.display()
        );
    }
    Ok(MountPoint {
        path: canon,
        dead: false,
    })
}

/// The canonical path of `path` without resolving its last component, which may be a dead
/// mount that answers ENOTCONN to every stat.
fn canonical_parent(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no final path component"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(parent.canonicalize()?.join(name))
}

/// How this user mounts: root calls mount(2) itself, anyone else has the setuid fusermount3 do
/// it, as every FUSE file system does.
#[derive(Clone, Debug)]
pub enum Mounter {
    Direct,
    Fusermount(PathBuf),
}

impl Mounter {
    /// The way open to the calling user, or one line saying what is missing: /dev/fuse that
    /// this user may open, fusermount3.
    pub fn for_this_user() -> Result<Mounter, String> {
        if super::is_root() {
            return Ok(Mounter::Direct);
        }
        check_dev_fuse()?;
        crate::daemon::fusermount::find().map(Mounter::Fusermount)
    }

    /// Mounts a fresh FUSE connection on `path`; returns its /dev/fuse descriptor.
    pub fn mount(&self, path: &Path, opts: &MountOptions) -> Result<OwnedFd, String> {
        match self {
            Mounter::Direct => mount(path, opts),
            Mounter::Fusermount(bin) => crate::daemon::fusermount::mount(bin, path, opts),
        }
    }

    /// Unmounts `path`, lazily if it is busy; nothing if no utracefs mount is on top there.
    pub fn unmount(&self, path: &Path) -> std::io::Result<()> {
        if !is_mounted(path) {
            return Ok(());
        }
        match self {
            Mounter::Direct => unmount(path),
            Mounter::Fusermount(bin) => crate::daemon::fusermount::unmount(bin, path),
        }
    }

    /// Lazily unmounts the dead utracefs mount on top at `path` (fds still open on it keep
    /// failing with ENOTCONN until closed).
    pub fn detach_dead(&self, path: &Path) -> Result<(), String> {
        let detached = match self {
            Mounter::Direct => detach(path),
            Mounter::Fusermount(bin) => crate::daemon::fusermount::unmount(bin, path),
        };
        detached.map_err(|e| format!("cannot unmount the dead mount on {}: {e}", path.display()))
    }
}

/// Can this user open /dev/fuse for reading and writing? One line saying what to do if not.
pub fn check_dev_fuse() -> Result<(), String> {
    // SAFETY: access(2) on a constant path.
    if unsafe { libc::access(c"/dev/fuse".as_ptr(), libc::R_OK | libc::W_OK) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::ENOENT) => {
            "cannot open /dev/fuse: it does not exist (as root: `modprobe fuse`)".to_string()
        }
        Some(libc::EACCES | libc::EPERM) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata("/dev/fuse").map_or(0, |m| m.permissions().mode());
            format!(
                "cannot open /dev/fuse: permission denied (its mode is {:04o}; as root, \
                 `chmod 0666 /dev/fuse` lets every user mount FUSE, as udev does)",
                mode & 0o7777
            )
        }
        _ => format!("cannot open /dev/fuse: {e}"),
    })
}

/// Lazily unmounts whatever is on top at `path`.
fn detach(path: &Path) -> std::io::Result<()> {
    let target = cstr(path).map_err(std::io::Error::other)?;
    // SAFETY: valid C string.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

/// Opens /dev/fuse and mounts it on `path` with mount(2); returns the FUSE channel fd.
pub fn mount(path: &Path, opts: &MountOptions) -> Result<OwnedFd, String> {
    // SAFETY: plain open(2) of a constant path.
    let fd = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        check_dev_fuse()?;
        return Err(format!("cannot open /dev/fuse: {e}"));
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
            " (mount(2) needs root; other users mount through fusermount3)"
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

/// Unmounts what is on top at `path` with umount2(2), lazily if it is busy.
pub fn unmount(path: &Path) -> std::io::Result<()> {
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
