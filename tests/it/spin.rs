//! Workers that wait for the next request on an awake CPU (`--spin-us`, on by default for
//! root): they do take requests, never keep SCHED_IDLE or a pinned CPU once requests stop,
//! and never leave a request waiting when every CPU is busy with other work.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::Mount;

/// Each thread of `pid` named `fuser-*`: (tid, scheduling policy, allowed CPUs as text).
fn workers(pid: u32) -> Vec<(i32, i32, String)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if !comm.starts_with("fuser-") {
            continue;
        }
        let tid: i32 = task.file_name().unwrap().to_str().unwrap().parse().unwrap();
        // SAFETY: sched_getscheduler only reads.
        let policy = unsafe { libc::sched_getscheduler(tid) };
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push((tid, policy, cpus));
    }
    out
}

fn miss(root: &Path, i: usize) {
    let p = root.join(format!("events/sched/does_not_exist_{}", i % 64));
    assert_eq!(
        std::fs::metadata(&p).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
}

fn allowed_cpus_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn waiting_workers_take_requests_then_give_their_cpu_back() {
    let m = Mount::new(&[]);
    let stats = m.stats();
    let slots = stats["spin_slots"] as usize;
    assert_eq!(
        slots,
        utracefs::ncpu(),
        "root's daemon waits on every CPU by default"
    );
    let root = m.path();
    for i in 0..3000 {
        miss(&root, i);
    }
    let stats = m.stats();
    assert!(
        stats["spin_waits"] > 0 && stats["spin_takes"] > 0,
        "{stats:?}"
    );
    assert!(workers(m.pid()).len() >= slots, "a worker for every slot");
    // Requests stopped: within the window (and the rescuer's 2 ms for a worker that saw a
    // request another worker took), every worker is back to SCHED_OTHER on every CPU.
    let all = allowed_cpus_of(m.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = workers(m.pid());
        if w.iter()
            .all(|(_, p, c)| *p == libc::SCHED_OTHER && *c == all)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers stayed {w:?} (all CPUs: {all})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn spin_us_0_never_waits() {
    let m = Mount::new(&["--spin-us", "0"]);
    let root = m.path();
    for i in 0..500 {
        miss(&root, i);
    }
    let stats = m.stats();
    assert_eq!(
        (stats["spin_slots"], stats["spin_waits"]),
        (0, 0),
        "{stats:?}"
    );
    assert!(
        workers(m.pid())
            .iter()
            .all(|(_, p, _)| *p == libc::SCHED_OTHER)
    );
}

/// Every CPU busy with normal work: a worker waiting at SCHED_IDLE, or one that kept it into a
/// request, gets almost no CPU (without the rescuer the slowest request here took ~270 ms);
/// the rescuer must give them their priority back, so that every request is answered all the
/// same (~8 ms for the slowest).
#[test]
fn requests_are_answered_while_every_cpu_is_busy() {
    let m = Mount::new(&[]);
    let root = m.path();
    let format = root.join("events/sched/sched_switch/format");
    let stop = Arc::new(AtomicBool::new(false));
    let mut slowest = Duration::ZERO;
    // Workers are waiting on their CPUs when the load starts.
    for i in 0..2000 {
        miss(&root, i);
    }
    let busy: Vec<_> = (0..utracefs::ncpu())
        .map(|cpu| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // SAFETY: pins this thread to one CPU; a zeroed set is empty.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut set);
                    libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set);
                }
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    for i in 0..3000 {
        let t = Instant::now();
        if i % 3 == 0 {
            assert!(
                std::fs::read_to_string(&format)
                    .unwrap()
                    .starts_with("name: sched_switch")
            );
        } else {
            miss(&root, i);
        }
        slowest = slowest.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    busy.into_iter().for_each(|t| t.join().unwrap());
    let rescues = m.stats()["spin_rescues"];
    assert!(
        slowest < Duration::from_millis(100),
        "a request took {slowest:?} ({rescues} rescues)"
    );
}
