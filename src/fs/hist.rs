//! Histogram triggers in the file set (CONFIG_HIST_TRIGGERS, [`Features::hist`]): `hist`
//! commands written to an event's `trigger` file, what `trigger` and `hist` read, and the
//! `README` lines that advertise them. The language is `control::hist`, the maps
//! `trace::hist`; this is the glue to a trace array's state, as `event_hist_trigger_parse()`
//! and `hist_register_trigger()` do it.
//!
//! [`Features::hist`]: crate::events::catalog::Features

use std::sync::Arc;

use crate::control::hist::{self, Env, HistError, err};
use crate::control::trigger;
use crate::events::registry::{Event, Registry};
use crate::trace::hist::{HistTrigger, VarSource, find_named};
use crate::trace::snapshot;
use crate::trace::state::{TRACE_CLOCKS, TraceArray};

/// Does this write name the `hist` command (and the kernel has it)? Then [`write`] takes it.
pub fn is_hist_command(reg: &Registry, data: &[u8]) -> bool {
    reg.features.hist && matches!(trigger::split_command(data), Ok(Some((_, b"hist", _))))
}

/// What an event's `trigger` file reads: the other triggers (newest first), then the hist
/// triggers (oldest first), or the list of available commands when there is none.
pub fn read_trigger(reg: &Registry, ta: &TraceArray, ev: &Event) -> String {
    let (triggers, hists) = match ta.state.lock().events.get(&ev.serial) {
        Some(e) => (e.triggers.clone(), e.hists.clone()),
        None => Default::default(),
    };
    if triggers.is_empty() && hists.is_empty() {
        return available_triggers(reg);
    }
    let mut out = String::new();
    for t in triggers.iter() {
        trigger::render_one(t, &mut out);
    }
    for h in hists.iter() {
        out.push_str(&h.trigger_info());
    }
    out
}

/// `# Available triggers:` and the commands in the kernel's registration order.
fn available_triggers(reg: &Registry) -> String {
    trigger::available_triggers(reg.features.snapshot, reg.features.hist)
}

/// An event's `hist` file: one histogram per hist trigger (`hist_show()`); the maps are
/// copied out under their own locks and formatted without any lock held.
pub fn read_hist(ta: &TraceArray, ev: &Event) -> String {
    let hists = ta
        .state
        .lock()
        .events
        .get(&ev.serial)
        .map(|e| e.hists.clone());
    hists.map(|h| h.show()).unwrap_or_default()
}

/// The `README` with the lines CONFIG_HIST_TRIGGERS adds (`readme_msg` in
/// `kernel/trace/trace.c`).
pub fn readme(reg: &Registry, base: String) -> String {
    if !reg.features.hist {
        return base;
    }
    let mut s = base;
    let after = |s: &mut String, anchor: &str, text: &str| {
        if let Some(i) = s.find(anchor) {
            s.insert_str(i + anchor.len(), text);
        }
    };
    after(
        &mut s,
        "\t            disable_event:<system>:<event>\n",
        "\t            enable_hist:<system>:<event>\n\t            disable_hist:<system>:<event>\n",
    );
    // After `snapshot` when the kernel has it (registration order), else after `stacktrace`.
    let anchor = match s.contains("\t\t    snapshot\n") {
        true => "\t\t    snapshot\n",
        false => "\t\t    stacktrace\n",
    };
    after(&mut s, anchor, "\t\t    hist (see below)\n");
    after(
        &mut s,
        "\t   Filters can be ignored when removing a trigger.\n",
        README_HIST,
    );
    if reg.features.snapshot {
        after(
            &mut s,
            "save current event fields\n",
            "\t        snapshot()                           - snapshot the trace buffer\n\n",
        );
    }
    s
}

/// The hist trigger part of the kernel's README.
const README_HIST: &str =
    "      hist trigger\t- If set, event hits are aggregated into a hash table
\t    Format: hist:keys=<field1[,field2,...]>
\t            [:<var1>=<field|var_ref|numeric_literal>[,<var2>=...]]
\t            [:values=<field1[,field2,...]>]
\t            [:sort=<field1[,field2,...]>]
\t            [:size=#entries]
\t            [:pause][:continue][:clear]
\t            [:name=histname1]
\t            [:nohitcount]
\t            [:<handler>.<action>]
\t            [if <filter>]

\t    Note, special fields can be used as well:
\t            common_timestamp - to record current timestamp
\t            common_cpu - to record the CPU the event happened on

\t    A hist trigger variable can be:
\t        - a reference to a field e.g. x=current_timestamp,
\t        - a reference to another variable e.g. y=$x,
\t        - a numeric literal: e.g. ms_per_sec=1000,
\t        - an arithmetic expression: e.g. time_secs=current_timestamp/1000

\t    hist trigger arithmetic expressions support addition(+), subtraction(-),
\t    multiplication(*) and division(/) operators. An operand can be either a
\t    variable reference, field or numeric literal.

\t    When a matching event is hit, an entry is added to a hash
\t    table using the key(s) and value(s) named, and the value of a
\t    sum called 'hitcount' is incremented.  Keys and values
\t    correspond to fields in the event's format description.  Keys
\t    can be any field, or the special string 'common_stacktrace'.
\t    Compound keys consisting of up to two fields can be specified
\t    by the 'keys' keyword.  Values must correspond to numeric
\t    fields.  Sort keys consisting of up to two fields can be
\t    specified using the 'sort' keyword.  The sort direction can
\t    be modified by appending '.descending' or '.ascending' to a
\t    sort field.  The 'size' parameter can be used to specify more
\t    or fewer than the default 2048 entries for the hashtable size.
\t    If a hist trigger is given a name using the 'name' parameter,
\t    its histogram data will be shared with other triggers of the
\t    same name, and trigger hits will update this common data.

\t    Reading the 'hist' file for the event will dump the hash
\t    table in its entirety to stdout.  If there are multiple hist
\t    triggers attached to an event, there will be a table for each
\t    trigger in the output.  The table displayed for a named
\t    trigger will be the same as any other instance having the
\t    same name.  The default format used to display a given field
\t    can be modified by appending any of the following modifiers
\t    to the field name, as applicable:

\t            .hex        display a number as a hex value
\t            .sym        display an address as a symbol
\t            .sym-offset display an address as a symbol and offset
\t            .execname   display a common_pid as a program name
\t            .syscall    display a syscall id as a syscall name
\t            .log2       display log2 value rather than raw number
\t            .buckets=size  display values in groups of size rather than raw number
\t            .usecs      display a common_timestamp in microseconds
\t            .percent    display a number of percentage value
\t            .graph      display a bar-graph of a value

\t    The 'pause' parameter can be used to pause an existing hist
\t    trigger or to start a hist trigger but not log any events
\t    until told to do so.  'continue' can be used to start or
\t    restart a paused hist trigger.

\t    The 'clear' parameter will clear the contents of a running
\t    hist trigger and leave its current paused/active state
\t    unchanged.

\t    The 'nohitcount' (or NOHC) parameter will suppress display of
\t    raw hitcount in the histogram.

\t    The enable_hist and disable_hist triggers can be used to
\t    have one event conditionally start and stop another event's
\t    already-attached hist trigger.  The syntax is analogous to
\t    the enable_event and disable_event triggers.

\t    Hist trigger handlers and actions are executed whenever a
\t    a histogram entry is added or updated.  They take the form:

\t        <handler>.<action>

\t    The available handlers are:

\t        onmatch(matching.event)  - invoke on addition or update
\t        onmax(var)               - invoke if var exceeds current max
\t        onchange(var)            - invoke action if var changes

\t    The available actions are:

\t        trace(<synthetic_event>,param list)  - generate synthetic event
\t        save(field,...)                      - save current event fields
";

/// The histogram of trace array `ta` that defines variable `name` (on `system.event` when
/// qualified), and the variable's index in it.
fn find_var(
    reg: &Registry,
    ta: &TraceArray,
    system: Option<&str>,
    event: Option<&str>,
    name: &str,
) -> Option<(Arc<HistTrigger>, usize)> {
    let serial = match (system, event) {
        (Some(s), Some(e)) => Some(reg.find_event(s, e)?.serial),
        _ => None,
    };
    let st = ta.state.lock();
    st.events
        .iter()
        .filter(|(s, _)| serial.is_none_or(|want| **s == want))
        .flat_map(|(_, e)| e.hists.iter())
        .find_map(|t| t.var_index(name).map(|i| (t.clone(), i)))
}

/// Every variable reference of `spec` (in its values and action parameters), resolved.
fn var_sources(reg: &Registry, ta: &TraceArray, spec: &hist::HistSpec) -> Vec<VarSource> {
    fn collect<'a>(f: &'a hist::HistField, out: &mut Vec<&'a hist::HistField>) {
        if f.has(hist::fl::VAR_REF) {
            out.push(f);
        }
        for o in &f.operands {
            collect(o, out);
        }
    }
    let mut refs = Vec::new();
    for f in spec
        .vals
        .iter()
        .chain(spec.actions.iter().flat_map(|a| a.args.iter()))
    {
        collect(f, &mut refs);
    }
    let own = |name: &str| spec.vars().any(|v| v.var_name.as_deref() == Some(name));
    let mut out: Vec<VarSource> = Vec::new();
    for r in refs {
        if out
            .iter()
            .any(|o| o.name == r.name && o.system == r.system && o.event == r.event)
        {
            continue;
        }
        // find_event_var(): an unqualified name is looked for on the onmatch() events first.
        let on_match = || {
            spec.actions.iter().find_map(|a| match &a.handler {
                hist::Handler::OnMatch { system, event } if r.system.is_none() => {
                    find_var(reg, ta, Some(system), Some(event), &r.name)
                }
                _ => None,
            })
        };
        let target = if r.system.is_none() && own(&r.name) {
            None
        } else {
            on_match()
                .or_else(|| find_var(reg, ta, r.system.as_deref(), r.event.as_deref(), &r.name))
                .map(|(t, i)| (t.data().clone(), i))
        };
        out.push(VarSource {
            system: r.system.clone(),
            event: r.event.clone(),
            name: r.name.clone(),
            target,
        });
    }
    out
}

/// One `hist…` write to `ev`'s `trigger` file (see [`is_hist_command`]).
pub fn write(reg: &Registry, ta: &TraceArray, ev: &Event, data: &[u8]) -> Result<(), i32> {
    let Ok(Some((remove, _, param))) = trigger::split_command(data) else {
        return Err(libc::EINVAL);
    };
    let text = param.map(|p| String::from_utf8_lossy(p).into_owned());
    apply(reg, ta, ev, remove, text, true)
}

/// A hist command (`text` after `hist:`), as `event_hist_trigger_parse()`; `logs` is false
/// for the commands the kernel runs itself (field variable histograms), whose failures the
/// outer command logs.
fn apply(
    reg: &Registry,
    ta: &TraceArray,
    ev: &Event,
    remove: bool,
    text: Option<String>,
    logs: bool,
) -> Result<(), i32> {
    let last_cmd = hist::last_cmd(text.as_deref().unwrap_or(""));
    let location = format!("hist:{}:{}", ev.def.system, ev.def.name);
    let log = |kind: usize, pos: usize| {
        if logs {
            ta.state
                .lock()
                .log_error(&location, hist::ERR_TEXT[kind], &last_cmd, pos);
        }
    };
    let fail = |e: HistError| {
        for (kind, pos) in e.log_before.into_iter().chain(e.log) {
            log(kind, pos);
        }
        e.errno
    };
    let existing = ta
        .state
        .lock()
        .events
        .get(&ev.serial)
        .map(|e| e.hists.clone())
        .unwrap_or_default();
    let layout = ev.layout();
    let var_exists = |name: &str| {
        existing
            .iter()
            .any(|t| t.spec.vars().any(|v| v.var_name.as_deref() == Some(name)))
    };
    let var_known = |system: Option<&str>, event: Option<&str>, name: &str| {
        find_var(reg, ta, system, event, name).map(|(t, i)| t.data().spec().vals[i].flags)
    };
    let var_events = |name: &str| {
        let st = ta.state.lock();
        st.events
            .values()
            .filter(|e| e.hists.iter().any(|t| t.var_index(name).is_some()))
            .count()
    };
    let event_exists = |system: &str, event: &str| reg.find_event(system, event).is_some();
    let synth_fields = |name: &str| {
        reg.find_event("synthetic", name)
            .map(|e| e.layout().fields.event_fields().len())
    };
    let env = Env {
        fields: &layout.fields,
        event: (&ev.def.system, &ev.def.name),
        remove,
        var_exists: &var_exists,
        var_known: &var_known,
        var_events: &var_events,
        event_exists: &event_exists,
        synth_fields: &synth_fields,
    };
    let mut spec = hist::parse(text.as_deref(), &env).map_err(fail)?;
    let filter = match &spec.filter {
        Some(f) => Some(Arc::new(super::files::compile_trigger_filter(ta, ev, f)?)),
        None => None,
    };
    let named = spec.short_name().and_then(find_named);
    // hist_trigger_match(): same fields and sort keys; the same named data, or both unnamed.
    let shape = spec.shape();
    let filter_text = spec.filter.clone();
    let same = |t: &HistTrigger, ignore_filter: bool| {
        let named_ok = match &named {
            Some(nd) => t.shares(nd),
            None => t.spec.name.is_none(),
        };
        named_ok
            && t.data().spec().shape() == shape
            && (ignore_filter || t.spec.filter == filter_text)
    };
    let named_fits = named.as_ref().map(|nd| nd.spec().shape() == shape);

    let mut st = ta.state.lock();
    let hists = st
        .events
        .get(&ev.serial)
        .map(|e| e.hists.clone())
        .unwrap_or_default();
    if remove {
        if let Some(i) = hists.iter().position(|t| same(t, false)) {
            // hist_trigger_check_refs(): its variables are still read by another histogram.
            let victim = hists.iter().nth(i).map(|t| t.data().clone());
            let referenced = victim.is_some_and(|d| {
                st.events
                    .values()
                    .flat_map(|e| e.hists.iter())
                    .any(|t| !t.shares(&d) && t.references(&d))
            });
            if referenced {
                return Err(libc::EBUSY);
            }
            let removed = st.with_event(ev.serial, |e| {
                let removed = e.hists.iter().nth(i).cloned();
                e.hists = e.hists.without(i);
                e.soft.own_trigger_removed();
                removed
            });
            drop(st);
            if let Some(t) = removed {
                if t.spec
                    .actions
                    .iter()
                    .any(|a| a.kind == hist::ActionKind::Snapshot)
                {
                    snapshot::cond_disable(ta);
                }
                remove_field_var_hists(reg, ta, &t.field_var_hists);
            }
        }
        return Ok(());
    }
    // existing_hist_update_only(): pause, continue or clear an existing histogram.
    if (spec.pause || spec.cont || spec.clear)
        && (spec.name.is_none() || named_fits == Some(true))
        && let Some(t) = hists.iter().find(|t| same(t, false))
    {
        if spec.pause {
            t.set_paused(true);
        } else if spec.cont {
            t.set_paused(false);
        } else {
            t.clear();
        }
        return Ok(());
    }
    drop(st);
    if named.is_none() {
        let created = hist::create_actions(&mut spec, text.as_deref().unwrap_or(""), &env);
        for (kind, pos) in std::mem::take(&mut spec.logged) {
            log(kind, pos);
        }
        created.map_err(fail)?;
    }
    let made = create_field_var_hists(reg, ta, &spec, &last_cmd, &log)?;
    let registered = register(RegisterArgs {
        reg,
        ta,
        ev,
        spec,
        filter,
        named: named.clone(),
        named_fits,
        hists: &hists,
        same: &same,
        last_cmd: &last_cmd,
        log: &log,
        made: made.clone(),
    });
    if registered.is_err() {
        remove_field_var_hists(reg, ta, &made);
    }
    registered
}

/// What [`register`] needs of [`apply`].
struct RegisterArgs<'a> {
    reg: &'a Registry,
    ta: &'a TraceArray,
    ev: &'a Event,
    spec: hist::HistSpec,
    filter: Option<Arc<crate::control::filter::Filter>>,
    named: Option<Arc<crate::trace::hist::HistData>>,
    named_fits: Option<bool>,
    hists: &'a crate::trace::hist::HistList,
    same: &'a dyn Fn(&HistTrigger, bool) -> bool,
    last_cmd: &'a str,
    log: &'a dyn Fn(usize, usize),
    made: Vec<(String, String, String)>,
}

/// `hist_register_trigger()` and what follows it: a new histogram joins the event.
fn register(a: RegisterArgs) -> Result<(), i32> {
    let RegisterArgs {
        reg,
        ta,
        ev,
        spec,
        filter,
        named,
        named_fits,
        hists,
        same,
        last_cmd,
        log,
        made,
    } = a;
    let refs = var_sources(reg, ta, &spec);
    // hist_register_trigger()
    if named_fits == Some(false) {
        let at = spec.name.as_deref().unwrap_or("");
        log(err::NAMED_MISMATCH, last_cmd.find(at).unwrap_or(0));
        return Err(libc::EINVAL);
    }
    let mut st = ta.state.lock();
    if (spec.name.is_none() || named.is_some()) && hists.iter().any(|t| same(t, false)) {
        drop(st);
        log(err::TRIGGER_EEXIST, 0);
        return Err(libc::EEXIST);
    }
    if spec.cont || spec.clear {
        drop(st);
        log(err::TRIGGER_ENOENT_CLEAR, 0);
        return Err(libc::ENOENT);
    }
    if spec.enable_timestamps {
        match TRACE_CLOCKS.iter().position(|c| *c == spec.clock) {
            Some(i) => st.trace_clock = i,
            None => {
                drop(st);
                log(err::SET_CLOCK_FAIL, last_cmd.find(&spec.clock).unwrap_or(0));
                return Err(libc::EINVAL);
            }
        }
    }
    // track_data_create(): a `.snapshot()` action registers the trace array's conditional
    // snapshot (allocating the buffer); only one may.
    let snapshots = spec
        .actions
        .iter()
        .any(|a| a.kind == hist::ActionKind::Snapshot);
    if snapshots && reg.features.snapshot {
        snapshot::cond_enable(ta)?;
    }
    let t = Arc::new(HistTrigger::new(spec, filter, named, refs, made));
    st.with_event(ev.serial, |e| {
        e.hists = e.hists.with(t);
        e.soft.own_trigger_added();
    });
    Ok(())
}

/// `create_field_var_hist()` for each field of another event the actions read: a histogram
/// on that event with the keys of a compatible one there (same sizes) and its filter,
/// defining `synthetic_<field>`, unless one defines it already. Returns those made (system,
/// event, command); on failure nothing stays made.
fn create_field_var_hists(
    reg: &Registry,
    ta: &TraceArray,
    spec: &hist::HistSpec,
    last_cmd: &str,
    log: &dyn Fn(usize, usize),
) -> Result<Vec<(String, String, String)>, i32> {
    let mut made = Vec::new();
    for req in &spec.field_var_hists {
        let at = last_cmd.find(&req.field).unwrap_or(0);
        let var = req.var_name();
        if find_var(reg, ta, Some(&req.system), Some(&req.event), &var).is_some() {
            continue;
        }
        let Some(other) = reg.find_event(&req.system, &req.event) else {
            remove_field_var_hists(reg, ta, &made);
            log(err::EVENT_FILE_NOT_FOUND, at);
            return Err(libc::EINVAL);
        };
        let compatible = ta.state.lock().events.get(&other.serial).and_then(|e| {
            e.hists
                .iter()
                .find(|t| spec.keys_compatible(&t.spec))
                .cloned()
        });
        let Some(compatible) = compatible else {
            remove_field_var_hists(reg, ta, &made);
            log(err::HIST_NOT_FOUND, at);
            return Err(libc::EINVAL);
        };
        let mut cmd = format!("keys={}:{var}={}", compatible.spec.key_list(), req.field);
        if let Some(f) = &compatible.spec.filter {
            cmd.push_str(" if ");
            cmd.push_str(f);
        }
        if let Err(e) = apply(reg, ta, &other, false, Some(cmd.clone()), false) {
            remove_field_var_hists(reg, ta, &made);
            log(err::HIST_CREATE_FAIL, at);
            return Err(e);
        }
        made.push((req.system.clone(), req.event.clone(), cmd));
    }
    Ok(made)
}

/// `unregister_field_var_hists()`: removes the histograms made for field variables.
fn remove_field_var_hists(reg: &Registry, ta: &TraceArray, made: &[(String, String, String)]) {
    for (system, event, cmd) in made {
        if let Some(other) = reg.find_event(system, event) {
            let _ = apply(reg, ta, &other, true, Some(cmd.clone()), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::catalog::Catalog;
    use crate::events::registry::MountOwner;

    fn registry(cat: Catalog) -> Registry {
        let owner = MountOwner {
            uid: 0,
            gid: 0,
            root_mode: 0o700,
        };
        Registry::new(cat, owner, 2)
    }

    #[test]
    fn readme_gains_the_hist_lines_only_with_the_feature() {
        let base = include_str!("tracefs_readme.txt").to_owned();
        let mut cat = Catalog::embedded();
        cat.features.snapshot = false;
        let reg = registry(cat.clone());
        let with = readme(&reg, base.clone());
        assert!(with.contains(
            "\t            disable_event:<system>:<event>\n\t            enable_hist:<system>:<event>\n"
        ));
        assert!(with.contains("\t\t    stacktrace\n\t\t    hist (see below)\n"));
        assert!(with.ends_with("save current event fields\n"));
        cat.features.snapshot = true;
        let snap = readme(
            &registry(cat.clone()),
            base.replace(
                "\t\t    stacktrace\n",
                "\t\t    stacktrace\n\t\t    snapshot\n",
            ),
        );
        assert!(snap.contains("\t\t    stacktrace\n\t\t    snapshot\n\t\t    hist (see below)\n"));
        assert!(snap.ends_with("save current event fields\n\t        snapshot()                           - snapshot the trace buffer\n\n"));
        cat.features.hist = false;
        let reg = registry(cat);
        assert_eq!(readme(&reg, base.clone()), base);
    }
}
