//! `trigger` files and soft mode (spec §8, §5.1; §14 scenarios 15, 16, 37–41, 43, 44), each run
//! in a fresh instance like the spec's scenarios.

use crate::common::{Inst, KernelInst, as_on_kernel, read, write_outcome};

/// The clone's empty `trigger` file (it has the snapshot buffer and hist triggers).
const HEADER: &str = "# Available triggers:\n\
# traceon traceoff snapshot stacktrace enable_event disable_event enable_hist disable_hist hist\n";

const HANG: &str = "events/sched/sched_process_hang";
const PRINT_TRIGGER: &str = "events/ftrace/print/trigger";

#[test]
fn a_trigger_puts_its_event_in_soft_mode() {
    // Scenarios 15 and 16.
    let i = Inst::new();
    assert_eq!(
        i.r(&format!("{HANG}/trigger")),
        HEADER,
        "scenario 37: empty trigger file"
    );
    assert_eq!(i.w(&format!("{HANG}/trigger"), "traceoff"), Ok(8));
    assert_eq!(i.r(&format!("{HANG}/enable")), "0*\n");
    assert_eq!(i.r("events/sched/enable"), "X\n");
    assert_eq!(i.r("set_event"), "sched:sched_process_hang\n");
    let en = format!("{HANG}/enable");
    assert_eq!(i.w(&en, "1"), Ok(1));
    assert_eq!(i.r(&en), "1*\n");
    assert_eq!(i.w(&en, "0"), Ok(1));
    assert_eq!(i.r(&en), "0*\n");
    assert_eq!(i.w(&en, "1"), Ok(1));
    assert_eq!(i.w(&format!("{HANG}/trigger"), "!traceoff"), Ok(9));
    assert_eq!(i.r(&en), "1\n", "enabled once the last trigger goes");
    assert_eq!(i.r(&format!("{HANG}/trigger")), HEADER);
}

#[test]
fn trigger_list_newest_first_eexist_and_removal() {
    // Scenarios 38, 39, 40.
    let i = Inst::new();
    assert_eq!(i.w(PRINT_TRIGGER, "traceoff"), Ok(8));
    assert_eq!(i.w(PRINT_TRIGGER, "stacktrace:3"), Ok(12));
    assert_eq!(
        i.r(PRINT_TRIGGER),
        "stacktrace:count=3\ntraceoff:unlimited\n"
    );
    assert_eq!(
        i.w(PRINT_TRIGGER, "traceon"),
        Err(libc::EEXIST),
        "traceon/traceoff share a type"
    );
    assert_eq!(
        i.w(PRINT_TRIGGER, "traceon:2"),
        Err(libc::EEXIST),
        "O_TRUNC does not clear"
    );
    assert_eq!(i.w(PRINT_TRIGGER, "!stacktrace"), Ok(11));
    assert_eq!(i.w(PRINT_TRIGGER, "!traceoff:0"), Ok(11));
    assert_eq!(
        i.w(PRINT_TRIGGER, "!traceoff"),
        Ok(9),
        "removing nothing succeeds"
    );
    assert_eq!(i.r(PRINT_TRIGGER), HEADER);
}

#[test]
fn trigger_writes_the_kernel_rejects() {
    // Scenario 41 (filters aside).
    let i = Inst::new();
    let t = format!("{HANG}/trigger");
    for bad in [
        "bogus",
        "TRACEON",
        "traceon if",
        "traceon foo",
        "traceon:abc",
        "traceon:-1",
        "enable_event:sched:nosuch",
        "enable_event:ftrace:print",
        "enable_event:sched",
        "\n",
    ] {
        assert_eq!(i.w(&t, bad), Err(libc::EINVAL), "trigger write {bad:?}");
    }
    assert_eq!(i.r(&t), HEADER, "nothing was added");
    assert_eq!(i.r(&format!("{HANG}/enable")), "0\n", "and no soft mode");
}

/// An `if` filter that fails to compile fails the trigger write with the filter's own errno
/// (the odd ones of §7.4 included) and logs the filter's error_log entry; `0` is an expression
/// here, not "clear". Compared with a kernel instance.
#[test]
fn a_bad_if_filter_fails_with_the_filters_errno() {
    let i = Inst::new();
    let k = KernelInst::new("trigif");
    let t = "events/sched/sched_switch/trigger";
    for (text, errno) in [
        ("traceoff if common_pid == \"1", libc::ESRCH),
        ("traceoff if ((common_pid == 1)", libc::ENOENT),
        ("traceoff if (((common_pid == 1", libc::ENOENT),
        ("traceoff if (common_pid == 1))", libc::EPERM),
        ("traceoff if &&", libc::EPERM),
        (
            "stacktrace:3 if common_pid == 1 common_pid == 2",
            libc::EPERM,
        ),
        (
            "enable_event:sched:sched_wakeup if (common_pid == 1",
            libc::ENOENT,
        ),
        ("traceoff if 0", libc::EINVAL),
        ("traceoff if  0  ", libc::EINVAL),
        ("traceoff if bogus == 1", libc::EINVAL),
    ] {
        let clone = write_outcome(&i.p(""), t, text.as_bytes());
        let kernel = write_outcome(&k.p(""), t, text.as_bytes());
        assert_eq!(as_on_kernel(clone.clone(), &kernel.1), kernel, "{text:?}");
        assert_eq!(clone.0, Err(errno), "{text:?}");
        assert_eq!(
            clone.1, "# Available triggers:\n# <commands>\n",
            "{text:?}: nothing installed"
        );
        assert!(
            clone.2.starts_with("event filter parse error: error: "),
            "{text:?}: {}",
            clone.2
        );
    }
    assert_eq!(i.r("events/sched/sched_switch/enable"), "0\n");
    assert_eq!(i.r("events/sched/sched_wakeup/enable"), "0\n");
}

#[test]
fn enable_event_targets_and_the_marker() {
    // Scenarios 43 and 44.
    let i = Inst::new();
    let wake = "events/sched/sched_wakeup_new/enable";
    let hang = format!("{HANG}/enable");
    assert_eq!(
        i.w(PRINT_TRIGGER, "enable_event:sched:sched_process_hang"),
        Ok(37)
    );
    assert_eq!(
        i.w(PRINT_TRIGGER, "disable_event:sched:sched_process_hang"),
        Err(libc::EEXIST)
    );
    assert_eq!(
        i.w(PRINT_TRIGGER, "disable_event:sched:sched_wakeup_new:0x10"),
        Ok(41)
    );
    assert_eq!(
        i.r(PRINT_TRIGGER),
        "disable_event:sched:sched_wakeup_new:count=16\nenable_event:sched:sched_process_hang:unlimited\n"
    );
    assert_eq!(
        i.r(&hang),
        "0*\n",
        "an enable_event target starts soft-disabled"
    );
    assert_eq!(i.r(wake), "0*\n");
    // A marker write fires ftrace/print's triggers.
    assert_eq!(i.w("trace_marker", "hi\n"), Ok(3));
    assert_eq!(i.r(&hang), "1*\n", "the marker fired enable_event");
    assert_eq!(
        i.r(PRINT_TRIGGER),
        "disable_event:sched:sched_wakeup_new:count=16\nenable_event:sched:sched_process_hang:unlimited\n",
        "disable_event on an already soft-disabled target does not count"
    );
    assert_eq!(
        i.w(PRINT_TRIGGER, "!disable_event:sched:sched_process_hang"),
        Ok(39)
    );
    assert_eq!(
        i.r(PRINT_TRIGGER),
        "disable_event:sched:sched_wakeup_new:count=16\n"
    );
    assert_eq!(i.r(&hang), "1\n", "it stays enabled after removal");
    assert_eq!(
        i.w(PRINT_TRIGGER, "!enable_event:sched:sched_wakeup_new"),
        Ok(36)
    );
    assert_eq!(i.r(PRINT_TRIGGER), HEADER);
    assert_eq!(i.r(wake), "0\n");
}

#[test]
fn triggers_are_per_instance_and_go_with_it() {
    let i = Inst::new();
    assert_eq!(i.w(&format!("{HANG}/trigger"), "traceoff"), Ok(8));
    assert_eq!(
        read(&i.m.p(&format!("{HANG}/trigger"))),
        HEADER,
        "top level untouched"
    );
    assert_eq!(read(&i.m.p(&format!("{HANG}/enable"))), "0\n");
    std::fs::remove_dir(i.p("")).unwrap();
    std::fs::create_dir(i.p("")).unwrap();
    assert_eq!(
        i.r(&format!("{HANG}/trigger")),
        HEADER,
        "scenario 59: re-created clean"
    );
    assert_eq!(i.r(&format!("{HANG}/enable")), "0\n");
}
