//! Event record payloads: building them from field values, and the kernel's
//! `events/<sys>/<event>/inject` syntax (`kernel/trace/trace_events_inject.c`,
//! Linux 6.18). Pure: no files, no clocks.
//!
//! A payload is the kernel's event entry, little endian: `struct trace_entry`
//! (`common_type` u16 @0, `common_flags` u8 @2, `common_preempt_count` u8 @3,
//! `common_pid` i32 @4), the event's fields at their `format` offsets, then the
//! dynamic data. Two layouts exist:
//!
//! * [`RecordLayout::build`], a record as a `TRACE_EVENT` probe writes it
//!   (`include/trace/stages/stage6_event_callback.h`: `trace_event_buffer_reserve(..,
//!   sizeof(*entry) + __data_size)`). Dynamic data starts at
//!   `offsetof(struct, __data)` (`stage5_get_offsets.h`, `__dynamic_array`), i.e. right
//!   after the last field, unpadded, since `__data` is a `char[]`; the record is
//!   `sizeof(struct)` (padded to the struct's alignment) plus the data, so any padding
//!   ends up as zeros at the very end. `__rel_loc` offsets count from the end of the
//!   4-byte word (`__rel_dynamic_array`: `- offsetof(item) - sizeof(u32)`).
//! * [`RecordLayout::build_inject`], what `parse_entry()` builds: event fields up
//!   to `trace_get_entry_size()`, one extra NUL, then each injected dynamic string.

use std::borrow::Cow;
use std::fmt;

use crate::control::filter::{FieldKind, Fields};

/// Writes of this many bytes or more are refused with EINVAL (`event_inject_write`:
/// `if (cnt >= PAGE_SIZE) return -EINVAL;`).
pub const MAX_INJECT_WRITE: usize = 4096;
/// A quoted inject string must be shorter than this (`parse_field`:
/// `if (len >= MAX_FILTER_STR_VAL) return -EINVAL;`).
pub const MAX_STR_VAL: usize = 256;
/// What a `char *` field points to once injected (`#define INJECT_STRING`).
pub const INJECT_STRING: &str = "STATIC STRING CAN NOT BE INJECTED";
/// Stand-in for the kernel address of [`INJECT_STRING`], stored in injected
/// `char *` (and generic `COMM`) fields.
pub const INJECT_STRING_ADDR: u64 = 0xffff_ffff_8200_0000;
/// Stand-in for the kernel address of `""`, stored in `char *` fields an inject
/// leaves alone (`trace_alloc_entry`: `*paddr = "";`).
pub const EMPTY_STRING_ADDR: u64 = 0xffff_ffff_8200_0040;

/// A field value. Integers are kept wide enough for any `u64` or `i64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i128),
    Str(Cow<'a, [u8]>),
}

impl<'a> Value<'a> {
    /// A borrowed string value (no copy: for the `trace_marker` hot path).
    pub fn str(bytes: &'a [u8]) -> Value<'a> {
        Value::Str(Cow::Borrowed(bytes))
    }
}

/// The `struct trace_entry` header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Common {
    pub type_id: u16,
    pub flags: u8,
    pub preempt_count: u8,
    pub pid: i32,
}

impl Common {
    /// The header as it starts every record.
    pub fn to_bytes(&self) -> [u8; 8] {
        let [t0, t1] = self.type_id.to_le_bytes();
        let [p0, p1, p2, p3] = self.pid.to_le_bytes();
        [t0, t1, self.flags, self.preempt_count, p0, p1, p2, p3]
    }
}

/// Why [`RecordLayout::build`] refused its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    UnknownField(String),
    /// A string for a numeric field, a number for a string field, or (inject) an
    /// integer field whose size is not 1, 2, 4 or 8.
    WrongType(String),
    /// Dynamic data past what a 16-bit `__data_loc` offset or length can hold.
    TooLong(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::UnknownField(n) => write!(f, "no field `{n}`"),
            BuildError::WrongType(n) => write!(f, "value does not fit field `{n}`"),
            BuildError::TooLong(n) => write!(f, "dynamic data of `{n}` out of __data_loc range"),
        }
    }
}

impl std::error::Error for BuildError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Integers (`FILTER_OTHER`, and the size-0 generic `CPU`/`stacktrace` fields).
    Num,
    /// `char name[N]`; `char name[]` (size 0) is a trailing flexible string.
    Str,
    /// `__data_loc`/`__rel_loc` word; `string` when the kernel calls it a string
    /// (`FILTER_DYN_STRING`/`FILTER_RDYN_STRING`, i.e. `char` elements).
    Dyn { rel: bool, string: bool },
    /// `char *` / `const char *` (`FILTER_PTR_STRING`).
    Ptr,
    /// Generic `COMM`/`comm` (`FILTER_COMM`: offset 0, size 0).
    Comm,
}

#[derive(Clone, Debug)]
struct Slot {
    name: Box<str>,
    kind: Kind,
    offset: usize,
    size: usize,
    signed: bool,
    array: bool,
}

impl Slot {
    /// `is_string_field()` (kernel/trace/trace.h).
    fn is_string(&self) -> bool {
        matches!(
            self.kind,
            Kind::Str | Kind::Ptr | Kind::Comm | Kind::Dyn { string: true, .. }
        )
    }
    /// Data goes after the fixed part (dynamic arrays and `char buf[]`).
    fn trailing(&self) -> bool {
        matches!(self.kind, Kind::Dyn { .. }) || (self.kind == Kind::Str && self.size == 0)
    }
}

/// Generic fields (`trace_define_generic_fields()`, kernel/trace/trace_events.c):
/// all `offset 0, size 0`; only inject resolves them.
const GENERIC: [(&str, Kind, bool); 7] = [
    ("CPU", Kind::Num, true),
    ("cpu", Kind::Num, true),
    ("common_cpu", Kind::Num, true),
    ("COMM", Kind::Comm, false),
    ("comm", Kind::Comm, false),
    ("stacktrace", Kind::Num, false),
    ("STACKTRACE", Kind::Num, false),
];

/// An event's record layout, compiled once from its fields.
#[derive(Clone, Debug)]
pub struct RecordLayout {
    /// Event fields, then the generic ones, then the common ones: the lookup order
    /// of `trace_find_event_field()`.
    slots: Vec<Slot>,
    n_event: usize,
    data_start: usize,
    struct_len: usize,
    /// `trace_get_entry_size()`: max offset+size over the event's own fields.
    inject_fixed: usize,
}

fn slot_of(f: &crate::control::filter::Field) -> Slot {
    let t = &f.type_name;
    let kind = match f.kind {
        FieldKind::StaticString => Kind::Str,
        FieldKind::DynString => Kind::Dyn {
            rel: false,
            string: true,
        },
        FieldKind::RelDynString => Kind::Dyn {
            rel: true,
            string: true,
        },
        FieldKind::PtrString => Kind::Ptr,
        FieldKind::Comm => Kind::Comm,
        _ if t.contains("__data_loc") => Kind::Dyn {
            rel: false,
            string: false,
        },
        _ if t.contains("__rel_loc") => Kind::Dyn {
            rel: true,
            string: false,
        },
        _ => Kind::Num,
    };
    Slot {
        name: f.name.as_str().into(),
        kind,
        offset: f.offset,
        size: f.size,
        signed: f.signed,
        array: t.ends_with(']'),
    }
}

/// Alignment the compiler gives the field: its element size (a power of two up
/// to 8) as far as the offset agrees; dynamic words are u32.
fn align_of(s: &Slot, type_name: &str) -> usize {
    if matches!(s.kind, Kind::Dyn { .. }) {
        return 4;
    }
    let elem = match type_name.rfind('[') {
        Some(b) if s.array => match type_name[b + 1..type_name.len() - 1].parse::<usize>() {
            Ok(n) if n > 0 => s.size / n,
            _ => 1,
        },
        _ => s.size,
    };
    [8, 4, 2, 1]
        .into_iter()
        .find(|&a| elem != 0 && elem.is_multiple_of(a) && s.offset.is_multiple_of(a))
        .unwrap_or(1)
}

fn put(out: &mut [u8], off: usize, bytes: &[u8]) {
    let end = out.len().min(off.saturating_add(bytes.len()));
    if let Some(dst) = out.get_mut(off..end) {
        dst.copy_from_slice(&bytes[..dst.len()]);
    }
}

/// C assignment of `v` to an integer of `size` bytes (sign-extended past 16).
fn put_int(out: &mut [u8], off: usize, size: usize, v: i128) {
    let b = v.to_le_bytes();
    let fill = if v < 0 { 0xff } else { 0 };
    for k in 0..size {
        if let Some(d) = out.get_mut(off + k) {
            *d = b.get(k).copied().unwrap_or(fill);
        }
    }
}

fn put_header(out: &mut [u8], c: &Common) {
    put(out, 0, &c.to_bytes());
}

fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

impl RecordLayout {
    /// Compile `fields` for a `TRACE_EVENT`-style record (catalog events).
    pub fn new(fields: &Fields) -> RecordLayout {
        let (mut end, mut align, mut inject_fixed) = (8, 4, 0);
        let mut slots: Vec<Slot> = Vec::new();
        let mut add = |slots: &mut Vec<Slot>, from: usize, f: &crate::control::filter::Field| {
            let s = slot_of(f);
            end = end.max(f.offset.saturating_add(f.size));
            align = align.max(align_of(&s, &f.type_name));
            if slots[from..].iter().all(|o| o.name != s.name) {
                slots.push(s);
            }
        };
        for f in fields.event_fields() {
            inject_fixed = inject_fixed.max(f.offset.saturating_add(f.size));
            add(&mut slots, 0, f);
        }
        let n_event = slots.len();
        slots.extend(GENERIC.iter().map(|&(name, kind, signed)| Slot {
            name: name.into(),
            kind,
            offset: 0,
            size: 0,
            signed,
            array: false,
        }));
        let from = slots.len();
        for f in fields.common_fields() {
            add(&mut slots, from, f);
        }
        RecordLayout {
            slots,
            n_event,
            data_start: end,
            struct_len: end.div_ceil(align) * align,
            inject_fixed,
        }
    }

    /// Override the fixed part's length for records not laid out by a C struct:
    /// synthetic events (8 + their slots; a static string takes 256 bytes there,
    /// which `format` does not show) and user events (8 + the declared fields).
    pub fn with_fixed_len(mut self, len: usize) -> RecordLayout {
        // Never inside the fields the format shows.
        self.data_start = len.max(self.data_start);
        self.struct_len = self.data_start;
        self
    }

    /// Where dynamic data starts (`offsetof(struct, __data)`).
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// `sizeof(struct)`: the record length when there is no dynamic data.
    pub fn struct_len(&self) -> usize {
        self.struct_len
    }

    /// `trace_find_event_field()`: event fields, generic fields, common fields.
    /// Generic fields only exist for inject.
    fn resolve(&self, name: &[u8], inject: bool) -> Option<&Slot> {
        let generic = self.n_event..self.n_event + GENERIC.len();
        self.slots
            .iter()
            .enumerate()
            .find(|(i, s)| s.name.as_bytes() == name && (inject || !generic.contains(i)))
            .map(|(_, s)| s)
    }

    fn check<'s, N: AsRef<str>>(
        &'s self,
        n: &N,
        v: &Value,
        inject: bool,
    ) -> Result<&'s Slot, BuildError> {
        let n = n.as_ref();
        let s = self
            .resolve(n.as_bytes(), inject)
            .ok_or_else(|| BuildError::UnknownField(n.into()))?;
        let ok = match (s.kind, v, inject) {
            (_, Value::Int(_), true) => !s.is_string() && matches!(s.size, 1 | 2 | 4 | 8),
            (_, Value::Str(_), true) => s.is_string(),
            (Kind::Num | Kind::Dyn { .. } | Kind::Ptr, Value::Int(_), false) => true,
            (Kind::Str | Kind::Dyn { .. }, Value::Str(_), false) => true,
            (Kind::Num, Value::Str(_), false) => s.array,
            _ => false,
        };
        if ok {
            Ok(s)
        } else {
            Err(BuildError::WrongType(n.into()))
        }
    }

    /// Build a record as the event's probe would. Fields not given are zero; an
    /// unset `__data_loc char[]` / `char buf[]` is the empty string (one NUL),
    /// other unset dynamic arrays are empty. Integers are truncated to the field
    /// size as C assignment does (an integer for a `__data_loc` field is its raw
    /// word). `char name[N]` takes up to N-1 bytes and a NUL, zero-padded
    /// (`strscpy_pad`); `char buf[]` and dynamic strings take the bytes plus a NUL;
    /// a string for another array field is copied raw. For a repeated field the
    /// last value wins. Generic names (`CPU`, `COMM`, …) are unknown here.
    pub fn build<N: AsRef<str>>(
        &self,
        common: &Common,
        values: &[(N, Value)],
    ) -> Result<Vec<u8>, BuildError> {
        let nul = |s: &Slot| usize::from(s.is_string());
        let mut extra = 0usize;
        for (i, (n, v)) in values.iter().enumerate() {
            let s = self.check(n, v, false)?;
            let last = values[i + 1..]
                .iter()
                .all(|(m, _)| m.as_ref() != n.as_ref());
            if let (true, true, Value::Str(b)) = (s.trailing(), last, v) {
                extra += b.len() + nul(s);
            }
        }
        let event = &self.slots[..self.n_event];
        for s in event.iter().filter(|s| s.trailing()) {
            if values.iter().all(|(m, _)| m.as_ref() != &*s.name) {
                extra += nul(s);
            }
        }
        let mut out = vec![0u8; self.struct_len + extra];
        put_header(&mut out, common);
        let mut cur = self.data_start;
        for s in event.iter().filter(|s| s.trailing()) {
            let data: &[u8] = match values.iter().rev().find(|(m, _)| m.as_ref() == &*s.name) {
                Some((_, Value::Int(_))) => continue,
                Some((_, Value::Str(b))) => b,
                None => b"",
            };
            let len = data.len() + nul(s);
            put(&mut out, cur, data);
            if let Kind::Dyn { rel, .. } = s.kind {
                let off = if rel {
                    cur.saturating_sub(s.offset + 4)
                } else {
                    cur
                };
                if off > 0xffff || len > 0xffff {
                    return Err(BuildError::TooLong(s.name.to_string()));
                }
                put(
                    &mut out,
                    s.offset,
                    &((len << 16 | off) as u32).to_le_bytes(),
                );
            }
            cur += len;
        }
        for (n, v) in values {
            let Some(s) = self.resolve(n.as_ref().as_bytes(), false) else {
                continue;
            };
            match (s.kind, v) {
                (_, Value::Int(x)) => put_int(&mut out, s.offset, s.size, *x),
                (_, Value::Str(_)) if s.trailing() => {}
                (kind, Value::Str(b)) => {
                    let keep = if kind == Kind::Str {
                        s.size - 1
                    } else {
                        s.size
                    };
                    let b = &b[..b.len().min(keep)];
                    put(&mut out, s.offset, b);
                    let pad = s.offset.saturating_add(b.len())..s.offset.saturating_add(s.size);
                    out.get_mut(pad).into_iter().for_each(|p| p.fill(0));
                }
            }
        }
        Ok(out)
    }

    /// Build the record `parse_entry()` would, from [`parse_inject`]'s values, in
    /// order: `trace_alloc_entry()` makes `trace_get_entry_size() + 1` zeroed bytes
    /// (the kernel's size is 0 for an event without fields, and it then writes the
    /// 8-byte header past its 1-byte allocation; we use 8) with every dynamic
    /// string pointing, length 0, at that extra NUL and every `char *` at `""`;
    /// `tracing_generic_entry_update()` fills the header from `common`. Then per
    /// value: `char[N]` gets `strscpy()` (no padding: a shorter repeat leaves the
    /// tail of the longer one; `char buf[]`, size 0, gets nothing); each dynamic
    /// string is appended (a repeat appends again and repoints the word);
    /// `char *` and `COMM` get a pointer to [`INJECT_STRING`] (8 bytes at the
    /// field's offset: `COMM` overwrites the header); integers are truncated to
    /// 1/2/4/8 bytes; `common_*` values overwrite the header.
    pub fn build_inject<N: AsRef<str>>(
        &self,
        common: &Common,
        values: &[(N, Value)],
    ) -> Result<Vec<u8>, BuildError> {
        let e = self.inject_fixed.max(8);
        let mut extra = 0usize;
        for (n, v) in values {
            let s = self.check(n, v, true)?;
            if let (Kind::Dyn { .. }, Value::Str(b)) = (s.kind, v) {
                extra += cstr(b).len() + 1;
            }
        }
        let mut out = Vec::with_capacity(e + 1 + extra);
        out.resize(e + 1, 0);
        put_header(&mut out, common);
        let loc = |s: &Slot, len: usize, at: usize| -> [u8; 4] {
            let mut at = (at & 0xffff) as i32;
            if let Kind::Dyn { rel: true, .. } = s.kind {
                at = at.wrapping_sub((s.offset + s.size) as i32);
            }
            ((len << 16) as u32 | at as u32).to_le_bytes()
        };
        for s in &self.slots[..self.n_event] {
            match s.kind {
                Kind::Dyn { string: true, .. } => put(&mut out, s.offset, &loc(s, 0, e)),
                Kind::Ptr => put(&mut out, s.offset, &EMPTY_STRING_ADDR.to_le_bytes()),
                _ => {}
            }
        }
        for (n, v) in values {
            let Some(s) = self.resolve(n.as_ref().as_bytes(), true) else {
                continue;
            };
            match (s.kind, v) {
                (_, Value::Int(x)) => put_int(&mut out, s.offset, s.size, *x),
                (Kind::Str, Value::Str(b)) if s.size > 0 => {
                    let b = cstr(b);
                    let b = &b[..b.len().min(s.size - 1)];
                    put(&mut out, s.offset, b);
                    put(&mut out, s.offset + b.len(), &[0]);
                }
                (Kind::Dyn { .. }, Value::Str(b)) => {
                    let (b, at) = (cstr(b), out.len());
                    out.extend_from_slice(b);
                    out.push(0);
                    put(&mut out, s.offset, &loc(s, b.len() + 1, at));
                }
                (Kind::Ptr | Kind::Comm, Value::Str(_)) => {
                    put(&mut out, s.offset, &INJECT_STRING_ADDR.to_le_bytes())
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// A whole `inject` write: [`parse_inject`] then [`RecordLayout::build_inject`].
    pub fn inject(&self, common: &Common, text: &[u8]) -> Result<Vec<u8>, i32> {
        let values = parse_inject(text, self)?;
        self.build_inject(common, &values).map_err(|_| libc::EINVAL)
    }
}

/// [`RecordLayout::new`] then [`RecordLayout::build`].
pub fn build<N: AsRef<str>>(
    fields: &Fields,
    common: &Common,
    values: &[(N, Value)],
) -> Result<Vec<u8>, BuildError> {
    RecordLayout::new(fields).build(common, values)
}

// Kernel ctype (lib/ctype.c, Latin-1).
fn k_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}
fn k_isalnum(c: u8) -> bool {
    c.is_ascii_alphanumeric() || (c >= 0xc0 && c != 0xd7 && c != 0xf7)
}

/// `_kstrtoull(s, 0)` (lib/kstrtox.c): radix from `0x`/`0` prefixes
/// (`_parse_integer_fixup_radix`: `0x` only if a hex digit follows), overflow is
/// ERANGE even before a bad character, no digits or trailing junk is EINVAL.
fn kstrtoull_raw(s: &[u8]) -> Result<u64, i32> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut base = 10u64;
    let mut i = 0;
    if at(0) == b'0' {
        base = if at(1).eq_ignore_ascii_case(&b'x') && at(2).is_ascii_hexdigit() {
            16
        } else {
            8
        };
        if base == 16 {
            i = 2;
        }
    }
    let (start, mut res, mut overflow) = (i, 0u64, false);
    while let Some(val) = (at(i) as char)
        .to_digit(16)
        .filter(|&d| u64::from(d) < base)
    {
        let val = u64::from(val);
        if res & (!0u64 << 60) != 0 && res > (u64::MAX - val) / base {
            overflow = true;
        }
        res = res.wrapping_mul(base).wrapping_add(val);
        i += 1;
    }
    if overflow {
        return Err(libc::ERANGE);
    }
    if i == start || s.len() > i + usize::from(at(i) == b'\n') {
        return Err(libc::EINVAL);
    }
    Ok(res)
}

/// `kstrtoull()`: an optional leading `+`.
fn kstrtoull(s: &[u8]) -> Result<u64, i32> {
    kstrtoull_raw(s.strip_prefix(b"+").unwrap_or(s))
}

/// `kstrtoll()`: `-` then `_kstrtoull`, ERANGE outside i64.
fn kstrtoll(s: &[u8]) -> Result<i64, i32> {
    match s.strip_prefix(b"-") {
        Some(rest) => {
            let t = kstrtoull_raw(rest)?;
            let v = t.wrapping_neg() as i64;
            if v > 0 { Err(libc::ERANGE) } else { Ok(v) }
        }
        None => i64::try_from(kstrtoull(s)?).map_err(|_| libc::ERANGE),
    }
}

/// Parse an `inject` write exactly as `event_inject_write()`/`parse_entry()`/
/// `parse_field()` do, returning the assignments in order (apply them with
/// [`RecordLayout::build_inject`]); an empty or all-blank write is `Ok(vec![])`
/// and still injects a record.
///
/// * `cnt >= PAGE_SIZE` → EINVAL; the buffer is a C string (`memdup_user_nul`)
///   with trailing whitespace cut (`strim`); ctype is Latin-1.
/// * Tokens (`parse_field`): blanks, a name of `[A-Za-z0-9_]` (and Latin-1
///   letters) — none → EINVAL, no such field (event, generic, common order of
///   `trace_find_event_field`) → ENOENT; blanks, `=` (else EINVAL), blanks; then
///   * a digit or `-`: EINVAL for a string field; `-`? then alphanumerics, which
///     must end at NUL or a blank (else EINVAL), parsed by `kstrtoll` (signed
///     fields) or `kstrtoull` base 0 (so `0x1f`, `017`; `-` on an unsigned field
///     is EINVAL; overflow ERANGE);
///   * `'` or `"`: EINVAL for a non-string field; up to the same quote, a `\`
///     skipping the next byte but kept verbatim; unterminated → EINVAL; 256 bytes
///     or more → EINVAL; the next token may follow the quote directly;
///   * anything else → EINVAL.
/// * `parse_entry`: an integer field whose size is not 1, 2, 4 or 8 (arrays,
///   structs, the size-0 generic `CPU`/`cpu`/`common_cpu`/`stacktrace`) → EINVAL.
///   `common_*` fields may be set. Every field is checked in turn, so the first
///   bad token decides the errno. (`is_function_field` only concerns ftrace's
///   function events, which have no `inject` file; ENOMEM is not reproduced.)
pub fn parse_inject(
    text: &[u8],
    layout: &RecordLayout,
) -> Result<Vec<(String, Value<'static>)>, i32> {
    const EINVAL: i32 = libc::EINVAL;
    if text.len() >= MAX_INJECT_WRITE {
        return Err(EINVAL);
    }
    let mut s = cstr(text);
    while let [rest @ .., c] = s {
        if !k_isspace(*c) {
            break;
        }
        s = rest;
    }
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let skip = |mut i: usize| {
        while k_isspace(at(i)) {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        i = skip(i);
        let start = i;
        while k_isalnum(at(i)) || at(i) == b'_' {
            i += 1;
        }
        if i == start {
            return Err(EINVAL);
        }
        let f = layout.resolve(&s[start..i], true).ok_or(libc::ENOENT)?;
        i = skip(i);
        if at(i) != b'=' {
            return Err(EINVAL);
        }
        i = skip(i + 1);
        let start = i;
        let value = match at(i) {
            c if c.is_ascii_digit() || c == b'-' => {
                if f.is_string() {
                    return Err(EINVAL);
                }
                i += usize::from(c == b'-');
                while k_isalnum(at(i)) {
                    i += 1;
                }
                if at(i) != 0 && !k_isspace(at(i)) {
                    return Err(EINVAL);
                }
                let num = &s[start..i];
                let v = if f.signed {
                    i128::from(kstrtoll(num)?)
                } else {
                    i128::from(kstrtoull(num)?)
                };
                if !matches!(f.size, 1 | 2 | 4 | 8) {
                    return Err(EINVAL);
                }
                Value::Int(v)
            }
            q @ (b'\'' | b'"') => {
                if !f.is_string() {
                    return Err(EINVAL);
                }
                i += 1;
                while i < s.len() && s[i] != q {
                    i += if s[i] == b'\\' && i + 1 < s.len() {
                        2
                    } else {
                        1
                    };
                }
                if i >= s.len() || i - (start + 1) >= MAX_STR_VAL {
                    return Err(EINVAL);
                }
                i += 1;
                Value::Str(Cow::Owned(s[start + 1..i - 1].to_vec()))
            }
            _ => return Err(EINVAL),
        };
        out.push((f.name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::catalog::Catalog;
    use libc::{EINVAL, ENOENT};
    use proptest::prelude::*;

    const HDR: &str = "format:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";
    const C: Common = Common {
        type_id: 0x1234,
        flags: 1,
        preempt_count: 2,
        pid: -3,
    };

    fn catalog(name: &str) -> RecordLayout {
        let cat = Catalog::embedded();
        let ev = cat.events.iter().find(|e| e.name == name).unwrap();
        RecordLayout::new(&Fields::from_format(&ev.format))
    }
    fn custom(fields: &[(&str, usize, usize, u8)]) -> RecordLayout {
        let mut f = HDR.to_string();
        for (decl, off, size, signed) in fields {
            f += &format!("\tfield:{decl};\toffset:{off};\tsize:{size};\tsigned:{signed};\n");
        }
        RecordLayout::new(&Fields::from_format(&f))
    }
    fn u32_at(r: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(r[o..o + 4].try_into().unwrap())
    }
    fn v(n: &str, x: i128) -> (&str, Value<'static>) {
        (n, Value::Int(x))
    }
    fn s<'a>(n: &'a str, b: &'a [u8]) -> (&'a str, Value<'a>) {
        (n, Value::str(b))
    }
    /// Every string `__data_loc`/`__rel_loc` word of `r` points inside `r`.
    fn locs_inside(l: &RecordLayout, r: &[u8]) -> bool {
        l.slots[..l.n_event].iter().all(|f| match f.kind {
            Kind::Dyn { rel, string: true } => {
                let w = u32_at(r, f.offset) as usize;
                let base = if rel { f.offset + f.size } else { 0 };
                base + (w & 0xffff) + (w >> 16) <= r.len()
            }
            _ => true,
        })
    }

    #[test]
    fn fork_two_data_loc_strings() {
        let l = catalog("sched_process_fork");
        assert_eq!((l.data_start(), l.struct_len()), (24, 24));
        let vals = [
            s("parent_comm", b"bash"),
            v("parent_pid", 1),
            s("child_comm", b"sh"),
            v("child_pid", 2),
        ];
        let r = l.build(&C, &vals).unwrap();
        assert_eq!(r.len(), 24 + 5 + 3);
        assert_eq!(&r[..8], &[0x34, 0x12, 1, 2, 0xfd, 0xff, 0xff, 0xff]);
        assert_eq!(u32_at(&r, 8), 5 << 16 | 24);
        assert_eq!(u32_at(&r, 16), 3 << 16 | 29);
        assert_eq!((u32_at(&r, 12), u32_at(&r, 20)), (1, 2));
        assert_eq!(&r[24..], b"bash\0sh\0");
        // Unset dynamic strings are "" (one NUL each).
        let r = l.build::<&str>(&C, &[]).unwrap();
        assert_eq!(
            (r.len(), u32_at(&r, 8), u32_at(&r, 16)),
            (26, 1 << 16 | 24, 1 << 16 | 25)
        );
    }

    #[test]
    fn exit_comm_and_bool() {
        let l = catalog("sched_process_exit");
        assert_eq!((l.data_start(), l.struct_len()), (33, 36));
        let vals = [
            s("comm", b"abcdefghijklmnopqrstuvwxyz"),
            v("group_dead", 0x101),
            v("prio", -1),
        ];
        let r = l.build(&C, &vals).unwrap();
        assert_eq!(r.len(), 36);
        assert_eq!(&r[8..24], b"abcdefghijklmno\0");
        assert_eq!((r[32], u32_at(&r, 28)), (1, u32::MAX));
        // A shorter repeat is zero padded; the last value wins.
        let r = l
            .build(&C, &[s("comm", b"abcdef"), s("comm", b"x")])
            .unwrap();
        assert_eq!(&r[8..24], b"x\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(
            l.build(&C, &[v("nope", 1)]),
            Err(BuildError::UnknownField("nope".into()))
        );
        assert_eq!(
            l.build(&C, &[v("comm", 1)]),
            Err(BuildError::WrongType("comm".into()))
        );
        assert_eq!(
            l.build(&C, &[s("pid", b"1")]),
            Err(BuildError::WrongType("pid".into()))
        );
        assert!(l.build(&C, &[v("CPU", 1)]).is_err());
    }

    #[test]
    fn print_flexible_buf() {
        let l = catalog("print");
        assert_eq!((l.data_start(), l.struct_len()), (16, 16));
        let r = l
            .build(&C, &[v("ip", 0xffff_ffff_8100_0000), s("buf", b"hello\n")])
            .unwrap();
        assert_eq!(r.len(), 16 + 7);
        assert_eq!(&r[8..16], &0xffff_ffff_8100_0000u64.to_le_bytes());
        assert_eq!(&r[16..], b"hello\n\0");
        assert_eq!(l.build::<&str>(&C, &[]).unwrap().len(), 17);
    }

    #[test]
    fn synthetic_and_rel_loc() {
        // Synthetic: every field in an 8-byte slot, the data_loc word in 8 bytes.
        let l = custom(&[
            ("__data_loc char[] s", 8, 8, 1),
            ("u64 a", 16, 8, 0),
            ("s64 b", 24, 8, 1),
        ])
        .with_fixed_len(32);
        let r = l
            .build(&C, &[s("s", b"xyz"), v("a", u64::MAX.into()), v("b", -2)])
            .unwrap();
        assert_eq!(
            (r.len(), u32_at(&r, 8), u32_at(&r, 12)),
            (36, 4 << 16 | 32, 0)
        );
        assert_eq!(&r[16..24], &[0xff; 8]);
        assert_eq!(&r[24..32], &(-2i64).to_le_bytes());
        assert_eq!(&r[32..], b"xyz\0");
        // __rel_loc: offset from the end of the word.
        let l = custom(&[
            ("u32 x", 8, 4, 0),
            ("__rel_loc char[] r", 12, 4, 0),
            ("u8 d[3]", 16, 3, 0),
        ]);
        assert_eq!((l.data_start(), l.struct_len()), (19, 20));
        let r = l
            .build(&C, &[s("r", b"hi"), s("d", b"\x01\x02\x03\x04")])
            .unwrap();
        assert_eq!((r.len(), u32_at(&r, 12)), (23, 3 << 16 | 3));
        assert_eq!((&r[16..19], &r[19..22]), (&[1u8, 2, 3][..], &b"hi\0"[..]));
        assert!(locs_inside(&l, &r));
        // Struct alignment from an 8-byte member.
        assert_eq!(
            custom(&[("u64 a", 8, 8, 0), ("u32 b", 16, 4, 0)]).struct_len(),
            24
        );
    }

    #[test]
    fn integer_truncation_and_sign() {
        let l = custom(&[
            ("u8 a", 8, 1, 0),
            ("s16 b", 10, 2, 1),
            ("u32 c", 12, 4, 0),
            ("u64 d", 16, 8, 0),
        ]);
        let r = l
            .build(
                &C,
                &[v("a", 0x1ff), v("b", -2), v("c", 0x1_0000_0005), v("d", -1)],
            )
            .unwrap();
        assert_eq!(
            (r[8], &r[10..12], u32_at(&r, 12)),
            (0xff, &[0xfe, 0xff][..], 5)
        );
        assert_eq!(&r[16..24], &[0xff; 8]);
        let r = l
            .build(&C, &[v("common_pid", 7), v("common_type", 0x10002)])
            .unwrap();
        assert_eq!((u32_at(&r, 4), r[0], r[1]), (7, 2, 0));
    }

    #[test]
    fn inject_layout() {
        let l = catalog("sched_process_fork");
        let r = l
            .inject(&C, b"  parent_comm = \"bash\"   child_pid=0x10 \n")
            .unwrap();
        assert_eq!(r.len(), 24 + 1 + 5);
        assert_eq!(
            (u32_at(&r, 8), u32_at(&r, 16), u32_at(&r, 20)),
            (5 << 16 | 25, 24, 16)
        );
        assert_eq!(&r[24..], b"\0bash\0");
        // Empty and blank writes inject a default record.
        assert_eq!(l.inject(&C, b"").unwrap().len(), 25);
        assert_eq!(parse_inject(b" \t\n", &l), Ok(vec![]));
        // A repeat appends again; the word points at the last copy.
        let r = l.inject(&C, b"child_comm='a' child_comm='bc'").unwrap();
        assert_eq!(
            (&r[24..], u32_at(&r, 16)),
            (&b"\0a\0bc\0"[..], 3 << 16 | 27)
        );
        // Common fields may be set; the rest of the header comes from `common`.
        let r = l.inject(&C, b"common_pid=-5 common_type=7").unwrap();
        assert_eq!((&r[..4], u32_at(&r, 4)), (&[7, 0, 1, 2][..], -5i32 as u32));
        // Generic COMM: a pointer at offset 0 over the header.
        let r = l.inject(&C, b"COMM=\"x\"").unwrap();
        assert_eq!(&r[..8], &INJECT_STRING_ADDR.to_le_bytes());
        // char[16]: strscpy, no padding; backslash kept; next token right after the quote.
        let l = catalog("sched_process_exit");
        let r = l.inject(&C, b"comm=\"abcdef\" comm='x\\'y'pid=-1").unwrap();
        assert_eq!(
            (&r[8..17], u32_at(&r, 24), r.len()),
            (&b"x\\'y\0f\0\0\0"[..], u32::MAX, 34)
        );
        let r = l
            .inject(&C, b"comm=\"abcdefghijklmnopqrstuvwxyz\"")
            .unwrap();
        assert_eq!(&r[8..24], b"abcdefghijklmno\0");
        // __rel_loc, and char * fields.
        let l = custom(&[
            ("__rel_loc char[] r", 8, 4, 0),
            ("const char * p", 16, 8, 0),
        ]);
        let r = l.inject(&C, b"").unwrap();
        assert_eq!((r.len(), u32_at(&r, 8)), (25, 12));
        assert_eq!(&r[16..24], &EMPTY_STRING_ADDR.to_le_bytes());
        let r = l.inject(&C, b"r=\"hi\" p=\"zz\"").unwrap();
        assert_eq!(
            (r.len(), u32_at(&r, 8), &r[25..]),
            (28, 3 << 16 | 13, &b"hi\0"[..])
        );
        assert_eq!(&r[16..24], &INJECT_STRING_ADDR.to_le_bytes());
        assert!(locs_inside(&l, &r));
    }

    #[test]
    fn inject_numbers() {
        let l = custom(&[("int i", 8, 4, 1), ("u64 u", 16, 8, 0), ("s64 s", 24, 8, 1)]);
        let num = |t: &str| parse_inject(t.as_bytes(), &l).map(|v| v[0].1.clone());
        // `text => value` or `text !errno`.
        let table = "u=0x1F => 31; u=0X1f => 31; u=017 => 15; u=0 => 0; s=-0x10 => -16; \
            u=18446744073709551615 => 18446744073709551615; i=99999999999 => 99999999999; \
            s=-9223372036854775808 => -9223372036854775808; u=18446744073709551616 !34; \
            u=99999999999999999999z !34; s=9223372036854775808 !34; s=-9223372036854775809 !34; \
            u=-1 !22; u=08 !22; u=0x !22; u=0xg !22; s=- !22; u=1, !22; u=1.5 !22; u=+1 !22";
        for case in table.split("; ") {
            let (t, want) = match case.split_once(" => ") {
                Some((t, n)) => (t, Ok(Value::Int(n.parse().unwrap()))),
                None => case
                    .split_once(" !")
                    .map(|(t, e)| (t, Err(e.parse().unwrap())))
                    .unwrap(),
            };
            assert_eq!(num(t), want, "{t}");
        }
        assert_eq!(num("u=1\u{e0}"), Err(EINVAL));
        let r = l.inject(&C, b"i=0x100000001").unwrap();
        assert_eq!(u32_at(&r, 8), 1);
    }

    #[test]
    fn inject_errors() {
        let l = custom(&[
            ("char comm[16]", 8, 16, 0),
            ("pid_t pid", 24, 4, 1),
            ("u8 d[16]", 28, 16, 0),
        ]);
        let p = |t: &[u8]| parse_inject(t, &l).map(|v| v.len());
        assert_eq!(p(&[b' '; 4095]), Ok(0));
        assert_eq!(p(&[b' '; 4096]), Err(EINVAL));
        let long = format!("comm=\"{}\"", "x".repeat(255));
        assert_eq!(p(long.as_bytes()), Ok(1));
        let long = format!("comm=\"{}\"", "x".repeat(256));
        assert_eq!(p(long.as_bytes()), Err(EINVAL));
        // `text|result`: an errno, or `+n` for n assignments.
        let table = "=1|22 ~pid=1 =2|22 ~nosuch=1|2 ~nosuch|2 ~pid|22 ~pid 1|22 ~pid=|22 ~pid=abc|22 \
            ~pid=1x|22 ~comm=1|22 ~comm=-|22 ~pid=\"1\"|22 ~comm=\"abc|22 ~comm='abc\"|22 \
            ~comm=\"abc\\\"|22 ~comm=abc|22 ~d=1|22 ~d=\"x\"|22 ~CPU=1|22 ~common_cpu=1|22 \
            ~stacktrace=1|22 ~COMM=1|22 ~pid=1 nosuch=2|2 ~pid = 1\tcomm = 'a b' |+2";
        for case in table.split(" ~") {
            let (t, r) = case.rsplit_once('|').unwrap();
            let want = r
                .strip_prefix('+')
                .map_or_else(|| Err(r.parse().unwrap()), |n| Ok(n.parse().unwrap()));
            assert_eq!(p(t.as_bytes()), want, "{t}");
        }
        assert_eq!(p(b"pid\xc0=1"), Err(ENOENT));
        assert_eq!(p(b"pid=1\0nosuch=2"), Ok(1));
        assert_eq!(p(b"pid=\xa01\xa0\n"), Ok(1));
    }

    #[test]
    fn every_catalog_event_builds_empty() {
        for ev in Catalog::embedded().events {
            let f = Fields::from_format(&ev.format);
            let l = RecordLayout::new(&f);
            let strings = l.slots[..l.n_event]
                .iter()
                .filter(|s| s.trailing() && s.is_string())
                .count();
            let r = l.build::<&str>(&Common::default(), &[]).unwrap();
            assert_eq!(r.len(), l.struct_len() + strings, "{}", ev.name);
            assert!(
                l.data_start() <= l.struct_len() && l.struct_len().is_multiple_of(4),
                "{}",
                ev.name
            );
            assert!(locs_inside(&l, &r), "{}", ev.name);
            let e = f
                .event_fields()
                .iter()
                .map(|x| x.offset + x.size)
                .max()
                .unwrap_or(0);
            let r = l.inject(&Common::default(), b"").unwrap();
            assert_eq!(r.len(), e.max(8) + 1, "{}", ev.name);
            assert!(locs_inside(&l, &r), "{}", ev.name);
        }
    }

    /// Per layout: (field, is a string field).
    const LAYOUT_NAMES: [&[(&str, bool)]; 4] = [
        &[
            ("parent_comm", true),
            ("child_comm", true),
            ("child_pid", false),
            ("parent_pid", false),
        ],
        &[
            ("comm", true),
            ("pid", false),
            ("prio", false),
            ("group_dead", false),
        ],
        &[("s", true), ("a", false), ("comm", true)],
        &[("r", true), ("p", true), ("pid", false)],
    ];
    fn layout(which: usize) -> RecordLayout {
        match which {
            0 => catalog("sched_process_fork"),
            1 => catalog("sched_process_exit"),
            2 => custom(&[
                ("__data_loc char[] s", 8, 8, 1),
                ("u64 a", 16, 8, 0),
                ("char comm[16]", 24, 16, 1),
            ]),
            _ => custom(&[
                ("__rel_loc char[] r", 8, 4, 0),
                ("const char * p", 16, 8, 0),
                ("int pid", 24, 4, 1),
            ]),
        }
    }
    fn token(which: usize) -> impl Strategy<Value = String> {
        let field = prop::sample::select(LAYOUT_NAMES[which]).prop_flat_map(|(n, string)| {
            let good = if string {
                "[\"][a-z \\\\']{0,30}[\"]|'[a-z \\\\]{0,30}'"
            } else {
                "[1-9][0-9]{0,5}|0x[0-9a-f]{1,16}|-[1-9][0-9]{0,4}"
            };
            let bad = "-?(0x)?[0-9a-fz]{1,21}|\"[ -~]{0,20}\"|'[a-z]{250,260}'|[\"'][ -~]{0,8}";
            (Just(n), prop_oneof![6 => good, 1 => bad])
        });
        let odd = prop::sample::select(vec!["common_pid", "common_type", "COMM", "CPU", "nosuch"]);
        let name_value = prop_oneof![8 => field, 1 => (odd, "-?[0-9]{1,3}|\"x\"")];
        prop_oneof![
            12 => (name_value, " ?= ?", "[ \t]{1,2}").prop_map(|((n, v), e, w)| format!("{n}{e}{v}{w}")),
            1 => "[\\x00-\\xff]{1,3}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        #[test]
        fn inject_never_panics(
            (which, toks) in (0usize..4).prop_flat_map(|w| (Just(w), prop::collection::vec(token(w), 0..8)))
        ) {
            let l = layout(which);
            let text = toks.concat();
            if let Ok(vals) = parse_inject(text.as_bytes(), &l) {
                let r = l.build_inject(&C, &vals).unwrap();
                prop_assert!(locs_inside(&l, &r));
                if let Ok(r) = l.build(&C, &vals) {
                    prop_assert!(locs_inside(&l, &r));
                }
            }
        }
    }
}
