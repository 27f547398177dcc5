//! Reliability: the daemon survives the loss of its clients (a `trace_pipe` reader killed
//! mid-read, directories held open across the removal of what they name), shuts down cleanly
//! with requests in flight, leaves a recoverable mount when it is killed, and takes bad input
//! through the mount (oversized, non-UTF-8, NUL-containing and split writes to every writable
//! file kind) without crashing or corrupting state. Where it can, each case is compared with the
//! same operation inside a kernel tracefs instance this test creates (never the kernel's top
//! level).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Inst, KernelInst, Mount, mount_type, read, write_raw};
use crate::history::{wait_child, wait_for};

const BOUND: Duration = Duration::from_secs(20);

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn spawn_cat(p: &Path) -> Child {
    Command::new("cat")
        .arg(p)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

// ------------------------------------------------------------------------------------------
// Client loss
// ------------------------------------------------------------------------------------------

#[test]
fn trace_pipe_readers_killed_mid_read_leave_the_daemon_serving() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    std::fs::metadata(m.p("events/sched/sched_switch/format")).unwrap();
    let base = m.stats();
    for round in 0..3 {
        let mut cats: Vec<Child> = [
            "trace_pipe",
            "instances/i/trace_pipe",
            "per_cpu/cpu0/trace_pipe",
        ]
        .iter()
        .map(|p| spawn_cat(&m.p(p)))
        .collect();
        wait_for(&m, "blocked_readers", 3);
        for c in &mut cats {
            c.kill().unwrap(); // SIGKILL mid-read
        }
        for c in &mut cats {
            wait_child(c, BOUND).expect("a SIGKILLed trace_pipe reader did not die");
        }
        wait_for(&m, "blocked_readers", 0);
        wait_for(&m, "handles", base["handles"]);
        // Still serving, in every trace array.
        assert_eq!(read(&m.p("instances/i/tracing_on")), "1\n", "round {round}");
        assert!(read(&m.p("events/sched/sched_switch/format")).starts_with("name: sched_switch"));
    }
    // (Other tests' cache drops send FORGETs to every mount: wait for those to be handled.)
    wait_for(&m, "in_flight", 0);
    let s = m.stats();
    assert_eq!(s["errors_eio"] + s["errors_estale"], 0);
    std::fs::remove_dir(m.p("instances/i")).expect("no reader pins the instance any more");
    m.assert_nodes_return_to(base["nodes"]);
}

/// What a process sees through a directory it holds (an fd and a cwd) after that directory was
/// removed: (getdents, fstat, openat child, cwd readdir, cwd stat child), each "ok" or an errno.
fn probe_held(fd: i32, cwd_of: u32, child: &str) -> [String; 5] {
    let r = |ok: bool| {
        if ok {
            "ok".to_string()
        } else {
            format!("errno {}", last_errno())
        }
    };
    // getdents64 to the end: "<n> bytes, end" or "<n> bytes, errno <e>".
    let mut buf = [0u64; 512];
    let mut bytes = 0;
    let gd = loop {
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), 4096) };
        match n {
            0 => break format!("{bytes} bytes, end"),
            n if n < 0 => break format!("{bytes} bytes, {}", r(false)),
            n => bytes += n,
        }
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let fs = r(unsafe { libc::fstat(fd, &mut st) } == 0);
    let c = CString::new(child).unwrap();
    let o = unsafe { libc::openat(fd, c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let oa = r(o >= 0);
    if o >= 0 {
        unsafe { libc::close(o) };
    }
    let cwd = PathBuf::from(format!("/proc/{cwd_of}/cwd"));
    let e = |x: std::io::Result<()>| match x {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
    };
    let cr = e(std::fs::read_dir(&cwd).and_then(|mut d| d.try_for_each(|x| x.map(drop))));
    let cs = e(std::fs::metadata(cwd.join(child)).map(drop));
    [gd, fs, oa, cr, cs]
}

/// Holds `dir` open (fd) and as the cwd of a `sleep` child; runs `remove`, then probes.
fn hold_and_remove(dir: &Path, child: &str, remove: impl FnOnce()) -> [String; 5] {
    // Cache the entries so only invalidation can hide them.
    std::fs::read_dir(dir).unwrap().for_each(drop);
    std::fs::metadata(dir.join(child)).unwrap();
    let fd = unsafe {
        libc::open(
            cstr(dir).as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(fd >= 0, "open {}", dir.display());
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .current_dir(dir)
        .spawn()
        .unwrap();
    remove();
    let out = probe_held(fd, sleeper.id(), child);
    unsafe { libc::close(fd) };
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    out
}

#[test]
fn held_open_dirs_across_removal_of_events_and_instances() {
    let m = Mount::new(&[]);
    let append = |l: &str| {
        write_raw(
            &m.p("dynamic_events"),
            l.as_bytes(),
            libc::O_WRONLY | libc::O_APPEND,
        )
        .unwrap()
    };
    // An event directory whose event is deleted (the subsystem stays: `keep` is in it).
    append("s:keep u64 a");
    append("s:gone u64 a");
    let ev = hold_and_remove(&m.p("events/synthetic/gone"), "enable", || {
        append("-:synthetic/gone");
    });
    // A subsystem directory that goes with its last event.
    let sys = hold_and_remove(&m.p("events/synthetic"), "keep", || {
        append("-:synthetic/keep");
    });
    // An instance directory, and an event directory inside it, across rmdir of the instance.
    std::fs::create_dir(m.p("instances/x")).unwrap();
    let inst = hold_and_remove(&m.p("instances/x"), "trace", || {
        std::fs::remove_dir(m.p("instances/x")).unwrap();
    });
    std::fs::create_dir(m.p("instances/y")).unwrap();
    let inst_ev = hold_and_remove(
        &m.p("instances/y/events/sched/sched_switch"),
        "enable",
        || {
            std::fs::remove_dir(m.p("instances/y")).unwrap();
        },
    );
    let ok = "ok".to_string();
    let enoent = format!("errno {}", libc::ENOENT);
    for (what, got) in [("event", &ev), ("subsystem", &sys)] {
        // No kernel reference (dynamic events are global there): the child is gone, the dir
        // itself still answers fstat, nothing crashes.
        assert_eq!(got[1], ok, "{what}: fstat of a held dir");
        assert_eq!(got[2], enoent, "{what}: openat of a child after removal");
        assert_eq!(got[4], enoent, "{what}: stat of a child through the cwd");
        assert!(got[0].contains(" bytes, "), "{what}: {got:?}");
    }
    assert_eq!(inst_ev[4], enoent, "§14 scenario 58");
    // Against a kernel instance.
    let k = KernelInst::new("held");
    let kroot = k.p("").parent().unwrap().to_path_buf();
    let kinst = hold_and_remove(&k.p(""), "trace", || std::fs::remove_dir(k.p("")).unwrap());
    std::fs::create_dir(k.p("")).unwrap();
    let kinst_ev = hold_and_remove(&k.p("events/sched/sched_switch"), "enable", || {
        std::fs::remove_dir(k.p("")).unwrap()
    });
    drop(kroot);
    assert_eq!(
        inst, kinst,
        "instance dir held across rmdir: clone vs kernel"
    );
    assert_eq!(
        inst_ev[1..],
        kinst_ev[1..],
        "instance event dir held across rmdir: clone vs kernel"
    );
    // The daemon is healthy afterwards.
    assert!(m.p("events/sched/sched_switch/format").exists());
    assert_eq!(m.stats()["errors_eio"], 0);
}

/// The kernel lets a directory fd opened inside an instance before its rmdir read `.` and `..`
/// once (48 bytes) and then answers EINVAL; the clone answers EINVAL at once.
#[test]
fn held_event_dir_fd_reads_dot_entries_then_einval_after_instance_rmdir() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/y")).unwrap();
    let got = hold_and_remove(
        &m.p("instances/y/events/sched/sched_switch"),
        "enable",
        || {
            std::fs::remove_dir(m.p("instances/y")).unwrap();
        },
    );
    assert_eq!(
        got[0],
        format!("48 bytes, errno {}", libc::EINVAL),
        "as on Linux 6.18"
    );
}

// ------------------------------------------------------------------------------------------
// Shutdown and death
// ------------------------------------------------------------------------------------------

#[test]
fn sigterm_with_requests_in_flight_exits_0_and_frees_blocked_callers() {
    let mut m = Mount::new(&[]);
    let path = m.path();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..8usize {
        let (stop, ops, root) = (stop.clone(), ops.clone(), path.clone());
        threads.push(std::thread::spawn(move || {
            let p = root.join(
                [
                    "events/sched/sched_switch/format",
                    "events/irq/irq_handler_entry/id",
                    "events/sched",
                    "available_events",
                ][t % 4],
            );
            while !stop.load(Ordering::Relaxed) {
                let r = if t % 2 == 0 {
                    std::fs::read(&p).map(drop)
                } else {
                    std::fs::metadata(&p).map(drop)
                };
                if r.is_err() {
                    return; // the mount went away under us: that is the point
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut cat = spawn_cat(&m.p("trace_pipe"));
    wait_for(&m, "blocked_readers", 1);
    while ops.load(Ordering::Relaxed) < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = m.terminate(); // SIGTERM; fails if the daemon is not gone within 10 s
    assert!(st.success(), "exit status after SIGTERM: {st}: {}", m.log());
    assert_eq!(mount_type(&path), None, "mount left behind");
    let cst =
        wait_child(&mut cat, BOUND).expect("the blocked trace_pipe reader hung after SIGTERM");
    assert!(
        !cst.success(),
        "cat trace_pipe returned an error, not data: {cst}"
    );
    let deadline = Instant::now() + BOUND;
    while threads.iter().any(|t| !t.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "callers still hang after the daemon exited"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

/// errno of `r`, or 0 if it succeeded.
fn errno_of<T>(r: std::io::Result<T>) -> i32 {
    r.err().map_or(0, |e| e.raw_os_error().unwrap_or(-1))
}

/// What a user of the mount sees after the daemon is SIGKILLed (README "If the daemon dies"):
/// the mount stays in place and every call on it fails at once with ENOTCONN — a reader blocked
/// in `trace_pipe` (ECONNABORTED, the read in flight), an fd left open, new lookups, listings,
/// creates and writes — so nothing
/// hangs, nothing reads as a plausible ENOENT and nothing written lands in the directory below.
/// The next `utracefs` on that mount point replaces the dead mount by itself and says so.
#[test]
fn sigkill_of_the_daemon_gives_enotconn_and_the_mount_is_recoverable() {
    let mut m = Mount::new(&[]);
    let path = m.path();
    // Not a `format`: the kernel reads that from a backing file, which outlives the daemon.
    let held = std::fs::File::open(m.p("events/sched/sched_switch/enable")).unwrap();
    let mut cat = spawn_cat(&m.p("trace_pipe"));
    wait_for(&m, "blocked_readers", 1);
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let cst = wait_child(&mut cat, BOUND).expect("blocked reader hung after the daemon died");
    assert!(!cst.success());
    let mut err = String::new();
    use std::io::Read;
    cat.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    // The read in flight ends with ECONNABORTED, as every request the kernel had sent does.
    assert!(
        err.contains("Software caused connection abort")
            || err.contains("Transport endpoint is not connected"),
        "cat: {err}"
    );
    let mut buf = [0u8; 16];
    assert_eq!(errno_of((&held).read(&mut buf)), libc::ENOTCONN, "held fd");
    // Whatever the dead daemon left (a helper process included) has finished with the mount.
    let pids = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + BOUND;
    while pids().into_iter().any(|p| {
        std::fs::read_to_string(format!("/proc/{p}/cmdline"))
            .is_ok_and(|c| c.split('\0').any(|a| a == path.to_str().unwrap()))
    }) {
        assert!(Instant::now() < deadline, "a utracefs process lingers");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(mount_type(&path).as_deref(), Some("fuse.tracefs"));
    let marker = m.p("trace_marker");
    let calls = [
        ("stat mount point", errno_of(std::fs::metadata(&path))),
        ("readdir mount point", errno_of(std::fs::read_dir(&path))),
        (
            "stat events/sched",
            errno_of(std::fs::metadata(m.p("events/sched"))),
        ),
        (
            "read tracing_on",
            errno_of(std::fs::read(m.p("tracing_on"))),
        ),
        (
            "write trace_marker",
            write_raw(
                &marker,
                b"hi\n",
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            )
            .err()
            .unwrap_or(0),
        ),
        ("create a file", errno_of(std::fs::write(m.p("stray"), "x"))),
        ("mkdir", errno_of(std::fs::create_dir(m.p("instances/x")))),
    ];
    for (what, e) in calls {
        assert_eq!(e, libc::ENOTCONN, "{what} on a dead mount");
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("echo hi > {}", marker.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Transport endpoint is not connected"),
        "echo > trace_marker: {out:?}"
    );

    // Recovery: a new daemon on the same mount point, with an fd of the dead one still open.
    m.restart(&[]);
    assert!(
        m.log().contains("recovered") && m.log().contains("dead"),
        "the new daemon did not say it recovered a dead mount: {}",
        m.log()
    );
    assert!(read(&m.p("events/sched/sched_switch/format")).starts_with("name: sched_switch"));
    assert_eq!(errno_of((&held).read(&mut buf)), libc::ENOTCONN, "held fd");
    drop(held);
    let st = m.terminate();
    assert!(st.success(), "{st}: {}", m.log());
    assert_eq!(mount_type(&path), None, "mount left behind after SIGTERM");
    let left: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "writes landed below the mount: {left:?}");
}

// ------------------------------------------------------------------------------------------
// Bad input through the mount
// ------------------------------------------------------------------------------------------

/// Writable files of an instance (relative path, a valid line used for split writes).
const WRITABLE: &[(&str, &str)] = &[
    // First: on the kernel, events enabled below fire for real.
    ("trace_marker", "hello marker\n"),
    ("events/sched/sched_switch/enable", "1\n"),
    ("events/sched/sched_switch/filter", "prev_pid == 1\n"),
    ("events/sched/sched_switch/trigger", "stacktrace\n"),
    ("events/sched/enable", "1\n"),
    ("events/sched/filter", "prev_pid == 1\n"),
    ("set_event", "sched:sched_switch\n"),
    ("set_event_pid", "123\n"),
    ("buffer_size_kb", "2048\n"),
    ("tracing_on", "1\n"),
    ("trace_options", "nooverwrite\n"),
    ("options/overwrite", "1\n"),
    ("current_tracer", "nop\n"),
    ("trace_clock", "global\n"),
    ("tracing_cpumask", "1\n"),
    ("error_log", "x\n"),
];

/// State files whose content must not change when a write is rejected.
const STATE: &[&str] = &[
    "events/sched/sched_switch/enable",
    "events/sched/sched_switch/filter",
    "events/sched/sched_switch/trigger",
    "events/sched/enable",
    "set_event",
    "set_event_pid",
    "buffer_size_kb",
    "tracing_on",
    "trace_options",
    "current_tracer",
    "trace_clock",
    "tracing_cpumask",
];

fn snapshot(root: &Path) -> BTreeMap<&'static str, String> {
    STATE
        .iter()
        .map(|f| {
            (
                *f,
                String::from_utf8_lossy(
                    &std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
                )
                .into_owned(),
            )
        })
        .collect()
}

fn bad_payloads(valid: &str) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let v = valid.as_bytes();
    // Up to three non-empty pieces (an empty write(2) never reaches a FUSE daemon).
    let split: Vec<Vec<u8>> = v.chunks(v.len().div_ceil(3)).map(<[u8]>::to_vec).collect();
    vec![
        ("64KiB of 1", vec![b"1".repeat(64 << 10)]),
        ("1MiB of x", vec![b"x".repeat(1 << 20)]),
        (
            "valid + 64KiB of spaces",
            vec![[v, &b" ".repeat(64 << 10)].concat()],
        ),
        ("non-UTF-8", vec![b"\xff\xfe\x80\n".to_vec()]),
        (
            "valid, non-UTF-8 tail",
            vec![[v.strip_suffix(b"\n").unwrap_or(v), b"\xc3\x28\n"].concat()],
        ),
        ("NUL only", vec![b"\0".to_vec()]),
        (
            "valid, NUL, garbage",
            vec![[v.strip_suffix(b"\n").unwrap_or(v), b"\0garbage\n"].concat()],
        ),
        ("split in three", split),
    ]
}

/// Runs every bad payload against every writable file under `root` (an instance), on one fd
/// per payload; returns (file, payload) → results of its write(2) calls. Checks on the way
/// that rejected writes leave every state file as it was.
fn bad_writes(root: &Path, alive: &dyn Fn()) -> BTreeMap<(String, &'static str), String> {
    let mut out = BTreeMap::new();
    for (f, valid) in WRITABLE {
        for (what, chunks) in bad_payloads(valid) {
            let before = snapshot(root);
            let fd = unsafe {
                libc::open(
                    cstr(&root.join(f)).as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                )
            };
            assert!(fd >= 0, "open {f}: errno {}", last_errno());
            let res: Vec<String> = chunks
                .iter()
                .map(|c| {
                    let n = unsafe { libc::write(fd, c.as_ptr().cast(), c.len()) };
                    if n < 0 {
                        format!("E{}", errno_name(last_errno()))
                    } else if n as usize == c.len() {
                        "ok".to_string()
                    } else {
                        format!("short {n}")
                    }
                })
                .collect();
            assert_eq!(unsafe { libc::close(fd) }, 0, "close {f}");
            alive();
            if res.iter().all(|r| r.starts_with('E')) {
                let mut after = snapshot(root);
                if f.ends_with("filter") {
                    // A rejected filter shows its error text in the event's filter file
                    // (§14 scenario 26), on the kernel too.
                    let key = "events/sched/sched_switch/filter";
                    after.insert(key, before[key].clone());
                }
                assert_eq!(after, before, "{f} {what}: a rejected write changed state");
            } else {
                snapshot(root); // readable and valid afterwards
            }
            out.insert((f.to_string(), what), res.join(","));
        }
    }
    out
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EINVAL => "INVAL".into(),
        libc::ENOMEM => "NOMEM".into(),
        libc::EBUSY => "BUSY".into(),
        libc::EEXIST => "EXIST".into(),
        libc::ENOENT => "NOENT".into(),
        libc::EPERM => "PERM".into(),
        libc::ERANGE => "RANGE".into(),
        libc::EFAULT => "FAULT".into(),
        libc::EBADF => "BADF".into(),
        libc::ENODEV => "NODEV".into(),
        libc::ENOSPC => "NOSPC".into(),
        libc::E2BIG => "2BIG".into(),
        libc::ESRCH => "SRCH".into(),
        libc::EIO => "IO".into(),
        e => e.to_string(),
    }
}

/// (file, payload) pairs where the clone's errno differs from the kernel's today (listed in the
/// final report of the suite's author; everything else must match).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn bad_writes_to_every_writable_file_never_crash_or_corrupt() {
    let i = Inst::new();
    let m = &i.m;
    // Alive: the process is running (not a zombie) and answers on its stats socket. (Its
    // `in_flight` need not be 0: other tests' cache drops send FORGETs to every mount.)
    let alive = || {
        let st = std::fs::read_to_string(format!("/proc/{}/stat", m.pid())).unwrap();
        assert!(!st.contains(") Z "), "the daemon died");
        m.stats();
    };
    let clone = bad_writes(&i.p(""), &alive);
    // Top-level-only files and instance names: the clone only (on a kernel they are global).
    for (f, valid) in [
        ("dynamic_events", "s:okev u64 a\n"),
        ("synthetic_events", "okev2 u64 a\n"),
    ] {
        for (what, chunks) in bad_payloads(valid) {
            let before = read(&m.p(f));
            let fd = unsafe {
                libc::open(
                    cstr(&m.p(f)).as_ptr(),
                    libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC,
                )
            };
            let rejected = chunks
                .iter()
                .all(|c| unsafe { libc::write(fd, c.as_ptr().cast(), c.len()) } < 0);
            unsafe { libc::close(fd) };
            // A write of several lines runs the lines before a bad one, as the kernel does
            // (trace_parse_run_command): only payloads with no valid line must change nothing.
            if rejected && !what.starts_with("valid") {
                assert_eq!(read(&m.p(f)), before, "{f} {what}");
            }
            // Whatever was accepted is fully reachable.
            for l in read(&m.p("dynamic_events")).lines() {
                let name = l.split('\t').next().unwrap().split_once(':').unwrap().1;
                assert!(
                    m.p(&format!("events/{name}/format")).exists(),
                    "{f} {what}: {l}"
                );
            }
        }
    }
    for name in [
        b"\xff\xfe".to_vec(),
        b"a\nb".to_vec(),
        b" ".to_vec(),
        vec![b'n'; 255],
    ] {
        let p = m.p("instances").join(std::ffi::OsStr::from_bytes(&name));
        if std::fs::create_dir(&p).is_ok() {
            assert!(
                p.join("events/sched/sched_switch/format").exists(),
                "{name:?}"
            );
            std::fs::remove_dir(&p).unwrap();
        }
    }
    let s = m.stats();
    assert_eq!(s["errors_eio"] + s["errors_estale"], 0, "no EIO/ESTALE");
    // Compare with a kernel instance.
    let k = KernelInst::new("badw");
    let kernel = bad_writes(&k.p(""), &|| {});
    let mut diffs = Vec::new();
    for (key, c) in &clone {
        let kv = &kernel[key];
        if c != kv {
            let known = KNOWN_DIFFERENCES.contains(&(key.0.as_str(), key.1));
            eprintln!(
                "{}difference: {} / {}: clone {c}, kernel {kv}",
                if known { "known " } else { "" },
                key.0,
                key.1
            );
            if !known {
                diffs.push(format!("{} / {}: clone {c}, kernel {kv}", key.0, key.1));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "clone and kernel differ on bad writes:\n{}",
        diffs.join("\n")
    );
}
