//! Histogram triggers at run time: the bounded map a `hist:` trigger fills from the commit
//! path (the kernel's `tracing_map`), named histograms shared between triggers, and the text
//! of an event's `hist` file (`hist_show()` in `kernel/trace/trace_events_hist.c`).
//!
//! A map is locked only to look up or insert one entry per record, and by a reader of `hist`
//! only to copy the entries out; sorting and formatting happen outside the lock.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::control::filter::{Filter, RecordContext};
use crate::control::hist::{ActionKind, EvalContext, Handler, HistField, HistSpec, fl};

/// One part of a histogram key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyPart {
    Num(u64),
    Str(Box<[u8]>),
    Stack,
}

/// One entry: the sums (hitcount first, then each value), variables (`None` until set, and
/// again once a reference read it once; a string variable keeps its bytes), the comm of the
/// task that created it (for `.execname`), and per `onmax()`/`onchange()` action the tracked
/// value and saved fields.
#[derive(Clone, Debug)]
struct Elt {
    sums: Vec<u64>,
    vars: Vec<Option<ActionValue>>,
    comm: Box<str>,
    track: Vec<Option<(u64, Vec<ActionValue>)>>,
}

/// A value an action passes on: a number or a string field's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionValue {
    Num(u64),
    Str(Vec<u8>),
}

impl ActionValue {
    /// The value as an operand of an expression (a string reads 0: the parser refuses
    /// strings as operands).
    fn num(&self) -> u64 {
        match self {
            ActionValue::Num(n) => *n,
            ActionValue::Str(_) => 0,
        }
    }
}

/// A synthetic event an action generates (`trace_synth()`), for the caller to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub synth: String,
    pub values: Vec<ActionValue>,
}

/// What one record's update asks of the commit path: synthetic events to generate, and
/// whether an `onmax()`/`onchange()` `.snapshot()` action fired.
#[derive(Debug, Default)]
pub struct Output {
    pub synth: Vec<Fired>,
    pub snapshot: bool,
}

/// Where a variable reference of a histogram reads: another histogram's data and the
/// variable's index in its values, or (`None`) this histogram's own entry.
#[derive(Clone, Debug)]
pub struct VarSource {
    pub system: Option<String>,
    pub event: Option<String>,
    pub name: String,
    pub target: Option<(Arc<HistData>, usize)>,
}

/// `struct tracing_map`: at most `max` entries; `hits` counts records that found or made an
/// entry, `drops` those that found the map full.
#[derive(Debug)]
struct Map {
    entries: HashMap<Box<[KeyPart]>, Elt>,
    max: usize,
    hits: u64,
    drops: u64,
}

/// A histogram's data: the map and the spec that laid it out (shared by the triggers of a
/// named histogram).
#[derive(Debug)]
pub struct HistData {
    spec: HistSpec,
    map: Mutex<Map>,
    /// A `.snapshot()` action's `struct track_data`: the value that took the last snapshot
    /// (a new one must beat it, across all entries), the key and comm of its entry.
    snap: Mutex<Option<SnapTrack>>,
}

/// What the last snapshot a `.snapshot()` action took was triggered by.
#[derive(Clone, Debug)]
struct SnapTrack {
    val: u64,
    key: Box<[KeyPart]>,
    comm: Box<str>,
}

/// One `hist:` trigger on one event of one trace array.
#[derive(Debug)]
pub struct HistTrigger {
    /// As written on this event (its own filter and name).
    pub spec: HistSpec,
    filter: Option<Arc<Filter>>,
    paused: AtomicBool,
    data: Arc<HistData>,
    /// Resolved variable references (operands of expressions and action parameters).
    refs: Vec<VarSource>,
    /// The histograms made for this one's field variables on other events (`system`,
    /// `event`, command), removed with it (`unregister_field_var_hists()`).
    pub field_var_hists: Vec<(String, String, String)>,
}

/// Named histograms, as the kernel's global `named_triggers` list: every trigger with the
/// same `name=`, in any trace array, shares one map.
static NAMED: Mutex<Vec<(String, Weak<HistData>)>> = Mutex::new(Vec::new());

/// The shared data of the named histogram `name`, if any trigger still holds it.
pub fn find_named(name: &str) -> Option<Arc<HistData>> {
    let mut named = NAMED.lock();
    named.retain(|(_, w)| w.strong_count() > 0);
    named
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, w)| w.upgrade())
}

/// An event's hist triggers in one trace array, oldest first (the kernel appends them to the
/// event's trigger list, after the other triggers). Shared, so the commit path takes them
/// with one reference count and updates the maps after releasing the trace array's state.
#[derive(Clone, Debug, Default)]
pub struct HistList(Arc<[Arc<HistTrigger>]>);

impl PartialEq for HistList {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || (self.0.is_empty() && other.0.is_empty())
    }
}

impl Eq for HistList {}

impl HistList {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Arc<HistTrigger>> {
        self.0.iter()
    }

    /// A list with `t` appended.
    pub fn with(&self, t: Arc<HistTrigger>) -> HistList {
        HistList(self.0.iter().cloned().chain([t]).collect())
    }

    /// A list without the trigger at `i`.
    pub fn without(&self, i: usize) -> HistList {
        HistList(
            self.0
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, t)| t.clone())
                .collect(),
        )
    }

    /// The `hist` file: every trigger's histogram, in order.
    pub fn show(&self) -> String {
        let mut out = String::new();
        for (n, t) in self.0.iter().enumerate() {
            t.show(n, &mut out);
        }
        out
    }
}

impl HistData {
    /// The spec the named histogram was made with.
    pub fn spec(&self) -> &HistSpec {
        &self.spec
    }
}

impl HistTrigger {
    /// A new trigger with a map of its own, or joined to the named histogram `shared`.
    pub fn new(
        spec: HistSpec,
        filter: Option<Arc<Filter>>,
        shared: Option<Arc<HistData>>,
        refs: Vec<VarSource>,
        field_var_hists: Vec<(String, String, String)>,
    ) -> Self {
        let data = shared.unwrap_or_else(|| {
            let data = Arc::new(HistData {
                spec: spec.clone(),
                map: Mutex::new(Map {
                    entries: HashMap::new(),
                    max: spec.max_entries(),
                    hits: 0,
                    drops: 0,
                }),
                snap: Mutex::new(None),
            });
            if let Some(n) = spec.short_name() {
                NAMED.lock().push((n.to_owned(), Arc::downgrade(&data)));
            }
            data
        });
        HistTrigger {
            paused: AtomicBool::new(spec.pause),
            spec,
            filter,
            data,
            refs,
            field_var_hists,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// `hist_clear()`: empties the map and its counters.
    pub fn clear(&self) {
        let mut m = self.data.map.lock();
        m.entries.clear();
        m.hits = 0;
        m.drops = 0;
    }

    /// Does this trigger read variables of `data` (another histogram)?
    pub fn references(&self, data: &Arc<HistData>) -> bool {
        self.refs
            .iter()
            .any(|r| r.target.as_ref().is_some_and(|(d, _)| Arc::ptr_eq(d, data)))
    }

    /// Does an action of this trigger generate synthetic event `synth`?
    pub fn generates(&self, synth: &str) -> bool {
        self.spec
            .actions
            .iter()
            .any(|a| a.kind == ActionKind::Trace && a.synth_name() == synth)
    }

    /// Does this trigger share its data with `data`?
    pub fn shares(&self, data: &Arc<HistData>) -> bool {
        Arc::ptr_eq(&self.data, data)
    }

    pub fn data(&self) -> &Arc<HistData> {
        &self.data
    }

    /// The index of variable `name` among this histogram's values.
    pub fn var_index(&self, name: &str) -> Option<usize> {
        self.data
            .spec
            .vals
            .iter()
            .position(|v| v.has(fl::VAR) && v.var_name.as_deref() == Some(name))
    }

    /// `event_hist_trigger()`: one record. `comm` names the writing task for a new entry.
    /// Returns what its actions ask for (synthetic events, a snapshot).
    pub fn update(
        &self,
        rec: &[u8],
        rctx: &RecordContext,
        ts_ns: u64,
        comm: impl FnOnce() -> String,
    ) -> Output {
        if self.is_paused() {
            return Output::default();
        }
        if let Some(f) = &self.filter
            && !f.matches(rec, rctx)
        {
            return Output::default();
        }
        let spec = &self.spec;
        let key: Box<[KeyPart]> = spec
            .keys
            .iter()
            .map(|k| {
                if k.has(fl::STACKTRACE) {
                    KeyPart::Stack
                } else if k.is_string() {
                    KeyPart::Str(k.string_of(rec).into())
                } else {
                    let ctx = EvalContext {
                        cpu: rctx.cpu,
                        ts_ns,
                        ts_in_usecs: spec.ts_in_usecs,
                        vars: &|_| 0,
                    };
                    KeyPart::Num(k.eval(rec, &ctx))
                }
            })
            .collect();
        // resolve_var_refs(): other histograms' variables for the same key, each map locked
        // on its own (never two at once). An unset variable means no update at all. The
        // kernel compares the other map's key size of this key's bytes, so a compound key
        // finds the entry its leading fields name (`keys=pid,lat` reads a `keys=pid` map).
        let mut ref_vals: Vec<(usize, ActionValue)> = Vec::new();
        for (i, r) in self.refs.iter().enumerate() {
            let Some((data, idx)) = &r.target else {
                continue;
            };
            let their_key = &key[..data.spec.keys.len().min(key.len())];
            let mut m = data.map.lock();
            let Some(slot) = m
                .entries
                .get_mut(their_key)
                .and_then(|e| e.vars.get_mut(*idx))
            else {
                return Output::default();
            };
            let Some(v) = slot.clone() else {
                return Output::default();
            };
            if self.read_once(r) {
                *slot = None;
            }
            ref_vals.push((i, v));
        }
        let lookup_value = |f: &HistField, own: &[Option<ActionValue>]| -> ActionValue {
            let i = self
                .refs
                .iter()
                .position(|r| r.name == f.name && r.system == f.system && r.event == f.event);
            let v = match i {
                Some(i) => match &self.refs[i].target {
                    Some(_) => ref_vals
                        .iter()
                        .find(|(j, _)| *j == i)
                        .map(|(_, v)| v.clone()),
                    None => self
                        .var_index(&f.name)
                        .and_then(|x| own.get(x).cloned().flatten()),
                },
                None => None,
            };
            v.unwrap_or(ActionValue::Num(0))
        };
        let lookup = |f: &HistField, own: &[Option<ActionValue>]| lookup_value(f, own).num();
        let mut m = self.data.map.lock();
        let m = &mut *m;
        if !m.entries.contains_key(&key) {
            if m.entries.len() >= m.max {
                m.drops += 1;
                return Output::default();
            }
            let comm = if spec
                .keys
                .iter()
                .chain(&spec.vals)
                .any(|k| k.has(fl::EXECNAME))
            {
                comm().into()
            } else {
                "".into()
            };
            let n = spec.vals.len();
            m.entries.insert(
                key.clone(),
                Elt {
                    sums: vec![0; n],
                    vars: vec![None; n],
                    comm,
                    track: vec![None; spec.actions.len()],
                },
            );
        }
        m.hits += 1;
        let Some(elt) = m.entries.get_mut(&key) else {
            return Output::default();
        };
        let before = elt.vars.clone();
        for (i, v) in spec.vals.iter().enumerate() {
            let ctx = EvalContext {
                cpu: rctx.cpu,
                ts_ns,
                ts_in_usecs: spec.ts_in_usecs,
                vars: &|f| lookup(f, &before),
            };
            if v.has(fl::VAR) {
                let x = if v.has(fl::EXECNAME) {
                    ActionValue::Str(elt.comm.as_bytes().to_vec())
                } else if v.is_string() {
                    ActionValue::Str(v.string_of(rec).to_vec())
                } else if v.has(fl::ALIAS) && v.operands.first().is_some_and(|o| o.has(fl::VAR_REF))
                {
                    // `b=$a`: a string variable stays a string.
                    lookup_value(&v.operands[0], &before)
                } else {
                    ActionValue::Num(v.eval(rec, &ctx))
                };
                if let Some(slot) = elt.vars.get_mut(i) {
                    *slot = Some(x);
                }
                continue;
            }
            let x = v.eval(rec, &ctx);
            if let Some(slot) = elt.sums.get_mut(i) {
                *slot = slot.wrapping_add(x);
            }
        }
        if spec.actions.is_empty() {
            return Output::default();
        }
        // Self references must be set for the actions to run.
        let own = elt.vars.clone();
        let self_ok = self.refs.iter().all(|r| {
            r.target.is_some()
                || self
                    .var_index(&r.name)
                    .is_some_and(|x| own.get(x).is_some_and(Option::is_some))
        });
        if !self_ok {
            return Output::default();
        }
        let ctx = EvalContext {
            cpu: rctx.cpu,
            ts_ns,
            ts_in_usecs: spec.ts_in_usecs,
            vars: &|f| lookup(f, &own),
        };
        let values = |args: &[HistField]| -> Vec<ActionValue> {
            args.iter()
                .map(|f| {
                    if f.has(fl::VAR_REF) {
                        lookup_value(f, &own)
                    } else if f.is_string() {
                        ActionValue::Str(f.string_of(rec).to_vec())
                    } else {
                        ActionValue::Num(f.eval(rec, &ctx))
                    }
                })
                .collect()
        };
        let mut out = Output::default();
        for (ai, a) in spec.actions.iter().enumerate() {
            match &a.handler {
                Handler::OnMatch { .. } => {
                    if a.kind == ActionKind::Trace {
                        out.synth.push(Fired {
                            synth: a.synth_name().to_owned(),
                            values: values(&a.args),
                        });
                    }
                }
                Handler::OnMax(_) | Handler::OnChange(_) => {
                    let Some(var) = a.tracked_var().and_then(|n| self.var_index(n)) else {
                        continue;
                    };
                    let Some(v) = own.get(var).cloned().flatten().map(|v| v.num()) else {
                        continue;
                    };
                    // check_track_val(): against the entry's tracked value, 0 at first.
                    let passes = |old: u64| match &a.handler {
                        Handler::OnMax(_) => v > old,
                        _ => v != old,
                    };
                    if !passes(elt.track[ai].as_ref().map_or(0, |t| t.0)) {
                        continue;
                    }
                    let saved = match a.kind {
                        ActionKind::Save => values(&a.args),
                        _ => Vec::new(),
                    };
                    elt.track[ai] = Some((v, saved));
                    if a.kind == ActionKind::Snapshot {
                        // cond_snapshot_update(): only a value that passes the one that
                        // took the last snapshot takes another.
                        let mut snap = self.data.snap.lock();
                        if passes(snap.as_ref().map_or(0, |t| t.val)) {
                            *snap = Some(SnapTrack {
                                val: v,
                                key: key.clone(),
                                comm: elt.comm.clone(),
                            });
                            out.snapshot = true;
                        }
                    }
                    if a.kind == ActionKind::Trace {
                        out.synth.push(Fired {
                            synth: a.synth_name().to_owned(),
                            values: values(&a.args),
                        });
                    }
                }
            }
        }
        out
    }

    /// Is reference `r` read once (an operand of an expression), so that reading it unsets
    /// the variable (`read_once` in the kernel)?
    fn read_once(&self, r: &VarSource) -> bool {
        fn in_expr(f: &HistField, r: &VarSource, under_expr: bool) -> bool {
            if f.has(fl::VAR_REF) && f.name == r.name && f.system == r.system {
                return under_expr;
            }
            let expr = f.has(fl::EXPR);
            f.operands.iter().any(|o| in_expr(o, r, expr))
        }
        self.spec.vals.iter().any(|v| in_expr(v, r, false))
    }

    /// Hits on the map so far.
    pub fn hits(&self) -> u64 {
        self.data.map.lock().hits
    }

    /// The trigger's line in `trigger` and in the `hist` header.
    pub fn trigger_info(&self) -> String {
        let mut spec = self.spec.clone();
        spec.map_bits = self.data.spec.map_bits;
        spec.trigger_info(self.is_paused())
    }

    /// `hist_trigger_show()`: this trigger's part of the `hist` file (`n` = its position
    /// among the event's hist triggers).
    pub fn show(&self, n: usize, out: &mut String) {
        if n > 0 {
            out.push_str("\n\n");
        }
        out.push_str("# event histogram\n#\n# trigger info: ");
        out.push_str(&self.trigger_info());
        out.push_str("#\n\n");
        let spec = &self.data.spec;
        let (mut entries, hits, drops) = {
            let m = self.data.map.lock();
            let entries: Vec<(Box<[KeyPart]>, Elt)> = m
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect();
            (entries, m.hits, m.drops)
        };
        sort(spec, &mut entries);
        // Totals and maxima for `.percent` and `.graph`.
        let mut total = vec![0u64; spec.vals.len()];
        let mut max = vec![0u64; spec.vals.len()];
        for (_, e) in &entries {
            for (i, s) in e.sums.iter().enumerate() {
                total[i] = total[i].wrapping_add(*s);
                max[i] = max[i].max(*s);
            }
        }
        for (key, e) in &entries {
            print_key(spec, key, &e.comm, out);
            if !spec.no_hitcount {
                print_val(out, "hitcount", 0, e.sums[0], total[0], max[0]);
            }
            for (i, f) in spec.shown_vals() {
                out.push(' ');
                print_val(out, &f.field_name(0), f.flags, e.sums[i], total[i], max[i]);
            }
            print_actions(spec, e, out);
            out.push('\n');
        }
        self.print_snapshot(out);
        let _ = write!(
            out,
            "\nTotals:\n    Hits: {hits}\n    Entries: {}\n    Dropped: {drops}\n",
            entries.len()
        );
    }
}

impl HistTrigger {
    /// `track_data_snapshot_print()`: what triggered the last snapshot of a `.snapshot()`
    /// action, once one was taken.
    fn print_snapshot(&self, out: &mut String) {
        let spec = &self.data.spec;
        let Some(a) = spec.actions.iter().find(|a| a.kind == ActionKind::Snapshot) else {
            return;
        };
        let Some(t) = self.data.snap.lock().clone() else {
            return;
        };
        let (handler, var) = match &a.handler {
            Handler::OnMax(v) => ("onmax", v),
            Handler::OnChange(v) => ("onchange", v),
            Handler::OnMatch { .. } => return,
        };
        let _ = write!(
            out,
            "\nSnapshot taken (see tracing/snapshot).  Details:\n\ttriggering value {{ {handler}({var}) }}: {:>10}\ttriggered by event with key: ",
            t.val
        );
        print_key(spec, &t.key, &t.comm, out);
        out.push('\n');
    }
}

/// `tracing_map_sort_entries()`: by the first sort key, then (within equal runs) by the
/// second. The kernel's heap sort leaves ties in no particular order; here they follow the
/// keys, so the output is stable.
fn sort(spec: &HistSpec, entries: &mut [(Box<[KeyPart]>, Elt)]) {
    let cmp_one = |k: &crate::control::hist::SortKey,
                   a: &(Box<[KeyPart]>, Elt),
                   b: &(Box<[KeyPart]>, Elt)| {
        let o = match spec.key_of_map_idx(k.idx) {
            Some(ki) => cmp_key(&spec.keys[ki], &a.0[ki], &b.0[ki]),
            None => {
                let i = val_index(spec, k.idx);
                a.1.sums[i].cmp(&b.1.sums[i])
            }
        };
        if k.descending { o.reverse() } else { o }
    };
    entries.sort_by(|a, b| {
        spec.sort
            .iter()
            .map(|k| cmp_one(k, a, b))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.0.cmp(&b.0))
    });
}

impl PartialOrd for KeyPart {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyPart {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (KeyPart::Num(a), KeyPart::Num(b)) => a.cmp(b),
            (KeyPart::Str(a), KeyPart::Str(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        }
    }
}

/// The index into `vals` of `tracing_map` sum field `idx` (variables have no sum field).
fn val_index(spec: &HistSpec, idx: usize) -> usize {
    spec.vals
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.has(fl::VAR))
        .nth(idx)
        .map_or(0, |(i, _)| i)
}

/// `tracing_map_cmp_num()`/`tracing_map_cmp_string()` for one key field.
fn cmp_key(f: &HistField, a: &KeyPart, b: &KeyPart) -> std::cmp::Ordering {
    let (KeyPart::Num(a), KeyPart::Num(b)) = (a, b) else {
        return a.cmp(b);
    };
    let (size, signed) = match &f.field {
        Some(fd) if !f.has(fl::CPU) => (fd.size, fd.signed),
        _ => (f.size, f.signed),
    };
    let (a, b) = (*a, *b);
    match (size, signed) {
        (1, true) => (a as i8).cmp(&(b as i8)),
        (1, false) => (a as u8).cmp(&(b as u8)),
        (2, true) => (a as i16).cmp(&(b as i16)),
        (2, false) => (a as u16).cmp(&(b as u16)),
        (4, true) => (a as i32).cmp(&(b as i32)),
        (4, false) => (a as u32).cmp(&(b as u32)),
        (8, true) => (a as i64).cmp(&(b as i64)),
        (8, false) => a.cmp(&b),
        _ => std::cmp::Ordering::Equal,
    }
}

/// `%ps`/`%pS` of an address our records may carry: a symbol name, or `0x…` as the kernel
/// prints an address kallsyms does not know.
fn symbol(addr: u64, offset: bool) -> String {
    use crate::trace::render::{symbol, symbols::symbolize};
    symbol(&symbolize, addr, offset)
}

/// `hist_trigger_print_key()`.
fn print_key(spec: &HistSpec, key: &[KeyPart], comm: &str, out: &mut String) {
    out.push_str("{ ");
    let mut multiline = false;
    for (i, (f, k)) in spec.keys.iter().zip(key).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let name = f.field_name(0);
        let u = match k {
            KeyPart::Num(u) => *u,
            _ => 0,
        };
        if f.has(fl::HEX) {
            let _ = write!(out, "{name}: {u:x}");
        } else if f.has(fl::SYM) {
            let _ = write!(out, "{name}: [{u:x}] {:<45}", symbol(u, false));
        } else if f.has(fl::SYM_OFFSET) {
            let _ = write!(out, "{name}: [{u:x}] {:<55}", symbol(u, true));
        } else if f.has(fl::EXECNAME) {
            let _ = write!(out, "{name}: {comm:<16}[{u:>10}]");
        } else if f.has(fl::SYSCALL) {
            let sys = crate::trace::syscall_names::syscall_name(u).unwrap_or("unknown_syscall");
            let _ = write!(out, "{name}: {sys:<30}[{u:>3}]");
        } else if f.has(fl::STACKTRACE) {
            match &f.field {
                Some(fd) => {
                    let _ = write!(out, "{}.stacktrace", fd.name);
                }
                None => out.push_str("common_stacktrace:\n"),
            }
            // No kernel frames: the daemon cannot see the kernel stack of a task.
            multiline = true;
        } else if f.has(fl::LOG2) {
            let _ = write!(out, "{name}: ~ 2^{u:<2}");
        } else if f.has(fl::BUCKET) {
            let _ = write!(
                out,
                "{name}: ~ {u}-{}",
                u.wrapping_add(f.buckets).wrapping_sub(1)
            );
        } else if let KeyPart::Str(s) = k {
            let _ = write!(out, "{name}: {:<50}", String::from_utf8_lossy(s));
        } else {
            let _ = write!(out, "{name}: {u:>10}");
        }
    }
    if !multiline {
        out.push(' ');
    }
    out.push('}');
}

/// `print_actions()`/`track_data_print()`: an entry's `onmax()`/`onchange()` state.
fn print_actions(spec: &HistSpec, e: &Elt, out: &mut String) {
    for (ai, a) in spec.actions.iter().enumerate() {
        if a.kind == ActionKind::Snapshot {
            continue;
        }
        let label = match a.handler {
            Handler::OnMax(_) => "max",
            Handler::OnChange(_) => "changed",
            Handler::OnMatch { .. } => continue,
        };
        let (v, saved) = match &e.track[ai] {
            Some((v, s)) => (*v, s.as_slice()),
            None => (0, &[][..]),
        };
        let _ = write!(out, "\n\t{label}: {v:>10}");
        if a.kind != ActionKind::Save {
            continue;
        }
        for (i, p) in a.params.iter().enumerate() {
            match saved.get(i) {
                Some(ActionValue::Str(b)) => {
                    let _ = write!(out, "  {p}: {:<32}", String::from_utf8_lossy(b));
                }
                Some(ActionValue::Num(n)) => {
                    let _ = write!(out, "  {p}: {n:>10}");
                }
                None => {
                    let _ = write!(out, "  {p}: {:>10}", 0);
                }
            }
        }
    }
}

/// `__get_percentage()`: 100 times the percentage, `u32::MAX` for an undefined one.
fn percentage(val: u64, total: u64) -> u32 {
    if total == 0 {
        return if val != 0 { u32::MAX } else { 0 };
    }
    if val < u64::MAX / 10000 {
        return (val * 10000 / total) as u32;
    }
    let total = total / 10000;
    if total == 0 {
        return if val != 0 { u32::MAX } else { 0 };
    }
    (val / total) as u32
}

/// `hist_trigger_print_val()`.
fn print_val(out: &mut String, name: &str, flags: u32, val: u64, total: u64, max: u64) {
    if flags & fl::PERCENT != 0 {
        let pc = percentage(val, total);
        if pc == u32::MAX {
            let _ = write!(out, " {name} (%):[ERROR]");
        } else {
            let _ = write!(out, " {name} (%): {:>3}.{:02}", pc / 100, pc % 100);
        }
    } else if flags & fl::GRAPH != 0 {
        // __fill_bar_str(): 20 columns of '#' in proportion to the largest entry.
        let len = percentage(val, max);
        let bar = if len == u32::MAX {
            "[ERROR]".to_owned()
        } else {
            let n = (len as usize * 20 / 10000).min(20);
            format!("{}{}", "#".repeat(n), " ".repeat(20 - n))
        };
        let _ = write!(out, " {name}: {bar:>20}");
    } else if flags & fl::HEX != 0 {
        let _ = write!(out, " {name}: {val:>10x}");
    } else {
        let _ = write!(out, " {name}: {val:>10}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::filter::Fields;
    use crate::control::hist::{Env, parse};

    fn fields() -> Fields {
        Fields::from_format(
            "name: ev\nID: 1\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:int lat;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;\n\n\
print fmt: \"\"\n",
        )
    }

    fn trigger(text: &str) -> HistTrigger {
        let f = fields();
        let env = Env {
            fields: &f,
            event: ("sys", "ev"),
            remove: false,
            var_exists: &|_| false,
            var_known: &|_, _, _| None,
            var_events: &|_| 0,
            event_exists: &|_, _| false,
            synth_fields: &|_| None,
        };
        HistTrigger::new(
            parse(Some(text), &env).unwrap(),
            None,
            None,
            Vec::new(),
            Vec::new(),
        )
    }

    fn rec(pid: i32, lat: i32, comm: &str) -> Vec<u8> {
        let mut r = vec![0u8; 28];
        r[4..8].copy_from_slice(&pid.to_le_bytes());
        r[8..12].copy_from_slice(&lat.to_le_bytes());
        r[12..12 + comm.len()].copy_from_slice(comm.as_bytes());
        r
    }

    fn feed(t: &HistTrigger, recs: &[(i32, i32, &str)]) {
        for (p, l, c) in recs {
            t.update(&rec(*p, *l, c), &RecordContext::default(), 0, || {
                "bash".into()
            });
        }
    }

    fn show(t: &HistTrigger) -> String {
        let mut s = String::new();
        t.show(0, &mut s);
        s
    }

    #[test]
    fn entries_sort_by_hitcount_and_totals_count_hits() {
        let t = trigger("keys=common_pid:vals=lat");
        feed(&t, &[(7, 10, "a"), (5, 1, "b"), (7, 20, "a"), (-1, 3, "c")]);
        assert_eq!(
            show(&t),
            "# event histogram\n#\n# trigger info: hist:keys=common_pid:vals=hitcount,lat:sort=hitcount:size=2048 [active]\n#\n\n\
{ common_pid:          5 } hitcount:          1  lat:          1\n\
{ common_pid: 18446744073709551615 } hitcount:          1  lat:          3\n\
{ common_pid:          7 } hitcount:          2  lat:         30\n\
\nTotals:\n    Hits: 4\n    Entries: 3\n    Dropped: 0\n"
        );
    }

    #[test]
    fn string_execname_log2_and_percent_keys_print_as_the_kernel() {
        let t = trigger("keys=comm,common_pid.execname:vals=lat.percent:sort=lat.descending");
        feed(&t, &[(1, 3, "x"), (2, 1, "yy")]);
        let s = show(&t);
        assert!(s.contains(&format!(
            "{{ comm: {:<50}, common_pid: bash            [         1] }} hitcount:          1  lat (%):  75.00\n",
            "x"
        )), "{s}");
        let t = trigger("keys=lat.log2:vals=lat.graph:sort=lat");
        feed(&t, &[(1, 1000, "x"), (1, 3, "x"), (1, 4, "x")]);
        let s = show(&t);
        assert!(
            s.contains("{ lat: ~ 2^2  } hitcount:          2  lat:                     \n"),
            "{s}"
        );
        assert!(
            s.contains("{ lat: ~ 2^10 } hitcount:          1  lat: ####################\n"),
            "{s}"
        );
    }

    #[test]
    fn a_full_map_drops_and_clear_resets() {
        let t = trigger("keys=lat:size=128");
        for i in 0..130 {
            feed(&t, &[(1, i, "")]);
        }
        let s = show(&t);
        assert!(
            s.ends_with("    Hits: 128\n    Entries: 128\n    Dropped: 2\n"),
            "{s}"
        );
        t.clear();
        assert!(show(&t).ends_with("    Hits: 0\n    Entries: 0\n    Dropped: 0\n"));
    }
}
