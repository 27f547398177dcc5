//! Histogram triggers (issue 13): `hist:` commands in `trigger`, the `hist` file, fed by the
//! clone's record sources (`trace_marker`, `inject`). The running kernel lacks
//! CONFIG_HIST_TRIGGERS, so texts are the kernel's as `kernel/trace/trace_events_hist.c`
//! prints them (and as `Documentation/trace/histogram.rst` shows them); where the kernel can
//! be compared (it refuses `hist`, a mirror must too) it is.

use crate::common::{Inst, KernelInst, KernelTracefs, mirror, read, unstamped, write_outcome};

const PRINT: &str = "events/ftrace/print";
const KMALLOC: &str = "events/kmem/kmalloc";

fn tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

fn marker(i: &Inst, n: usize) {
    for _ in 0..n {
        assert_eq!(i.w("trace_marker", "hello"), Ok(5));
    }
}

fn kmalloc(i: &Inst, bytes_req: u64, bytes_alloc: u64) {
    let text =
        format!("call_site=0xffffffff811e3a25 bytes_req={bytes_req} bytes_alloc={bytes_alloc}");
    assert!(i.w(&format!("{KMALLOC}/inject"), &text).is_ok(), "{text}");
}

fn errors(i: &Inst) -> String {
    unstamped(&i.r("error_log"))
}

/// `hist_trigger_show()`'s frame around the entries.
fn hist_text(info: &str, entries: &str, hits: u64, n: usize, dropped: u64) -> String {
    format!(
        "# event histogram\n#\n# trigger info: {info}\n#\n\n{entries}\nTotals:\n    Hits: {hits}\n    Entries: {n}\n    Dropped: {dropped}\n"
    )
}

#[test]
fn trace_marker_hits_count_in_the_hist_file() {
    // ftracetest trigger-trace-marker-hist.tc, and the file's mode (TRACE_MODE_READ).
    let i = Inst::new();
    let md = std::fs::metadata(i.p(&format!("{PRINT}/hist"))).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o440
    );
    assert_eq!(i.r(&format!("{PRINT}/hist")), "");
    assert_eq!(
        i.w(&format!("{PRINT}/trigger"), "hist:keys=common_pid"),
        Ok(20)
    );
    assert_eq!(
        i.r(&format!("{PRINT}/trigger")),
        "hist:keys=common_pid:vals=hitcount:sort=hitcount:size=2048 [active]\n"
    );
    marker(&i, 10);
    let info = "hist:keys=common_pid:vals=hitcount:sort=hitcount:size=2048 [active]";
    assert_eq!(
        i.r(&format!("{PRINT}/hist")),
        hist_text(
            info,
            &format!("{{ common_pid: {:>10} }} hitcount:         10\n", tid()),
            10,
            1,
            0
        )
    );
    // Writing to `hist` is refused (no write operation).
    assert_eq!(i.w(&format!("{PRINT}/hist"), "x"), Err(libc::EINVAL));
}

#[test]
fn keys_values_sort_and_modifiers_print_as_the_kernel() {
    // The layouts of histogram.rst's kmalloc examples, fed through `inject`.
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    let hist = format!("{KMALLOC}/hist");
    assert!(
        i.w(
            &trig,
            "hist:keys=bytes_req.log2:values=bytes_alloc:sort=bytes_req"
        )
        .is_ok()
    );
    for (r, a) in [
        (4096, 8192),
        (4000, 4096),
        (7, 8),
        (8, 8),
        (100, 128),
        (3000, 4096),
    ] {
        kmalloc(&i, r, a);
    }
    let info =
        "hist:keys=bytes_req.log2:vals=hitcount,bytes_alloc:sort=bytes_req.log2:size=2048 [active]";
    assert_eq!(
        i.r(&hist),
        hist_text(
            info,
            "{ bytes_req: ~ 2^3  } hitcount:          2  bytes_alloc:         16\n\
{ bytes_req: ~ 2^7  } hitcount:          1  bytes_alloc:        128\n\
{ bytes_req: ~ 2^12 } hitcount:          3  bytes_alloc:      16384\n",
            6,
            3,
            0
        )
    );
    // A second histogram on the same event: listed after the first, separated by a blank
    // line pair; compound keys, .hex, .buckets, a descending sort and .percent.
    assert!(
        i.w(
            &trig,
            "hist:keys=bytes_alloc.hex,bytes_req.buckets=1000:vals=bytes_req.percent:sort=bytes_req.descending"
        )
        .is_ok()
    );
    kmalloc(&i, 10, 16);
    kmalloc(&i, 30, 16);
    kmalloc(&i, 1500, 2048);
    let text = i.r(&hist);
    let second = text.split("\n\n\n").nth(1).expect("two histograms");
    assert_eq!(
        second,
        "# event histogram\n#\n# trigger info: hist:keys=bytes_alloc.hex,bytes_req.buckets=1000:vals=hitcount,bytes_req.percent:sort=bytes_req.percent.descending:size=2048 [active]\n#\n\n\
{ bytes_alloc: 800, bytes_req: ~ 1000-1999 } hitcount:          1  bytes_req (%):  97.40\n\
{ bytes_alloc: 10, bytes_req: ~ 0-999 } hitcount:          2  bytes_req (%):   2.59\n\
\nTotals:\n    Hits: 3\n    Entries: 2\n    Dropped: 0\n"
    );
    assert_eq!(
        i.r(&trig),
        "hist:keys=bytes_req.log2:vals=hitcount,bytes_alloc:sort=bytes_req.log2:size=2048 [active]\n\
hist:keys=bytes_alloc.hex,bytes_req.buckets=1000:vals=hitcount,bytes_req.percent:sort=bytes_req.percent.descending:size=2048 [active]\n"
    );
}

#[test]
fn pause_continue_clear_and_removal() {
    let i = Inst::new();
    let trig = format!("{PRINT}/trigger");
    let hist = format!("{PRINT}/hist");
    assert!(i.w(&trig, "hist:keys=common_pid:pause").is_ok());
    assert_eq!(
        i.r(&trig),
        "hist:keys=common_pid:vals=hitcount:sort=hitcount:size=2048 [paused]\n"
    );
    marker(&i, 2);
    assert!(
        i.r(&hist)
            .ends_with("    Hits: 0\n    Entries: 0\n    Dropped: 0\n")
    );
    assert!(i.w(&trig, "hist:keys=common_pid:cont").is_ok());
    marker(&i, 3);
    assert!(
        i.r(&hist)
            .ends_with("    Hits: 3\n    Entries: 1\n    Dropped: 0\n")
    );
    assert!(i.w(&trig, "hist:keys=common_pid:clear").is_ok());
    assert!(
        i.r(&hist)
            .ends_with("    Hits: 0\n    Entries: 0\n    Dropped: 0\n")
    );
    assert!(i.r(&trig).ends_with("[active]\n"), "clear keeps the state");
    // The same histogram again: EEXIST with the kernel's error_log entry.
    assert_eq!(i.w("error_log", ""), Ok(0));
    assert_eq!(i.w(&trig, "hist:keys=common_pid"), Err(libc::EEXIST));
    assert_eq!(
        errors(&i),
        "hist:ftrace:print: error: Hist trigger already exists\n  Command: hist:keys=common_pid\n           ^\n"
    );
    // Clearing one that does not exist: ENOENT.
    assert_eq!(
        i.w(
            &trig,
            "hist:keys=common_pid:vals=hitcount,common_preempt_count:clear"
        ),
        Err(libc::ENOENT)
    );
    assert!(errors(&i).contains("error: Can't clear or continue a nonexistent hist trigger\n"));
    // Removal; removing what is not there succeeds.
    assert!(i.w(&trig, "!hist:keys=common_pid").is_ok());
    assert!(i.w(&trig, "!hist:keys=common_pid").is_ok());
    assert_eq!(i.r(&hist), "");
    assert!(i.r(&trig).starts_with("# Available triggers:\n"));
}

#[test]
fn an_if_filter_and_size_bound_the_map() {
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    assert!(
        i.w(&trig, "hist:keys=bytes_req:size=100 if bytes_alloc > 10")
            .is_ok()
    );
    assert_eq!(
        i.r(&trig),
        "hist:keys=bytes_req:vals=hitcount:sort=hitcount:size=128 if bytes_alloc > 10 [active]\n"
    );
    assert_eq!(
        i.r(&format!("{KMALLOC}/enable")),
        "0*\n",
        "a trigger means soft mode"
    );
    kmalloc(&i, 1, 1);
    for n in 0..130 {
        kmalloc(&i, n, 100);
    }
    assert!(
        i.r(&format!("{KMALLOC}/hist"))
            .ends_with("    Hits: 128\n    Entries: 128\n    Dropped: 2\n"),
    );
}

#[test]
fn named_histograms_are_shared() {
    let i = Inst::new();
    let kprint = format!("{PRINT}/trigger");
    assert!(i.w(&kprint, "hist:name=shared:keys=common_pid").is_ok());
    // The top level's print event joins the same data.
    let top = i.m.p("events/ftrace/print/trigger");
    assert!(
        crate::common::write_raw(&top, b"hist:name=shared:keys=common_pid", libc::O_WRONLY).is_ok()
    );
    marker(&i, 2);
    assert!(crate::common::write_raw(&i.m.p("trace_marker"), b"x", libc::O_WRONLY).is_ok());
    let want = "    Hits: 3\n    Entries: 1\n    Dropped: 0\n";
    assert!(i.r(&format!("{PRINT}/hist")).ends_with(want));
    assert!(read(&i.m.p("events/ftrace/print/hist")).ends_with(want));
    assert!(
        i.r(&format!("{PRINT}/hist"))
            .contains("# trigger info: hist:name=shared:keys=common_pid:")
    );
    // A named trigger with other keys does not fit.
    assert_eq!(i.w("error_log", ""), Ok(0));
    assert_eq!(
        i.w(
            &format!("{KMALLOC}/trigger"),
            "hist:name=shared:keys=bytes_req"
        ),
        Err(libc::EINVAL)
    );
    assert_eq!(
        errors(&i),
        "hist:kmem:kmalloc: error: Named hist trigger doesn't match existing named trigger (includes variables)\n  Command: hist:name=shared:keys=bytes_req\n                ^\n"
    );
}

#[test]
fn syntax_errors_log_the_kernels_messages_and_carets() {
    // Cases of ftracetest's trigger-hist-syntax-errors.tc on an event we can feed.
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    for (cmd, errno, msg, caret) in [
        ("hist:keys=nosuch", libc::EINVAL, "Couldn't find field", 10),
        (
            "hist:keys=bytes_req.bogus",
            libc::EINVAL,
            "Invalid field modifier",
            20,
        ),
        (
            "hist:keys=bytes_req:sort=nosuch",
            libc::EINVAL,
            "Sort field must be a key or a val",
            25,
        ),
        (
            "hist:keys=bytes_req:sort=bytes_req.up",
            libc::EINVAL,
            "Invalid sort modifier",
            35,
        ),
        (
            "hist:keys=bytes_req:vals=",
            libc::EINVAL,
            "Empty assignment",
            20,
        ),
        (
            "hist:keys=bytes_req:nohitcount",
            libc::ENOENT,
            "Non-hitcount value is required for 'nohitcount'",
            0,
        ),
        (
            "hist:keys=bytes_req:x=bytes_alloc/0",
            libc::EDOM,
            "Division by zero",
            34,
        ),
        (
            "hist:keys=bytes_req:vals=$nosuch",
            libc::EINVAL,
            "Couldn't find variable",
            26,
        ),
    ] {
        assert_eq!(i.w("error_log", ""), Ok(0));
        assert_eq!(i.w(&trig, cmd), Err(errno), "{cmd}");
        let want = format!(
            "hist:kmem:kmalloc: error: {msg}\n  Command: {cmd}\n{:w$}^\n",
            "",
            w = 11 + caret
        );
        assert_eq!(errors(&i), want, "{cmd}");
    }
    // Errors the kernel does not log.
    for cmd in [
        "hist",
        "hist:vals=bytes_req",
        "hist:keys=bytes_req:size=10",
        "hist:keys=bytes_req,bytes_alloc,call_site,ptr",
    ] {
        assert_eq!(i.w("error_log", ""), Ok(0));
        assert_eq!(i.w(&trig, cmd), Err(libc::EINVAL), "{cmd}");
        assert_eq!(errors(&i), "", "{cmd}");
    }
    // A bad `if` filter fails with the filter's own entry.
    assert_eq!(
        i.w(&trig, "hist:keys=bytes_req if nosuch == 1"),
        Err(libc::EINVAL)
    );
    assert!(errors(&i).starts_with("event filter parse error: error: Field not found\n"));
    assert!(
        i.r(&trig).starts_with("# Available triggers:"),
        "nothing was added"
    );
}

#[test]
fn a_mirror_of_this_kernel_refuses_hist_as_the_kernel_does() {
    let k = KernelTracefs::mount().expect("kernel tracefs");
    if k.path().join("events/ftrace/print/hist").exists() {
        // A kernel with CONFIG_HIST_TRIGGERS: its mirror offers them, nothing to compare here.
        return;
    }
    let m = mirror(&k);
    assert!(!m.p("events/ftrace/print/hist").exists());
    assert!(!read(&m.p("README")).contains("hist trigger"));
    std::fs::create_dir(m.p("instances/hm")).unwrap();
    let ki = KernelInst::new("hist");
    let cmd = b"hist:keys=common_pid";
    let clone = write_outcome(&m.p("instances/hm"), "events/ftrace/print/trigger", cmd);
    let kernel = write_outcome(&ki.p(""), "events/ftrace/print/trigger", cmd);
    assert_eq!(clone, kernel);
    assert_eq!(clone.0, Err(libc::EINVAL));
    let cmd = b"enable_hist:kmem:kmalloc";
    let clone = write_outcome(&m.p("instances/hm"), "events/ftrace/print/trigger", cmd);
    let kernel = write_outcome(&ki.p(""), "events/ftrace/print/trigger", cmd);
    assert_eq!(clone, kernel);
    assert_eq!(clone.0, Err(libc::EINVAL));
}

#[test]
fn readme_advertises_hist_triggers() {
    // ftracetest's `requires:` lines grep these.
    let i = Inst::new();
    let readme = read(&i.m.p("README"));
    for line in [
        "\t            enable_hist:<system>:<event>\n",
        "\t\t    hist (see below)\n",
        "      hist trigger\t- If set, event hits are aggregated into a hash table\n",
        "\t            .buckets=size  display values in groups of size rather than raw number\n",
        "\t        onchange(var)            - invoke action if var changes\n",
    ] {
        assert!(readme.contains(line), "{line:?}");
    }
}

#[test]
fn onmatch_feeds_a_synthetic_event_from_marker_latency() {
    // ftracetest trigger-trace-marker-synthetic.tc, with the texts checked.
    let i = Inst::new();
    assert!(
        crate::common::write_raw(
            &i.m.p("synthetic_events"),
            b"latency u64 lat",
            libc::O_WRONLY
        )
        .is_ok()
    );
    let trig = format!("{PRINT}/trigger");
    assert!(
        i.w(
            &trig,
            "hist:keys=common_pid:ts0=common_timestamp.usecs if buf == \"start\""
        )
        .is_ok()
    );
    let second = "hist:keys=common_pid:lat=common_timestamp.usecs-$ts0:onmatch(ftrace.print).latency($lat) if buf == \"end\"";
    assert!(
        crate::common::write_raw(
            &i.p(&trig),
            second.as_bytes(),
            libc::O_WRONLY | libc::O_APPEND
        )
        .is_ok()
    );
    assert_eq!(
        i.r(&trig),
        "hist:keys=common_pid:vals=hitcount:ts0=common_timestamp.usecs:sort=hitcount:size=2048:clock=global if buf == \"start\" [active]\n\
hist:keys=common_pid:vals=hitcount:lat=common_timestamp.usecs-$ts0:sort=hitcount:size=2048:clock=global:onmatch(ftrace.print).latency($lat) if buf == \"end\" [active]\n"
    );
    assert!(
        i.r("trace_clock").contains("[global]"),
        "a timestamp histogram sets its clock"
    );
    assert!(
        i.w(
            "events/synthetic/latency/trigger",
            "hist:keys=common_pid,lat:sort=lat"
        )
        .is_ok()
    );
    assert_eq!(i.w("events/synthetic/latency/enable", "1"), Ok(1));
    assert_eq!(
        i.w("trace_marker", "end"),
        Ok(3),
        "no start yet: no latency"
    );
    assert_eq!(i.w("trace_marker", "start"), Ok(5));
    assert_eq!(i.w("trace_marker", "end"), Ok(3));
    assert_eq!(i.w("trace_marker", "end"), Ok(3), "ts0 was read once");
    let print = i.r(&format!("{PRINT}/hist"));
    assert_eq!(
        print.matches("hitcount:          1\n").count(),
        2,
        "{print}"
    );
    let lat = i.r("events/synthetic/latency/hist");
    assert!(
        lat.ends_with("    Hits: 1\n    Entries: 1\n    Dropped: 0\n"),
        "{lat}"
    );
    let trace = i.r("trace");
    assert_eq!(trace.matches(": latency: lat=").count(), 1, "{trace}");
    // The synthetic record precedes the marker that made it, as the kernel commits it first.
    let lines: Vec<&str> = trace.lines().filter(|l| !l.starts_with('#')).collect();
    let at = lines
        .iter()
        .position(|l| l.contains(": latency: lat="))
        .unwrap();
    assert!(
        lines[at + 1].ends_with("tracing_mark_write: end"),
        "{trace}"
    );
    // A histogram whose variable another reads cannot go (EBUSY); the reader first can.
    assert_eq!(
        i.w(
            &trig,
            "!hist:keys=common_pid:ts0=common_timestamp.usecs if buf == \"start\""
        ),
        Err(libc::EBUSY)
    );
    assert!(
        i.w(&trig, "!hist:keys=common_pid:lat=common_timestamp.usecs-$ts0:onmatch(ftrace.print).latency($lat) if buf == \"end\"")
            .is_ok()
    );
    assert_eq!(i.r(&trig).lines().count(), 1);
    assert!(
        i.w(
            &trig,
            "!hist:keys=common_pid:ts0=common_timestamp.usecs if buf == \"start\""
        )
        .is_ok()
    );
    assert!(i.r(&trig).starts_with("# Available triggers:"));
}

#[test]
fn onmax_saves_the_fields_of_the_maximum() {
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    assert!(
        i.w(
            &trig,
            "hist:keys=common_pid:b=bytes_req:onmax($b).save(bytes_alloc,call_site)"
        )
        .is_ok()
    );
    kmalloc(&i, 10, 16);
    kmalloc(&i, 300, 512);
    kmalloc(&i, 20, 32);
    let h = i.r(&format!("{KMALLOC}/hist"));
    assert!(
        h.contains(&format!(
            "{{ common_pid: {:>10} }} hitcount:          3\n\tmax:        300  bytes_alloc:        512  call_site: 18446744071580826149\n",
            tid()
        )),
        "{h}"
    );
}

#[test]
fn onmax_snapshot_takes_a_snapshot_at_each_new_maximum() {
    // The ftracetest trigger-snapshot-action-hist.tc flow on an event we can feed.
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    let cmd = "hist:keys=common_pid:b=bytes_req:onmax($b).snapshot()";
    assert!(i.w(&trig, cmd).is_ok());
    assert_eq!(
        i.r(&trig),
        "hist:keys=common_pid:vals=hitcount:b=bytes_req:sort=hitcount:size=2048:onmax($b).snapshot() [active]\n"
    );
    assert_eq!(
        i.w("snapshot", "1"),
        Err(libc::EBUSY),
        "a conditional snapshot owns it"
    );
    assert_eq!(i.w(&format!("{KMALLOC}/enable"), "1"), Ok(1));
    kmalloc(&i, 100, 128);
    kmalloc(&i, 50, 64);
    kmalloc(&i, 200, 256);
    // Each new maximum swaps, and its record lands in what became the snapshot (as with the
    // `snapshot` trigger): the snapshot holds 50 then 200, the live buffer 100.
    let snap = i.r("snapshot");
    assert!(
        snap.contains("bytes_req=50 ") && snap.contains("bytes_req=200 "),
        "{snap}"
    );
    assert!(!snap.contains("bytes_req=100 "), "{snap}");
    let live = i.r("trace");
    assert!(
        live.contains("bytes_req=100 ") && !live.contains("bytes_req=200 "),
        "{live}"
    );
    // The `hist` file tells what took the last snapshot (track_data_snapshot_print()).
    assert_eq!(
        i.r(&format!("{KMALLOC}/hist")),
        hist_text(
            "hist:keys=common_pid:vals=hitcount:b=bytes_req:sort=hitcount:size=2048:onmax($b).snapshot() [active]",
            &format!(
                "{{ common_pid: {:>10} }} hitcount:          3\n\n\
Snapshot taken (see tracing/snapshot).  Details:\n\
\ttriggering value {{ onmax($b) }}:        200\ttriggered by event with key: {{ common_pid: {:>10} }}\n",
                tid(),
                tid()
            ),
            3,
            1,
            0
        )
    );
    assert!(i.w(&trig, format!("!{cmd}")).is_ok());
    assert_eq!(i.w("snapshot", "1"), Ok(1), "released with its histogram");
}

fn synth(i: &Inst, def: &str) {
    assert!(
        crate::common::write_raw(
            &i.m.p("synthetic_events"),
            def.as_bytes(),
            libc::O_WRONLY | libc::O_APPEND
        )
        .is_ok(),
        "{def}"
    );
}

fn inject(i: &Inst, event: &str, text: &str) {
    assert!(
        i.w(&format!("events/{event}/inject"), text).is_ok(),
        "{event}: {text}"
    );
}

#[test]
fn field_variables_of_this_and_the_matched_event_feed_an_action() {
    // ftracetest trigger-field-variable-support.tc, fed through `inject`.
    let i = Inst::new();
    synth(
        &i,
        "wakeup_latency u64 lat; pid_t pid; int prio; char comm[16]",
    );
    let waking = "events/sched/sched_waking/trigger";
    let first = "hist:keys=comm:vals=hitcount:ts0=common_timestamp.usecs:sort=hitcount:size=2048:clock=global if comm==\"ping\" [active]\n";
    assert!(
        i.w(
            waking,
            "hist:keys=comm:ts0=common_timestamp.usecs if comm==\"ping\""
        )
        .is_ok()
    );
    let switch = "hist:keys=next_comm:wakeup_lat=common_timestamp.usecs-$ts0:onmatch(sched.sched_waking).wakeup_latency($wakeup_lat,next_pid,sched.sched_waking.prio,next_comm) if next_comm==\"ping\"";
    assert_eq!(
        i.w("events/sched/sched_switch/trigger", switch),
        Ok(switch.len())
    );
    // The field of the matched event became a variable on a histogram made there, with the
    // keys and filter of the one it matches.
    assert_eq!(
        i.r(waking),
        format!(
            "{first}hist:keys=comm:vals=hitcount:synthetic_prio=prio:sort=hitcount:size=2048 if comm==\"ping\" [active]\n"
        )
    );
    assert!(
        i.w(
            "events/synthetic/wakeup_latency/trigger",
            "hist:keys=pid,prio,comm:vals=lat:sort=pid,prio"
        )
        .is_ok()
    );
    inject(
        &i,
        "sched/sched_waking",
        "comm=\"ping\" pid=4242 prio=97 target_cpu=0",
    );
    inject(
        &i,
        "sched/sched_switch",
        "prev_comm=\"swapper\" prev_pid=0 prev_prio=120 prev_state=0 next_comm=\"ping\" next_pid=4242 next_prio=120",
    );
    let h = i.r("events/synthetic/wakeup_latency/hist");
    assert!(
        h.contains(&format!(
            "{{ pid:       4242, prio:         97, comm: {:<50} }} hitcount:          1  lat:",
            "ping"
        )),
        "{h}"
    );
    // Removing the histogram removes the one made for its field variable.
    assert!(
        i.w("events/sched/sched_switch/trigger", format!("!{switch}"))
            .is_ok()
    );
    assert_eq!(i.r(waking), first);
    // Without a compatible histogram on the other event: the kernel's error.
    assert_eq!(i.w("error_log", ""), Ok(0));
    let bad = "hist:keys=next_pid:lat=common_timestamp.usecs:onmatch(sched.sched_waking).wakeup_latency($lat,next_pid,sched.sched_waking.prio,next_comm)";
    assert_eq!(
        i.w("events/sched/sched_switch/trigger", bad),
        Err(libc::EINVAL)
    );
    let at = bad.find("prio,").unwrap();
    assert_eq!(
        errors(&i),
        format!(
            "hist:sched:sched_switch: error: Matching event histogram not found\n  Command: {bad}\n{:w$}^\n",
            "",
            w = 11 + at
        )
    );
    assert!(
        i.r("events/sched/sched_switch/trigger")
            .starts_with("# Available triggers:")
    );
    // An unqualified field this event lacks is the onmatch() event's; the kernel logs its
    // failed attempt on this event on the way.
    assert_eq!(i.w("error_log", ""), Ok(0));
    let unqualified = "hist:keys=next_comm:wakeup_lat=common_timestamp.usecs-$ts0:onmatch(sched.sched_waking).wakeup_latency($wakeup_lat,next_pid,prio,next_comm) if next_comm==\"ping\"";
    assert!(
        i.w("events/sched/sched_switch/trigger", unqualified)
            .is_ok()
    );
    assert!(i.r(waking).contains("synthetic_prio=prio"));
    let caret = format!("{:w$}^\n", "", w = 11 + unqualified.find("prio").unwrap());
    assert_eq!(
        errors(&i),
        format!(
            "hist:sched:sched_switch: error: Couldn't find field\n  Command: {unqualified}\n{caret}\
hist:sched:sched_switch: error: Couldn't parse field variable\n  Command: {unqualified}\n{caret}"
        )
    );
}

#[test]
fn a_compound_key_reads_the_variables_its_leading_key_names() {
    // ftracetest trigger-inter-event-combined-hist.tc, fed through `inject`.
    let i = Inst::new();
    synth(&i, "waking_latency  u64 lat pid_t pid");
    for (ev, cmd) in [
        (
            "sched/sched_waking",
            "hist:keys=pid:ts0=common_timestamp.usecs if comm==\"ping\"",
        ),
        (
            "sched/sched_wakeup",
            "hist:keys=pid:waking_lat=common_timestamp.usecs-$ts0:onmatch(sched.sched_waking).waking_latency($waking_lat,pid) if comm==\"ping\"",
        ),
        ("synthetic/waking_latency", "hist:keys=pid,lat:sort=pid,lat"),
    ] {
        assert!(i.w(&format!("events/{ev}/trigger"), cmd).is_ok(), "{cmd}");
    }
    synth(&i, "wakeup_latency u64 lat pid_t pid");
    synth(&i, "waking_plus_wakeup_latency u64 lat; pid_t pid");
    for (ev, cmd) in [
        (
            "sched/sched_wakeup",
            "hist:keys=pid:ts1=common_timestamp.usecs if comm==\"ping\"",
        ),
        (
            "sched/sched_switch",
            "hist:keys=next_pid:wakeup_lat=common_timestamp.usecs-$ts1:onmatch(sched.sched_wakeup).wakeup_latency($wakeup_lat,next_pid) if next_comm==\"ping\"",
        ),
        (
            "synthetic/wakeup_latency",
            "hist:keys=pid,lat:sort=pid,lat:ww_lat=$waking_lat+$wakeup_lat:onmatch(synthetic.wakeup_latency).waking_plus_wakeup_latency($ww_lat,pid)",
        ),
        (
            "synthetic/waking_plus_wakeup_latency",
            "hist:keys=pid,lat:sort=pid,lat",
        ),
    ] {
        let path = i.p(&format!("events/{ev}/trigger"));
        assert!(
            crate::common::write_raw(&path, cmd.as_bytes(), libc::O_WRONLY | libc::O_APPEND)
                .is_ok(),
            "{cmd}"
        );
    }
    let task = "comm=\"ping\" pid=4242 prio=120 target_cpu=0";
    inject(&i, "sched/sched_waking", task);
    inject(&i, "sched/sched_wakeup", task);
    inject(
        &i,
        "sched/sched_switch",
        "prev_comm=\"swapper\" prev_pid=0 prev_prio=120 prev_state=0 next_comm=\"ping\" next_pid=4242 next_prio=120",
    );
    let h = i.r("events/synthetic/waking_plus_wakeup_latency/hist");
    assert!(h.contains("{ pid:       4242, lat: "), "{h}");
    assert!(
        h.ends_with("    Hits: 1\n    Entries: 1\n    Dropped: 0\n"),
        "{h}"
    );
}

#[test]
fn a_string_variable_feeds_a_dynamic_string_field() {
    // ftracetest trigger-synthetic-event-dynstring.tc, fed through `inject`.
    let i = Inst::new();
    synth(&i, "ping_test_latency u64 lat; char filename[]");
    assert!(
        i.w(
            "events/sched/sched_process_exec/trigger",
            "hist:key=pid:filenamevar=filename:ts0=common_timestamp.usecs"
        )
        .is_ok()
    );
    assert!(
        i.w(
            "events/sched/sched_process_exit/trigger",
            "hist:key=pid:lat=common_timestamp.usecs-$ts0:onmatch(sched.sched_process_exec).ping_test_latency($lat,$filenamevar) if comm == \"ping\""
        )
        .is_ok()
    );
    assert!(
        i.w(
            "events/synthetic/ping_test_latency/trigger",
            "hist:keys=filename,lat:sort=filename,lat"
        )
        .is_ok()
    );
    assert_eq!(i.w("events/synthetic/ping_test_latency/enable", "1"), Ok(1));
    inject(
        &i,
        "sched/sched_process_exec",
        "filename=\"/usr/bin/ping\" pid=4243 old_pid=4243",
    );
    inject(
        &i,
        "sched/sched_process_exit",
        "comm=\"ping\" pid=4243 prio=120 group_dead=1",
    );
    let h = i.r("events/synthetic/ping_test_latency/hist");
    assert!(
        h.contains(&format!("{{ filename: {:<50}, lat: ", "/usr/bin/ping")),
        "{h}"
    );
    assert!(
        i.r("trace").contains("ping_test_latency: lat="),
        "the synthetic record was committed"
    );
    assert!(
        i.r("trace").contains("filename=/usr/bin/ping"),
        "{}",
        i.r("trace")
    );
}

#[test]
fn a_synthetic_event_an_action_generates_cannot_be_deleted() {
    // synth_event_release(): EBUSY while an action holds a reference (`event->ref`).
    let i = Inst::new();
    synth(&i, "lat_ev u64 lat");
    let trig = format!("{KMALLOC}/trigger");
    let cmd = "hist:keys=common_pid:b=bytes_req:onmax($b).trace(lat_ev,$b)";
    assert!(i.w(&trig, cmd).is_ok());
    let syn = i.m.p("synthetic_events");
    assert_eq!(
        crate::common::write_raw(&syn, b"!lat_ev", libc::O_WRONLY | libc::O_APPEND),
        Err(libc::EBUSY)
    );
    assert_eq!(
        crate::common::write_raw(&syn, b"", libc::O_WRONLY | libc::O_TRUNC),
        Err(libc::EBUSY),
        "clearing all deletes nothing"
    );
    assert!(i.p("events/synthetic/lat_ev").exists());
    assert_eq!(i.w("events/synthetic/lat_ev/enable", "1"), Ok(1));
    kmalloc(&i, 10, 16);
    assert!(i.r("trace").contains("lat_ev: lat=10"), "{}", i.r("trace"));
    assert_eq!(i.w("events/synthetic/lat_ev/enable", "0"), Ok(1));
    assert!(i.w(&trig, format!("!{cmd}")).is_ok());
    assert!(crate::common::write_raw(&syn, b"!lat_ev", libc::O_WRONLY | libc::O_APPEND).is_ok());
    assert!(!i.p("events/synthetic/lat_ev").exists());
}

#[test]
fn a_variable_defined_on_two_events_needs_its_full_name() {
    // find_var_file(): VAR_NOT_UNIQUE, then the VAR_NOT_FOUND of the failed reference.
    let i = Inst::new();
    assert!(
        i.w(
            &format!("{KMALLOC}/trigger"),
            "hist:keys=common_pid:x=bytes_req"
        )
        .is_ok()
    );
    assert!(
        i.w(
            &format!("{PRINT}/trigger"),
            "hist:keys=common_pid:x=common_pid"
        )
        .is_ok()
    );
    assert_eq!(i.w("error_log", ""), Ok(0));
    let cmd = "hist:keys=common_pid:y=$x";
    let trig = "events/kmem/kfree/trigger";
    assert_eq!(i.w(trig, cmd), Err(libc::EINVAL));
    let caret = format!("{:w$}^\n", "", w = 11 + cmd.find("x").unwrap());
    assert_eq!(
        errors(&i),
        format!(
            "hist:kmem:kfree: error: Variable name not unique, need to use fully qualified name (subsys.event.var) for variable\n  Command: {cmd}\n{caret}\
hist:kmem:kfree: error: Couldn't find variable\n  Command: {cmd}\n{caret}"
        )
    );
    // Qualified, or found on the onmatch() event, it is unique.
    assert!(i.w(trig, "hist:keys=common_pid:y=kmem.kmalloc.$x").is_ok());
    synth(&i, "ylat u64 y");
    assert_eq!(i.w("error_log", ""), Ok(0));
    assert!(
        i.w(
            "events/kmem/kmem_cache_free/trigger",
            "hist:keys=common_pid:y=$x:onmatch(ftrace.print).ylat($y)"
        )
        .is_ok()
    );
    assert_eq!(errors(&i), "");
}

#[test]
fn a_snapshot_action_needs_a_value_beyond_the_one_that_took_the_last() {
    // cond_snapshot_update(): a new maximum of one entry below the maximum of another takes
    // no snapshot.
    let i = Inst::new();
    let trig = format!("{KMALLOC}/trigger");
    assert!(
        i.w(
            &trig,
            "hist:keys=bytes_alloc:b=bytes_req:onmax($b).snapshot()"
        )
        .is_ok()
    );
    assert_eq!(i.w(&format!("{KMALLOC}/enable"), "1"), Ok(1));
    kmalloc(&i, 100, 1);
    kmalloc(&i, 50, 2);
    let h = i.r(&format!("{KMALLOC}/hist"));
    assert!(
        h.contains("\ttriggering value { onmax($b) }:        100\ttriggered by event with key: { bytes_alloc:          1 }\n"),
        "{h}"
    );
    let snap = i.r("snapshot");
    assert!(
        snap.contains("bytes_req=100 ") && !snap.contains("bytes_req=50 "),
        "{snap}"
    );
}

#[test]
fn enable_hist_and_disable_hist_pause_and_continue_another_events_histograms() {
    // hist_enable_trigger(): every hist trigger of the target, counted on every firing.
    let i = Inst::new();
    assert!(
        i.w(&format!("{KMALLOC}/trigger"), "hist:keys=bytes_req")
            .is_ok()
    );
    assert!(
        i.w(&format!("{PRINT}/trigger"), "disable_hist:kmem:kmalloc")
            .is_ok()
    );
    assert_eq!(
        i.r(&format!("{PRINT}/trigger")),
        "disable_hist:kmem:kmalloc:unlimited\n"
    );
    assert_eq!(
        i.w(&format!("{PRINT}/trigger"), "enable_hist:kmem:kmalloc"),
        Err(libc::EEXIST),
        "one slot per target for both"
    );
    let kfree = "events/kmem/kfree/trigger";
    assert!(i.w(kfree, "enable_hist:kmem:kmalloc:1").is_ok());
    assert_eq!(i.r(kfree), "enable_hist:kmem:kmalloc:count=1\n");
    kmalloc(&i, 1, 8);
    marker(&i, 1);
    assert!(i.r(&format!("{KMALLOC}/trigger")).ends_with("[paused]\n"));
    kmalloc(&i, 2, 8);
    let hist = i.r(&format!("{KMALLOC}/hist"));
    assert!(
        hist.ends_with("    Hits: 1\n    Entries: 1\n    Dropped: 0\n"),
        "{hist}"
    );
    inject(&i, "kmem/kfree", "call_site=0x1 ptr=0x2");
    assert_eq!(i.r(kfree), "enable_hist:kmem:kmalloc:count=0\n");
    assert!(i.r(&format!("{KMALLOC}/trigger")).ends_with("[active]\n"));
    kmalloc(&i, 3, 8);
    let hist = i.r(&format!("{KMALLOC}/hist"));
    assert!(
        hist.ends_with("    Hits: 2\n    Entries: 2\n    Dropped: 0\n"),
        "{hist}"
    );
    // Removal by either name frees the slot.
    assert!(
        i.w(&format!("{PRINT}/trigger"), "!enable_hist:kmem:kmalloc")
            .is_ok()
    );
    assert!(
        i.r(&format!("{PRINT}/trigger"))
            .starts_with("# Available triggers:")
    );
}
