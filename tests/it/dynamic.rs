//! Dynamic events (spec §12; §14 scenarios 67–70) and the lookup design under run-time change:
//! a created event is visible the moment the write returns, a deleted one is gone, and
//! lookups of stable events never fail meanwhile (eventfs-history §4 scenarios 2, 3, 4, 22, 25).

use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::common::{Mount, drop_caches, read, write_raw};

fn append(m: &Mount, file: &str, line: &str) -> Result<usize, i32> {
    write_raw(&m.p(file), line.as_bytes(), libc::O_WRONLY | libc::O_APPEND)
}

fn errno_of<T>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn synthetic_event_lifecycle() {
    // Scenarios 67, 68, 69.
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let line = "s:myev u64 lat; pid_t pid\n";
    assert_eq!(append(&m, "dynamic_events", line), Ok(line.len()));
    assert_eq!(
        read(&m.p("dynamic_events")),
        "s:synthetic/myev\tu64 lat; pid_t pid\n"
    );
    assert_eq!(read(&m.p("synthetic_events")), "myev\tu64 lat; pid_t pid\n");
    for root in ["", "instances/i/"] {
        let mut names: Vec<String> =
            std::fs::read_dir(m.p(&format!("{root}events/synthetic/myev")))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "enable", "filter", "format", "hist", "id", "inject", "trigger"
            ],
            "in {root:?}"
        );
    }
    let format = read(&m.p("events/synthetic/myev/format"));
    let id = read(&m.p("events/synthetic/myev/id"));
    assert!(
        format.starts_with(&format!("name: myev\nID: {}format:\n", id)),
        "{format}"
    );
    assert!(
        format.contains("\tfield:u64 lat;\toffset:8;\tsize:8;\tsigned:0;\n"),
        "{format}"
    );
    assert!(
        format.contains("\tfield:pid_t pid;\toffset:16;\tsize:4;\tsigned:1;\n"),
        "{format}"
    );
    assert!(
        format.ends_with("print fmt: \"lat=%llu, pid=%d\", REC->lat, REC->pid\n"),
        "{format}"
    );
    assert!(
        read(&m.p("available_events")).starts_with("synthetic:myev\n"),
        "new events come first"
    );
    assert_eq!(
        append(&m, "dynamic_events", line),
        Err(libc::EEXIST),
        "scenario 68"
    );
    let en = m.p("events/synthetic/myev/enable");
    assert_eq!(write_raw(&en, b"1", libc::O_WRONLY), Ok(1));
    assert_eq!(
        append(&m, "dynamic_events", "-:synthetic/myev"),
        Err(libc::EBUSY),
        "scenario 69"
    );
    assert_eq!(write_raw(&en, b"0", libc::O_WRONLY), Ok(1));
    assert_eq!(append(&m, "dynamic_events", "-:synthetic/myev"), Ok(16));
    for root in ["", "instances/i/"] {
        let p = m.p(&format!("{root}events/synthetic"));
        assert_eq!(
            errno_of(std::fs::metadata(&p)),
            Some(libc::ENOENT),
            "{root:?}: gone"
        );
    }
    assert_eq!(read(&m.p("dynamic_events")), "");
    assert_eq!(
        append(&m, "dynamic_events", "-:synthetic/myev"),
        Err(libc::ENOENT)
    );
}

#[test]
fn user_events_and_errors() {
    // Scenario 70 (as root), the synthetic_events file, error_log entries, O_TRUNC.
    let m = Mount::new(&[]);
    assert_eq!(
        append(&m, "dynamic_events", "u:myue u32 a; char[16] name"),
        Ok(27)
    );
    assert!(m.p("events/user_events/myue/format").exists());
    assert_eq!(
        append(&m, "dynamic_events", "u:myue u32 a; char[16] name"),
        Ok(27),
        "same fields"
    );
    assert_eq!(
        append(&m, "dynamic_events", "u:myue u64 b"),
        Err(libc::EADDRINUSE)
    );
    assert_eq!(
        append(&m, "synthetic_events", "ev2 u64 x; char[] s"),
        Ok(19)
    );
    assert_eq!(read(&m.p("synthetic_events")), "ev2\tu64 x; char[] s\n");
    assert_eq!(
        append(&m, "synthetic_events", "bad-name u64 x"),
        Err(libc::EINVAL)
    );
    assert_eq!(
        append(&m, "synthetic_events", "ev3 float x"),
        Err(libc::EINVAL)
    );
    let log = read(&m.p("error_log"));
    assert!(
        log.contains("synthetic_events: error: Illegal name\n  Command: bad-name u64 x\n"),
        "{log}"
    );
    assert!(
        log.contains("synthetic_events: error: Invalid type\n"),
        "{log}"
    );
    assert_eq!(
        append(&m, "dynamic_events", "p:myprobe do_sys_open"),
        Err(libc::EINVAL),
        "no kprobes"
    );
    let en = m.p("events/synthetic/ev2/enable");
    assert_eq!(write_raw(&en, b"1", libc::O_WRONLY), Ok(1));
    let trunc = libc::O_WRONLY | libc::O_TRUNC;
    assert_eq!(
        write_raw(&m.p("dynamic_events"), b"", trunc),
        Err(libc::EBUSY),
        "busy: nothing deleted"
    );
    assert!(m.p("events/user_events/myue").exists());
    assert_eq!(write_raw(&en, b"0", libc::O_WRONLY), Ok(1));
    assert_eq!(write_raw(&m.p("synthetic_events"), b"", trunc), Ok(0));
    assert!(
        !m.p("events/synthetic").exists(),
        "O_TRUNC of synthetic_events deletes synthetic ones"
    );
    assert!(
        m.p("events/user_events/myue").exists(),
        "but not user events"
    );
    assert_eq!(write_raw(&m.p("dynamic_events"), b"", trunc), Ok(0));
    assert_eq!(read(&m.p("dynamic_events")), "");
}

#[test]
fn a_deleted_event_is_gone_at_once_and_a_new_one_visible_at_once() {
    // eventfs-history §4 scenarios 2, 22, 25: no stale hit from the kernel's cache, no
    // negative cached, old fds never act on a re-created event of the same name.
    let m = Mount::new(&[]);
    let dir = m.p("events/synthetic/p1");
    assert_eq!(
        errno_of(std::fs::metadata(&dir)),
        Some(libc::ENOENT),
        "looked up too early"
    );
    assert_eq!(append(&m, "dynamic_events", "s:p1 u64 a"), Ok(10));
    let first =
        std::fs::metadata(dir.join("enable")).expect("visible the moment the write returned");
    let mut fd_a = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("enable"))
        .unwrap();
    // An open file does not keep the event (scenario 4); the delete must also reach the
    // kernel's cache before the write returns: `first` was cached with a long TTL.
    assert_eq!(append(&m, "dynamic_events", "-:synthetic/p1"), Ok(14));
    assert_eq!(
        errno_of(std::fs::metadata(dir.join("enable"))),
        Some(libc::ENOENT),
        "stale hit"
    );
    assert_eq!(
        errno_of(std::fs::metadata(&dir)),
        Some(libc::ENOENT),
        "stale hit"
    );
    let listed: Vec<String> = std::fs::read_dir(m.p("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !listed.iter().any(|n| n == "synthetic"),
        "readdir still lists the subsystem"
    );
    use std::io::Write;
    assert_eq!(
        errno_of(fd_a.write(b"1")),
        Some(libc::ENODEV),
        "write to a deleted event"
    );
    assert_eq!(append(&m, "dynamic_events", "s:p1 u64 a"), Ok(10));
    let second = std::fs::metadata(dir.join("enable")).expect("re-created, visible at once");
    assert_ne!(
        second.ino(),
        first.ino(),
        "a new event gets new inode numbers"
    );
    assert_eq!(
        errno_of(fd_a.write(b"1")),
        Some(libc::ENODEV),
        "the old fd never acts on the new p1"
    );
    assert_eq!(read(&dir.join("enable")), "0\n");
}

/// The kernel may cache listings (the daemon opens directories with FOPEN_CACHE_DIR): a
/// listing read right before an event is created or deleted must show the change the moment
/// the write returns, at the top level and in an instance made before, through getdents and
/// through `ls`.
#[test]
fn cached_listings_show_created_and_deleted_events_at_once() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let listing = |rel: &str| -> Vec<String> {
        let by_getdents: Vec<String> = std::fs::read_dir(m.p(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let out = std::process::Command::new("ls")
            .args(["-1", "-U"])
            .arg(m.p(rel))
            .output()
            .unwrap();
        let by_ls: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(by_getdents, by_ls, "{rel}: getdents and ls disagree");
        by_getdents
    };
    let has = |rel: &str, name: &str| listing(rel).iter().any(|n| n == name);
    for root in ["", "instances/i/"] {
        assert!(!has(&format!("{root}events"), "synthetic"), "{root}");
    }
    assert_eq!(append(&m, "dynamic_events", "s:ev_a u64 a"), Ok(12));
    for root in ["", "instances/i/"] {
        assert!(
            has(&format!("{root}events"), "synthetic"),
            "{root}: new subsystem"
        );
        assert!(has(&format!("{root}events/synthetic"), "ev_a"), "{root}");
    }
    assert_eq!(append(&m, "dynamic_events", "s:ev_b u64 b"), Ok(12));
    for root in ["", "instances/i/"] {
        assert!(
            has(&format!("{root}events/synthetic"), "ev_b"),
            "{root}: created"
        );
    }
    assert_eq!(append(&m, "dynamic_events", "-:synthetic/ev_a"), Ok(16));
    for root in ["", "instances/i/"] {
        let l = listing(&format!("{root}events/synthetic"));
        assert!(
            !l.iter().any(|n| n == "ev_a"),
            "{root}: deleted, still listed: {l:?}"
        );
        assert!(l.iter().any(|n| n == "ev_b"), "{root}: {l:?}");
    }
    assert_eq!(append(&m, "dynamic_events", "-:synthetic/ev_b"), Ok(16));
    for root in ["", "instances/i/"] {
        assert!(
            !has(&format!("{root}events"), "synthetic"),
            "{root}: subsystem gone"
        );
    }
}

#[test]
fn churn_of_dynamic_events_never_disturbs_lookups() {
    // Issue 3's proof: 8 threads look up and read stable events while others create and
    // delete dynamic events and the kernel's caches are dropped. Zero spurious ENOENT for
    // stable events, zero stale hits, zero EIO/ESTALE, nodes back to baseline.
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let base = m.nodes();
    let stop = Arc::new(AtomicBool::new(false));
    let anomalies = Arc::new(AtomicUsize::new(0));
    let ops = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8 + 2 + 1 + 1));
    let root = m.path();
    let stable: Arc<Vec<std::path::PathBuf>> = Arc::new(
        [
            "sched/sched_switch",
            "irq/irq_handler_entry",
            "timer/timer_start",
            "signal/signal_generate",
        ]
        .iter()
        .flat_map(|ev| {
            ["", "instances/i/"].into_iter().flat_map(move |r| {
                ["format", "id", "enable", "filter", "trigger"]
                    .into_iter()
                    .map(move |f| format!("{r}events/{ev}/{f}"))
            })
        })
        .map(|p| root.join(p))
        .collect(),
    );
    let mut threads = Vec::new();
    for t in 0..8 {
        let (stop, anomalies, ops, start, stable) = (
            stop.clone(),
            anomalies.clone(),
            ops.clone(),
            start.clone(),
            stable.clone(),
        );
        threads.push(std::thread::spawn(move || {
            start.wait();
            let mut k = t;
            while !stop.load(Ordering::Relaxed) {
                let p = &stable[k % stable.len()];
                k += 7;
                let r = if k % 3 == 0 {
                    std::fs::read(p).map(|_| ())
                } else {
                    std::fs::metadata(p).map(|_| ())
                };
                ops.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = r {
                    eprintln!("stable {}: {e}", p.display());
                    anomalies.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for w in 0..2 {
        let (stop, anomalies, ops, start, root) = (
            stop.clone(),
            anomalies.clone(),
            ops.clone(),
            start.clone(),
            root.clone(),
        );
        threads.push(std::thread::spawn(move || {
            start.wait();
            let de = root.join("dynamic_events");
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("churn{w}_{}", n % 4);
                n += 1;
                let dir = root.join(format!("events/synthetic/{name}"));
                let inst = root.join(format!("instances/i/events/synthetic/{name}/format"));
                let create = format!("s:{name} u64 x; char[] s\n");
                if write_raw(&de, create.as_bytes(), libc::O_WRONLY | libc::O_APPEND).is_err() {
                    anomalies.fetch_add(1, Ordering::Relaxed);
                    eprintln!("create {name} failed");
                    continue;
                }
                // Visible at once, everywhere.
                for p in [dir.join("format"), inst.clone()] {
                    if let Err(e) = std::fs::read(&p) {
                        eprintln!("just created {}: {e}", p.display());
                        anomalies.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let delete = format!("-:synthetic/{name}\n");
                if write_raw(&de, delete.as_bytes(), libc::O_WRONLY | libc::O_APPEND).is_err() {
                    anomalies.fetch_add(1, Ordering::Relaxed);
                    eprintln!("delete {name} failed");
                    continue;
                }
                // Gone at once, everywhere: a success here is a stale hit.
                for p in [dir.join("format"), inst.clone()] {
                    match std::fs::metadata(&p) {
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                        other => {
                            eprintln!("just deleted {}: {other:?}", p.display());
                            anomalies.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (stop, start) = (stop.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                drop_caches();
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    start.wait();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        anomalies.load(Ordering::Relaxed),
        0,
        "anomalies (see stderr)"
    );
    assert!(ops.load(Ordering::Relaxed) > 1000, "the churn ran");
    m.assert_nodes_return_to(base);
}

#[test]
fn the_readme_advertises_what_is_supported_and_its_examples_work() {
    // Tools key off the README (issue 3): it names the dynamic event forms this daemon
    // accepts, not the kernel's probe syntax, and its example works as written.
    let m = Mount::new(&[]);
    let readme = read(&m.p("README"));
    for advertised in [
        "s:[synthetic/]<event>",
        "u:<event>",
        "-:[<group>/][<event>]",
        "synthetic_events\t-",
    ] {
        assert!(readme.contains(advertised), "README lacks {advertised:?}");
    }
    for unsupported in [
        "p[:[<group>/][<event>]]",
        "uprobe_events",
        ":mod:<module>",
        "set_ftrace_filter",
    ] {
        assert!(
            !readme.contains(unsupported),
            "README advertises {unsupported:?}"
        );
    }
    let example = readme
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("example: echo '")?
                .strip_suffix("' >> synthetic_events")
        })
        .expect("the synthetic_events example");
    assert_eq!(
        append(&m, "synthetic_events", example),
        Ok(example.len()),
        "{example}"
    );
    assert!(m.p("events/synthetic/myevent/format").exists());
}

#[test]
fn instance_listings_follow_the_kernel_list_and_cursors_survive_churn() {
    // An instance lists its events/ in the kernel's global event list order, where a dynamic
    // event made before the instance comes first (the list's head); later ones are appended
    // (spec §2.3). A readdir continued across additions and removals neither skips nor
    // repeats an entry that stayed (ARCHITECTURE.md, readdir cookies).
    let m = Mount::new(&[]);
    assert_eq!(append(&m, "synthetic_events", "early_a int x"), Ok(13));
    assert_eq!(append(&m, "synthetic_events", "early_b int x"), Ok(13));
    std::fs::create_dir(m.p("instances/churn")).unwrap();
    let events = m.p("instances/churn/events");
    let subs = crate::tree::subdirs(&events);
    assert_eq!(
        subs.first().map(String::as_str),
        Some("synthetic"),
        "{subs:?}"
    );
    assert_eq!(
        crate::tree::subdirs(&events.join("synthetic")),
        ["early_b", "early_a"],
        "newest first in an instance made after them"
    );
    assert_eq!(append(&m, "synthetic_events", "late_c int x"), Ok(12));
    assert_eq!(
        crate::tree::subdirs(&events.join("synthetic")),
        ["early_b", "early_a", "late_c"],
        "made after the instance: appended"
    );
    assert_eq!(
        crate::tree::subdirs(&m.p("events/synthetic")),
        ["early_a", "early_b", "late_c"],
        "creation order at the top level"
    );
    for dir in [
        events.clone(),
        events.join("synthetic"),
        events.join("sched"),
    ] {
        let before: Vec<String> = crate::tree::list(&dir);
        let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        assert!(fd >= 0);
        let mut seen = Vec::new();
        for round in 0.. {
            let got = crate::tree::getdents_call(fd, 256, "churn");
            if got.is_empty() {
                break;
            }
            seen.extend(got.into_iter().map(|d| d.name));
            if round >= 6 {
                // Entries added behind the cursor are listed too: stop adding, or it never ends.
                continue;
            }
            // Churn between calls: a new subsystem and event, and the removal of another.
            let (add, del) = (
                format!("churn_{round} int x"),
                format!("!churn_{}", round.max(1) - 1),
            );
            assert_eq!(append(&m, "synthetic_events", &add), Ok(add.len()));
            if round > 0 {
                let _ = append(&m, "synthetic_events", &del);
            }
            let user = format!("u:uchurn_{round} u32 a");
            assert_eq!(append(&m, "dynamic_events", &user), Ok(user.len()));
        }
        unsafe { libc::close(fd) };
        for name in before
            .iter()
            .filter(|n| !n.starts_with("churn_") && !n.starts_with("uchurn_"))
        {
            let n = seen.iter().filter(|s| *s == name).count();
            assert_eq!(n, 1, "{}: {name} seen {n} times in {seen:?}", dir.display());
        }
        let mut dup = seen.clone();
        dup.sort();
        dup.dedup();
        assert_eq!(dup.len(), seen.len(), "{}: repeated names", dir.display());
        // Tidy for the next directory.
        let _ = write_raw(&m.p("dynamic_events"), b"", libc::O_WRONLY | libc::O_TRUNC);
        assert_eq!(append(&m, "synthetic_events", "early_a int x"), Ok(13));
        assert_eq!(append(&m, "synthetic_events", "early_b int x"), Ok(13));
    }
}
