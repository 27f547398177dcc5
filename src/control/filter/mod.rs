//! Event filter expressions (spec §7): parsing and error reporting; the compiled program and
//! its evaluation are in `program.rs`.
//!
//! This is a faithful port of the kernel's `trace_events_filter.c` (Linux 6.18):
//! `calc_stack()` (paren/quote pre-check with its odd -1/-2/-3 errnos),
//! `predicate_parse()` (the three-pass branch program, so `&&`/`||`/`!` scoping
//! and the refused odd forms such as a dangling `&&` behave exactly alike),
//! `parse_pred()` (field lookup, operators, values, caret positions) and the
//! predicate functions (numeric compares by size/signedness, string regex
//! matchers with their buffer-length quirks, `glob_match`, CPU/COMM pseudo fields).
//!
//! Everything here is pure: the caller owns the filter state, the error_log and
//! the file contents. Input is raw bytes (non-UTF-8 is fine); nothing panics.
//! Character classes follow the kernel's Latin-1 `ctype` table (e.g. 0xA0 is a
//! space, 0xC0..=0xFF minus 0xD7/0xF7 are letters).

mod program;

use program::{Entry, MatchKind, OPS, Op, Pred, Regex, StrSource};
pub use program::{Filter, RecordContext, glob_match};

/// errno values used by the filter code.
const EPERM: i32 = libc::EPERM;
const ENOENT: i32 = libc::ENOENT;
const ESRCH: i32 = libc::ESRCH;
const EINVAL: i32 = libc::EINVAL;

/// Writes of this many bytes or more are refused with EINVAL (PAGE_SIZE).
pub const MAX_WRITE: usize = 4096;
/// Longest quoted string operand + 1 (`MAX_FILTER_STR_VAL`).
const MAX_FILTER_STR_VAL: usize = 256;
/// `TASK_COMM_LEN`.
const TASK_COMM_LEN: usize = 16;
/// error_log location string for filter errors (§7.5).
pub const LOG_LOCATION: &str = "event filter parse error";

/// Kernel parse-error messages (`err_text[]`), verbatim.
pub mod msg {
    pub const INVALID_OP: &str = "Invalid operator";
    pub const TOO_MANY_OPEN: &str = "Too many '('";
    pub const TOO_MANY_CLOSE: &str = "Too few '('";
    pub const MISSING_QUOTE: &str = "Missing matching quote";
    pub const MISSING_BRACE_OPEN: &str = "Missing '{'";
    pub const MISSING_BRACE_CLOSE: &str = "Missing '}'";
    pub const OPERAND_TOO_LONG: &str = "Operand too long";
    pub const EXPECT_STRING: &str = "Expecting string field";
    pub const EXPECT_DIGIT: &str = "Expecting numeric field";
    pub const ILLEGAL_FIELD_OP: &str = "Illegal operation for field type";
    pub const FIELD_NOT_FOUND: &str = "Field not found";
    pub const ILLEGAL_INTVAL: &str = "Illegal integer value";
    pub const BAD_SUBSYS_FILTER: &str = "Couldn't find or set field in one of a subsystem's events";
    pub const TOO_MANY_PREDS: &str = "Too many terms in predicate expression";
    pub const INVALID_FILTER: &str = "Meaningless filter expression";
    pub const INVALID_CPULIST: &str = "Invalid cpulist";
    pub const IP_FIELD_ONLY: &str = "Only 'ip' field is supported for function trace";
    pub const INVALID_VALUE: &str = "Invalid value (did you forget quotes)?";
    pub const NO_FUNCTION: &str = "Function not found";
    pub const ERRNO: &str = "Error";
    pub const NO_FILTER: &str = "No filter found";
}

// ---------------------------------------------------------------------------
// Kernel ctype (lib/ctype.c, Latin-1)
// ---------------------------------------------------------------------------

fn k_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

fn k_isdigit(c: u8) -> bool {
    c.is_ascii_digit()
}

fn k_isalnum(c: u8) -> bool {
    c.is_ascii_alphanumeric() || (c >= 0xc0 && c != 0xd7 && c != 0xf7)
}

/// Byte at `i` of a C string held in `s` (NUL past the end).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// The C string the kernel sees: everything up to the first NUL.
fn cstr(text: &[u8]) -> &[u8] {
    match text.iter().position(|&b| b == 0) {
        Some(n) => &text[..n],
        None => text,
    }
}

/// `strstrip()` as used on the write buffer: what remains stored (leading
/// whitespace kept, trailing whitespace removed) and the fully stripped view.
fn strip(text: &[u8]) -> (&[u8], &[u8]) {
    let s = cstr(text);
    let mut end = s.len();
    while end > 0 && k_isspace(s[end - 1]) {
        end -= 1;
    }
    let stored = &s[..end];
    let mut start = 0;
    while start < stored.len() && k_isspace(stored[start]) {
        start += 1;
    }
    (stored, &stored[start..])
}

// ---------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------

/// How the kernel classifies a field (`filter_assign_type()` plus generic kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Numeric (`FILTER_OTHER`).
    Other,
    /// `char name[N]` (and `char buf[]`, size 0).
    StaticString,
    /// `__data_loc char[]`.
    DynString,
    /// `__rel_loc char[]`.
    RelDynString,
    /// `char *` / `const char *`.
    PtrString,
    /// `__data_loc cpumask_t`.
    Cpumask,
    /// Generic `CPU`/`cpu`/`common_cpu`.
    Cpu,
    /// Generic `COMM`/`comm`.
    Comm,
    /// Generic `STACKTRACE`/`stacktrace`.
    Stacktrace,
}

impl FieldKind {
    fn is_string(self) -> bool {
        matches!(
            self,
            FieldKind::StaticString
                | FieldKind::DynString
                | FieldKind::RelDynString
                | FieldKind::PtrString
                | FieldKind::Comm
        )
    }
}

/// One field of an event record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The kernel's type string (array suffix folded back in: `char[16]`).
    pub type_name: String,
    pub kind: FieldKind,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
}

fn assign_kind(ty: &str) -> FieldKind {
    if ty.contains("__data_loc") {
        if ty.contains("char") {
            return FieldKind::DynString;
        }
        if ty.contains("cpumask_t") {
            return FieldKind::Cpumask;
        }
    }
    if ty.contains("__rel_loc") && ty.contains("char") {
        return FieldKind::RelDynString;
    }
    if ty.contains('[') && ty.contains("char") {
        return FieldKind::StaticString;
    }
    if ty == "char *" || ty == "const char *" {
        return FieldKind::PtrString;
    }
    FieldKind::Other
}

/// The fields an event offers, parsed from its `format` text.
///
/// Lookup order is the kernel's: the event's own fields, then the generic
/// pseudo fields (`CPU`, `cpu`, `common_cpu`, `COMM`, `comm`, `stacktrace`,
/// `STACKTRACE`), then the common fields (the first block of the format).
#[derive(Clone, Debug, Default)]
pub struct Fields {
    common: Vec<Field>,
    event: Vec<Field>,
}

fn generic_field(name: &str) -> Option<Field> {
    let (kind, ty, signed) = match name {
        "CPU" | "cpu" | "common_cpu" => (FieldKind::Cpu, "int", true),
        "COMM" | "comm" => (FieldKind::Comm, "char *", false),
        "stacktrace" | "STACKTRACE" => (FieldKind::Stacktrace, "char *", false),
        _ => return None,
    };
    Some(Field {
        name: name.to_string(),
        type_name: ty.to_string(),
        kind,
        offset: 0,
        size: 0,
        signed,
    })
}

fn num_after(line: &str, key: &str) -> Option<usize> {
    let p = line.find(key)? + key.len();
    let rest = &line[p..];
    let end = rest.find(';').unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Parse the declaration part of a `field:` line into (type, name).
fn parse_decl(decl: &str) -> Option<(String, String)> {
    let decl = decl.trim();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // `type name[len]` (the array suffix belongs to the type) unless it is a
    // `__data_loc`/`__rel_loc` declaration, whose `[]` sits in the type already.
    let (head, suffix) = match (decl.ends_with(']'), decl.rfind('[')) {
        (true, Some(b)) if !decl[..b].ends_with(|c: char| !is_ident(c)) => (&decl[..b], &decl[b..]),
        _ => (decl, ""),
    };
    let start = head
        .char_indices()
        .rev()
        .find(|&(_, c)| !is_ident(c))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let name = &head[start..];
    if name.is_empty() {
        return None;
    }
    let ty = format!("{}{}", head[..start].trim_end(), suffix);
    Some((ty, name.to_string()))
}

impl Fields {
    /// Parse `\tfield:<decl>;\toffset:N;\tsize:N;\tsigned:N;` lines. Fields
    /// before the first blank line after `format:` are the common fields.
    pub fn from_format(format: &str) -> Fields {
        let mut f = Fields::default();
        let mut in_common = true;
        let mut seen_field = false;
        for line in format.lines() {
            let t = line.trim();
            if t.is_empty() {
                if seen_field {
                    in_common = false;
                }
                continue;
            }
            let Some(rest) = t.strip_prefix("field:") else {
                continue;
            };
            let Some(semi) = rest.find(';') else { continue };
            let Some((type_name, name)) = parse_decl(&rest[..semi]) else {
                continue;
            };
            let field = Field {
                kind: assign_kind(&type_name),
                offset: num_after(t, "offset:").unwrap_or(0),
                size: num_after(t, "size:").unwrap_or(0),
                signed: num_after(t, "signed:").unwrap_or(0) != 0,
                type_name,
                name,
            };
            seen_field = true;
            if in_common {
                f.common.push(field);
            } else {
                f.event.push(field);
            }
        }
        f
    }

    /// Build from explicit lists (common fields, then the event's own).
    pub fn new(common: Vec<Field>, event: Vec<Field>) -> Fields {
        Fields { common, event }
    }

    /// `trace_find_event_field()`: event fields, generic fields, common fields.
    pub fn find(&self, name: &[u8]) -> Option<Field> {
        let name = std::str::from_utf8(name).ok()?;
        if let Some(f) = self.event.iter().find(|f| f.name == name) {
            return Some(f.clone());
        }
        if let Some(f) = generic_field(name) {
            return Some(f);
        }
        self.common.iter().find(|f| f.name == name).cloned()
    }

    /// The event's own fields, in format order.
    pub fn event_fields(&self) -> &[Field] {
        &self.event
    }

    /// The common fields, in format order.
    pub fn common_fields(&self) -> &[Field] {
        &self.common
    }
}

// ---------------------------------------------------------------------------
// Errors and text
// ---------------------------------------------------------------------------

/// Why a filter did not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The (positive) errno the write fails with.
    pub errno: i32,
    /// The kernel's message, or `None` for the `Error: (0)` case.
    pub message: Option<&'static str>,
    /// Unclamped caret position (the filter file clamps it, error_log does not).
    pub pos: usize,
    /// False only for the up-front refusal (4096+ bytes): the old filter stays,
    /// nothing is logged. When true the event's filter becomes the error record
    /// (`error_text`), filtering is off, and one error_log entry is added.
    pub recorded: bool,
}

impl FilterError {
    fn new(errno: i32, message: Option<&'static str>, pos: usize) -> Self {
        FilterError {
            errno,
            message,
            pos,
            recorded: true,
        }
    }

    /// error_log pieces: (location, message, caret pos). The command is the
    /// stored filter string (`stored_bytes`). For the `Error: (0)` case the
    /// kernel logs message `Error` at position 0.
    pub fn log_entry(&self) -> (&'static str, &'static str, usize) {
        match self.message {
            Some(m) => (LOG_LOCATION, m, self.pos),
            None => (LOG_LOCATION, msg::ERRNO, 0),
        }
    }
}

/// What the kernel stores for a write of `text`: cut at the first NUL,
/// trailing whitespace stripped, leading whitespace kept (no newline added).
pub fn stored_bytes(text: &[u8]) -> Vec<u8> {
    strip(text).0.to_vec()
}

/// What the event `filter` file reads after a successful write of `text`:
/// the stored string plus `\n` (lossy UTF-8; see `stored_bytes` for exact bytes).
pub fn stored_text(text: &[u8]) -> String {
    let mut v = stored_bytes(text);
    v.push(b'\n');
    String::from_utf8_lossy(&v).into_owned()
}

/// What the event `filter` file reads after a failed write, given the stored
/// string (`stored_bytes`) and the error (exact bytes):
/// `<stored>\n<caret>\nparse_error: <msg>\n\n` or `<stored>\nError: (0)\n\n`.
pub fn error_bytes(stored: &[u8], err: &FilterError) -> Vec<u8> {
    let mut out = stored.to_vec();
    match err.message {
        Some(m) => {
            let col = err.pos.min(stored.len());
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', col));
            out.extend_from_slice(b"^\nparse_error: ");
            out.extend_from_slice(m.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        None => out.extend_from_slice(b"\nError: (0)\n\n"),
    }
    out
}

/// `error_bytes` as a String (lossy for non-UTF-8 stored text).
pub fn error_text(stored: &str, err: &FilterError) -> String {
    String::from_utf8_lossy(&error_bytes(stored.as_bytes(), err)).into_owned()
}

/// The caret line of an error_log entry: 11 spaces (`  Command: `), `pos`
/// spaces, `^` (no newline).
pub fn log_caret_line(pos: usize) -> String {
    let mut s = " ".repeat(11 + pos);
    s.push('^');
    s
}

// ---------------------------------------------------------------------------
// Integers (kstrtoull / kstrtoll, base 0)
// ---------------------------------------------------------------------------

fn kstrtoull(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"+").unwrap_or(s);
    let (base, digits) = if at(s, 0) == b'0' {
        if at(s, 1).eq_ignore_ascii_case(&b'x') && at(s, 2).is_ascii_hexdigit() {
            (16u64, &s[2..])
        } else {
            (8u64, s)
        }
    } else {
        (10u64, s)
    };
    let mut res: u64 = 0;
    let mut n = 0;
    let mut overflow = false;
    for &c in digits {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u64,
            b'a'..=b'f' => (c - b'a' + 10) as u64,
            b'A'..=b'F' => (c - b'A' + 10) as u64,
            _ => break,
        };
        if v >= base {
            break;
        }
        match res.checked_mul(base).and_then(|r| r.checked_add(v)) {
            Some(r) => res = r,
            None => {
                overflow = true;
                res = res.wrapping_mul(base).wrapping_add(v);
            }
        }
        n += 1;
    }
    if overflow || n == 0 {
        return None;
    }
    let mut rest = &digits[n..];
    if rest.first() == Some(&b'\n') {
        rest = &rest[1..];
    }
    if !rest.is_empty() {
        return None;
    }
    Some(res)
}

fn kstrtoll(s: &[u8]) -> Option<i64> {
    if let Some(r) = s.strip_prefix(b"-") {
        let t = kstrtoull(r)?;
        let neg = (t as i64).wrapping_neg();
        if neg > 0 {
            return None;
        }
        Some(neg)
    } else {
        let t = kstrtoull(s)?;
        if (t as i64) < 0 {
            return None;
        }
        Some(t as i64)
    }
}

// ---------------------------------------------------------------------------
// CPU lists
// ---------------------------------------------------------------------------

/// `nr_cpu_ids` of this machine (configured CPUs).
pub fn nr_cpu_ids() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    if n < 1 { 1 } else { n as usize }
}

/// `bitmap_parselist()` for a cpumask of `nbits` bits.
fn parse_cpulist(s: &[u8], nbits: usize) -> Option<Vec<bool>> {
    let mut mask = vec![false; nbits];
    let num = |p: &[u8]| -> Option<usize> {
        if p == b"N" {
            return nbits.checked_sub(1);
        }
        if p.is_empty() || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(p).ok()?.parse().ok()
    };
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    for region in s.split(|&c| c == b',') {
        let (range, group) = match region.iter().position(|&c| c == b':') {
            Some(p) => (&region[..p], Some(&region[p + 1..])),
            None => (region, None),
        };
        let (a, b) = match range.iter().position(|&c| c == b'-') {
            Some(p) => (num(&range[..p])?, num(&range[p + 1..])?),
            None => {
                let a = num(range)?;
                (a, a)
            }
        };
        let (used, glen) = match group {
            Some(g) => {
                let p = g.iter().position(|&c| c == b'/')?;
                (num(&g[..p])?, num(&g[p + 1..])?)
            }
            None => (1, 1),
        };
        if a > b || glen == 0 || used > glen || b >= nbits {
            return None;
        }
        let mut c = a;
        while c <= b {
            if (c - a) % glen < used {
                mask[c] = true;
            }
            c += 1;
        }
    }
    Some(mask)
}

/// `filter_build_regex()`: for `~` classify the glob (a leading `!` inverts).
fn build_regex(op: Op, pattern: &[u8]) -> (Regex, bool) {
    if op != Op::Glob {
        return (
            Regex {
                kind: MatchKind::Full,
                pattern: pattern.to_vec(),
            },
            false,
        );
    }
    let (not, buff) = match pattern.strip_prefix(b"!") {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let mut kind = MatchKind::Full;
    let mut end = buff.len();
    if !k_isdigit(at(buff, 0)) {
        let len = buff.len();
        for (i, &c) in buff.iter().enumerate() {
            if c == b'*' {
                if i == 0 {
                    kind = MatchKind::End;
                } else if i == len - 1 {
                    kind = if kind == MatchKind::End {
                        MatchKind::Middle
                    } else {
                        MatchKind::Front
                    };
                    end = i;
                    break;
                } else {
                    kind = MatchKind::Glob;
                    break;
                }
            } else if matches!(c, b'[' | b'?' | b'\\') {
                kind = MatchKind::Glob;
                break;
            }
        }
    }
    let start = if kind != MatchKind::Glob && at(buff, 0) == b'*' {
        1
    } else {
        0
    };
    let pat = if kind == MatchKind::Glob {
        buff.to_vec()
    } else {
        buff[start.min(end)..end].to_vec()
    };
    (Regex { kind, pattern: pat }, not)
}

/// A parse failure inside the predicate loop: errno plus optional message/pos.
type PErr = FilterError;

fn perr(errno: i32, m: &'static str, pos: usize) -> PErr {
    FilterError::new(errno, Some(m), pos)
}

/// `parse_pred()`: `s` is the text from the predicate start; `pos` is the
/// kernel's (off-by-one) base position. Returns the length consumed.
fn parse_pred(s: &[u8], pos: usize, fields: &Fields) -> Result<(usize, Pred), PErr> {
    let ein = |m, i: usize| perr(EINVAL, m, pos + i);
    let mut i = 0;
    while k_isspace(at(s, i)) {
        i += 1;
    }
    let start = i;
    while k_isalnum(at(s, i)) || at(s, i) == b'_' {
        i += 1;
    }
    if i == start {
        return Err(FilterError::new(EPERM, None, 0));
    }
    let Some(field) = fields.find(&s[start..i]) else {
        return Err(ein(msg::FIELD_NOT_FOUND, i));
    };
    if s[i.min(s.len())..].starts_with(b".ustring") {
        i += 8;
    }
    let function = s[i.min(s.len())..].starts_with(b".function");
    if function {
        i += 9;
    }
    while k_isspace(at(s, i)) {
        i += 1;
    }
    let rest = &s[i.min(s.len())..];
    let Some(&(optxt, op)) = OPS.iter().find(|(t, _)| rest.starts_with(t)) else {
        return Err(ein(msg::INVALID_OP, i));
    };
    i += optxt.len();
    while k_isspace(at(s, i)) {
        i += 1;
    }
    let mut vs = i;

    if function {
        if field.size != 8 {
            return Err(ein(msg::ILLEGAL_FIELD_OP, i));
        }
        if !matches!(op, Op::Eq | Op::Ne) {
            return Err(ein(msg::INVALID_OP, i));
        }
        let syms = crate::kallsyms::global();
        let ip = if k_isdigit(at(s, i)) {
            while k_isalnum(at(s, i)) {
                i += 1;
            }
            if i - vs >= 24 {
                return Err(ein(msg::OPERAND_TOO_LONG, i));
            }
            let Some(ip) = kstrtoull(&s[vs..i]) else {
                return Err(ein(msg::INVALID_VALUE, i));
            };
            Some(ip)
        } else {
            // The name runs to the next space, `)` included, as in the kernel.
            while at(s, i) != 0 && !k_isspace(at(s, i)) {
                i += 1;
            }
            std::str::from_utf8(&s[vs..i])
                .ok()
                .and_then(|name| syms.lookup_name(name))
        };
        // `kallsyms_lookup_size_offset()`: the function's start and end.
        let Some(hit) = ip.and_then(|ip| Some((ip, syms.lookup(ip)?))) else {
            return Err(ein(msg::NO_FUNCTION, i));
        };
        let start = hit.0 - hit.1.offset;
        return Ok((
            i,
            Pred::Function {
                offset: field.offset,
                start,
                end: start.wrapping_add(hit.1.size),
                not: op == Op::Ne,
            },
        ));
    }

    if rest_starts(s, i, b"CPUS") {
        if !matches!(
            field.kind,
            FieldKind::Cpumask | FieldKind::Cpu | FieldKind::Other
        ) {
            return Err(ein(msg::ILLEGAL_FIELD_OP, i));
        }
        if !matches!(op, Op::Eq | Op::Ne | Op::Band) {
            return Err(ein(msg::ILLEGAL_FIELD_OP, i));
        }
        i += 4;
        let c = at(s, i);
        i += 1;
        if c != b'{' {
            return Err(ein(msg::MISSING_BRACE_OPEN, i));
        }
        let maskstart = i;
        while at(s, i) != 0 && at(s, i) != b'}' {
            i += 1;
        }
        if at(s, i) != b'}' {
            return Err(ein(msg::MISSING_BRACE_CLOSE, i));
        }
        if maskstart == i {
            return Err(ein(msg::INVALID_CPULIST, i));
        }
        let Some(mask) = parse_cpulist(&s[maskstart..i], nr_cpu_ids()) else {
            return Err(ein(msg::INVALID_CPULIST, i));
        };
        i += 1;
        let weight = mask.iter().filter(|b| **b).count();
        let single = weight == 1;
        let first = mask.iter().position(|b| *b).unwrap_or(0);
        let mut op = op;
        let pred = match field.kind {
            FieldKind::Cpumask if single => Pred::CpumaskCpu {
                offset: field.offset,
                op,
                cpu: first,
            },
            FieldKind::Cpumask => Pred::Cpumask {
                offset: field.offset,
                op,
                mask,
            },
            FieldKind::Cpu if single => {
                if op == Op::Band {
                    op = Op::Eq;
                }
                Pred::Cpu {
                    op,
                    val: first as i32,
                }
            }
            FieldKind::Cpu => Pred::CpuCpumask { op, mask },
            _ if single => {
                if op == Op::Band {
                    op = Op::Eq;
                }
                num_pred(&field, op, first as u64, false)
            }
            _ => {
                if matches!(field.size, 1 | 2 | 4 | 8) {
                    Pred::NumCpumask {
                        offset: field.offset,
                        size: field.size,
                        op,
                        mask,
                    }
                } else {
                    Pred::Nop
                }
            }
        };
        return Ok((i, pred));
    }

    let q = at(s, i);
    if q == b'\'' || q == b'"' {
        if !matches!(op, Op::Ne | Op::Glob | Op::Eq) {
            return Err(ein(msg::ILLEGAL_FIELD_OP, i));
        }
        if !field.kind.is_string() {
            return Err(ein(msg::EXPECT_DIGIT, i));
        }
        i += 1;
        while at(s, i) != 0 && at(s, i) != q {
            i += 1;
        }
        if at(s, i) == 0 {
            return Err(ein(msg::MISSING_QUOTE, i));
        }
        vs += 1;
        if i - vs >= MAX_FILTER_STR_VAL {
            return Err(ein(msg::OPERAND_TOO_LONG, i));
        }
        let (regex, glob_not) = build_regex(op, &s[vs..i]);
        let not = if op == Op::Glob {
            glob_not
        } else {
            op == Op::Ne
        };
        let src = match field.kind {
            FieldKind::Comm => StrSource::Comm,
            FieldKind::StaticString => StrSource::Static {
                offset: field.offset,
                len: field.size,
            },
            FieldKind::DynString => StrSource::Dyn {
                offset: field.offset,
            },
            FieldKind::RelDynString => StrSource::RelDyn {
                offset: field.offset,
            },
            _ => StrSource::Ptr,
        };
        return Ok((i + 1, Pred::Str { src, regex, not }));
    }

    if k_isdigit(q) || q == b'-' {
        if field.kind.is_string() {
            return Err(ein(msg::EXPECT_STRING, i));
        }
        if op == Op::Glob {
            return Err(ein(msg::ILLEGAL_FIELD_OP, i));
        }
        if q == b'-' {
            i += 1;
        }
        while k_isalnum(at(s, i)) {
            i += 1;
        }
        if i - vs >= 24 {
            return Err(ein(msg::OPERAND_TOO_LONG, i));
        }
        let num = &s[vs..i];
        let val = if field.signed {
            kstrtoll(num).map(|v| v as u64)
        } else {
            kstrtoull(num)
        };
        let Some(val) = val else {
            return Err(ein(msg::ILLEGAL_INTVAL, vs));
        };
        let pred = if field.kind == FieldKind::Cpu {
            Pred::Cpu {
                op,
                val: val as i32,
            }
        } else {
            num_pred(&field, op, val, field.signed)
        };
        return Ok((i, pred));
    }

    Err(ein(msg::INVALID_VALUE, i))
}

fn rest_starts(s: &[u8], i: usize, p: &[u8]) -> bool {
    s.get(i..).is_some_and(|r| r.starts_with(p))
}

/// `select_comparison_fn()`: sizes other than 1/2/4/8 get the no-op predicate.
fn num_pred(field: &Field, op: Op, val: u64, signed: bool) -> Pred {
    if !matches!(field.size, 1 | 2 | 4 | 8) {
        return Pred::Nop;
    }
    Pred::Num {
        offset: field.offset,
        size: field.size,
        signed,
        op,
        val,
        not: op == Op::Ne,
    }
}

// ---------------------------------------------------------------------------
// calc_stack + predicate_parse
// ---------------------------------------------------------------------------

/// `calc_stack()`: Ok((max paren depth, predicate count estimate)) or the
/// pre-check error (errno -1/-2/-3 → EPERM/ENOENT/ESRCH).
fn calc_stack(s: &[u8]) -> Result<(usize, usize), FilterError> {
    let mut is_pred = false;
    let mut nr_preds = 0usize;
    let mut open = 1usize;
    let mut max_open = 1usize;
    let mut quote = 0u8;
    let mut last_quote = 0usize;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if k_isspace(c) {
            i += 1;
            continue;
        }
        if quote != 0 {
            if c == quote {
                quote = 0;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => {
                quote = c;
                last_quote = i;
            }
            b'|' | b'&' if at(s, i + 1) == c => {
                is_pred = false;
                i += 1;
                continue;
            }
            b'(' => {
                is_pred = false;
                open += 1;
                max_open = max_open.max(open);
                i += 1;
                continue;
            }
            b')' => {
                is_pred = false;
                if open == 1 {
                    return Err(perr(EPERM, msg::TOO_MANY_CLOSE, i));
                }
                open -= 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !is_pred {
            nr_preds += 1;
            is_pred = true;
        }
        i += 1;
    }
    if quote != 0 {
        return Err(perr(ESRCH, msg::MISSING_QUOTE, last_quote));
    }
    if open != 1 {
        let mut level = open;
        let mut j = i;
        // for (i--; i; i--): index 0 is never examined.
        while j > 1 {
            j -= 1;
            let c = s[j];
            if quote != 0 {
                if c == quote {
                    quote = 0;
                }
                continue;
            }
            match c {
                b'(' => {
                    if level == open {
                        return Err(perr(ENOENT, msg::TOO_MANY_OPEN, j));
                    }
                    level -= 1;
                }
                b')' => level += 1,
                b'\'' | b'"' => quote = c,
                _ => {}
            }
        }
        return Err(perr(ENOENT, msg::TOO_MANY_OPEN, 0));
    }
    Ok((max_open, nr_preds))
}

const INVERT: u8 = 1;
const PROCESS_AND: u8 = 2;
const PROCESS_OR: u8 = 4;

fn update_preds(prog: &mut [Entry], n: usize, invert: bool) {
    let t = prog[n].target;
    let Ok(tu) = usize::try_from(t) else { return };
    let Some(te) = prog.get_mut(tu) else { return };
    let s = te.target;
    te.when_to_branch = invert;
    te.target = n as isize;
    prog[n].target = s;
}

fn predicate_parse(
    s: &[u8],
    nr_parens: usize,
    nr_preds: usize,
    fields: &Fields,
) -> Result<Filter, FilterError> {
    let nr_preds = nr_preds + 2;
    let mut stack: Vec<u8> = vec![0];
    let mut prog: Vec<Entry> = Vec::new();
    let mut inverts: Vec<bool> = Vec::new();
    let mut invert = false;
    let mut ptr = 0usize;
    let mut dangling_op = false;
    let mut ret = EINVAL; // -ENOMEM before any predicate; never observable
    'outer: while at(s, ptr) != 0 {
        let next = ptr;
        ptr += 1;
        let c = at(s, next);
        if k_isspace(c) {
            continue;
        }
        match c {
            b'(' => {
                if stack.len() - 1 > nr_parens {
                    return Err(FilterError::new(EINVAL, None, 0));
                }
                stack.push(invert as u8);
                continue;
            }
            b'!' if !matches!(at(s, next + 1), b'=' | b'~') => {
                invert = !invert;
                continue;
            }
            _ => {}
        }
        if prog.len() >= nr_preds {
            return Err(perr(ret, msg::TOO_MANY_PREDS, next));
        }
        let (len, pred) = parse_pred(&s[next..], ptr, fields)?;
        inverts.push(invert);
        prog.push(Entry {
            target: prog.len() as isize - 1,
            when_to_branch: false,
            pred,
        });
        ptr = next + len;
        ret = EPERM;
        loop {
            let next = ptr;
            ptr += 1;
            let c = at(s, next);
            if k_isspace(c) {
                continue;
            }
            match c {
                b')' | 0 => {}
                b'&' | b'|' if at(s, next + 1) == c => ptr += 1,
                _ => return Err(perr(EPERM, msg::TOO_MANY_PREDS, next)),
            }
            let n = prog.len();
            let top = stack.last_mut().expect("stack never empty");
            invert = *top & INVERT != 0;
            if *top & PROCESS_AND != 0 {
                *top &= !PROCESS_AND;
                update_preds(&mut prog, n - 1, invert);
            }
            let top = stack.last_mut().expect("stack never empty");
            if c == b'&' {
                *top |= PROCESS_AND;
                dangling_op = true;
                break;
            }
            if *top & PROCESS_OR != 0 {
                *top &= !PROCESS_OR;
                update_preds(&mut prog, n - 1, !invert);
            }
            let top = stack.last_mut().expect("stack never empty");
            if c == b'|' {
                *top |= PROCESS_OR;
                dangling_op = true;
                break;
            }
            dangling_op = false;
            if c == 0 {
                break 'outer;
            }
            if stack.len() == 1 {
                return Err(perr(EPERM, msg::TOO_MANY_CLOSE, ptr));
            }
            stack.pop();
        }
    }
    if stack.len() != 1 {
        return Err(perr(ret, msg::TOO_MANY_OPEN, ptr));
    }
    // The text ended right after a `&&`/`||`: the kernel refuses the operand-less
    // operator with the caret at the end of the text (checked on 6.18).
    if dangling_op {
        return Err(perr(EINVAL, msg::INVALID_FILTER, ptr));
    }
    let n = prog.len();
    if n == 0 {
        return Err(perr(EINVAL, msg::NO_FILTER, ptr));
    }
    prog[n - 1].target = n as isize;
    prog[n - 1].when_to_branch = false;
    // Second pass (entries past the end are TRUE/FALSE with when_to_branch 0).
    let when_at = |prog: &[Entry], t: isize| -> Option<(bool, isize)> {
        let t = usize::try_from(t).ok()?;
        match prog.get(t) {
            Some(e) => Some((e.when_to_branch, e.target)),
            None if t == prog.len() => Some((false, 1)),
            None if t == prog.len() + 1 => Some((false, 0)),
            None => None,
        }
    };
    for i in (0..n - 1).rev() {
        if let Some((w, tt)) = when_at(&prog, prog[i].target)
            && prog[i].when_to_branch == w
        {
            prog[i].target = tt;
        }
    }
    // Third pass.
    for (i, e) in prog.iter_mut().enumerate() {
        e.when_to_branch ^= inverts[i];
        if e.target <= i as isize {
            return Err(FilterError::new(EINVAL, None, 0));
        }
    }
    Ok(Filter { prog })
}

fn process_preds(s: &[u8], fields: &Fields) -> Result<Filter, FilterError> {
    let (nr_parens, nr_preds) = calc_stack(s)?;
    if nr_preds == 0 {
        return Err(FilterError::new(EINVAL, None, 0));
    }
    predicate_parse(s, nr_parens, nr_preds, fields)
}

/// Compile one event's filter write exactly as the kernel does (§7.2–7.4).
///
/// `text` is the raw write buffer. `Ok(None)` means "clear the filter" (the
/// content is `0` after stripping). On `Err(e)` with `e.recorded`, the event's
/// filter becomes the error record: the file reads
/// `error_bytes(&stored_bytes(text), &e)`, filtering is off, one error_log
/// entry (`e.log_entry()`, command = stored string) is added, and the write
/// fails with `e.errno`. With `!e.recorded` (4096+ bytes) nothing changes.
pub fn compile(text: &[u8], fields: &Fields) -> Result<Option<Filter>, FilterError> {
    if text.len() >= MAX_WRITE {
        return Err(FilterError {
            errno: EINVAL,
            message: None,
            pos: 0,
            recorded: false,
        });
    }
    let (stored, stripped) = strip(text);
    if stripped == b"0" {
        return Ok(None);
    }
    process_preds(stored, fields).map(Some)
}

/// Compile a trigger's `if` condition (the text after `if `) as the kernel's
/// `set_trigger_filter()` does: `create_event_filter()` directly, so `0` is an
/// expression like any other (Field not found), not "clear". On `Err(e)` the
/// trigger write fails with `e.errno` and one error_log entry
/// (`e.log_entry()`, command = `stored_bytes(text)`) is added.
pub fn compile_condition(text: &[u8], fields: &Fields) -> Result<Filter, FilterError> {
    process_preds(strip(text).0, fields)
}

/// What one event's filter becomes after a write of `text` to its
/// subsystem's `filter` file (§7.6).
///
/// `Ok(None)`: clear (the text is `0`); `Ok(Some(f))`: the event's filter
/// is `f` and reads `stored_text(text)`. `Err(e)`: the expression failed on
/// this event — its filter becomes the error record
/// `error_bytes(&stored_bytes(text), &e)` =
/// `expr\n^\nparse_error: Couldn't find or set field in one of a subsystem's events\n\n`,
/// filtering is off, and one error_log entry (`e.log_entry()`) is added. The
/// subsystem write itself still succeeds if the subsystem has any event
/// (EINVAL when it has none, ENODEV when emptied; 4096+ bytes → EINVAL, see
/// `e.recorded == false`, which applies to the whole write).
pub fn compile_for_subsystem(text: &[u8], fields: &Fields) -> Result<Option<Filter>, FilterError> {
    match compile(text, fields) {
        Err(e) if e.recorded => Err(FilterError::new(EINVAL, Some(msg::BAD_SUBSYS_FILTER), 0)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const EXEC_FMT: &str = "name: sched_process_exec\nID: 365\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"filename=%s pid=%d old_pid=%d\", __get_str(filename), REC->pid, REC->old_pid\n";

    const SWITCH_FMT: &str = "name: sched_switch\nID: 372\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;\n\
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n\
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;\n\
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;\n\
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;\n\
\n\
print fmt: \"prev_comm=%s\"\n";

    const PRINT_FMT: &str = "name: print\nID: 5\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:0;\n\
\n\
print fmt: \"%ps: %s\", (void *)REC->ip, REC->buf\n";

    fn exec() -> Fields {
        Fields::from_format(EXEC_FMT)
    }

    fn ctx() -> RecordContext {
        RecordContext {
            cpu: 1,
            comm: "bash".into(),
        }
    }

    /// (input, errno, message, unclamped pos) — kernel-observed (§7.4 + probes).
    fn exec_error_table() -> Vec<(&'static [u8], i32, Option<&'static str>, usize)> {
        vec![
            (b"nosuch == 1", EINVAL, Some(msg::FIELD_NOT_FOUND), 7),
            (b"a == 1 && b == 2", EINVAL, Some(msg::FIELD_NOT_FOUND), 2),
            (
                b"pid == 1 && b == 2",
                EINVAL,
                Some(msg::FIELD_NOT_FOUND),
                14,
            ),
            (b"00", EINVAL, Some(msg::FIELD_NOT_FOUND), 3),
            (b"pid = 1", EINVAL, Some(msg::INVALID_OP), 5),
            (b"pid ~ 1", EINVAL, Some(msg::ILLEGAL_FIELD_OP), 7),
            (b"filename > \"a\"", EINVAL, Some(msg::ILLEGAL_FIELD_OP), 12),
            (b"pid == \"1\"", EINVAL, Some(msg::EXPECT_DIGIT), 8),
            (b"filename == 1", EINVAL, Some(msg::EXPECT_STRING), 13),
            (b"filename == bash", EINVAL, Some(msg::INVALID_VALUE), 13),
            (b"pid == abc", EINVAL, Some(msg::INVALID_VALUE), 8),
            (b"pid ==", EINVAL, Some(msg::INVALID_VALUE), 7),
            (
                b"pid == 99999999999999999999",
                EINVAL,
                Some(msg::ILLEGAL_INTVAL),
                8,
            ),
            (b"(pid == 1", ENOENT, Some(msg::TOO_MANY_OPEN), 0),
            (b"((pid == 1)", ENOENT, Some(msg::TOO_MANY_OPEN), 0),
            (b"pid == 1)", EPERM, Some(msg::TOO_MANY_CLOSE), 8),
            (b"\"abc", ESRCH, Some(msg::MISSING_QUOTE), 0),
            (b"pid == 1 pid == 2", EPERM, Some(msg::TOO_MANY_PREDS), 9),
            (b"&& pid == 1", EPERM, None, 0),
            (b"", EINVAL, None, 0),
            (b"\n", EINVAL, None, 0),
            (b"   ", EINVAL, None, 0),
            // Probed on 6.18 beyond the spec table:
            (b"!", EINVAL, Some(msg::NO_FILTER), 1),
            (b"()", EINVAL, None, 0),
            (b"(!)", EPERM, None, 0),
            (b"a) (b", EPERM, Some(msg::TOO_MANY_CLOSE), 1),
            (b"(a) (b", ENOENT, Some(msg::TOO_MANY_OPEN), 4),
            (b"x (y) ((z", ENOENT, Some(msg::TOO_MANY_OPEN), 7),
            (b"pid == 1.5", EPERM, Some(msg::TOO_MANY_PREDS), 8),
            (b"common_type == -1", EINVAL, Some(msg::ILLEGAL_INTVAL), 16),
            (b"pid == 0x", EINVAL, Some(msg::ILLEGAL_INTVAL), 8),
            (b"pid == 08", EINVAL, Some(msg::ILLEGAL_INTVAL), 8),
            (
                b"pid == 123456789012345678901234",
                EINVAL,
                Some(msg::OPERAND_TOO_LONG),
                32,
            ),
            (
                b"pid == 1 & & pid == 2",
                EPERM,
                Some(msg::TOO_MANY_PREDS),
                9,
            ),
            (b"CPU & CPUS{}", EINVAL, Some(msg::INVALID_CPULIST), 12),
            (b"CPU & CPUS{99999}", EINVAL, Some(msg::INVALID_CPULIST), 17),
            (b"CPU ~ \"a\"", EINVAL, Some(msg::EXPECT_DIGIT), 7),
            (
                b"pid.function == 1",
                EINVAL,
                Some(msg::ILLEGAL_FIELD_OP),
                17,
            ),
            (
                b"pid == -9223372036854775809",
                EINVAL,
                Some(msg::ILLEGAL_INTVAL),
                8,
            ),
            (
                b"pid == 9223372036854775808",
                EINVAL,
                Some(msg::ILLEGAL_INTVAL),
                8,
            ),
            (b"pid == +1", EINVAL, Some(msg::INVALID_VALUE), 8),
            (b"pid < = 1", EINVAL, Some(msg::INVALID_VALUE), 7),
            (b"pid == 1 || || pid == 2", EPERM, None, 0),
            (b"filename == \"a\"b", EPERM, Some(msg::TOO_MANY_PREDS), 15),
            (b"COMM == 1", EINVAL, Some(msg::EXPECT_STRING), 9),
            (b"pid\xc3\xa9 == 1", EINVAL, Some(msg::FIELD_NOT_FOUND), 5),
            (
                b"pid == 1 && (pid == 2",
                ENOENT,
                Some(msg::TOO_MANY_OPEN),
                12,
            ),
            (b"pid CPUS{1}", EINVAL, Some(msg::INVALID_OP), 5),
            (b"pid == CPUS1", EINVAL, Some(msg::MISSING_BRACE_OPEN), 13),
            (b"pid == CPUS{1", EINVAL, Some(msg::MISSING_BRACE_CLOSE), 14),
            (
                b"filename == CPUS{1}",
                EINVAL,
                Some(msg::ILLEGAL_FIELD_OP),
                13,
            ),
            (b"pid < CPUS{1}", EINVAL, Some(msg::ILLEGAL_FIELD_OP), 7),
            (b"pid == 1 &&&& pid == 2", EPERM, None, 0),
            (b"pid == 1 ) || (", EPERM, Some(msg::TOO_MANY_CLOSE), 9),
        ]
    }

    #[test]
    fn error_table() {
        let f = exec();
        for (input, errno, message, pos) in exec_error_table() {
            let e = match compile(input, &f) {
                Err(e) => e,
                Ok(_) => panic!("{:?} compiled", String::from_utf8_lossy(input)),
            };
            let shown = String::from_utf8_lossy(input);
            assert_eq!(e.errno, errno, "errno for {shown:?}");
            assert_eq!(e.message, message, "message for {shown:?}");
            if message.is_some() {
                assert_eq!(e.pos, pos, "pos for {shown:?}");
            }
            assert!(e.recorded);
        }
    }

    #[test]
    fn dangling_operators_are_meaningless() {
        // Verified on 6.18.44: EINVAL with the caret at the end of the stored text.
        let f = exec();
        for (text, pos) in [
            ("pid == 1 &&", 11),
            ("pid == 1 ||  \t\n", 11),
            (" pid == 1 &&", 12),
            ("(pid == 1) ||", 13),
            ("pid == 1 && !", 13),
            ("pid == 1 && !!", 14),
            ("pid == 1 || pid == 2 &&", 23),
        ] {
            let e = compile(text.as_bytes(), &f).unwrap_err();
            assert_eq!(
                (e.errno, e.message, e.pos),
                (EINVAL, Some(msg::INVALID_FILTER), pos),
                "{text:?}"
            );
            assert_eq!(
                compile_condition(text.as_bytes(), &f).unwrap_err(),
                e,
                "{text:?}"
            );
        }
        // An operator followed by nothing but `)` or another operator fails earlier.
        for text in ["(pid == 1 &&)", "pid == 1 && &&", "pid == 1 && ()"] {
            let e = compile(text.as_bytes(), &f).unwrap_err();
            assert_eq!((e.errno, e.message), (EPERM, None), "{text:?}");
        }
    }

    #[test]
    fn a_condition_is_never_cleared_by_zero() {
        // A trigger's `if 0` is an expression (Field not found one past the end), where the
        // filter file takes `0` as "clear".
        let f = exec();
        assert!(matches!(compile(b"0", &f), Ok(None)));
        for (text, pos) in [("0", 2), (" 0  ", 3)] {
            let e = compile_condition(text.as_bytes(), &f).unwrap_err();
            assert_eq!(
                (e.errno, e.message, e.pos),
                (EINVAL, Some(msg::FIELD_NOT_FOUND), pos),
                "{text:?}"
            );
        }
        for (text, errno) in [
            ("pid == \"1", ESRCH),
            ("((pid == 1)", ENOENT),
            ("(pid == 1))", EPERM),
        ] {
            assert_eq!(
                compile_condition(text.as_bytes(), &f).unwrap_err().errno,
                errno,
                "{text:?}"
            );
        }
        assert!(compile_condition(b"pid == 1 || old_pid == 2", &f).is_ok());
    }

    #[test]
    fn long_string_operand() {
        let mut t = b"filename == \"".to_vec();
        t.extend(std::iter::repeat_n(b'a', 300));
        t.push(b'"');
        let e = compile(&t, &exec()).unwrap_err();
        assert_eq!(e.message, Some(msg::OPERAND_TOO_LONG));
        assert_eq!(e.pos, 314);
    }

    #[test]
    fn error_texts_clamped_and_log_unclamped() {
        let f = exec();
        let e = compile(b"nosuch == 1", &f).unwrap_err();
        assert_eq!(
            error_text("nosuch == 1", &e),
            "nosuch == 1\n       ^\nparse_error: Field not found\n\n"
        );
        assert_eq!(e.log_entry(), (LOG_LOCATION, "Field not found", 7));
        assert_eq!(log_caret_line(e.pos), format!("{}^", " ".repeat(18)));

        let e = compile(b"pid ==", &f).unwrap_err();
        assert_eq!(
            error_text("pid ==", &e),
            "pid ==\n      ^\nparse_error: Invalid value (did you forget quotes)?\n\n"
        );
        assert_eq!(e.log_entry().2, 7);

        let e = compile(b"&& pid == 1", &f).unwrap_err();
        assert_eq!(error_text("&& pid == 1", &e), "&& pid == 1\nError: (0)\n\n");
        assert_eq!(e.log_entry(), (LOG_LOCATION, "Error", 0));

        let e = compile(b"   ", &f).unwrap_err();
        assert_eq!(stored_bytes(b"   "), b"");
        assert_eq!(error_text("", &e), "\nError: (0)\n\n");

        let e = compile(b"!", &f).unwrap_err();
        assert_eq!(
            error_text("!", &e),
            "!\n ^\nparse_error: No filter found\n\n"
        );
        let e = compile(b"(pid == 1", &f).unwrap_err();
        assert_eq!(
            error_text("(pid == 1", &e),
            "(pid == 1\n^\nparse_error: Too many '('\n\n"
        );
    }

    #[test]
    fn stored_forms() {
        assert_eq!(stored_text(b"   pid == 1   "), "   pid == 1\n");
        assert_eq!(stored_text(b"\tpid == 1\n\n"), "\tpid == 1\n");
        assert_eq!(stored_bytes(b"pid == 1\x00 junk"), b"pid == 1");
        assert_eq!(stored_bytes(b"pid\xa0== 1\xa0"), b"pid\xa0== 1");
        assert!(compile(b"pid\xa0== 1\xa0", &exec()).unwrap().is_some());
        assert!(compile(b"pid == 1\x00 junk", &exec()).unwrap().is_some());
    }

    #[test]
    fn clear_and_size_limit() {
        let f = exec();
        for t in [&b"0"[..], b" 0", b"0\n", b"\t0 \n"] {
            assert!(compile(t, &f).unwrap().is_none());
        }
        let mut t = b"pid == 1".to_vec();
        t.resize(4095, b' ');
        assert!(compile(&t, &f).unwrap().is_some());
        t.push(b' ');
        let e = compile(&t, &f).unwrap_err();
        assert_eq!((e.errno, e.recorded), (EINVAL, false));
    }

    #[test]
    fn accepted_forms_row30() {
        let f = exec();
        for t in [
            "pid>10&&old_pid<5",
            "(pid == 1 || pid == 2) && !(old_pid != 3)",
            "filename ~ \"*bash\"",
            "filename ~ \"[ab]*\"",
            "pid & 0x3",
            "pid == -1",
            "common_pid == 1",
            "cpu == 0",
            "common_cpu == 1",
            "CPU < 2",
            "COMM ~ \"b*\"",
            "comm == \"bash\"",
            "!pid == 1",
            "CPU == CPUS{0-1}",
            "stacktrace == 1",
            "filename ~ \"!a*\"",
            "pid == -9223372036854775808",
            "common_type == 18446744073709551615",
            "filename ~ \"1*\"",
            "pid == CPUS{1}",
            "common_pid.ustring == 1",
        ] {
            assert!(
                matches!(compile(t.as_bytes(), &f), Ok(Some(_))),
                "{t:?} should compile"
            );
            assert_eq!(stored_text(t.as_bytes()), format!("{t}\n"));
        }
    }

    #[test]
    fn subsystem() {
        let sw = Fields::from_format(SWITCH_FMT);
        let ex = exec();
        assert!(
            compile_for_subsystem(b"common_pid == 5\n", &sw)
                .unwrap()
                .is_some()
        );
        assert!(
            compile_for_subsystem(b"common_pid == 5\n", &ex)
                .unwrap()
                .is_some()
        );
        assert!(
            compile_for_subsystem(b"prev_pid == 1\n", &sw)
                .unwrap()
                .is_some()
        );
        let e = compile_for_subsystem(b"prev_pid == 1\n", &ex).unwrap_err();
        assert_eq!(
            error_bytes(&stored_bytes(b"prev_pid == 1\n"), &e),
            b"prev_pid == 1\n^\nparse_error: Couldn't find or set field in one of a subsystem's events\n\n"
        );
        assert_eq!(e.log_entry(), (LOG_LOCATION, msg::BAD_SUBSYS_FILTER, 0));
        assert!(compile_for_subsystem(b"0\n", &ex).unwrap().is_none());
    }

    #[test]
    fn format_parsing() {
        let sw = Fields::from_format(SWITCH_FMT);
        let f = sw.find(b"prev_comm").unwrap();
        assert_eq!(
            (f.kind, f.offset, f.size, f.type_name.as_str()),
            (FieldKind::StaticString, 8, 16, "char[16]")
        );
        let f = sw.find(b"prev_state").unwrap();
        assert_eq!((f.kind, f.size, f.signed), (FieldKind::Other, 8, true));
        let f = exec().find(b"filename").unwrap();
        assert_eq!(
            (f.kind, f.type_name.as_str()),
            (FieldKind::DynString, "__data_loc char[]")
        );
        let f = sw.find(b"common_type").unwrap();
        assert_eq!((f.kind, f.size, f.signed), (FieldKind::Other, 2, false));
        assert_eq!(sw.common_fields().len(), 4);
        assert_eq!(sw.event_fields().len(), 7);
        let p = Fields::from_format(PRINT_FMT);
        assert_eq!(p.find(b"buf").unwrap().kind, FieldKind::StaticString);
        assert_eq!(p.find(b"ip").unwrap().kind, FieldKind::Other);
        assert_eq!(p.find(b"CPU").unwrap().kind, FieldKind::Cpu);
        let ptr = Fields::from_format(
            "format:\n\tfield:const char * name;\toffset:8;\tsize:8;\tsigned:0;\n",
        );
        assert_eq!(ptr.find(b"name").unwrap().kind, FieldKind::PtrString);
        let cm = Fields::from_format(
            "format:\n\tfield:__data_loc cpumask_t[] mask;\toffset:8;\tsize:4;\tsigned:0;\n",
        );
        assert_eq!(cm.find(b"mask").unwrap().kind, FieldKind::Cpumask);
        // An event field wins over a generic one.
        let own = Fields::from_format(
            "format:\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\tfield:unsigned int cpu;\toffset:8;\tsize:4;\tsigned:0;\n",
        );
        assert_eq!(own.find(b"cpu").unwrap().kind, FieldKind::Other);
    }

    fn exec_rec(filename: &str, pid: i32, old_pid: i32, common_pid: i32) -> Vec<u8> {
        let mut r = vec![0u8; 20];
        r[4..8].copy_from_slice(&common_pid.to_le_bytes());
        let len = filename.len() as u32 + 1;
        r[8..12].copy_from_slice(&((len << 16) | 20).to_le_bytes());
        r[12..16].copy_from_slice(&pid.to_le_bytes());
        r[16..20].copy_from_slice(&old_pid.to_le_bytes());
        r.extend_from_slice(filename.as_bytes());
        r.push(0);
        r
    }

    fn eval(f: &Fields, t: &str, rec: &[u8], c: &RecordContext) -> bool {
        compile(t.as_bytes(), f).unwrap().unwrap().matches(rec, c)
    }

    #[test]
    fn numeric_eval() {
        let f = exec();
        let r = exec_rec("/bin/bash", 42, -5, 7);
        let c = ctx();
        for (t, want) in [
            ("pid == 42", true),
            ("pid != 42", false),
            ("pid > 41", true),
            ("pid >= 43", false),
            ("old_pid < 0", true),
            ("old_pid == -5", true),
            ("old_pid > -6", true),
            ("pid & 0x2", true),
            ("pid & 0x1", false),
            ("pid == 052", true),
            ("pid == 0x2a", true),
            ("common_pid <= 7", true),
            ("common_type == 0", true),
            ("pid>10&&old_pid<5", true),
            ("pid == 1 || pid == 42", true),
            ("pid == 1 || pid == 2 && old_pid == -5", false),
            ("pid == 42 || pid == 2 && old_pid == 0", true),
            ("(pid == 1 || pid == 42) && !(old_pid != -5)", true),
            ("!pid == 1", true),
            ("!(pid == 42 || pid == 1)", false),
            ("!(pid == 1) && !(old_pid == 3)", true),
            ("stacktrace == 1", false),
            ("CPU == 1", true),
            ("cpu != 1", false),
            ("common_cpu < 2", true),
            ("CPU & 1", false),
            ("CPU == CPUS{1}", true),
            ("CPU & CPUS{1}", true),
            ("COMM == \"bash\"", true),
            ("comm ~ \"b*\"", true),
            ("comm ~ \"*as*\"", true),
            ("comm != \"bash\"", false),
            ("comm ~ \"!b*\"", false),
            // Verified on 6.18: END_ONLY on COMM compares the end of the 16-byte buffer.
            ("comm ~ \"*sh\"", false),
            ("comm ~ \"*\"", true),
            ("comm ~ \"b?sh\"", true),
        ] {
            assert_eq!(eval(&f, t, &r, &c), want, "{t:?}");
        }
    }

    #[test]
    fn sized_compares() {
        // u8 at 0, s8 at 1, u16 at 2, s16 at 4, u32 at 8, s64 at 16, u64 at 24
        let fmt = "format:\n\
\tfield:unsigned char a;\toffset:0;\tsize:1;\tsigned:0;\n\
\tfield:signed char b;\toffset:1;\tsize:1;\tsigned:1;\n\
\tfield:unsigned short c;\toffset:2;\tsize:2;\tsigned:0;\n\
\tfield:short d;\toffset:4;\tsize:2;\tsigned:1;\n\
\tfield:unsigned int e;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:long g;\toffset:16;\tsize:8;\tsigned:1;\n\
\tfield:u64 h;\toffset:24;\tsize:8;\tsigned:0;\n";
        let f = Fields::from_format(fmt);
        let mut r = vec![0u8; 32];
        r[0] = 200;
        r[1] = (-3i8) as u8;
        r[2..4].copy_from_slice(&60000u16.to_le_bytes());
        r[4..6].copy_from_slice(&(-300i16).to_le_bytes());
        r[8..12].copy_from_slice(&4_000_000_000u32.to_le_bytes());
        r[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        r[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        let c = ctx();
        for (t, want) in [
            ("a > 100", true),
            ("a == 200", true),
            ("a == 456", true), // value truncated to the field size (456 & 0xff = 200)
            ("b < 0", true),
            ("b == -3", true),
            ("c > 50000", true),
            ("d < -299", true),
            ("d == -300", true),
            ("e > 3000000000", true),
            ("g < 0", true),
            ("g == -1", true),
            ("h == 18446744073709551615", true),
            ("h > 1", true),
            ("h & 0x8000000000000000", true),
        ] {
            assert_eq!(eval(&f, t, &r, &c), want, "{t:?}");
        }
        // Short record: missing bytes read as zero, no panic.
        assert!(eval(&f, "h == 0", &[], &c));
    }

    #[test]
    fn string_eval() {
        let ex = exec();
        let r = exec_rec("/usr/bin/bash", 1, 2, 3);
        let c = ctx();
        for (t, want) in [
            ("filename == \"/usr/bin/bash\"", true),
            ("filename == '/usr/bin/bash'", true),
            ("filename != \"/usr/bin/bash\"", false),
            ("filename == \"/usr/bin/bas\"", false),
            ("filename ~ \"*bash\"", true),
            ("filename ~ \"*bin*\"", true),
            ("filename ~ \"/usr*\"", true),
            ("filename ~ \"/u?r/*/b[a-c]sh\"", true),
            ("filename ~ \"[ab]*\"", false),
            ("filename ~ \"*zsh\"", false),
            ("filename ~ \"!*bash\"", false),
        ] {
            assert_eq!(eval(&ex, t, &r, &c), want, "{t:?}");
        }
        let sw = Fields::from_format(SWITCH_FMT);
        let mut r = vec![0u8; 64];
        r[8..12].copy_from_slice(b"bash");
        r[40..47].copy_from_slice(b"swapper");
        for (t, want) in [
            ("prev_comm == \"bash\"", true),
            ("prev_comm ~ \"ba*\"", true),
            ("prev_comm ~ \"*as*\"", true),
            ("prev_comm ~ \"b?sh\"", true),
            // Kernel quirk: an END_ONLY match on char[N] compares the buffer end.
            ("prev_comm ~ \"*sh\"", false),
            ("next_comm == \"swapper\" && prev_comm != \"init\"", true),
            ("next_comm == \"swap\"", false),
        ] {
            assert_eq!(eval(&sw, t, &r, &c), want, "{t:?}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(glob_match(b"[!a]b", b"xb"));
        assert!(!glob_match(b"[!a]b", b"ab"));
        assert!(glob_match(b"\\*", b"*"));
        assert!(glob_match(b"[]]", b"]"));
        assert!(glob_match(b"[a-", b"[a-"));
        assert!(!glob_match(b"?", b""));
    }

    #[test]
    fn no_panics_on_junk() {
        let f = exec();
        let mut seed = 0x1234_5678_u64;
        let alphabet = b"pid=!~<>&|() \"'0x1-CPUS{}*[]?\\\xa0\xff.,:/Nfilename";
        for _ in 0..20000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (seed >> 58) as usize;
            let mut t = Vec::new();
            let mut s = seed;
            for _ in 0..n {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t.push(alphabet[(s >> 33) as usize % alphabet.len()]);
            }
            if let Ok(Some(flt)) = compile(&t, &f) {
                let _ = flt.matches(&[1, 2, 3], &ctx());
                let _ = flt.matches(&exec_rec("x", 1, 2, 3), &ctx());
            }
        }
    }
}
