//! The eventfs bug history as a regression suite: every applicable black-box scenario of
//! `eventfs-history.md` §4, each against a mounted `utracefs`, each guarding against the kernel
//! bug or FUSE pitfall it is named after. Concurrency tests run ~2 s by default; set
//! `UTRACEFS_SOAK_SECS=<n>` to stretch them into a soak (README "Reliability suite and soaks").
//!
//! Scenario map (§4 number → test; `tree::`, `dynamic::`, … name existing tests in this crate):
//!
//! | §4 | scenario                                   | test                                                     |
//! |----|--------------------------------------------|----------------------------------------------------------|
//! |  1 | concurrent first lookup, no ENOENT          | tree::concurrent_first_lookups_never_fail (+ `_of_sibling_files_`) |
//! |  2 | name looked up too early appears at once    | dynamic::a_deleted_event_is_gone_at_once_and_a_new_one_visible_at_once |
//! |  3 | no half-built inodes                        | h03_no_half_built_inodes                                 |
//! |  4 | write after removal while open              | dynamic::a_deleted_event_is_gone_at_once_… (fd_a → ENODEV) |
//! |  5 | reading `format` while the event churns     | h05_format_reads_during_churn                            |
//! |  6 | dir fd held open across adding children     | h06_dir_fd_held_open_across_adding_children              |
//! |  7 | instance rmdir racing lookups               | instances::mkdir_rmdir_racing_lookups_reads_and_writes   |
//! |  8 | rmdir of a busy instance                    | instances::rmdir_is_ebusy_while_a_pinning_file_is_open   |
//! |  9 | `find` sees no loops (two instances)        | h09_find_sees_no_loops_with_two_instances                |
//! | 10 | readdir d_ino == st_ino, never 0            | tree::readdir_ino_and_type_match_lstat_everywhere        |
//! | 11 | directory st_nlink holds steady             | h11_nlink_steady_across_reclaim_and_churn (+ tree::directory_nlink_and_file_attributes, tree::find_type_d_count_matches_directory_walk) |
//! | 12 | hidden entries give no duplicate names      | tree::getdents_small_buffers_give_each_name_once         |
//! | 13 | readdir offsets stable while entries change | h13_readdir_offsets_stable_while_entries_change          |
//! | 14 | half-read dir, then remount,gid=            | not applicable: FUSE has no remount that changes uid/gid (options are fixed at mount; `-o remount` is refused by fusermount/ignored by fuse_reconfigure) |
//! | 15 | mount's gid reaches files built on demand   | tree::uid_gid_mode_options_reach_never_looked_up_entries |
//! | 16 | chgrp on a subsystem dir does not spread    | conformance::chmod_and_chown_change_only_the_named_entry |
//! | 17 | chown survives reclaim                      | conformance::chmod_survives_drop_caches_in_eventfs_and_regular_dirs, conformance::chown_of_events_does_not_propagate |
//! | 18 | remount with uid/gid resets, twice          | not applicable: no uid/gid remount under FUSE (see 14)   |
//! | 19 | instance default ownership                  | instances::ownership_of_instances_does_not_propagate (the remount half: not applicable, see 14) |
//! | 20 | long names do not hang                      | h20_long_names_do_not_hang; h20_instance_names_longer_than_255_are_rejected (ignored: daemon bug) |
//! | 21 | lock-order stress                           | h21_lock_order_stress (remounts replaced by instance mkdir/rmdir, see 14) |
//! | 22 | a removed event disappears at once          | dynamic::a_deleted_event_is_gone_at_once_… (inotify IN_DELETE: optional, `notify_delete` unused) |
//! | 23 | invalidations never deadlock                | h23_invalidations_never_deadlock                         |
//! | 24 | lookup counts balance                       | tree::node_count_balances_after_mixed_workload, tree::fd_held_across_drop_caches_still_works |
//! | 25 | remove, re-add, node reuse                  | dynamic::a_deleted_event_is_gone_at_once_… (+ h25_old_fd_enodev_new_fd_works for "B works") |
//! | 26 | size-0 files still read fully               | tree::size_zero_format_reads_fully_every_way             |
//! | 27 | contents fresh on each open                 | h27_contents_fresh_on_each_open_and_for_held_fds         |
//! | 28 | `trace_pipe` does not stall the mount       | h28_trace_pipe_does_not_stall_the_mount; records and poll: datapath::trace_pipe_blocks_without_stalling_the_mount, datapath::trace_pipe_nonblocking_and_poll |
//! | 29 | removal in the middle of a readdir          | h29_removal_in_the_middle_of_a_readdir                   |
//! | 30 | lookups send no inotify events              | h30_lookups_send_no_inotify_events                       |
//! | 31 | missing-name lookups leave no state         | tree::missing_name_lookups_leave_no_nodes                |
//! | 32 | memory scales with use, not copies          | h32_instances_share_the_catalog_and_nodes_follow_use (kernel slab half: not applicable, FUSE inodes are the kernel's) |
//! | 33 | failed creation leaves nothing behind       | h33_failed_creation_leaves_nothing_behind                |
//! | 34 | creating under a parent being removed       | h34_create_under_a_parent_being_removed                  |
//!
//! Spec §14 instance and dynamic-event scenarios (the rest of §14 is in `conformance.rs`,
//! `filters.rs`, `triggers.rs`): 55 instances::namespace_errors_inside_instances; 56
//! instances::rmdir_is_ebusy_while_a_pinning_file_is_open; 57
//! instances::files_left_open_fail_with_enodev_after_rmdir_but_id_keeps_its_number; 58
//! instances::cwd_inside_a_removed_instance (+ reliability::held_open_dirs_across_removal_*);
//! 59 instances::a_recreated_instance_starts_clean, triggers::triggers_are_per_instance_and_go_with_it;
//! 63 instances::ownership_of_instances_does_not_propagate; 65
//! instances::mkdir_creates_a_full_instance_with_the_kernels_file_set (same subsystem set as the
//! top level); 66 not applicable (remount, see 14); 67–69 dynamic::synthetic_event_lifecycle;
//! 70 dynamic::user_events_and_errors (the test runs as root; the EPERM half needs a
//! non-root caller without CAP_PERFMON: not applicable to a root-only test run).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Mount, drop_caches, read, soak_or, write_raw};
use crate::tree::{LONG, getdents, run_limited, walk};

const FILES: [&str; 7] = [
    "enable", "filter", "format", "hist", "id", "inject", "trigger",
];

fn append(m: &Mount, line: &str) -> Result<usize, i32> {
    append_at(&m.path(), line)
}

/// One append that must be accepted whole.
fn must(m: &Mount, line: &str) {
    assert_eq!(append(m, line), Ok(line.len()), "{line:?}");
}

fn append_at(root: &Path, line: &str) -> Result<usize, i32> {
    write_raw(
        &root.join("dynamic_events"),
        line.as_bytes(),
        libc::O_WRONLY | libc::O_APPEND,
    )
}

fn errno_of<T>(r: std::io::Result<T>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// The node count to return to; retries while the stats socket answers without `nodes` (seen
/// once under the full suite's load, right after mounting).
fn base_nodes(m: &Mount) -> u64 {
    for _ in 0..100 {
        if let Some(n) = m.stats().get("nodes") {
            return *n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the stats socket never reported `nodes`");
}

/// Default length of the concurrency tests (stretched by `UTRACEFS_SOAK_SECS`).
fn race_time() -> Duration {
    soak_or(Duration::from_secs(2))
}

// ------------------------------------------------------------------------------------------
// A bounded race: workers loop until the time is up; anomalies are collected by kind; a worker
// that makes no progress for 30 s fails the test as a hang (a liveness bound, not a speed
// assertion).
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Ctl {
    stop: AtomicBool,
    ops: AtomicUsize,
    anomalies: Mutex<BTreeMap<String, (usize, String)>>,
}

impl Ctl {
    /// Records an anomaly of `kind` (the first example of each kind is kept).
    fn bad(&self, kind: &str, example: String) {
        let mut a = self.anomalies.lock().unwrap();
        let e = a.entry(kind.to_string()).or_insert((0, example));
        e.0 += 1;
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

type Worker = Box<dyn FnMut(&Ctl) + Send>;

/// Runs every worker in a loop on its own thread for `dur`; returns (total ops, ops of each
/// worker). Panics on any anomaly, on a stuck worker, or if a worker never completed a round.
fn race(dur: Duration, workers: Vec<(&'static str, Worker)>) -> usize {
    const STUCK: Duration = Duration::from_secs(30);
    let ctl = Arc::new(Ctl::default());
    let t0 = Instant::now();
    let mut threads = Vec::new();
    let mut stamps = Vec::new();
    for (name, mut w) in workers {
        let ctl = ctl.clone();
        let stamp = Arc::new(AtomicU64::new(0));
        let rounds = Arc::new(AtomicUsize::new(0));
        stamps.push((name, stamp.clone(), rounds.clone()));
        threads.push(std::thread::spawn(move || {
            while !ctl.stopped() {
                w(&ctl);
                ctl.ops.fetch_add(1, Ordering::Relaxed);
                rounds.fetch_add(1, Ordering::Relaxed);
                stamp.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        }));
    }
    let deadline = t0 + dur;
    let stuck = |now: Duration| {
        stamps
            .iter()
            .filter(|(_, s, _)| {
                now.saturating_sub(Duration::from_millis(s.load(Ordering::Relaxed))) > STUCK
            })
            .map(|(n, _, _)| *n)
            .collect::<Vec<_>>()
    };
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let s = stuck(t0.elapsed());
        assert!(
            s.is_empty(),
            "workers {s:?} made no progress for {STUCK:?}: hang"
        );
    }
    ctl.stop.store(true, Ordering::Relaxed);
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let s = stuck(t0.elapsed());
        assert!(
            s.is_empty(),
            "workers {s:?} did not finish their round within {STUCK:?}: hang"
        );
    }
    for t in threads {
        t.join().expect("worker panicked");
    }
    let a = ctl.anomalies.lock().unwrap();
    assert!(
        a.is_empty(),
        "anomalies (kind: count, first example): {a:#?}"
    );
    for (name, _, rounds) in &stamps {
        assert!(
            rounds.load(Ordering::Relaxed) > 0,
            "worker {name} never completed a round"
        );
    }
    ctl.ops.load(Ordering::Relaxed)
}

/// Creates and deletes `s:<name> u64 a` in a loop (one round: create, then delete).
fn creator(root: PathBuf, name: &'static str) -> Worker {
    Box::new(move |c: &Ctl| {
        if let Err(e) = append_at(&root, &format!("s:{name} u64 a\n")) {
            c.bad("create failed", format!("create {name}: errno {e}"));
        }
        if let Err(e) = append_at(&root, &format!("-:synthetic/{name}\n")) {
            c.bad("delete failed", format!("delete {name}: errno {e}"));
        }
    })
}

/// The error of a call on a churning event is ENOENT (gone before the call) or, on a handle
/// opened before the removal, ENODEV; anything else is an anomaly.
fn churn_err(c: &Ctl, what: &str, e: &std::io::Error) {
    if !matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENODEV)) {
        c.bad(&format!("{what}: {e}"), format!("{what}: {e:?}"));
    }
}

// ------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------

/// §4 scenario 3, "no half-built inodes": an inode must be complete (mode, type, owner, ino)
/// before any reply names it. Guards against the 852e46e239 oops and 4fa4b010b83f (eventfs
/// dentries created before their inode was filled in).
#[test]
fn h03_no_half_built_inodes() {
    let m = Mount::new(&["-o", "uid=1234,gid=5678"]);
    let base = base_nodes(&m);
    let root = m.path();
    let mut workers: Vec<(&'static str, Worker)> = vec![("creator", creator(root.clone(), "p1"))];
    for t in 0..8usize {
        let dir = root.join("events/synthetic/p1");
        workers.push((
            "checker",
            Box::new(move |c: &Ctl| {
                let check = |p: &Path, md: &std::fs::Metadata, dir: bool, mode: u32| {
                    let ok = md.is_dir() == dir
                        && md.is_file() != dir
                        && md.mode() & 0o7777 == mode
                        && (md.uid(), md.gid()) == (1234, 5678)
                        && md.ino() != 0;
                    if !ok {
                        c.bad(
                            "half-built inode",
                            format!(
                                "{}: mode {:o} uid {} gid {} ino {}",
                                p.display(),
                                md.mode(),
                                md.uid(),
                                md.gid(),
                                md.ino()
                            ),
                        );
                    }
                };
                match t % 4 {
                    0 => match std::fs::metadata(&dir) {
                        Ok(md) => check(&dir, &md, true, 0o755),
                        Err(e) => churn_err(c, "stat dir", &e),
                    },
                    1 => {
                        for f in FILES {
                            let p = dir.join(f);
                            let mode = match f {
                                "format" | "id" | "hist" => 0o440,
                                "inject" => 0o200,
                                _ => 0o640,
                            };
                            match std::fs::metadata(&p) {
                                Ok(md) => check(&p, &md, false, mode),
                                Err(e) => churn_err(c, "stat file", &e),
                            }
                        }
                    }
                    2 => {
                        for f in ["format", "id", "enable"] {
                            if let Err(e) = std::fs::read(dir.join(f)) {
                                churn_err(c, "open/read", &e);
                            }
                        }
                    }
                    _ => match std::fs::read_dir(&dir) {
                        Ok(rd) => {
                            for e in rd {
                                match e {
                                    Ok(e) => {
                                        let n = e.file_name().to_string_lossy().into_owned();
                                        if !FILES.contains(&n.as_str()) {
                                            c.bad("garbage dirent", n);
                                        }
                                    }
                                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                                    Err(e) => churn_err(c, "getdents", &e),
                                }
                            }
                        }
                        Err(e) => churn_err(c, "opendir", &e),
                    },
                }
            }),
        ));
    }
    race(race_time(), workers);
    m.assert_nodes_return_to(base);
}

/// §4 scenario 5, "reading `format` while the event churns": every read is the whole, well
/// formed text or ENOENT/ENODEV, never partial or mixed. Guards against the 2024-07 report
/// (Krause) of garbage reads and b1560408692c (use-after-free of a freed event's metadata).
#[test]
fn h05_format_reads_during_churn() {
    let m = Mount::new(&[]);
    let base = base_nodes(&m);
    let root = m.path();
    let def = "s:fmtev u64 lat; pid_t pid; char[16] comm\n";
    must(&m, def);
    let full = read(&m.p("events/synthetic/fmtev/format"));
    // Everything after the `ID:` line is the same for every incarnation.
    let tail: Arc<String> = Arc::new(full.split_once("format:\n").unwrap().1.to_string());
    must(&m, "-:synthetic/fmtev");
    let rss0 = rss_kib(m.pid());
    let mut workers: Vec<(&'static str, Worker)> = vec![(
        "churn",
        Box::new({
            let root = root.clone();
            move |c: &Ctl| {
                if append_at(&root, def).is_err() || append_at(&root, "-:synthetic/fmtev").is_err()
                {
                    c.bad("create/delete failed", String::new());
                }
            }
        }),
    )];
    for (r, sub) in [(0, ""), (1, ""), (2, "instances/i/")] {
        let p = root.join(format!("{sub}events/synthetic/fmtev/format"));
        let tail = tail.clone();
        workers.push((
            "reader",
            Box::new(move |c: &Ctl| {
                let got = if r == 1 {
                    // A real `cat`: exit 0 with the text, or exit 1 with ENOENT/ENODEV.
                    let out = run_limited(Command::new("cat").arg(&p), LONG);
                    let err = out.stderr_str();
                    if !out.status.success() {
                        if !err.contains("No such file") && !err.contains("No such device") {
                            c.bad("cat error", err);
                        }
                        return;
                    }
                    out.stdout
                } else {
                    match std::fs::read(&p) {
                        Ok(b) => b,
                        Err(e) => return churn_err(c, "read format", &e),
                    }
                };
                let s = String::from_utf8_lossy(&got);
                let ok = s.starts_with("name: fmtev\nID: ")
                    && s.split_once("format:\n").map(|x| x.1) == Some(tail.as_str());
                if !ok {
                    c.bad("partial or garbage format", s.into_owned());
                }
            }),
        ));
    }
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let ops = race(race_time(), workers);
    assert!(ops > 50, "the churn ran ({ops} ops)");
    std::fs::remove_dir(m.p("instances/i")).unwrap();
    m.assert_nodes_return_to(base);
    // Memory stays bounded: a generous bound (a leak of one node or format per cycle over a
    // soak would exceed it; allocator noise stays far below).
    let grown = rss_kib(m.pid()).saturating_sub(rss0);
    assert!(
        grown < 64 * 1024,
        "daemon RSS grew by {grown} KiB during the churn"
    );
}

/// The daemon's resident set size in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// §4 scenario 6, "directory fd held open across adding children": no error, no leak, no
/// over-release. Guards against "eventfs: Remember what dentries were created on dir open"
/// (2023-09-23), whose dentry bookkeeping went wrong when children appeared under an open dir.
#[test]
fn h06_dir_fd_held_open_across_adding_children() {
    let m = Mount::new(&[]);
    let base = base_nodes(&m);
    let deadline = Instant::now() + soak_or(Duration::from_millis(1500));
    let mut rounds = 0;
    while rounds < 1000 && Instant::now() < deadline {
        must(&m, "s:kp1 u64 a");
        let dir = std::fs::File::open(m.p("events/synthetic")).expect("open events/synthetic");
        std::fs::metadata(m.p("events/synthetic/kp1/enable")).expect("kp1/enable");
        must(&m, "s:kp2 u64 a");
        std::fs::metadata(m.p("events/synthetic/kp2/enable")).expect("kp2/enable");
        drop(dir);
        must(&m, "-:synthetic/kp1");
        must(&m, "-:synthetic/kp2");
        rounds += 1;
    }
    assert!(rounds >= 20, "only {rounds} rounds");
    m.assert_nodes_return_to(base);
    // Later probes work (no over-release of the reused names).
    must(&m, "s:kp1 u64 a");
    assert_eq!(read(&m.p("events/synthetic/kp1/enable")), "0\n");
}

/// §4 scenario 9, "`find` sees no loops", with two instances: no "File system loop detected",
/// no directory sharing (st_dev, st_ino) with another, no directory ino equal to a file ino.
/// Guards against the 2024-01-22 report (Geert), 834bf76add3e and 8898e7f288c4 (eventfs gave
/// directories the same inode number).
#[test]
fn h09_find_sees_no_loops_with_two_instances() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/a")).unwrap();
    std::fs::create_dir(m.p("instances/b")).unwrap();
    let r = run_limited(Command::new("find").arg(m.path()), LONG);
    assert!(
        r.status.success() && r.stderr.is_empty(),
        "find: {} {}",
        r.status,
        r.stderr_str()
    );
    let mut dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut files: HashSet<(u64, u64)> = HashSet::new();
    for (p, md) in walk(&m.path()) {
        let key = (md.dev(), md.ino());
        let fresh = if md.is_dir() {
            dirs.insert(key)
        } else {
            files.insert(key)
        };
        assert!(
            fresh,
            "{} shares (dev, ino) {key:?} with another entry",
            p.display()
        );
    }
    assert!(dirs.len() > 3 * 2000, "walked only {} dirs", dirs.len());
    let both: Vec<_> = dirs.intersection(&files).collect();
    assert!(both.is_empty(), "directory and file share inos: {both:?}");
}

/// §4 scenario 11, "directory st_nlink holds steady": eventfs directories report 1, through
/// repeated lookups, reclaim and re-lookup, and event add/remove. Guards against ca185770db91
/// (nlink drifting upward) and GNU find's leaf optimisation trusting a wrong nlink.
#[test]
fn h11_nlink_steady_across_reclaim_and_churn() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    must(&m, "s:stay u64 a");
    let dirs: Vec<PathBuf> = ["", "instances/i/"]
        .iter()
        .flat_map(|r| {
            [
                "events",
                "events/sched",
                "events/sched/sched_switch",
                "events/synthetic",
                "events/synthetic/stay",
            ]
            .map(|d| m.p(&format!("{r}{d}")))
        })
        .collect();
    for round in 0..10 {
        for d in &dirs {
            let n = std::fs::metadata(d).unwrap().nlink();
            assert_eq!(n, 1, "round {round}: nlink of {}", d.display());
        }
        let name = format!("tmp{round}");
        must(&m, &format!("s:{name} u64 a"));
        std::fs::read_dir(m.p("events/synthetic"))
            .unwrap()
            .for_each(drop);
        if round % 2 == 0 {
            drop_caches();
        }
        must(&m, &format!("-:synthetic/{name}"));
    }
}

/// Reads one getdents64 batch of `bufsz` bytes: `Ok(names)` (empty at end), or the errno.
fn getdents_batch(fd: i32, bufsz: usize) -> Result<Vec<String>, i32> {
    let mut buf = vec![0u64; bufsz.div_ceil(8)];
    let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), bufsz) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
    let (mut off, mut out) = (0, Vec::new());
    while off < bytes.len() {
        let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
        let name = &bytes[off + 19..off + reclen];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push(String::from_utf8_lossy(&name[..end]).into_owned());
        off += reclen;
    }
    Ok(out)
}

fn open_dir(p: &Path) -> i32 {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    assert!(
        fd >= 0,
        "open {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    fd
}

/// §4 scenario 13, "readdir offsets stay stable while entries change": 200 events read ten per
/// getdents64 while five unreturned ones are removed and five added between calls; every event
/// that stayed appears exactly once, nothing twice. Guards against the index-as-offset bug
/// (libfuse readdir contract; fuse3#12).
#[test]
fn h13_readdir_offsets_stable_while_entries_change() {
    let m = Mount::new(&[]);
    let mut live: BTreeSet<String> = BTreeSet::new();
    for i in 0..200 {
        let n = format!("kp{i:03}");
        must(&m, &format!("s:{n} u64 a"));
        live.insert(n);
    }
    let original = live.clone();
    let mut removed: HashSet<String> = HashSet::new();
    let mut rng = crate::tree::Rng::new(13);
    let fd = open_dir(&m.p("events/synthetic"));
    let (mut seen, mut added) = (Vec::<String>::new(), 0);
    loop {
        // Ten 32-byte records ("kpNNN"): 24 + name, rounded to 8.
        let batch = getdents_batch(fd, 320).unwrap_or_else(|e| panic!("getdents: errno {e}"));
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
        let returned: HashSet<&String> = seen.iter().collect();
        let candidates: Vec<String> = live
            .iter()
            .filter(|n| !returned.contains(n))
            .cloned()
            .collect();
        for _ in 0..5.min(candidates.len()) {
            let victim = &candidates[(rng.next() % candidates.len() as u64) as usize];
            if live.remove(victim) {
                must(&m, &format!("-:synthetic/{victim}"));
                removed.insert(victim.clone());
            }
        }
        // Additions sort after everything (serial order): stop adding once 100 have gone in,
        // or the reader would chase them forever.
        for _ in 0..if added < 100 { 5 } else { 0 } {
            let n = format!("kn{added:03}");
            added += 1;
            must(&m, &format!("s:{n} u64 a"));
            live.insert(n);
        }
    }
    unsafe { libc::close(fd) };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &seen {
        *counts.entry(n).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "names returned twice: {twice:?}");
    let missing: Vec<_> = original
        .iter()
        .filter(|n| !removed.contains(*n) && !counts.contains_key(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "stable events skipped: {missing:?}");
    assert!(
        !removed.is_empty() && added > 0,
        "the listing changed under the reader"
    );
}

/// §4 scenario 20, "long names do not hang": a 300-byte event name is refused at creation, a
/// 250-byte one works; `ls` and `stat` finish and readdir never sends a name over 255 bytes.
/// Guards against 5eaf7f0589c0 (a hung readdir over a name longer than the buffer).
#[test]
fn h20_long_names_do_not_hang() {
    let m = Mount::new(&[]);
    let long = "a".repeat(300);
    let ok = "b".repeat(250);
    let r = append(&m, &format!("s:{long} u64 x"));
    assert!(
        matches!(r, Err(libc::EINVAL) | Err(libc::ENAMETOOLONG)),
        "300-byte event name: {r:?}"
    );
    must(&m, &format!("s:{ok} u64 x"));
    let out = run_limited(
        Command::new("ls").arg("-l").arg(m.p("events/synthetic")),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "ls: {}", out.stderr_str());
    assert!(out.stdout_str().contains(&ok));
    for d in ["events/synthetic", "events"] {
        for e in getdents(&m.p(d), 4096) {
            assert!(
                e.name.len() <= 255,
                "{d}: readdir sent a {}-byte name",
                e.name.len()
            );
        }
    }
    std::fs::metadata(m.p(&format!("events/synthetic/{ok}/format"))).expect("250-byte name");
    let r = errno_of(std::fs::metadata(m.p(&format!("events/synthetic/{long}"))));
    // The kernel's eventfs answers ENOENT here (checked on 6.18); ENAMETOOLONG is also right.
    assert!(
        matches!(r, Some(libc::ENOENT | libc::ENAMETOOLONG)),
        "lookup of 300 bytes: {r:?}"
    );
}

/// §4 scenario 20 for instance names: the kernel refuses `mkdir instances/<300 bytes>` (and any
/// lookup of such a name at the top level or in `instances/`) with ENAMETOOLONG, so no readdir
/// ever lists a name longer than NAME_MAX.
#[test]
fn h20_instance_names_longer_than_255_are_rejected() {
    let m = Mount::new(&[]);
    let long = "a".repeat(300);
    let p = m.p(&format!("instances/{long}"));
    let r = errno_of(std::fs::create_dir(&p));
    let _ = std::fs::remove_dir(&p);
    assert_eq!(
        r,
        Some(libc::ENAMETOOLONG),
        "mkdir of a 300-byte instance name"
    );
    for d in ["", "instances"] {
        let r = errno_of(std::fs::metadata(m.p(d).join(&long)));
        assert_eq!(r, Some(libc::ENAMETOOLONG), "lookup of 300 bytes in {d:?}");
    }
}

/// §4 scenario 21, "lock-order stress": event add/remove, `find`, deep stat loops,
/// opendir/closedir, chown, instance mkdir/rmdir (our remount stand-in: it takes the same
/// top-down locks), enable writes and cache drops all at once; no call may block for 30 s.
/// Guards against the 2023-07 lockdep splat and "Move taking of inode_lock …" (a registry lock
/// taken inside a directory lock in one path and the reverse in another).
#[test]
fn h21_lock_order_stress() {
    let m = Mount::new(&[]);
    let base = base_nodes(&m);
    let root = m.path();
    std::fs::create_dir(m.p("instances/keep")).unwrap();
    let mut w: Vec<(&'static str, Worker)> = vec![
        ("create/delete a", creator(root.clone(), "lk1")),
        ("create/delete b", creator(root.clone(), "lk2")),
    ];
    let r = root.clone();
    w.push((
        "find",
        Box::new(move |c: &Ctl| {
            let out = run_limited(
                Command::new("find")
                    .arg(r.join("events/synthetic"))
                    .arg(r.join("instances")),
                LONG,
            );
            // Entries vanishing under find are expected; anything else is not.
            for l in out.stderr_str().lines() {
                if !l.contains("No such file")
                    && !l.contains("Invalid argument")
                    && !l.contains("No such device")
                {
                    c.bad("find", l.to_string());
                }
            }
        }),
    ));
    for (k, deep) in [
        "events/sched/sched_switch/format",
        "instances/keep/events/irq/irq_handler_entry/id",
        "events/synthetic/lk1/enable",
        "instances/churn/events/synthetic/lk2/format",
    ]
    .into_iter()
    .enumerate()
    {
        let p = root.join(deep);
        w.push((
            "deep stat",
            Box::new(move |c: &Ctl| {
                if let Err(e) = std::fs::metadata(&p)
                    && (k < 2 || !matches!(e.raw_os_error(), Some(libc::ENOENT)))
                {
                    c.bad("deep stat", format!("{}: {e}", p.display()));
                }
            }),
        ));
    }
    let r = root.clone();
    w.push((
        "opendir/closedir",
        Box::new(move |c: &Ctl| {
            for d in [
                "events",
                "events/sched",
                "instances/keep/events/sched",
                "events/synthetic",
            ] {
                match std::fs::read_dir(r.join(d)) {
                    Ok(rd) => drop(rd),
                    Err(e) if d == "events/synthetic" && e.raw_os_error() == Some(libc::ENOENT) => {
                    }
                    Err(e) => c.bad("opendir", format!("{d}: {e}")),
                }
            }
        }),
    ));
    let r = root.clone();
    w.push((
        "chown",
        Box::new(move |c: &Ctl| {
            for (d, may_vanish) in [
                ("events/sched", false),
                ("instances/keep/events/sched/sched_switch/enable", false),
                ("events/synthetic/lk1", true),
            ] {
                if let Err(e) = std::os::unix::fs::chown(r.join(d), Some(0), Some(7))
                    && !(may_vanish && e.raw_os_error() == Some(libc::ENOENT))
                {
                    c.bad("chown", format!("{d}: {e}"));
                }
            }
        }),
    ));
    let r = root.clone();
    w.push((
        "instance mkdir/rmdir",
        Box::new(move |c: &Ctl| {
            let i = r.join("instances/churn");
            if let Err(e) = std::fs::create_dir(&i) {
                return c.bad("mkdir", e.to_string());
            }
            loop {
                match std::fs::remove_dir(&i) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::yield_now(),
                    Err(e) => return c.bad("rmdir", e.to_string()),
                }
            }
        }),
    ));
    let r = root.clone();
    w.push((
        "enable writes",
        Box::new(move |c: &Ctl| {
            for (p, v) in [
                ("events/sched/sched_switch/enable", "1"),
                ("instances/keep/events/irq/enable", "1"),
                ("events/sched/sched_switch/enable", "0"),
                ("instances/keep/events/irq/enable", "0"),
            ] {
                if let Err(e) = std::fs::write(r.join(p), v) {
                    c.bad("enable write", format!("{p}: {e}"));
                }
            }
        }),
    ));
    w.push((
        "drop caches",
        Box::new(|_: &Ctl| {
            drop_caches();
            std::thread::sleep(Duration::from_millis(50));
        }),
    ));
    race(race_time(), w);
    std::fs::remove_dir(m.p("instances/keep")).unwrap();
    m.assert_nodes_return_to(base);
}

/// §4 scenario 23, "invalidations never deadlock": events are removed from a directory while 8
/// threads hammer LOOKUP and READDIRPLUS on it. Guards against sending `notify_inval_entry`
/// from inside a request handler (libfuse docs: it deadlocks on the parent's lock).
#[test]
fn h23_invalidations_never_deadlock() {
    let m = Mount::new(&[]);
    let base = base_nodes(&m);
    let root = m.path();
    assert_eq!(
        append(&m, "s:anchor u64 a"),
        Ok(14),
        "keeps events/synthetic alive"
    );
    let mut w: Vec<(&'static str, Worker)> = vec![
        ("churn 0", creator(root.clone(), "iv0")),
        ("churn 1", creator(root.clone(), "iv1")),
    ];
    for t in 0..8usize {
        let dir = root.join("events/synthetic");
        w.push((
            "hammer",
            Box::new(move |c: &Ctl| {
                if t % 2 == 0 {
                    // `ls -l`: READDIRPLUS, then a stat of every listed name.
                    match std::fs::read_dir(&dir) {
                        Ok(rd) => {
                            for e in rd {
                                match e.and_then(|e| e.metadata()) {
                                    Ok(_) => {}
                                    Err(e) => churn_err(c, "ls -l entry", &e),
                                }
                            }
                        }
                        Err(e) => c.bad("readdir of the parent", e.to_string()),
                    }
                } else {
                    for n in ["iv0", "iv1", "anchor"] {
                        match std::fs::metadata(dir.join(n).join("id")) {
                            Ok(_) => {}
                            Err(e) if n == "anchor" => c.bad("stable lookup", e.to_string()),
                            Err(e) => churn_err(c, "lookup", &e),
                        }
                    }
                }
            }),
        ));
    }
    race(race_time(), w);
    m.assert_nodes_return_to(base);
}

/// §4 scenario 25, the "B works" half (the rest is in `dynamic`): after remove and re-create,
/// the old fd A gives ENODEV while a fresh fd B drives the new event. Guards against the
/// kref/is_freed design of 43aa6f97c2d0 and stale node reuse.
#[test]
fn h25_old_fd_enodev_new_fd_works() {
    use std::io::Write;
    let m = Mount::new(&[]);
    let en = m.p("events/synthetic/p1/enable");
    must(&m, "s:p1 u64 a");
    let mut a = std::fs::OpenOptions::new().write(true).open(&en).unwrap();
    must(&m, "-:synthetic/p1");
    must(&m, "s:p1 u64 a");
    let mut b = std::fs::OpenOptions::new().write(true).open(&en).unwrap();
    assert_eq!(errno_of(a.write(b"1")), Some(libc::ENODEV), "fd A");
    assert_eq!(b.write(b"1").unwrap(), 1, "fd B");
    assert_eq!(read(&en), "1\n");
    assert_eq!(read(&m.p("set_event")), "synthetic:p1\n");
}

/// §4 scenario 27, "contents are fresh on each open", also for readers holding the file open:
/// no page-cache data (direct I/O, no KEEP_CACHE).
#[test]
fn h27_contents_fresh_on_each_open_and_for_held_fds() {
    use std::os::fd::AsRawFd;
    let m = Mount::new(&[]);
    let en = m.p("events/sched/sched_switch/enable");
    let r1 = std::fs::File::open(&en).unwrap();
    let r2 = std::fs::File::open(&en).unwrap();
    let pread = |f: &std::fs::File| crate::tree::pread_full(f.as_raw_fd(), 0, 64).unwrap();
    assert_eq!(pread(&r1), b"0\n");
    assert_eq!(pread(&r2), b"0\n");
    assert_eq!(read(&en), "0\n");
    assert_eq!(write_raw(&en, b"1", libc::O_WRONLY | libc::O_TRUNC), Ok(1));
    assert_eq!(read(&en), "1\n", "a fresh open");
    assert_eq!(pread(&r1), b"1\n", "reader 1 held open");
    assert_eq!(pread(&r2), b"1\n", "reader 2 held open");
    let out = run_limited(Command::new("cat").arg(&en), Duration::from_secs(30));
    assert_eq!(out.stdout, b"1\n");
}

/// §4 scenario 28, "`trace_pipe` does not stall the mount": a blocked `cat trace_pipe` leaves
/// `ls`, `stat` and enable writes working, and SIGINT ends it. Guards against fuser#272/#696
/// and libfuse#1241 (one worker thread blocked, or an ignored INTERRUPT). The "an event
/// unblocks the reader" and poll() halves need records, which utracefs does not produce yet.
#[test]
fn h28_trace_pipe_does_not_stall_the_mount() {
    let m = Mount::new(&[]);
    // A test run started in the background of a non-interactive shell ignores SIGINT, and
    // its children inherit that: give cat the default action, as a terminal's cat has.
    let mut cat = Command::new("cat");
    cat.arg(m.p("trace_pipe"))
        .stdout(std::process::Stdio::null());
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cat.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        })
    };
    let mut cat = cat.spawn().unwrap();
    wait_for(&m, "blocked_readers", 1);
    let limit = Duration::from_secs(20);
    let out = run_limited(Command::new("ls").arg(m.p("events/sched")), limit);
    assert!(out.status.success(), "ls: {}", out.stderr_str());
    let out = run_limited(
        Command::new("stat").arg(m.p("events/sched/sched_switch/format")),
        limit,
    );
    assert!(out.status.success(), "stat: {}", out.stderr_str());
    let en = m.p("events/sched/sched_switch/enable");
    let out = run_limited(
        Command::new("sh")
            .arg("-c")
            .arg(format!("echo 1 > '{}'", en.display())),
        limit,
    );
    assert!(
        out.status.success(),
        "echo 1 > enable: {}",
        out.stderr_str()
    );
    assert_eq!(read(&en), "1\n");
    assert!(
        cat.try_wait().unwrap().is_none(),
        "cat trace_pipe returned without data"
    );
    unsafe { libc::kill(cat.id() as i32, libc::SIGINT) };
    let st = wait_child(&mut cat, limit).expect("cat trace_pipe ignored SIGINT");
    assert!(!st.success(), "killed by SIGINT: {st}");
    wait_for(&m, "blocked_readers", 0);
}

/// Waits (at most 20 s, a liveness bound) for the daemon counter `key` to equal `want`.
pub(crate) fn wait_for(m: &Mount, key: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = m.stats()[key];
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} stayed at {got}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child to exit within `limit`; None (after killing it) if it did not.
pub(crate) fn wait_child(
    c: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// §4 scenario 29, "removal in the middle of a readdir": after the event goes, the listing
/// ends, fails cleanly, or gives the rest of that event's own names; never another directory's
/// entries or garbage. Guards against e109deadb733 (readdir walking a freed eventfs_inode).
#[test]
fn h29_removal_in_the_middle_of_a_readdir() {
    let m = Mount::new(&[]);
    let allowed: BTreeSet<&str> = [".", ".."].into_iter().chain(FILES).collect();
    for bufsz in [40, 64, 96] {
        must(&m, "s:p1 u64 a");
        std::fs::read_dir(m.p("events/synthetic/p1"))
            .unwrap()
            .for_each(drop);
        let fd = open_dir(&m.p("events/synthetic/p1"));
        let mut names = getdents_batch(fd, bufsz).expect("first batch");
        assert!(!names.is_empty());
        must(&m, "-:synthetic/p1");
        let end = loop {
            match getdents_batch(fd, bufsz) {
                Ok(b) if b.is_empty() => break "end".to_string(),
                Ok(b) => names.extend(b),
                Err(e) => break format!("errno {e}"),
            }
        };
        unsafe { libc::close(fd) };
        let set: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            set.len(),
            names.len(),
            "{bufsz}: duplicates in {names:?} ({end})"
        );
        assert!(
            set.is_subset(&allowed),
            "{bufsz}: foreign names {names:?} ({end})"
        );
        assert!(
            end == "end"
                || end == format!("errno {}", libc::ENOENT)
                || end == format!("errno {}", libc::EINVAL),
            "{bufsz}: readdir after removal ended with {end}"
        );
        assert_eq!(
            errno_of(std::fs::metadata(m.p("events/synthetic/p1"))),
            Some(libc::ENOENT)
        );
    }
    assert!(
        m.p("events/sched/sched_switch/format").exists(),
        "daemon still serving"
    );
}

/// §4 scenario 30, "lookups send no inotify events": stat-ing 100 event directories and their
/// files under a watched `events/sched`-like parent gives no IN_CREATE (nor anything else).
/// Guards against 12d823b31fad (eventfs sent fsnotify_create for dentries made by lookup).
#[test]
fn h30_lookups_send_no_inotify_events() {
    let m = Mount::new(&[]);
    drop_caches();
    let mut evs: Vec<PathBuf> = Vec::new();
    for sys in ["sched", "irq", "timer", "syscalls"] {
        let d = m.p(&format!("events/{sys}"));
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                evs.push(e.path());
            }
        }
    }
    evs.truncate(100);
    assert_eq!(evs.len(), 100);
    drop_caches();
    let ifd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(ifd >= 0);
    for sys in ["sched", "irq", "timer", "syscalls"] {
        let c = std::ffi::CString::new(m.p(&format!("events/{sys}")).to_str().unwrap()).unwrap();
        assert!(unsafe { libc::inotify_add_watch(ifd, c.as_ptr(), libc::IN_ALL_EVENTS) } >= 0);
    }
    for e in &evs {
        std::fs::metadata(e).unwrap();
        std::fs::metadata(e.join("format")).unwrap();
    }
    let mut buf = [0u8; 4096];
    let n = unsafe { libc::read(ifd, buf.as_mut_ptr().cast(), buf.len()) };
    let err = std::io::Error::last_os_error().raw_os_error();
    unsafe { libc::close(ifd) };
    let mask = (n > 0).then(|| u32::from_ne_bytes(buf[4..8].try_into().unwrap()));
    assert!(
        n < 0 && err == Some(libc::EAGAIN),
        "inotify got {n} bytes (first mask {mask:x?})"
    );
}

/// §4 scenario 32, "memory scales with use, not with copies": ten instances share the event
/// catalog (the `events` counter does not move, few nodes appear); walking one builds nodes
/// that go away after a cache drop; the daemon's RSS grows by far less than ten catalog copies.
#[test]
fn h32_instances_share_the_catalog_and_nodes_follow_use() {
    let m = Mount::new(&[]);
    let before = m.stats();
    let rss0 = rss_kib(m.pid());
    for i in 0..10 {
        std::fs::create_dir(m.p(&format!("instances/i{i}"))).unwrap();
    }
    let after = m.stats();
    assert_eq!(
        after["events"], before["events"],
        "instances copy no events"
    );
    assert!(
        after["nodes"] <= before["nodes"] + 20,
        "mkdir built nodes: {} → {}",
        before["nodes"],
        after["nodes"]
    );
    let grown = rss_kib(m.pid()).saturating_sub(rss0);
    assert!(grown < 4 * 1024, "10 instances cost {grown} KiB of RSS");
    let r = run_limited(Command::new("find").arg(m.p("instances/i3")), LONG);
    assert!(r.status.success());
    // (No check that `find` built nodes: other tests' cache drops may already have freed them.)
    m.assert_nodes_return_to(after["nodes"]);
}

/// §4 scenario 33, "failed creation leaves nothing behind": a name clash, a bad definition and
/// a bad instance name leave no half-built directory and no node, and a retry succeeds. Guards
/// against "Fix failure path in eventfs_create_events_dir()" and the 2025 leak fix (Al Viro).
#[test]
fn h33_failed_creation_leaves_nothing_behind() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    must(&m, "s:clash u64 a");
    let fmt = read(&m.p("events/synthetic/clash/format"));
    let de = read(&m.p("dynamic_events"));
    let ls = |p: &str| crate::tree::list(&m.p(p));
    let (top, syn) = (ls("events"), ls("events/synthetic"));
    drop_caches();
    let base = base_nodes(&m);
    for (def, want) in [
        ("s:clash u32 b", libc::EEXIST),
        ("s:bad u64 a; float b", libc::EINVAL),
        ("s:bad-name u64 a", libc::EINVAL),
        ("s:mysys.x u64 a", libc::EINVAL),
    ] {
        assert_eq!(append(&m, def), Err(want), "{def}");
        for p in [
            "events/synthetic/bad",
            "instances/i/events/synthetic/bad",
            "events/synthetic/bad-name",
        ] {
            assert_eq!(
                errno_of(std::fs::metadata(m.p(p))),
                Some(libc::ENOENT),
                "{def}: {p}"
            );
        }
        assert_eq!(read(&m.p("dynamic_events")), de, "{def}");
        assert_eq!(
            (ls("events"), ls("events/synthetic")),
            (top.clone(), syn.clone()),
            "{def}"
        );
        assert_eq!(
            read(&m.p("events/synthetic/clash/format")),
            fmt,
            "{def}: the original"
        );
    }
    assert_eq!(
        errno_of(std::fs::create_dir(m.p("instances/i"))),
        Some(libc::EEXIST)
    );
    assert_eq!(crate::tree::list(&m.p("instances")), ["i"]);
    m.assert_nodes_return_to(base);
    assert_eq!(append(&m, "s:bad u64 a"), Ok(11), "a retry succeeds");
    assert_eq!(read(&m.p("instances/i/events/synthetic/bad/enable")), "0\n");
}

/// §4 scenario 34, "creating under a parent that is being removed": one thread creates events
/// in `synthetic/` while another removes every event there (the subsystem goes with the last);
/// afterwards what `dynamic_events` lists is exactly what lookup and readdir reach, in every
/// trace array: no orphan either way. Guards against 12c20c65d046 ("Don't return NULL in
/// eventfs_create_dir()").
#[test]
fn h34_create_under_a_parent_being_removed() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let root = m.path();
    let r = root.clone();
    let mut n = 0usize;
    let creator: Worker = Box::new(move |c: &Ctl| {
        let name = format!("c{}", n % 8);
        n += 1;
        match append_at(&r, &format!("s:{name} u64 a")) {
            Ok(_) | Err(libc::EEXIST) => {}
            Err(e) => c.bad("create", format!("{name}: errno {e}")),
        }
    });
    let r = root.clone();
    let remover: Worker = Box::new(move |c: &Ctl| {
        let list = std::fs::read_to_string(r.join("dynamic_events")).unwrap_or_default();
        for l in list.lines() {
            let name = l.split('\t').next().unwrap().trim_start_matches("s:");
            match append_at(&r, &format!("-:{name}")) {
                Ok(_) | Err(libc::ENOENT) => {}
                Err(e) => c.bad("delete", format!("{name}: errno {e}")),
            }
        }
    });
    let r = root.clone();
    let looker: Worker = Box::new(move |c: &Ctl| {
        for sub in ["", "instances/i/"] {
            match std::fs::read_dir(r.join(format!("{sub}events/synthetic"))) {
                Ok(rd) => rd.for_each(drop),
                Err(e) => churn_err(c, "readdir synthetic", &e),
            }
        }
    });
    race(
        race_time(),
        vec![
            ("creator", creator),
            ("remover", remover),
            ("looker", looker),
        ],
    );
    let listed: BTreeSet<String> = read(&m.p("dynamic_events"))
        .lines()
        .map(|l| {
            l.split('\t')
                .next()
                .unwrap()
                .trim_start_matches("s:synthetic/")
                .to_string()
        })
        .collect();
    for sub in ["", "instances/i/"] {
        let dir = m.p(&format!("{sub}events/synthetic"));
        let seen: BTreeSet<String> = if listed.is_empty() {
            assert_eq!(
                errno_of(std::fs::metadata(&dir)),
                Some(libc::ENOENT),
                "{sub}: empty subsystem left"
            );
            BTreeSet::new()
        } else {
            crate::tree::list(&dir)
                .into_iter()
                .filter(|n| n != "enable" && n != "filter")
                .collect()
        };
        assert_eq!(seen, listed, "{sub}: readdir vs dynamic_events");
        for i in 0..8 {
            let p = dir.join(format!("c{i}/format"));
            let reach = std::fs::read(&p).is_ok();
            assert_eq!(
                reach,
                listed.contains(&format!("c{i}")),
                "{}: reachable by path",
                p.display()
            );
        }
    }
}
