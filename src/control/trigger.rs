//! Event `trigger` files (spec §8) and the per-event soft-mode state
//! machine (spec §5.1), as pure data types.
//!
//! Everything here is free of I/O: the caller owns the event registry,
//! the error_log, `tracing_on` and the ring buffer, and wires them in
//! through closures and `&mut` parameters.
//!
//! Parsing mirrors `trigger_process_regex()` / `event_trigger_parse()` /
//! `event_enable_trigger_parse()` of Linux 6.18 byte for byte (checked live
//! against 6.18.44, see the tests for the exact cases).
//!
//! Order of checks for one write (it decides which errno wins):
//! 1. zero length → `Nothing`; `len >= PAGE_SIZE` → EINVAL;
//! 2. the buffer is cut at the first NUL and stripped of kernel `isspace`
//!    bytes (`\t\n\v\f\r `, and 0xA0) at both ends;
//! 3. command lookup (unknown → EINVAL);
//! 4. enable/disable_event only: `<sys>:<event>` present and
//!    `target_ok(sys, event)` (→ EINVAL), **also for removal**;
//! 5. removal (`!…`) stops here: count and filter text are not validated
//!    (`!traceon:abc`, `!traceon foo` succeed);
//! 6. count (EINVAL, or ERANGE on overflow), then the filter syntax
//!    (`if <expr>`, EINVAL), then `compile_filter` (its errno);
//! 7. uniqueness in [`TriggerList::add`] (EEXIST) — after all of the above,
//!    so `traceoff if nosuch == 1` on an event that already has `traceoff`
//!    is EINVAL, not EEXIST.

use std::fmt::Write as _;

/// Writes of this many bytes or more are rejected with EINVAL.
pub const PAGE_SIZE: usize = 4096;

/// What an event's `trigger` file reads with no triggers on this kernel
/// configuration (no snapshot, no hist).
pub const AVAILABLE_TRIGGERS: &str =
    "# Available triggers:\n# traceon traceoff stacktrace enable_event disable_event\n";

/// What an event's `trigger` file reads with no triggers, on a kernel with or without the
/// snapshot buffer and hist triggers: the commands in the kernel's registration order
/// (`register_trigger_cmds`).
pub fn available_triggers(snapshot: bool, hist: bool) -> String {
    let mut out = String::from("# Available triggers:\n#");
    for (name, offered) in [
        ("traceon", true),
        ("traceoff", true),
        ("snapshot", snapshot),
        ("stacktrace", true),
        ("enable_event", true),
        ("disable_event", true),
        ("enable_hist", hist),
        ("disable_hist", hist),
        ("hist", hist),
    ] {
        if offered {
            out.push(' ');
            out.push_str(name);
        }
    }
    out.push('\n');
    out
}

/// One trigger command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerCmd {
    /// `traceon`: sets `tracing_on` to 1.
    TraceOn,
    /// `traceoff`: sets `tracing_on` to 0.
    TraceOff,
    /// `stacktrace`: records a kernel stack trace.
    StackTrace,
    /// `snapshot`: swaps the live buffer with the snapshot buffer (`crate::trace::snapshot`).
    Snapshot,
    /// `enable_event:<system>:<event>`: soft-enables the target.
    EnableEvent {
        /// Target subsystem.
        system: String,
        /// Target event.
        event: String,
    },
    /// `disable_event:<system>:<event>`: soft-disables the target.
    DisableEvent {
        /// Target subsystem.
        system: String,
        /// Target event.
        event: String,
    },
    /// `enable_hist:<system>:<event>`: continues the target's hist triggers.
    EnableHist {
        /// Target subsystem.
        system: String,
        /// Target event.
        event: String,
    },
    /// `disable_hist:<system>:<event>`: pauses the target's hist triggers.
    DisableHist {
        /// Target subsystem.
        system: String,
        /// Target event.
        event: String,
    },
}

/// The kernel's trigger "type": at most one trigger per type per event
/// (for [`TriggerKind::Enable`], per type and target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    /// `traceon` and `traceoff` (one type).
    OnOff,
    /// `stacktrace`.
    StackTrace,
    /// `snapshot`.
    Snapshot,
    /// `enable_event` and `disable_event` (one type, keyed by target).
    Enable,
    /// `enable_hist` and `disable_hist` (`ETT_HIST_ENABLE`, keyed by target).
    HistEnable,
}

impl TriggerCmd {
    /// The command name as written and read back.
    pub fn name(&self) -> &'static str {
        match self {
            TriggerCmd::TraceOn => "traceon",
            TriggerCmd::TraceOff => "traceoff",
            TriggerCmd::StackTrace => "stacktrace",
            TriggerCmd::Snapshot => "snapshot",
            TriggerCmd::EnableEvent { .. } => "enable_event",
            TriggerCmd::DisableEvent { .. } => "disable_event",
            TriggerCmd::EnableHist { .. } => "enable_hist",
            TriggerCmd::DisableHist { .. } => "disable_hist",
        }
    }

    /// The uniqueness type of this command.
    pub fn kind(&self) -> TriggerKind {
        match self {
            TriggerCmd::TraceOn | TriggerCmd::TraceOff => TriggerKind::OnOff,
            TriggerCmd::StackTrace => TriggerKind::StackTrace,
            TriggerCmd::Snapshot => TriggerKind::Snapshot,
            TriggerCmd::EnableEvent { .. } | TriggerCmd::DisableEvent { .. } => TriggerKind::Enable,
            TriggerCmd::EnableHist { .. } | TriggerCmd::DisableHist { .. } => {
                TriggerKind::HistEnable
            }
        }
    }

    /// `(system, event)` of an enable/disable_event target.
    pub fn target(&self) -> Option<(&str, &str)> {
        match self {
            TriggerCmd::EnableEvent { system, event }
            | TriggerCmd::DisableEvent { system, event }
            | TriggerCmd::EnableHist { system, event }
            | TriggerCmd::DisableHist { system, event } => Some((system, event)),
            _ => None,
        }
    }

    /// True when `self` and `other` occupy the same uniqueness slot (same
    /// type, and for enable/disable_event the same target).
    pub fn same_slot(&self, other: &TriggerCmd) -> bool {
        self.kind() == other.kind() && self.target() == other.target()
    }
}

/// One trigger as stored on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The command.
    pub cmd: TriggerCmd,
    /// Remaining count; `None` = unlimited. The kernel stores the count as
    /// an `unsigned long` where `-1` (`u64::MAX`) means unlimited, so a
    /// written count of `0xffffffffffffffff` parses to `None`.
    pub count: Option<u64>,
    /// The filter text after `if ` (verbatim, e.g. a second space is kept),
    /// already accepted by the caller's compiler.
    pub filter: Option<String>,
}

impl Trigger {
    /// A trigger without count and filter.
    pub fn new(cmd: TriggerCmd) -> Self {
        Trigger {
            cmd,
            count: None,
            filter: None,
        }
    }
}

/// The result of parsing one write(2) to a `trigger` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerWrite {
    /// Zero-length write: return 0, do nothing.
    Nothing,
    /// Register this trigger (then [`TriggerList::add`]).
    Add(Trigger),
    /// `!…`: remove the trigger in the same slot; count and filter are
    /// `None` (they are ignored for matching). Removing a non-existent
    /// trigger succeeds.
    Remove(Trigger),
}

/// Kernel `isspace()` (lib/ctype.c): `\t\n\v\f\r`, space and Latin-1 NBSP.
fn is_kspace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_kspace(b)).count();
    &s[n..]
}

fn strim(s: &[u8]) -> &[u8] {
    let s = skip_spaces(s);
    let n = s.iter().rev().take_while(|&&b| is_kspace(b)).count();
    &s[..s.len() - n]
}

/// Kernel `strsep()`: split at the first byte of `delims`; the remainder is
/// `None` when no delimiter was found.
fn strsep<'a>(s: &'a [u8], delims: &[u8]) -> (&'a [u8], Option<&'a [u8]>) {
    match s.iter().position(|b| delims.contains(b)) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Kernel `kstrtoull(s, 0)`: optional `+`, base auto-detection (`0x` hex
/// when followed by a hex digit, leading `0` octal, else decimal), at most
/// one trailing `\n`. Overflow → ERANGE (checked before trailing garbage).
fn kstrtoull0(s: &[u8]) -> Result<u64, i32> {
    let mut s = s;
    if s.first() == Some(&b'+') {
        s = &s[1..];
    }
    let base: u32 = if s.first() == Some(&b'0') {
        if s.len() >= 3 && (s[1] | 0x20) == b'x' && s[2].is_ascii_hexdigit() {
            s = &s[2..];
            16
        } else {
            8
        }
    } else {
        10
    };
    let mut val: u64 = 0;
    let mut n = 0usize;
    let mut overflow = false;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'a'..=b'f' => u32::from(b - b'a') + 10,
            b'A'..=b'F' => u32::from(b - b'A') + 10,
            _ => break,
        };
        if d >= base {
            break;
        }
        match val
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => val = v,
            None => overflow = true,
        }
        n += 1;
    }
    if overflow {
        return Err(libc::ERANGE);
    }
    if n == 0 {
        return Err(libc::EINVAL);
    }
    let mut rest = &s[n..];
    if rest.first() == Some(&b'\n') {
        rest = &rest[1..];
    }
    if !rest.is_empty() {
        return Err(libc::EINVAL);
    }
    Ok(val)
}

/// `event_trigger_parse_num()`: the count is the text up to the first `:`.
fn parse_count(param: Option<&[u8]>) -> Result<Option<u64>, i32> {
    let Some(param) = param else {
        return Ok(None);
    };
    let (number, _) = strsep(param, b":");
    if number.is_empty() {
        return Err(libc::EINVAL);
    }
    let v = kstrtoull0(number)?;
    Ok(if v == u64::MAX { None } else { Some(v) })
}

/// `(param, filter)` byte slices of a trigger command.
type ParamFilter<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// `event_trigger_separate_filter()`.
fn separate_filter(pf: Option<&[u8]>, param_required: bool) -> Result<ParamFilter<'_>, i32> {
    let Some(pf) = pf else {
        return if param_required {
            Err(libc::EINVAL)
        } else {
            Ok((None, None))
        };
    };
    if !param_required && !pf.first().is_some_and(u8::is_ascii_digit) {
        return Ok((None, Some(pf)));
    }
    let (param, rest) = strsep(pf, b" \t");
    let filter = rest.map(skip_spaces).filter(|f| !f.is_empty());
    Ok((Some(param), filter))
}

/// `set_trigger_filter()`: the text must be `if` + space/tab + expression.
fn parse_filter(
    filter: Option<&[u8]>,
    compile_filter: impl Fn(&str) -> Result<(), i32>,
) -> Result<Option<String>, i32> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let (word, rest) = strsep(filter, b" \t");
    if word != b"if" {
        return Err(libc::EINVAL);
    }
    let Some(expr) = rest else {
        return Err(libc::EINVAL);
    };
    // Non-UTF-8 filter text is converted lossily (the kernel keeps raw
    // bytes); field names are ASCII so only string constants are affected.
    let expr = String::from_utf8_lossy(expr).into_owned();
    compile_filter(&expr)?;
    Ok(Some(expr))
}

/// `(removal, command name, parameter)` of a trigger write.
pub type Command<'a> = (bool, &'a [u8], Option<&'a [u8]>);

/// `(removal, command name, parameter)` of one write(2) to a `trigger` file
/// (`trigger_process_regex()`): `None` for a zero-length write, EINVAL for one of a page or
/// more. The parameter is what follows the first `:`, space or tab, without leading spaces
/// (`None` when empty).
pub fn split_command(buf: &[u8]) -> Result<Option<Command<'_>>, i32> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.len() >= PAGE_SIZE {
        return Err(libc::EINVAL);
    }
    // memdup_user_nul(): C string semantics, everything after a NUL is gone.
    let buf = match buf.iter().position(|&b| b == 0) {
        Some(i) => &buf[..i],
        None => buf,
    };
    let buf = strim(buf);
    let (command, next) = strsep(buf, b": \t");
    let next = next.map(skip_spaces).filter(|n| !n.is_empty());
    Ok(Some(match command.strip_prefix(b"!") {
        Some(n) => (true, n, next),
        None => (false, command, next),
    }))
}

/// Parses one write(2) to an event's `trigger` file exactly as Linux 6.18
/// does (see the module docs for the check order).
///
/// * `target_ok(system, event)`: the enable/disable_event target exists in
///   the same instance and is enable-able (has `reg`, not ignore-enable —
///   `ftrace:print` is *not*). Called for removals too.
/// * `compile_filter(expr)`: compiles the filter against the *triggering*
///   event's fields (§7 grammar); on error the caller logs the error_log
///   entry and returns the errno, which is passed through unchanged.
///
/// Returns the errno on failure (EINVAL, ERANGE for an overflowing count,
/// or whatever `compile_filter` returned). EEXIST is decided later by
/// [`TriggerList::add`].
pub fn parse_write(
    buf: &[u8],
    target_ok: impl Fn(&str, &str) -> bool,
    compile_filter: impl Fn(&str) -> Result<(), i32>,
) -> Result<TriggerWrite, i32> {
    let Some((remove, name, next)) = split_command(buf)? else {
        return Ok(TriggerWrite::Nothing);
    };

    let cmd = match name {
        b"traceon" | b"traceoff" | b"stacktrace" | b"snapshot" => {
            let cmd = match name {
                b"traceon" => TriggerCmd::TraceOn,
                b"traceoff" => TriggerCmd::TraceOff,
                b"snapshot" => TriggerCmd::Snapshot,
                _ => TriggerCmd::StackTrace,
            };
            let (param, filter) = separate_filter(next, false)?;
            if remove {
                return Ok(TriggerWrite::Remove(Trigger::new(cmd)));
            }
            let count = parse_count(param)?;
            let filter = parse_filter(filter, compile_filter)?;
            return Ok(TriggerWrite::Add(Trigger { cmd, count, filter }));
        }
        b"enable_event" | b"disable_event" | b"enable_hist" | b"disable_hist" => name,
        _ => return Err(libc::EINVAL),
    };

    // enable_event / disable_event: `<sys>:<event>[:<count>][ if <filter>]`.
    let (param, filter) = separate_filter(next, true)?;
    let param = param.unwrap_or_default();
    let (system, rest) = strsep(param, b":");
    let Some(rest) = rest else {
        return Err(libc::EINVAL);
    };
    let (event, count_param) = strsep(rest, b":");
    let (Ok(system), Ok(event)) = (std::str::from_utf8(system), std::str::from_utf8(event)) else {
        return Err(libc::EINVAL);
    };
    if !target_ok(system, event) {
        return Err(libc::EINVAL);
    }
    let (system, event) = (system.to_owned(), event.to_owned());
    let cmd = match cmd {
        b"enable_event" => TriggerCmd::EnableEvent { system, event },
        b"disable_event" => TriggerCmd::DisableEvent { system, event },
        b"enable_hist" => TriggerCmd::EnableHist { system, event },
        _ => TriggerCmd::DisableHist { system, event },
    };
    if remove {
        return Ok(TriggerWrite::Remove(Trigger::new(cmd)));
    }
    let count = parse_count(count_param)?;
    let filter = parse_filter(filter, compile_filter)?;
    Ok(TriggerWrite::Add(Trigger { cmd, count, filter }))
}

/// The triggers of one event, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerList {
    items: Vec<Trigger>,
}

impl TriggerList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `t` as the newest trigger. EEXIST when a trigger of the
    /// same slot exists (`traceon` vs `traceoff`; `enable_event:a:b` vs
    /// `disable_event:a:b`). On success the caller must call
    /// [`SoftState::own_trigger_added`] on this event and, for
    /// enable/disable_event, [`SoftState::soft_ref`] on the target.
    pub fn add(&mut self, t: Trigger) -> Result<(), i32> {
        if self.items.iter().any(|x| x.cmd.same_slot(&t.cmd)) {
            return Err(libc::EEXIST);
        }
        self.items.insert(0, t);
        Ok(())
    }

    /// Removes the trigger in the same slot as `t` (count and filter are
    /// ignored; `!disable_event:a:b` removes `enable_event:a:b`, `!traceon`
    /// removes `traceoff`). `None` when nothing matched, which is not an
    /// error for the writer. On `Some` the caller must call
    /// [`SoftState::own_trigger_removed`] and, for enable/disable_event,
    /// [`SoftState::soft_unref`] on the *removed* trigger's target.
    pub fn remove(&mut self, t: &Trigger) -> Option<Trigger> {
        let i = self.items.iter().position(|x| x.cmd.same_slot(&t.cmd))?;
        Some(self.items.remove(i))
    }

    /// Removes every trigger (instance removal), newest first.
    pub fn clear(&mut self) -> Vec<Trigger> {
        std::mem::take(&mut self.items)
    }

    /// No triggers.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of triggers.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Triggers, newest first (the order they are listed and fired in).
    pub fn iter(&self) -> std::slice::Iter<'_, Trigger> {
        self.items.iter()
    }

    /// Mutable iteration, newest first (for [`fire`]).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Trigger> {
        self.items.iter_mut()
    }
}

/// Renders one trigger line (with its `\n`).
pub fn render_one(t: &Trigger, out: &mut String) {
    out.push_str(t.cmd.name());
    if let Some((sys, ev)) = t.cmd.target() {
        let _ = write!(out, ":{sys}:{ev}");
    }
    match t.count {
        None => out.push_str(":unlimited"),
        // The kernel prints the unsigned long with %ld.
        Some(c) => {
            let _ = write!(out, ":count={}", c as i64);
        }
    }
    if let Some(f) = &t.filter {
        out.push_str(" if ");
        out.push_str(f);
    }
    out.push('\n');
}

/// What the `trigger` file reads (§8.1) on a kernel with (`snapshot`) or without the snapshot
/// buffer.
pub fn render(list: &TriggerList, snapshot: bool) -> String {
    if list.is_empty() {
        return available_triggers(snapshot, false);
    }
    let mut out = String::new();
    for t in list.iter() {
        render_one(t, &mut out);
    }
    out
}

/// The enable state of one event file (`trace_event_file` flags
/// `ENABLED`/`SOFT_DISABLED`, counters `sm_ref` and `tm_ref`), §5.1.
///
/// `sm_ref` counts soft-mode users: one for "this event has any
/// triggers" (taken when `tm_ref` goes 0→1) plus one per
/// enable/disable_event trigger anywhere in the instance targeting it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftState {
    enabled: bool,
    soft_disabled: bool,
    sm_ref: u32,
    tm_ref: u32,
}

impl SoftState {
    /// A disabled event with no soft mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user wrote `1` (`true`) or `0` to `enable`, `set_event`, or a
    /// subsystem/top `enable` (`__ftrace_event_enable_disable(file, on, 0)`).
    /// In soft mode `0` only soft-disables (the tracepoint stays hooked).
    pub fn user_write(&mut self, on: bool) {
        if on {
            self.soft_disabled = false;
            self.enabled = true;
        } else {
            let soft_mode = self.sm_ref != 0;
            if !soft_mode {
                self.enabled = false;
            }
            self.soft_disabled = soft_mode;
        }
    }

    /// `__ftrace_event_enable_disable(file, 1, 1)`: take a soft-mode
    /// reference (an enable/disable_event trigger targeting this event was
    /// registered). The first reference hooks a disabled event as
    /// soft-disabled (`0*`); an enabled one reads `1*`.
    pub fn soft_ref(&mut self) {
        self.sm_ref = self.sm_ref.saturating_add(1);
        if self.sm_ref > 1 {
            return;
        }
        if !self.enabled {
            self.soft_disabled = true;
            self.enabled = true;
        }
    }

    /// `__ftrace_event_enable_disable(file, 0, 1)`: drop a soft-mode
    /// reference. When the last goes, the event stays enabled (reads `1`)
    /// if it was effectively on, else it is disabled (reads `0`).
    pub fn soft_unref(&mut self) {
        if self.sm_ref == 0 {
            return;
        }
        self.sm_ref -= 1;
        if self.sm_ref > 0 {
            return;
        }
        if self.soft_disabled {
            self.enabled = false;
        }
        self.soft_disabled = false;
    }

    /// A trigger was added to this event's own `trigger` file
    /// (`trace_event_trigger_enable_disable(file, 1)`).
    pub fn own_trigger_added(&mut self) {
        self.tm_ref = self.tm_ref.saturating_add(1);
        if self.tm_ref == 1 {
            self.soft_ref();
        }
    }

    /// A trigger was removed from this event's own `trigger` file.
    pub fn own_trigger_removed(&mut self) {
        if self.tm_ref == 0 {
            return;
        }
        self.tm_ref -= 1;
        if self.tm_ref == 0 {
            self.soft_unref();
        }
    }

    /// A firing `enable_event` (`true`) / `disable_event` (`false`)
    /// trigger targeting this event: clears/sets SOFT_DISABLED.
    pub fn fire_enable(&mut self, on: bool) {
        self.soft_disabled = !on;
    }

    /// The `enable` file content: `0\n`, `1\n`, `0*\n` or `1*\n`.
    pub fn read(&self) -> &'static str {
        match (self.enabled && !self.soft_disabled, self.sm_ref != 0) {
            (false, false) => "0\n",
            (true, false) => "1\n",
            (false, true) => "0*\n",
            (true, true) => "1*\n",
        }
    }

    /// The raw ENABLED flag: listed in `set_event`, counts as enabled for
    /// subsystem/top `enable` (`X`), and the tracepoint is hooked, so the
    /// event's own triggers fire even while soft-disabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The event writes records into the buffer (enabled and not
    /// soft-disabled; the caller still applies the event filter).
    pub fn records(&self) -> bool {
        self.enabled && !self.soft_disabled
    }

    /// Soft mode: any trigger references this event (the `*`).
    pub fn in_soft_mode(&self) -> bool {
        self.sm_ref != 0
    }

    /// SOFT_DISABLED flag.
    pub fn is_soft_disabled(&self) -> bool {
        self.soft_disabled
    }
}

/// What a firing trigger did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing (count exhausted, state already as wanted, target gone).
    None,
    /// `tracing_on` was switched on.
    TracingOn,
    /// `tracing_on` was switched off.
    TracingOff,
    /// Record a stack trace.
    StackTrace,
    /// Take a snapshot.
    Snapshot,
    /// The target was soft-enabled.
    EnabledTarget,
    /// The target was soft-disabled.
    DisabledTarget,
    /// The target's hist triggers are to continue (`true`) or pause.
    HistTarget(bool),
}

/// Fires `t` once. The caller has already evaluated the trigger's filter
/// (a trigger whose filter does not match does not fire and its count is
/// untouched). `target` is the enable/disable_event target's state
/// (`None` for other commands, or if the target is gone).
///
/// A count of 0 never acts. The count decrements only when the trigger
/// acts: `traceon`/`traceoff` only when they change `tracing_on`, and
/// `enable_event`/`disable_event` only when they change the target's
/// soft-disabled flag (verified live: `enable_event:…:2` fired twice on an
/// already-enabled target stays at `count=1`). `stacktrace` always acts.
pub fn fire(t: &mut Trigger, tracing_on: &mut bool, target: Option<&mut SoftState>) -> Action {
    if t.count == Some(0) {
        return Action::None;
    }
    let action = match &t.cmd {
        // hist_enable_count_trigger(): counts every firing.
        TriggerCmd::EnableHist { .. } | TriggerCmd::DisableHist { .. } => {
            Action::HistTarget(matches!(t.cmd, TriggerCmd::EnableHist { .. }))
        }
        TriggerCmd::TraceOn | TriggerCmd::TraceOff => {
            let want = t.cmd == TriggerCmd::TraceOn;
            if *tracing_on == want {
                return Action::None;
            }
            *tracing_on = want;
            if want {
                Action::TracingOn
            } else {
                Action::TracingOff
            }
        }
        TriggerCmd::StackTrace => Action::StackTrace,
        TriggerCmd::Snapshot => Action::Snapshot,
        TriggerCmd::EnableEvent { .. } | TriggerCmd::DisableEvent { .. } => {
            let want = matches!(t.cmd, TriggerCmd::EnableEvent { .. });
            let Some(target) = target else {
                return Action::None;
            };
            if target.is_soft_disabled() != want {
                // already in the wanted state
                return Action::None;
            }
            target.fire_enable(want);
            if want {
                Action::EnabledTarget
            } else {
                Action::DisabledTarget
            }
        }
    };
    if let Some(c) = &mut t.count {
        *c -= 1;
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_ok(s: &str, e: &str) -> bool {
        s == "sched"
            && matches!(
                e,
                "sched_process_hang" | "sched_wakeup_new" | "sched_switch"
            )
    }

    fn compile(f: &str) -> Result<(), i32> {
        if f.contains("nosuch") {
            Err(libc::EINVAL)
        } else {
            Ok(())
        }
    }

    fn p(b: &[u8]) -> Result<TriggerWrite, i32> {
        parse_write(b, target_ok, compile)
    }

    fn add(b: &[u8]) -> Trigger {
        match p(b) {
            Ok(TriggerWrite::Add(t)) => t,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(b)),
        }
    }

    fn line(b: &[u8]) -> String {
        let mut s = String::new();
        render_one(&add(b), &mut s);
        s
    }

    /// Cases verified live on 6.18.44 (write → read-back).
    #[test]
    fn parse_accepts() {
        let cases: &[(&[u8], &str)] = &[
            (b"traceon", "traceon:unlimited\n"),
            (b" traceon ", "traceon:unlimited\n"),
            (b"traceon\n", "traceon:unlimited\n"),
            (b"traceon:", "traceon:unlimited\n"),
            (b"traceon 5", "traceon:count=5\n"),
            (b"traceon\t5", "traceon:count=5\n"),
            (b"traceon:0xfffffffffffffffe", "traceon:count=-2\n"),
            (b"traceon:0xffffffffffffffff", "traceon:unlimited\n"),
            (b"traceon:010", "traceon:count=8\n"),
            (b"traceon:0", "traceon:count=0\n"),
            (b"traceon:3:4", "traceon:count=3\n"),
            (b"traceon:3:abc", "traceon:count=3\n"),
            (b"traceon:5\n if pid == 1", "traceon:count=5 if pid == 1\n"),
            (b"traceon if  pid == 1", "traceon:unlimited if  pid == 1\n"),
            (b"traceon if\tpid == 1", "traceon:unlimited if pid == 1\n"),
            (b"\xa0traceon\xa0", "traceon:unlimited\n"),
            (b"traceon\x00garbage", "traceon:unlimited\n"),
            (b"traceon \x00", "traceon:unlimited\n"),
            (b"traceoff", "traceoff:unlimited\n"),
            (b"stacktrace:3", "stacktrace:count=3\n"),
            (
                b"stacktrace:2 if pid == 1",
                "stacktrace:count=2 if pid == 1\n",
            ),
            (
                b"traceon if buf ~ \"*hello*\"",
                "traceon:unlimited if buf ~ \"*hello*\"\n",
            ),
            (
                b"enable_event:sched:sched_process_hang",
                "enable_event:sched:sched_process_hang:unlimited\n",
            ),
            (
                b"enable_event sched:sched_wakeup_new",
                "enable_event:sched:sched_wakeup_new:unlimited\n",
            ),
            (
                b"enable_event:sched:sched_wakeup_new:5:6",
                "enable_event:sched:sched_wakeup_new:count=5\n",
            ),
            (
                b"enable_event:sched:sched_wakeup_new if pid == 1",
                "enable_event:sched:sched_wakeup_new:unlimited if pid == 1\n",
            ),
            (
                b"disable_event:sched:sched_wakeup_new:0x10 if pid < 5",
                "disable_event:sched:sched_wakeup_new:count=16 if pid < 5\n",
            ),
            (
                b"disable_event:sched:sched_wakeup_new:0x10 if ip == 1",
                "disable_event:sched:sched_wakeup_new:count=16 if ip == 1\n",
            ),
        ];
        for (w, want) in cases {
            assert_eq!(line(w), *want, "{:?}", String::from_utf8_lossy(w));
        }
    }

    #[test]
    fn snapshot_parses_like_traceon() {
        assert_eq!(
            p(b"snapshot:3 if pid == 1\n"),
            Ok(TriggerWrite::Add(Trigger {
                cmd: TriggerCmd::Snapshot,
                count: Some(3),
                filter: Some("pid == 1".into()),
            }))
        );
        assert_eq!(
            p(b"!snapshot:abc"),
            Ok(TriggerWrite::Remove(Trigger::new(TriggerCmd::Snapshot)))
        );
        let mut l = TriggerList::new();
        l.add(Trigger::new(TriggerCmd::Snapshot)).unwrap();
        assert_eq!(l.add(Trigger::new(TriggerCmd::Snapshot)), Err(libc::EEXIST));
        assert_eq!(l.add(Trigger::new(TriggerCmd::TraceOn)), Ok(()));
        assert_eq!(render(&l, true), "traceon:unlimited\nsnapshot:unlimited\n");
        assert_eq!(
            render(&TriggerList::new(), true),
            "# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event disable_event\n"
        );
        assert_eq!(available_triggers(false, false), AVAILABLE_TRIGGERS);
        assert_eq!(
            available_triggers(true, true),
            "# Available triggers:\n# traceon traceoff snapshot stacktrace enable_event \
             disable_event enable_hist disable_hist hist\n"
        );
    }

    #[test]
    fn parse_rejects() {
        use libc::{EINVAL, ERANGE};
        let cases: &[(&[u8], i32)] = &[
            (b"bogus", EINVAL),
            (b"TRACEON", EINVAL),
            (b"snapshot+1", EINVAL),
            (b"snapshot:x", EINVAL),
            (b"hist:keys=pid", EINVAL),
            (b"traceon if", EINVAL),
            (b"stacktrace if", EINVAL),
            (b"traceon foo", EINVAL),
            (b"traceon:abc", EINVAL),
            (b"traceon:-1", EINVAL),
            (b"traceon:+5", EINVAL),
            (b"traceon:08", EINVAL),
            (b"traceon:0x", EINVAL),
            (b"traceon:5if", EINVAL),
            (b"traceon  :5", EINVAL),
            (b"traceon:5 if", EINVAL),
            (b"traceon:99999999999999999999", ERANGE),
            (b"! traceon", EINVAL),
            (b"!!traceon", EINVAL),
            (b"\n", EINVAL),
            (b"   ", EINVAL),
            (b"\x00traceon", EINVAL),
            (b"traceon if nosuchfield == 1", EINVAL),
            (b"traceon:abc if nosuch == 1", EINVAL),
            (b"enable_event:sched:nosuch", EINVAL),
            (b"enable_event:ftrace:print", EINVAL),
            (b"enable_event:sched", EINVAL),
            (b"enable_event", EINVAL),
            (b"enable_event:", EINVAL),
            (b"enable_event:sched:", EINVAL),
            (b"enable_event::", EINVAL),
            (b"enable_event:sched:sched_wakeup_new:", EINVAL),
            (b"enable_event:sched:sched_wakeup_new:abc", EINVAL),
            (b"enable_event:sched:sched_wakeup_new:unlimited", EINVAL),
            (b"enable_event:sched:sched_wakeup_new 5", EINVAL),
            (b"enable_event:sched:sched_wakeup_new:0x10 if", EINVAL),
            (b"enable_event:sched:\xff", EINVAL),
            (b"!enable_event:sched:nosuch", EINVAL),
            (b"!enable_event:sched", EINVAL),
            (b"!enable_event", EINVAL),
        ];
        for (w, want) in cases {
            assert_eq!(p(w), Err(*want), "{:?}", String::from_utf8_lossy(w));
        }
        assert_eq!(p(&[b' '; PAGE_SIZE]), Err(EINVAL));
        let mut big = b"traceon".to_vec();
        big.resize(PAGE_SIZE - 1, b' ');
        assert!(matches!(p(&big), Ok(TriggerWrite::Add(_))));
        assert_eq!(p(b""), Ok(TriggerWrite::Nothing));
        // the compiler's errno is passed through
        assert_eq!(
            parse_write(b"traceon if x", target_ok, |_| Err(libc::EPERM)),
            Err(libc::EPERM)
        );
        // garbage never panics
        for b in 0..=255u8 {
            let _ = p(&[b]);
            let _ = p(&[b'!', b]);
            let _ = p(&[b't', b'r', b'a', b'c', b'e', b'o', b'n', b':', b]);
            let _ = p(&[
                b'e', b'n', b'a', b'b', b'l', b'e', b'_', b'e', b'v', b'e', b'n', b't', b':', b,
            ]);
        }
    }

    #[test]
    fn removal_ignores_count_and_filter() {
        let rm = |b: &[u8]| match p(b) {
            Ok(TriggerWrite::Remove(t)) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(rm(b"!traceon:abc").cmd, TriggerCmd::TraceOn);
        assert_eq!(rm(b"!traceon foo").cmd, TriggerCmd::TraceOn);
        assert_eq!(rm(b"!traceon if").cmd, TriggerCmd::TraceOn);
        assert_eq!(rm(b"!traceoff:0").cmd, TriggerCmd::TraceOff);
        let t = rm(b"!disable_event:sched:sched_wakeup_new:abc if x");
        assert_eq!(t.cmd.target(), Some(("sched", "sched_wakeup_new")));
        assert_eq!((t.count, t.filter), (None, None));
    }

    fn apply(list: &mut TriggerList, b: &[u8]) -> Result<(), i32> {
        match p(b)? {
            TriggerWrite::Nothing => Ok(()),
            TriggerWrite::Add(t) => list.add(t),
            TriggerWrite::Remove(t) => {
                list.remove(&t);
                Ok(())
            }
        }
    }

    #[test]
    fn rows_37_to_40() {
        let mut l = TriggerList::new();
        assert_eq!(render(&l, false), AVAILABLE_TRIGGERS); // 37
        apply(&mut l, b"traceoff\n").unwrap();
        apply(&mut l, b"stacktrace:3\n").unwrap();
        assert_eq!(
            render(&l, false),
            "stacktrace:count=3\ntraceoff:unlimited\n"
        ); // 38
        assert_eq!(apply(&mut l, b"traceon\n"), Err(libc::EEXIST)); // 39
        assert_eq!(apply(&mut l, b"traceon:2\n"), Err(libc::EEXIST));
        // filter errors win over EEXIST
        assert_eq!(apply(&mut l, b"traceoff if nosuch == 1"), Err(libc::EINVAL));
        for w in [&b"!stacktrace"[..], b"!traceoff:0", b"!traceoff"] {
            assert_eq!(apply(&mut l, w), Ok(())); // 40
        }
        assert!(l.is_empty());
        assert_eq!(render(&l, false), AVAILABLE_TRIGGERS);
        // `!traceon` removes a traceoff trigger (same type)
        apply(&mut l, b"traceoff").unwrap();
        apply(&mut l, b"!traceon").unwrap();
        assert!(l.is_empty());
    }

    #[test]
    fn row_43_and_uniqueness_per_target() {
        let mut l = TriggerList::new();
        apply(&mut l, b"enable_event:sched:sched_process_hang").unwrap();
        assert_eq!(
            apply(&mut l, b"disable_event:sched:sched_process_hang"),
            Err(libc::EEXIST)
        );
        apply(
            &mut l,
            b"disable_event:sched:sched_wakeup_new:0x10 if ip == 1",
        )
        .unwrap();
        assert_eq!(
            render(&l, false),
            "disable_event:sched:sched_wakeup_new:count=16 if ip == 1\n\
             enable_event:sched:sched_process_hang:unlimited\n"
        );
        apply(&mut l, b"!disable_event:sched:sched_process_hang").unwrap();
        assert_eq!(
            render(&l, false),
            "disable_event:sched:sched_wakeup_new:count=16 if ip == 1\n"
        );
        apply(&mut l, b"!enable_event:sched:sched_wakeup_new").unwrap();
        assert_eq!(render(&l, false), AVAILABLE_TRIGGERS);
        // live: one event carries four triggers of different slots
        for w in [
            &b"enable_event:sched:sched_wakeup_new"[..],
            b"traceoff",
            b"disable_event:sched:sched_switch",
            b"stacktrace",
        ] {
            apply(&mut l, w).unwrap();
        }
        assert_eq!(
            render(&l, false),
            "stacktrace:unlimited\ndisable_event:sched:sched_switch:unlimited\n\
             traceoff:unlimited\nenable_event:sched:sched_wakeup_new:unlimited\n"
        );
    }

    #[test]
    fn soft_rows_15_16() {
        let mut s = SoftState::new();
        assert_eq!(s.read(), "0\n");
        s.own_trigger_added(); // echo traceoff > trigger
        assert_eq!(s.read(), "0*\n");
        assert!(s.is_enabled()); // set_event lists it, subsystem reads X
        assert!(!s.records());
        s.user_write(true);
        assert_eq!(s.read(), "1*\n");
        assert!(s.records());
        s.user_write(false);
        assert_eq!(s.read(), "0*\n");
        assert!(s.is_enabled());
        s.user_write(true);
        s.own_trigger_removed(); // !traceoff
        assert_eq!(s.read(), "1\n");
        assert!(s.is_enabled() && s.records());
        // enabled before the trigger: 1*, stays 1 after
        let mut s = SoftState::new();
        s.user_write(true);
        s.own_trigger_added();
        assert_eq!(s.read(), "1*\n");
        s.own_trigger_removed();
        assert_eq!(s.read(), "1\n");
        // off in soft mode, trigger removed: fully disabled
        let mut s = SoftState::new();
        s.own_trigger_added();
        s.own_trigger_removed();
        assert_eq!(s.read(), "0\n");
        assert!(!s.is_enabled());
    }

    #[test]
    fn soft_two_own_triggers_and_mixed_refs() {
        // live: traceoff + stacktrace on hang; removing one keeps 0*
        let mut s = SoftState::new();
        s.own_trigger_added();
        s.own_trigger_added();
        assert_eq!(s.read(), "0*\n");
        s.own_trigger_removed();
        assert_eq!(s.read(), "0*\n");
        s.own_trigger_removed();
        assert_eq!(s.read(), "0\n");
        // live: own traceoff + enable_event from print, fired, removed in
        // either order → 1, then write 0 → 0
        for own_first in [true, false] {
            let mut s = SoftState::new();
            s.own_trigger_added();
            s.soft_ref();
            assert_eq!(s.read(), "0*\n");
            s.fire_enable(true);
            assert_eq!(s.read(), "1*\n");
            if own_first {
                s.own_trigger_removed();
                assert_eq!(s.read(), "1*\n");
                s.soft_unref();
            } else {
                s.soft_unref();
                assert_eq!(s.read(), "1*\n");
                s.own_trigger_removed();
            }
            assert_eq!(s.read(), "1\n");
            s.user_write(false);
            assert_eq!(s.read(), "0\n");
        }
    }

    #[test]
    fn rows_43_44_targets_and_fire() {
        // 43: targets never fired → both read 0 after removal
        let mut hang = SoftState::new();
        hang.soft_ref();
        assert_eq!(hang.read(), "0*\n");
        hang.soft_unref();
        assert_eq!(hang.read(), "0\n");
        // 44
        let mut hang = SoftState::new();
        let mut t = add(b"enable_event:sched:sched_process_hang");
        hang.soft_ref();
        assert_eq!(hang.read(), "0*\n");
        let mut on = true;
        assert_eq!(
            fire(&mut t, &mut on, Some(&mut hang)),
            Action::EnabledTarget
        );
        assert_eq!(hang.read(), "1*\n");
        hang.soft_unref();
        assert_eq!(hang.read(), "1\n");
    }

    #[test]
    fn fire_counts() {
        let mut on = true;
        // live: enable_event:…:2 → count=1 and 1* after one marker; a second
        // marker leaves count=1 (target already enabled)
        let mut tgt = SoftState::new();
        tgt.soft_ref();
        let mut t = add(b"enable_event:sched:sched_wakeup_new:2");
        assert_eq!(fire(&mut t, &mut on, Some(&mut tgt)), Action::EnabledTarget);
        assert_eq!((t.count, tgt.read()), (Some(1), "1*\n"));
        assert_eq!(fire(&mut t, &mut on, Some(&mut tgt)), Action::None);
        assert_eq!(t.count, Some(1));
        let mut d = add(b"disable_event:sched:sched_wakeup_new:2");
        assert_eq!(
            fire(&mut d, &mut on, Some(&mut tgt)),
            Action::DisabledTarget
        );
        assert_eq!((d.count, tgt.read()), (Some(1), "0*\n"));
        assert_eq!(fire(&mut d, &mut on, Some(&mut tgt)), Action::None);
        tgt.user_write(true);
        assert_eq!(
            fire(&mut d, &mut on, Some(&mut tgt)),
            Action::DisabledTarget
        );
        assert_eq!((d.count, tgt.read()), (Some(0), "0*\n"));
        tgt.user_write(true);
        assert_eq!(fire(&mut d, &mut on, Some(&mut tgt)), Action::None);
        assert_eq!(tgt.read(), "1*\n");
        // live: traceoff:2 with tracing_on toggled back between markers
        let mut off = add(b"traceoff:2");
        assert_eq!(fire(&mut off, &mut on, None), Action::TracingOff);
        assert_eq!((off.count, on), (Some(1), false));
        assert_eq!(fire(&mut off, &mut on, None), Action::None);
        assert_eq!(off.count, Some(1));
        on = true;
        assert_eq!(fire(&mut off, &mut on, None), Action::TracingOff);
        on = true;
        assert_eq!(fire(&mut off, &mut on, None), Action::None);
        assert_eq!((off.count, on), (Some(0), true));
        let mut r = String::new();
        render_one(&off, &mut r);
        assert_eq!(r, "traceoff:count=0\n");
        // §8.1: stacktrace:3 fired three (or more) times reads count=0
        let mut st = add(b"stacktrace:3");
        for _ in 0..3 {
            assert_eq!(fire(&mut st, &mut on, None), Action::StackTrace);
        }
        assert_eq!(fire(&mut st, &mut on, None), Action::None);
        assert_eq!(st.count, Some(0));
        // unlimited never decrements; traceon when on does nothing
        let mut u = add(b"traceon");
        assert_eq!(fire(&mut u, &mut on, None), Action::None);
        on = false;
        assert_eq!(fire(&mut u, &mut on, None), Action::TracingOn);
        assert_eq!(u.count, None);
        // target gone
        assert_eq!(fire(&mut t, &mut on, None), Action::None);
    }

    #[test]
    fn row_45_marker_filter_is_callers() {
        // the caller evaluates `buf ~ "*stop*"`; on a match it fires
        let mut t = add(b"traceoff if buf ~ \"*stop*\"");
        assert_eq!(t.filter.as_deref(), Some("buf ~ \"*stop*\""));
        let mut on = true;
        assert_eq!(fire(&mut t, &mut on, None), Action::TracingOff);
        assert!(!on);
    }
}
