//! Histogram triggers (`hist:` in an event's `trigger` file, CONFIG_HIST_TRIGGERS): the
//! language of `kernel/trace/trace_events_hist.c`, as pure data.
//!
//! [`parse`] turns the text after the `hist` command into a [`HistSpec`] (keys, values,
//! variables, sort keys, size, name, pause/continue/clear, the `if` filter text) with the
//! kernel's checks in the kernel's order; a failure carries the errno and, where the kernel
//! logs one, the `error_log` entry's message index and caret position (`err_pos()`: the first
//! occurrence of the offending text in `hist:<command>`). [`HistSpec::trigger_info`] is what
//! the `trigger` file and the `hist` file's header show (`event_hist_trigger_print()`), and
//! [`HistField::eval`] computes a key or value from a record laid out as the format says.
//!
//! Not here (the caller's): the event's other triggers (EEXIST, named histograms, pause and
//! clear of an existing one), the filter compiler and the map.

use std::fmt::Write as _;

use crate::control::filter::{Field, FieldKind, Fields};

/// `TRACING_MAP_KEYS_MAX`, `TRACING_MAP_VALS_MAX` (hitcount included), `TRACING_MAP_VARS_MAX`,
/// `TRACING_MAP_SORT_KEYS_MAX`, `HIST_ACTIONS_MAX`.
pub const KEYS_MAX: usize = 3;
pub const VALS_MAX: usize = 3;
pub const VARS_MAX: usize = 16;
pub const SORT_KEYS_MAX: usize = 2;
pub const ACTIONS_MAX: usize = 8;
/// `TRACING_MAP_BITS_*`: `size=` is rounded up to a power of two between 2^7 and 2^17.
pub const BITS_DEFAULT: u32 = 11;
pub const BITS_MIN: u32 = 7;
pub const BITS_MAX: u32 = 17;
/// `SYNTH_FIELDS_MAX`: parameters of one action.
pub const SYNTH_FIELDS_MAX: usize = 64;
/// `MAX_FILTER_STR_VAL`: the longest string key (with its NUL).
pub const MAX_STR: usize = 256;
/// `HIST_STACKTRACE_DEPTH`.
pub const STACK_DEPTH: usize = 16;
const KEY_SIZE_MAX: usize = MAX_STR + STACK_DEPTH * 8;
const DIV_SHIFT: u32 = 20;

/// `enum hist_field_flags`.
pub mod fl {
    pub const HITCOUNT: u32 = 1 << 0;
    pub const KEY: u32 = 1 << 1;
    pub const STRING: u32 = 1 << 2;
    pub const HEX: u32 = 1 << 3;
    pub const SYM: u32 = 1 << 4;
    pub const SYM_OFFSET: u32 = 1 << 5;
    pub const EXECNAME: u32 = 1 << 6;
    pub const SYSCALL: u32 = 1 << 7;
    pub const STACKTRACE: u32 = 1 << 8;
    pub const LOG2: u32 = 1 << 9;
    pub const TIMESTAMP: u32 = 1 << 10;
    pub const TIMESTAMP_USECS: u32 = 1 << 11;
    pub const VAR: u32 = 1 << 12;
    pub const EXPR: u32 = 1 << 13;
    pub const VAR_REF: u32 = 1 << 14;
    pub const CPU: u32 = 1 << 15;
    pub const ALIAS: u32 = 1 << 16;
    pub const BUCKET: u32 = 1 << 17;
    pub const CONST: u32 = 1 << 18;
    pub const PERCENT: u32 = 1 << 19;
    pub const GRAPH: u32 = 1 << 20;
}

/// The kernel's `err_text[]` for hist triggers, in `HIST_ERR_*` order.
pub const ERR_TEXT: [&str; 49] = [
    "No error",
    "Variable already defined",
    "Variable name not unique, need to use fully qualified name (subsys.event.var) for variable",
    "Too many variables defined",
    "Malformed assignment",
    "Named hist trigger doesn't match existing named trigger (includes variables)",
    "Hist trigger already exists",
    "Can't clear or continue a nonexistent hist trigger",
    "Couldn't set trace_clock",
    "Invalid field modifier",
    "Too many subexpressions (3 max)",
    "Timestamp units in expression don't match",
    "Too many field variables defined",
    "Event file not found",
    "Matching event histogram not found",
    "Couldn't create histogram for field",
    "Couldn't find synthetic variable",
    "Couldn't find synthetic event",
    "Param type doesn't match synthetic event field type",
    "Param count doesn't match synthetic event field count",
    "Couldn't parse field variable",
    "Couldn't create or find variable",
    "For onmax(x) or onchange(x), x must be a variable",
    "Couldn't find onmax or onchange variable",
    "Couldn't create onmax or onchange variable",
    "Couldn't create field variable",
    "Too many action params",
    "Couldn't find param",
    "Invalid action param",
    "No action found",
    "No params found for save()",
    "Can't have more than one save() action per hist",
    "Handler doesn't support action",
    "No closing paren found",
    "Missing subsystem",
    "Invalid subsystem or event name",
    "Using variable references in keys not supported",
    "Couldn't find variable",
    "Couldn't find field",
    "Empty assignment",
    "Invalid sort modifier",
    "Empty sort field",
    "Too many sort fields (Max = 2)",
    "Sort field must be a key or a val",
    "String type can not be an operand in expression",
    "Expecting numeric literal",
    "Unary minus not supported in sub-expressions",
    "Division by zero",
    "Non-hitcount value is required for 'nohitcount'",
];

/// Indices into [`ERR_TEXT`] (`HIST_ERR_*`).
pub mod err {
    pub const DUPLICATE_VAR: usize = 1;
    pub const VAR_NOT_UNIQUE: usize = 2;
    pub const TOO_MANY_VARS: usize = 3;
    pub const MALFORMED_ASSIGNMENT: usize = 4;
    pub const NAMED_MISMATCH: usize = 5;
    pub const TRIGGER_EEXIST: usize = 6;
    pub const TRIGGER_ENOENT_CLEAR: usize = 7;
    pub const SET_CLOCK_FAIL: usize = 8;
    pub const BAD_FIELD_MODIFIER: usize = 9;
    pub const TOO_MANY_SUBEXPR: usize = 10;
    pub const TIMESTAMP_MISMATCH: usize = 11;
    pub const SYNTH_EVENT_NOT_FOUND: usize = 17;
    pub const SYNTH_COUNT_MISMATCH: usize = 19;
    pub const ONX_NOT_VAR: usize = 22;
    pub const ONX_VAR_NOT_FOUND: usize = 23;
    pub const TOO_MANY_PARAMS: usize = 26;
    pub const INVALID_PARAM: usize = 28;
    pub const EVENT_FILE_NOT_FOUND: usize = 13;
    pub const HIST_NOT_FOUND: usize = 14;
    pub const HIST_CREATE_FAIL: usize = 15;
    pub const FIELD_VAR_PARSE_FAIL: usize = 20;
    pub const ACTION_NOT_FOUND: usize = 29;
    pub const NO_SAVE_PARAMS: usize = 30;
    pub const ACTION_MISMATCH: usize = 32;
    pub const NO_CLOSING_PAREN: usize = 33;
    pub const SUBSYS_NOT_FOUND: usize = 34;
    pub const INVALID_SUBSYS_EVENT: usize = 35;
    pub const INVALID_REF_KEY: usize = 36;
    pub const VAR_NOT_FOUND: usize = 37;
    pub const FIELD_NOT_FOUND: usize = 38;
    pub const EMPTY_ASSIGNMENT: usize = 39;
    pub const INVALID_SORT_MODIFIER: usize = 40;
    pub const EMPTY_SORT_FIELD: usize = 41;
    pub const TOO_MANY_SORT_FIELDS: usize = 42;
    pub const INVALID_SORT_FIELD: usize = 43;
    pub const INVALID_STR_OPERAND: usize = 44;
    pub const EXPECT_NUMBER: usize = 45;
    pub const UNARY_MINUS_SUBEXPR: usize = 46;
    pub const DIVISION_BY_ZERO: usize = 47;
    pub const NEED_NOHC_VAL: usize = 48;
}

/// A rejected hist command: the errno, and the `error_log` entry (message index into
/// [`ERR_TEXT`], caret position in [`last_cmd`]) where the kernel writes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistError {
    pub errno: i32,
    pub log: Option<(usize, usize)>,
    /// An entry the kernel logs before `log` on the same failure.
    pub log_before: Option<(usize, usize)>,
}

impl HistError {
    fn plain(errno: i32) -> HistError {
        HistError {
            errno,
            log: None,
            log_before: None,
        }
    }
}

/// The `error_log` command text of a hist write: `hist:` and the text after the command.
pub fn last_cmd(param_and_filter: &str) -> String {
    format!("hist:{param_and_filter}")
}

/// `FIELD_OP_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    None,
    Plus,
    Minus,
    UnaryMinus,
    Div,
    Mult,
}

/// One `struct hist_field`: a key, a value, a variable or an operand of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistField {
    pub flags: u32,
    /// The event field it reads (also set on `.log2`/`.buckets` and the legacy `cpu`).
    pub field: Option<Field>,
    pub operands: Vec<HistField>,
    pub op: Op,
    pub constant: u64,
    /// The variable this field defines (`ts0=…`).
    pub var_name: Option<String>,
    /// An expression's text, or a referenced variable's name.
    pub name: String,
    /// A fully qualified variable reference's subsystem and event.
    pub system: Option<String>,
    pub event: Option<String>,
    pub buckets: u64,
    /// Bytes (a key's aligned to 8).
    pub size: usize,
    pub signed: bool,
    div_multiplier: u64,
}

impl HistField {
    fn new(flags: u32, field: Option<Field>, var_name: Option<&str>) -> HistField {
        HistField {
            flags,
            field,
            operands: Vec::new(),
            op: Op::None,
            constant: 0,
            var_name: var_name.map(str::to_owned),
            name: String::new(),
            system: None,
            event: None,
            buckets: 0,
            size: 0,
            signed: false,
            div_multiplier: 0,
        }
    }

    pub fn has(&self, flags: u32) -> bool {
        self.flags & flags != 0
    }

    /// `hist_field_name()`.
    pub fn field_name(&self, level: u32) -> String {
        if level > 1 {
            return String::new();
        }
        if let Some(f) = &self.field {
            return f.name.clone();
        }
        if self.has(fl::LOG2 | fl::ALIAS | fl::BUCKET) {
            return self
                .operands
                .first()
                .map(|o| o.field_name(level + 1))
                .unwrap_or_default();
        }
        if self.has(fl::CPU) {
            return "common_cpu".into();
        }
        if self.has(fl::EXPR | fl::VAR_REF) {
            return match (&self.system, &self.event) {
                (Some(s), Some(e)) if self.has(fl::VAR_REF) => format!("{s}.{e}.${}", self.name),
                (Some(s), Some(e)) => format!("{s}.{e}.{}", self.name),
                _ => self.name.clone(),
            };
        }
        if self.has(fl::TIMESTAMP) {
            return "common_timestamp".into();
        }
        if self.has(fl::STACKTRACE) {
            return "common_stacktrace".into();
        }
        if self.has(fl::HITCOUNT) {
            return "hitcount".into();
        }
        String::new()
    }

    /// `get_hist_field_flags()`: the modifier shown after a dot.
    fn modifier(&self) -> Option<&'static str> {
        [
            (fl::HEX, "hex"),
            (fl::SYM, "sym"),
            (fl::SYM_OFFSET, "sym-offset"),
            (fl::EXECNAME, "execname"),
            (fl::SYSCALL, "syscall"),
            (fl::LOG2, "log2"),
            (fl::BUCKET, "buckets"),
            (fl::TIMESTAMP_USECS, "usecs"),
            (fl::PERCENT, "percent"),
            (fl::GRAPH, "graph"),
            (fl::STACKTRACE, "stacktrace"),
        ]
        .into_iter()
        .find(|(f, _)| self.has(*f))
        .map(|(_, s)| s)
    }

    /// `hist_field_print()`.
    fn print(&self, out: &mut String) {
        if let Some(v) = &self.var_name {
            let _ = write!(out, "{v}=");
        }
        let name = self.field_name(0);
        if self.has(fl::CPU) {
            out.push_str("common_cpu");
        } else if self.has(fl::CONST) {
            let _ = write!(out, "{}", self.constant);
        } else {
            if self.has(fl::VAR_REF | fl::ALIAS) && self.system.is_none() {
                out.push('$');
            }
            out.push_str(&name);
        }
        if self.flags != 0
            && !self.has(fl::VAR_REF | fl::EXPR | fl::STACKTRACE)
            && let Some(m) = self.modifier()
        {
            let _ = write!(out, ".{m}");
        }
        if self.buckets != 0 {
            let _ = write!(out, "={}", self.buckets);
        }
    }

    /// `expr_field_str()`.
    pub fn expr_field_str(&self, out: &mut String) {
        if self.has(fl::VAR_REF) {
            if self.system.is_none() {
                out.push('$');
            }
        } else if self.has(fl::CONST) {
            let _ = write!(out, "{}", self.constant);
        }
        out.push_str(&self.field_name(0));
        if self.flags != 0
            && !self.has(fl::VAR_REF)
            && let Some(m) = self.modifier()
        {
            let _ = write!(out, ".{m}");
        }
        if self.buckets != 0 {
            let _ = write!(out, "={}", self.buckets);
        }
    }

    /// `expr_str()`.
    fn expr_str(&self) -> String {
        let mut s = String::new();
        if self.operands.is_empty() {
            self.expr_field_str(&mut s);
            return s;
        }
        if self.op == Op::UnaryMinus {
            let mut sub = String::new();
            self.operands[0].expr_field_str(&mut sub);
            // The kernel prints its sub-expression with expr_str() one level down.
            if !self.operands[0].operands.is_empty() {
                sub = self.operands[0].expr_str_level1();
            }
            let _ = write!(s, "-({sub})");
            return s;
        }
        self.binary_expr_str(s)
    }

    fn expr_str_level1(&self) -> String {
        let mut s = String::new();
        if self.op == Op::UnaryMinus || self.operands.len() < 2 {
            self.expr_field_str(&mut s);
            return s;
        }
        self.binary_expr_str(s)
    }

    /// `a<op>b` of a binary expression, its operands printed as fields, appended to `s`.
    fn binary_expr_str(&self, mut s: String) -> String {
        self.operands[0].expr_field_str(&mut s);
        s.push(match self.op {
            Op::Minus => '-',
            Op::Plus => '+',
            Op::Div => '/',
            _ => '*',
        });
        self.operands[1].expr_field_str(&mut s);
        s
    }

    /// Does this field (or an operand) reference a variable (`field_has_hist_vars()`)?
    fn has_var_refs(&self) -> bool {
        self.has(fl::VAR_REF | fl::ALIAS) || self.operands.iter().any(HistField::has_var_refs)
    }

    /// The value this field takes for a record (`hist_fn_call()`); strings and stack traces
    /// are keyed separately (see [`HistField::is_string`]).
    pub fn eval(&self, rec: &[u8], ctx: &EvalContext) -> u64 {
        if self.has(fl::HITCOUNT) {
            return 1;
        }
        if self.has(fl::CONST) {
            return self.constant;
        }
        if self.has(fl::VAR_REF) {
            return ctx.var(self);
        }
        if self.has(fl::ALIAS) {
            return self.operands.first().map_or(0, |o| o.eval(rec, ctx));
        }
        if self.has(fl::EXPR) {
            let a = self.operands.first().map_or(0, |o| o.eval(rec, ctx));
            let b = || self.operands.get(1).map_or(0, |o| o.eval(rec, ctx));
            return match self.op {
                Op::UnaryMinus => a.wrapping_neg(),
                Op::Plus => a.wrapping_add(b()),
                Op::Minus => a.wrapping_sub(b()),
                Op::Mult => a.wrapping_mul(b()),
                Op::Div => div(a, b(), self.operands.get(1)),
                Op::None => a,
            };
        }
        if self.has(fl::LOG2) {
            let v = self.operands.first().map_or(0, |o| o.eval(rec, ctx));
            // ilog2(roundup_pow_of_two(v)); 0 and 1 give 0.
            return if v <= 1 {
                0
            } else {
                u64::from(64 - (v - 1).leading_zeros())
            };
        }
        if self.has(fl::BUCKET) {
            let v = self.operands.first().map_or(0, |o| o.eval(rec, ctx));
            return v / self.buckets.max(1) * self.buckets.max(1);
        }
        if self.has(fl::TIMESTAMP) {
            return if ctx.ts_in_usecs {
                ctx.ts_ns / 1000
            } else {
                ctx.ts_ns
            };
        }
        if self.has(fl::CPU) {
            return u64::from(ctx.cpu);
        }
        if self.has(fl::STACKTRACE) {
            return 0;
        }
        match &self.field {
            Some(f) => read_num(rec, f),
            None => 0,
        }
    }

    /// A string key (`char name[N]`, `__data_loc char[]`, `__rel_loc char[]`).
    pub fn is_string(&self) -> bool {
        self.has(fl::STRING)
    }

    /// The bytes of a string field in `rec`, up to its NUL and at most [`MAX_STR`]` - 1`.
    pub fn string_of<'a>(&self, rec: &'a [u8]) -> &'a [u8] {
        let Some(f) = &self.field else {
            return &[];
        };
        let get = |o: usize, n: usize| rec.get(o..o.saturating_add(n)).unwrap_or(&[]);
        let bytes = match f.kind {
            FieldKind::StaticString => get(f.offset, f.size),
            FieldKind::DynString | FieldKind::RelDynString => {
                let loc = u32::from_le_bytes(get(f.offset, 4).try_into().unwrap_or([0; 4]));
                let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                let off = if f.kind == FieldKind::RelDynString {
                    off + f.offset + f.size
                } else {
                    off
                };
                get(off, len)
            }
            _ => &[],
        };
        let bytes = &bytes[..bytes.len().min(MAX_STR - 1)];
        match bytes.iter().position(|&b| b == 0) {
            Some(n) => &bytes[..n],
            None => bytes,
        }
    }
}

fn div(a: u64, b: u64, divisor: Option<&HistField>) -> u64 {
    if let Some(d) = divisor.filter(|d| d.has(fl::CONST) && d.div_multiplier != 0)
        && a < (1 << DIV_SHIFT)
    {
        return (a * d.div_multiplier + ((1 << DIV_SHIFT) - 1)) >> DIV_SHIFT;
    }
    if b == 0 {
        return u64::MAX;
    }
    if b.is_power_of_two() {
        return a >> b.trailing_zeros();
    }
    a / b
}

/// A numeric field as the kernel's `hist_field_{s,u}{8,16,32,64}` returns it: signed fields
/// sign-extended to 64 bits.
fn read_num(rec: &[u8], f: &Field) -> u64 {
    let Some(b) = rec.get(f.offset..f.offset + f.size) else {
        return 0;
    };
    let mut raw = [0u8; 8];
    raw[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    let v = u64::from_le_bytes(raw);
    match (f.size, f.signed) {
        (1, true) => v as u8 as i8 as i64 as u64,
        (2, true) => v as u16 as i16 as i64 as u64,
        (4, true) => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

/// What a record's evaluation needs besides the record.
pub struct EvalContext<'a> {
    pub cpu: u32,
    /// The record's time stamp on the trace clock.
    pub ts_ns: u64,
    /// `.usecs` anywhere in the histogram turns every `common_timestamp` into microseconds.
    pub ts_in_usecs: bool,
    /// Variable references resolved by the caller.
    pub vars: &'a dyn Fn(&HistField) -> u64,
}

impl EvalContext<'_> {
    fn var(&self, f: &HistField) -> u64 {
        (self.vars)(f)
    }
}

/// One sort key: `tracing_map` field index (0 = hitcount, then the shown values, then the
/// keys) and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub idx: usize,
    pub descending: bool,
}

/// A parsed hist command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistSpec {
    /// `name=<n>` as written (the kernel keeps and prints the whole assignment).
    pub name: Option<String>,
    /// Values: `vals[0]` is hitcount; variables follow the values (`n_vals` counts both).
    pub vals: Vec<HistField>,
    pub n_vars: usize,
    pub keys: Vec<HistField>,
    pub sort: Vec<SortKey>,
    pub map_bits: u32,
    pub clock: String,
    pub pause: bool,
    pub cont: bool,
    pub clear: bool,
    pub no_hitcount: bool,
    pub ts_in_usecs: bool,
    pub enable_timestamps: bool,
    /// The filter text after `if ` (compiled by the caller).
    pub filter: Option<String>,
    /// Handlers and actions, in the order written.
    pub actions: Vec<Action>,
    /// Fields of other events that trace actions pass on (`sys.event.field`, or a field of
    /// the `onmatch()` event): each needs a histogram on that event defining the variable
    /// `synthetic_<field>` (`create_field_var_hist()`), which the caller creates.
    pub field_var_hists: Vec<FieldVarHist>,
    /// `error_log` entries (message, caret) the kernel writes on its way to success: a field
    /// parameter first tried on this event, then found on the `onmatch()` event.
    pub logged: Vec<(usize, usize)>,
}

/// A field of another event an action reads, through a variable `synthetic_<field>` on a
/// histogram of that event with this one's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldVarHist {
    pub system: String,
    pub event: String,
    pub field: String,
}

impl FieldVarHist {
    /// The variable the histogram on the other event defines.
    pub fn var_name(&self) -> String {
        format!("synthetic_{}", self.field)
    }
}

impl HistSpec {
    /// Entries the map holds (`1 << map_bits`).
    pub fn max_entries(&self) -> usize {
        1 << self.map_bits
    }

    /// The named histogram's name (without `name=`).
    pub fn short_name(&self) -> Option<&str> {
        self.name.as_deref().map(|n| n.trim_start_matches("name="))
    }

    /// Values shown in entries: `(index into vals, field)`, hitcount excluded.
    pub fn shown_vals(&self) -> impl Iterator<Item = (usize, &HistField)> {
        self.vals
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, f)| !f.has(fl::VAR | fl::EXPR))
    }

    /// Variables defined by this histogram.
    pub fn vars(&self) -> impl Iterator<Item = &HistField> {
        self.vals.iter().filter(|f| f.has(fl::VAR))
    }

    /// `keys=…:vals=…[:vars]:sort=…` — what two triggers must share to be "the same"
    /// (`hist_trigger_match()` compares fields, variables and sort keys, not size or filter).
    pub fn shape(&self) -> String {
        let mut s = String::new();
        self.print_fields(&mut s);
        for a in &self.actions {
            a.print(&mut s);
        }
        s
    }

    fn print_fields(&self, out: &mut String) {
        out.push_str("keys=");
        for (i, f) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if f.has(fl::STACKTRACE) {
                match &f.field {
                    Some(fd) => {
                        let _ = write!(out, "{}.stacktrace", fd.name);
                    }
                    None => out.push_str("common_stacktrace"),
                }
            } else {
                f.print(out);
            }
        }
        out.push_str(":vals=");
        let mut show_val = false;
        let mut have_var = false;
        for (i, f) in self.vals.iter().enumerate() {
            if f.has(fl::VAR) {
                have_var = true;
                continue;
            }
            if i == 0 {
                if self.no_hitcount {
                    continue;
                }
                out.push_str("hitcount");
            } else {
                if show_val {
                    out.push(',');
                }
                f.print(out);
            }
            show_val = true;
        }
        if have_var {
            out.push(':');
            for (n, f) in self.vars().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                f.print(out);
            }
        }
        out.push_str(":sort=");
        let first_key_idx = self.vals.len() - self.n_vars;
        for (i, k) in self.sort.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if k.idx == 0 {
                out.push_str("hitcount");
            } else if k.idx >= first_key_idx {
                self.keys[k.idx - first_key_idx].print(out);
            } else {
                self.vals[k.idx].print(out);
            }
            if k.descending {
                out.push_str(".descending");
            }
        }
    }

    /// `event_hist_trigger_print()`: the line the `trigger` file and the `hist` header show.
    pub fn trigger_info(&self, paused: bool) -> String {
        let mut out = String::from("hist:");
        if let Some(n) = &self.name {
            let _ = write!(out, "{n}:");
        }
        self.print_fields(&mut out);
        let _ = write!(out, ":size={}", 1u32 << self.map_bits);
        if self.enable_timestamps {
            let _ = write!(out, ":clock={}", self.clock);
        }
        if self.no_hitcount {
            out.push_str(":nohitcount");
        }
        for a in &self.actions {
            a.print(&mut out);
        }
        if let Some(f) = &self.filter {
            let _ = write!(out, " if {f}");
        }
        out.push_str(if paused { " [paused]" } else { " [active]" });
        out.push('\n');
        out
    }

    /// The keys as `create_field_var_hist()` writes them in a new histogram's command.
    pub fn key_list(&self) -> String {
        let mut s = String::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            k.expr_field_str(&mut s);
        }
        s
    }

    /// `compatible_keys()`: as many keys, each of the same size, signedness and kind.
    pub fn keys_compatible(&self, other: &HistSpec) -> bool {
        self.keys.len() == other.keys.len()
            && self.keys.iter().zip(&other.keys).all(|(a, b)| {
                a.size == b.size && a.signed == b.signed && a.is_string() == b.is_string()
            })
    }

    /// `tracing_map` field index `idx` as a key (`Some(key index)`) or a value sum (`None`).
    pub fn key_of_map_idx(&self, idx: usize) -> Option<usize> {
        let first_key_idx = self.vals.len() - self.n_vars;
        (idx >= first_key_idx).then(|| idx - first_key_idx)
    }
}

/// `(system, event, name)` → the flags of a variable defined by some histogram.
pub type VarLookup<'a> = dyn Fn(Option<&str>, Option<&str>, &str) -> Option<u32> + 'a;

/// What the parser asks of the trace array.
pub struct Env<'a> {
    pub fields: &'a Fields,
    /// The event the histogram is on (system, name).
    pub event: (&'a str, &'a str),
    /// A `!hist…` removal (variables may then repeat existing ones).
    pub remove: bool,
    /// Does another hist trigger of this event define variable `name`?
    pub var_exists: &'a dyn Fn(&str) -> bool,
    /// The flags of variable `name` if a hist trigger in the trace array defines it (on
    /// `system.event` when qualified).
    pub var_known: &'a VarLookup<'a>,
    /// How many events of the trace array have a histogram defining variable `name`.
    pub var_events: &'a dyn Fn(&str) -> usize,
    /// Does event `system.event` exist (an `onmatch()` target)?
    pub event_exists: &'a dyn Fn(&str, &str) -> bool,
    /// The number of fields of synthetic event `name`, if it exists.
    pub synth_fields: &'a dyn Fn(&str) -> Option<usize>,
}

/// `HANDLER_*`: when an action runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `onmatch(system.event)`: on every update of an entry.
    OnMatch { system: String, event: String },
    /// `onmax($var)`: when the variable exceeds the entry's maximum.
    OnMax(String),
    /// `onchange($var)`: when the variable changes.
    OnChange(String),
}

/// `ACTION_*`: what an action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `trace(synth,…)` or `synth(…)`: generate a synthetic event.
    Trace,
    /// `save(field,…)`: keep the fields of the record that set the maximum/change.
    Save,
    /// `snapshot()`: take a snapshot of the trace buffer.
    Snapshot,
}

/// One handler and action (`struct action_data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub handler: Handler,
    pub kind: ActionKind,
    /// The word after the handler (`trace`, `save`, a synthetic event's name).
    pub action_name: String,
    /// `trace(<synth>,…)`: the synthetic event named as first parameter.
    pub synth_event: Option<String>,
    /// The parameters as written.
    pub params: Vec<String>,
    /// The parameters as fields (variable references or fields of this event); filled by
    /// [`create_actions`].
    pub args: Vec<HistField>,
}

impl Action {
    /// The synthetic event a trace action generates.
    pub fn synth_name(&self) -> &str {
        self.synth_event.as_deref().unwrap_or(&self.action_name)
    }

    /// The tracked variable's name (without `$`) of `onmax()`/`onchange()`.
    pub fn tracked_var(&self) -> Option<&str> {
        match &self.handler {
            Handler::OnMax(v) | Handler::OnChange(v) => Some(v.trim_start_matches('$')),
            Handler::OnMatch { .. } => None,
        }
    }

    /// `print_actions_spec()` for this action.
    fn print(&self, out: &mut String) {
        match &self.handler {
            Handler::OnMatch { system, event } => {
                let _ = write!(out, ":onmatch({system}.{event}).");
            }
            Handler::OnMax(v) => {
                let _ = write!(out, ":onmax({v}).");
            }
            Handler::OnChange(v) => {
                let _ = write!(out, ":onchange({v}).");
            }
        }
        let _ = write!(out, "{}(", self.action_name);
        if self.kind != ActionKind::Snapshot {
            if let Some(s) = &self.synth_event {
                out.push_str(s);
            }
            for (i, p) in self.params.iter().enumerate() {
                if i > 0 || self.synth_event.is_some() {
                    out.push(',');
                }
                out.push_str(p);
            }
        }
        out.push(')');
    }
}

struct Parser<'a> {
    env: &'a Env<'a>,
    last_cmd: String,
    enable_timestamps: bool,
    ts_in_usecs: bool,
    var_defs: Vec<(String, String)>,
    vars: Vec<HistField>,
    /// The events of the `onmatch()` handlers, where an unqualified variable is looked for
    /// first (`find_match_var()`).
    match_events: Vec<(String, String)>,
}

impl Parser<'_> {
    fn err(&self, kind: usize, at: &str, errno: i32) -> HistError {
        HistError {
            errno,
            log: Some((kind, self.last_cmd.find(at).unwrap_or(0))),
            log_before: None,
        }
    }

    fn err0(&self, kind: usize, errno: i32) -> HistError {
        HistError {
            errno,
            log: Some((kind, 0)),
            log_before: None,
        }
    }
}

/// `strsep()`.
fn strsep<'a>(s: &mut Option<&'a str>, delims: &[char]) -> Option<&'a str> {
    let cur = (*s)?;
    match cur.find(|c| delims.contains(&c)) {
        Some(i) => {
            *s = Some(&cur[i + 1..]);
            Some(&cur[..i])
        }
        None => {
            *s = None;
            Some(cur)
        }
    }
}

/// `kstrtoull(s, 0)`/`kstrtoul(s, 0)`: base auto-detected, one trailing newline allowed.
fn kstrtoull(s: &str) -> Result<u64, i32> {
    let s = s.strip_prefix('+').unwrap_or(s);
    let s = s.strip_suffix('\n').unwrap_or(s);
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(libc::EINVAL);
    }
    u64::from_str_radix(digits, radix).map_err(|_| libc::ERANGE)
}

fn is_kspace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Parses the text after the `hist` command (`param_and_filter`, already stripped, `None`
/// when there was none) as `event_hist_trigger_parse()` and `create_hist_data()` do.
pub fn parse(param_and_filter: Option<&str>, env: &Env) -> Result<HistSpec, HistError> {
    let Some(pf) = param_and_filter.filter(|p| !p.is_empty()) else {
        return Err(HistError::plain(libc::EINVAL));
    };
    let mut p = Parser {
        env,
        last_cmd: last_cmd(pf),
        enable_timestamps: false,
        ts_in_usecs: false,
        var_defs: Vec::new(),
        vars: Vec::new(),
        match_events: Vec::new(),
    };
    // Separate `k:v [if filter]`, allowing whitespace in the trigger.
    let b = pf.as_bytes();
    let mut from = 0;
    let mut split = None;
    while let Some(i) = pf[from..].find("if").map(|i| i + from) {
        if i == 0 {
            return Err(HistError::plain(libc::EINVAL));
        }
        if b[i - 1] != b' ' && b[i - 1] != b'\t' {
            from = i + 1;
            continue;
        }
        if i + 3 >= b.len() {
            return Err(HistError::plain(libc::EINVAL));
        }
        if b[i + 2] != b' ' && b[i + 2] != b'\t' {
            from = i + 1;
            continue;
        }
        split = Some(i);
        break;
    }
    let (param, filter) = match split {
        Some(i) => {
            let f = pf[i..].trim_matches(is_kspace);
            // set_trigger_filter(): `if`, one separator, the expression.
            let expr = f[2..].strip_prefix([' ', '\t']).unwrap_or(&f[2..]);
            (
                pf[..i - 1].trim_matches(is_kspace).to_owned(),
                Some(expr.to_owned()),
            )
        }
        None => (pf.to_owned(), None),
    };
    // `.sym-offset` becomes `.symXoffset` so that `-` reads as an operator only.
    let param = param.replace(".sym-offset", ".symXoffset");

    // parse_hist_trigger_attrs()
    let mut keys_str = None;
    let mut vals_str = None;
    let mut sort_str = None;
    let mut spec = HistSpec {
        name: None,
        vals: Vec::new(),
        n_vars: 0,
        keys: Vec::new(),
        sort: Vec::new(),
        map_bits: 0,
        clock: "global".into(),
        pause: false,
        cont: false,
        clear: false,
        no_hitcount: false,
        ts_in_usecs: false,
        enable_timestamps: false,
        filter,
        actions: Vec::new(),
        field_var_hists: Vec::new(),
        logged: Vec::new(),
    };
    let mut assignments: Vec<&str> = Vec::new();
    let mut action_strs: Vec<&str> = Vec::new();
    let mut rest = Some(param.as_str());
    while let Some(s) = strsep(&mut rest, &[':']) {
        if let Some(eq) = s.find('=') {
            if s[eq + 1..].is_empty() {
                return Err(p.err(err::EMPTY_ASSIGNMENT, s, libc::EINVAL));
            }
            if let Some(v) = s.strip_prefix("keys=").or_else(|| s.strip_prefix("key=")) {
                keys_str = Some(v);
            } else if let Some(v) = ["vals=", "val=", "values="]
                .iter()
                .find_map(|pre| s.strip_prefix(pre))
            {
                vals_str = Some(v);
            } else if let Some(v) = s.strip_prefix("sort=") {
                sort_str = Some(v);
            } else if s.starts_with("name=") {
                spec.name = Some(s.to_owned());
            } else if let Some(v) = s.strip_prefix("clock=") {
                spec.clock = v.trim_matches(is_kspace).to_owned();
            } else if let Some(v) = s.strip_prefix("size=") {
                let size = kstrtoull(v).map_err(HistError::plain)?;
                let bits = size.max(1).next_power_of_two().trailing_zeros();
                if size == 0 || !(BITS_MIN..=BITS_MAX).contains(&bits) {
                    return Err(HistError::plain(libc::EINVAL));
                }
                spec.map_bits = bits;
            } else {
                if assignments.len() == VARS_MAX {
                    return Err(p.err(err::TOO_MANY_VARS, s, libc::EINVAL));
                }
                assignments.push(s);
            }
        } else if s == "nohitcount" || s == "NOHC" {
            spec.no_hitcount = true;
        } else if s == "pause" {
            spec.pause = true;
        } else if s == "cont" || s == "continue" {
            spec.cont = true;
        } else if s == "clear" {
            spec.clear = true;
        } else if action_strs.len() < ACTIONS_MAX
            && ["onmatch(", "onmax(", "onchange("]
                .iter()
                .any(|pre| s.starts_with(pre))
        {
            action_strs.push(s);
        } else {
            return Err(HistError::plain(libc::EINVAL));
        }
    }
    let Some(keys_str) = keys_str else {
        return Err(HistError::plain(libc::EINVAL));
    };
    if spec.map_bits == 0 {
        spec.map_bits = BITS_DEFAULT;
    }
    // parse_actions()
    for a in action_strs {
        spec.actions.push(p.parse_action(a)?);
    }
    p.match_events = match_events(&spec.actions);

    // parse_var_defs()
    for a in &assignments {
        let mut rest = Some(*a);
        for _ in 0..VARS_MAX {
            let Some(field_str) = strsep(&mut rest, &[',']) else {
                break;
            };
            let mut fs = Some(field_str);
            let var_name = strsep(&mut fs, &['=']).unwrap_or("");
            let Some(expr) = fs else {
                return Err(p.err(err::MALFORMED_ASSIGNMENT, var_name, libc::EINVAL));
            };
            if p.var_defs.len() == VARS_MAX {
                return Err(p.err(err::TOO_MANY_VARS, var_name, libc::EINVAL));
            }
            p.var_defs.push((var_name.to_owned(), expr.to_owned()));
        }
    }

    // create_val_fields()
    spec.vals.push(HistField {
        size: 8,
        ..HistField::new(fl::HITCOUNT, None, None)
    });
    let mut j = 1;
    let mut n_hitcount = 0;
    let mut rest = vals_str;
    let mut i = 0;
    let mut val_err = None;
    while i < VALS_MAX && j < VALS_MAX {
        i += 1;
        let Some(field_str) = strsep(&mut rest, &[',']) else {
            break;
        };
        if field_str == "hitcount" {
            n_hitcount += 1;
            if n_hitcount == 1 {
                continue;
            }
        }
        j += 1;
        match p.create_val_field(field_str, None, 0) {
            Ok(f) => spec.vals.push(f),
            Err(e) => {
                val_err = Some(e);
                break;
            }
        }
    }
    if val_err.is_none() && rest.is_some_and(|r| r != "hitcount") {
        val_err = Some(HistError::plain(libc::EINVAL));
    }
    if j == 1 && spec.no_hitcount {
        return Err(p.err0(err::NEED_NOHC_VAL, libc::ENOENT));
    }
    if let Some(e) = val_err {
        return Err(e);
    }

    // create_var_fields()
    for (name, expr) in p.var_defs.clone() {
        if (p.vars.iter().any(|v| v.var_name.as_deref() == Some(&name)) || (env.var_exists)(&name))
            && !env.remove
        {
            return Err(p.err(err::DUPLICATE_VAR, &name, libc::EINVAL));
        }
        let mut f = p.create_val_field(&expr, Some(&name), fl::VAR)?;
        if f.has(fl::EXECNAME) {
            f.flags = fl::STRING | fl::VAR | fl::EXECNAME;
            f.size = MAX_STR;
            f.signed = false;
        }
        p.vars.push(f.clone());
        spec.vals.push(f);
        spec.n_vars += 1;
    }

    // create_key_fields()
    let mut rest = Some(keys_str);
    let mut key_size = 0usize;
    for _ in 0..KEYS_MAX {
        let Some(field_str) = strsep(&mut rest, &[',']) else {
            break;
        };
        let mut f = if field_str == "stacktrace" {
            HistField::new(fl::KEY | fl::STACKTRACE, None, None)
        } else {
            let mut n = 0;
            let f = p.parse_expr(field_str, fl::KEY, None, &mut n)?;
            if f.has_var_refs() {
                return Err(p.err(err::INVALID_REF_KEY, field_str, libc::EINVAL));
            }
            f
        };
        let size = if f.has(fl::STACKTRACE) && f.field.is_none() {
            STACK_DEPTH * 8
        } else {
            f.size
        };
        f.size = size.div_ceil(8) * 8;
        key_size += f.size;
        if key_size > KEY_SIZE_MAX {
            return Err(HistError::plain(libc::EINVAL));
        }
        spec.keys.push(f);
    }
    if rest.is_some() {
        return Err(HistError::plain(libc::EINVAL));
    }

    // create_sort_keys()
    spec.sort = vec![SortKey {
        idx: 0,
        descending: false,
    }];
    if let Some(sort_str) = sort_str {
        spec.sort.clear();
        let mut rest = Some(sort_str);
        for i in 0..SORT_KEYS_MAX {
            let Some(field_str) = strsep(&mut rest, &[',']) else {
                break;
            };
            if field_str.is_empty() {
                return Err(p.err(err::EMPTY_SORT_FIELD, "sort=", libc::EINVAL));
            }
            if i == SORT_KEYS_MAX - 1 && rest.is_some() {
                return Err(p.err(err::TOO_MANY_SORT_FIELDS, "sort=", libc::EINVAL));
            }
            let mut fs = Some(field_str);
            let field_name = strsep(&mut fs, &['.']).unwrap_or("");
            if field_name.is_empty() {
                return Err(p.err(err::EMPTY_SORT_FIELD, "sort=", libc::EINVAL));
            }
            let descending = match fs {
                None => false,
                Some("descending") => true,
                Some("ascending") => false,
                Some(m) => return Err(p.err(err::INVALID_SORT_MODIFIER, m, libc::EINVAL)),
            };
            if field_name == "hitcount" {
                spec.sort.push(SortKey { idx: 0, descending });
                continue;
            }
            // tracing_map indices: hitcount, the values, then the keys (variables skipped).
            let found = spec
                .vals
                .iter()
                .skip(1)
                .chain(spec.keys.iter())
                .filter(|f| !f.has(fl::VAR))
                .position(|f| f.field_name(0) == field_name);
            match found {
                Some(k) => spec.sort.push(SortKey {
                    idx: k + 1,
                    descending,
                }),
                None => {
                    return Err(p.err(err::INVALID_SORT_FIELD, field_name, libc::EINVAL));
                }
            }
        }
    }
    spec.ts_in_usecs = p.ts_in_usecs;
    spec.enable_timestamps = p.enable_timestamps;
    Ok(spec)
}

impl Parser<'_> {
    /// `onmatch_parse()`/`track_data_parse()` and `action_parse()`: syntax only.
    fn parse_action(&mut self, s: &str) -> Result<Action, HistError> {
        let (handler, rest) = if let Some(r) = s.strip_prefix("onmatch(") {
            let mut rest = Some(r);
            let match_event = strsep(&mut rest, &[')']).unwrap_or("");
            let Some(rest) = rest else {
                return Err(self.err(err::NO_CLOSING_PAREN, match_event, libc::EINVAL));
            };
            let mut me = Some(match_event);
            let system = strsep(&mut me, &['.']).unwrap_or("");
            let Some(event) = me else {
                return Err(self.err(err::SUBSYS_NOT_FOUND, system, libc::EINVAL));
            };
            if !(self.env.event_exists)(system, event) {
                return Err(self.err(err::INVALID_SUBSYS_EVENT, event, libc::EINVAL));
            }
            let h = Handler::OnMatch {
                system: system.to_owned(),
                event: event.to_owned(),
            };
            (h, rest)
        } else {
            let (r, max) = match s.strip_prefix("onmax(") {
                Some(r) => (r, true),
                None => (s.strip_prefix("onchange(").unwrap_or(s), false),
            };
            let mut rest = Some(r);
            let var = strsep(&mut rest, &[')']).unwrap_or("");
            let Some(rest) = rest else {
                return Err(HistError::plain(libc::EINVAL));
            };
            let h = if max {
                Handler::OnMax(var.to_owned())
            } else {
                Handler::OnChange(var.to_owned())
            };
            (h, rest)
        };
        // action_parse()
        let mut rest = Some(rest);
        strsep(&mut rest, &['.']);
        let Some(r) = rest else {
            return Err(self.err0(err::ACTION_NOT_FOUND, libc::EINVAL));
        };
        let mut rest = Some(r);
        let action_name = strsep(&mut rest, &['(']).unwrap_or("");
        let Some(r) = rest else {
            return Err(self.err0(err::ACTION_NOT_FOUND, libc::EINVAL));
        };
        let onmatch = matches!(handler, Handler::OnMatch { .. });
        let mut rest = Some(r);
        let params = strsep(&mut rest, &[')']);
        let mut action = Action {
            handler,
            kind: ActionKind::Trace,
            action_name: action_name.to_owned(),
            synth_event: None,
            params: Vec::new(),
            args: Vec::new(),
        };
        if action_name.starts_with("save") {
            let Some(params) = params.filter(|_| rest.is_some()) else {
                return Err(self.err0(err::NO_SAVE_PARAMS, libc::EINVAL));
            };
            self.parse_action_params(params, &mut action)?;
            if onmatch {
                return Err(self.err(err::ACTION_MISMATCH, action_name, libc::EINVAL));
            }
            action.kind = ActionKind::Save;
        } else if action_name.starts_with("snapshot") {
            if rest.is_none() {
                return Err(self.err(err::NO_CLOSING_PAREN, params.unwrap_or(""), libc::EINVAL));
            }
            if onmatch {
                return Err(self.err(err::ACTION_MISMATCH, action_name, libc::EINVAL));
            }
            action.kind = ActionKind::Snapshot;
        } else {
            let trace_keyword = action_name.starts_with("trace");
            if let Some(params) = params {
                self.parse_action_params(params, &mut action)?;
            }
            if trace_keyword && !action.params.is_empty() {
                action.synth_event = Some(action.params.remove(0));
            }
        }
        Ok(action)
    }

    /// `parse_action_params()`.
    fn parse_action_params(&self, params: &str, action: &mut Action) -> Result<(), HistError> {
        let mut rest = Some(params);
        while let Some(param) = strsep(&mut rest, &[',']) {
            if action.params.len() >= SYNTH_FIELDS_MAX {
                return Err(self.err0(err::TOO_MANY_PARAMS, libc::EINVAL));
            }
            let param = param.trim_matches(is_kspace);
            if param.len() < 2 {
                return Err(self.err(err::INVALID_PARAM, param, libc::EINVAL));
            }
            action.params.push(param.to_owned());
        }
        Ok(())
    }

    /// `__create_val_field()`.
    fn create_val_field(
        &mut self,
        field_str: &str,
        var_name: Option<&str>,
        flags: u32,
    ) -> Result<HistField, HistError> {
        let mut n = 0;
        let f = self.parse_expr(field_str, flags, var_name, &mut n)?;
        let bad = if f.has(fl::VAR) {
            fl::GRAPH | fl::PERCENT | fl::BUCKET | fl::LOG2
        } else {
            fl::BUCKET | fl::LOG2 | fl::SYM | fl::SYM_OFFSET | fl::SYSCALL | fl::STACKTRACE
        };
        if f.has(bad) {
            return Err(self.err(err::BAD_FIELD_MODIFIER, field_str, libc::EINVAL));
        }
        Ok(f)
    }

    /// `contains_operator()`: the root operator, rightmost of the lowest precedence.
    fn contains_operator(s: &str) -> (Op, Option<usize>) {
        let minus = s.rfind('-');
        if minus == Some(0) {
            return (Op::UnaryMinus, minus);
        }
        let plus = s.rfind('+');
        if plus.is_some() || minus.is_some() {
            return if plus.map(|p| p as isize) > minus.map(|m| m as isize) {
                (Op::Plus, plus)
            } else {
                (Op::Minus, minus)
            };
        }
        let divp = s.rfind('/');
        let mult = s.rfind('*');
        if mult.map(|p| p as isize) > divp.map(|m| m as isize) {
            (Op::Mult, mult)
        } else if divp.is_some() {
            (Op::Div, divp)
        } else {
            (Op::None, None)
        }
    }

    /// `parse_expr()`.
    fn parse_expr(
        &mut self,
        s: &str,
        flags: u32,
        var_name: Option<&str>,
        n_subexprs: &mut u32,
    ) -> Result<HistField, HistError> {
        if *n_subexprs > 3 {
            return Err(self.err(err::TOO_MANY_SUBEXPR, s, libc::EINVAL));
        }
        let (op, sep) = Self::contains_operator(s);
        match op {
            Op::None => return self.parse_atom(s, flags, var_name),
            Op::UnaryMinus => return self.parse_unary(s, flags, var_name, n_subexprs),
            _ => {}
        }
        *n_subexprs += 1;
        let sep = sep.unwrap_or(0);
        let (s1, s2) = (&s[..sep], &s[sep + 1..]);
        if s1.is_empty() || s2.is_empty() {
            return Err(HistError::plain(libc::EINVAL));
        }
        let a = self.parse_expr(s1, 0, None, n_subexprs)?;
        if a.has(fl::STRING) {
            return Err(self.err(err::INVALID_STR_OPERAND, s1, libc::EINVAL));
        }
        let b = self.parse_expr(s2, 0, None, n_subexprs)?;
        if b.has(fl::STRING) {
            return Err(self.err(err::INVALID_STR_OPERAND, s2, libc::EINVAL));
        }
        // check_expr_operands(): both in microseconds or neither.
        let units = |f: &HistField| self.var_flags(f) & fl::TIMESTAMP_USECS;
        if units(&a) != units(&b) {
            return Err(self.err0(err::TIMESTAMP_MISMATCH, libc::EINVAL));
        }
        let af = self.var_flags(&a);
        let bf = self.var_flags(&b);
        let combine = af & bf & fl::CONST != 0;
        let mut e = HistField::new(
            flags
                | if combine { fl::CONST } else { fl::EXPR }
                | (a.flags & (fl::TIMESTAMP | fl::TIMESTAMP_USECS)),
            None,
            var_name,
        );
        e.op = op;
        let mut b = b;
        if op == Op::Div && bf & fl::CONST != 0 {
            let divisor = if b.has(fl::CONST) {
                b.constant
            } else {
                self.var_constant(&b)
            };
            if divisor == 0 {
                return Err(self.err(err::DIVISION_BY_ZERO, s2, libc::EDOM));
            }
            b.constant = divisor;
            if !divisor.is_power_of_two() && divisor <= (1 << DIV_SHIFT) {
                b.div_multiplier = (1u64 << DIV_SHIFT) / divisor;
            }
        }
        e.size = a.size;
        e.signed = a.signed;
        e.operands = vec![a, b];
        if combine {
            // Both sides constant (or variables holding constants): fold at parse time.
            let mut folded = e.clone();
            folded.flags = (folded.flags & !fl::CONST) | fl::EXPR;
            for o in &mut folded.operands {
                if o.has(fl::VAR_REF | fl::ALIAS) {
                    o.flags = fl::CONST;
                    o.constant = self.var_constant(o);
                }
            }
            let ctx = EvalContext {
                cpu: 0,
                ts_ns: 0,
                ts_in_usecs: false,
                vars: &|_| 0,
            };
            e.constant = folded.eval(&[], &ctx);
            e.operands.clear();
            e.size = 8;
        }
        e.name = e.expr_str();
        Ok(e)
    }

    /// The flags of a variable a reference points at (the operand's own otherwise).
    fn var_flags(&self, f: &HistField) -> u32 {
        if !f.has(fl::VAR_REF | fl::ALIAS) {
            return f.flags;
        }
        if f.system.is_none()
            && let Some(v) = self
                .vars
                .iter()
                .find(|v| v.var_name.as_deref() == Some(&f.name))
        {
            return v.flags;
        }
        let (s, e) = (f.system.as_deref(), f.event.as_deref());
        (self.env.var_known)(s, e, &f.name).unwrap_or(f.flags)
    }

    fn var_constant(&self, f: &HistField) -> u64 {
        self.vars
            .iter()
            .find(|v| v.var_name.as_deref() == Some(&f.name))
            .map_or(0, |v| v.constant)
    }

    /// `parse_unary()`: `-(expr)` only.
    fn parse_unary(
        &mut self,
        s: &str,
        flags: u32,
        var_name: Option<&str>,
        n_subexprs: &mut u32,
    ) -> Result<HistField, HistError> {
        *n_subexprs += 1;
        if *n_subexprs > 3 {
            return Err(self.err(err::TOO_MANY_SUBEXPR, s, libc::EINVAL));
        }
        let s = &s[1..];
        if !s.contains('(') {
            return Err(HistError::plain(libc::EINVAL));
        }
        let s = &s[1..];
        let Some(close) = s.rfind(')') else {
            return Err(HistError::plain(libc::EINVAL));
        };
        if close + 1 != s.len() {
            return Err(self.err(err::UNARY_MINUS_SUBEXPR, s, libc::EINVAL));
        }
        let inner = &s[..close];
        let a = self.parse_expr(inner, 0, None, n_subexprs)?;
        if a.has(fl::STRING) {
            return Err(self.err(err::INVALID_STR_OPERAND, inner, libc::EINVAL));
        }
        let mut e = HistField::new(
            flags | fl::EXPR | (a.flags & (fl::TIMESTAMP | fl::TIMESTAMP_USECS)),
            None,
            var_name,
        );
        e.op = Op::UnaryMinus;
        e.size = a.size;
        e.signed = a.signed;
        e.operands = vec![a];
        e.name = e.expr_str();
        Ok(e)
    }

    /// `parse_atom()`: a constant, a variable reference or a field with its modifier.
    fn parse_atom(
        &mut self,
        s: &str,
        mut flags: u32,
        var_name: Option<&str>,
    ) -> Result<HistField, HistError> {
        if s.starts_with(|c: char| c.is_ascii_digit()) {
            let Ok(v) = kstrtoull(s) else {
                return Err(self.err(err::EXPECT_NUMBER, s, libc::EINVAL));
            };
            let mut f = HistField::new(flags | fl::CONST, None, var_name);
            f.constant = v;
            f.size = 8;
            return Ok(f);
        }
        let (mut system, mut event, mut var) = (None, None, s);
        if let Some(d1) = s.find('.')
            && let Some(d2) = s[d1 + 1..].find('.')
        {
            system = Some(&s[..d1]);
            event = Some(&s[d1 + 1..d1 + 1 + d2]);
            var = &s[d1 + 2 + d2..];
        }
        let mut s = s;
        // local_field_var_ref(): `$x` naming a plain-field variable of this histogram.
        let local = if system.is_none() && event.is_none() && var.len() >= 2 {
            var.strip_prefix('$').and_then(|name| {
                self.var_defs
                    .iter()
                    .find(|(n, e)| {
                        n == name
                            && Self::contains_operator(e).0 == Op::None
                            && !(e.len() >= 2 && e.starts_with('$'))
                    })
                    .map(|(_, e)| e.clone())
            })
        } else {
            None
        };
        let local_owned;
        match local {
            Some(e) => {
                local_owned = e;
                s = &local_owned;
            }
            None => {
                if var.len() >= 2 && var.starts_with('$') {
                    let name = &var[1..];
                    let own = system.is_none()
                        && self
                            .vars
                            .iter()
                            .any(|v| v.var_name.as_deref() == Some(name));
                    if !own && !self.var_found(system, event, name)? {
                        return Err(self.err(err::VAR_NOT_FOUND, name, libc::EINVAL));
                    }
                    let mut r = HistField::new(fl::VAR_REF, None, None);
                    r.name = name.to_owned();
                    r.system = system.map(str::to_owned);
                    r.event = event.map(str::to_owned);
                    r.size = 8;
                    if let Some(v) = var_name {
                        let mut alias = HistField::new(fl::ALIAS | fl::VAR, None, Some(v));
                        alias.name = name.to_owned();
                        alias.size = 8;
                        alias.operands = vec![r];
                        return Ok(alias);
                    }
                    return Ok(r);
                }
            }
        }
        let (field, buckets) = self.parse_field(s, &mut flags)?;
        self.create_hist_field(field, flags, var_name, buckets)
    }

    /// `find_event_var()`: is variable `name` defined by another histogram? Unqualified, it
    /// is looked for on the `onmatch()` events, then on every event, and must be defined on
    /// one event only (`VAR_NOT_UNIQUE`, logged before the `VAR_NOT_FOUND` that follows).
    fn var_found(
        &self,
        system: Option<&str>,
        event: Option<&str>,
        name: &str,
    ) -> Result<bool, HistError> {
        if system.is_some() && event.is_some() {
            return Ok((self.env.var_known)(system, event, name).is_some());
        }
        let not_unique = || {
            let mut e = self.err(err::VAR_NOT_FOUND, name, libc::EINVAL);
            e.log_before = self.err(err::VAR_NOT_UNIQUE, name, libc::EINVAL).log;
            e
        };
        let on_match = self
            .match_events
            .iter()
            .filter(|(s, e)| (self.env.var_known)(Some(s), Some(e), name).is_some())
            .count();
        match on_match {
            0 => {}
            1 => return Ok(true),
            _ => return Err(not_unique()),
        }
        match (self.env.var_events)(name) {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(not_unique()),
        }
    }

    /// `parse_field()`: the field name and its modifier.
    fn parse_field(
        &mut self,
        field_str: &str,
        flags: &mut u32,
    ) -> Result<(Option<Field>, u64), HistError> {
        let mut rest = Some(field_str);
        let field_name = strsep(&mut rest, &['.']).unwrap_or("");
        let mut buckets = 0;
        let mut stack_modifier = false;
        if let Some(m) = rest {
            let bad = |p: &Self| Err(p.err(err::BAD_FIELD_MODIFIER, m, libc::EINVAL));
            match m {
                "hex" => *flags |= fl::HEX,
                "sym" => *flags |= fl::SYM,
                "symXoffset" => *flags |= fl::SYM_OFFSET,
                "execname" if field_name == "common_pid" => *flags |= fl::EXECNAME,
                "syscall" => *flags |= fl::SYSCALL,
                "stacktrace" => {
                    *flags |= fl::STACKTRACE;
                    stack_modifier = true;
                }
                "log2" => *flags |= fl::LOG2,
                "usecs" => *flags |= fl::TIMESTAMP_USECS,
                _ if m.starts_with("bucket") => {
                    let n = m[6..].strip_prefix('s').unwrap_or(&m[6..]);
                    let Some(n) = n.strip_prefix('=') else {
                        return bad(self);
                    };
                    match kstrtoull(n) {
                        Ok(b) if b != 0 => buckets = b,
                        _ => return bad(self),
                    }
                    *flags |= fl::BUCKET;
                }
                _ if m.starts_with("percent") => {
                    if *flags & (fl::VAR | fl::KEY) != 0 {
                        return bad(self);
                    }
                    *flags |= fl::PERCENT;
                }
                _ if m.starts_with("graph") => {
                    if *flags & (fl::VAR | fl::KEY) != 0 {
                        return bad(self);
                    }
                    *flags |= fl::GRAPH;
                }
                _ => return bad(self),
            }
        }
        let mut field = None;
        match field_name {
            "common_timestamp" => {
                *flags |= fl::TIMESTAMP;
                self.enable_timestamps = true;
                if *flags & fl::TIMESTAMP_USECS != 0 {
                    self.ts_in_usecs = true;
                }
            }
            "common_stacktrace" => *flags |= fl::STACKTRACE,
            "common_cpu" => *flags |= fl::CPU,
            "hitcount" => *flags |= fl::HITCOUNT,
            _ => match self.env.fields.find(field_name.as_bytes()) {
                Some(f) if f.size != 0 => field = Some(f),
                Some(f) if f.kind == FieldKind::Cpu => {
                    *flags |= fl::CPU;
                    field = Some(f);
                }
                Some(f) if f.kind == FieldKind::Stacktrace => *flags |= fl::STACKTRACE,
                _ => return Err(self.err(err::FIELD_NOT_FOUND, field_name, libc::EINVAL)),
            },
        }
        if stack_modifier && field.is_none() {
            return Err(self.err(err::BAD_FIELD_MODIFIER, field_str, libc::EINVAL));
        }
        if stack_modifier {
            // No event field of ours holds a stack trace (FILTER_STACKTRACE).
            return Err(self.err(err::BAD_FIELD_MODIFIER, field_str, libc::EINVAL));
        }
        Ok((field, buckets))
    }

    /// `create_hist_field()`.
    fn create_hist_field(
        &mut self,
        field: Option<Field>,
        flags: u32,
        var_name: Option<&str>,
        buckets: u64,
    ) -> Result<HistField, HistError> {
        let mut f = HistField::new(flags, field.clone(), var_name);
        f.buckets = buckets;
        if flags & fl::HITCOUNT != 0
            || flags & fl::TIMESTAMP != 0 && flags & (fl::LOG2 | fl::BUCKET) == 0
        {
            f.size = 8;
            return Ok(f);
        }
        if flags & fl::STACKTRACE != 0 {
            f.size = STACK_DEPTH * 8;
            return Ok(f);
        }
        if flags & (fl::LOG2 | fl::BUCKET) != 0 {
            let inner = flags & !(fl::LOG2 | fl::BUCKET);
            let op = self.create_hist_field(field, inner, None, 0)?;
            f.size = op.size;
            f.signed = op.signed;
            f.operands = vec![op];
            return Ok(f);
        }
        if flags & fl::CPU != 0 {
            f.size = 4;
            return Ok(f);
        }
        let Some(fd) = field else {
            return Ok(f);
        };
        match fd.kind {
            FieldKind::StaticString => {
                f.flags |= fl::STRING;
                f.size = fd.size;
            }
            FieldKind::DynString | FieldKind::RelDynString => {
                f.flags |= fl::STRING;
                f.size = MAX_STR;
            }
            _ => {
                if ![1, 2, 4, 8].contains(&fd.size) {
                    return Err(HistError::plain(libc::ENOMEM));
                }
                f.size = fd.size;
                f.signed = fd.signed;
            }
        }
        Ok(f)
    }
}

/// The distinct events of the `onmatch()` handlers among `actions`.
fn match_events(actions: &[Action]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in actions {
        if let Handler::OnMatch { system, event } = &a.handler
            && !out.iter().any(|(s, e)| s == system && e == event)
        {
            out.push((system.clone(), event.clone()));
        }
    }
    out
}

/// `create_actions()`: resolves each action's parameters against the histogram (its own
/// variables, other histograms' variables, this event's fields) and checks the synthetic
/// event. Run after `parse` once the histogram is known to be new.
pub fn create_actions(
    spec: &mut HistSpec,
    param_and_filter: &str,
    env: &Env,
) -> Result<(), HistError> {
    let mut p = Parser {
        env,
        last_cmd: last_cmd(param_and_filter),
        enable_timestamps: false,
        ts_in_usecs: false,
        var_defs: Vec::new(),
        vars: spec.vars().cloned().collect(),
        match_events: match_events(&spec.actions),
    };
    let own_vars: Vec<String> = spec.vars().filter_map(|v| v.var_name.clone()).collect();
    let own_var = |name: &str| own_vars.iter().any(|v| v == name);
    let mut actions = std::mem::take(&mut spec.actions);
    for a in &mut actions {
        if let Some(var) = a.tracked_var().map(str::to_owned) {
            // track_data_create(): the tracked value must be one of this histogram's variables.
            if !a.handler_var_str().starts_with('$') {
                return Err(p.err(err::ONX_NOT_VAR, a.handler_var_str(), libc::EINVAL));
            }
            if !own_var(&var) {
                return Err(p.err(err::ONX_VAR_NOT_FOUND, a.handler_var_str(), libc::EINVAL));
            }
        }
        if a.kind == ActionKind::Snapshot {
            continue;
        }
        if a.kind == ActionKind::Trace {
            let synth = a.synth_name().to_owned();
            let Some(n_fields) = (env.synth_fields)(&synth) else {
                return Err(p.err(err::SYNTH_EVENT_NOT_FOUND, &synth, libc::EINVAL));
            };
            if n_fields != a.params.len() {
                return Err(p.err(err::SYNTH_COUNT_MISMATCH, &synth, libc::EINVAL));
            }
        }
        let mut args = Vec::new();
        for param in &a.params {
            let mut n = 0;
            let f = if a.kind == ActionKind::Trace && !param.contains('$') {
                p.trace_field_param(
                    param,
                    &a.handler,
                    &mut spec.field_var_hists,
                    &mut spec.logged,
                )?
            } else if param.contains('$') {
                p.parse_atom(param, 0, None)?
            } else {
                p.parse_expr(param, 0, None, &mut n)?
            };
            args.push(f);
        }
        a.args = args;
    }
    spec.actions = actions;
    Ok(())
}

impl Parser<'_> {
    /// `trace_action_create_field_var()`: a field parameter of a trace action. A field of
    /// this event (unqualified, or qualified with this event's name) is read from the record;
    /// `sys.event.field` of another event, or an unqualified name this event lacks in an
    /// `onmatch()` action, becomes a reference to `synthetic_<field>` on that event, whose
    /// histogram the caller creates ([`FieldVarHist`]).
    fn trace_field_param(
        &mut self,
        param: &str,
        handler: &Handler,
        requests: &mut Vec<FieldVarHist>,
        logged: &mut Vec<(usize, usize)>,
    ) -> Result<HistField, HistError> {
        let mut rest = Some(param);
        let first = strsep(&mut rest, &['.']).unwrap_or("");
        let (system, event, field) = match rest {
            None => (None, None, param),
            Some(r) => {
                let mut r = Some(r);
                let event = strsep(&mut r, &['.']).unwrap_or("");
                let Some(field) = r else {
                    return Err(HistError::plain(libc::EINVAL));
                };
                (Some(first), Some(event), field)
            }
        };
        let on_target = match (system, event) {
            (Some(s), Some(e)) => (s, e) == self.env.event,
            _ => true,
        };
        let (system, event) = match (system, event) {
            _ if on_target => match self.parse_atom(field, 0, None) {
                Ok(f) => return Ok(f),
                Err(e) => {
                    // create_field_var() logs the parse failure after parse_field()'s own;
                    // an onmatch() action then looks for the field on the matched event.
                    let parse_fail = self.err(err::FIELD_VAR_PARSE_FAIL, field, e.errno);
                    match (system, handler) {
                        (None, Handler::OnMatch { system, event }) => {
                            logged.extend(e.log.into_iter().chain(parse_fail.log));
                            (system.as_str(), event.as_str())
                        }
                        _ => {
                            return Err(HistError {
                                log_before: e.log,
                                ..parse_fail
                            });
                        }
                    }
                }
            },
            (Some(s), Some(e)) => (s, e),
            _ => return Err(HistError::plain(libc::EINVAL)),
        };
        if !(self.env.event_exists)(system, event) {
            return Err(self.err(err::EVENT_FILE_NOT_FOUND, field, libc::EINVAL));
        }
        let req = FieldVarHist {
            system: system.to_owned(),
            event: event.to_owned(),
            field: field.to_owned(),
        };
        let mut r = HistField::new(fl::VAR_REF, None, None);
        r.name = req.var_name();
        r.system = Some(req.system.clone());
        r.event = Some(req.event.clone());
        r.size = 8;
        if !requests.contains(&req) {
            requests.push(req);
        }
        Ok(r)
    }
}

impl Action {
    fn handler_var_str(&self) -> &str {
        match &self.handler {
            Handler::OnMax(v) | Handler::OnChange(v) => v,
            Handler::OnMatch { .. } => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields {
        Fields::from_format(
            "name: ev\nID: 1\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:unsigned long call_site;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:size_t bytes_req;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:char comm[16];\toffset:24;\tsize:16;\tsigned:0;\n\
\tfield:__data_loc char[] name;\toffset:40;\tsize:4;\tsigned:0;\n\n\
print fmt: \"\"\n",
        )
    }

    fn run(text: &str) -> Result<HistSpec, HistError> {
        let f = fields();
        let env = Env {
            fields: &f,
            event: ("kmem", "kmalloc"),
            remove: false,
            var_exists: &|_| false,
            var_known: &|_, _, _| None,
            var_events: &|_| 0,
            event_exists: &|s, e| (s, e) == ("sched", "sched_waking"),
            synth_fields: &|n| (n == "lat").then_some(2),
        };
        parse(Some(text), &env).and_then(|mut s| {
            create_actions(&mut s, text, &env)?;
            Ok(s)
        })
    }

    fn info(text: &str) -> String {
        run(text).unwrap().trigger_info(false)
    }

    fn log(text: &str) -> (i32, &'static str, usize) {
        let e = run(text).unwrap_err();
        let (k, pos) = e.log.expect("logged");
        (e.errno, ERR_TEXT[k], pos)
    }

    #[test]
    fn defaults_read_back_as_the_kernel_prints_them() {
        assert_eq!(
            info("keys=common_pid"),
            "hist:keys=common_pid:vals=hitcount:sort=hitcount:size=2048 [active]\n"
        );
        assert_eq!(
            info("key=call_site.sym:val=bytes_req:sort=bytes_req.descending:size=100"),
            "hist:keys=call_site.sym:vals=hitcount,bytes_req:sort=bytes_req.descending:size=128 [active]\n"
        );
        assert_eq!(
            info(
                "keys=common_pid.execname,bytes_req.log2:vals=hitcount:sort=common_pid,hitcount.descending if bytes_req > 3"
            ),
            "hist:keys=common_pid.execname,bytes_req.log2:vals=hitcount:sort=common_pid.execname,hitcount.descending:size=2048 if bytes_req > 3 [active]\n"
        );
        assert_eq!(
            info("keys=bytes_req.buckets=100,common_cpu:name=foo"),
            "hist:name=foo:keys=bytes_req.buckets=100,common_cpu:vals=hitcount:sort=hitcount:size=2048 [active]\n"
        );
        assert_eq!(
            info("keys=call_site.sym-offset:vals=bytes_req.percent,hitcount"),
            "hist:keys=call_site.sym-offset:vals=hitcount,bytes_req.percent:sort=hitcount:size=2048 [active]\n"
        );
        assert_eq!(
            info("keys=common_stacktrace:vals=bytes_req:nohitcount"),
            "hist:keys=common_stacktrace:vals=bytes_req:sort=hitcount:size=2048:nohitcount [active]\n"
        );
        assert_eq!(
            info("keys=common_pid:ts0=common_timestamp.usecs"),
            "hist:keys=common_pid:vals=hitcount:ts0=common_timestamp.usecs:sort=hitcount:size=2048:clock=global [active]\n"
        );
        assert_eq!(
            info("keys=comm:vals=bytes_req*2"),
            "hist:keys=comm:vals=hitcount,bytes_req*2:sort=hitcount:size=2048 [active]\n"
        );
    }

    #[test]
    fn limits_and_plain_errors() {
        assert_eq!(run("vals=bytes_req").unwrap_err().errno, libc::EINVAL);
        assert_eq!(run("keys=a,b,c,d").unwrap_err().errno, libc::EINVAL);
        assert!(run("keys=common_pid,bytes_req,call_site").is_ok());
        assert_eq!(
            run("keys=common_pid,bytes_req,call_site,comm").unwrap_err(),
            HistError::plain(libc::EINVAL)
        );
        assert_eq!(
            run("keys=common_pid:size=64").unwrap_err().errno,
            libc::EINVAL
        );
        assert_eq!(
            run("keys=common_pid:size=abc").unwrap_err().errno,
            libc::EINVAL
        );
        assert_eq!(run("keys=common_pid:size=131072").unwrap().map_bits, 17);
        assert_eq!(
            run("keys=common_pid:bogus").unwrap_err(),
            HistError::plain(libc::EINVAL)
        );
        assert_eq!(
            run("keys=common_pid:vals=bytes_req,call_site,common_pid").unwrap_err(),
            HistError::plain(libc::EINVAL)
        );
        assert!(run("keys=common_pid if").is_err());
    }

    #[test]
    fn logged_errors_have_the_kernels_text_and_caret() {
        // Positions are offsets in `hist:<text>`.
        assert_eq!(
            log("keys=nosuch"),
            (libc::EINVAL, "Couldn't find field", 10)
        );
        assert_eq!(
            log("keys=common_pid.bogus"),
            (libc::EINVAL, "Invalid field modifier", 21)
        );
        assert_eq!(
            log("keys=common_pid:sort=bogus"),
            (libc::EINVAL, "Sort field must be a key or a val", 26)
        );
        assert_eq!(
            log("keys=common_pid:sort=hitcount.up"),
            (libc::EINVAL, "Invalid sort modifier", 35)
        );
        assert_eq!(
            log("keys=common_pid:sort=hitcount,common_pid,hitcount"),
            (libc::EINVAL, "Too many sort fields (Max = 2)", 21)
        );
        assert_eq!(
            log("keys=common_pid:vals="),
            (libc::EINVAL, "Empty assignment", 21)
        );
        assert_eq!(
            log("keys=common_pid:nohitcount"),
            (
                libc::ENOENT,
                "Non-hitcount value is required for 'nohitcount'",
                0
            )
        );
        assert_eq!(
            log("keys=common_pid.percent"),
            (libc::EINVAL, "Invalid field modifier", 21)
        );
        assert_eq!(
            log("keys=common_pid:vals=bytes_req.log2"),
            (libc::EINVAL, "Invalid field modifier", 26)
        );
        assert_eq!(
            log("keys=common_pid:x=bytes_req/0"),
            (libc::EDOM, "Division by zero", 33)
        );
        assert_eq!(
            log("keys=common_pid:vals=$nosuch"),
            (libc::EINVAL, "Couldn't find variable", 27)
        );
        assert_eq!(
            log("keys=common_pid:vals=-(bytes_req)+1"),
            (
                libc::EINVAL,
                "Unary minus not supported in sub-expressions",
                28
            )
        );
        assert_eq!(
            log("keys=common_pid:x=comm+1"),
            (
                libc::EINVAL,
                "String type can not be an operand in expression",
                10
            )
        );
        assert_eq!(
            log("keys=common_pid:a=1:b=2:a=3"),
            (libc::EINVAL, "Variable already defined", 21)
        );
    }

    #[test]
    fn actions_read_back_and_fail_as_the_kernels() {
        assert_eq!(
            info("keys=common_pid:x=bytes_req:onmatch(sched.sched_waking).lat($x,bytes_req)"),
            "hist:keys=common_pid:vals=hitcount:x=bytes_req:sort=hitcount:size=2048:onmatch(sched.sched_waking).lat($x,bytes_req) [active]\n"
        );
        assert_eq!(
            info("keys=common_pid:x=bytes_req:onmatch(sched.sched_waking).trace(lat,$x,call_site)"),
            "hist:keys=common_pid:vals=hitcount:x=bytes_req:sort=hitcount:size=2048:onmatch(sched.sched_waking).trace(lat,$x,call_site) [active]\n"
        );
        assert_eq!(
            info("keys=common_pid:x=bytes_req:onmax($x).save(call_site,bytes_req)"),
            "hist:keys=common_pid:vals=hitcount:x=bytes_req:sort=hitcount:size=2048:onmax($x).save(call_site,bytes_req) [active]\n"
        );
        assert_eq!(
            log("keys=common_pid:onmatch(nosuch.ev).lat($x)"),
            (libc::EINVAL, "Invalid subsystem or event name", 36)
        );
        assert_eq!(
            log("keys=common_pid:onmatch(sched).lat($x)"),
            (libc::EINVAL, "Missing subsystem", 29)
        );
        assert_eq!(
            log("keys=common_pid:x=1:onmatch(sched.sched_waking).nosuch($x)"),
            (libc::EINVAL, "Couldn't find synthetic event", 53)
        );
        assert_eq!(
            log("keys=common_pid:x=1:onmatch(sched.sched_waking).lat($x)"),
            (
                libc::EINVAL,
                "Param count doesn't match synthetic event field count",
                53
            )
        );
        assert_eq!(
            log("keys=common_pid:x=1:onmatch(sched.sched_waking).save($x)"),
            (libc::EINVAL, "Handler doesn't support action", 53)
        );
        assert_eq!(
            log("keys=common_pid:x=1:onmax(x).save(bytes_req)"),
            (
                libc::EINVAL,
                "For onmax(x) or onchange(x), x must be a variable",
                21
            )
        );
        assert_eq!(
            log("keys=common_pid:onmatch(sched.sched_waking)"),
            (libc::EINVAL, "No action found", 0)
        );
    }

    #[test]
    fn evaluation_follows_the_kernels_functions() {
        let spec = run("keys=bytes_req.log2,common_pid:x=bytes_req/3,y=bytes_req/4,z=8/2").unwrap();
        let mut rec = vec![0u8; 48];
        rec[4..8].copy_from_slice(&(-1i32).to_le_bytes());
        rec[16..24].copy_from_slice(&1000u64.to_le_bytes());
        let ctx = EvalContext {
            cpu: 1,
            ts_ns: 5_000,
            ts_in_usecs: false,
            vars: &|_| 0,
        };
        assert_eq!(spec.keys[0].eval(&rec, &ctx), 10);
        assert_eq!(spec.keys[1].eval(&rec, &ctx), u64::MAX);
        let vars: Vec<u64> = spec.vars().map(|v| v.eval(&rec, &ctx)).collect();
        assert_eq!(vars, [334, 250, 4]);
        assert!(spec.vals[3].has(fl::CONST));
    }
}
