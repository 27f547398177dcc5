//! The kernel's own caches (directory listings, passthrough of static files) serve what does
//! not change, and never serve it stale: every directory whose children change lists the
//! change the moment the call that made it returns, in the same process (a fresh listing and a
//! directory held open across the change) and in another one.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::common::*;

/// A directory held open (libc `DIR`): `names` rewinds and lists it again.
struct HeldDir(*mut libc::DIR);

impl HeldDir {
    fn open(path: &Path) -> HeldDir {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; the handle is closed on drop.
        let d = unsafe { libc::opendir(c.as_ptr()) };
        assert!(!d.is_null(), "opendir {}", path.display());
        HeldDir(d)
    }

    fn names(&self) -> Vec<String> {
        let mut out = vec![];
        // SAFETY: a live DIR handle; each dirent is read before the next readdir.
        unsafe {
            libc::rewinddir(self.0);
            loop {
                let e = libc::readdir(self.0);
                if e.is_null() {
                    break;
                }
                let name = std::ffi::CStr::from_ptr((*e).d_name.as_ptr());
                out.push(name.to_string_lossy().into_owned());
            }
        }
        out
    }
}

impl Drop for HeldDir {
    fn drop(&mut self) {
        // SAFETY: closes the handle opened in `open`, once.
        unsafe { libc::closedir(self.0) };
    }
}

/// The names in `dir`, by getdents in this process and by `ls` in another: they must agree.
fn listing(dir: &Path) -> Vec<String> {
    let mut here: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let out = std::process::Command::new("ls")
        .args(["-1", "-U"])
        .arg(dir)
        .output()
        .unwrap();
    let mut there: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    here.sort();
    there.sort();
    assert_eq!(
        here,
        there,
        "{}: this process and `ls` disagree",
        dir.display()
    );
    here
}

/// Checks that `name` is (`present`) or is not listed in `dir`, freshly, by another process
/// and through `held`, a handle on `dir` opened before the change.
fn assert_listed(dir: &Path, held: &HeldDir, name: &str, present: bool, what: &str) {
    let fresh = listing(dir);
    assert_eq!(
        fresh.iter().any(|n| n == name),
        present,
        "{what}: {name} in {}: {fresh:?}",
        dir.display()
    );
    let mut again = held.names();
    again.retain(|n| n != "." && n != "..");
    again.sort();
    assert_eq!(
        again, fresh,
        "{what}: a directory held open lists stale names"
    );
}

#[test]
fn instances_listing_shows_mkdir_and_rmdir_at_once() {
    let m = Mount::new(&[]);
    let dir = m.p("instances");
    let held = HeldDir::open(&dir);
    for round in 0..20 {
        let name = format!("l{round}");
        assert_listed(&dir, &held, &name, false, "before mkdir");
        std::fs::create_dir(dir.join(&name)).unwrap();
        assert_listed(&dir, &held, &name, true, "after mkdir");
        std::fs::remove_dir(dir.join(&name)).unwrap();
        assert_listed(&dir, &held, &name, false, "after rmdir");
    }
}

/// Every way of creating and deleting events at run time, seen from the top level's and an
/// instance's `events/` and from the subsystem the events live in.
#[test]
fn every_way_of_changing_events_relists_at_once() {
    let m = Mount::new(&[]);
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let w = |file: &str, text: &str, flags: i32| {
        write_raw(&m.p(file), text.as_bytes(), flags).unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    let append = libc::O_WRONLY | libc::O_APPEND;
    let trunc = libc::O_WRONLY | libc::O_TRUNC;
    // (file, create, flags, system, event, delete, flags)
    let ways = [
        (
            "dynamic_events",
            "s:la u64 a",
            append,
            "synthetic",
            "la",
            "-:synthetic/la",
            append,
        ),
        (
            "synthetic_events",
            "lb u64 b",
            append,
            "synthetic",
            "lb",
            "!lb",
            append,
        ),
        (
            "synthetic_events",
            "lc u64 c",
            append,
            "synthetic",
            "lc",
            "",
            trunc,
        ),
        (
            "dynamic_events",
            "u:ld u32 d",
            append,
            "user_events",
            "ld",
            "-:user_events/ld u32 d",
            append,
        ),
    ];
    for (file, create, cflags, sys, ev, delete, dflags) in ways {
        let what = format!("{file} {create:?} / {delete:?}");
        for root in ["", "instances/i/"] {
            let events = m.p(&format!("{root}events"));
            let held = HeldDir::open(&events);
            assert_listed(&events, &held, sys, false, &what);
        }
        let held: Vec<_> = ["", "instances/i/"]
            .iter()
            .map(|r| HeldDir::open(&m.p(&format!("{r}events"))))
            .collect();
        w(file, create, cflags);
        for (root, held) in ["", "instances/i/"].iter().zip(&held) {
            let events = m.p(&format!("{root}events"));
            assert_listed(&events, held, sys, true, &what);
            let system = events.join(sys);
            assert_listed(&system, &HeldDir::open(&system), ev, true, &what);
        }
        let in_system: Vec<_> = ["", "instances/i/"]
            .iter()
            .map(|r| HeldDir::open(&m.p(&format!("{r}events/{sys}"))))
            .collect();
        // A second event keeps the subsystem alive while the first goes.
        let other = create.replacen(ev, &format!("{ev}x"), 1);
        w(file, &other, cflags);
        if dflags == trunc {
            // A truncating open deletes every event the file lists: both go, and the subsystem.
            w(file, delete, dflags);
            for (root, held) in ["", "instances/i/"].iter().zip(&held) {
                assert_listed(&m.p(&format!("{root}events")), held, sys, false, &what);
            }
            continue;
        }
        w(file, delete, dflags);
        for (root, held) in ["", "instances/i/"].iter().zip(&in_system) {
            let system = m.p(&format!("{root}events/{sys}"));
            assert_listed(&system, held, ev, false, &what);
            assert!(listing(&system).contains(&format!("{ev}x")), "{what}");
        }
        let delete_other = delete.replacen(ev, &format!("{ev}x"), 1);
        w(file, &delete_other, dflags);
        for (root, held) in ["", "instances/i/"].iter().zip(&held) {
            assert_listed(&m.p(&format!("{root}events")), held, sys, false, &what);
        }
    }
}

/// `format` of a catalog event and every `id` are read by the kernel from a backing file
/// (FUSE passthrough): no READ reaches the daemon, the size stays 0 as in tracefs, and an `id`
/// stays readable after its event is deleted while a deleted event's `format` reads ENODEV, as
/// in the kernel. No FLUSH either: the first is answered ENOSYS and the kernel sends no more.
#[test]
fn static_files_are_read_by_the_kernel_and_closes_cost_no_flush() {
    let m = Mount::new(&[]);
    let format = m.p("events/sched/sched_switch/format");
    let id = m.p("events/sched/sched_switch/id");
    // The text the daemon renders: an instance's `format` goes through it.
    std::fs::create_dir(m.p("instances/i")).unwrap();
    let through_daemon = read(&m.p("instances/i/events/sched/sched_switch/format"));
    let before = m.stats();
    for _ in 0..10 {
        assert_eq!(read(&format), through_daemon);
        assert!(read(&id).trim().parse::<u32>().is_ok());
    }
    let after = m.stats();
    assert_eq!(after["reads"], before["reads"], "READs reached the daemon");
    assert!(after["opens"] >= before["opens"] + 20);
    assert!(after["flushes"] <= 1, "{} FLUSHes", after["flushes"]);
    assert_eq!(std::fs::metadata(&format).unwrap().len(), 0);
    // Small reads at any offset see the same text.
    let mut f = std::fs::File::open(&format).unwrap();
    let mut chunks = vec![];
    let mut buf = [0u8; 7];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        chunks.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8(chunks).unwrap(), through_daemon);
    assert_eq!(f.metadata().unwrap().len(), 0);

    let dynamic_events = m.p("dynamic_events");
    let append = libc::O_WRONLY | libc::O_APPEND;
    write_raw(&dynamic_events, b"s:gone u64 a", append).unwrap();
    let id_fd = std::fs::File::open(m.p("events/synthetic/gone/id")).unwrap();
    let format_fd = std::fs::File::open(m.p("events/synthetic/gone/format")).unwrap();
    let the_id = read(&m.p("events/synthetic/gone/id"));
    write_raw(&dynamic_events, b"-:synthetic/gone", append).unwrap();
    let read_fd = |mut f: &std::fs::File| {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).map(|_| s)
    };
    assert_eq!(read_fd(&id_fd).unwrap(), the_id);
    let e = read_fd(&format_fd).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
}
