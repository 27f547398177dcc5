//! `filter` files (spec §7; §14 scenarios 24–36, 42, 45), each in a fresh instance.

use crate::common::{Inst, KernelInst, as_on_kernel, write_outcome, write_raw};
use crate::tree::read_once;

const EXEC: &str = "events/sched/sched_process_exec/filter";

#[test]
fn valid_filters_read_back_as_stored() {
    // Scenarios 23, 24, 30.
    let i = Inst::new();
    assert_eq!(i.r("events/sched/sched_switch/filter"), "none\n");
    assert_eq!(i.w(EXEC, b"   pid == 1   "), Ok(14));
    assert_eq!(
        i.r(EXEC),
        "   pid == 1\n",
        "leading whitespace kept, trailing stripped"
    );
    for ok in [
        "pid>10&&old_pid<5",
        "(pid == 1 || pid == 2) && !(old_pid != 3)",
        "filename ~ \"*bash\"",
        "filename ~ \"[ab]*\"",
        "pid & 0x3",
        "pid == -1",
        "common_pid == 1",
        "cpu == 0",
        "common_cpu == 1",
        "CPU < 2",
        "COMM ~ \"b*\"",
        "comm == \"bash\"",
        "!pid == 1",
    ] {
        assert_eq!(i.w(EXEC, ok.as_bytes()), Ok(ok.len()), "filter {ok:?}");
        assert_eq!(i.r(EXEC), format!("{ok}\n"));
    }
}

#[test]
fn zero_clears_but_double_zero_is_an_expression() {
    // Scenario 25.
    let i = Inst::new();
    for clear in [&b"0"[..], b" 0", b"0\n"] {
        assert_eq!(i.w(EXEC, b"pid == 1"), Ok(8));
        assert_eq!(i.w(EXEC, clear), Ok(clear.len()));
        assert_eq!(i.r(EXEC), "none\n", "{clear:?} clears");
    }
    assert_eq!(i.w(EXEC, b"00"), Err(libc::EINVAL));
    assert!(
        i.r(EXEC).contains("parse_error: Field not found"),
        "{}",
        i.r(EXEC)
    );
}

#[test]
fn errors_show_the_caret_and_reach_error_log() {
    // Scenarios 26 and 29.
    let i = Inst::new();
    assert_eq!(i.w(EXEC, b"nosuch == 1"), Err(libc::EINVAL));
    assert_eq!(
        i.r(EXEC),
        "nosuch == 1\n       ^\nparse_error: Field not found\n\n"
    );
    let log = i.r("error_log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    let head = lines[0];
    assert!(
        head.starts_with('[')
            && head.ends_with("] event filter parse error: error: Field not found"),
        "{head}"
    );
    assert_eq!(lines[1], "  Command: nosuch == 1");
    assert_eq!(lines[2], format!("{}^", " ".repeat(18)));
    // `pid ==`: caret clamped in the file (6), not in error_log (11 + 7).
    assert_eq!(i.w(EXEC, b"pid =="), Err(libc::EINVAL));
    assert_eq!(
        i.r(EXEC),
        "pid ==\n      ^\nparse_error: Invalid value (did you forget quotes)?\n\n"
    );
    assert!(
        i.r("error_log")
            .ends_with(&format!("  Command: pid ==\n{}^\n", " ".repeat(18)))
    );
}

/// A `&&` or `||` with nothing after it, in an event filter or a trigger's `if`: EINVAL,
/// "Meaningless filter expression" with the caret at the end of the text, nothing installed —
/// compared with a kernel instance (errno, the file's text, error_log byte for byte).
#[test]
fn dangling_operators_are_refused_as_by_the_kernel() {
    let i = Inst::new();
    let k = KernelInst::new("dangling");
    let filter = "events/sched/sched_switch/filter";
    let trigger = "events/sched/sched_switch/trigger";
    for expr in [
        "common_pid == 1 &&",
        "common_pid == 1 ||  \t",
        " common_pid == 1 &&\n",
        "(common_pid == 1) ||",
        "common_pid == 1 && !",
        "common_pid == 1 || common_pid == 2 &&",
        "common_pid == 1 && common_pid == 2 ||",
    ] {
        for (file, text) in [
            (filter, expr.to_string()),
            (trigger, format!("traceoff if {expr}")),
        ] {
            let clone = write_outcome(&i.p(""), file, text.as_bytes());
            let kernel = write_outcome(&k.p(""), file, text.as_bytes());
            assert_eq!(
                as_on_kernel(clone.clone(), &kernel.1),
                kernel,
                "{file} <- {text:?}"
            );
            assert_eq!(clone.0, Err(libc::EINVAL), "{file} <- {text:?}");
            assert!(
                clone.2.starts_with(
                    "event filter parse error: error: Meaningless filter expression\n"
                ),
                "{file} <- {text:?}: {}",
                clone.2
            );
        }
    }
    assert_eq!(
        i.r("events/sched/sched_switch/enable"),
        "0\n",
        "no trigger put it in soft mode"
    );
}

#[test]
fn the_kernels_odd_errnos() {
    // Scenarios 27 and 28.
    let i = Inst::new();
    for (text, errno) in [
        ("(pid == 1", libc::ENOENT),
        ("pid == 1)", libc::EPERM),
        ("\"abc", libc::ESRCH),
        ("pid == 1 pid == 2", libc::EPERM),
        ("&& pid == 1", libc::EPERM),
        ("pid ~ 1", libc::EINVAL),
        ("pid == \"1\"", libc::EINVAL),
        ("filename == 1", libc::EINVAL),
        ("filename == bash", libc::EINVAL),
        ("pid = 1", libc::EINVAL),
        ("pid == 99999999999999999999", libc::EINVAL),
    ] {
        assert_eq!(i.w(EXEC, text.as_bytes()), Err(errno), "filter {text:?}");
    }
    assert_eq!(
        i.r(EXEC),
        "pid == 99999999999999999999\n        ^\nparse_error: Illegal integer value\n\n"
    );
    assert_eq!(i.w(EXEC, b"&& pid == 1"), Err(libc::EPERM));
    assert_eq!(i.r(EXEC), "&& pid == 1\nError: (0)\n\n");
}

#[test]
fn size_limit_and_offset_quirk() {
    // Scenarios 31 and 32.
    let i = Inst::new();
    let mut text = b"pid == 1".to_vec();
    text.resize(4095, b' ');
    assert_eq!(i.w(EXEC, &text), Ok(4095));
    assert_eq!(i.r(EXEC), "pid == 1\n");
    text.push(b' ');
    assert_eq!(i.w(EXEC, &text), Err(libc::EINVAL));
    assert_eq!(
        i.r(EXEC),
        "pid == 1\n",
        "a 4096-byte write leaves the old filter"
    );
    use std::io::Read;
    let mut f = std::fs::File::open(i.p(EXEC)).unwrap();
    let mut two = [0u8; 2];
    assert_eq!(f.read(&mut two).unwrap(), 2);
    assert_eq!(&two, b"pi");
    let mut rest = Vec::new();
    assert_eq!(f.read_to_end(&mut rest).unwrap(), 0, "EOF past offset 0");
}

#[test]
fn subsystem_filter_applies_or_replaces_per_event() {
    // Scenarios 33–36.
    let i = Inst::new();
    let banner = "### global filter ###\n# Use this to set filters for multiple events.\n\
# Only events with the given fields will be affected.\n\
# If no events are modified, an error message will be displayed here\n";
    assert_eq!(i.r("events/sched/filter"), banner);
    assert_eq!(i.w("events/sched/filter", b"common_pid == 5\n"), Ok(16));
    assert_eq!(i.r("events/sched/sched_switch/filter"), "common_pid == 5\n");
    assert_eq!(
        i.r("events/sched/filter"),
        banner,
        "the banner never changes"
    );
    assert_eq!(
        i.w("events/sched/filter", b"prev_pid == 1\n"),
        Ok(14),
        "succeeds even where it fails"
    );
    assert_eq!(i.r("events/sched/sched_switch/filter"), "prev_pid == 1\n");
    assert_eq!(
        i.r("events/sched/sched_process_exec/filter"),
        "prev_pid == 1\n^\nparse_error: Couldn't find or set field in one of a subsystem's events\n\n"
    );
    assert_eq!(i.w("events/sched/filter", b"0\n"), Ok(2));
    for e in std::fs::read_dir(i.p("events/sched")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            assert_eq!(
                read_once(&e.path().join("filter")),
                b"none\n",
                "{:?}",
                e.file_name()
            );
        }
    }
}

#[test]
fn trigger_filters_compile_against_the_event_and_fire_on_markers() {
    // Scenarios 42 and 45.
    let i = Inst::new();
    let t = "events/sched/sched_switch/trigger";
    assert_eq!(i.w(t, b"traceon if nosuchfield == 1"), Err(libc::EINVAL));
    let log = i.r("error_log");
    assert!(
        log.contains("event filter parse error: error: Field not found"),
        "{log}"
    );
    assert!(log.contains("  Command: nosuchfield == 1\n"), "{log}");
    let p = "events/ftrace/print/trigger";
    assert_eq!(i.w(p, b"traceoff if buf ~ \"*stop*\""), Ok(26));
    assert_eq!(i.r(p), "traceoff:unlimited if buf ~ \"*stop*\"\n");
    assert_eq!(i.w("trace_marker", b"keep going\n"), Ok(11));
    assert_eq!(i.r("tracing_on"), "1\n");
    assert_eq!(i.w("trace_marker", b"please stop\n"), Ok(12));
    assert_eq!(i.r("tracing_on"), "0\n", "the marker fired traceoff");
    assert_eq!(i.w("trace_marker", b"again\n"), Err(libc::EBADF));
}

#[test]
fn error_log_keeps_the_last_eight() {
    // Scenario 54.
    let i = Inst::new();
    for n in 1..=10 {
        let text = format!("nosuch{n} == 1");
        assert_eq!(i.w(EXEC, text.as_bytes()), Err(libc::EINVAL));
    }
    let log = i.r("error_log");
    assert_eq!(log.matches("parse error").count(), 8);
    assert_eq!(
        log.lines().find(|l| l.contains("Command")),
        Some("  Command: nosuch3 == 1")
    );
    assert_eq!(write_raw(&i.p("error_log"), b"x", libc::O_WRONLY), Ok(1));
    assert_eq!(i.r("error_log"), log, "a plain write changes nothing");
    assert_eq!(i.w("error_log", b""), Ok(0));
    assert_eq!(i.r("error_log"), "", "O_TRUNC clears");
}
