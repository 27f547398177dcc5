//! The command line: every documented error gives a non-zero exit and exactly one stderr line
//! with the expected words (and no mount); `--help` works; bad `-o` options are rejected;
//! malformed catalog files name the file and the right line; a valid catalog file is served.

use crate::common::{BIN, Mount, TempDir, mount_type};
use crate::tree::{Ran, list, read_once};
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args`. If it is still running after 20 s (it wrongly mounted and is
/// serving), it is stopped and the test fails.
fn run_bin<S: AsRef<OsStr>>(args: &[S]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    let what = format!("{cmd:?}");
    let dir = TempDir::new("cliout");
    let out = std::fs::File::create(dir.path().join("out")).unwrap();
    let err = std::fs::File::create(dir.path().join("err")).unwrap();
    let mut child = cmd.stdout(out).stderr(err).spawn().expect("spawn utracefs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} was still running after 20 s; it should have exited with an error. stderr: {}",
                std::fs::read_to_string(dir.path().join("err")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: std::fs::read(dir.path().join("out")).unwrap(),
        stderr: std::fs::read(dir.path().join("err")).unwrap(),
    }
}

/// Asserts a failed run: non-zero exit and exactly one non-empty stderr line containing every
/// one of `words`. Returns that line.
fn assert_one_line_error(r: &Ran, words: &[&str], case: &str) -> String {
    let err = r.stderr_str();
    assert!(
        !r.status.success(),
        "{case}: expected a non-zero exit, got {}; stderr: {err:?}",
        r.status
    );
    let lines: Vec<&str> = err.trim_end_matches('\n').lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{case}: stderr must be exactly one line, got {}: {err:?}",
        lines.len()
    );
    assert!(!lines[0].trim().is_empty(), "{case}: stderr line is empty");
    for w in words {
        assert!(
            lines[0].contains(w),
            "{case}: stderr {:?} does not contain {w:?}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// Does `s` contain "line <n>" with no further digit after n?
fn mentions_line(s: &str, n: usize) -> bool {
    let pat = format!("line {n}");
    s.match_indices(&pat)
        .any(|(i, _)| !s[i + pat.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn assert_not_mounted(p: &Path, case: &str) {
    if let Some(t) = mount_type(p) {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        panic!("{case}: a {t} mount was left at {}", p.display());
    }
}

#[test]
fn help_prints_usage_and_exits_zero() {
    let r = run_bin(&["--help"]);
    assert!(
        r.status.success(),
        "--help exited with {}; stderr {}",
        r.status,
        r.stderr_str()
    );
    let text = format!("{}{}", r.stdout_str(), r.stderr_str());
    assert!(
        text.to_lowercase().contains("usage"),
        "--help output has no usage line: {text}"
    );
    for opt in ["--catalog", "--extras", "--threads", "--stats", "-o"] {
        assert!(text.contains(opt), "--help does not mention {opt}: {text}");
    }
}

#[test]
fn missing_mount_point_is_an_error() {
    let t = TempDir::new("cli");
    let mp = t.path().join("no_such_dir");
    let r = run_bin(&[mp.as_os_str()]);
    assert_one_line_error(&r, &["does not exist"], "missing mount point");
    assert!(!mp.exists(), "the daemon created the missing mount point");
}

#[test]
fn mount_point_that_is_a_file_is_an_error() {
    let t = TempDir::new("cli");
    let f = t.path().join("plain_file");
    std::fs::write(&f, b"x").unwrap();
    let r = run_bin(&[f.as_os_str()]);
    assert_one_line_error(&r, &["not a directory"], "mount point is a regular file");
    assert_not_mounted(&f, "mount point is a regular file");
}

/// A bind mount of a private temp dir onto itself: a harmless mount point to test against.
struct BindMount(TempDir);
impl BindMount {
    fn new() -> BindMount {
        let t = TempDir::new("bind");
        let c = CString::new(t.path().as_os_str().as_bytes()).unwrap();
        let r = unsafe {
            libc::mount(
                c.as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        assert_eq!(
            r,
            0,
            "bind mount for the test: {}",
            std::io::Error::last_os_error()
        );
        BindMount(t)
    }
}
impl Drop for BindMount {
    fn drop(&mut self) {
        let c = CString::new(self.0.path().as_os_str().as_bytes()).unwrap();
        // Anything the daemon may have stacked on top, then the bind mount itself.
        for _ in 0..3 {
            if mount_type(self.0.path()).is_none() {
                break;
            }
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[test]
fn mount_point_already_mounted_is_an_error() {
    let b = BindMount::new();
    let r = run_bin(&[b.0.path().as_os_str()]);
    assert_one_line_error(&r, &["already a mount point"], "bind-mounted directory");
    assert_ne!(
        mount_type(b.0.path()).as_deref(),
        Some("fuse.tracefs"),
        "the daemon mounted over the bind mount"
    );
}

#[test]
fn mount_point_already_serving_utracefs_is_an_error() {
    let m = Mount::new(&[]);
    let r = run_bin(&[m.path().as_os_str()]);
    assert_one_line_error(
        &r,
        &["already a mount point"],
        "second utracefs on the same mount point",
    );
    // The first daemon is unaffected.
    assert!(
        m.p("events/sched/sched_switch/format").exists(),
        "the first mount stopped working"
    );
}

#[test]
fn non_empty_mount_point_is_mounted_with_a_warning() {
    let dir = TempDir::new("cli");
    let mp = dir.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    std::fs::write(mp.join("left_over"), "x").unwrap();
    let m = Mount::on(dir, &[]);
    let log = m.log();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(mp.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no warning naming {}: {log}", mp.display()));
    assert!(warning.contains("not empty"), "{warning}");
    assert!(m.p("events/sched/sched_switch/format").exists());
    assert!(!m.p("left_over").exists(), "the mount hides the directory");
}

#[test]
fn empty_mount_point_gives_no_warning() {
    let m = Mount::new(&[]);
    assert!(!m.log().contains("not empty"), "{}", m.log());
}

#[test]
fn unreadable_catalog_names_the_path() {
    let t = TempDir::new("cli");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    let cat = t.path().join("no_such_catalog.cat");
    let r = run_bin(&[OsStr::new("--catalog"), cat.as_os_str(), mp.as_os_str()]);
    assert_one_line_error(&r, &[cat.to_str().unwrap()], "missing catalog file");
    assert_not_mounted(&mp, "missing catalog file");
}

#[test]
fn unknown_mount_option_is_rejected() {
    let t = TempDir::new("cli");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    let r = run_bin(&[
        OsStr::new("-o"),
        OsStr::new("uid=0,bogus_opt=1"),
        mp.as_os_str(),
    ]);
    assert_one_line_error(&r, &["bogus_opt"], "unknown -o option");
    assert_not_mounted(&mp, "unknown -o option");
}

#[test]
fn bad_mount_option_value_is_rejected() {
    let t = TempDir::new("cli");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    for (opt, word) in [("mode=9z", "mode"), ("uid=abc", "uid"), ("gid=", "gid")] {
        let r = run_bin(&[OsStr::new("-o"), OsStr::new(opt), mp.as_os_str()]);
        assert_one_line_error(&r, &[word], &format!("-o {opt}"));
        assert_not_mounted(&mp, opt);
    }
}

// ------------------------------------------------------------------------------------------
// Catalog files
// ------------------------------------------------------------------------------------------

const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n";

const HEADER_EVENT: &str = "# compressed entry header\n\
\ttype_len    :    5 bits\n\
\ttime_delta  :   27 bits\n\
\tarray       :   32 bits\n\
\n\
\tpadding     : type == 29\n\
\ttime_extend : type == 30\n\
\ttime_stamp : type == 31\n\
\tdata max type_len  == 28\n";

fn format_text(name: &str, id: u32) -> String {
    format!(
        "name: {name}\nID: {id}\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:int value;\toffset:8;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"value=%d\", REC->value\n"
    )
}

fn record(sys: &str, name: &str, seq: &str, files: &str, body: &str) -> String {
    format!(
        "event {sys} {name} {seq} {files} {}\n{body}",
        body.lines().count()
    )
}

/// A small valid catalog: two listed events in `mysys`, one ftrace-like format-only event.
fn valid_catalog() -> String {
    let mut s = String::from("utracefs-catalog 1\n");
    s += &format!("header_page {}\n{HEADER_PAGE}", HEADER_PAGE.lines().count());
    s += &format!(
        "header_event {}\n{HEADER_EVENT}",
        HEADER_EVENT.lines().count()
    );
    s += &record(
        "mysys",
        "alpha",
        "0",
        "enable,filter,trigger,format,id",
        &format_text("alpha", 901),
    );
    s += &record(
        "mysys",
        "beta",
        "1",
        "enable,filter,trigger,format,id",
        &format_text("beta", 902),
    );
    s += &record(
        "ftrace",
        "rawthing",
        "-",
        "format",
        &format_text("rawthing", 903),
    );
    s
}

#[test]
fn valid_catalog_file_is_served() {
    let t = TempDir::new("cat");
    let cat = t.path().join("good.cat");
    std::fs::write(&cat, valid_catalog()).unwrap();
    let m = Mount::new(&["--catalog", cat.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(m.p("events/mysys/alpha/format")).unwrap(),
        format_text("alpha", 901),
        "format served from a catalog file"
    );
    assert_eq!(
        std::fs::read_to_string(m.p("events/mysys/beta/id")).unwrap(),
        "902\n"
    );
    // The catalog names no features: its kernel had no inject, no synthetic events.
    assert_eq!(
        list(&m.p("events/mysys/alpha")),
        ["enable", "filter", "trigger", "format", "id"]
    );
    assert_eq!(list(&m.p("events/ftrace/rawthing")), ["format"]);
    assert!(!m.p("synthetic_events").exists());
    assert_eq!(std::fs::read_to_string(m.p("printk_formats")).unwrap(), "");
    let subs: std::collections::BTreeSet<String> =
        crate::tree::subdirs(&m.p("events")).into_iter().collect();
    assert_eq!(
        subs,
        ["ftrace", "mysys"].iter().map(|s| s.to_string()).collect(),
        "events/ subsystems"
    );
    let av = std::fs::read_to_string(m.p("available_events")).unwrap();
    assert_eq!(
        av, "mysys:alpha\nmysys:beta\n",
        "available_events from seq numbers (ftrace excluded)"
    );
    // header_* answer EOF past offset 0 (spec §3.3), so read them in one call.
    assert_eq!(
        read_once(&m.p("events/header_event")),
        HEADER_EVENT.as_bytes(),
        "header_event from the catalog"
    );
    assert_eq!(
        read_once(&m.p("events/header_page")),
        HEADER_PAGE.as_bytes(),
        "header_page from the catalog"
    );
}

fn assert_catalog_error(text: &str, want_lines: &[usize], case: &str) {
    let t = TempDir::new("cat");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    let cat = t.path().join("bad.cat");
    std::fs::write(&cat, text).unwrap();
    let r = run_bin(&[OsStr::new("--catalog"), cat.as_os_str(), mp.as_os_str()]);
    let line = assert_one_line_error(&r, &[cat.to_str().unwrap()], case);
    assert!(
        want_lines.iter().any(|n| mentions_line(&line, *n)),
        "{case}: error {line:?} should say `line {}`",
        want_lines
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("` or `line ")
    );
    assert_not_mounted(&mp, case);
}

/// 1-based line number of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect("prefix present")
        + 1
}

#[test]
fn catalog_bad_header_names_line_1() {
    let good = valid_catalog();
    let bad = good.replacen("utracefs-catalog 1", "utracefs-catalog 7", 1);
    assert_catalog_error(&bad, &[1], "wrong catalog version");
    let bad = format!("hello\n{good}");
    assert_catalog_error(&bad, &[1], "not a catalog");
}

#[test]
fn catalog_truncated_record_names_its_line() {
    let good = valid_catalog();
    // Cut the file in the middle of the last record's format text.
    let rec_line = line_of(&good, "event ftrace rawthing");
    let kept: Vec<&str> = good.lines().take(rec_line + 4).collect();
    let bad = kept.join("\n") + "\n";
    // The record that promised more lines, or the end of the file where they were expected.
    assert_catalog_error(&bad, &[rec_line, kept.len() + 1], "truncated record");
}

#[test]
fn catalog_bad_count_names_its_line() {
    let good = valid_catalog();
    let bad = good.replacen("header_event 9", "header_event nine", 1);
    assert_catalog_error(
        &bad,
        &[line_of(&good, "header_event")],
        "non-numeric header_event count",
    );

    let target = "event mysys beta 1 enable,filter,trigger,format,id ";
    let n = line_of(&good, target);
    let bad: String = good
        .lines()
        .map(|l| {
            if l.starts_with(target) {
                format!("{target}x12")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_catalog_error(&bad, &[n], "non-numeric event line count");

    // A count that is too large swallows the next record's header and runs off the end.
    let bad = good.replacen("header_page 4", "header_page 400", 1);
    let total = good.lines().count();
    assert_catalog_error(&bad, &[2, total + 1], "header_page count past end of file");
}

#[test]
fn catalog_bad_fields_name_their_line() {
    let good = valid_catalog();
    let n = line_of(&good, "event mysys beta");
    for (from, to, case) in [
        ("event mysys beta 1 ", "event mysys beta one ", "bad seq"),
        (
            "event mysys beta 1 enable,filter,trigger,format,id",
            "event mysys beta 1 enable,bogus,format",
            "unknown file name",
        ),
        (
            "event mysys beta 1 ",
            "evnt mysys beta 1 ",
            "unknown record keyword",
        ),
    ] {
        let bad = good.replacen(from, to, 1);
        assert_ne!(bad, good, "{case}: replacement did not apply");
        assert_catalog_error(&bad, &[n], case);
    }
}

#[test]
fn catalog_directory_without_tracefs_layout_is_an_error() {
    let t = TempDir::new("cat");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    let empty = t.path().join("empty_dir");
    std::fs::create_dir(&empty).unwrap();
    let r = run_bin(&[OsStr::new("--catalog"), empty.as_os_str(), mp.as_os_str()]);
    let line = assert_one_line_error(&r, &[], "catalog dir with no events/");
    assert!(
        line.contains(empty.to_str().unwrap()),
        "error should name the catalog path: {line:?}"
    );
    assert_not_mounted(&mp, "catalog dir with no events/");
}

#[test]
fn threads_beyond_the_bound_are_an_error() {
    let t = TempDir::new("cli");
    let mp = t.path().join("m");
    std::fs::create_dir(&mp).unwrap();
    // 65 first: a daemon that accepts it mounts and serves (run_bin then fails) without the
    // gigabytes 100000 workers would take.
    for n in ["65", "100000", "0"] {
        let r = run_bin(&[OsStr::new("--threads"), OsStr::new(n), mp.as_os_str()]);
        assert_one_line_error(&r, &["--threads", n, "1 to 64"], &format!("--threads {n}"));
        assert_not_mounted(&mp, n);
    }
}

#[test]
fn threads_option_is_accepted() {
    for n in ["3", "64"] {
        let m = Mount::new(&["--threads", n]);
        assert!(
            m.p("events/sched/sched_switch/format").exists(),
            "--threads {n} mount serves events"
        );
    }
}

#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let m = Mount::new(&[]);
    // A failed lookup and a rejected write add debug/warn-level lines where enabled.
    assert!(m.p("events/no_such_system").metadata().is_err());
    let log = m.log();
    assert!(
        log.contains("mounted"),
        "no startup line in the log: {log:?}"
    );
    assert!(
        !log.contains('\x1b'),
        "the log written to a file has escape codes: {log:?}"
    );
}

/// Every tool answers `--help`: the examples/ programs and the examples/stress/*.sh scripts
/// print their usage on stdout and exit 0 at once (doing nothing else).
#[test]
fn every_example_and_stress_script_answers_help() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `cargo test` builds the examples; `cargo test --test it` does not, so build them here
    // (a no-op when they are up to date) next to this test binary: <target>/<profile>/deps/.
    // The benches are built too; cargo names their executables (they carry a hash).
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--examples", "--benches"])
        .args([
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(manifest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap())
        .stdout(Stdio::piped());
    if profile_dir.file_name() == Some(OsStr::new("release")) {
        build.arg("--release");
    }
    let built = build.output().unwrap();
    assert!(built.status.success(), "cargo build --examples --benches");
    let mut tools: Vec<(String, Command)> = Vec::new();
    for line in String::from_utf8_lossy(&built.stdout).lines() {
        let field = |key: &str| Some(line.split_once(key)?.1.split('"').next()?.to_string());
        if !line.contains(r#""kind":["bench"]"#) {
            continue;
        }
        if let (Some(name), Some(exe)) = (field(r#""name":""#), field(r#""executable":""#)) {
            tools.push((format!("bench {name}"), Command::new(exe)));
        }
    }
    assert_eq!(tools.len(), 2, "bench executables: {:?}", built.stdout);
    let mut names: Vec<_> = std::fs::read_dir(manifest.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut scripts: Vec<_> = std::fs::read_dir(manifest.join("examples/stress"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    scripts.sort();
    for p in names
        .iter()
        .filter(|p| p.extension() == Some(OsStr::new("rs")))
    {
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let cmd = Command::new(profile_dir.join("examples").join(&name));
        tools.push((name, cmd));
    }
    for p in scripts
        .iter()
        .filter(|p| p.extension() == Some(OsStr::new("sh")))
    {
        let mut cmd = Command::new("bash");
        cmd.arg(p);
        tools.push((p.file_name().unwrap().to_str().unwrap().to_string(), cmd));
    }
    assert!(tools.len() >= 8, "only {} tools found", tools.len());
    for (name, mut cmd) in tools {
        // (A tool that ignores --help and runs instead is killed and fails here.)
        let ran = crate::tree::run_limited(cmd.arg("--help"), Duration::from_secs(20));
        let (status, text, err) = (ran.status, ran.stdout_str(), ran.stderr_str());
        assert!(
            status.success(),
            "{name} --help exited with {status}: {err}"
        );
        assert!(
            text.to_lowercase().contains("usage") || text.contains("TRACEFS_ROOT"),
            "{name} --help printed no usage: {text:?}"
        );
    }
}

#[test]
fn catalog_features_and_printk_formats_are_served_and_extras_adds_the_rest() {
    let t = TempDir::new("cat");
    let cat = t.path().join("feat.cat");
    let printk = "0xffffffff8281288c : \"thaw_processes\"\n";
    let text = valid_catalog().replacen(
        "\nevent ",
        &format!("\nprintk_formats 1\n{printk}features inject 0\nevent "),
        1,
    );
    std::fs::write(&cat, &text).unwrap();
    let m = Mount::new(&["--catalog", cat.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(m.p("printk_formats")).unwrap(),
        printk
    );
    assert_eq!(
        list(&m.p("events/mysys/alpha")),
        ["enable", "filter", "trigger", "format", "id", "inject"]
    );
    assert_eq!(list(&m.p("events/ftrace/rawthing")), ["format"]);
    assert!(!m.p("synthetic_events").exists());
    assert_eq!(
        crate::common::write_raw(&m.p("dynamic_events"), b"s:foo int x", libc::O_WRONLY),
        Err(libc::EINVAL),
        "no synthetic events on this kernel"
    );
    assert_eq!(
        crate::common::write_raw(&m.p("dynamic_events"), b"u:foo u32 x", libc::O_WRONLY),
        Err(libc::EINVAL),
        "no user events on this kernel"
    );
    drop(m);
    let m = Mount::new(&["--extras", "--catalog", cat.to_str().unwrap()]);
    assert!(m.p("synthetic_events").exists());
    assert_eq!(
        crate::common::write_raw(&m.p("dynamic_events"), b"s:foo int x", libc::O_WRONLY),
        Ok(11)
    );
    assert_eq!(
        list(&m.p("events/synthetic/foo")),
        [
            "enable", "filter", "trigger", "format", "id", "hist", "inject"
        ]
    );
}
