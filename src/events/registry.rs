//! The event registry: the single source of truth for what exists (subsystems, events, trace
//! arrays) and for their state (enable flags, tracing settings, attribute overrides).
//!
//! It knows nothing of FUSE, ring buffers or the commit path. The filesystem view asks it,
//! under the lock of the directory being searched, whether a name exists; nothing else decides
//! existence.
//!
//! Locks, in the order they may be taken (never the reverse):
//! 1. a directory lock: `Registry::systems` (the `events/` directory), a `System::events`
//!    (one subsystem directory) or an `Event::life` (one event directory);
//! 2. a trace array's `TraceArray::state` (enable flags and settings); it is never held while
//!    taking a directory lock;
//! 3. that trace array's `TraceArray::buffer` (the ring buffers).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::RwLock;

use crate::events::catalog::{Catalog, EventDef, Features, FileSet};
use crate::events::life::Life;
use crate::trace::state::TraceArray;

/// Serial numbers 0..FIRST_SERIAL are reserved for the fixed directories of a trace array.
pub const FIRST_SERIAL: u64 = 1 << 16;

/// Something that lives in a directory with a stable name and serial.
pub trait Named {
    fn name(&self) -> &OsStr;
    fn serial(&self) -> u64;
    /// Position in the kernel's global event list, which an instance's `events/` follows.
    fn rank(&self) -> u64 {
        self.serial()
    }
}

/// Ranks: catalog events count up from here in the kernel's list order; events added at run
/// time go to the list's head, so they count down from it.
const RANK_BASE: u64 = 1 << 32;
/// Instance listing cookies: children older than the instance are keyed by rank below this,
/// later ones by serial above it (serials stay below 2^36, ranks below 2^33).
const LATER_THAN_INSTANCE: u64 = 1 << 40;

/// The children of one directory: listing order plus a name index. Serials grow in creation
/// order, so the top level's listing is sorted by serial and a readdir cursor is "the next
/// serial after". An instance lists what existed when it was made in rank order, then what
/// came later by serial (§2.3); its cursor is the key [`Children::in_instance`] gives.
pub struct Children<T> {
    list: Vec<Arc<T>>,
    /// The same children sorted by rank.
    by_rank: Vec<Arc<T>>,
    by_name: HashMap<Box<OsStr>, Arc<T>>,
    /// Set when the directory itself is removed (an emptied subsystem): it then has no
    /// children and no files, whatever a stale handle on it asks.
    pub removed: bool,
}

impl<T: Named> Children<T> {
    fn new() -> Self {
        Children {
            list: Vec::new(),
            by_rank: Vec::new(),
            by_name: HashMap::new(),
            removed: false,
        }
    }

    fn push(&mut self, item: Arc<T>) {
        debug_assert!(self.list.last().is_none_or(|l| l.serial() < item.serial()));
        self.by_name.insert(item.name().into(), item.clone());
        let at = self.by_rank.partition_point(|c| c.rank() < item.rank());
        self.by_rank.insert(at, item.clone());
        self.list.push(item);
    }

    pub fn get(&self, name: impl AsRef<OsStr>) -> Option<&Arc<T>> {
        self.by_name.get(name.as_ref())
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn remove(&mut self, name: impl AsRef<OsStr>) -> Option<Arc<T>> {
        let item = self.by_name.remove(name.as_ref())?;
        self.list.retain(|c| !Arc::ptr_eq(c, &item));
        self.by_rank.retain(|c| !Arc::ptr_eq(c, &item));
        Some(item)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.list.iter()
    }

    /// Children whose serial is greater than `after` (a readdir cursor), in listing order.
    pub fn after(&self, after: u64) -> &[Arc<T>] {
        let start = self.list.partition_point(|c| c.serial() <= after);
        &self.list[start..]
    }

    /// Children whose instance key is greater than `after`, in the listing order of an
    /// instance created when the serial counter stood at `born`, each with its key.
    pub fn after_in_instance(&self, born: u64, after: u64) -> Vec<(u64, &Arc<T>)> {
        let older = self.by_rank.iter().filter(|c| c.serial() < born);
        let later = self.list.iter().filter(|c| c.serial() >= born);
        older
            .chain(later)
            .map(|c| (Self::in_instance(born, c), c))
            .filter(|(key, _)| *key > after)
            .collect()
    }

    /// The readdir cookie of `c` in an instance born at `born`.
    fn in_instance(born: u64, c: &T) -> u64 {
        if c.serial() < born {
            FIRST_SERIAL + c.rank()
        } else {
            LATER_THAN_INSTANCE + c.serial()
        }
    }
}

/// A subsystem directory `events/<name>/`.
pub struct System {
    pub name: Box<str>,
    pub serial: u64,
    /// The rank of its first event in the kernel's list (where an instance places it).
    pub rank: u64,
    /// The directory lock of `events/<name>/` and its contents.
    pub events: RwLock<Children<Event>>,
    /// True for subsystems whose events are all ignore-enable (`ftrace`): no `enable`/`filter`.
    pub internal: bool,
}

impl Named for System {
    fn name(&self) -> &OsStr {
        OsStr::new(&*self.name)
    }
    fn serial(&self) -> u64 {
        self.serial
    }
    fn rank(&self) -> u64 {
        self.rank
    }
}

/// An event directory `events/<system>/<name>/`.
pub struct Event {
    pub serial: u64,
    /// Position in the kernel's global event list (see [`Named::rank`]).
    pub rank: u64,
    pub def: EventDef,
    /// Listing position in `available_events`/`set_event` (lower first; an ignore-enable
    /// event goes before an enableable one of the same key).
    pub order: i64,
    /// The directory lock of the event's own directory.
    pub life: RwLock<Life>,
    /// How a run-time event was defined (`dynamic_events`/`synthetic_events` read it back);
    /// `None` for catalog events.
    pub dynamic: Option<Arc<crate::control::dynevent::DynEventDef>>,
    /// Its print format compiled, on the first record rendered.
    pub print_fmt: OnceLock<Arc<crate::trace::render::PrintFmt>>,
    /// Its fields and record layout, parsed from `format` on first use (inject, trigger
    /// filters, the process connector).
    layout: OnceLock<Arc<EventLayout>>,
}

impl Named for TraceArray {
    fn name(&self) -> &std::ffi::OsStr {
        &self.name
    }
    /// Listing key in `instances/` (above the fixed readdir cookies).
    fn serial(&self) -> u64 {
        FIRST_SERIAL + u64::from(self.serial)
    }
}

impl Named for Event {
    fn name(&self) -> &OsStr {
        OsStr::new(&self.def.name)
    }
    fn serial(&self) -> u64 {
        self.serial
    }
    fn rank(&self) -> u64 {
        self.rank
    }
}

/// The rank of each catalog event (in directory order): its position in the kernel's global
/// event list. `available_events` lists that list backwards; an event it leaves out (ftrace's)
/// follows the event before it in `events/`.
fn catalog_ranks(events: &[EventDef]) -> Vec<u64> {
    let mut prev = -1i64;
    let keys: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, d)| match d.seq {
            Some(s) => {
                prev = i64::from(s);
                (prev, 0)
            }
            None => (prev, i + 1),
        })
        .collect();
    let mut backwards: Vec<usize> = (0..events.len()).collect();
    backwards.sort_by_key(|&i| keys[i]);
    let mut ranks = vec![0; events.len()];
    for (pos, &i) in backwards.iter().rev().enumerate() {
        ranks[i] = RANK_BASE + pos as u64;
    }
    ranks
}

impl Event {
    /// A synthetic event's name (what histogram actions call it by).
    pub fn synthetic_name(&self) -> Option<&str> {
        self.dynamic
            .as_ref()
            .filter(|d| d.kind == crate::control::dynevent::Kind::Synthetic)
            .map(|_| self.def.name.as_str())
    }

    pub fn files(&self) -> FileSet {
        self.def.files
    }
    /// The fields and record layout its `format` describes.
    pub fn layout(&self) -> &EventLayout {
        self.layout.get_or_init(|| {
            let fields = crate::control::filter::Fields::from_format(&self.def.format);
            let mut record = crate::trace::record::RecordLayout::new(&fields);
            // A synthetic event's record is larger than its format shows (its static strings
            // take whole string slots).
            if let Some(d) = &self.dynamic {
                record = record.with_fixed_len(d.fixed_size() as usize);
            }
            Arc::new(EventLayout { fields, record })
        })
    }

    /// Ignore-enable events (ftrace internals) are not listed or enabled anywhere.
    pub fn enableable(&self) -> bool {
        !self.def.files.ignore_enable()
    }
}

fn name_key(system: &str, name: &str) -> String {
    format!("{system}/{name}")
}

/// What an event's `format` says about its records.
pub struct EventLayout {
    pub fields: crate::control::filter::Fields,
    pub record: crate::trace::record::RecordLayout,
}

/// Owner and mode overrides set by chmod/chown on one entry (never inherited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttrOverride {
    pub mode: Option<u16>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Mount-wide ownership defaults (`-o uid=,gid=,mode=`).
#[derive(Clone, Copy, Debug)]
pub struct MountOwner {
    pub uid: u32,
    pub gid: u32,
    pub root_mode: u16,
}

/// The first type id given to an event created at run time (`TRACE_EVENT_TYPE_MAX`, the
/// largest a record's 16-bit `common_type` holds); later ones count down.
pub const RUN_TIME_IDS_FROM: u32 = u16::MAX as u32;

pub struct Registry {
    pub header_page: crate::events::catalog::Text,
    pub header_event: crate::events::catalog::Text,
    pub printk_formats: crate::events::catalog::Text,
    /// What the catalog's kernel offers beyond the base file set (all of it by default).
    pub features: Features,
    /// The directory lock of every `events/` directory: the subsystem list.
    pub systems: RwLock<Children<System>>,
    pub top: Arc<TraceArray>,
    /// The directory lock of `instances/`: the instance list.
    pub instances: RwLock<Children<TraceArray>>,
    next_instance: AtomicU32,
    pub owner: MountOwner,
    pub ncpu: usize,
    pub mounted_at: SystemTime,
    serials: AtomicU64,
    /// Dynamic events are listed first in `available_events`: their order keys go down.
    next_order: AtomicI64,
    next_event_id: AtomicU32,
    /// chmod/chown results keyed by the entry's stable inode number; they outlive the
    /// kernel's inodes (it forgets them at will) and end when the entry is removed.
    overrides: dashmap::DashMap<u64, AttrOverride>,
    event_count: AtomicUsize,
    /// Events by type id, for rendering records (`common_type`).
    by_id: dashmap::DashMap<u32, Arc<Event>>,
    /// Events by `system/name`, kept with the tree under its directory locks, so that
    /// [`Registry::find_event`] takes no directory lock: it is called with a trace array's
    /// state locked (trigger targets), which must never wait for a directory lock.
    by_name: dashmap::DashMap<String, Arc<Event>>,
    /// pid → comm/tgid for every trace array's text output (`saved_cmdlines`).
    pub tasks: crate::trace::tasks::Tasks,
    /// Called after records are committed (the filesystem wakes blocked readers and pollers).
    pub on_commit: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Set by a source whose records arrive late (`sources::kernel`): brings that CPU's (or
    /// every CPU's) records in before a record is stamped now or the buffer is read.
    pub catch_up: std::sync::OnceLock<Box<dyn Fn(Option<usize>) + Send + Sync>>,
    /// Set by a source that follows the enabled events (`sources::kernel`): called after a
    /// write that may have changed them, before it returns.
    pub enables_changed: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// What [`Registry::remove_event`] took away.
pub struct RemovedEvent {
    pub event: Arc<Event>,
    /// The subsystem, when the event was its last one and it went too.
    pub system: Arc<System>,
    pub system_removed: bool,
}

/// How long rmdir of an instance waits for releases already on their way (see
/// [`Registry::remove_instance`]); they normally arrive within microseconds.
pub const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

impl Registry {
    pub fn new(catalog: Catalog, owner: MountOwner, ncpu: usize) -> Registry {
        let serials = AtomicU64::new(FIRST_SERIAL);
        let next = || serials.fetch_add(1, Ordering::Relaxed);
        let event_count = catalog.events.len();
        let features = catalog.features;
        let max_id = catalog
            .events
            .iter()
            .filter_map(|e| e.id)
            .max()
            .unwrap_or(0);
        let ranks = catalog_ranks(&catalog.events);
        // Group by subsystem, keeping first-appearance order (the catalog is in directory order).
        let mut groups: Vec<(String, Vec<(EventDef, u64)>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (def, rank) in catalog.events.into_iter().zip(ranks) {
            let i = *index.entry(def.system.clone()).or_insert_with(|| {
                groups.push((def.system.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push((def, rank));
        }
        // An event missing from `available_events` (ftrace's own) has no position there, but
        // `set_event` lists `ftrace:print` while it has a trigger: the kernel's event list is
        // in link order and `events/` lists subsystems by their first event in it, so such an
        // event goes right before the first event of the next subsystem listed.
        let first_seq: Vec<Option<i64>> = groups
            .iter()
            .map(|(_, defs)| defs.iter().filter_map(|(d, _)| d.seq).min().map(i64::from))
            .collect();
        let next_first_seq = |i: usize| {
            first_seq[i + 1..]
                .iter()
                .find_map(|s| *s)
                .unwrap_or(i64::MAX)
        };
        let mut systems: Children<System> = Children::new();
        let by_id = dashmap::DashMap::new();
        let by_name = dashmap::DashMap::new();
        for (i, (name, defs)) in groups.into_iter().enumerate() {
            // A subsystem offers enable/filter unless every event in it is ignore-enable.
            let internal = defs.iter().all(|(d, _)| d.files.ignore_enable());
            let sys = System {
                name: name.into(),
                serial: next(),
                rank: defs.iter().map(|(_, r)| *r).min().unwrap_or(RANK_BASE),
                events: RwLock::new(Children::new()),
                internal,
            };
            {
                let mut events = sys.events.write();
                for (mut def, rank) in defs {
                    def.files = features.event_files(def.files);
                    let order = def.seq.map_or_else(|| next_first_seq(i), i64::from);
                    let ev = Arc::new(Event {
                        serial: next(),
                        rank,
                        def,
                        order,
                        life: RwLock::new(Life::Alive),
                        dynamic: None,
                        print_fmt: OnceLock::new(),
                        layout: OnceLock::new(),
                    });
                    if let Some(id) = ev.def.id {
                        by_id.insert(id, ev.clone());
                    }
                    by_name.insert(name_key(&ev.def.system, &ev.def.name), ev.clone());
                    events.push(ev);
                }
            }
            systems.push(Arc::new(sys));
        }
        Registry {
            header_page: catalog.header_page,
            header_event: catalog.header_event,
            printk_formats: catalog.printk_formats,
            features,
            systems: RwLock::new(systems),
            top: Arc::new(TraceArray::new(0, "", SystemTime::now())),
            instances: RwLock::new(Children::new()),
            next_instance: AtomicU32::new(1),
            owner,
            ncpu,
            mounted_at: SystemTime::now(),
            serials,
            next_order: AtomicI64::new(-1),
            next_event_id: AtomicU32::new(RUN_TIME_IDS_FROM.max(max_id + 1)),
            overrides: dashmap::DashMap::new(),
            event_count: AtomicUsize::new(event_count),
            by_id,
            by_name,
            tasks: Default::default(),
            on_commit: OnceLock::new(),
            catch_up: OnceLock::new(),
            enables_changed: OnceLock::new(),
        }
    }

    pub fn event_count(&self) -> usize {
        self.event_count.load(Ordering::Relaxed)
    }

    pub fn system_count(&self) -> usize {
        self.systems.read().len()
    }

    /// Every event, in no particular order, with a snapshot of the tree (takes each directory
    /// lock briefly, one at a time).
    pub fn all_events(&self) -> Vec<Arc<Event>> {
        let systems: Vec<Arc<System>> = self.systems.read().iter().cloned().collect();
        let mut out = Vec::with_capacity(self.event_count());
        for s in systems {
            out.extend(s.events.read().iter().cloned());
        }
        out
    }

    /// Enableable events in `available_events` order.
    pub fn listed_events(&self) -> Vec<Arc<Event>> {
        let mut evs = self.events_in_order();
        evs.retain(|e| e.enableable());
        evs
    }

    /// Every event in the kernel's event list order: `available_events` order with ftrace's
    /// own events in their place (what `set_event` follows).
    pub fn events_in_order(&self) -> Vec<Arc<Event>> {
        let mut evs = self.all_events();
        evs.sort_by_key(|e| (e.order, e.enableable()));
        evs
    }

    pub fn override_of(&self, key: u64) -> AttrOverride {
        self.overrides.get(&key).map(|o| *o).unwrap_or_default()
    }

    pub fn set_override(&self, key: u64, change: AttrOverride) {
        let mut o = self.overrides.entry(key).or_default();
        o.mode = change.mode.or(o.mode);
        o.uid = change.uid.or(o.uid);
        o.gid = change.gid.or(o.gid);
    }

    pub fn override_count(&self) -> usize {
        self.overrides.len()
    }

    /// `mkdir instances/<name>`: a new trace array over the shared event tree (§11).
    pub fn create_instance(&self, name: impl AsRef<OsStr>) -> Result<Arc<TraceArray>, i32> {
        let name = name.as_ref();
        let mut instances = self.instances.write();
        if instances.get(name).is_some() {
            return Err(libc::EEXIST);
        }
        // Instance numbers live in 20 bits of every inode number inside the instance.
        let serial = self.next_instance.fetch_add(1, Ordering::Relaxed);
        if serial >= 1 << 20 {
            return Err(libc::ENOSPC);
        }
        let mut ta = TraceArray::new(serial, name, SystemTime::now());
        ta.born = self.next_serial();
        let ta = Arc::new(ta);
        instances.push(ta.clone());
        Ok(ta)
    }

    /// `rmdir instances/<name>`: EBUSY while a file that pins the instance is open. Everything
    /// the instance had (state, chmod/chown overrides) goes with it.
    pub fn remove_instance(&self, name: impl AsRef<OsStr>) -> Result<Arc<TraceArray>, i32> {
        let name = name.as_ref();
        // FUSE sends RELEASE in the background once close(2) has returned, so a file its
        // owner has already closed may still pin the instance for a moment; the kernel's
        // tracefs, whose close is synchronous, never answers EBUSY then. Wait (without any
        // lock: the release path reads `life`) for such releases before giving EBUSY.
        let deadline = std::time::Instant::now() + RELEASE_GRACE;
        let mut instances = self.instances.write();
        let ta = instances.get(name).cloned().ok_or(libc::ENOENT)?;
        let mut life = ta.life.write();
        while ta.is_pinned() {
            drop(life);
            drop(instances);
            if !ta.wait_unpinned(deadline) {
                return Err(libc::EBUSY);
            }
            instances = self.instances.write();
            if !instances.get(name).is_some_and(|t| Arc::ptr_eq(t, &ta)) {
                return Err(libc::ENOENT);
            }
            life = ta.life.write();
        }
        *life = Life::Removed;
        instances.remove(name);
        drop(life);
        drop(instances);
        let serial = u64::from(ta.serial);
        self.overrides.retain(|ino, _| (ino - 1) >> 44 != serial);
        Ok(ta)
    }

    /// The event `system:name`, if it exists. Takes no directory lock (see `by_name`).
    pub fn find_event(&self, system: &str, name: &str) -> Option<Arc<Event>> {
        self.by_name.get(&name_key(system, name)).map(|e| e.clone())
    }

    /// Events created at run time, in creation order.
    pub fn dynamic_events(&self) -> Vec<Arc<Event>> {
        let mut evs: Vec<_> = self
            .all_events()
            .into_iter()
            .filter(|e| e.dynamic.is_some())
            .collect();
        evs.sort_by_key(|e| e.serial);
        evs
    }

    /// The top level and every instance (a snapshot).
    pub fn trace_arrays(&self) -> Vec<Arc<TraceArray>> {
        let mut out = vec![self.top.clone()];
        out.extend(self.instances.read().iter().cloned());
        out
    }

    /// A type id for a new dynamic event (never reused). Counted down from the top of the
    /// kernel's 16-bit range ([`RUN_TIME_IDS_FROM`]), where the kernel's own ids (counted up
    /// from a few dozen) never come, instead of following the catalog as the kernel would:
    /// perf and bpftrace read an event's `id` here and hand it to the kernel's
    /// perf_event_open, which must then find no event (ENOENT) for one that exists only in the
    /// clone, never attach to a kernel event that happens to have the next number.
    pub fn next_event_id(&self) -> u32 {
        self.next_event_id.fetch_sub(1, Ordering::Relaxed)
    }

    /// Adds an event at run time, creating its subsystem if needed. It appears at the end of
    /// its directory listings and at the front of `available_events`, in every trace array.
    /// Both directory locks are held together so the event can never land in a subsystem that
    /// is being removed (eventfs-history §4 scenario 34).
    pub fn add_event(
        &self,
        mut def: EventDef,
        dynamic: Option<Arc<crate::control::dynevent::DynEventDef>>,
    ) -> Result<Arc<Event>, i32> {
        def.files = self.features.event_files(def.files);
        // The kernel puts a new event at the head of its list: first in `available_events`,
        // and first in the `events/` of instances made after it.
        let order = self.next_order.fetch_sub(1, Ordering::Relaxed);
        let rank = RANK_BASE - order.unsigned_abs();
        let mut systems = self.systems.write();
        let sys = match systems.get(&def.system) {
            Some(s) => s.clone(),
            None => {
                let s = Arc::new(System {
                    name: def.system.as_str().into(),
                    serial: self.next_serial(),
                    rank,
                    events: RwLock::new(Children::new()),
                    internal: false,
                });
                systems.push(s.clone());
                s
            }
        };
        let mut events = sys.events.write();
        if events.get(&def.name).is_some() {
            return Err(libc::EEXIST);
        }
        let ev = Arc::new(Event {
            serial: self.next_serial(),
            rank,
            order,
            def,
            life: RwLock::new(Life::Alive),
            dynamic,
            print_fmt: OnceLock::new(),
            layout: OnceLock::new(),
        });
        if let Some(id) = ev.def.id {
            self.by_id.insert(id, ev.clone());
        }
        self.by_name
            .insert(name_key(&ev.def.system, &ev.def.name), ev.clone());
        events.push(ev.clone());
        self.event_count.fetch_add(1, Ordering::Relaxed);
        Ok(ev)
    }

    /// Removes a run-time event from every trace array; its subsystem goes too when it was the
    /// last event. EBUSY while any trace array has it enabled. Its chmod/chown overrides end.
    pub fn remove_event(&self, system: &str, name: &str) -> Result<RemovedEvent, i32> {
        // Snapshot first: `instances/` is never locked while holding `events/`'s lock.
        let arrays = self.trace_arrays();
        let mut systems = self.systems.write();
        let sys = systems.get(system).cloned().ok_or(libc::ENOENT)?;
        let mut events = sys.events.write();
        let ev = events.get(name).cloned().ok_or(libc::ENOENT)?;
        let synthetic = ev.synthetic_name();
        if arrays
            .iter()
            .any(|ta| ta.state.lock().holds_event(ev.serial, synthetic))
        {
            return Err(libc::EBUSY);
        }
        events.remove(name);
        *ev.life.write() = Life::Removed;
        if let Some(id) = ev.def.id {
            self.by_id.remove(&id);
        }
        self.by_name.remove(&name_key(system, name));
        let system_removed = events.is_empty();
        if system_removed {
            events.removed = true;
        }
        drop(events);
        if system_removed {
            systems.remove(system);
        }
        drop(systems);
        self.event_count.fetch_sub(1, Ordering::Relaxed);
        for ta in &arrays {
            let mut st = ta.state.lock();
            st.filters.remove(&ev.serial);
            st.events.remove(&ev.serial);
        }
        let dir = |ino: &u64| ((ino - 1) >> 8) & ((1 << 36) - 1);
        self.overrides
            .retain(|ino, _| dir(ino) != ev.serial && !(system_removed && dir(ino) == sys.serial));
        Ok(RemovedEvent {
            event: ev,
            system: sys,
            system_removed,
        })
    }

    /// The event with type id `id` (what a record's `common_type` names).
    pub fn event_by_id(&self, id: u32) -> Option<Arc<Event>> {
        self.by_id.get(&id).map(|e| e.clone())
    }

    /// A fresh serial for a directory created at run time (never reused).
    pub fn next_serial(&self) -> u64 {
        self.serials.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::new(
            Catalog::embedded(),
            MountOwner {
                uid: 0,
                gid: 0,
                root_mode: 0o700,
            },
            2,
        )
    }

    fn dyn_def(system: &str, name: &str, id: u32) -> EventDef {
        let format = format!("name: {name}\nID: {id}\nformat:\n\nprint fmt: \"\"\n");
        EventDef {
            system: system.into(),
            name: name.into(),
            seq: None,
            files: FileSet::STANDARD,
            id: Some(id),
            format: format.into(),
        }
    }

    #[test]
    fn dynamic_events_come_and_go() {
        let r = reg();
        let n = r.event_count();
        let id = r.next_event_id();
        let ev = r.add_event(dyn_def("synthetic", "myev", id), None).unwrap();
        assert_eq!(
            r.add_event(dyn_def("synthetic", "myev", id), None).err(),
            Some(libc::EEXIST)
        );
        assert_eq!(r.event_count(), n + 1);
        assert_eq!(
            r.listed_events()[0].def.name,
            "myev",
            "new events are listed first"
        );
        let sys = r.systems.read().get("synthetic").cloned().unwrap();
        assert!(
            r.systems
                .read()
                .iter()
                .last()
                .is_some_and(|s| Arc::ptr_eq(s, &sys))
        );
        r.top.state.lock().user_enable(ev.serial, true);
        assert_eq!(r.remove_event("synthetic", "myev").err(), Some(libc::EBUSY));
        r.top.state.lock().user_enable(ev.serial, false);
        let gone = r.remove_event("synthetic", "myev").unwrap();
        assert!(gone.system_removed && sys.events.read().removed);
        assert_eq!(*ev.life.read(), Life::Removed);
        assert!(r.systems.read().get("synthetic").is_none());
        assert_eq!(
            r.remove_event("synthetic", "myev").err(),
            Some(libc::ENOENT)
        );
        assert_eq!(r.event_count(), n);
        // An event of an existing subsystem leaves the subsystem in place.
        r.add_event(dyn_def("sched", "extra", r.next_event_id()), None)
            .unwrap();
        assert!(!r.remove_event("sched", "extra").unwrap().system_removed);
        assert!(r.next_event_id() < id);
    }

    #[test]
    fn instances_come_and_go() {
        let r = reg();
        let a = r.create_instance("a").unwrap();
        assert_eq!(r.create_instance("a").err(), Some(libc::EEXIST));
        a.pin();
        assert_eq!(r.remove_instance("a").err(), Some(libc::EBUSY));
        // A pin released while rmdir waits out its grace period lets it succeed.
        a.pin();
        let a2 = a.clone();
        let unpin = std::thread::spawn(move || {
            std::thread::sleep(RELEASE_GRACE / 4);
            a2.unpin();
            a2.unpin();
        });
        assert!(r.remove_instance("a").is_ok());
        unpin.join().unwrap();
        assert!(!a.is_alive());
        assert_eq!(r.remove_instance("a").err(), Some(libc::ENOENT));
        let b = r.create_instance("a").unwrap();
        assert!(b.serial > a.serial, "instance numbers are never reused");
    }

    #[test]
    fn tree_mirrors_catalog() {
        let r = reg();
        let systems = r.systems.read();
        assert!(systems.len() > 100);
        let sched = systems.get("sched").unwrap();
        assert!(!sched.internal);
        assert!(sched.events.read().get("sched_switch").is_some());
        assert!(systems.get("ftrace").unwrap().internal);
        // Serials grow in listing order so readdir cursors work.
        let serials: Vec<u64> = systems.iter().map(|s| s.serial).collect();
        assert!(serials.windows(2).all(|w| w[0] < w[1]));
        let after = systems.after(sched.serial);
        assert!(after.iter().all(|s| s.serial > sched.serial));
    }

    #[test]
    fn ftrace_events_take_their_place_in_the_event_list() {
        // On 6.18.44 `set_event` with every event enabled and a trigger on ftrace:print lists
        // it between syscalls:sys_enter_seccomp and bpf_trace:bpf_trace_printk.
        let r = reg();
        let all = r.events_in_order();
        let names: Vec<String> = all
            .iter()
            .map(|e| format!("{}:{}", e.def.system, e.def.name))
            .collect();
        let at = names.iter().position(|n| n == "ftrace:print").unwrap();
        assert_eq!(
            names[..at]
                .iter()
                .rfind(|n| !n.starts_with("ftrace:"))
                .unwrap(),
            "syscalls:sys_enter_seccomp"
        );
        assert_eq!(
            names[at + 1..]
                .iter()
                .find(|n| !n.starts_with("ftrace:"))
                .unwrap(),
            "bpf_trace:bpf_trace_printk"
        );
        let listed: Vec<_> = r.listed_events().iter().map(|e| e.serial).collect();
        let enableable: Vec<_> = all
            .iter()
            .filter(|e| e.enableable())
            .map(|e| e.serial)
            .collect();
        assert_eq!(listed, enableable);
    }

    #[test]
    fn listed_events_follow_available_events_order() {
        let r = reg();
        let listed = r.listed_events();
        assert_eq!(listed[0].def.name, "initcall_finish");
        assert!(listed.iter().all(|e| e.def.system != "ftrace"));
        assert_eq!(listed.len(), r.event_count() - 18);
    }

    #[test]
    fn overrides_merge() {
        let r = reg();
        r.set_override(
            7,
            AttrOverride {
                mode: Some(0o600),
                ..Default::default()
            },
        );
        r.set_override(
            7,
            AttrOverride {
                uid: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(
            r.override_of(7),
            AttrOverride {
                mode: Some(0o600),
                uid: Some(5),
                gid: None
            }
        );
        assert_eq!(r.override_of(8), AttrOverride::default());
    }
}
