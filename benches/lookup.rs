//! Lookup benchmark for utracefs: stat / missing-name stat / open+read+close / readdir load,
//! whole-tree walks and daemon memory, measured against the kernel tracefs in the same run (the
//! method of /work/shared/reference/perf-anchors.md). `--help` for options. Exit status: 0 = ok,
//! 1 = anomalies seen (listed at the end of the report), 2 = could not run.

use std::ffi::{CStr, CString, OsStr};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

type Res<T> = Result<T, String>;

const USAGE: &str =
    "usage: cargo bench --bench lookup -- [--kernel] [--target NAME=PATH]... [--spawn [BIN]]
    [--daemon-args 'ARGS'] [--threads 1,2,8] [--seconds 1.5] [--warmup 0.3]
    [--cases existing,missing,read,readdir] [--walks | --no-walks] [--repeat 3]
  --kernel       add target ktr=/tmp/ktr (mounting the kernel tracefs there if needed)
  --target N=P   add a tracefs root P (kernel or clone) named N
  --spawn [BIN]  run BIN (default: the utracefs binary cargo built with this bench) with
                 --stats SOCKET on a fresh temp dir as target `utracefs`; report its memory;
                 SIGTERM it at the end
  --daemon-args  extra daemon arguments, e.g. '--threads 2 --catalog PATH'
  --repeat N     run each walk N times (cold and warm), report the fastest
  no target option at all means --kernel, plus --spawn if the default binary exists
Cases: existing = stat of events/<sys>/<ev>/{format,id,enable,filter} (64 events spread over all
subsystems), missing = stat of events/<sys>/does_not_exist_N (64), read = open+read+close of the
64 events' format, readdir = opendir+readdir+closedir of events/ and of events/sched.";
const KTR: &str = "/tmp/ktr";
const NPATHS: usize = 64;
const CASES: [(&str, Kind, &str); 5] = [
    ("existing", Kind::Stat, "stat existing"),
    ("missing", Kind::Missing, "stat missing"),
    ("read", Kind::Read, "open+read+close format"),
    ("readdir", Kind::Readdir, "readdir events/"),
    ("readdir", Kind::Readdir, "readdir events/sched"),
];
/// The targets of issue 11 (ratios to the kernel): ops/s at 1 thread must reach at least,
/// wall time of a walk at most, the given ratio. Rows without a target are reported only.
const TARGETS: [(&str, &str, f64); 9] = [
    ("readdir events/", "≥", 0.8),
    ("readdir events/sched", "≥", 0.8),
    ("`ls -lR events >/dev/null` warm", "≤", 1.3),
    ("`ls -lR events >/dev/null` cold", "≤", 3.0),
    ("`find events | wc -l` warm", "≤", 1.3),
    ("`cat events/*/*/id | wc -l` warm", "≤", 3.0),
    ("open+read+close format", "≥", 0.15),
    ("stat existing", "≥", 0.8),
    ("stat missing", "≥", 0.11),
];
const WALKS: [&str; 3] = [
    "ls -lR events >/dev/null",
    "find events | wc -l",
    "cat events/*/*/id | wc -l",
];

struct Opts {
    targets: Vec<(String, PathBuf)>,
    kernel: bool,
    spawn: Option<PathBuf>,
    daemon_args: Vec<String>,
    threads: Vec<usize>,
    seconds: f64,
    warmup: f64,
    cases: Vec<String>,
    walks: bool,
    repeat: usize,
}

/// The daemon cargo built along with this bench (the release one under `cargo bench`).
fn default_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_utracefs"))
}

fn parse_args(args: &[String]) -> Res<Opts> {
    let mut o = Opts {
        targets: vec![],
        kernel: false,
        spawn: None,
        daemon_args: vec![],
        threads: vec![1, 2, 8],
        seconds: 1.5,
        warmup: 0.3,
        cases: CASES.iter().map(|c| c.0.to_string()).collect(),
        walks: true,
        repeat: 3,
    };
    let mut it = args.iter().filter(|a| *a != "--bench").peekable();
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if key == "--spawn" {
            let next = it.next_if(|n| inline.is_none() && !n.starts_with('-'));
            let bin = inline.or(next.cloned()).map(PathBuf::from);
            o.spawn = Some(bin.unwrap_or_else(default_bin));
            continue;
        }
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        let mut value = || value().ok_or(format!("{key} needs a value"));
        let bad = |v: &str| format!("{key}: bad value {v:?}");
        let secs = |v: String| v.parse().ok().filter(|x: &f64| *x >= 0.0).ok_or(bad(&v));
        match key {
            "--kernel" => o.kernel = true,
            "--walks" => o.walks = true,
            "--repeat" => o.repeat = value()?.parse().ok().filter(|n| *n > 0).ok_or(bad(key))?,
            "--no-walks" => o.walks = false,
            "--seconds" => o.seconds = secs(value()?)?,
            "--warmup" => o.warmup = secs(value()?)?,
            "--cases" => o.cases = value()?.split(',').map(String::from).collect(),
            "--daemon-args" => o.daemon_args = value()?.split(' ').map(String::from).collect(),
            "--threads" => {
                let v = value()?;
                let t: Option<Vec<usize>> = v.split(',').map(|t| t.parse().ok()).collect();
                o.threads = t.filter(|t| !t.contains(&0)).ok_or(bad(&v))?;
            }
            "--target" => {
                let v = value()?;
                let (n, p) = v.split_once('=').ok_or(bad(&v))?;
                o.targets.push((n.to_string(), PathBuf::from(p)));
            }
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    o.daemon_args.retain(|a| !a.is_empty());
    if let Some(c) = o.cases.iter().find(|c| !CASES.iter().any(|k| k.0 == *c)) {
        return Err(format!("--cases: unknown case {c:?}"));
    }
    if o.targets.is_empty() && !o.kernel && o.spawn.is_none() {
        o.kernel = true;
        o.spawn = Some(default_bin()).filter(|b| b.is_file());
    }
    Ok(o)
}

/// HDR-like latency histogram in ns: 64 linear sub-buckets per power of two (≈1.6 % wide).
struct Hist(Vec<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(vec![0; 64 * 59])
    }
}

impl Hist {
    fn add(&mut self, ns: u64) {
        let shift = 57u32.saturating_sub(ns.leading_zeros()); // msb - 6
        self.0[((shift << 6) as u64 + (ns >> shift)) as usize] += 1;
    }
    fn merge(&mut self, o: &Hist) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a += b);
    }
    /// Midpoint of the bucket that holds quantile `q`, in ns.
    fn quantile(&self, q: f64) -> f64 {
        let want = ((q * self.0.iter().sum::<u64>() as f64).ceil() as u64).max(1);
        let (mut seen, mut i) = (0, 0);
        while i < self.0.len() && seen + self.0[i] < want {
            seen += self.0[i];
            i += 1;
        }
        let s = (i >> 6).saturating_sub(1);
        let mid = ((i - (s << 6)) << s) as f64 + (1u64 << s) as f64 / 2.0;
        if i < self.0.len() { mid } else { f64::NAN }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Stat,
    Missing,
    Read,
    Readdir,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// One operation: Ok(0 for stat, bytes read, entries listed) or Err(errno).
fn op(kind: Kind, path: &CStr, buf: &mut [u8]) -> Result<usize, i32> {
    match kind {
        Kind::Stat | Kind::Missing => {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: NUL-terminated path and a stat buffer we own.
            let rc = unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) };
            if rc == 0 { Ok(0) } else { Err(errno()) }
        }
        Kind::Read => {
            let err = |e: std::io::Error| e.raw_os_error().unwrap_or(0);
            let mut f = fs::File::open(OsStr::from_bytes(path.to_bytes())).map_err(err)?;
            let mut total = 0;
            loop {
                match f.read(buf).map_err(err)? {
                    0 => return Ok(total),
                    n => total += n,
                }
            }
        }
        // libc rather than fs::read_dir, which allocates per entry.
        // SAFETY: NUL-terminated path; the DIR handle is closed before returning.
        Kind::Readdir => unsafe {
            let d = libc::opendir(path.as_ptr());
            if d.is_null() {
                return Err(errno());
            }
            let mut n = 0;
            *libc::__errno_location() = 0;
            while !libc::readdir(d).is_null() {
                n += 1;
            }
            let e = errno();
            libc::closedir(d);
            if e != 0 { Err(e) } else { Ok(n) }
        },
    }
}

/// Existing names must succeed (reads and listings non-empty); missing ones fail with ENOENT.
fn expected(kind: Kind, r: Result<usize, i32>) -> bool {
    match (kind, r) {
        (Kind::Missing, r) => r == Err(libc::ENOENT),
        (Kind::Stat, r) => r.is_ok(),
        (Kind::Read, Ok(n)) => n > 0,
        (Kind::Readdir, Ok(n)) => n > 2,
        _ => false,
    }
}

#[derive(Default)]
struct Cell {
    ops: u64,
    secs: f64,
    hist: Hist,
    bad: u64,
    examples: Vec<String>, // up to 5 distinct unexpected outcomes per thread
}

/// T threads loop over `paths`, each from its own offset: warm-up, then the timed window.
fn run_cell(kind: Kind, paths: &[CString], t: usize, warmup: f64, secs: f64) -> Res<Cell> {
    let phase = AtomicU8::new(0); // 0 warm-up, 1 measure, 2 stop
    let barrier = Barrier::new(t + 1);
    let worker = |mut i: usize| {
        let (mut c, mut buf) = (Cell::default(), vec![0u8; 64 << 10]);
        barrier.wait();
        loop {
            let ph = phase.load(Relaxed);
            if ph == 2 {
                return c;
            }
            let t0 = Instant::now();
            let r = op(kind, &paths[i], &mut buf);
            let ns = t0.elapsed().as_nanos() as u64;
            if ph == 1 {
                c.hist.add(ns);
                c.ops += 1;
            }
            if !expected(kind, r) {
                c.bad += 1;
                let err = |e| std::io::Error::from_raw_os_error(e).to_string();
                let got = r.map_or_else(err, |n| format!("ok ({n})"));
                let ex = format!("{}: {got}", paths[i].to_string_lossy());
                if c.examples.len() < 5 && !c.examples.contains(&ex) {
                    c.examples.push(ex);
                }
            }
            i = (i + 1) % paths.len();
        }
    };
    thread::scope(|s| {
        let spawn = |k| s.spawn(move || worker(k * paths.len() / t));
        let workers: Vec<_> = (0..t).map(spawn).collect();
        barrier.wait();
        thread::sleep(Duration::from_secs_f64(warmup));
        phase.store(1, Relaxed);
        let t0 = Instant::now();
        thread::sleep(Duration::from_secs_f64(secs));
        phase.store(2, Relaxed);
        let (secs, mut sum) = (t0.elapsed().as_secs_f64(), Cell::default());
        for w in workers {
            let c = w.join().map_err(|_| "a worker thread panicked")?;
            (sum.ops, sum.bad) = (sum.ops + c.ops, sum.bad + c.bad);
            sum.hist.merge(&c.hist);
            sum.examples.extend(c.examples);
        }
        sum.examples.sort();
        sum.examples.dedup();
        sum.examples.truncate(5);
        Ok(Cell { secs, ..sum })
    })
}

fn list(dir: &Path, dirs_only: bool) -> Res<Vec<String>> {
    let ctx = |e: std::io::Error| format!("cannot list {}: {e}", dir.display());
    let mut names = vec![];
    for e in fs::read_dir(dir).map_err(ctx)? {
        let e = e.map_err(ctx)?;
        if !dirs_only || e.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default() // paths never contain NUL
}

/// The path list of each case in CASES, built from the target's own `events/`.
fn path_lists(root: &Path) -> Res<Vec<Vec<CString>>> {
    let ev = root.join("events");
    let mut systems = vec![];
    for s in list(&ev, true)? {
        let events = list(&ev.join(&s), true)?;
        systems.push((s, events));
    }
    let full: Vec<_> = systems.iter().filter(|(_, e)| !e.is_empty()).collect();
    if full.is_empty() {
        return Err(format!("{} has no events", ev.display()));
    }
    let (mut l, mut picks) = (vec![vec![]; CASES.len()], vec![0; full.len()]);
    for i in 0..NPATHS {
        // 64 events spread evenly over the subsystems; the k-th pick of one takes its k-th event.
        let s = i * full.len() / NPATHS;
        let (sys, events) = full[s];
        let dir = ev.join(sys).join(&events[picks[s] % events.len()]);
        picks[s] += 1;
        let files = list(&dir, false)?;
        for f in ["format", "id", "enable", "filter"] {
            if files.iter().any(|x| x == f) {
                l[0].push(cpath(&dir.join(f)));
                l[2].extend((f == "format").then(|| cpath(&dir.join(f))));
            }
        }
        let sys = &systems[i * systems.len() / NPATHS].0;
        l[1].push(cpath(&ev.join(sys).join(format!("does_not_exist_{i}"))));
    }
    l[3].push(cpath(&ev));
    let sched = ev.join("sched");
    l[4].extend(sched.is_dir().then(|| cpath(&sched)));
    Ok(l)
}

/// fs type of the topmost mount at `mnt`, from /proc/self/mountinfo.
fn mount_fstype(mnt: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mnt.to_string_lossy().replace(' ', "\\040");
    let fstype = |l: &str| Some(l.split(" - ").nth(1)?.split(' ').next()?.to_string());
    let mut mounts = info.lines().filter(|l| l.split(' ').nth(4) == Some(&want));
    mounts.next_back().and_then(fstype)
}

fn drop_caches() -> bool {
    fs::write("/proc/sys/vm/drop_caches", "2").is_ok()
}

/// Runs `sh -c cmd` in `dir`: (wall ms, trimmed stdout); an error if it fails or writes to stderr.
fn shell(dir: &Path, cmd: &str) -> Res<(f64, String)> {
    let mut sh = Command::new("sh");
    sh.args(["-c", cmd]).current_dir(dir).stdin(Stdio::null());
    let t0 = Instant::now();
    let out = sh.output().map_err(|e| format!("cannot run sh: {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !err.is_empty() {
        let (st, d) = (out.status, dir.display());
        let err = err.lines().take(3).collect::<Vec<_>>().join(" | ");
        return Err(format!("`{cmd}` in {d}: {st}: {err}"));
    }
    Ok((ms, String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// A daemon we started on `dir`/mnt; stopped (and unmounted if need be) on drop.
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn spawn(bin: &Path, extra: &[String]) -> Res<Daemon> {
        let b = bin.display();
        if !bin.is_file() {
            let hint = "build it with `cargo build --release`, or pass --spawn PATH";
            return Err(format!("utracefs binary not found at {b} ({hint})"));
        }
        let dir = env::temp_dir().join(format!("lookup_bench.{}", std::process::id()));
        let (mnt, log) = (dir.join("mnt"), dir.join("daemon.log"));
        fs::create_dir_all(&mnt).map_err(|e| format!("mkdir {}: {e}", mnt.display()))?;
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("dup: {e}"))?;
        let mut cmd = Command::new(bin);
        cmd.args(extra).arg("--stats").arg(dir.join("stats.sock"));
        let child = cmd
            .arg(&mnt)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        let child = child.map_err(|e| format!("cannot start {b}: {e}"))?;
        let mut d = Daemon { child, dir };
        let (t0, m) = (Instant::now(), mnt.display());
        while t0.elapsed() < Duration::from_secs(10) {
            if let Some(t) = mount_fstype(&mnt) {
                if t != "fuse.tracefs" {
                    println!("> warning: {m} has fs type {t}, not fuse.tracefs\n");
                }
                return Ok(d);
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("{b} exited ({st}) before mounting{}", d.log()));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err(format!("{m} not mounted after 10 s{}", d.log()))
    }

    fn mnt(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    fn log(&self) -> String {
        let path = self.dir.join("daemon.log");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        format!("; daemon output ends with:\n{tail}")
    }

    /// [VmRSS KiB, threads, stats `nodes`] now.
    fn mem(&self) -> [String; 3] {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        let status = status.unwrap_or_default();
        let value = |l: &str, k: &str| Some(l.strip_prefix(k)?.trim().to_string());
        let field = |k: &str| status.lines().find_map(|l| value(l, k));
        let rss = field("VmRSS:").map(|v| v.trim_end_matches(" kB").to_string());
        let na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
        [na(rss), na(field("Threads:")), na(self.stat("nodes"))]
    }

    /// One value from the stats socket (`key value` lines, then EOF).
    fn stat(&self, key: &str) -> Option<String> {
        let mut s = UnixStream::connect(self.dir.join("stats.sock")).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let value = |l: &str| Some(l.strip_prefix(key)?.strip_prefix(' ')?.trim().to_string());
        text.lines().find_map(value)
    }

    /// SIGTERM and wait up to `wait`: Ok if it exited 0 and unmounted.
    fn stop(&mut self, wait: Duration) -> Res<()> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Err(format!("the daemon had exited ({st}){}", self.log()));
        }
        // SAFETY: signals the child we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        let st = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if t0.elapsed() < wait => thread::sleep(Duration::from_millis(20)),
                _ => return Err(format!("daemon still running {wait:?} after SIGTERM")),
            }
        };
        match mount_fstype(&self.mnt()) {
            Some(t) => Err(format!("daemon exited ({st}) but left {t} mounted")),
            None if !st.success() => Err(format!("on SIGTERM: {st}{}", self.log())),
            None => Ok(()),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && self.stop(Duration::from_secs(5)).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if mount_fstype(&self.mnt()).is_some() {
            // SAFETY: detaches our own temporary mount point.
            unsafe { libc::umount2(cpath(&self.mnt()).as_ptr(), libc::MNT_DETACH) };
        }
        for f in ["stats.sock", "daemon.log"] {
            let _ = fs::remove_file(self.dir.join(f));
        }
        let _ = fs::remove_dir(self.mnt()); // fails unless unmounted and empty
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Three significant digits (`n/a` for NaN), with k/M suffixes when `si`.
fn num(x: f64, si: bool) -> String {
    let (x, unit) = match x {
        x if si && x >= 1e6 => (x / 1e6, "M"),
        x if si && x >= 1e3 => (x / 1e3, "k"),
        x => (x, ""),
    };
    let digits = (2.0 - x.abs().log10().floor()).clamp(0.0, 5.0) as usize;
    let s = format!("{x:.digits$}{unit}");
    if x.is_finite() { s } else { "n/a".into() }
}

fn quote(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=.,/:@+".contains(c);
    let plain = !a.is_empty() && a.chars().all(plain);
    if plain {
        a.into()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => {
            eprintln!("lookup: {n} anomalies (listed at the end of the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("lookup: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Res<usize> {
    let args: Vec<String> = env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(0);
    }
    // `cargo bench` passes `--bench` to every bench binary; it selects nothing here.
    let o = parse_args(&args[1..])?;
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let (cpuinfo, kernel) = (read("/proc/cpuinfo"), read("/proc/sys/kernel/osrelease"));
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name\t: "));
    let cmdline: Vec<_> = args.iter().map(|a| quote(a)).collect();
    let nproc = thread::available_parallelism().map_or(0, |n| n.get());
    let (t, s, w, cpu) = (&o.threads, o.seconds, o.warmup, cpu.unwrap_or("?"));
    println!("# lookup bench\n\n`{}`\n", cmdline.join(" "));
    let load = read("/proc/loadavg");
    let load = load.split(' ').take(3).collect::<Vec<_>>().join(" ");
    println!(
        "nproc {nproc} · uname -r {} · {cpu} · loadavg {load}",
        kernel.trim()
    );
    println!("threads {t:?}, {s} s after {w} s warm-up per cell\n");

    let mut targets = o.targets.clone();
    if o.kernel {
        if mount_fstype(Path::new(KTR)).as_deref() != Some("tracefs") {
            fs::create_dir_all(KTR).map_err(|e| format!("mkdir {KTR}: {e}"))?;
            let st = Command::new("mount")
                .args(["-t", "tracefs", "nodev", KTR])
                .status();
            if !st.is_ok_and(|s| s.success()) {
                return Err(format!("cannot mount tracefs on {KTR}"));
            }
        }
        targets.insert(0, ("ktr".into(), PathBuf::from(KTR)));
    }
    let mut anomalies: Vec<String> = vec![];
    // (row, target name, ratio to the kernel) for the summary against TARGETS.
    let mut ratios: Vec<(String, String, f64)> = vec![];
    let mut daemon = None;
    let mut mem = vec![];
    if let Some(bin) = &o.spawn {
        let d = daemon.insert(Daemon::spawn(bin, &o.daemon_args)?);
        let (b, m, pid) = (bin.display(), d.mnt(), d.child.id());
        println!("spawned `{b} {}` (pid {pid})\n", m.display());
        targets.push(("utracefs".into(), m.clone()));
        mem.push(("right after mount (nothing looked up)", d.mem()));
        if let Err(e) = shell(&m, "ls -lR . >/dev/null") {
            anomalies.push(format!("memory walk: {e}"));
        }
        mem.push(("after `ls -lR` of the whole mount", d.mem()));
        if drop_caches() {
            thread::sleep(Duration::from_secs(1));
            mem.push(("after drop_caches + 1 s (FORGETs)", d.mem()));
        }
    }
    if targets.is_empty() {
        return Err(format!("no targets\n{USAGE}"));
    }
    // Ratios are to the first kernel tracefs target, moved to the front (its rates come first).
    let is_kernel = |t: &(String, PathBuf)| mount_fstype(&t.1).as_deref() == Some("tracefs");
    let has_ref = targets.iter().position(is_kernel).map(|k| {
        let t = targets.remove(k);
        targets.insert(0, t);
    });
    let (has_ref, rname) = (has_ref.is_some(), targets[0].0.clone());
    let mut lists = vec![];
    for (name, root) in &targets {
        let l = path_lists(root).map_err(|e| format!("target {name}: {e}"))?;
        let sizes: Vec<_> = l.iter().map(|l| l.len().to_string()).collect();
        let (r, sizes) = (root.display(), sizes.join("/"));
        let fstype = mount_fstype(root).unwrap_or("not a mount point".into());
        println!("- `{name}` = {r} ({fstype}), paths per case: {sizes}");
        lists.push(l);
    }

    for (ci, (key, kind, title)) in CASES.into_iter().enumerate() {
        if !o.cases.iter().any(|c| c == key) || lists.iter().any(|l| l[ci].is_empty()) {
            continue;
        }
        let mut head = String::from("| T |");
        for (i, (name, _)) in targets.iter().enumerate() {
            head += &format!(" {name} ops/s | p50 µs | p99 µs |");
            if has_ref && i > 0 {
                head += " ×REF |";
            }
        }
        let rule = "---|".repeat(head.matches('|').count() - 1);
        println!("\n## {title}\n\n{}\n|{rule}", head.replace("REF", &rname));
        for &t in &o.threads {
            let (mut row, mut ref_rate) = (format!("| {t} |"), f64::NAN);
            for (i, (name, _)) in targets.iter().enumerate() {
                if let Some(Ok(Some(st))) = daemon.as_mut().map(|d| d.child.try_wait()) {
                    let so_far = anomalies.join("\n- ");
                    return Err(format!("daemon died ({st}); anomalies so far:\n- {so_far}"));
                }
                let c = run_cell(kind, &lists[i][ci], t, o.warmup, o.seconds)?;
                let rate = c.ops as f64 / c.secs;
                let (p50, p99) = (c.hist.quantile(0.5) / 1e3, c.hist.quantile(0.99) / 1e3);
                let warn = if c.bad > 0 { " ⚠" } else { "" };
                let (r, p50, p99) = (num(rate, true), num(p50, false), num(p99, false));
                row += &format!(" {r}{warn} | {p50} | {p99} |");
                if i == 0 {
                    ref_rate = rate;
                } else if has_ref {
                    row += &format!(" {} |", num(rate / ref_rate, false));
                    if t == 1 {
                        ratios.push((title.to_string(), name.clone(), rate / ref_rate));
                    }
                }
                for ex in &c.examples {
                    let bad = c.bad;
                    anomalies.push(format!("{title}, T={t}, {name}: {ex} ({bad} unexpected)"));
                }
            }
            println!("{row}");
        }
    }

    if o.walks {
        let cold = drop_caches();
        println!("\n## Whole-tree walks (wall ms, from the target root)\n");
        println!("| walk | target | cold ms | ×{rname} | warm ms | ×{rname} | stdout |");
        println!("|---|---|---|---|---|---|---|");
        for cmd in WALKS {
            let (mut refs, mut ref_out) = ([f64::NAN; 2], String::new());
            for (i, (name, root)) in targets.iter().enumerate() {
                let (mut ms, mut out) = ([f64::NAN; 2], String::new());
                // The best of --repeat runs: a shared machine only ever slows a walk down.
                'runs: for _ in 0..o.repeat {
                    for k in [0, 1] {
                        if k == 0 && !(cold && drop_caches()) {
                            continue; // cold = right after drop_caches, warm = right after cold
                        }
                        match shell(root, cmd) {
                            Ok((t, s)) => (ms[k], out) = (ms[k].min(t), s),
                            Err(e) => {
                                anomalies.push(format!("walk {e}"));
                                break 'runs;
                            }
                        }
                    }
                }
                if i == 0 && has_ref {
                    (refs, ref_out) = (ms, out.clone());
                } else if has_ref && out != ref_out {
                    out += &format!(" (≠ {rname})");
                }
                if i > 0 && has_ref {
                    for (k, temp) in [(0, "cold"), (1, "warm")] {
                        let row = format!("`{cmd}` {temp}");
                        ratios.push((row, name.clone(), ms[k] / refs[k]));
                    }
                }
                let [c, w] = ms.map(|v| num(v, false));
                let [xc, xw] = [0, 1].map(|k| num(ms[k] / refs[k], false));
                let cmd = cmd.replace('|', "\\|");
                println!("| `{cmd}` | {name} | {c} | {xc} | {w} | {xw} | {out} |");
            }
        }
        if !cold {
            println!("\n(no cold walks: cannot write /proc/sys/vm/drop_caches)");
        }
    }

    if !ratios.is_empty() {
        println!("\n## Against the targets (×{rname}; rates at 1 thread, walks in wall time)\n");
        println!("| row | target | ×{rname} | goal | met |\n|---|---|---|---|---|");
        for (row, name, x) in &ratios {
            let goal = TARGETS.iter().find(|t| t.0 == row);
            let (goal, met) = match goal {
                Some((_, "≥", g)) => (format!("≥ {g}"), if *x >= *g { "yes" } else { "no" }),
                Some((_, _, g)) => (format!("≤ {g}"), if *x <= *g { "yes" } else { "no" }),
                None => ("-".into(), ""),
            };
            let (row, x) = (row.replace('|', "\\|"), num(*x, false));
            println!("| {row} | {name} | {x} | {goal} | {met} |");
        }
    }

    if let Some(mut d) = daemon.take() {
        mem.push(("after the benchmarks", d.mem()));
        println!("\n## Daemon memory (pid {})\n", d.child.id());
        println!("| point | VmRSS KiB | threads | nodes |\n|---|---|---|---|");
        for (label, [rss, thr, nodes]) in &mem {
            println!("| {label} | {rss} | {thr} | {nodes} |");
        }
        match d.stop(Duration::from_secs(10)) {
            Ok(()) => println!("\ndaemon stopped by SIGTERM: exit 0, unmounted"),
            Err(e) => anomalies.push(format!("shutdown: {e}")),
        }
    }
    if !anomalies.is_empty() {
        println!("\n## Anomalies\n\n- {}", anomalies.join("\n- "));
    }
    Ok(anomalies.len())
}
