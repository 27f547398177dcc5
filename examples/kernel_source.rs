//! Benchmark of `--kernel-source`: how many kernel records a second the daemon carries into
//! the clone, its CPU time per record, and how late records arrive.
//!
//! ```sh
//! cargo build --release && cargo run --release --example kernel_source -- --seconds 10
//! ```
//!
//! Starts the daemon (`--bin`, default `target/release/utracefs`) with `--kernel-source` on a
//! temporary directory, enables `--events` (default: sched_switch, sched_waking,
//! sched_process_fork, raw_syscalls:sys_enter) at the clone's top level, runs a fork/exec load
//! (`sh -c 'while :; do /bin/true; done'`, `--load N` of them) and drains every CPU's
//! `trace_pipe_raw` of the clone, decoding its pages. Reports records/s, the daemon's CPU
//! (utime+stime) per record, and the delay from a record's timestamp (CLOCK_MONOTONIC) to the
//! moment its page was read (p50/p99/max). Needs root.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Args {
    bin: PathBuf,
    seconds: u64,
    load: usize,
    events: Vec<String>,
}

fn usage(code: i32) -> ! {
    let text = "usage: kernel_source [--bin PATH] [--seconds S] [--load N] [--events sys:ev,...]\n\
         Measures records/s carried by --kernel-source, daemon CPU per record and delay.";
    if code == 0 {
        println!("{text}");
    } else {
        eprintln!("{text}");
    }
    std::process::exit(code)
}

fn args() -> Args {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut a = Args {
        bin: PathBuf::from(target).join("release/utracefs"),
        seconds: 10,
        load: 2,
        events: [
            "sched:sched_switch",
            "sched:sched_waking",
            "sched:sched_process_fork",
            "raw_syscalls:sys_enter",
        ]
        .map(String::from)
        .to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage(2));
        match k.as_str() {
            "--bin" => a.bin = v().into(),
            "--seconds" => a.seconds = v().parse().unwrap_or_else(|_| usage(2)),
            "--load" => a.load = v().parse().unwrap_or_else(|_| usage(2)),
            "--events" => a.events = v().split(',').map(String::from).collect(),
            "--bench" => {}
            "--help" | "-h" => usage(0),
            _ => usage(2),
        }
    }
    a
}

/// utime + stime of `pid`, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000_000 / hz.max(1)
}

fn main() {
    let a = args();
    let dir = std::env::temp_dir().join(format!("utracefs-ksbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = std::env::temp_dir().join(format!("utracefs-ksbench-{}.sock", std::process::id()));
    // No waiting workers (--spin-us): their CPU time would count as the records'.
    let mut daemon = Command::new(&a.bin)
        .arg("--kernel-source")
        .args(["--spin-us", "0"])
        .arg("--stats")
        .arg(&sock)
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", a.bin.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .contains(&format!(" {} fuse.tracefs ", dir.display()))
    {
        assert!(Instant::now() < deadline, "the daemon did not mount");
        std::thread::sleep(Duration::from_millis(20));
    }
    let ncpu = utracefs::ncpu();
    std::fs::write(dir.join("buffer_size_kb"), "16384").unwrap();
    std::fs::write(dir.join("set_event"), a.events.join("\n")).unwrap();
    // Start from empty rings.
    std::fs::write(dir.join("trace"), "").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..ncpu)
        .map(|c| {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(dir.join(format!("per_cpu/cpu{c}/trace_pipe_raw")))
                    .unwrap();
                let (mut page, mut delays, mut n) = (vec![0u8; 4096], Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    match f.read(&mut page) {
                        Ok(len) if len > 0 => {
                            let now = utracefs::trace::state::mono_now_ns();
                            let recs =
                                utracefs::trace::ringbuf::decode_page(&page).unwrap_or_default();
                            n += recs.len() as u64;
                            delays.extend(recs.iter().map(|(ts, _)| now.saturating_sub(*ts)));
                        }
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                (n, delays)
            })
        })
        .collect();

    let cpu0 = cpu_ns(daemon.id());
    let t0 = Instant::now();
    let mut load: Vec<_> = (0..a.load)
        .map(|_| {
            Command::new("sh")
                .args(["-c", "while :; do /bin/true; done"])
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(a.seconds));
    for l in &mut load {
        let _ = l.kill();
        let _ = l.wait();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_ns(daemon.id()) - cpu0;
    // What was made before the load stopped still comes in.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (mut n, mut delays) = (0u64, Vec::new());
    for r in readers {
        let (k, d) = r.join().unwrap();
        n += k;
        delays.extend(d);
    }
    let entries: Vec<String> = (0..ncpu)
        .map(|c| std::fs::read_to_string(dir.join(format!("per_cpu/cpu{c}/stats"))).unwrap())
        .collect();
    let overrun: u64 = entries
        .iter()
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("overrun: ")?.parse::<u64>().ok())
        })
        .sum();
    let mut stats = String::new();
    if let Ok(mut c) = std::os::unix::net::UnixStream::connect(&sock) {
        let _ = c.read_to_string(&mut stats);
    }
    let stat = |k: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (carried, kernel_lost) = (stat("kernel_records "), stat("kernel_lost "));
    let _ = std::fs::write(dir.join("set_event"), "");
    // SAFETY: signals our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_file(&sock);

    delays.sort_unstable();
    let pct = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |d| *d as f64 / 1e6)
    };
    println!("events: {}", a.events.join(" "));
    println!(
        "load: {} fork/exec loops for {secs:.1} s, {ncpu} CPUs",
        a.load
    );
    println!(
        "records carried: {carried} ({:.0}/s), lost by the kernel: {kernel_lost}; \
         read here: {n}, overrun in the clone: {}",
        carried as f64 / secs,
        overrun.saturating_sub(kernel_lost)
    );
    println!(
        "daemon CPU: {:.2} s ({:.1} % of one CPU), {:.2} µs per record (includes serving trace_pipe_raw)",
        cpu as f64 / 1e9,
        cpu as f64 / 1e9 / secs * 100.0,
        cpu as f64 / 1e3 / carried.max(1) as f64
    );
    println!(
        "delay (record timestamp to page read): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
