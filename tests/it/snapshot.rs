//! The snapshot buffer (CONFIG_TRACER_SNAPSHOT: `Documentation/trace/ftrace.rst` "Snapshot",
//! `events.rst` §6): the `snapshot` files, the `snapshot` trigger, and the feature following
//! the catalog. The kernel on these machines has no snapshot, so the texts compared are the
//! kernel's own (`kernel/trace/trace.c`: `print_snapshot_help`, `readme_msg`;
//! `trace_events_trigger.c`).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use crate::common::{Inst, KernelTracefs, Mount, mirror, read, write_raw};

const FREED: &str = "# tracer: nop
#
#
# * Snapshot is freed *
#
# Snapshot commands:
# echo 0 > snapshot : Clears and frees snapshot buffer
# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.
#                      Takes a snapshot of the main buffer.
# echo 2 > snapshot : Clears snapshot buffer (but does not allocate or free)
#                      (Doesn't have to be '2' works with any number that
#                       is not a '0' or '1')
";

const PERCPU_ALLOCATED: &str = "# tracer: nop
#
#
# * Snapshot is allocated *
#
# Snapshot commands:
# echo 0 > snapshot : Invalid for per_cpu snapshot file.
# echo 1 > snapshot : Allocates snapshot buffer, if not already allocated.
#                      Takes a snapshot of the main buffer for this cpu.
# echo 2 > snapshot : Clears this cpu's snapshot buffer (but does not allocate)
#                      (Doesn't have to be '2' works with any number that
#                       is not a '0' or '1')
";

/// The clone's empty `trigger` file (it has the snapshot buffer and hist triggers).
const TRIGGERS: &str = "# Available triggers:\n\
# traceon traceoff snapshot stacktrace enable_event disable_event enable_hist disable_hist hist\n";

const PRINT_TRIGGER: &str = "events/ftrace/print/trigger";

fn allocated() -> String {
    FREED.replace("Snapshot is freed", "Snapshot is allocated")
}

/// The marker texts of a `trace`-like text's records (comments dropped).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once("tracing_mark_write: ") {
            Some((_, text)) => text.to_string(),
            None => l.to_string(),
        })
        .collect()
}

fn marker(i: &Inst, text: &str) {
    assert_eq!(i.w("trace_marker", text), Ok(text.len()));
}

/// A non-blocking read of a consuming file: `Err(EAGAIN)` while it has nothing.
fn read_nonblock(path: &std::path::Path) -> Result<Vec<u8>, i32> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    let mut buf = vec![0; 1 << 16];
    match f.read(&mut buf) {
        Ok(n) => Ok(buf[..n].to_vec()),
        Err(e) => Err(e.raw_os_error().unwrap()),
    }
}

#[test]
fn echo_1_swaps_2_clears_0_frees() {
    let i = Inst::new();
    assert_eq!(i.r("snapshot"), FREED, "not allocated: the help text");
    marker(&i, "one\n");
    marker(&i, "two\n");
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    let snap = i.r("snapshot");
    assert_eq!(lines(&snap), ["one", "two"], "{snap}");
    assert!(
        snap.starts_with("# tracer: nop\n#\n# entries-in-buffer/entries-written: 2/2   #P:"),
        "the live buffer's header, now the snapshot's: {snap}"
    );
    let trace = i.r("trace");
    assert!(
        lines(&trace).is_empty(),
        "the live buffer is the empty spare: {trace}"
    );
    assert!(trace.contains("# entries-in-buffer/entries-written: 0/0 "));
    assert_eq!(read_nonblock(&i.p("trace_pipe")), Err(libc::EAGAIN));
    // Tracing goes on in the new live buffer; a second swap exchanges them again.
    marker(&i, "three\n");
    assert_eq!(i.w("snapshot", "1\n"), Ok(2));
    assert_eq!(lines(&i.r("snapshot")), ["three"]);
    assert_eq!(lines(&i.r("trace")), ["one", "two"]);
    // Anything but 0 and 1 clears the snapshot, keeping it allocated.
    assert_eq!(i.w("snapshot", "2"), Ok(1));
    assert_eq!(i.r("snapshot"), allocated());
    assert_eq!(
        lines(&i.r("trace")),
        ["one", "two"],
        "the live buffer untouched"
    );
    assert_eq!(i.w("snapshot", "0"), Ok(1));
    assert_eq!(i.r("snapshot"), FREED);
    assert_eq!(
        i.w("snapshot", "7"),
        Ok(1),
        "clearing a freed snapshot does nothing"
    );
    assert_eq!(i.r("snapshot"), FREED);
    assert_eq!(i.r("tracing_on"), "1\n");
    // The top level has its own.
    assert_eq!(read(&i.m.p("snapshot")), FREED);
}

#[test]
fn a_swap_keeps_tracing_on_or_off() {
    // ftracetest 00basic/snapshot.tc.
    let i = Inst::new();
    assert_eq!(i.w("tracing_on", "0"), Ok(1));
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    assert!(i.r("snapshot").contains("Snapshot is allocated"));
    assert_eq!(i.r("tracing_on"), "0\n");
    assert_eq!(i.w("tracing_on", "1"), Ok(1));
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    assert_eq!(i.r("tracing_on"), "1\n");
}

#[test]
fn bad_values_fail_like_kstrtoul() {
    let i = Inst::new();
    for (bad, errno) in [
        ("x", libc::EINVAL),
        ("-1", libc::EINVAL),
        (" 1", libc::EINVAL),
        ("1\n\n", libc::EINVAL),
        ("0x1", libc::EINVAL),
        ("18446744073709551616", libc::ERANGE),
    ] {
        assert_eq!(i.w("snapshot", bad), Err(errno), "{bad:?}");
        assert_eq!(i.w("per_cpu/cpu0/snapshot", bad), Err(errno), "{bad:?}");
    }
    assert_eq!(i.r("snapshot"), FREED, "nothing allocated");
    // Like every write there (`tracing_update_buffers` comes first), even a rejected one
    // expands the top level's boot-sized buffer.
    assert_eq!(read(&i.m.p("buffer_size_kb")), "7 (expanded: 1408)\n");
    assert_eq!(
        write_raw(&i.m.p("snapshot"), b"x", libc::O_WRONLY),
        Err(libc::EINVAL)
    );
    assert_eq!(
        read(&i.m.p("buffer_size_kb")),
        i.r("buffer_size_kb"),
        "expanded as an instance starts"
    );
    assert_eq!(
        i.w("per_cpu/cpu0/snapshot", "0"),
        Err(libc::EINVAL),
        "a per-CPU file cannot free"
    );
}

#[test]
fn per_cpu_snapshot_swaps_one_cpu() {
    let i = Inst::new();
    let ncpu = std::fs::read_dir(i.p("per_cpu")).unwrap().count();
    let cpu_trace = |c: usize| lines(&i.r(&format!("per_cpu/cpu{c}/trace")));
    // The daemon records on the CPU it runs on: write until some CPU holds a record.
    marker(&i, "m\n");
    let busy = (0..ncpu).find(|c| !cpu_trace(*c).is_empty()).unwrap();
    let before: Vec<_> = (0..ncpu).map(cpu_trace).collect();
    let snap = format!("per_cpu/cpu{busy}/snapshot");
    assert_eq!(
        i.r(&snap),
        PERCPU_ALLOCATED.replace("allocated *", "freed *")
    );
    assert_eq!(i.w(&snap, "1"), Ok(1), "allocates and swaps this CPU");
    assert_eq!(lines(&i.r(&snap)), before[busy]);
    assert!(cpu_trace(busy).is_empty());
    for c in (0..ncpu).filter(|c| *c != busy) {
        assert_eq!(cpu_trace(c), before[c], "cpu{c} not swapped");
        assert_eq!(i.r(&format!("per_cpu/cpu{c}/snapshot")), PERCPU_ALLOCATED);
    }
    assert_eq!(lines(&i.r("snapshot")), before[busy], "the whole snapshot");
    // snapshot_raw consumes the snapshot's pages as trace_pipe_raw does the live ones.
    let raw = i.p(&format!("per_cpu/cpu{busy}/snapshot_raw"));
    let page = read_nonblock(&raw).unwrap();
    assert!(
        page.windows(2).any(|w| w == b"m\n"),
        "the record in the page"
    );
    assert_eq!(read_nonblock(&raw), Err(libc::EAGAIN), "consumed");
    assert_eq!(i.w(&snap, "2"), Ok(1));
    assert_eq!(i.r(&snap), PERCPU_ALLOCATED);
}

#[test]
fn the_snapshot_trigger_swaps_on_each_marker() {
    // ftracetest trigger/trigger-trace-marker-snapshot.tc: the marker record is committed where
    // it was reserved, in the buffer the swap makes the snapshot.
    let i = Inst::new();
    assert_eq!(i.r(PRINT_TRIGGER), TRIGGERS);
    assert_eq!(i.w(PRINT_TRIGGER, "snapshot"), Ok(8));
    assert_eq!(i.r(PRINT_TRIGGER), "snapshot:unlimited\n");
    assert!(
        i.r("snapshot").contains("Snapshot is allocated"),
        "registering allocates"
    );
    for n in 1..=6 {
        marker(&i, &format!("hello >{n}<\n"));
    }
    assert_eq!(
        lines(&i.r("trace")),
        ["hello >1<", "hello >3<", "hello >5<"]
    );
    assert_eq!(
        lines(&i.r("snapshot")),
        ["hello >2<", "hello >4<", "hello >6<"]
    );
    assert_eq!(i.w(PRINT_TRIGGER, "snapshot"), Err(libc::EEXIST));
    assert_eq!(i.w(PRINT_TRIGGER, "snapshot+1"), Err(libc::EINVAL));
    assert_eq!(i.w(PRINT_TRIGGER, "!snapshot"), Ok(9));
    assert_eq!(i.r(PRINT_TRIGGER), TRIGGERS);
    assert_eq!(
        lines(&i.r("snapshot")),
        ["hello >2<", "hello >4<", "hello >6<"],
        "removal keeps the buffer"
    );
}

#[test]
fn snapshot_trigger_counts_and_filters() {
    let i = Inst::new();
    assert_eq!(i.w(PRINT_TRIGGER, "snapshot:1 if buf ~ \"*go*\""), Ok(26));
    assert_eq!(i.r(PRINT_TRIGGER), "snapshot:count=1 if buf ~ \"*go*\"\n");
    marker(&i, "stay\n");
    assert_eq!(lines(&i.r("trace")), ["stay"], "the filter did not match");
    marker(&i, "go\n");
    assert_eq!(i.r(PRINT_TRIGGER), "snapshot:count=0 if buf ~ \"*go*\"\n");
    assert_eq!(lines(&i.r("snapshot")), ["stay", "go"]);
    marker(&i, "go again\n");
    assert_eq!(lines(&i.r("trace")), ["go again"], "the count is spent");
    assert_eq!(lines(&i.r("snapshot")), ["stay", "go"]);
}

#[test]
fn a_tracepoint_snapshot_trigger_fires_before_the_record_is_reserved() {
    // An event's record (here through `inject`) with an unconditional trigger goes to the
    // new live buffer, with a conditional one to the snapshot: the kernel fires the first
    // before it reserves the record, the second at commit.
    let i = Inst::new();
    let ev = "events/sched/sched_process_hang";
    assert_eq!(i.w(&format!("{ev}/enable"), "1"), Ok(1));
    assert_eq!(i.w(&format!("{ev}/trigger"), "snapshot:1"), Ok(10));
    assert_eq!(i.w(&format!("{ev}/inject"), "pid=7"), Ok(5));
    assert_eq!(i.r(&format!("{ev}/trigger")), "snapshot:count=0\n");
    let lines_of = |f: &str| {
        i.r(f)
            .lines()
            .filter(|l| l.contains("sched_process_hang:"))
            .count()
    };
    assert_eq!(lines_of("snapshot") + lines_of("trace"), 1, "one record");
    assert_eq!(i.w(&format!("{ev}/trigger"), "!snapshot"), Ok(9));
    assert_eq!(i.w("snapshot", "2"), Ok(1));
    assert_eq!(i.w("trace", ""), Ok(0));
    assert_eq!(
        i.w(&format!("{ev}/trigger"), "snapshot if pid == 8"),
        Ok(20)
    );
    assert_eq!(i.w(&format!("{ev}/inject"), "pid=8"), Ok(5));
    assert_eq!(
        lines_of("snapshot"),
        1,
        "committed into the swapped-out buffer"
    );
    assert_eq!(lines_of("trace"), 0);
}

#[test]
fn resizing_the_buffer_resizes_the_snapshot() {
    // The snapshot holds what the live buffer held: with both at 8 KiB per CPU, a swap after
    // many records keeps only what 8 KiB holds, and a later growth applies to both.
    let i = Inst::new();
    assert_eq!(i.w("buffer_size_kb", "8"), Ok(1));
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    assert_eq!(i.w("buffer_size_kb", "64"), Ok(2));
    for n in 0..400 {
        marker(
            &i,
            &format!("record number {n:04} padded to be long enough\n"),
        );
    }
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    let kept = lines(&i.r("snapshot")).len();
    assert!(
        kept > 200,
        "the snapshot was grown with the buffer: {kept} kept"
    );
}

#[test]
fn the_readme_and_file_set_follow_the_feature() {
    let m = Mount::new(&[]);
    let readme = read(&m.p("README"));
    assert!(readme.contains(
        "comm-pid list\n\n  snapshot\t\t- Like 'trace' but shows the content of the static\n\
         \t\t\t  snapshot buffer. Read the contents for more\n\t\t\t  information\n  dynamic_events"
    ));
    assert!(
        readme.contains(
            "\t\t    stacktrace\n\t\t    snapshot\n\t\t    hist (see below)\n\t   example:"
        )
    );
    assert!(readme.contains(
        "save current event fields\n\t        snapshot()                           - snapshot the trace buffer\n\n"
    ));
    assert!(m.p("per_cpu/cpu0/snapshot_raw").exists());
    // CONFIG_TRACER_SNAPSHOT selects CONFIG_TRACER_MAX_TRACE: `tracing_max_latency` in µs.
    assert_eq!(read(&m.p("tracing_max_latency")), "0\n");
    let lat = m.p("tracing_max_latency");
    assert_eq!(write_raw(&lat, b"250\n", libc::O_WRONLY), Ok(4));
    assert_eq!(read(&lat), "250\n");
    assert_eq!(write_raw(&lat, b"x", libc::O_WRONLY), Err(libc::EINVAL));
    // This kernel has no snapshot buffer: neither has its mirror, unless --extras.
    let k = KernelTracefs::mount().unwrap();
    if k.path().join("snapshot").exists() {
        eprintln!("this kernel has a snapshot buffer: the mirror checks do not apply");
        return;
    }
    let mm = mirror(&k);
    for f in [
        "snapshot",
        "per_cpu/cpu0/snapshot",
        "per_cpu/cpu0/snapshot_raw",
        "tracing_max_latency",
    ] {
        assert!(!mm.p(f).exists(), "{f} on a mirror without snapshot");
    }
    assert!(!read(&mm.p("README")).contains("snapshot"));
    assert_eq!(
        read(&mm.p(PRINT_TRIGGER)),
        read(&k.path().join(PRINT_TRIGGER))
    );
    assert_eq!(
        write_raw(&mm.p(PRINT_TRIGGER), b"snapshot if bogus", libc::O_WRONLY),
        Err(libc::EINVAL),
        "an unknown command"
    );
    assert_eq!(
        read(&mm.p("error_log")),
        "",
        "rejected before the filter is looked at"
    );
    drop(mm);
    let mx = Mount::new(&["--extras", "--catalog", k.path().to_str().unwrap()]);
    assert_eq!(read(&mx.p("snapshot")), FREED);
    assert_eq!(read(&mx.p(PRINT_TRIGGER)), TRIGGERS);
}

#[test]
fn a_swap_wakes_a_blocked_snapshot_raw_reader() {
    // The kernel wakes the waiters of the buffer a swap makes the snapshot
    // (`update_max_tr`: `ring_buffer_wake_waiters`).
    let i = Inst::new();
    let ncpu = std::fs::read_dir(i.p("per_cpu")).unwrap().count();
    marker(&i, "wake\n");
    let busy = (0..ncpu)
        .find(|c| !lines(&i.r(&format!("per_cpu/cpu{c}/trace"))).is_empty())
        .unwrap();
    let raw = i.p(&format!("per_cpu/cpu{busy}/snapshot_raw"));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(raw).unwrap();
        let mut page = vec![0; 1 << 16];
        let n = f.read(&mut page).unwrap();
        page.truncate(n);
        let _ = tx.send(page);
    });
    // The reader is parked on an empty (unallocated) snapshot until the swap.
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
    assert_eq!(i.w("snapshot", "1"), Ok(1));
    let page = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the swap woke the reader");
    assert!(page.windows(5).any(|w| w == b"wake\n"));
    reader.join().unwrap();
}
