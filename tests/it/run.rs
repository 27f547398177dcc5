//! `utracefs run -- COMMAND` and mounts by a normal user, driven as a person would: real
//! trace-cmd, bpftrace and perf inside `utracefs run`, as root and as an unprivileged user
//! the tests create (`utracefs_it`), with /dev/fuse made 0666 while they need it (as udev
//! does; restored after). The user gets a kernel tracefs mount to inherit, as systemd gives
//! every user one at /sys/kernel/tracing. Every error case prints its message and exits
//! non-zero without running COMMAND. A tool these tests need that is missing fails them
//! (scripts/test.sh installs trace-cmd, bpftrace, perf and fusermount3).

use crate::common::{BIN, KernelTracefs, TempDir, read};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

const USER: &str = "utracefs_it";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Root,
    User,
}

/// (uid, gid) of the test user, created on first use.
fn test_user() -> (u32, u32) {
    static U: OnceLock<(u32, u32)> = OnceLock::new();
    *U.get_or_init(|| {
        let id = |flag: &str| {
            let o = Command::new("id").args([flag, USER]).output().unwrap();
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        };
        if id("-u").is_none() {
            let o = Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/bin/sh", USER])
                .output()
                .expect("run useradd");
            assert!(
                o.status.success() || id("-u").is_some(),
                "useradd {USER}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        (id("-u").unwrap(), id("-g").unwrap())
    })
}

/// The daemon binary where the test user can run it (the target dir may be private): a copy
/// per test process in one world-readable directory, whose copies from finished test
/// processes are removed here.
fn user_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let dir = std::env::temp_dir().join("utracefs-it-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("utracefs-")
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let bin = dir.join(format!("utracefs-{}", std::process::id()));
        std::fs::copy(BIN, &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    })
}

/// /dev/fuse's mode is machine state: tests that need it open to everyone share it, a test
/// that needs it closed has it alone; the first changes it, the last puts it back.
static DEV_FUSE: RwLock<()> = RwLock::new(());
static OPENERS: Mutex<(usize, u32)> = Mutex::new((0, 0));

fn dev_fuse_mode() -> u32 {
    std::fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o7777
}

fn set_dev_fuse_mode(mode: u32) {
    std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(mode)).unwrap();
}

/// /dev/fuse open to every user (0666) while held.
struct FuseOpen(#[allow(dead_code)] RwLockReadGuard<'static, ()>);

fn fuse_open() -> FuseOpen {
    let g = DEV_FUSE.read().unwrap_or_else(|e| e.into_inner());
    let mut o = OPENERS.lock().unwrap_or_else(|e| e.into_inner());
    if o.0 == 0 {
        o.1 = dev_fuse_mode();
        set_dev_fuse_mode(0o666);
    }
    o.0 += 1;
    FuseOpen(g)
}

impl Drop for FuseOpen {
    fn drop(&mut self) {
        let mut o = OPENERS.lock().unwrap_or_else(|e| e.into_inner());
        o.0 -= 1;
        if o.0 == 0 {
            set_dev_fuse_mode(o.1);
        }
    }
}

/// /dev/fuse closed to all but root (0600, as on these machines) while held.
struct FuseClosed(#[allow(dead_code)] RwLockWriteGuard<'static, ()>, u32);

fn fuse_closed() -> FuseClosed {
    let g = DEV_FUSE.write().unwrap_or_else(|e| e.into_inner());
    let old = dev_fuse_mode();
    set_dev_fuse_mode(0o600);
    FuseClosed(g, old)
}

impl Drop for FuseClosed {
    fn drop(&mut self) {
        set_dev_fuse_mode(self.1);
    }
}

/// A scratch directory the runner (root or the test user) owns and works in.
fn workdir(who: Who, tag: &str) -> TempDir {
    let d = TempDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if who == Who::User {
        let (uid, gid) = test_user();
        std::os::unix::fs::chown(d.path(), Some(uid), Some(gid)).unwrap();
    }
    d
}

/// `sh -c script` in `dir` as `who` (the user with a clean environment, as after a login),
/// with `$U` naming the daemon binary and `$UB` the copy the user can run. Fails the test
/// after 120 s.
fn sh(who: Who, dir: &Path, script: &str) -> Output {
    let mut cmd = match who {
        Who::Root => {
            let mut c = Command::new("sh");
            c.env("U", BIN);
            c
        }
        Who::User => {
            let (uid, gid) = test_user();
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "--",
                "sh",
            ])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", dir)
            .env("U", user_bin());
            c
        }
    };
    cmd.args(["-c", script])
        .env("UB", user_bin())
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    let what = format!("{who:?}: {script}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what}: still running after 120 s");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The kernel's own tracefs, for the user to inherit (systemd mounts one for every user) and
/// for the checks that nothing there changed.
fn kernel() -> KernelTracefs {
    KernelTracefs::mount().expect("mount the kernel's tracefs (tests run as root)")
}

/// What `utracefs run` must never change in the kernel's tracefs (top level: only read).
fn kernel_state(k: &Path) -> Vec<String> {
    ["set_event", "tracing_on", "current_tracer"]
        .iter()
        .map(|f| format!("{f}: {}", read(&k.join(f))))
        .collect()
}

fn unique(tag: &str) -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("utracefs-it-{tag}-{}-{ns}", std::process::id())
}

/// trace-cmd lists exactly the clone's events, records an exec and a marker from the clone
/// and reports them; the kernel's tracefs sees none of it.
fn trace_cmd_records_from_the_clone(who: Who) {
    let k = kernel();
    let _fuse = (who == Who::User).then(fuse_open);
    let d = workdir(who, "runtc");
    let before = kernel_state(k.path());
    let marker = unique("marker");
    let out = sh(
        who,
        d.path(),
        &format!(
            r#"set -e
"$U" run -- sh -c 'trace-cmd list -e > list.txt; cat /sys/kernel/tracing/available_events > avail.txt'
"$U" run -- trace-cmd record -q -e sched:sched_process_exec -o t.dat -- \
    sh -c 'echo {marker} > /sys/kernel/tracing/trace_marker; /bin/true' > /dev/null
trace-cmd report -i t.dat"#
        ),
    );
    assert!(out.status.success(), "{}", show(&out));
    let lines = |f: &str| -> BTreeSet<String> {
        read(&d.path().join(f))
            .lines()
            .map(str::to_string)
            .collect()
    };
    // trace-cmd's writes to kptr_restrict and ftrace_enabled land in private copies.
    assert!(!text(&out.stderr).contains("can't set"), "{}", show(&out));
    let avail = lines("avail.txt");
    assert!(avail.len() > 100, "available_events: {avail:?}");
    assert_eq!(
        lines("list.txt"),
        avail,
        "trace-cmd list -e vs available_events"
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("sched_process_exec:") && report.contains("filename=/bin/true"),
        "{}",
        show(&out)
    );
    assert!(
        report.contains(&format!("tracing_mark_write: {marker}")),
        "{}",
        show(&out)
    );
    assert!(
        !read(&k.path().join("trace")).contains(&marker),
        "the marker reached the kernel's trace"
    );
    assert_eq!(
        kernel_state(k.path()),
        before,
        "the kernel's tracing state changed"
    );
}

#[test]
fn trace_cmd_records_from_the_clone_as_root() {
    trace_cmd_records_from_the_clone(Who::Root);
}

#[test]
fn trace_cmd_records_from_the_clone_as_a_user() {
    trace_cmd_records_from_the_clone(Who::User);
}

/// bpftrace and perf list the clone's events, one made through `dynamic_events` included;
/// that one exists only in the clone, so attaching to it fails instead of reaching a kernel
/// event with the same id.
fn bpftrace_and_perf_list_the_clone(who: Who) {
    let _k = kernel();
    let _fuse = (who == Who::User).then(fuse_open);
    let d = workdir(who, "runbt");
    let ev = format!("utr_it_{}", std::process::id());
    let out = sh(
        who,
        d.path(),
        &format!(
            r#"set -e
"$U" run -- sh -c '
  set -e
  echo "s:{ev} u64 lat" >> /sys/kernel/tracing/dynamic_events
  cat /sys/kernel/tracing/available_events > avail.txt
  bpftrace -l "tracepoint:sched:*" > bt_sched.txt
  bpftrace -l "tracepoint:synthetic:*" > bt_synth.txt
  perf list tracepoint > perf.txt 2>&1
  if bpftrace -e "tracepoint:synthetic:{ev} {{ exit(); }}" > attach.txt 2>&1; then echo attached; fi
'"#
        ),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(!text(&out.stdout).contains("attached"), "{}", show(&out));
    let file = |f: &str| read(&d.path().join(f));
    let avail = file("avail.txt");
    let sched: BTreeSet<String> = avail
        .lines()
        .filter_map(|l| l.strip_prefix("sched:"))
        .map(|e| format!("tracepoint:sched:{e}"))
        .collect();
    assert!(!sched.is_empty(), "{avail}");
    let bt: BTreeSet<String> = file("bt_sched.txt").lines().map(str::to_string).collect();
    assert_eq!(bt, sched, "bpftrace -l vs the clone's available_events");
    assert!(
        file("bt_synth.txt")
            .lines()
            .any(|l| l == format!("tracepoint:synthetic:{ev}")),
        "{}",
        file("bt_synth.txt")
    );
    let perf = file("perf.txt");
    let perf_events: BTreeSet<&str> = perf
        .lines()
        .filter(|l| l.contains("[Tracepoint event]"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        perf_events.contains(format!("synthetic:{ev}").as_str()),
        "{perf}"
    );
    for e in avail.lines().filter(|l| l.starts_with("sched:")) {
        assert!(perf_events.contains(e), "perf list lacks {e}:\n{perf}");
    }
    // A user cannot attach at all (no BPF maps); root gets the kernel's refusal of the id.
    if who == Who::Root {
        assert!(
            file("attach.txt").contains("Error attaching probe"),
            "{}",
            file("attach.txt")
        );
    }
}

#[test]
fn bpftrace_and_perf_list_the_clone_as_root() {
    bpftrace_and_perf_list_the_clone(Who::Root);
}

#[test]
fn bpftrace_and_perf_list_the_clone_as_a_user() {
    bpftrace_and_perf_list_the_clone(Who::User);
}

/// COMMAND's exit status is utracefs's (127: not found, 128+N: killed by signal N), a signal
/// sent to utracefs reaches COMMAND, and nothing is left mounted or running.
fn run_passes_status_and_signals(who: Who) {
    let _fuse = (who == Who::User).then(fuse_open);
    let d = workdir(who, "runst");
    let out = sh(
        who,
        d.path(),
        r#"
"$U" run -- sh -c 'exit 7'; echo "exit=$?"
"$U" run -- no-such-command-here; echo "notfound=$?"
"$U" run -- sh -c 'kill -KILL $$'; echo "killed=$?"
"$U" run -- sh -c 'trap "exit 42" TERM; touch ready; while :; do sleep 0.05; done' &
pid=$!
while [ ! -e ready ]; do sleep 0.05; done
kill -TERM $pid; wait $pid; echo "forwarded=$?"
"#,
    );
    let so = text(&out.stdout);
    for want in ["exit=7", "notfound=127", "killed=137", "forwarded=42"] {
        assert!(so.contains(want), "{want}: {}", show(&out));
    }
    assert!(
        text(&out.stderr).contains("no-such-command-here: command not found"),
        "{}",
        show(&out)
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(" /sys/kernel/tracing fuse.tracefs"),
        "a clone was left mounted:\n{mounts}"
    );
}

#[test]
fn run_passes_status_and_signals_as_root() {
    run_passes_status_and_signals(Who::Root);
}

#[test]
fn run_passes_status_and_signals_as_a_user() {
    run_passes_status_and_signals(Who::User);
}

/// Job control inside a user's run (where ptrace follows COMMAND's processes): a job stopped
/// by SIGSTOP stays stopped, its shell sees it stopped, and SIGCONT resumes it.
#[test]
fn a_stopped_job_stays_stopped_in_a_users_run() {
    let _fuse = fuse_open();
    let d = workdir(Who::User, "runjc");
    let out = sh(
        Who::User,
        d.path(),
        r#""$U" run -- bash -c '
set -m
sleep 60 & p=$!
kill -STOP $p
while ! jobs -l | grep -q Stopped; do sleep 0.01; done
grep "^State:" /proc/$p/status
kill -CONT $p
while grep -q "^State:.*[tT]" /proc/$p/status; do sleep 0.01; done
echo resumed
kill $p'"#,
    );
    let so = text(&out.stdout);
    assert!(
        so.contains("State:	t (tracing stop)") || so.contains("State:	T (stopped)"),
        "{}",
        show(&out)
    );
    assert!(so.contains("resumed"), "{}", show(&out));
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A normal user mounts through fusermount3, uses the mount, and unmounts with
/// `fusermount3 -u` (the daemon then exits 0) or Ctrl-C; no mount is left.
#[test]
fn a_user_mounts_with_fusermount3_and_unmounts() {
    let _fuse = fuse_open();
    let d = workdir(Who::User, "runum");
    let out = sh(
        Who::User,
        d.path(),
        r#"set -e
mkdir m
"$U" m 2> daemon.log & pid=$!
while ! grep -q " $PWD/m fuse.tracefs " /proc/mounts; do sleep 0.05; done
ls m | grep -qx available_events
echo 1 > m/events/sched/sched_switch/enable
cat m/set_event
fusermount3 -u m
wait $pid; echo "daemon=$?"
! grep " $PWD/m " /proc/mounts
"$U" m 2>> daemon.log & pid=$!
while ! grep -q " $PWD/m fuse.tracefs " /proc/mounts; do sleep 0.05; done
kill -INT $pid
wait $pid; echo "interrupted=$?"
! grep " $PWD/m " /proc/mounts
"#,
    );
    let log = read(&d.path().join("daemon.log"));
    assert!(out.status.success(), "{}\ndaemon log:\n{log}", show(&out));
    let so = text(&out.stdout);
    assert!(so.contains("sched:sched_switch\n"), "{so}");
    assert!(
        so.contains("daemon=0") && so.contains("interrupted=0"),
        "{so}"
    );
    // What needs root degrades to one line.
    assert!(log.contains("process connector unavailable"), "{log}");
    wait_for("the mount to go", || {
        crate::common::mount_type(&d.path().join("m")).is_none()
    });
}

/// Runs `script` as the test user and checks it failed with `message` on stderr and never
/// ran COMMAND (which would create `ran`).
fn fails_with(who: Who, dir: &Path, script: &str, message: &str) {
    let out = sh(who, dir, script);
    assert!(!out.status.success(), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains(message), "want {message:?}: {}", show(&out));
    assert!(!dir.join("ran").exists(), "COMMAND ran: {}", show(&out));
}

/// Without /dev/fuse access (0600, the default here), a user's mount and run both say so.
#[test]
fn errors_without_dev_fuse() {
    let _closed = fuse_closed();
    let d = workdir(Who::User, "runer");
    let msg = "cannot open /dev/fuse: permission denied (its mode is 0600";
    fails_with(Who::User, d.path(), r#"mkdir -p m; "$U" m"#, msg);
    fails_with(Who::User, d.path(), r#""$U" run -- touch ran"#, msg);
}

/// Without fusermount3 a user's mount says to install it; `-o allow_other` is refused unless
/// /etc/fuse.conf allows it (it does not here); a run where user namespaces are disabled
/// says so and does not run COMMAND.
#[test]
fn errors_without_fusermount3_allow_other_or_user_namespaces() {
    let _fuse = fuse_open();
    let d = workdir(Who::User, "runer2");
    let (uid, gid) = test_user();
    let as_user = format!("setpriv --reuid={uid} --regid={gid} --clear-groups");
    // Root hides fusermount3 in a mount namespace of its own, then becomes the user there.
    fails_with(
        Who::Root,
        d.path(),
        &format!(
            r#"unshare -m --propagation private sh -c 'mount --bind /dev/null "$(command -v fusermount3)" && mkdir -p m && chown {uid} m && exec {as_user} "$UB" m'"#
        ),
        "fusermount3 not found",
    );
    assert!(
        !std::fs::read_to_string("/etc/fuse.conf")
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "user_allow_other"),
        "this test expects /etc/fuse.conf without user_allow_other"
    );
    fails_with(
        Who::User,
        d.path(),
        r#"mkdir -p m2; "$U" -o allow_other m2"#,
        "allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf",
    );
    // user.max_user_namespaces is per user namespace: 0 in one of root's own (mapping every
    // uid to itself, written from outside as newuidmap would) disables them there only.
    let mut child = Command::new("unshare")
        .args(["--user", "sh", "-c"])
        .arg(format!(
            // Capabilities in the namespace come with the first exec after the maps.
            r#"read go; exec sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec {as_user} "$UB" run -- touch ran'"#
        ))
        .env("UB", user_bin())
        .current_dir(d.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let own = std::fs::read_link("/proc/self/ns/user").unwrap();
    wait_for("unshare --user", || {
        std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|ns| ns != own)
    });
    for map in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{map}"), "0 0 65536").unwrap();
    }
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("cannot create a user namespace"),
        "{}",
        show(&out)
    );
    assert!(
        !d.path().join("ran").exists(),
        "COMMAND ran: {}",
        show(&out)
    );
}
