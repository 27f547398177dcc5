//! The trace data path: records in through `trace_marker`, `inject` and the process connector;
//! out through `trace`, `trace_pipe`, `per_cpu/cpuN/trace_pipe_raw` and `stats` — each checked
//! through the mount, and against a kernel instance where the kernel can do the same.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{Inst, KernelInst, Mount, TempDir, read, write_raw};

/// The record lines of a `trace` text (its `#` header dropped).
fn records(trace: &str) -> Vec<&str> {
    trace.lines().filter(|l| !l.starts_with('#')).collect()
}

/// A `trace` line split into (comm-pid, cpu, flags, timestamp, event output), checking the
/// kernel's layout `%16s-%-7d [%03d] %5s %5lu.%06lu: …` on the way.
fn fields(line: &str) -> (&str, &str, &str, &str, &str) {
    let (ctx, rest) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("no ': ' in {line:?}"));
    let cpu_at = ctx
        .find(" [")
        .unwrap_or_else(|| panic!("no cpu in {line:?}"));
    let (task, tail) = ctx.split_at(cpu_at);
    assert!(
        task.len() >= 16 + 1 + 7,
        "comm-pid column too narrow: {line:?}"
    );
    let tail = &tail[2..];
    let (cpu, tail) = tail.split_once("] ").unwrap();
    assert_eq!(cpu.len(), 3, "cpu is %03d: {line:?}");
    let (flags, ts) = tail.split_once(' ').unwrap();
    assert_eq!(flags.len(), 5, "five latency columns: {line:?}");
    let ts = ts.trim_start();
    let (secs, usecs) = ts.split_once('.').unwrap();
    assert!(secs.bytes().all(|b| b.is_ascii_digit()), "{line:?}");
    assert!(
        usecs.len() == 6 && usecs.bytes().all(|b| b.is_ascii_digit()),
        "{line:?}"
    );
    (task.trim(), cpu, flags, ts, rest)
}

fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

/// Polls `cond` every 20 ms for up to 10 s (a liveness bound, not a speed check).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn marker_line_has_the_kernels_layout() {
    let i = Inst::new();
    assert_eq!(i.w("trace_marker", "hello marker"), Ok(12));
    let trace = i.r("trace");
    assert!(
        trace.contains(&format!(
            "# entries-in-buffer/entries-written: 1/1   #P:{}\n",
            utracefs::ncpu()
        )),
        "{trace}"
    );
    let recs = records(&trace);
    assert_eq!(recs.len(), 1, "{trace}");
    let (task, _, flags, _, out) = fields(recs[0]);
    // The writer is this thread; no event is enabled, so its comm was not recorded, as in
    // the kernel (§10.1).
    assert_eq!(task.trim_end(), format!("<...>-{}", gettid()), "{trace}");
    assert_eq!(out, "tracing_mark_write: hello marker");

    // The same write in a kernel instance gives the same line but for pid, CPU and time.
    let k = KernelInst::new("marker");
    write_raw(&k.p("trace_marker"), b"hello marker", libc::O_WRONLY).unwrap();
    let ktrace = read(&k.p("trace"));
    let krecs = records(&ktrace);
    assert_eq!(krecs.len(), 1, "{ktrace}");
    let (ktask, _, kflags, _, kout) = fields(krecs[0]);
    assert_eq!((flags, out), (kflags, kout));
    // (The kernel's comm comes from its global saved_cmdlines, which may know this tid.)
    assert!(ktask.ends_with(&format!("-{}", gettid())), "{ktrace}");
    // The header is the kernel's, line for line.
    let head = |t: &str| -> Vec<String> {
        t.lines()
            .take_while(|l| l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(head(&trace), head(&ktrace));
}

#[test]
fn marker_text_newlines_cap_and_errors() {
    let i = Inst::new();
    i.w("trace_marker", "two\nlines").unwrap();
    i.w("trace_marker", "ends\n").unwrap();
    assert_eq!(i.w("trace_marker", vec![b'x'; 5000]), Ok(4054));
    let trace = i.r("trace");
    assert!(
        trace.contains("tracing_mark_write: two\nlines\n"),
        "{trace}"
    );
    assert!(trace.contains("tracing_mark_write: ends\n"), "{trace}");
    assert!(!trace.contains("ends\n\n"), "one newline, not two: {trace}");
    assert!(
        trace.contains(&format!(": tracing_mark_write: {}\n", "x".repeat(4054))),
        "capped record"
    );
    i.w("tracing_on", "0").unwrap();
    assert_eq!(i.w("trace_marker", "off"), Err(libc::EBADF));
    i.w("tracing_on", "1").unwrap();
    i.w("options/markers", "0").unwrap();
    assert_eq!(i.w("trace_marker", "no markers"), Err(libc::EINVAL));
    assert!(!i.r("trace").contains("no markers"));
    // O_TRUNC empties the buffer and its counts.
    i.w("trace", "").unwrap();
    assert!(i.r("trace").contains("entries-written: 0/0 "));
}

#[test]
fn header_page_follows_the_sub_buffer_size() {
    // ftracetest's ringbuffer_subbuf_size.tc: after `echo N > buffer_subbuf_size_kb` the
    // trace array's `events/header_page` gives `N * 1024 - 16` data bytes (the kernel's
    // documented layout), and a marker write still records at most 4054 bytes. Compared with a
    // kernel instance where the running kernel allows the write (some builds answer EPERM).
    let i = Inst::new();
    let k = KernelInst::new("subbuf");
    let data_line = |hp: &str| -> String {
        hp.lines()
            .find(|l| l.contains(" data;"))
            .unwrap_or_else(|| panic!("no data line: {hp}"))
            .to_string()
    };
    for kb in ["8", "4", "32"] {
        i.w("buffer_subbuf_size_kb", kb).unwrap();
        assert_eq!(i.r("buffer_subbuf_size_kb"), format!("{kb}\n"));
        let ours = i.r("events/header_page");
        let want = format!(
            "\tfield: char data;\toffset:16;\tsize:{};\tsigned:0;",
            kb.parse::<usize>().unwrap() * 1024 - 16
        );
        assert_eq!(data_line(&ours), want, "kb {kb}");
        assert_eq!(i.w("trace_marker", vec![b'X'; 8176]), Ok(4054), "kb {kb}");
        match write_raw(
            &k.p("buffer_subbuf_size_kb"),
            kb.as_bytes(),
            libc::O_WRONLY | libc::O_TRUNC,
        ) {
            Ok(_) => {
                // (One read: like the kernel's, the file answers EOF past its first read.)
                let theirs = crate::tree::read_once(&k.p("events/header_page"));
                assert_eq!(ours.as_bytes(), theirs, "kb {kb}");
                assert_eq!(
                    write_raw(&k.p("trace_marker"), &[b'X'; 8176], libc::O_WRONLY),
                    Ok(4054),
                    "kb {kb}: the kernel"
                );
            }
            Err(e) => {
                println!("kernel refuses buffer_subbuf_size_kb {kb} (errno {e}): not compared")
            }
        }
    }
    // The top level keeps its own size.
    assert_eq!(
        data_line(
            &String::from_utf8(crate::tree::read_once(&i.m.p("events/header_page"))).unwrap()
        ),
        "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;"
    );
}

#[test]
fn inject_renders_catalog_print_fmt() {
    let i = Inst::new();
    let rec = "prev_comm=\"a\" prev_pid=1 prev_prio=120 prev_state=1 \
               next_comm=\"b\" next_pid=2 next_prio=120";
    i.w("events/sched/sched_switch/inject", rec).unwrap();
    i.w(
        "events/sched/sched_switch/inject",
        "prev_comm=\"c\" prev_pid=3 prev_prio=100 prev_state=0x102 next_comm=\"swapper\" next_pid=0 next_prio=120",
    )
    .unwrap();
    i.w("events/irq/softirq_entry/inject", "vec=3").unwrap();
    let trace = i.r("trace");
    let outs: Vec<&str> = records(&trace).into_iter().map(|l| fields(l).4).collect();
    assert_eq!(
        outs,
        [
            "sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 next_prio=120",
            "sched_switch: prev_comm=c prev_pid=3 prev_prio=100 prev_state=D+ ==> next_comm=swapper next_pid=0 next_prio=120",
            "softirq_entry: vec=3 [action=NET_RX]",
        ],
        "{trace}"
    );
    // Bad input is refused and records nothing.
    // (ENOENT for an unknown field, EINVAL for a malformed one: trace_events_inject.c.)
    assert_eq!(
        i.w("events/sched/sched_switch/inject", "no_such_field=1"),
        Err(libc::ENOENT)
    );
    assert_eq!(
        i.w("events/sched/sched_switch/inject", "prev_pid=\"x\""),
        Err(libc::EINVAL)
    );
    assert_eq!(records(&i.r("trace")).len(), 3);
}

#[test]
fn inject_into_synthetic_and_user_events() {
    let i = Inst::new();
    write_raw(
        &i.m.p("synthetic_events"),
        b"wakeup_lat pid_t pid; u64 lat; char comm[16]",
        libc::O_WRONLY,
    )
    .unwrap();
    i.w(
        "events/synthetic/wakeup_lat/inject",
        "pid=42 lat=1000 comm=\"worker\"",
    )
    .unwrap();
    let trace = i.r("trace");
    let recs = records(&trace);
    assert_eq!(recs.len(), 1, "{trace}");
    assert_eq!(
        fields(recs[0]).4,
        "wakeup_lat: pid=42 lat=1000 comm=worker",
        "{trace}"
    );
}

#[test]
fn filters_and_triggers_act_on_records() {
    // Only injected records: with the process connector on, a trigger on sched_process_exec
    // also fires for every exec on the machine (as the kernel's would), e.g. another test's,
    // and its count runs out before the inject below.
    let i = Inst::with_args(&["--no-proc-events"]);
    let ev = "events/sched/sched_process_exec";
    i.w(&format!("{ev}/filter"), "pid > 100").unwrap();
    for pid in [5, 500, 50, 5000] {
        i.w(
            &format!("{ev}/inject"),
            format!("filename=\"/bin/p{pid}\" pid={pid} old_pid={pid}"),
        )
        .unwrap();
    }
    let trace = i.r("trace");
    let outs: Vec<&str> = records(&trace).into_iter().map(|l| fields(l).4).collect();
    assert_eq!(
        outs,
        [
            "sched_process_exec: filename=/bin/p500 pid=500 old_pid=500",
            "sched_process_exec: filename=/bin/p5000 pid=5000 old_pid=5000",
        ]
    );

    // A conditional traceoff on the marker: the record that fires it is kept, later ones
    // are refused.
    i.w("trace", "").unwrap();
    i.w(
        "events/ftrace/print/trigger",
        "traceoff if buf ~ \"*stop*\"",
    )
    .unwrap();
    i.w("trace_marker", "go").unwrap();
    assert_eq!(i.r("tracing_on"), "1\n");
    i.w("trace_marker", "please stop").unwrap();
    assert_eq!(i.r("tracing_on"), "0\n");
    assert_eq!(i.w("trace_marker", "after"), Err(libc::EBADF));
    let trace = i.r("trace");
    assert!(trace.contains("tracing_mark_write: please stop"), "{trace}");
    assert!(
        i.r("events/ftrace/print/trigger")
            .contains("traceoff:unlimited if buf ~ \"*stop*\"")
    );

    // enable_event with a count: the first matching record soft-enables the target.
    i.w("tracing_on", "1").unwrap();
    i.w("trace", "").unwrap();
    let fork = "events/sched/sched_process_fork";
    i.w(
        &format!("{ev}/trigger"),
        "enable_event:sched:sched_process_fork:1",
    )
    .unwrap();
    assert_eq!(i.r(&format!("{fork}/enable")), "0*\n");
    i.w(&format!("{ev}/inject"), "pid=700").unwrap();
    assert_eq!(i.r(&format!("{fork}/enable")), "1*\n");
    assert!(
        i.r(&format!("{ev}/trigger"))
            .contains("enable_event:sched:sched_process_fork:count=0")
    );

    // stacktrace records a kernel stack with no frames.
    i.w(&format!("{ev}/trigger"), "stacktrace").unwrap();
    i.w(&format!("{ev}/inject"), "pid=800").unwrap();
    let trace = i.r("trace");
    assert!(trace.contains(": <stack trace>\n"), "{trace}");
}

#[test]
fn set_event_pid_filters_the_writer() {
    let i = Inst::new();
    i.w("set_event_pid", "1").unwrap();
    i.w("events/sched/sched_process_exec/inject", "pid=1")
        .unwrap();
    assert!(records(&i.r("trace")).is_empty(), "not pid 1 writing");
    i.w("set_event_pid", format!("{}", gettid())).unwrap();
    i.w("events/sched/sched_process_exec/inject", "pid=2")
        .unwrap();
    assert_eq!(records(&i.r("trace")).len(), 1);
    i.w("set_event_notrace_pid", format!("{}", gettid()))
        .unwrap();
    i.w("events/sched/sched_process_exec/inject", "pid=3")
        .unwrap();
    assert_eq!(records(&i.r("trace")).len(), 1);
}

/// Reads `path` (O_RDONLY, blocking) in a thread; returns what one read(2) gave.
fn spawn_reader(path: &Path) -> std::thread::JoinHandle<std::io::Result<String>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 65536];
        let n = f.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

#[test]
fn trace_pipe_blocks_without_stalling_the_mount() {
    let i = Inst::new();
    let readers: Vec<_> = (0..3).map(|_| spawn_reader(&i.p("trace_pipe"))).collect();
    eventually("three parked readers", || {
        i.m.stats().get("blocked_readers") == Some(&3)
    });
    // The mount keeps serving everything else meanwhile.
    let ls = std::process::Command::new("ls")
        .arg(i.p("events/sched"))
        .output()
        .unwrap();
    assert!(ls.status.success());
    std::fs::metadata(i.p("events/sched/sched_switch/format")).unwrap();
    i.w("events/sched/sched_switch/enable", "1").unwrap();
    i.w("events/sched/sched_switch/enable", "0").unwrap();
    assert!(readers.iter().all(|r| !r.is_finished()));
    // Each marker wakes one reader (a woken reader takes whatever is there, so the next
    // marker waits until it has); what was read is gone from `trace`.
    for n in 0..3u64 {
        i.w("trace_marker", format!("m{n}")).unwrap();
        eventually("a reader to take the marker", || {
            i.m.stats().get("blocked_readers") == Some(&(2 - n))
        });
    }
    let mut got: Vec<String> = readers
        .into_iter()
        .map(|r| r.join().unwrap().unwrap())
        .collect();
    got.sort();
    let all = got.concat();
    for n in 0..3 {
        assert_eq!(
            all.matches(&format!("tracing_mark_write: m{n}\n")).count(),
            1,
            "{all}"
        );
    }
    assert!(records(&i.r("trace")).is_empty(), "trace_pipe consumes");
    assert!(!all.contains('#'), "trace_pipe has no header");
}

#[test]
fn trace_pipe_nonblocking_and_poll() {
    let i = Inst::new();
    let open = |flags: i32| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(i.p("trace_pipe"))
            .unwrap()
    };
    let mut nb = open(libc::O_NONBLOCK);
    let mut buf = [0u8; 4096];
    let e = nb.read(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    let f = open(0);
    let poll = |timeout_ms: i32| {
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        (n, p.revents)
    };
    assert_eq!(poll(100), (0, 0), "empty: not readable");
    // A poller blocked with no timeout is woken by the commit.
    let marker = i.p("trace_marker");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        write_raw(&marker, b"wake", libc::O_WRONLY).unwrap();
    });
    let (n, revents) = poll(10_000);
    writer.join().unwrap();
    assert_eq!(n, 1);
    assert!(revents & libc::POLLIN != 0);
    let n = nb.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("tracing_mark_write: wake"));
    assert_eq!(poll(50), (0, 0), "consumed: not readable again");
}

/// `per_cpu/cpuN/stats` as key → value.
fn stats(i: &Inst, cpu: usize) -> std::collections::HashMap<String, String> {
    i.r(&format!("per_cpu/cpu{cpu}/stats"))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn num(s: &std::collections::HashMap<String, String>, k: &str) -> u64 {
    s[k].parse().unwrap_or_else(|_| panic!("{k}: {s:?}"))
}

#[test]
fn ring_overwrite_and_drop_accounting() {
    let i = Inst::new();
    i.w("buffer_size_kb", "8").unwrap();
    // Pin every write to one CPU's ring: run the writes from a thread bound to CPU 0.
    let text = "y".repeat(200);
    let written = 300u64;
    let path = i.p("trace_marker");
    let write_all = move |path: std::path::PathBuf, text: String| {
        std::thread::spawn(move || {
            for _ in 0..written {
                write_raw(&path, text.as_bytes(), libc::O_WRONLY).unwrap();
            }
        })
        .join()
        .unwrap();
    };
    write_all(path.clone(), text.clone());
    let ncpu = utracefs::ncpu();
    let (mut entries, mut overrun) = (0, 0);
    for cpu in 0..ncpu {
        let s = stats(&i, cpu);
        entries += num(&s, "entries");
        overrun += num(&s, "overrun");
    }
    assert_eq!(
        entries + overrun,
        written,
        "every record is kept or overrun"
    );
    assert!(
        overrun > 0,
        "an 8 KiB ring cannot keep {written} 200-byte records"
    );
    let trace = i.r("trace");
    assert!(
        trace.contains(&format!(
            "entries-in-buffer/entries-written: {entries}/{written} "
        )),
        "{trace}"
    );
    assert_eq!(records(&trace).len() as u64, entries);
    // The newest record survives overwriting.
    assert!(records(&trace).last().unwrap().ends_with(&text));

    // Without overwrite the newest records are dropped instead.
    i.w("trace", "").unwrap();
    i.w("options/overwrite", "0").unwrap();
    i.w("trace_marker", "first").unwrap();
    write_all(path, text);
    let (mut dropped, mut overrun) = (0, 0);
    for cpu in 0..ncpu {
        let s = stats(&i, cpu);
        dropped += num(&s, "dropped events");
        overrun += num(&s, "overrun");
    }
    assert!(dropped > 0);
    assert_eq!(overrun, 0);
    assert!(i.r("trace").contains("tracing_mark_write: first"));
}

#[test]
fn process_connector_records_fork_exec_exit() {
    let i = Inst::new();
    for e in [
        "sched_process_fork",
        "sched_process_exec",
        "sched_process_exit",
    ] {
        i.w(&format!("events/sched/{e}/enable"), "1").unwrap();
    }
    let child = std::process::Command::new("/bin/sh")
        // The exec'd program lives a moment, so its argv is still there to name it when the
        // connector's message is handled (a task gone by then is named by its comm only).
        .args(["-c", "/bin/sleep 0.3; exit 0"])
        .spawn()
        .unwrap();
    let sh = child.id();
    let status = child.wait_with_output().unwrap().status;
    assert!(status.success());
    let mut trace = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(trace.contains(&format!("child_pid={sh}\n"))
        && trace.contains("sched_process_exec: filename=/bin/sleep ")
        && trace.contains(&format!("sched_process_exit: comm=sh pid={sh} ")))
    {
        assert!(
            Instant::now() < deadline,
            "no fork/exec/exit of {sh}:\n{trace}"
        );
        std::thread::sleep(Duration::from_millis(20));
        trace = i.r("trace");
    }
    let fork = records(&trace)
        .into_iter()
        .find(|l| l.ends_with(&format!(" child_pid={sh}")))
        .unwrap();
    // The forking thread of this test process is the parent and the record's task.
    let (task, _, _, _, out) = fields(fork);
    assert!(out.starts_with("sched_process_fork: comm="), "{fork}");
    let parent = out
        .split(" pid=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(task.ends_with(&format!("-{parent}")), "{fork}");
}

/// The exec handling names the program from what the kernel publishes about the task
/// (`/proc/<pid>/exe`, `cwd`, `cmdline`) and never looks a path of the task up: a task whose
/// cwd or argv[0] lies in a FUSE mount (here this very mount) causes no lookup there from the
/// daemon. A bare argv[0] gives the `exe` link; an argv[0] that is a path is taken as given.
/// (Other daemons on the machine see the same tasks, so only this daemon's threads count.)
#[test]
fn exec_records_never_look_up_the_tasks_paths() {
    use std::os::unix::process::CommandExt;
    let m = Mount::with_log(&[], "utracefs::fs=debug");
    std::fs::write(m.p("events/sched/sched_process_exec/enable"), "1").unwrap();
    let bogus = m.p("no_such_dir/sleep");
    let spawn = |arg0: &Path, cwd: &Path| {
        std::process::Command::new("/bin/sleep")
            .arg0(arg0)
            .arg("1000")
            .current_dir(cwd)
            .spawn()
            .unwrap()
    };
    // A bare name resolved against a cwd inside the mount, and a path inside it naming nothing.
    let mut kids = [
        spawn(Path::new("sleep"), &m.p("events/sched")),
        spawn(&bogus, Path::new("/")),
    ];
    let recorded = kids.each_ref().map(|k| format!(" pid={} old_pid=", k.id()));
    let mut trace = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !recorded.iter().all(|w| trace.contains(w.as_str())) {
        if Instant::now() > deadline {
            for k in &mut kids {
                let _ = k.kill();
            }
            panic!("no exec records {recorded:?} in:\n{trace}");
        }
        std::thread::sleep(Duration::from_millis(20));
        trace = read(&m.p("trace"));
    }
    for k in &mut kids {
        k.kill().unwrap();
        k.wait().unwrap();
    }
    let own: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", m.pid()))
        .unwrap()
        .map(|t| format!("pid={}", t.unwrap().file_name().to_str().unwrap()))
        .collect();
    let log = m.log();
    let by_daemon: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lookup") && own.iter().any(|p| l.ends_with(p.as_str())))
        .collect();
    assert!(
        by_daemon.is_empty(),
        "the daemon looked up the exec'ing tasks' paths in the mount: {by_daemon:#?}"
    );
    let exe = std::fs::canonicalize("/bin/sleep").unwrap();
    for want in [
        format!("filename={}{}", exe.display(), recorded[0]),
        format!("filename={}{}", bogus.display(), recorded[1]),
    ] {
        assert!(trace.contains(&want), "no {want:?} in:\n{trace}");
    }
}

/// Forks a short-lived child, so the process connector reports a `sched_process_fork`.
fn fork_one() {
    let st = std::process::Command::new("/bin/true").status().unwrap();
    assert!(st.success());
}

#[test]
fn fork_triggers_fire_while_tracing_is_off() {
    // ftracetest's trigger-traceonoff.tc: `traceon` on sched_process_fork, tracing off, a
    // subshell forks, tracing must be on again. The kernel (6.18) fires a tracepoint's
    // triggers whatever `tracing_on` says; those needing no record (no filter, no stacktrace)
    // even for a task the pid lists filter out; conditional ones only for a task let through.
    let i = Inst::new();
    let fork = "events/sched/sched_process_fork";
    i.w("tracing_on", "0").unwrap();
    i.w(&format!("{fork}/trigger"), "traceon").unwrap();
    assert_eq!(i.r(&format!("{fork}/enable")), "0*\n");
    fork_one();
    eventually("traceon on a fork", || i.r("tracing_on") == "1\n");
    i.w(&format!("{fork}/trigger"), "!traceon").unwrap();

    // Enabled, a pid filter nobody forks under: an unconditional trigger still fires.
    i.w(&format!("{fork}/enable"), "1").unwrap();
    i.w("set_event_pid", "999999").unwrap();
    i.w(&format!("{fork}/trigger"), "traceoff").unwrap();
    fork_one();
    eventually("traceoff despite set_event_pid", || {
        i.r("tracing_on") == "0\n"
    });
    i.w(&format!("{fork}/trigger"), "!traceoff").unwrap();

    // A conditional trigger fires while tracing is off, but not for a filtered-out task.
    i.w(&format!("{fork}/trigger"), "traceon if child_pid > 0")
        .unwrap();
    fork_one();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(i.r("tracing_on"), "0\n", "pid-filtered: no trigger");
    i.w("set_event_pid", "").unwrap();
    i.w("trace", "").unwrap();
    fork_one();
    eventually("conditional traceon on a fork", || {
        i.r("tracing_on") == "1\n"
    });
    // The fork that switched tracing on is recorded.
    eventually("a fork record", || {
        i.r("trace").contains("sched_process_fork: comm=")
    });
}

/// An independent reader of `trace_pipe_raw`, written from `events/header_page` and
/// `events/header_event` as served (not from the daemon's code): returns (timestamp, payload)
/// of every data record in one sub-buffer page.
fn decode_page(header_page: &str, page: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let field = |name: &str| -> (usize, usize) {
        let line = header_page
            .lines()
            .find(|l| l.contains(&format!(" {name};")))
            .unwrap_or_else(|| panic!("{name} in header_page"));
        let num = |key: &str| -> usize {
            let v = &line[line.find(key).unwrap() + key.len()..];
            v[..v.find(';').unwrap()].parse().unwrap()
        };
        (num("offset:"), num("size:"))
    };
    let (ts_off, ts_size) = field("timestamp");
    let (commit_off, commit_size) = field("commit");
    let (data_off, _) = field("data");
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |a, x| (a << 8) | u64::from(*x));
    let mut ts = le(&page[ts_off..ts_off + ts_size]);
    // The commit's low bits count data bytes; the top bits flag missed events.
    let len = (le(&page[commit_off..commit_off + commit_size]) & ((1 << 27) - 1)) as usize;
    let data = &page[data_off..data_off + len];
    let mut out = Vec::new();
    let mut p = 0;
    while p + 4 <= data.len() {
        let hdr = le(&data[p..p + 4]) as u32;
        let (type_len, delta) = (hdr & 0x1f, u64::from(hdr >> 5));
        p += 4;
        match type_len {
            // padding: the rest of the page (or an explicit length).
            29 => {
                if delta == 0 {
                    break;
                }
                p += le(&data[p..p + 4]) as usize;
            }
            30 => {
                ts += delta | (le(&data[p..p + 4]) << 27);
                p += 4;
            }
            31 => {
                ts = delta | (le(&data[p..p + 4]) << 27);
                p += 4;
            }
            0 => {
                let n = le(&data[p..p + 4]) as usize - 4;
                ts += delta;
                out.push((ts, data[p + 4..p + 4 + n].to_vec()));
                p += 4 + n.next_multiple_of(4);
            }
            n => {
                ts += delta;
                let n = n as usize * 4;
                out.push((ts, data[p..p + n].to_vec()));
                p += n;
            }
        }
    }
    out
}

/// Every record of the trace array at `root`, consumed page by page from each CPU's
/// `trace_pipe_raw` and decoded with [`decode_page`], oldest first.
fn raw_records(root: &Path) -> Vec<(u64, Vec<u8>)> {
    // One read: like the kernel's, header_page answers EOF past offset 0 (§3.3).
    let header_page = {
        let mut buf = vec![0u8; 65536];
        let n = std::fs::File::open(root.join("events/header_page"))
            .unwrap()
            .read(&mut buf)
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let mut got = Vec::new();
    for cpu in 0..utracefs::ncpu() {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(root.join(format!("per_cpu/cpu{cpu}/trace_pipe_raw")))
            .unwrap();
        loop {
            let mut page = vec![0u8; 4096];
            match f.read(&mut page) {
                Ok(4096) => got.extend(decode_page(&header_page, &page)),
                Ok(n) => panic!("a short page of {n} bytes"),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    got.sort_by_key(|r| r.0);
    got
}

#[test]
fn trace_pipe_raw_pages_decode_independently() {
    let i = Inst::new();
    let print_id: u16 = i.r("events/ftrace/print/id").trim().parse().unwrap();
    let texts: Vec<String> = (0..50)
        .map(|n| format!("raw record {n} {}", "z".repeat(n * 7)))
        .collect();
    for t in &texts {
        i.w("trace_marker", t).unwrap();
    }
    let got = raw_records(&i.p(""));
    assert_eq!(got.len(), texts.len());
    for ((_, rec), text) in got.iter().zip(&texts) {
        assert_eq!(u16::from_le_bytes([rec[0], rec[1]]), print_id);
        assert_eq!(i32::from_le_bytes(rec[4..8].try_into().unwrap()), gettid());
        // `buf` at offset 16 (format of ftrace/print), newline supplied, NUL-terminated.
        let buf = &rec[16..];
        let end = buf.iter().position(|b| *b == 0).unwrap();
        assert_eq!(&buf[..end], format!("{text}\n").as_bytes());
    }
    assert!(records(&i.r("trace")).is_empty(), "raw reads consume");
}

/// `trace_marker_raw` records a write whole or not at all: up to what one record holds (4064
/// bytes with 4 KiB sub-buffers), EINVAL beyond and below 4 bytes, and the size checks come
/// before tracing_on's EBADF. The records are read back raw; all compared with a kernel
/// instance.
#[test]
fn raw_marker_records_whole_writes_up_to_one_record() {
    let i = Inst::new();
    let k = KernelInst::new("rawmax");
    let payload = |n: usize| -> Vec<u8> { (0..n).map(|b| (b * 7 % 251) as u8).collect() };
    let sizes = [1, 3, 4, 5, 4063, 4064, 4065, 5000, 8192];
    let write_all = |root: &Path| -> Vec<Result<usize, i32>> {
        sizes
            .iter()
            .map(|n| write_raw(&root.join("trace_marker_raw"), &payload(*n), libc::O_WRONLY))
            .collect()
    };
    use libc::{EBADF, EINVAL};
    for root in [i.p(""), k.p("")] {
        let on = write_all(&root);
        assert_eq!(
            on,
            [
                Err(EINVAL),
                Err(EINVAL),
                Ok(4),
                Ok(5),
                Ok(4063),
                Ok(4064),
                Err(EINVAL),
                Err(EINVAL),
                Err(EINVAL)
            ],
            "{}",
            root.display()
        );
        let recs = raw_records(&root);
        let lens: Vec<usize> = recs.iter().map(|r| r.1.len()).collect();
        // The 8-byte common header, then the write as it was (the ring pads to 4 bytes).
        assert_eq!(lens, [12, 16, 4072, 4072], "{}", root.display());
        for ((_, rec), n) in recs.iter().zip([4, 5, 4063, 4064]) {
            assert_eq!(&rec[8..8 + n], &payload(n)[..], "{}", root.display());
        }
        write_raw(&root.join("tracing_on"), b"0", libc::O_WRONLY).unwrap();
        let off = write_all(&root);
        assert_eq!(
            off,
            [
                Err(EINVAL),
                Err(EINVAL),
                Err(EBADF),
                Err(EBADF),
                Err(EBADF),
                Err(EBADF),
                Err(EINVAL),
                Err(EINVAL),
                Err(EINVAL)
            ],
            "{}",
            root.display()
        );
        // With `markers` off every marker write is EINVAL, tracing on or off.
        write_raw(&root.join("options/markers"), b"0", libc::O_WRONLY).unwrap();
        assert_eq!(
            write_raw(&root.join("trace_marker_raw"), &payload(8), libc::O_WRONLY),
            Err(EINVAL)
        );
        assert_eq!(
            write_raw(&root.join("trace_marker"), b"x", libc::O_WRONLY),
            Err(EINVAL)
        );
    }
}

/// Pins thread `tid` (0: the caller) to one CPU; returns the mask it had.
fn pin(tid: i32, cpu: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; the calls only read/write the sets given.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(tid, std::mem::size_of_val(&old), &mut old);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set),
            0,
            "pin {tid} to CPU {cpu}"
        );
        old
    }
}

/// `tracing_cpumask` text for every CPU but `cpu` (32-bit hex groups, most significant first).
fn mask_without(cpu: usize) -> String {
    let ncpu = utracefs::ncpu();
    let groups: Vec<String> = (0..ncpu.div_ceil(32))
        .rev()
        .map(|g| {
            let bits = (g * 32..(g * 32 + 32).min(ncpu))
                .filter(|c| *c != cpu)
                .fold(0u32, |m, c| m | 1 << (c - g * 32));
            format!("{bits:x}")
        })
        .collect();
    groups.join(",")
}

/// `tracing_cpumask`: a CPU left out of the mask records nothing — a marker written there is
/// EBADF, a process event there is dropped — while the others record as before. Compared with
/// a kernel instance. The test thread is pinned to the masked CPU (the kernel charges a marker
/// to the writer's CPU), and so is the daemon (which charges it to the CPU that handles it);
/// without waiting workers, which pin themselves (one changing its own mask at the instant of
/// the test's pin can undo it: see `fs/spin.rs`).
#[test]
fn tracing_cpumask_leaves_a_cpu_out() {
    let i = Inst::with_args(&["--spin-us", "0"]);
    let k = KernelInst::new("cpumask");
    let masked = 0;
    let old = pin(0, masked);
    for task in std::fs::read_dir(format!("/proc/{}/task", i.m.pid())).unwrap() {
        let tid: i32 = task.unwrap().file_name().to_str().unwrap().parse().unwrap();
        pin(tid, masked);
    }
    let all = i.r("tracing_cpumask");
    assert_eq!(all, read(&k.p("tracing_cpumask")));
    // Runs /bin/true on this thread's CPUs; returns its pid.
    let exec = || -> u32 {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        assert!(child.wait().unwrap().success());
        child.id()
    };
    let roots = [i.p(""), k.p("")];
    for root in &roots {
        let w = |f: &str, d: &[u8]| write_raw(&root.join(f), d, libc::O_WRONLY);
        w("events/sched/sched_process_exec/enable", b"1").unwrap();
        assert_eq!(
            w("tracing_cpumask", mask_without(masked).as_bytes()),
            Ok(mask_without(masked).len())
        );
        assert_eq!(
            w("trace_marker", b"masked"),
            Err(libc::EBADF),
            "{}",
            root.display()
        );
        assert_eq!(w("trace_marker_raw", b"\x07\0\0\0ab"), Err(libc::EBADF));
        assert_eq!(w("trace_marker_raw", b"ab"), Err(libc::EINVAL));
    }
    assert_eq!(i.r("tracing_cpumask"), read(&k.p("tracing_cpumask")));
    let hidden = exec();
    // A process event on a CPU still traced is recorded: once it is in, the connector's
    // earlier message (the masked exec) has been handled too.
    let seen = (utracefs::ncpu() > 1).then(|| {
        let mine = pin(0, masked + 1);
        let pid = exec();
        // SAFETY: restores this thread's own mask.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&mine), &mine) };
        pid
    });
    let has = |t: &str, pid: u32| t.contains(&format!(" pid={pid} old_pid={pid}"));
    if let Some(pid) = seen {
        eventually("the exec on a traced CPU", || has(&i.r("trace"), pid));
        assert!(has(&read(&k.p("trace")), pid));
    }
    for root in &roots {
        let trace = read(&root.join("trace"));
        assert!(!has(&trace, hidden), "{}: {trace}", root.display());
        assert!(!trace.contains("tracing_mark_write: masked"), "{trace}");
        let w = |f: &str, d: &[u8]| write_raw(&root.join(f), d, libc::O_WRONLY);
        w("tracing_cpumask", all.as_bytes()).unwrap();
        assert_eq!(w("trace_marker", b"back"), Ok(4), "{}", root.display());
        w("events/sched/sched_process_exec/enable", b"0").unwrap();
    }
    // SAFETY: restores this thread's own mask.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&old), &old) };
}

/// trace-cmd (libtracefs) insists on a mount of type `tracefs`: in a private mount namespace
/// the kernel's tracefs is mounted at /sys/kernel/tracing and the daemon on top of it (the
/// "underlay" recipe of ecosystem-tools.md §3.2); `trace-cmd record` then reads our
/// `trace_pipe_raw` pages and `trace-cmd report` decodes them.
#[test]
fn trace_cmd_records_and_reports_from_the_mount() {
    let which = std::process::Command::new("sh")
        .args(["-c", "command -v trace-cmd"])
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "trace-cmd is not installed (.ci/run installs it)"
    );
    let dir = TempDir::new("tcmd");
    let dat = dir.path().join("out.dat");
    let script = format!(
        r#"set -e
for m in $(awk '$3=="tracefs"||$3=="debugfs"{{print $2}}' /proc/mounts | sort -r); do umount -l "$m"; done
mount -t tracefs nodev /sys/kernel/tracing
# trace-cmd writes kernel.ftrace_enabled: give it a scratch file, and /proc/sys and /sys
# read-only otherwise, so nothing outside this namespace changes.
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
echo 1 > {dir}/ftrace_enabled && mount --bind {dir}/ftrace_enabled /proc/sys/kernel/ftrace_enabled
{bin} -o over /sys/kernel/tracing 2>{dir}/daemon.log &
for n in $(seq 200); do grep -q ' /sys/kernel/tracing fuse.tracefs ' /proc/mounts && break; sleep 0.05; done
cd {dir}
trace-cmd record -q -e sched:sched_process_exec -o {dat} \
    sh -c 'echo hello-from-trace-cmd > /sys/kernel/tracing/trace_marker; /bin/sleep 0.2' >/dev/null
umount /sys/kernel/tracing
trace-cmd report -i {dat}
"#,
        bin = env!("CARGO_BIN_EXE_utracefs"),
        dir = dir.path().display(),
        dat = dat.display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr) + "\ndaemon log:\n" + log.as_str();
    assert!(
        out.status.success(),
        "trace-cmd failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("tracing_mark_write: hello-from-trace-cmd"),
        "report:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("sched_process_exec:") && stdout.contains("filename=/bin/sleep"),
        "report:\n{stdout}\n{stderr}"
    );
}

/// `ioctl(fd, 0)` on a ring-buffer file ends the read blocked on it with 0 bytes (how
/// trace-cmd stops its readers), and leaves later reads alone.
#[test]
fn ioctl_zero_releases_a_blocked_raw_reader() {
    let i = Inst::new();
    let f = std::fs::File::open(i.p("per_cpu/cpu0/trace_pipe_raw")).unwrap();
    let fd = f.as_raw_fd();
    let reader = std::thread::spawn(move || {
        let mut f = f;
        let mut page = vec![0u8; 4096];
        let n = f.read(&mut page);
        (f, n.map_err(|e| e.raw_os_error()))
    });
    eventually("the raw reader to block", || {
        i.m.stats().get("blocked_readers") == Some(&1)
    });
    // SAFETY: fd stays open in the reader thread until it returns.
    assert_eq!(unsafe { libc::ioctl(fd, 0) }, 0);
    let (_f, n) = reader.join().unwrap();
    assert_eq!(n, Ok(0));
    let trace = std::fs::File::open(i.p("trace")).unwrap();
    // SAFETY: a valid fd; tracefs text files have no ioctls.
    assert_eq!(unsafe { libc::ioctl(trace.as_raw_fd(), 0) }, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOTTY)
    );
}

/// The `trace` header and line layout under `record-tgid`, `irq-info`, `context-info`, `raw`
/// and `hex`, compared with a kernel instance doing the same.
#[test]
fn output_options_match_the_kernel() {
    let i = Inst::new();
    let k = KernelInst::new("opts");
    let set = |opt: &str, v: &str| {
        i.w(&format!("options/{opt}"), v).unwrap();
        write_raw(
            &k.p(&format!("options/{opt}")),
            v.as_bytes(),
            libc::O_WRONLY,
        )
        .unwrap();
    };
    for root in [&i.p("trace_marker"), &k.p("trace_marker")] {
        write_raw(root, b"opt line", libc::O_WRONLY).unwrap();
    }
    let header = |t: &str| -> String {
        t.lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    // A record's line with the numbers (pid, CPU, time, tgid, ip) masked.
    let mask = |t: &str| -> Vec<String> {
        records(t)
            .into_iter()
            .map(|l| {
                // (The comm differs: the kernel's saved_cmdlines may know this tid, by a comm
                // with spaces even. So may the kernel's tgid map, which outlives every
                // `record-tgid` that ever filled it: `(-------)` and `(  1234)` are the same
                // column.)
                mask_task(&mask_tgid(l.trim_start()))
                    .split(' ')
                    .map(|w| {
                        if w.chars().any(|c| c.is_ascii_digit()) && w != "line" {
                            "N"
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let check = |what: &str| {
        let (ours, theirs) = (i.r("trace"), read(&k.p("trace")));
        assert_eq!(header(&ours), header(&theirs), "header with {what}");
        assert_eq!(mask(&ours), mask(&theirs), "line with {what}");
    };
    check("defaults");
    set("record-tgid", "1");
    check("record-tgid");
    set("irq-info", "0");
    check("record-tgid, no irq-info");
    set("record-tgid", "0");
    check("no irq-info");
    set("irq-info", "1");
    set("context-info", "0");
    check("no context-info");
    set("context-info", "1");
    set("raw", "1");
    check("raw");
    set("raw", "0");
    set("hex", "1");
    check("hex");
}

/// `line` (its tgid column masked) with its task column, `comm-pid` whatever the comm holds,
/// written `TASK`.
fn mask_task(line: &str) -> String {
    let Some(cpu) = line.find(" [") else {
        return line.to_string();
    };
    let head = &line[..cpu];
    let task_end = head.strip_suffix(" (TGID)").map_or(head.len(), str::len);
    format!("TASK{}", &line[task_end..])
}

/// `line` with its tgid column, known (`(  1234)`) or not (`(-------)`), written `(TGID)`.
fn mask_tgid(line: &str) -> String {
    let Some(open) = line.find('(') else {
        return line.to_string();
    };
    match line[open..].find(')') {
        Some(len)
            if len > 1
                && line[open + 1..open + len]
                    .chars()
                    .all(|c| c == ' ' || c == '-' || c.is_ascii_digit()) =>
        {
            format!("{}(TGID){}", &line[..open], &line[open + len + 1..])
        }
        _ => line.to_string(),
    }
}

/// Triggers that name other events fire while dynamic events are created and deleted: a
/// trigger resolves its target with the trace array's state held, a delete holds the
/// directory locks and then checks every state — the two must never wait for each other.
#[test]
fn triggers_firing_during_dynamic_event_churn_do_not_deadlock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let i = Inst::new();
    let ev = "events/sched/sched_process_exec";
    i.w(
        &format!("{ev}/trigger"),
        "enable_event:sched:sched_process_fork",
    )
    .unwrap();
    i.w(
        &format!("{ev}/trigger"),
        "disable_event:sched:sched_process_exit",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (fired, churned) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let inject = i.p(&format!("{ev}/inject"));
    let dynamic = i.m.p("dynamic_events");
    let threads = vec![
        {
            let (stop, fired) = (stop.clone(), fired.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    write_raw(&inject, b"pid=1", libc::O_WRONLY).unwrap();
                    fired.fetch_add(1, Ordering::Relaxed);
                }
            })
        },
        {
            let (stop, churned) = (stop.clone(), churned.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let flags = libc::O_WRONLY | libc::O_APPEND;
                    write_raw(&dynamic, b"s:dl_ev u64 x", flags).unwrap();
                    write_raw(&dynamic, b"-:synthetic/dl_ev", flags).unwrap();
                    churned.fetch_add(1, Ordering::Relaxed);
                }
            })
        },
    ];
    // Both loops must keep going; a deadlock stops them (bounded liveness wait, not a speed
    // check).
    for _ in 0..3 {
        let (f, c) = (
            fired.load(Ordering::Relaxed),
            churned.load(Ordering::Relaxed),
        );
        eventually("both loops to make progress", || {
            fired.load(Ordering::Relaxed) > f + 20 && churned.load(Ordering::Relaxed) > c + 20
        });
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

/// `--no-proc-events` turns the process connector off: an enabled `sched_process_exec` sees
/// nothing of a child the test runs (the same child is recorded with the source on, above).
#[test]
fn no_proc_events_flag_turns_the_source_off() {
    let m = crate::common::Mount::new(&["--no-proc-events"]);
    let enable = m.p("events/sched/sched_process_exec/enable");
    write_raw(&enable, b"1", libc::O_WRONLY).unwrap();
    let st = std::process::Command::new("/bin/sleep")
        .arg("0.2")
        .status()
        .unwrap();
    assert!(st.success());
    // The connector delivers within milliseconds when it is on; give it ample time.
    std::thread::sleep(Duration::from_millis(500));
    assert!(records(&read(&m.p("trace"))).is_empty());
    // The mount works otherwise: an injected exec record shows.
    write_raw(
        &m.p("events/sched/sched_process_exec/inject"),
        b"pid=7",
        libc::O_WRONLY,
    )
    .unwrap();
    assert_eq!(records(&read(&m.p("trace"))).len(), 1);
}

/// Closing `free_buffer` shrinks the rings to their minimum, keeping the newest record, and
/// with `disable_on_free` stops tracing — as a kernel instance does.
#[test]
fn closing_free_buffer_shrinks_the_rings() {
    let i = Inst::new();
    let k = KernelInst::new("freebuf");
    for (p, trace_on) in [(i.p(""), i.p("tracing_on")), (k.p(""), k.p("tracing_on"))] {
        write_raw(&p.join("trace_marker"), b"kept", libc::O_WRONLY).unwrap();
        write_raw(&p.join("free_buffer"), b"\n", libc::O_WRONLY).unwrap();
        let trace = read(&p.join("trace"));
        assert!(trace.contains("tracing_mark_write: kept"), "{trace}");
        assert_eq!(read(&trace_on), "1\n");
        write_raw(&p.join("options/disable_on_free"), b"1", libc::O_WRONLY).unwrap();
        write_raw(&p.join("free_buffer"), b"\n", libc::O_WRONLY).unwrap();
        assert_eq!(read(&trace_on), "0\n");
    }
    for f in [
        "buffer_size_kb",
        "buffer_total_size_kb",
        "per_cpu/cpu0/buffer_size_kb",
    ] {
        assert_eq!(i.r(f), read(&k.p(f)), "{f}");
    }
}

/// `per_cpu/cpuN/trace` lists only CPU N's records under the all-CPU header counts (§10.1),
/// and `per_cpu/cpuN/trace_pipe` consumes only CPU N's.
#[test]
fn per_cpu_trace_and_trace_pipe_see_their_own_cpu() {
    let i = Inst::new();
    for n in 0..40 {
        i.w("trace_marker", format!("pc{n}")).unwrap();
    }
    let all = i.r("trace");
    let head = |t: &str| t.lines().nth(2).unwrap_or_default().to_string();
    let ncpu = utracefs::ncpu();
    let mut total = 0;
    for cpu in 0..ncpu {
        let t = i.r(&format!("per_cpu/cpu{cpu}/trace"));
        assert_eq!(head(&t), head(&all), "header counts cover every CPU");
        for l in records(&t) {
            assert_eq!(fields(l).1, format!("{cpu:03}"), "{l}");
            total += 1;
        }
    }
    assert_eq!(total, records(&all).len());
    let cpu = fields(records(&all)[0]).1.parse::<usize>().unwrap();
    let mine = records(&i.r(&format!("per_cpu/cpu{cpu}/trace"))).len();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(i.p(&format!("per_cpu/cpu{cpu}/trace_pipe")))
        .unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(text.lines().count(), mine);
    assert_eq!(
        records(&i.r("trace")).len(),
        40 - mine,
        "only CPU {cpu} consumed"
    );
}
