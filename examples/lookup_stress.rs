//! Lookup/readdir/churn stress test for any tracefs root (utracefs or the kernel's).
//!
//! Usage: `lookup_stress --target PATH [--threads N] [--seconds S] [--block-ms MS]
//! [--churn] [--instances] [--drop-caches]`.
//! Exit status: 0 clean run, 1 anomalies found, 2 usage or setup error.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Set by SIGINT/SIGTERM so every loop winds down and cleanup still runs.
static STOP: AtomicBool = AtomicBool::new(false);
/// Subsystems whose contents may legitimately change under us.
const DYNAMIC_SYSTEMS: &[&str] = &["synthetic", "kprobes", "uprobes", "eprobes", "user_events"];
/// Event files that are safe and meaningful to open and read.
const READABLE: &[&str] = &["format", "id", "enable", "filter", "trigger"];
const USAGE: &str = "lookup_stress --target PATH [--threads N] [--seconds S] [--block-ms MS] \
                     [--churn] [--instances] [--drop-caches]";
const HELP: &str = "Stresses lookups, readdir and churn on any tracefs root (utracefs or the \
                    kernel's) for --seconds (10) with --threads (8) workers; --block-ms (1000): \
                    a call slower than this is a \"blocked call\" anomaly; --churn: synthetic-event \
                    churn; --instances: instance mkdir/rmdir (both check that a listing taken right after \
                    a create or delete returns, here and by `ls` in another process, shows it); \
                    --drop-caches: drop the dentry \
                    and inode caches every 100 ms. Exit status: 0 clean, 1 anomalies, 2 usage or setup \
                    error.";
const MAX_EXAMPLES: usize = 5;

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

#[derive(Default)]
struct Opts {
    target: PathBuf,
    threads: usize,
    seconds: u64,
    block_ms: u64,
    churn: bool,
    instances: bool,
    drop_caches: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}\nusage: {USAGE}");
    std::process::exit(2);
}

fn value<T: std::str::FromStr>(a: &str, v: Option<String>) -> T {
    let v = v.and_then(|v| v.parse().ok());
    v.unwrap_or_else(|| usage(&format!("missing or bad value for {a}")))
}

fn parse_args() -> Opts {
    let (mut o, mut args) = (Opts::default(), std::env::args().skip(1));
    (o.threads, o.seconds, o.block_ms) = (8, 10, 1000);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--target" => o.target = value(&a, args.next()),
            "--threads" => o.threads = value::<usize>(&a, args.next()).max(1),
            "--seconds" => o.seconds = value(&a, args.next()),
            "--block-ms" => o.block_ms = value(&a, args.next()),
            "--churn" => o.churn = true,
            "--instances" => o.instances = true,
            "--drop-caches" => o.drop_caches = true,
            "-h" | "--help" => {
                println!("usage: {USAGE}\n{HELP}");
                std::process::exit(0);
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    if o.target.as_os_str().is_empty() {
        usage("--target is required");
    }
    o
}

/// Log-bucket latency histogram: 4 sub-buckets per power of two of nanoseconds.
struct Stats {
    ops: u64,
    max_ns: u64,
    hist: Vec<u64>,
}

impl Stats {
    fn new() -> Self {
        let (ops, max_ns, hist) = (0, 0, vec![0; 64 * 4]);
        Stats { ops, max_ns, hist }
    }
    fn record(&mut self, d: Duration) {
        let ns = (d.as_nanos() as u64).max(1);
        let e = 63 - ns.leading_zeros() as usize;
        self.hist[e * 4 + ((ns << 2 >> e) & 3) as usize] += 1;
        self.ops += 1;
        self.max_ns = self.max_ns.max(ns);
    }
    fn merge(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.max_ns = self.max_ns.max(o.max_ns);
        self.hist.iter_mut().zip(&o.hist).for_each(|(a, b)| *a += b);
    }
    /// Upper bound of the bucket holding the `p` quantile.
    fn percentile(&self, p: f64) -> String {
        let want = ((self.ops as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                let upper = (4 + (i as u64 + 1) % 4) << ((i + 1) / 4) >> 2;
                return fmt_ns(upper.min(self.max_ns));
            }
        }
        fmt_ns(self.max_ns)
    }
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Directories to list, each with the names that must always be present.
type DirSet = Vec<(PathBuf, HashSet<String>)>;

/// A stable event: `sys/ev` relative to `events/`, with its files and their permission bits.
struct Event {
    rel: String,
    files: Vec<(String, u32)>,
}

struct Ctx {
    root: PathBuf,
    pid: u32,
    deadline: Instant,
    block: Duration,
    owner: (u32, u32),
    events: Vec<Event>,
    dirs: DirSet,
    main_inst: PathBuf,
    anomalies: Mutex<BTreeMap<&'static str, (u64, Vec<String>)>>,
    results: Mutex<BTreeMap<&'static str, Stats>>,
}

impl Ctx {
    fn stop(&self) -> bool {
        STOP.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }

    /// Records an anomaly of `kind` about path `p`.
    fn anomaly(&self, kind: &'static str, p: &Path, detail: &str) {
        let mut a = self.anomalies.lock().unwrap();
        let slot = a.entry(kind).or_insert((0, Vec::new()));
        slot.0 += 1;
        if slot.1.len() < MAX_EXAMPLES {
            slot.1.push(format!("{}: {detail}", p.display()));
        }
    }

    /// Timed stat of `p`.
    fn lstat(&self, s: &mut Stats, p: &Path) -> io::Result<fs::Metadata> {
        self.timed(s, "stat", p, || fs::metadata(p))
    }

    fn finish(&self, name: &'static str, s: &Stats) {
        let mut r = self.results.lock().unwrap();
        r.entry(name).or_insert_with(Stats::new).merge(s);
    }

    /// Runs one filesystem call, records its latency and flags it if it blocked.
    fn timed<T>(&self, s: &mut Stats, op: &str, p: &Path, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        s.record(t.elapsed());
        let ms = t.elapsed().as_millis();
        if t.elapsed() > self.block {
            self.anomaly("blocked call", p, &format!("{op} took {ms} ms"));
        }
        r
    }

    /// Classifies an error on an entry that must exist, unless its errno is in `allowed`.
    fn bad_errno(&self, op: &str, path: &Path, e: &io::Error, allowed: &[i32]) {
        let n = errno(e);
        if allowed.contains(&n) {
            return;
        }
        let kind = match n {
            libc::ENOENT => "spurious ENOENT",
            libc::EIO | libc::ESTALE => "EIO/ESTALE",
            _ => "unexpected errno",
        };
        self.anomaly(kind, path, &format!("{op}: {e}"));
    }

    /// Checks that a successful stat shows fully initialized attributes.
    fn check_attrs(&self, p: &Path, md: &fs::Metadata, dir: bool, perm: Option<u32>) {
        let (mode, ino, uid, gid) = (md.mode(), md.ino(), md.uid(), md.gid());
        let want = if dir { libc::S_IFDIR } else { libc::S_IFREG };
        let bad_perm = mode & 0o7777 == 0 || perm.is_some_and(|p| p != mode & 0o7777);
        if mode & libc::S_IFMT != want || bad_perm || ino == 0 || (uid, gid) != self.owner {
            let (w, (u, g)) = (want | perm.unwrap_or(0), self.owner);
            let msg = format!("mode {mode:o} ino {ino} uid/gid {uid}/{gid}, want {w:o} {u}/{g}");
            self.anomaly("half-initialized attrs", p, &msg);
        }
    }

    /// stat + attribute check; true on success.
    fn stat(&self, s: &mut Stats, p: &Path, dir: bool, perm: Option<u32>, ok: &[i32]) -> bool {
        let r = self.lstat(s, p);
        match &r {
            Ok(md) => self.check_attrs(p, md, dir, perm),
            Err(e) => self.bad_errno("stat", p, e, ok),
        }
        r.is_ok()
    }

    /// Opens and reads a file; format text must be well formed.
    fn read(&self, s: &mut Stats, p: &Path, allowed: &[i32]) {
        let r = self.timed(s, "open+read", p, || {
            let mut buf = Vec::new();
            fs::File::open(p)?.read_to_end(&mut buf).map(|_| buf)
        });
        match r {
            Ok(buf) if p.ends_with("format") && !buf.starts_with(b"name: ") => {
                let head = String::from_utf8_lossy(&buf[..buf.len().min(40)]).into_owned();
                self.anomaly("bad format text", p, &format!("{head:?}"));
            }
            Ok(_) => {}
            Err(e) => self.bad_errno("read", p, &e, allowed),
        }
    }

    /// Lists a directory, checking for duplicates and for names that must be present.
    fn readdir(&self, s: &mut Stats, p: &Path, must: &HashSet<String>, allowed: &[i32]) {
        let r = self.timed(s, "readdir", p, || list(p));
        let names = match r {
            Ok(n) => n,
            Err(e) => return self.bad_errno("readdir", p, &e, allowed),
        };
        let mut seen = HashSet::new();
        for n in &names {
            // Only an entry that existed throughout must not repeat: one deleted and created
            // again during the scan (a churned subsystem) may be listed once per life, as
            // POSIX leaves entries added or removed during a readdir unspecified.
            if !seen.insert(n.as_str()) && must.contains(n) {
                self.anomaly("readdir duplicate", p, n);
            }
        }
        for m in must {
            if !seen.contains(m.as_str()) {
                self.anomaly("readdir missing", p, m);
            }
        }
    }

    /// Right after a create (`present`) or a delete returned, `name` must (must not) be listed
    /// in `dir`, in this process and, every `other`-th time, by `ls` in another one: else a
    /// "missing from listing" or "stale listing" anomaly. A deleted directory may be gone.
    fn check_listing(&self, s: &mut Stats, dir: &Path, name: &str, present: bool, other: bool) {
        let here = self.timed(s, "readdir", dir, || list(dir));
        let mut seen = vec![];
        match here {
            Ok(names) => seen.push(("getdents", names.iter().any(|n| n == name))),
            Err(e) => self.bad_errno("readdir", dir, &e, if present { &[] } else { OK_GONE }),
        }
        if other {
            let out = std::process::Command::new("ls")
                .args(["-1", "-U"])
                .arg(dir)
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    let text = String::from_utf8_lossy(&o.stdout);
                    seen.push(("ls", text.lines().any(|n| n == name)));
                }
                // ls failed: a deleted directory that went with its last entry.
                Ok(o) if !present => drop(o),
                Ok(o) => self.anomaly("missing from listing", dir, &format!("ls: {}", o.status)),
                Err(e) => self.anomaly("unexpected errno", dir, &format!("cannot run ls: {e}")),
            }
        }
        for (how, listed) in seen {
            match (present, listed) {
                (true, false) => {
                    self.anomaly("missing from listing", dir, &format!("{how}: {name}"))
                }
                (false, true) => self.anomaly("stale listing", dir, &format!("{how}: {name}")),
                _ => {}
            }
        }
    }

    /// Timed write of `data` to `p`, opened O_APPEND (like `echo >>`).
    fn write(&self, s: &mut Stats, p: &Path, data: &str) -> io::Result<()> {
        self.timed(s, &format!("write {data:?}"), p, || append(p, data))
    }
}

fn append(p: &Path, data: &str) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(p)?
        .write_all(data.as_bytes())
}

fn list(p: &Path) -> io::Result<Vec<String>> {
    let mut v = Vec::new();
    for e in fs::read_dir(p)? {
        v.push(e?.file_name().to_string_lossy().into_owned());
    }
    Ok(v)
}

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The fstype of the mount at `p`, from /proc/self/mountinfo.
fn fstype(p: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = p.to_str()?;
    info.lines()
        .filter(|l| l.split(' ').nth(4) == Some(want))
        .filter_map(|l| l.split(" - ").nth(1)?.split(' ').next().map(str::to_string))
        .next_back()
}

/// Scans `events/` for stable events (up to 4 per subsystem) and builds the readdir set.
fn scan(root: &Path, inst: &Path) -> io::Result<(Vec<Event>, DirSet)> {
    let stable = |d: &Path| -> io::Result<HashSet<String>> {
        Ok(list(d)?
            .into_iter()
            .filter(|n| !DYNAMIC_SYSTEMS.contains(&n.as_str()))
            .collect())
    };
    let ev_dir = root.join("events");
    let mut events = Vec::new();
    let mut dirs = vec![(ev_dir.clone(), stable(&ev_dir)?)];
    let inst_ev = inst.join("events");
    dirs.push((inst_ev.clone(), stable(&inst_ev)?));
    let mut systems: Vec<String> = dirs[0].1.iter().cloned().collect();
    systems.sort();
    for sys in systems {
        let sd = ev_dir.join(&sys);
        if !sd.is_dir() {
            continue;
        }
        let mut evs: Vec<String> = list(&sd)?
            .into_iter()
            .filter(|e| sd.join(e).is_dir())
            .collect();
        evs.sort();
        dirs.push((sd.clone(), evs.iter().cloned().collect()));
        for ev in evs.into_iter().take(4) {
            let ed = sd.join(&ev);
            let mut files = Vec::new();
            for f in list(&ed)? {
                let md = fs::metadata(ed.join(&f))?;
                if md.is_file() {
                    files.push((f, md.mode() & 0o7777));
                }
            }
            files.sort();
            dirs.push((ed, files.iter().map(|f| f.0.clone()).collect()));
            events.push(Event {
                rel: format!("{sys}/{ev}"),
                files,
            });
        }
    }
    Ok((events, dirs))
}

const OK_GONE: &[i32] = &[libc::ENOENT, libc::ENODEV, libc::EINVAL];

/// N threads meet at a barrier and stat the same event file at once, rotating over files.
fn storm(c: &Ctx, b: &Barrier, done: &AtomicBool) {
    let mut s = Stats::new();
    let mut all = Vec::new();
    for e in &c.events {
        let ed = c.root.join("events").join(&e.rel);
        all.extend(e.files.iter().map(|(f, m)| (ed.join(f), *m)));
    }
    let mut round = 0usize;
    loop {
        b.wait();
        if done.load(Ordering::SeqCst) {
            break;
        }
        let (p, m) = &all[round % all.len()];
        c.stat(&mut s, p, false, Some(*m), &[]);
        round += 1;
        if b.wait().is_leader() && c.stop() {
            done.store(true, Ordering::SeqCst);
        }
    }
    c.finish("first-lookup storm", &s);
}

fn stat_read(c: &Ctx, base: &Path, seed: u64) {
    let mut s = Stats::new();
    let mut rng = Rng::new(seed);
    while !c.stop() {
        let ev = &c.events[rng.below(c.events.len())];
        let ed = base.join("events").join(&ev.rel);
        c.stat(&mut s, &ed, true, None, &[]);
        for (f, m) in &ev.files {
            let p = ed.join(f);
            let perm = (base == c.root).then_some(*m);
            c.stat(&mut s, &p, false, perm, &[]);
            if READABLE.contains(&f.as_str()) {
                c.read(&mut s, &p, &[]);
            }
        }
    }
    c.finish("stat/open/read", &s);
}

fn readdirs(c: &Ctx, seed: u64) {
    let mut s = Stats::new();
    let mut rng = Rng::new(seed);
    while !c.stop() {
        let (p, must) = &c.dirs[rng.below(c.dirs.len())];
        c.readdir(&mut s, p, must, &[]);
        let (p, must) = &c.dirs[rng.below(2)];
        c.readdir(&mut s, p, must, &[]);
    }
    c.finish("readdir", &s);
}

fn enable_writer(c: &Ctx) {
    let mut s = Stats::new();
    let evs = c
        .events
        .iter()
        .filter(|e| e.files.iter().any(|f| f.0 == "enable"));
    for ev in evs.collect::<Vec<_>>().iter().cycle() {
        if c.stop() {
            break;
        }
        let p = c.main_inst.join(format!("events/{}/enable", ev.rel));
        for v in ["1", "0"] {
            if let Err(e) = c.write(&mut s, &p, v) {
                c.bad_errno(&format!("write {v}"), &p, &e, &[]);
            }
        }
    }
    c.finish("enable writes", &s);
}

fn drop_caches(c: &Ctx) {
    let (mut s, p) = (Stats::new(), Path::new("/proc/sys/vm/drop_caches"));
    while !c.stop() {
        if let Err(e) = c.write(&mut s, p, "2") {
            c.bad_errno("write 2", p, &e, &[]);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.finish("drop_caches", &s);
}

fn syn_dir(base: &Path, pid: u32, k: usize) -> PathBuf {
    base.join(format!("events/synthetic/stress_{pid}_s{k}"))
}

/// Creates and deletes synthetic events, checking visibility right after each write.
fn churn(c: &Ctx) {
    let mut s = Stats::new();
    let ctl = c.root.join("dynamic_events");
    for (round, k) in (0..4).cycle().enumerate() {
        if c.stop() {
            break;
        }
        let name = format!("stress_{}_s{k}", c.pid);
        let dirs = [syn_dir(&c.root, c.pid, k), syn_dir(&c.main_inst, c.pid, k)];
        // A negative lookup first: it must not linger once the event exists.
        if c.lstat(&mut s, &dirs[0]).is_ok() {
            c.anomaly("stale hit", &dirs[0], "exists before create");
        }
        if let Err(e) = c.write(&mut s, &ctl, &format!("s:{name} u64 x\n")) {
            c.bad_errno("create", &ctl, &e, &[]);
            continue;
        }
        let other = round % 8 == 0;
        for d in &dirs {
            c.check_listing(&mut s, d.parent().unwrap(), &name, true, other);
        }
        for p in dirs.iter().flat_map(|d| [d.clone(), d.join("format")]) {
            match c.lstat(&mut s, &p) {
                Ok(md) => c.check_attrs(&p, &md, dirs.contains(&p), None),
                Err(e) if errno(&e) == libc::ENOENT => c.anomaly("late create", &p, "ENOENT"),
                Err(e) => c.bad_errno("stat", &p, &e, &[]),
            }
        }
        if let Err(e) = c.write(&mut s, &ctl, &format!("-:synthetic/{name}\n")) {
            c.bad_errno("delete", &ctl, &e, &[]);
            continue;
        }
        for d in &dirs {
            c.check_listing(&mut s, d.parent().unwrap(), &name, false, other);
        }
        for p in dirs.iter().flat_map(|d| [d.clone(), d.join("format")]) {
            match c.lstat(&mut s, &p) {
                Ok(_) => c.anomaly("stale hit", &p, "stat succeeds after delete"),
                Err(e) => c.bad_errno("stat", &p, &e, &[libc::ENOENT]),
            }
        }
    }
    c.finish("synthetic churn", &s);
}

/// Looks at churning synthetic events; they may or may not exist.
fn churn_reader(c: &Ctx, seed: u64) {
    let (mut s, mut rng) = (Stats::new(), Rng::new(seed));
    while !c.stop() {
        let base = [&c.root, &c.main_inst][rng.below(2)];
        let d = syn_dir(base, c.pid, rng.below(4));
        if c.stat(&mut s, &d, true, None, OK_GONE) {
            c.stat(&mut s, &d.join("format"), false, None, OK_GONE);
            c.read(&mut s, &d.join("format"), OK_GONE);
            c.readdir(&mut s, &d, &HashSet::new(), OK_GONE);
        }
    }
    c.finish("churn lookups", &s);
}

fn inst_path(c: &Ctx, k: usize) -> PathBuf {
    c.root.join(format!("instances/stress_{}_{k}", c.pid))
}

/// mkdir/rmdir stress instances in a loop.
fn inst_churn(c: &Ctx) {
    let mut s = Stats::new();
    let probe = &c.events[0];
    let instances = c.root.join("instances");
    for (round, k) in (0..4).cycle().enumerate() {
        if c.stop() {
            break;
        }
        let p = inst_path(c, k);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let other = round % 8 == 0;
        if let Err(e) = c.timed(&mut s, "mkdir", &p, || fs::create_dir(&p)) {
            c.bad_errno("mkdir", &p, &e, &[]);
            continue;
        }
        c.check_listing(&mut s, &instances, &name, true, other);
        let id = p.join("events").join(&probe.rel).join(&probe.files[0].0);
        match c.lstat(&mut s, &id) {
            Err(e) if errno(&e) == libc::ENOENT => c.anomaly("late create", &id, "after mkdir"),
            Err(e) => c.bad_errno("stat", &id, &e, &[]),
            Ok(_) => {}
        }
        let r = retry_busy(|| c.timed(&mut s, "rmdir", &p, || fs::remove_dir(&p)));
        match r {
            Ok(()) if c.lstat(&mut s, &p).is_ok() => c.anomaly("stale hit", &p, "after rmdir"),
            Ok(()) => c.check_listing(&mut s, &instances, &name, false, other),
            Err(e) => c.bad_errno("rmdir", &p, &e, &[]),
        }
    }
    c.finish("instance mkdir/rmdir", &s);
}

/// Retries `f` while it fails with EBUSY, for up to about two seconds.
fn retry_busy(mut f: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    for _ in 0..2000 {
        match f() {
            Err(e) if errno(&e) == libc::EBUSY => std::thread::sleep(Duration::from_millis(1)),
            r => return r,
        }
    }
    f()
}

/// Looks up inside instances that are being created and removed.
fn inst_reader(c: &Ctx, seed: u64) {
    let (mut s, mut rng) = (Stats::new(), Rng::new(seed));
    while !c.stop() {
        let ev = &c.events[rng.below(c.events.len().min(8))];
        let ed = inst_path(c, rng.below(4)).join("events").join(&ev.rel);
        if c.stat(&mut s, &ed, true, None, OK_GONE) {
            for (f, _) in &ev.files {
                c.stat(&mut s, &ed.join(f), false, None, OK_GONE);
            }
            c.read(&mut s, &ed.join("id"), OK_GONE);
            c.readdir(&mut s, ed.parent().unwrap(), &HashSet::new(), OK_GONE);
        }
    }
    c.finish("instance lookups", &s);
}

/// Removes every synthetic event and instance this process may have created.
fn cleanup(root: &Path, pid: u32, dynamic: bool) -> Vec<String> {
    let mut errs = Vec::new();
    for k in (0..4).filter(|&k| dynamic && syn_dir(root, pid, k).exists()) {
        let cmd = format!("-:synthetic/stress_{pid}_s{k}\n");
        if let Err(e) = append(&root.join("dynamic_events"), &cmd) {
            errs.push(format!("{cmd:?}: {e}"));
        }
    }
    let prefix = format!("stress_{pid}_");
    for n in list(&root.join("instances")).unwrap_or_default() {
        let p = root.join("instances").join(&n);
        if n.starts_with(&prefix)
            && let Err(e) = retry_busy(|| fs::remove_dir(&p))
        {
            errs.push(format!("rmdir {}: {e}", p.display()));
        }
    }
    errs
}

/// Runs every selected workload until the deadline.
fn run(c: &Ctx, o: &Opts, dynamic: bool) {
    let (barrier, done) = (&Barrier::new(o.threads), &AtomicBool::new(false));
    std::thread::scope(|sc| {
        for _ in 0..o.threads {
            sc.spawn(move || storm(c, barrier, done));
        }
        for i in 0..2 {
            sc.spawn(move || stat_read(c, &c.root, 11 + i));
            sc.spawn(move || readdirs(c, 21 + i));
        }
        sc.spawn(move || enable_writer(c));
        if o.instances {
            sc.spawn(move || stat_read(c, &c.main_inst, 31));
            sc.spawn(move || inst_churn(c));
            for i in 0..2 {
                sc.spawn(move || inst_reader(c, 41 + i));
            }
        }
        if dynamic {
            sc.spawn(move || churn(c));
            for i in 0..2 {
                sc.spawn(move || churn_reader(c, 51 + i));
            }
        }
        if o.drop_caches {
            sc.spawn(move || drop_caches(c));
        }
    });
}

fn main() {
    let o = parse_args();
    let root = fs::canonicalize(&o.target).unwrap_or_else(|e| usage(&format!("target: {e}")));
    if !root.join("events").is_dir() || !root.join("instances").is_dir() {
        usage("target is not a tracefs root (no events/ or instances/)");
    }
    let fs_type = fstype(&root).unwrap_or_else(|| "unknown".into());
    let has_syn = root.join("dynamic_events").exists() && root.join("synthetic_events").exists();
    let dynamic = o.churn && fs_type == "fuse.tracefs" && has_syn;
    if o.churn && !dynamic {
        println!(
            "> note: --churn skipped: `{fs_type}` is not utracefs or lacks synthetic events\n"
        );
    }
    if o.drop_caches && fs::write("/proc/sys/vm/drop_caches", "2").is_err() {
        usage("--drop-caches: /proc/sys/vm/drop_caches is not writable");
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let pid = std::process::id();
    let main_inst = root.join(format!("instances/stress_{pid}_main"));
    if let Err(e) = fs::create_dir(&main_inst) {
        usage(&format!("mkdir {}: {e}", main_inst.display()));
    }
    let root_md = fs::metadata(&root).unwrap_or_else(|e| usage(&format!("stat root: {e}")));
    let (events, dirs) = match scan(&root, &main_inst) {
        Ok((ev, d)) if !ev.is_empty() => (ev, d),
        r => {
            cleanup(&root, pid, false);
            usage(&format!("scan of events/ found nothing: {:?}", r.err()));
        }
    };
    let c = Ctx {
        root: root.clone(),
        pid,
        deadline: Instant::now() + Duration::from_secs(o.seconds),
        block: Duration::from_millis(o.block_ms),
        owner: (root_md.uid(), root_md.gid()),
        events,
        dirs,
        main_inst,
        anomalies: Mutex::new(BTreeMap::new()),
        results: Mutex::new(BTreeMap::new()),
    };
    let start = Instant::now();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&c, &o, dynamic)));
    let elapsed = start.elapsed().as_secs_f64();
    if ran.is_err() {
        c.anomaly("worker panic", &root, "see stderr");
    }
    for e in cleanup(&root, pid, dynamic) {
        c.anomaly("cleanup failure", &root, &e);
    }
    let on = |b: bool, n: &str| if b { format!(", {n}") } else { String::new() };
    let modes = on(dynamic, "churn") + &on(o.instances, "instances");
    let modes = modes + &on(o.drop_caches, "drop-caches");
    println!("## lookup_stress summary\n");
    let (n, t, b) = (c.events.len(), o.threads, o.block_ms);
    println!(
        "- target: `{}` (`{fs_type}`), {n} stable events",
        root.display()
    );
    println!("- {elapsed:.1} s, {t} storm threads, block limit {b} ms");
    println!("- workloads: storm, stat/open/read, readdir, enable writes{modes}\n");
    println!("| workload | ops | ops/s | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|");
    for (name, s) in c.results.lock().unwrap().iter() {
        let (p50, p99, max) = (s.percentile(0.5), s.percentile(0.99), fmt_ns(s.max_ns));
        let rate = s.ops as f64 / elapsed;
        println!("| {name} | {} | {rate:.0} | {p50} | {p99} | {max} |", s.ops);
    }
    let anomalies = c.anomalies.lock().unwrap();
    println!("\n### Anomalies\n");
    if anomalies.is_empty() {
        println!("none");
    }
    for (kind, (n, examples)) in anomalies.iter() {
        println!("- **{kind}**: {n}");
        examples.iter().for_each(|e| println!("  - `{e}`"));
    }
    std::process::exit(if anomalies.is_empty() { 0 } else { 1 });
}
