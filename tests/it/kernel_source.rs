//! `--kernel-source`: the host kernel's records in the clone, through an instance of the
//! kernel's tracefs the daemon makes (`instances/utracefs-<daemon pid>`) and removes. Every
//! test runs a mirror (`--catalog <kernel tracefs>`) and checks that the kernel's top level
//! (`set_event`, `tracing_on`, `current_tracer`) is never changed.
//!
//! Waits are polls with a generous bound (the source applies changes every 100 ms); none
//! asserts on speed, except the watchdog's 2 s after a SIGKILL, which is the feature.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{KERNEL_EVENTS, KernelTracefs, Mount, mount_type, read};

const BOUND: Duration = Duration::from_secs(20);

/// The kernel's top-level state the daemon must never touch.
fn top_state(k: &KernelTracefs) -> [String; 3] {
    ["set_event", "tracing_on", "current_tracer"].map(|f| read(&k.path().join(f)))
}

/// A mirror with the kernel source on (and any extra arguments).
fn start(k: &KernelTracefs, extra: &[&str]) -> Mount {
    let _g = KERNEL_EVENTS.read().unwrap_or_else(|e| e.into_inner());
    let mut args = vec!["--kernel-source", "--catalog", k.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    Mount::new(&args)
}

/// The daemon's instance in the kernel's tracefs.
fn kernel_instance(k: &KernelTracefs, m: &Mount) -> PathBuf {
    k.path().join(format!("instances/utracefs-{}", m.pid()))
}

/// Polls `f` until it gives `Some`, failing after [`BOUND`] with `what`.
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {BOUND:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pid the kernel gives the next task: the first free one after the last given.
fn next_free_pid() -> u32 {
    let last: u32 = read(Path::new("/proc/sys/kernel/ns_last_pid"))
        .trim()
        .parse()
        .unwrap();
    let max: u32 = read(Path::new("/proc/sys/kernel/pid_max"))
        .trim()
        .parse()
        .unwrap();
    let mut p = last + 1;
    loop {
        if p >= max {
            p = 300; // RESERVED_PIDS: where the kernel wraps to
        }
        if !Path::new(&format!("/proc/{p}")).exists() {
            return p;
        }
        p += 1;
    }
}

/// `(cpu, timestamp, line)` of every record line of a `trace` text.
fn records(trace: &str) -> Vec<(u32, f64, &str)> {
    trace
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let open = l.find("] ")?;
            let cpu = l[..open].rsplit('[').next()?.parse().ok()?;
            let rest = &l[open + 2..];
            let ts = rest.split(": ").next()?.split_whitespace().last()?;
            Some((cpu, ts.parse().ok()?, l))
        })
        .collect()
}

#[test]
fn forks_and_switches_come_from_the_kernel_and_follow_the_clones_state() {
    let k = KernelTracefs::mount().unwrap();
    let before = top_state(&k);
    let m = start(&k, &[]);
    let kinst = kernel_instance(&k, &m);
    assert!(kinst.is_dir(), "no kernel instance: {}", m.log());
    assert!(read(&kinst.join("trace_clock")).contains("[mono]"));
    assert_eq!(read(&kinst.join("set_event")), "", "nothing enabled yet");

    // `t` records forks and switches; `f` only the fork of one pid, by its filter.
    for inst in ["t", "f"] {
        std::fs::create_dir(m.p(&format!("instances/{inst}"))).unwrap();
    }
    std::fs::write(m.p("instances/t/events/sched/sched_switch/enable"), "1").unwrap();
    std::fs::write(
        m.p("instances/t/events/sched/sched_process_fork/enable"),
        "1",
    )
    .unwrap();
    let fork = m.p("instances/f/events/sched/sched_process_fork");
    std::fs::write(fork.join("enable"), "1").unwrap();
    poll("the kernel instance carries both events", || {
        let s = read(&kinst.join("set_event"));
        (s.contains("sched:sched_switch") && s.contains("sched:sched_process_fork")).then_some(())
    });
    let x = next_free_pid();
    std::fs::write(fork.join("filter"), format!("child_pid == {x}")).unwrap();

    let out = Command::new("sh")
        .arg("-c")
        .arg("echo $$; for i in $(seq 50); do /bin/true & echo $!; wait; done")
        .output()
        .unwrap();
    let pids: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let (shell, children) = (pids[0], &pids[1..]);
    assert_eq!(children.len(), 50);

    let trace = poll("all 50 forks in trace", || {
        let t = read(&m.p("instances/t/trace"));
        children
            .iter()
            .all(|c| t.contains(&format!(" child_pid={c}\n")))
            .then_some(t)
    });
    for c in children {
        let lines: Vec<&str> = trace
            .lines()
            .filter(|l| {
                l.contains("sched_process_fork:") && l.ends_with(&format!(" child_pid={c}"))
            })
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "fork of {c} once (kernel source only): {lines:?}"
        );
        assert!(
            lines[0].contains(&format!(" pid={shell} child_comm=")),
            "forked by the shell {shell}: {}",
            lines[0]
        );
    }
    // Switch records, and every CPU's records in time order.
    let recs = records(&trace);
    assert!(
        recs.iter()
            .any(|r| r.2.contains("sched_switch: prev_comm="))
    );
    let mut last = BTreeMap::new();
    for (cpu, ts, line) in &recs {
        let prev = last.insert(*cpu, *ts).unwrap_or(0.0);
        assert!(*ts >= prev, "CPU {cpu} went back in time at: {line}");
    }

    // The filter kept exactly the fork of pid x (whoever forked it).
    let kept = poll(&format!("the fork of pid {x} in f"), || {
        let t = read(&m.p("instances/f/trace"));
        let forks: Vec<String> = t
            .lines()
            .filter(|l| l.contains("sched_process_fork:"))
            .map(String::from)
            .collect();
        (!forks.is_empty()).then_some(forks)
    });
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with(&format!(" child_pid={x}")), "{kept:?}");

    // Disabled everywhere: the kernel instance follows.
    std::fs::write(m.p("instances/t/set_event"), "").unwrap();
    std::fs::write(fork.join("enable"), "0").unwrap();
    poll("the kernel instance's set_event empties", || {
        read(&kinst.join("set_event")).is_empty().then_some(())
    });
    assert_eq!(top_state(&k), before, "the kernel's top level changed");
    drop(m);
    assert!(!kinst.exists(), "a clean exit removes the kernel instance");
    assert_eq!(top_state(&k), before, "the kernel's top level changed");
}

#[test]
fn a_small_kernel_buffer_under_load_gives_lost_lines_and_overruns() {
    let k = KernelTracefs::mount().unwrap();
    let before = top_state(&k);
    let m = start(&k, &["--kernel-buffer-kb", "4"]);
    let kinst = kernel_instance(&k, &m);
    let kb: u64 = read(&kinst.join("buffer_size_kb")).trim().parse().unwrap();
    assert!(kb <= 8, "two pages per CPU, not {kb} KiB");
    std::fs::write(m.p("events/raw_syscalls/sys_enter/enable"), "1").unwrap();
    poll("the kernel instance carries sys_enter", || {
        read(&kinst.join("set_event"))
            .contains("raw_syscalls:sys_enter")
            .then_some(())
    });
    let mut pipe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(m.p("trace_pipe"))
        .unwrap();
    let mut text = String::new();
    poll("a [LOST n EVENTS] line in trace_pipe", || {
        // Two million syscalls: far more than two pages hold between two reads.
        Command::new("dd")
            .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=1000000"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(l) = text.lines().find(|l| l.contains("[LOST ")) {
                return Some(l.to_string());
            }
        }
        None
    });
    let overrun: u64 = (0..utracefs::ncpu())
        .map(|c| {
            read(&m.p(&format!("per_cpu/cpu{c}/stats")))
                .lines()
                .find_map(|l| l.strip_prefix("overrun: ")?.parse::<u64>().ok())
                .unwrap()
        })
        .sum();
    assert!(overrun > 0, "kernel losses count as overruns");
    assert!(text.contains("sys_enter: NR "), "records carried too");
    std::fs::write(m.p("events/raw_syscalls/sys_enter/enable"), "0").unwrap();
    drop(m);
    assert_eq!(top_state(&k), before, "the kernel's top level changed");
}

#[test]
fn sigkill_of_the_daemon_leaves_its_watchdog_to_remove_the_kernel_instance() {
    let k = KernelTracefs::mount().unwrap();
    let before = top_state(&k);
    let mut m = start(&k, &[]);
    let kinst = kernel_instance(&k, &m);
    std::fs::write(m.p("events/sched/sched_switch/enable"), "1").unwrap();
    poll("the kernel instance carries sched_switch", || {
        read(&kinst.join("set_event"))
            .contains("sched:sched_switch")
            .then_some(())
    });
    let mut child = m.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let dead = Instant::now();
    while kinst.exists() {
        assert!(
            dead.elapsed() < Duration::from_secs(2),
            "the kernel instance outlived the daemon by 2 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(top_state(&k), before, "the kernel's top level changed");
    let c = std::ffi::CString::new(m.path().to_str().unwrap()).unwrap();
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    assert_eq!(mount_type(&m.path()), None);
}

#[test]
fn kernel_source_needs_root() {
    let dir = crate::common::TempDir::new("ks-user");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::common::BIN)
        .arg("--kernel-source")
        .arg(dir.path())
        .output()
        .expect("setpriv");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kernel-source needs root"), "{err}");
}

/// `event-fork` adds a forked child to `set_event_notrace_pid` as well as `set_event_pid`
/// (the kernel's `event_filter_pid_sched_process_fork` follows both lists); the clone learns
/// forks from the process connector. Compared with a kernel instance.
#[test]
fn event_fork_adds_children_of_notrace_tasks_like_the_kernel() {
    use std::io::{BufRead, Write};
    let k = crate::common::KernelInst::new("evfork");
    let m = Mount::new(&[]);
    let mut sh = Command::new("sh")
        .args(["-c", "read x; sleep 30 & echo $!; read x; kill $!"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let shell = sh.id();
    for p in [k.p(""), m.path()] {
        std::fs::write(p.join("options/event-fork"), "1").unwrap();
        std::fs::write(p.join("set_event_notrace_pid"), shell.to_string()).unwrap();
    }
    let mut stdin = sh.stdin.take().unwrap();
    writeln!(stdin).unwrap();
    let mut line = String::new();
    std::io::BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child: u32 = line.trim().parse().unwrap();
    let listed = |p: &Path| {
        read(&p.join("set_event_notrace_pid"))
            .lines()
            .any(|l| l == child.to_string())
    };
    assert!(listed(&k.p("")), "the kernel lists the child {child}");
    poll("the clone lists the child", || {
        listed(&m.path()).then_some(())
    });
    writeln!(stdin).unwrap();
    sh.wait().unwrap();
}

/// As ftracetest's event tests do it: enable, let something run, turn tracing off, read. The
/// enable reaches the kernel before the write returns, and records made before `tracing_on`
/// went to 0 are committed under the state they were made in, though they arrive late.
#[test]
fn records_made_before_tracing_off_are_kept() {
    let k = KernelTracefs::mount().unwrap();
    let m = start(&k, &[]);
    let kinst = kernel_instance(&k, &m);
    std::fs::write(m.p("set_event"), "sched:sched_switch").unwrap();
    assert_eq!(read(&kinst.join("set_event")), "sched:sched_switch\n");
    Command::new("sleep").arg("0.01").status().unwrap();
    std::fs::write(m.p("tracing_on"), "0").unwrap();
    let trace = read(&m.p("trace"));
    assert!(trace.contains("sched_switch: prev_comm="), "{trace}");
    // Nothing comes in with tracing off.
    let n = records(&trace).len();
    Command::new("sleep").arg("0.2").status().unwrap();
    assert_eq!(records(&read(&m.p("trace"))).len(), n);
    std::fs::write(m.p("set_event"), "").unwrap();
    assert_eq!(read(&kinst.join("set_event")), "");
}

/// As ftracetest's trigger tests do it: a kernel record fires a trigger, and the next read
/// of the clone (here `tracing_on`) shows its effect, though the record arrived late.
#[test]
fn a_trigger_fired_by_a_kernel_record_shows_on_the_next_read() {
    let k = KernelTracefs::mount().unwrap();
    let m = start(&k, &[]);
    let fork = m.p("events/sched/sched_process_fork");
    std::fs::write(fork.join("trigger"), "traceoff").unwrap();
    // A trigger alone puts the event in soft mode: the kernel instance carries it.
    let kinst = kernel_instance(&k, &m);
    assert_eq!(read(&kinst.join("set_event")), "sched:sched_process_fork\n");
    Command::new("sh")
        .args(["-c", "/bin/true & wait"])
        .status()
        .unwrap();
    assert_eq!(read(&m.p("tracing_on")), "0\n");
    std::fs::write(fork.join("trigger"), "!traceoff").unwrap();
    assert_eq!(read(&kinst.join("set_event")), "");
}

/// One read with a large buffer: `header_page` answers only the first read.
fn read_once(p: &Path) -> Vec<u8> {
    let mut buf = vec![0; 1 << 16];
    let n = std::fs::File::open(p).unwrap().read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// An event whose fields differ between the host and the catalog is refused, with one log
/// line however often it is enabled; the others are carried.
#[test]
fn an_event_whose_fields_differ_from_the_hosts_is_refused_once() {
    let k = KernelTracefs::mount().unwrap();
    let cat = crate::common::TempDir::new("ks-cat");
    let ev = cat.path().join("events");
    std::fs::create_dir_all(&ev).unwrap();
    for h in ["header_page", "header_event"] {
        std::fs::write(ev.join(h), read_once(&k.path().join("events").join(h))).unwrap();
    }
    for (name, edit) in [
        ("sched_switch", Some(("prev_prio;", "prev_priority;"))),
        ("sched_process_fork", None),
    ] {
        let dir = ev.join("sched").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["enable", "filter", "id", "trigger"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let mut format = read(&k.path().join(format!("events/sched/{name}/format")));
        if let Some((from, to)) = edit {
            format = format.replace(from, to);
        }
        std::fs::write(dir.join("format"), format).unwrap();
    }
    let m = Mount::new(&["--kernel-source", "--catalog", cat.path().to_str().unwrap()]);
    let kinst = kernel_instance(&k, &m);
    for _ in 0..2 {
        std::fs::write(
            m.p("set_event"),
            "sched:sched_switch\nsched:sched_process_fork",
        )
        .unwrap();
        assert_eq!(read(&kinst.join("set_event")), "sched:sched_process_fork\n");
        std::fs::write(m.p("set_event"), "").unwrap();
    }
    let log = m.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("not carrying sched:sched_switch: its fields differ"))
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("prev_prio"), "{}", refused[0]);
}

/// Some kmalloc records: a shell listing directories and reading /proc.
fn kmalloc_load() {
    Command::new("sh")
        .args([
            "-c",
            "for i in $(seq 3); do ls -R /etc >/dev/null; cat /proc/self/status >/dev/null; done",
        ])
        .status()
        .unwrap();
}

/// The text after `kmalloc: ` of every kmalloc line of a `trace`, without its `ptr=` (the
/// kernel hashes `%p`, the clone prints it raw), leaving out the records of `daemon`'s
/// threads (the daemon's kernel instance does not trace them).
fn kmalloc_payloads(trace: &str, daemon: Option<u32>) -> BTreeSet<String> {
    let of_daemon = |task: &str| {
        let tid = task.trim().rsplit('-').next().unwrap_or("");
        daemon.is_some_and(|d| Path::new(&format!("/proc/{d}/task/{tid}")).exists())
    };
    trace
        .lines()
        .filter_map(|l| l.split_once("kmalloc: "))
        .filter(|(head, _)| !of_daemon(head.split(" [").next().unwrap_or("")))
        .map(|(_, p)| {
            let words: Vec<&str> = p.split(' ').filter(|w| !w.starts_with("ptr=")).collect();
            words.join(" ")
        })
        .collect()
}

/// Kernel addresses are named from kallsyms as the kernel names them: a kmalloc record's
/// `call_site=%pS` reads as in a kernel instance that recorded the same records, and hist
/// `.sym`/`.sym-offset` keys print `[addr] name` and `[addr] name+0xoff/0xsize`, padded as
/// `hist_trigger_print_key()` pads them.
#[test]
fn kernel_addresses_are_named_as_the_kernel_names_them() {
    let k = KernelTracefs::mount().unwrap();
    let m = start(&k, &["--extras"]);
    let own = crate::common::KernelInst::new("ksyms");
    let kmalloc = m.p("events/kmem/kmalloc");
    std::fs::write(kmalloc.join("trigger"), "hist:keys=call_site.sym").unwrap();
    std::fs::write(kmalloc.join("trigger"), "hist:keys=call_site.sym-offset").unwrap();
    std::fs::write(kmalloc.join("enable"), "1").unwrap();
    // The clone records over a window that holds the kernel instance's.
    std::fs::write(own.p("events/kmem/kmalloc/enable"), "1").unwrap();
    kmalloc_load();
    std::fs::write(own.p("events/kmem/kmalloc/enable"), "0").unwrap();
    let kernel = kmalloc_payloads(&read(&own.p("trace")), Some(m.pid()));
    assert!(
        kernel
            .iter()
            .any(|p| p.starts_with("call_site=") && p.contains('+')),
        "the kernel names call sites: {kernel:?}"
    );
    // Under load either instance may lose records (the kernel's buffers overflow between
    // reads), so most, not all, of the kernel's lines must read the same in the clone; text
    // printed differently matches none.
    let clone = poll("the clone has most of the kernel instance's lines", || {
        let clone = kmalloc_payloads(&read(&m.p("trace")), None);
        (kernel.intersection(&clone).count() * 2 >= kernel.len()).then_some(clone)
    });
    std::fs::write(kmalloc.join("enable"), "0").unwrap();

    // hist: both keys of every entry name the same symbol, the one `trace` names.
    let call_sites: Vec<&str> = clone
        .iter()
        .filter_map(|p| p.split(' ').find_map(|w| w.strip_prefix("call_site=")))
        .collect();
    let hist = read(&kmalloc.join("hist"));
    let entries = |offset: bool| -> BTreeMap<u64, String> {
        hist.lines()
            .filter_map(|l| l.strip_prefix("{ call_site: ["))
            .filter_map(|l| {
                let (addr, rest) = l.split_once("] ")?;
                let addr = u64::from_str_radix(addr, 16).ok()?;
                let sym = rest.split_once(" }")?.0.trim_end();
                (sym.contains('+') == offset).then(|| (addr, sym.to_string()))
            })
            .collect()
    };
    let (syms, offsets) = (entries(false), entries(true));
    assert!(!syms.is_empty(), "{hist}");
    assert_eq!(syms.len(), offsets.len(), "{hist}");
    assert!(
        offsets.values().any(|t| call_sites.contains(&t.as_str())),
        "{hist}\n{call_sites:?}"
    );
    let kallsyms = read(Path::new("/proc/kallsyms"));
    for (addr, text) in &offsets {
        // `name+0xoff/0xsize`: kallsyms has `name` at addr - off.
        let (name_off, _size) = text.split_once('/').unwrap();
        let (sym, off) = name_off.split_once("+0x").unwrap();
        let start = addr - u64::from_str_radix(off, 16).unwrap();
        let start = format!("{start:016x}");
        assert!(
            kallsyms.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(start.as_str()) && w.nth(1) == Some(sym)
            }),
            "{text} at {addr:x}"
        );
        let name = &syms[addr];
        assert_eq!(text.split('+').next(), Some(name.as_str()));
        assert!(
            hist.contains(&format!("{{ call_site: [{addr:x}] {name:<45} }} hitcount:")),
            "{hist}"
        );
        assert!(
            hist.contains(&format!("{{ call_site: [{addr:x}] {text:<55} }} hitcount:")),
            "{hist}"
        );
    }
}

/// `call_site.function == NAME` (or `== 0xADDR` of its start) keeps the records whose
/// call site lies in that function, as `filter_pred_function()` does; a name kallsyms does
/// not know fails as in a kernel instance (errno, filter text, error_log).
#[test]
fn a_function_filter_keeps_the_calls_from_that_function() {
    let k = KernelTracefs::mount().unwrap();
    let m = start(&k, &[]);
    let own = crate::common::KernelInst::new("ksyms-filter");
    let kmalloc = m.p("events/kmem/kmalloc");
    std::fs::write(kmalloc.join("enable"), "1").unwrap();
    kmalloc_load();
    std::fs::write(kmalloc.join("enable"), "0").unwrap();
    // The function that called kmalloc most often.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in &kmalloc_payloads(&read(&m.p("trace")), None) {
        if let Some(site) = p.split(' ').find_map(|w| w.strip_prefix("call_site=")) {
            *counts
                .entry(site.split('+').next().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let func = counts.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    let kallsyms = read(Path::new("/proc/kallsyms"));
    let addr = kallsyms
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {func}"))?.split(' ').next())
        .unwrap()
        .to_string();
    for target in [func.clone(), format!("0x{addr}")] {
        std::fs::write(m.p("trace"), "").unwrap();
        std::fs::write(
            kmalloc.join("filter"),
            format!("call_site.function == {target}"),
        )
        .unwrap();
        std::fs::write(kmalloc.join("enable"), "1").unwrap();
        let lines = poll("a kmalloc call from the function", || {
            kmalloc_load();
            let lines = kmalloc_payloads(&read(&m.p("trace")), None);
            (!lines.is_empty()).then_some(lines)
        });
        std::fs::write(kmalloc.join("enable"), "0").unwrap();
        let prefix = format!("call_site={func}+");
        for l in &lines {
            assert!(l.contains(&prefix), "{target}: {l}");
        }
    }
    // `!=` keeps every other call.
    std::fs::write(m.p("trace"), "").unwrap();
    std::fs::write(
        kmalloc.join("filter"),
        format!("call_site.function != {func}"),
    )
    .unwrap();
    std::fs::write(kmalloc.join("enable"), "1").unwrap();
    kmalloc_load();
    std::fs::write(kmalloc.join("enable"), "0").unwrap();
    let others = kmalloc_payloads(&read(&m.p("trace")), None);
    assert!(!others.is_empty());
    let prefix = format!("call_site={func}+");
    assert!(others.iter().all(|l| !l.contains(&prefix)));

    for text in [
        "call_site.function == no_such_function_utracefs",
        "call_site.function == 0x1",
        "call_site.function == schedule)",
    ] {
        let file = "events/kmem/kmalloc/filter";
        let clone = crate::common::write_outcome(&m.p(""), file, text.as_bytes());
        let kernel = crate::common::write_outcome(&own.p(""), file, text.as_bytes());
        assert_eq!(clone, kernel, "{text}");
    }
}

/// hist `.syscall` keys name the kernel's system calls as `get_syscall_name()` does
/// (`sys_` and the metadata's name), padded as `hist_trigger_print_key()` pads them.
#[test]
fn hist_syscall_keys_name_the_system_calls() {
    let k = KernelTracefs::mount().unwrap();
    let m = start(&k, &["--extras"]);
    let exit = m.p("events/raw_syscalls/sys_exit");
    std::fs::write(exit.join("trigger"), "hist:keys=id.syscall").unwrap();
    std::fs::write(exit.join("enable"), "1").unwrap();
    let line = format!("{{ id: {:<30}[ 59] }} hitcount:", "sys_execve");
    let hist = poll("an execve in the histogram", || {
        Command::new("/bin/true").status().unwrap();
        let hist = read(&exit.join("hist"));
        hist.contains(&line).then_some(hist)
    });
    std::fs::write(exit.join("enable"), "0").unwrap();
    assert!(
        hist.contains(&format!("{{ id: {:<30}[  0] }}", "sys_read")),
        "{hist}"
    );
}
