//! `instances/`: creation, isolation, removal while files are open, races (spec §11, §14
//! scenarios 55–59, 63; eventfs-history §4 scenarios 7, 8).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::common::{
    Inst, KernelInst, KernelTracefs, Mount, configured_like_reference, read, write_raw,
};

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn mkdir_creates_a_full_instance_with_the_kernels_file_set() {
    let m = Mount::new(&[]);
    let i = m.p("instances/foo");
    std::fs::create_dir(&i).unwrap();
    let meta = std::fs::metadata(&i).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o750,
        "instance dir mode"
    );
    assert_eq!(meta.nlink(), 5, "a fresh instance has nlink 5");
    assert_eq!(
        std::fs::metadata(m.p("instances")).unwrap().nlink(),
        3,
        "instances/ counts it"
    );
    let mut names: Vec<String> = std::fs::read_dir(&i)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want = [
        "available_tracers",
        "buffer_percent",
        "buffer_size_kb",
        "buffer_subbuf_size_kb",
        "buffer_total_size_kb",
        "current_tracer",
        "error_log",
        "events",
        "free_buffer",
        "options",
        "per_cpu",
        "set_event",
        "set_event_notrace_pid",
        "set_event_pid",
        "set_ftrace_filter",
        "set_ftrace_notrace",
        "set_ftrace_notrace_pid",
        "set_ftrace_pid",
        "snapshot",
        "timestamp_mode",
        "trace",
        "trace_clock",
        "trace_marker",
        "trace_marker_raw",
        "trace_options",
        "trace_pipe",
        "tracing_cpumask",
        "tracing_max_latency",
        "tracing_on",
    ];
    assert_eq!(
        names, want,
        "§11: the 27 names of an instance, and the snapshot buffer's two"
    );
    assert_eq!(
        std::fs::read_dir(i.join("options")).unwrap().count(),
        31,
        "instance options/"
    );
    assert_eq!(read(&i.join("available_tracers")), "function nop\n");
    assert_eq!(read(&i.join("tracing_on")), "1\n");
    assert_eq!(read(&i.join("set_event")), "");
    assert_eq!(read(&i.join("events/sched/sched_switch/enable")), "0\n");
    // The same subsystems as the top level.
    let set = |p: std::path::PathBuf| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    assert_eq!(
        set(i.join("events")),
        set(m.p("events")),
        "§11: same events/ tree"
    );
}

/// An instance's `current_tracer` takes only what its `available_tracers` lists (`blk`, a
/// top-level tracer, is EINVAL there), with the kernel instance's errno for each.
#[test]
fn instance_current_tracer_follows_its_available_tracers() {
    let i = Inst::new();
    let k = KernelInst::new("tracer");
    let top = read(&k.p("../../available_tracers"));
    let mut tried = 0;
    for tracer in ["blk", "function", "nop", "bogus"] {
        if tracer != "bogus" && !top.split_whitespace().any(|t| t == tracer) {
            continue; // not built into this kernel
        }
        let clone = i.w("current_tracer", tracer);
        let kernel = write_raw(&k.p("current_tracer"), tracer.as_bytes(), libc::O_WRONLY);
        assert_eq!(clone, kernel, "current_tracer <- {tracer}");
        assert_eq!(i.r("current_tracer"), read(&k.p("current_tracer")));
        tried += 1;
    }
    assert!(
        tried >= 2,
        "the kernel offers none of the clone's tracers: {top}"
    );
    assert_eq!(i.w("current_tracer", "blk"), Err(libc::EINVAL));
}

#[test]
fn instance_file_set_and_modes_match_a_kernel_instance() {
    let k = KernelTracefs::mount().expect("mount the kernel tracefs to compare with");
    let kname = format!("inst_probe_{}", std::process::id());
    let ki = k.path().join("instances").join(&kname);
    std::fs::create_dir(&ki).expect("mkdir kernel instance");
    let m = Mount::new(&[]);
    let ci = m.p("instances/x");
    std::fs::create_dir(&ci).unwrap();
    let modes = |dir: &std::path::Path| -> std::collections::BTreeMap<String, u32> {
        let mut out = std::collections::BTreeMap::new();
        for sub in crate::common::COMPARED_DIRS {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let e = e.unwrap();
                let mode = std::fs::symlink_metadata(e.path()).unwrap().mode();
                out.insert(format!("{sub}/{}", e.file_name().to_string_lossy()), mode);
            }
        }
        out
    };
    let (mut kmodes, mut cmodes) = (modes(&ki), modes(&ci));
    let _ = std::fs::remove_dir(&ki);
    if !kmodes.contains_key("/snapshot") {
        // CONFIG_TRACER_SNAPSHOT: the embedded catalog has it, the reference kernel not.
        let snapshot_files = ["/snapshot", "/snapshot_raw", "/tracing_max_latency"];
        cmodes.retain(|n, _| !snapshot_files.iter().any(|f| n.ends_with(f)));
    }
    if !configured_like_reference(&k) {
        // The file set follows the kernel's configuration: compare the names both have.
        let only_kernel: Vec<String> = (kmodes.keys())
            .filter(|n| !cmodes.contains_key(*n))
            .cloned()
            .collect();
        println!("kernel configured unlike the reference; only in its instance: {only_kernel:?}");
        kmodes.retain(|n, _| cmodes.contains_key(n));
        cmodes.retain(|n, _| kmodes.contains_key(n));
    }
    assert_eq!(
        cmodes, kmodes,
        "names and modes of an instance vs a kernel instance"
    );
}

#[test]
fn instances_are_isolated_from_the_top_level_and_each_other() {
    let m = Mount::new(&[]);
    for n in ["a", "b"] {
        std::fs::create_dir(m.p(&format!("instances/{n}"))).unwrap();
    }
    let en = "events/sched/sched_process_exec/enable";
    assert_eq!(
        write_raw(&m.p(&format!("instances/a/{en}")), b"1", libc::O_WRONLY),
        Ok(1)
    );
    assert_eq!(read(&m.p(&format!("instances/a/{en}"))), "1\n");
    assert_eq!(read(&m.p("instances/a/events/sched/enable")), "X\n");
    assert_eq!(
        read(&m.p(&format!("instances/b/{en}"))),
        "0\n",
        "b untouched"
    );
    assert_eq!(read(&m.p(en)), "0\n", "top level untouched");
    assert_eq!(read(&m.p("set_event")), "");
    assert_eq!(
        read(&m.p("instances/a/set_event")),
        "sched:sched_process_exec\n"
    );
    assert_eq!(
        write_raw(&m.p("instances/b/tracing_on"), b"0", libc::O_WRONLY),
        Ok(1)
    );
    assert_eq!(read(&m.p("tracing_on")), "1\n");
    assert_eq!(read(&m.p("instances/a/tracing_on")), "1\n");
    assert_eq!(read(&m.p("instances/b/tracing_on")), "0\n");
}

#[test]
fn namespace_errors_inside_instances() {
    // Scenario 55.
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    std::fs::create_dir(&i).unwrap();
    assert_eq!(
        errno_of(std::fs::create_dir(&i)),
        Some(libc::EEXIST),
        "mkdir again"
    );
    assert_eq!(
        errno_of(std::fs::create_dir(i.join("y"))),
        Some(libc::EPERM),
        "nested instance"
    );
    assert_eq!(
        errno_of(std::fs::create_dir(i.join("events/y"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno_of(std::fs::File::create(i.join("f"))),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno_of(std::fs::remove_file(i.join("trace"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(i.join("events"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno_of(std::fs::rename(i.join("trace"), i.join("t2"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("a", i.join("l"))),
        Some(libc::EPERM)
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(m.p("instances/nosuch"))),
        Some(libc::ENOENT)
    );
    // Names the VFS allows are accepted (§11).
    for name in ["with space", "dots.and:colons", "ünïcödé", &"n".repeat(215)] {
        let p = m.p("instances").join(name);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {name:?}: {e}"));
        std::fs::remove_dir(&p).unwrap();
    }
}

#[test]
fn rmdir_is_ebusy_while_a_pinning_file_is_open() {
    // Scenario 56: these files hold the trace array.
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    std::fs::create_dir(&i).unwrap();
    for rel in [
        "trace",
        "tracing_on",
        "set_event",
        "per_cpu/cpu0/trace",
        "events/enable",
        "events/header_page",
        "events/sched/enable",
        "events/sched/sched_switch/enable",
        "events/sched/sched_switch/filter",
    ] {
        let f = std::fs::File::open(i.join(rel)).unwrap();
        assert_eq!(
            errno_of(std::fs::remove_dir(&i)),
            Some(libc::EBUSY),
            "rmdir with {rel} open"
        );
        drop(f);
    }
    std::fs::remove_dir(&i).expect("rmdir once everything is closed");
    assert!(!i.exists());
}

/// A file closed before rmdir never makes it fail: with the kernel's tracefs close(2) drops
/// the pin at once, while FUSE sends RELEASE after close returns (the old clone answered
/// EBUSY within the first 40 rounds, 3 runs of 3).
#[test]
fn rmdir_right_after_close_is_never_ebusy() {
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    for round in 0..2000 {
        std::fs::create_dir(&i).unwrap();
        read(&i.join("tracing_on"));
        std::fs::remove_dir(&i).unwrap_or_else(|e| panic!("round {round}: rmdir: {e}"));
    }
}

#[test]
fn files_left_open_fail_with_enodev_after_rmdir_but_id_keeps_its_number() {
    // Scenario 57.
    use std::io::Read;
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    std::fs::create_dir(&i).unwrap();
    let mut format = std::fs::File::open(i.join("events/sched/sched_switch/format")).unwrap();
    let mut trigger = std::fs::File::open(i.join("events/sched/sched_switch/trigger")).unwrap();
    let mut id = std::fs::File::open(i.join("events/sched/sched_switch/id")).unwrap();
    std::fs::remove_dir(&i).expect("format/trigger/id do not pin the instance");
    let mut buf = String::new();
    assert_eq!(
        errno_of(format.read_to_string(&mut buf)),
        Some(libc::ENODEV),
        "format"
    );
    assert_eq!(
        errno_of(trigger.read_to_string(&mut buf)),
        Some(libc::ENODEV),
        "trigger"
    );
    id.read_to_string(&mut buf).expect("id still reads");
    assert_eq!(
        buf,
        read(&m.p("events/sched/sched_switch/id")),
        "id keeps its number"
    );
}

#[test]
fn cwd_inside_a_removed_instance() {
    // Scenario 58, run in a child process so the test's own cwd stays out of the mount.
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    std::fs::create_dir(&i).unwrap();
    // Cache the entries first, so only invalidation can make them disappear.
    read(&i.join("events/sched/sched_switch/enable"));
    // The child waits in the instance's directory until the instance is gone and every
    // invalidation that rmdir queued has reached the kernel.
    let script = format!(
        "cd '{}' && echo ready && read go; ls . >/dev/null 2>&1; echo ls=$?; \
         stat sched_switch >/dev/null 2>&1; echo stat=$?; stat sched_switch 2>&1 | tail -1",
        i.join("events/sched").display(),
    );
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    std::fs::remove_dir(&i).unwrap();
    crate::history::wait_for(&m, "notifications_pending", 0);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"go\n").unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    child.wait().unwrap();
    assert!(
        out.contains("ls=2"),
        "ls . inside a removed instance must fail (EINVAL): {out}"
    );
    assert!(
        out.contains("stat=1"),
        "stat of a cached child must fail: {out}"
    );
    assert!(
        out.contains("No such file or directory"),
        "with ENOENT: {out}"
    );
}

#[test]
fn a_recreated_instance_starts_clean() {
    // Scenario 59.
    let m = Mount::new(&[]);
    let i = m.p("instances/x");
    std::fs::create_dir(&i).unwrap();
    let ev = i.join("events/sched/sched_process_exec/enable");
    assert_eq!(write_raw(&ev, b"1", libc::O_WRONLY), Ok(1));
    assert_eq!(
        write_raw(&i.join("tracing_on"), b"0", libc::O_WRONLY),
        Ok(1)
    );
    std::fs::set_permissions(&ev, std::fs::Permissions::from_mode(0o600)).unwrap();
    let old_ino = std::fs::metadata(&ev).unwrap().ino();
    std::fs::remove_dir(&i).unwrap();
    std::fs::create_dir(&i).unwrap();
    assert_eq!(read(&ev), "0\n");
    assert_eq!(read(&i.join("set_event")), "");
    assert_eq!(read(&i.join("tracing_on")), "1\n");
    let meta = std::fs::metadata(&ev).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o640,
        "overrides end with the instance"
    );
    assert_ne!(meta.ino(), old_ino, "a new instance gets new inode numbers");
}

#[test]
fn ownership_of_instances_does_not_propagate() {
    // Scenario 63; and §11: instance contents follow `instances/` when it was chowned.
    let m = Mount::new(&[]);
    let b = m.p("instances/b");
    std::fs::create_dir(&b).unwrap();
    std::os::unix::fs::chown(&b, Some(1004), Some(1005)).unwrap();
    for rel in ["trace", "events", "options", "per_cpu/cpu0/trace"] {
        let md = std::fs::metadata(b.join(rel)).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (0, 0),
            "{rel} after chown of the instance dir"
        );
    }
    std::os::unix::fs::chown(m.p("instances"), Some(7), Some(8)).unwrap();
    std::fs::create_dir(m.p("instances/c")).unwrap();
    let md = std::fs::metadata(m.p("instances/c/events/sched/sched_switch/enable")).unwrap();
    assert_eq!(
        (md.uid(), md.gid()),
        (7, 8),
        "instance files default to instances/'s owner"
    );
    let top = std::fs::metadata(m.p("events/sched/sched_switch/enable")).unwrap();
    assert_eq!(
        (top.uid(), top.gid()),
        (0, 0),
        "the top level keeps the mount's owner"
    );
}

#[test]
fn mkdir_rmdir_racing_lookups_reads_and_writes() {
    // eventfs-history §4 scenario 7: every call succeeds or gets the kernel's errno; no
    // crash, no hang, no node left once the kernel forgets.
    let m = Mount::new(&[]);
    let base = m.nodes();
    let stop = Arc::new(AtomicBool::new(false));
    let unexpected = Arc::new(AtomicUsize::new(0));
    let ops = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(6));
    let mut threads = Vec::new();
    let root = m.path();
    for t in 0..5 {
        let (stop, unexpected, ops, start, root) = (
            stop.clone(),
            unexpected.clone(),
            ops.clone(),
            start.clone(),
            root.clone(),
        );
        threads.push(std::thread::spawn(move || {
            start.wait();
            let i = root.join("instances/race");
            while !stop.load(Ordering::Relaxed) {
                let r = match t {
                    0 => std::fs::read_dir(i.join("events/sched"))
                        .map(|d| d.count())
                        .map(|_| ()),
                    1 => std::fs::metadata(i.join("events/sched/sched_switch/id")).map(|_| ()),
                    2 => std::fs::read_to_string(i.join("events/sched/sched_switch/format"))
                        .map(|_| ()),
                    3 => std::fs::write(i.join("events/sched/sched_switch/enable"), "1"),
                    // `ls -l instances`: READDIRPLUS of the directory mkdir/rmdir change.
                    _ => std::fs::read_dir(root.join("instances")).and_then(|mut d| {
                        d.try_for_each(|e| e.and_then(|e| e.metadata()).map(|_| ()))
                    }),
                };
                ops.fetch_add(1, Ordering::Relaxed);
                // ENODEV: a file opened just before the rmdir; EINVAL: readdir of a directory
                // opened just before it. Both are the kernel's answers too.
                if let Err(e) = r
                    && !matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::ENODEV | libc::EINVAL)
                    )
                {
                    eprintln!("unexpected: {e}");
                    unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    start.wait();
    let i = m.p("instances/race");
    // At least 3 s, and on a loaded machine until the race has really run (up to 30 s).
    let start = Instant::now();
    let mut cycles = 0;
    let ran = |cycles: i32| cycles > 10 && ops.load(Ordering::Relaxed) > 100;
    while start.elapsed() < Duration::from_secs(3)
        || (!ran(cycles) && start.elapsed() < Duration::from_secs(30))
    {
        std::fs::create_dir(&i).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        // EBUSY while a thread holds `enable` open is the kernel's answer: retry.
        loop {
            match std::fs::remove_dir(&i) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::yield_now(),
                Err(e) => panic!("rmdir: {e}"),
            }
        }
        cycles += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        unexpected.load(Ordering::Relaxed),
        0,
        "unexpected errors during the race"
    );
    assert!(
        cycles > 10 && ops.load(Ordering::Relaxed) > 100,
        "the race ran ({cycles} cycles)"
    );
    assert!(!i.exists(), "no instance left");
    m.assert_nodes_return_to(base);
}

#[test]
fn a_non_utf8_instance_name_is_taken_as_the_kernel_takes_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let k = KernelTracefs::mount().expect("mount the kernel tracefs");
    let m = Mount::new(&[]);
    let name = format!("raw_\u{1}_{}", std::process::id()).into_bytes();
    let name = [name.as_slice(), b"_\xff\xfe"].concat();
    let name = OsStr::from_bytes(&name);
    for root in [k.path().join("instances"), m.p("instances")] {
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let listed: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let shown = listed.iter().any(|n| n.as_os_str() == name);
        let works = std::fs::read_to_string(dir.join("tracing_on"));
        // The same name again is EEXIST; a name differing in one byte is another instance.
        let again = errno_of(std::fs::create_dir(&dir));
        let rmdir = std::fs::remove_dir(&dir);
        assert!(shown, "{}: {listed:?}", root.display());
        assert_eq!(works.unwrap(), "1\n", "{}", dir.display());
        assert_eq!(again, Some(libc::EEXIST));
        rmdir.unwrap();
        assert!(!dir.exists());
    }
}
