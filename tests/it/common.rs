//! Shared mount helpers for the integration tests.
//!
//! `Mount::new(&[])` starts the `utracefs` binary on a fresh temporary directory and waits until
//! the kernel shows the mount. Mounting must work here: a failure panics (the tests fail, never
//! skip). Dropping the `Mount` sends SIGTERM, waits for the daemon and checks it left no mount.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_utracefs");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory under the system temp dir, removed (if empty) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("utracefs-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Is `path` a mount point right now (per /proc/self/mountinfo)? Returns its fs type.
pub fn mount_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_str()?;
    info.lines().rev().find_map(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (f.get(4) == Some(&want)).then(|| f[sep + 1].to_string())
    })
}

pub struct Mount {
    pub dir: TempDir,
    pub child: Option<Child>,
    pub stats_sock: PathBuf,
    pub stderr_log: PathBuf,
    /// The daemon's `RUST_LOG`.
    log_filter: String,
}

impl Mount {
    /// Mounts with extra command-line arguments (placed before the mount point).
    pub fn new(args: &[&str]) -> Mount {
        let dir = TempDir::new("mnt");
        std::fs::create_dir(dir.path().join("m")).unwrap();
        Mount::on(dir, args)
    }

    /// Mounts with the daemon's log filter set to `filter` (`RUST_LOG`, e.g. "debug").
    pub fn with_log(args: &[&str], filter: &str) -> Mount {
        let dir = TempDir::new("mnt");
        std::fs::create_dir(dir.path().join("m")).unwrap();
        Mount::start(dir, args, filter)
    }

    /// Mounts on `dir/m`, a directory the caller made (and may have filled).
    pub fn on(dir: TempDir, args: &[&str]) -> Mount {
        Mount::start(
            dir,
            args,
            &std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
    }

    fn start(dir: TempDir, args: &[&str], filter: &str) -> Mount {
        let stats_sock = dir.path().join("stats.sock");
        let stderr_log = dir.path().join("daemon.log");
        let mut m = Mount {
            dir,
            child: None,
            stats_sock,
            stderr_log,
            log_filter: filter.to_string(),
        };
        m.spawn(args, false);
        m
    }

    /// Starts a new daemon on this mount point after the last one died (`child` taken), with
    /// a fresh log; waits until the mount answers.
    pub fn restart(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "the previous daemon is still running");
        self.spawn(args, true);
    }

    /// Starts the daemon and waits for its mount. `replacing`: a dead mount may already be in
    /// place (answering ENOTCONN), so also wait until the mount point can be stat'ed.
    fn spawn(&mut self, args: &[&str], replacing: bool) {
        let log = std::fs::File::create(&self.stderr_log).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .arg("--stats")
            .arg(&self.stats_sock)
            .arg(self.path())
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn utracefs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if mount_type(&self.path()).as_deref() == Some("fuse.tracefs")
                && (!replacing || std::fs::metadata(self.path()).is_ok())
            {
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("utracefs exited before mounting ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "utracefs did not mount in 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("m")
    }

    /// `path()/rel`.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The daemon's counters, read from its stats socket (`key value` lines).
    pub fn stats(&self) -> HashMap<String, u64> {
        let mut s = String::new();
        UnixStream::connect(&self.stats_sock)
            .expect("connect stats socket")
            .read_to_string(&mut s)
            .unwrap();
        s.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    /// Number of live node objects (inodes the kernel holds a lookup count on).
    pub fn nodes(&self) -> u64 {
        self.stats()["nodes"]
    }

    /// Drops the kernel's caches until the daemon's node count is back to `base` (the kernel
    /// has forgotten everything the test made it look up); fails after 10 s.
    pub fn assert_nodes_return_to(&self, base: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            drop_caches();
            let n = self.nodes();
            if n <= base {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nodes stayed at {n} (baseline {base})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and waits; returns the exit status. The mount must be gone afterwards.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("already terminated");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "utracefs did not exit within 10 s of SIGTERM: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            let st = self.terminate();
            let still = mount_type(&self.path());
            if still.is_some() {
                let c = std::ffi::CString::new(self.path().to_str().unwrap()).unwrap();
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
            if !std::thread::panicking() {
                assert!(st.success(), "utracefs exited with {st}: {}", self.log());
                assert!(still.is_none(), "mount left behind after SIGTERM");
            } else if !st.success() {
                // The test failed and the daemon did not exit cleanly: show why.
                let log = self.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!("utracefs exited with {st}; the end of its log:\n{tail}");
            }
        }
    }
}

/// How long a bounded concurrency test runs: `default`, or `UTRACEFS_SOAK_SECS` seconds when
/// that variable is set (an opt-in soak; see README "Reliability suite and soaks").
pub fn soak_or(default: Duration) -> Duration {
    match std::env::var("UTRACEFS_SOAK_SECS") {
        Ok(v) => Duration::from_secs(
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("UTRACEFS_SOAK_SECS={v:?}: not a number of seconds")),
        ),
        Err(_) => default,
    }
}

/// Writes `data` with one write(2) on a fresh fd opened with `flags` (e.g. libc::O_WRONLY or
/// libc::O_WRONLY | libc::O_TRUNC). Returns the byte count or the errno.
pub fn write_raw(path: &Path, data: &[u8], flags: i32) -> Result<usize, i32> {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    unsafe {
        // CLOEXEC: daemons spawned by parallel tests must not inherit the fd.
        let fd = libc::open(c.as_ptr(), flags | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let r = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = *libc::__errno_location();
        libc::close(fd);
        if r < 0 { Err(e) } else { Ok(r as usize) }
    }
}

/// A fresh mount with one instance, `instances/cts`, like the spec's scenarios (§14).
pub struct Inst {
    pub m: Mount,
}

impl Inst {
    pub fn new() -> Inst {
        Inst::with_args(&[])
    }

    /// On a daemon started with extra command-line arguments.
    pub fn with_args(args: &[&str]) -> Inst {
        let m = Mount::new(args);
        std::fs::create_dir(m.p("instances/cts")).unwrap();
        Inst { m }
    }

    /// A path inside the instance.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.m.p(&format!("instances/cts/{rel}"))
    }

    /// One write(2) of exactly `data`, opened with O_TRUNC like the shell's `>`.
    pub fn w(&self, rel: &str, data: impl AsRef<[u8]>) -> Result<usize, i32> {
        write_raw(&self.p(rel), data.as_ref(), libc::O_WRONLY | libc::O_TRUNC)
    }

    /// Reads in one call: `filter` files answer EOF past offset 0 (§3.3), like the kernel's.
    pub fn r(&self, rel: &str) -> String {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 16];
        let n = std::fs::File::open(self.p(rel)).and_then(|mut f| f.read(&mut buf));
        buf.truncate(n.unwrap_or_else(|e| panic!("read {rel}: {e}")));
        String::from_utf8(buf).unwrap()
    }
}

/// Reads a whole file as a String (panics on error).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Drops the kernel's dentry and inode caches, so it FORGETs every node it can.
pub fn drop_caches() {
    std::fs::write("/proc/sys/vm/drop_caches", "2").expect("drop_caches (needs root)");
}

/// Mounts the real kernel tracefs on a fresh directory for differential checks, or returns why
/// it cannot. Only read top-level state; change state only inside an instance you create.
pub struct KernelTracefs {
    pub dir: TempDir,
}

impl KernelTracefs {
    pub fn mount() -> Result<KernelTracefs, String> {
        let dir = TempDir::new("ktr");
        let c = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
        let r = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                c.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(format!(
                "mount -t tracefs: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(KernelTracefs { dir })
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KernelTracefs {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.dir.path().to_str().unwrap()).unwrap();
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

// ------------------------------------------------------------------------------------------
// Comparing with the running kernel, whatever its build.
//
// The clone's defaults (the embedded catalog, the option and tracer sets) emulate one reference
// kernel: the Linux 6.18 of `kernel-tracefs-spec.md`, built without hist triggers, snapshot or
// synthetic events, with the tracers `blk function nop`. The host kernel may be another build,
// another configuration, or refuse writes the reference allows. So:
// - byte-exact comparisons of the event tree go through the mirror (`--catalog <kernel>`),
//   which copies the running kernel, whatever it is (`mirror`);
// - sets that depend on the configuration are compared with the kernel only when it is
//   configured like the reference (`configured_like_reference`), otherwise with the
//   reference's documented set, the kernel's differences printed;
// - a write the kernel refuses (EPERM here for `buffer_subbuf_size_kb`) is compared only where
//   the kernel allows it, and the clone is held to the documented behaviour regardless.
// ------------------------------------------------------------------------------------------

/// Readers: daemons loading the kernel's formats as their catalog (each read takes the
/// kernel's event_mutex). Writer: a test that switches thousands of kernel events at once,
/// which would hold a mirror's start-up past `Mount::new`'s limit.
pub static KERNEL_EVENTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The clone mirroring the running kernel (`--catalog <kernel tracefs>`).
pub fn mirror(k: &KernelTracefs) -> Mount {
    let _g = KERNEL_EVENTS.read().unwrap_or_else(|e| e.into_inner());
    Mount::new(&["--catalog", k.path().to_str().unwrap()])
}

/// Directories of a trace array whose names, order and modes tests compare with the kernel's:
/// the root, `options/`, `per_cpu/`, one CPU, `events/` and one subsystem.
pub const COMPARED_DIRS: &[&str] = &[
    "",
    "options",
    "per_cpu",
    "per_cpu/cpu0",
    "events",
    "events/sched",
];

/// The tracers the reference kernel (and so the clone) offers.
pub const REFERENCE_TRACERS: &str = "blk function nop\n";

/// Is the running kernel configured like the reference kernel the clone emulates? Judged by
/// what decides the option and file sets: the tracers compiled in, and hist triggers (an
/// event's `hist` file) absent.
pub fn configured_like_reference(k: &KernelTracefs) -> bool {
    let tracers = std::fs::read_to_string(k.path().join("available_tracers")).unwrap_or_default();
    tracers == REFERENCE_TRACERS && !k.path().join("events/sched/sched_switch/hist").exists()
}

/// The running kernel's release series, (major, minor) from `uname -r`.
pub fn kernel_series() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut it = rel.trim().split(|c: char| !c.is_ascii_digit());
    let mut num = || it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    (num(), num())
}

/// The series the embedded catalog was captured from (`catalog/linux-6.18.catalog`).
pub const CATALOG_SERIES: (u32, u32) = (6, 18);

/// A kernel tracefs instance for side-by-side checks (removed on drop). Only state inside it is
/// ever changed.
pub struct KernelInst {
    k: KernelTracefs,
    name: String,
}

impl KernelInst {
    pub fn new(tag: &str) -> KernelInst {
        let k = KernelTracefs::mount().expect("mount the kernel tracefs");
        let name = format!("utracefs-{tag}-{}", std::process::id());
        std::fs::create_dir(k.path().join("instances").join(&name)).unwrap();
        KernelInst { k, name }
    }

    /// A path inside the instance.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.k.path().join("instances").join(&self.name).join(rel)
    }
}

impl Drop for KernelInst {
    /// Never leaves the instance in the host kernel: a reference the kernel still holds for a
    /// moment (EBUSY) is waited out, for up to 5 s.
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = std::fs::remove_dir(self.p("")) {
            if e.kind() == std::io::ErrorKind::NotFound {
                return; // the test removed it itself
            }
            if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() > deadline {
                eprintln!("kernel instance {} left behind: {e}", self.name);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `error_log` without the `[seconds.micros] ` stamp that starts each entry, so the clone's
/// and the kernel's compare byte for byte.
pub fn unstamped(log: &str) -> String {
    log.lines()
        .map(|l| match (l.starts_with('['), l.find("] ")) {
            (true, Some(end)) => &l[end + 2..],
            _ => l,
        })
        .fold(String::new(), |acc, l| acc + l + "\n")
}

/// `outcome` (of [`write_outcome`] on the clone) as seen on a kernel whose `trigger` files read
/// `kernel_text`: without the snapshot buffer (the reference kernel), the available triggers
/// do not list the `snapshot` the clone's embedded catalog offers.
pub fn as_on_kernel(
    mut outcome: (Result<usize, i32>, String, String),
    kernel_text: &str,
) -> (Result<usize, i32>, String, String) {
    if !kernel_text.contains(" snapshot") {
        outcome.1 = outcome.1.replacen(" snapshot stacktrace", " stacktrace", 1);
    }
    outcome
}

/// Writes `data` (O_TRUNC) to `file` under the trace array `root` after clearing its
/// `error_log`; returns the write's result, what `file` then reads, and the new `error_log`
/// entries (unstamped). An empty `trigger` file's command list depends on the kernel's
/// configuration (hist, snapshot), so it reads as `# <commands>` here.
pub fn write_outcome(root: &Path, file: &str, data: &[u8]) -> (Result<usize, i32>, String, String) {
    write_raw(&root.join("error_log"), b"", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    let res = write_raw(&root.join(file), data, libc::O_WRONLY | libc::O_TRUNC);
    let mut text = read(&root.join(file));
    if text.starts_with("# Available triggers:\n#") {
        text = "# Available triggers:\n# <commands>\n".into();
    }
    (res, text, unstamped(&read(&root.join("error_log"))))
}
