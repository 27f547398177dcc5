//! What an inode is: [`Entry`], its stable inode number, its attributes, and the directory
//! queries (find a child by name, list children after a cursor) answered from the registry.
//!
//! Inode numbers are computed, not allocated: `ino = (ta << 44 | dir << 8 | slot) + 1`, where
//! `ta` is the trace array's serial (0 = top level), `dir` the serial of the directory the entry
//! is or lives in (fixed numbers below `FIRST_SERIAL`, registry serials above), and `slot` 0 for
//! the directory itself or 1 + the file's index in that directory's file table. Registry
//! serials are never reused, so a number names one entry for the life of the mount, survives the
//! kernel forgetting the inode, and a directory never shares a number with anything else.

use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use fuser::FileType;
use parking_lot::RwLockReadGuard;

use super::files::{
    CPU_FILES, CPU_READDIR, EVENTS_FILES, File, INSTANCE_READDIR, OPTIONS_READDIR, SYSTEM_FILES,
    TOP_FILES, TOP_READDIR,
};
use crate::events::catalog::EventFile;
use crate::events::life::Life;
use crate::events::registry::{Children, Event, Named, Registry, System};
use crate::trace::state::{OPTIONS, TraceArray};

const DIR_ROOT: u64 = 0;
const DIR_OPTIONS: u64 = 1;
const DIR_PER_CPU: u64 = 2;
const DIR_INSTANCES: u64 = 3;
const DIR_EVENTS: u64 = 4;
const DIR_CPU0: u64 = 16;

/// Readdir cookies: 1 and 2 follow `.` and `..`; fixed entries use `FIXED + index`; registry
/// children use their serial (always ≥ `FIRST_SERIAL`, so the ranges never meet). A cookie
/// names a position that survives additions and removals.
const FIXED: u64 = 3;

#[derive(Clone)]
pub enum Entry {
    Root,
    Top(usize),
    OptionsDir,
    Option(usize),
    PerCpuDir,
    CpuDir(usize),
    CpuFile(usize, usize),
    InstancesDir,
    /// `instances/<name>` as seen from `instances/`; inside it, the instance is a `Root`.
    Instance(Arc<TraceArray>),
    EventsDir,
    EventsFile(usize),
    SystemDir(Arc<System>),
    SystemFile(Arc<System>, usize),
    EventDir(Arc<Event>),
    EventFile(Arc<Event>, EventFile),
}

pub fn ino_of(ta: u32, dir: u64, slot: u64) -> u64 {
    ((ta as u64) << 44 | dir << 8 | slot) + 1
}

impl Entry {
    /// (directory serial, slot) of this entry inside its trace array.
    fn place(&self) -> (u64, u64) {
        match self {
            Entry::Root => (DIR_ROOT, 0),
            Entry::Top(i) => (DIR_ROOT, 1 + *i as u64),
            Entry::OptionsDir => (DIR_OPTIONS, 0),
            Entry::Option(i) => (DIR_OPTIONS, 1 + *i as u64),
            Entry::PerCpuDir => (DIR_PER_CPU, 0),
            Entry::InstancesDir => (DIR_INSTANCES, 0),
            Entry::Instance(_) => (DIR_ROOT, 0),
            Entry::CpuDir(c) => (DIR_CPU0 + *c as u64, 0),
            Entry::CpuFile(c, i) => (DIR_CPU0 + *c as u64, 1 + *i as u64),
            Entry::EventsDir => (DIR_EVENTS, 0),
            Entry::EventsFile(i) => (DIR_EVENTS, 1 + *i as u64),
            Entry::SystemDir(s) => (s.serial, 0),
            Entry::SystemFile(s, i) => (s.serial, 1 + *i as u64),
            Entry::EventDir(e) => (e.serial, 0),
            Entry::EventFile(e, f) => (e.serial, 1 + *f as u64),
        }
    }

    pub fn ino(&self, ta: &TraceArray) -> u64 {
        let (dir, slot) = self.place();
        match self {
            Entry::Instance(i) => ino_of(i.serial, dir, slot),
            _ => ino_of(ta.serial, dir, slot),
        }
    }

    /// The trace array and entry that answer for this directory's contents: an instance
    /// directory lists like the root of its own trace array.
    pub fn contents(self, ta: Arc<TraceArray>) -> (Arc<TraceArray>, Entry) {
        match self {
            Entry::Instance(i) => (i, Entry::Root),
            e => (ta, e),
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            Entry::Root
                | Entry::OptionsDir
                | Entry::PerCpuDir
                | Entry::CpuDir(_)
                | Entry::InstancesDir
                | Entry::Instance(_)
                | Entry::EventsDir
                | Entry::SystemDir(_)
                | Entry::EventDir(_)
        )
    }

    pub fn kind(&self) -> FileType {
        if self.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        }
    }

    /// The kernel's default permission bits (§1, §2).
    pub fn default_mode(&self, reg: &Registry, ta: &TraceArray) -> u16 {
        match self {
            Entry::Root if ta.is_top() => reg.owner.root_mode,
            Entry::EventsDir | Entry::SystemDir(_) | Entry::EventDir(_) => 0o755,
            e if e.is_dir() => 0o750,
            Entry::Top(i) => TOP_FILES[*i].mode,
            Entry::Option(_) => 0o640,
            Entry::CpuFile(_, i) => CPU_FILES[*i].1,
            Entry::EventsFile(i) => EVENTS_FILES[*i].1,
            Entry::SystemFile(_, i) => SYSTEM_FILES[*i].1,
            Entry::EventFile(_, f) => f.mode(),
            _ => 0o440,
        }
    }

    /// Link count: 1 for files and for every eventfs directory (so `find` never trusts it);
    /// 2 + subdirectories elsewhere, as tracefs does.
    pub fn nlink(&self, reg: &Registry, ta: &TraceArray) -> u32 {
        match self {
            Entry::Root => 2 + 3 + u32::from(ta.is_top()),
            Entry::Instance(_) => 2 + 3,
            Entry::PerCpuDir => 2 + reg.ncpu as u32,
            Entry::InstancesDir => 2 + reg.instances.read().len() as u32,
            Entry::OptionsDir | Entry::CpuDir(_) => 2,
            _ => 1,
        }
    }

    /// The file this entry reads and writes, if it is a file.
    pub fn file(&self) -> Option<File> {
        Some(match self {
            Entry::Top(i) => File::Top(TOP_FILES[*i].file),
            Entry::Option(i) => File::Option(*i),
            Entry::CpuFile(c, i) => File::Cpu(*c, CPU_FILES[*i].2),
            Entry::EventsFile(i) => File::Events(EVENTS_FILES[*i].2),
            Entry::SystemFile(s, i) => File::System(s.clone(), SYSTEM_FILES[*i].2),
            Entry::EventFile(e, f) => File::Event(e.clone(), *f),
            _ => return None,
        })
    }
}

/// The lock of a directory being searched or listed, held until the reply that names its
/// children has been sent. Static directories have no lock: their contents never change.
pub enum DirGuard<'a> {
    Static,
    Instances(RwLockReadGuard<'a, Children<TraceArray>>),
    Events(RwLockReadGuard<'a, Children<System>>),
    System(&'a System, RwLockReadGuard<'a, Children<Event>>),
    Event(&'a Event, RwLockReadGuard<'a, Life>),
}

impl Entry {
    /// Takes this directory's lock (shared).
    pub fn lock<'a>(&'a self, reg: &'a Registry) -> DirGuard<'a> {
        match self {
            Entry::InstancesDir => DirGuard::Instances(reg.instances.read()),
            Entry::EventsDir => DirGuard::Events(reg.systems.read()),
            Entry::SystemDir(s) => DirGuard::System(s, s.events.read()),
            Entry::EventDir(e) => DirGuard::Event(e, e.life.read()),
            _ => DirGuard::Static,
        }
    }
}

/// One directory entry of a listing.
pub struct Listed {
    pub cookie: u64,
    pub name: OsString,
    pub entry: Entry,
}

impl DirGuard<'_> {
    /// The child called `name` of `dir`, asking the registry (never a cache).
    pub fn find(
        &self,
        reg: &Registry,
        ta: &TraceArray,
        dir: &Entry,
        name: &OsStr,
    ) -> Option<Entry> {
        // Only instance names may be any bytes; every other name is UTF-8.
        if let (Entry::InstancesDir, DirGuard::Instances(instances)) = (dir, self) {
            return instances.get(name).map(|i| Entry::Instance(i.clone()));
        }
        let name = name.to_str()?;
        match (dir, self) {
            (Entry::Root, _) => {
                if let Some(i) = TOP_FILES
                    .iter()
                    .position(|f| f.name == name && f.offered(reg, ta))
                {
                    return Some(Entry::Top(i));
                }
                match name {
                    "events" => Some(Entry::EventsDir),
                    "options" => Some(Entry::OptionsDir),
                    "per_cpu" => Some(Entry::PerCpuDir),
                    "instances" if ta.is_top() => Some(Entry::InstancesDir),
                    _ => None,
                }
            }
            (Entry::OptionsDir, _) => OPTIONS
                .iter()
                .enumerate()
                .position(|(i, o)| o.0 == name && ta.offers_option(i))
                .map(Entry::Option),
            (Entry::PerCpuDir, _) => {
                let n: usize = name.strip_prefix("cpu")?.parse().ok()?;
                (n < reg.ncpu && name == format!("cpu{n}")).then_some(Entry::CpuDir(n))
            }
            (Entry::CpuDir(c), _) => CPU_FILES
                .iter()
                .position(|f| f.0 == name && f.2.offered(reg))
                .map(|i| Entry::CpuFile(*c, i)),
            (Entry::EventsDir, DirGuard::Events(systems)) => {
                if let Some(i) = EVENTS_FILES.iter().position(|f| f.0 == name) {
                    return Some(Entry::EventsFile(i));
                }
                systems.get(name).map(|s| Entry::SystemDir(s.clone()))
            }
            (Entry::SystemDir(s), DirGuard::System(_, events)) => {
                if events.removed {
                    return None;
                }
                if !s.internal
                    && let Some(i) = SYSTEM_FILES.iter().position(|f| f.0 == name)
                {
                    return Some(Entry::SystemFile(s.clone(), i));
                }
                events.get(name).map(|e| Entry::EventDir(e.clone()))
            }
            (Entry::EventDir(e), DirGuard::Event(_, life)) => {
                if **life != Life::Alive {
                    return None;
                }
                let f = EventFile::from_name(name)?;
                e.files()
                    .contains(f)
                    .then(|| Entry::EventFile(e.clone(), f))
            }
            _ => None,
        }
    }

    /// The children of `dir` whose cookie is greater than `after`, in listing order: the fixed
    /// files first, then subdirectories in creation order (§2.3).
    pub fn list(&self, reg: &Registry, ta: &TraceArray, dir: &Entry, after: u64) -> Vec<Listed> {
        // Static directories list their names in the kernel's order; a name this trace array
        // does not offer keeps its place (and cookie) but is skipped.
        let mut fixed: Vec<(OsString, Option<Entry>)> = Vec::new();
        let mut children: Vec<Listed> = Vec::new();
        let mut names_in = |names: &[&str]| {
            fixed.extend(
                names
                    .iter()
                    .map(|n| (n.into(), self.find(reg, ta, dir, OsStr::new(n)))),
            )
        };
        match (dir, self) {
            (Entry::Root, _) if ta.is_top() => names_in(TOP_READDIR),
            (Entry::Root, _) => names_in(INSTANCE_READDIR),
            (Entry::OptionsDir, _) => names_in(OPTIONS_READDIR),
            (Entry::CpuDir(_), _) => names_in(CPU_READDIR),
            // Newest first, like every tracefs directory: the highest CPU leads.
            (Entry::PerCpuDir, _) => fixed.extend(
                (0..reg.ncpu)
                    .rev()
                    .map(|c| (format!("cpu{c}").into(), Some(Entry::CpuDir(c)))),
            ),
            (Entry::InstancesDir, DirGuard::Instances(instances)) => {
                children.extend(instances.after(after).iter().map(|i| Listed {
                    cookie: crate::events::registry::Named::serial(&**i),
                    name: i.name.to_os_string(),
                    entry: Entry::Instance(i.clone()),
                }));
            }
            (Entry::EventsDir, DirGuard::Events(systems)) => {
                fixed.extend(
                    EVENTS_FILES
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (f.0.into(), Some(Entry::EventsFile(i)))),
                );
                children.extend(listed(systems, ta, after).map(|(cookie, s)| Listed {
                    cookie,
                    name: s.name.to_string().into(),
                    entry: Entry::SystemDir(s.clone()),
                }));
            }
            (Entry::SystemDir(s), DirGuard::System(_, events)) if !events.removed => {
                if !s.internal {
                    fixed.extend(
                        SYSTEM_FILES
                            .iter()
                            .enumerate()
                            .map(|(i, f)| (f.0.into(), Some(Entry::SystemFile(s.clone(), i)))),
                    );
                }
                children.extend(listed(events, ta, after).map(|(cookie, e)| Listed {
                    cookie,
                    name: e.def.name.clone().into(),
                    entry: Entry::EventDir(e.clone()),
                }));
            }
            (Entry::EventDir(e), DirGuard::Event(_, life)) if **life == Life::Alive => {
                fixed.extend(
                    e.files()
                        .iter()
                        .map(|f| (f.name().into(), Some(Entry::EventFile(e.clone(), f)))),
                );
            }
            _ => {}
        }
        let mut out: Vec<Listed> = fixed
            .into_iter()
            .enumerate()
            .filter_map(|(i, (name, entry))| {
                Some(Listed {
                    cookie: FIXED + i as u64,
                    name,
                    entry: entry?,
                })
            })
            .filter(|l| l.cookie > after)
            .collect();
        out.extend(children);
        out
    }
}

/// An eventfs directory's children after cursor `after`, with their cookies: in creation order
/// at the top level, in the kernel's event-list order in an instance (§2.3).
fn listed<'a, T: Named>(
    children: &'a Children<T>,
    ta: &TraceArray,
    after: u64,
) -> Box<dyn Iterator<Item = (u64, &'a Arc<T>)> + 'a> {
    if ta.is_top() {
        Box::new(children.after(after).iter().map(|c| (c.serial(), c)))
    } else {
        Box::new(children.after_in_instance(ta.born, after).into_iter())
    }
}

/// The parent directory of `entry` (for `..`). The root is its own parent.
pub fn parent_of(reg: &Registry, entry: &Entry) -> Entry {
    match entry {
        Entry::Root
        | Entry::Top(_)
        | Entry::OptionsDir
        | Entry::PerCpuDir
        | Entry::InstancesDir => Entry::Root,
        Entry::Instance(_) => Entry::InstancesDir,
        Entry::EventsDir => Entry::Root,
        Entry::Option(_) => Entry::OptionsDir,
        Entry::CpuDir(_) => Entry::PerCpuDir,
        Entry::CpuFile(c, _) => Entry::CpuDir(*c),
        Entry::EventsFile(_) | Entry::SystemDir(_) => Entry::EventsDir,
        Entry::SystemFile(s, _) => Entry::SystemDir(s.clone()),
        Entry::EventFile(e, _) => Entry::EventDir(e.clone()),
        Entry::EventDir(e) => match reg.systems.read().get(&e.def.system) {
            Some(s) => Entry::SystemDir(s.clone()),
            None => Entry::EventsDir,
        },
    }
}

impl Entry {
    /// Does this entry live in (or is it) the directory of `event`?
    pub fn belongs_to_event(&self, event: &Event) -> bool {
        match self {
            Entry::EventDir(e) | Entry::EventFile(e, _) => std::ptr::eq(&**e, event),
            _ => false,
        }
    }

    /// Does this entry live in (or is it) the directory of subsystem `system`?
    pub fn belongs_to_system(&self, system: &System) -> bool {
        match self {
            Entry::SystemDir(s) | Entry::SystemFile(s, _) => std::ptr::eq(&**s, system),
            Entry::EventDir(e) | Entry::EventFile(e, _) => e.def.system == *system.name,
            _ => false,
        }
    }

    /// The entry's name in its parent directory (the root's is empty).
    pub fn name(&self) -> OsString {
        OsString::from(match self {
            Entry::Root => String::new(),
            Entry::Top(i) => TOP_FILES[*i].name.into(),
            Entry::OptionsDir => "options".into(),
            Entry::Option(i) => OPTIONS[*i].0.into(),
            Entry::PerCpuDir => "per_cpu".into(),
            Entry::CpuDir(c) => format!("cpu{c}"),
            Entry::CpuFile(_, i) => CPU_FILES[*i].0.into(),
            Entry::InstancesDir => "instances".into(),
            Entry::Instance(i) => return i.name.to_os_string(),
            Entry::EventsDir => "events".into(),
            Entry::EventsFile(i) => EVENTS_FILES[*i].0.into(),
            Entry::SystemDir(s) => s.name.to_string(),
            Entry::SystemFile(_, i) => SYSTEM_FILES[*i].0.into(),
            Entry::EventDir(e) => e.def.name.clone(),
            Entry::EventFile(_, f) => f.name().into(),
        })
    }
}
