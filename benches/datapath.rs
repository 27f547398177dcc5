//! Records per second through `trace_marker` (also with a `hist:keys=common_pid` trigger) and
//! `inject`, and `trace_pipe`/`trace_pipe_raw` read throughput, for utracefs and — in the same
//! run — the kernel's tracefs (markers and reads; this kernel has no `inject` and no `hist`).
//! Each side works in an instance it creates and removes.
//!
//! `cargo bench --bench datapath [-- --secs S]`
//! Needs root (mounts the kernel tracefs on /tmp/ktr if it is not there).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

fn cpath(p: &Path) -> CString {
    CString::new(p.to_str().unwrap_or_default()).unwrap_or_default()
}

fn open(p: &Path, flags: i32) -> Res<i32> {
    // SAFETY: a valid C string; the fd is closed by the caller.
    let fd = unsafe { libc::open(cpath(p).as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(format!(
            "open {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        ))
    } else {
        Ok(fd)
    }
}

fn write_file(p: &Path, data: &str) -> Res<()> {
    std::fs::write(p, data).map_err(|e| format!("write {}: {e}", p.display()))
}

/// `threads` writers, each with its own fd on `file`, writing `msg` for `secs`: writes/s.
fn write_rate(file: &Path, msg: &[u8], threads: usize, secs: f64) -> Res<f64> {
    let fds: Vec<i32> = (0..threads)
        .map(|_| open(file, libc::O_WRONLY))
        .collect::<Res<_>>()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = fds
            .iter()
            .map(|&fd| {
                s.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        for _ in 0..64 {
                            // SAFETY: fd is open for the scope; msg outlives the call.
                            let r = unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
                            if r > 0 {
                                n += 1;
                            }
                        }
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let rate = total as f64 / start.elapsed().as_secs_f64();
    for fd in fds {
        // SAFETY: closing our own fds.
        unsafe { libc::close(fd) };
    }
    Ok(rate)
}

/// Drains `file` (non-blocking) with `bufsize` reads: (bytes/s, records read).
fn drain_rate(file: &Path, bufsize: usize) -> Res<(f64, u64, f64)> {
    let fd = open(file, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let mut buf = vec![0u8; bufsize];
    let (mut bytes, mut lines) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        // SAFETY: buf is valid for bufsize bytes.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break;
        }
        bytes += r as u64;
        lines += buf[..r as usize].iter().filter(|b| **b == b'\n').count() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    Ok((bytes as f64 / secs, lines, secs))
}

struct Daemon {
    child: Child,
    mnt: PathBuf,
}

impl Daemon {
    fn spawn() -> Res<Daemon> {
        // The daemon cargo built along with this bench (the release one under `cargo bench`).
        let bin = env!("CARGO_BIN_EXE_utracefs");
        let mnt = std::env::temp_dir().join(format!("utracefs-dpbench-{}", std::process::id()));
        std::fs::create_dir_all(&mnt).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg(&mnt)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        let d = Daemon { child, mnt };
        for _ in 0..200 {
            if d.mnt.join("trace_marker").exists() {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err("utracefs did not mount".into())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

/// An instance of a tracefs mounted at `root`, removed on drop.
struct Instance(PathBuf);

impl Instance {
    fn new(root: &Path) -> Res<Instance> {
        let p = root.join(format!("instances/dpbench-{}", std::process::id()));
        std::fs::create_dir(&p).map_err(|e| format!("mkdir {}: {e}", p.display()))?;
        Ok(Instance(p))
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn kernel_root() -> Res<PathBuf> {
    let root = PathBuf::from("/tmp/ktr");
    if !root.join("trace_marker").exists() {
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let ok = Command::new("mount")
            .args(["-t", "tracefs", "nodev"])
            .arg(&root)
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("mount -t tracefs failed".into());
        }
    }
    Ok(root)
}

/// One side's numbers.
struct Side {
    marker: Vec<f64>,
    /// Markers with a `hist:keys=common_pid` trigger on `ftrace:print` (empty without hist),
    /// measured between two plain runs (`marker` and `marker_after`) so warm-up and drift
    /// do not favour either.
    marker_hist: Vec<f64>,
    marker_after: Vec<f64>,
    inject: Vec<f64>,
    pipe: (f64, u64, f64),
    raw: (f64, u64, f64),
}

fn measure(inst: &Instance, threads: &[usize], secs: f64, inject: bool) -> Res<Side> {
    write_file(&inst.p("buffer_size_kb"), "8192")?;
    let msg = b"a 64-byte marker payload, like a short application log line...";
    let mut marker = Vec::new();
    for &t in threads {
        write_file(&inst.p("trace"), "")?;
        marker.push(write_rate(&inst.p("trace_marker"), msg, t, secs)?);
    }
    // The same with a histogram counting every marker (issue 13: at most 10 % slower).
    let mut marker_hist = Vec::new();
    let print_trigger = inst.p("events/ftrace/print/trigger");
    if inst.p("events/ftrace/print/hist").exists() {
        write_file(&print_trigger, "hist:keys=common_pid")?;
        for &t in threads {
            write_file(&inst.p("trace"), "")?;
            marker_hist.push(write_rate(&inst.p("trace_marker"), msg, t, secs)?);
        }
        write_file(&print_trigger, "!hist:keys=common_pid")?;
    }
    let mut marker_after = Vec::new();
    if !marker_hist.is_empty() {
        for &t in threads {
            write_file(&inst.p("trace"), "")?;
            marker_after.push(write_rate(&inst.p("trace_marker"), msg, t, secs)?);
        }
    }
    let mut inj = Vec::new();
    if inject {
        let rec = b"filename=\"/usr/bin/true\" pid=4242 old_pid=4242";
        for &t in threads {
            write_file(&inst.p("trace"), "")?;
            inj.push(write_rate(
                &inst.p("events/sched/sched_process_exec/inject"),
                rec,
                t,
                secs,
            )?);
        }
    }
    // Fill the buffer with markers, then drain it as text and as raw pages.
    write_file(&inst.p("trace"), "")?;
    write_rate(&inst.p("trace_marker"), msg, 1, secs.min(1.0))?;
    let pipe = drain_rate(&inst.p("trace_pipe"), 65536)?;
    write_file(&inst.p("trace"), "")?;
    write_rate(&inst.p("trace_marker"), msg, 1, secs.min(1.0))?;
    let ncpu = std::fs::read_dir(inst.p("per_cpu"))
        .map_err(|e| e.to_string())?
        .count();
    let mut raw = (0.0, 0, 0.0);
    for cpu in 0..ncpu {
        let (rate, _, s) = drain_rate(&inst.p(&format!("per_cpu/cpu{cpu}/trace_pipe_raw")), 4096)?;
        raw.0 += rate * s;
        raw.2 += s;
    }
    raw.0 /= raw.2.max(1e-9);
    Ok(Side {
        marker,
        marker_hist,
        marker_after,
        inject: inj,
        pipe,
        raw,
    })
}

fn main() {
    if let Err(e) = run() {
        eprintln!("datapath: {e}");
        std::process::exit(2);
    }
}

const USAGE: &str = "usage: cargo bench --bench datapath -- [--secs S]\n\
    Records per second through trace_marker (utracefs and a kernel instance; also with a \
    hist:keys=common_pid trigger where there is hist) and inject with \
    1, 2 and 4 writers, and trace_pipe/trace_pipe_raw drain throughput; S seconds per cell \
    (default 2). Needs root.";

fn run() -> Res<()> {
    let mut secs = 2.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => {
                secs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--secs needs a number")?
            }
            // `cargo bench` passes `--bench` to every bench binary; it selects nothing here.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    let threads = [1usize, 2, 4];
    let daemon = Daemon::spawn()?;
    let ours = {
        let inst = Instance::new(&daemon.mnt)?;
        measure(&inst, &threads, secs, true)?
    };
    drop(daemon);
    let kroot = kernel_root()?;
    let kernel = {
        let inst = Instance::new(&kroot)?;
        measure(&inst, &threads, secs, false)?
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("datapath bench: {secs} s per cell, load {}", load.trim());
    println!("| case | utracefs | kernel | ratio |\n|---|---|---|---|");
    for (i, t) in threads.iter().enumerate() {
        let (u, k) = (ours.marker[i], kernel.marker[i]);
        println!(
            "| trace_marker, {t} writer(s) | {:.0}/s | {:.0}/s | {:.3} |",
            u,
            k,
            u / k
        );
    }
    for (i, t) in threads.iter().enumerate() {
        let Some(u) = ours.marker_hist.get(i) else {
            continue;
        };
        let k = match kernel.marker_hist.get(i) {
            Some(k) => format!("{k:.0}/s"),
            None => "(no hist)".into(),
        };
        let plain = (ours.marker[i] + ours.marker_after[i]) / 2.0;
        println!(
            "| trace_marker + hist:keys=common_pid, {t} writer(s) | {u:.0}/s ({:.3} of plain \
             before/after: {:.0}/{:.0}) | {k} | |",
            u / plain,
            ours.marker[i],
            ours.marker_after[i]
        );
    }
    for (i, t) in threads.iter().enumerate() {
        println!(
            "| inject sched_process_exec, {t} writer(s) | {:.0}/s | (no inject) | |",
            ours.inject[i]
        );
    }
    let mib = |b: f64| b / (1 << 20) as f64;
    println!(
        "| trace_pipe drain | {:.1} MiB/s ({} lines) | {:.1} MiB/s ({} lines) | {:.3} |",
        mib(ours.pipe.0),
        ours.pipe.1,
        mib(kernel.pipe.0),
        kernel.pipe.1,
        ours.pipe.0 / kernel.pipe.0
    );
    println!(
        "| trace_pipe_raw drain | {:.1} MiB/s | {:.1} MiB/s | {:.3} |",
        mib(ours.raw.0),
        mib(kernel.raw.0),
        ours.raw.0 / kernel.raw.0
    );
    Ok(())
}
