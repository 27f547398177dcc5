//! Dynamic events: synthetic events and user events as defined through
//! `dynamic_events` and `synthetic_events` (spec §12.1, §12.3, §12.4, §9.1).
//!
//! Pure parsing / formatting only; the registry (existence, busy state,
//! CAP_PERFMON, creation order) belongs to the caller.
//!
//! Behaviour mirrors the kernel sources:
//! * `kernel/trace/trace.c` `trace_parse_run_command` → [`split_lines`];
//! * `kernel/trace/trace_dynevent.c` `create_dyn_event` / `dyn_event_release`;
//! * `kernel/trace/trace_events_synth.c` (`create_synth_event`,
//!   `create_or_delete_synth_event`, `check_command`, `__create_synth_event`,
//!   `parse_synth_field`, `synth_field_size`, `synth_field_signed`,
//!   `synth_field_fmt`, `synth_event_define_fields`,
//!   `__set_synth_event_print_fmt`, `__synth_event_show`);
//! * `kernel/trace/trace_events_user.c` (`user_event_create`,
//!   `user_event_parse_cmd`, `user_event_parse_field`, `user_field_size`,
//!   `user_field_format`, `user_event_set_print_fmt`, `user_event_show`,
//!   `user_event_match`);
//! * `kernel/trace/trace_events.c` `f_show` (format lines).
//!
//! Not supported: kprobe (`p:`/`r:`), uprobe and eprobe (`e:`) commands. They
//! are rejected with EINVAL (the kernel's result when no handler accepts a
//! command), with no error_log entry.
//!
//! Known, deliberate deviations from the kernel:
//! * non-UTF-8 input gives EINVAL (no error_log entry);
//! * a synthetic event name longer than NAME_MAX (255) is rejected as
//!   `Illegal name` (the kernel has no length limit for synthetic names, the
//!   64-character limit of §12.1 applies only to probe events);
//! * a user event name that is empty, `.`/`..`, contains `/` or is longer than
//!   255 bytes is rejected with EINVAL (the kernel does not check; such names
//!   cannot be directory names);
//! * `f_show` prints fixed arrays as `type name[len]` using
//!   `ftrace_event_field.len`. Synthetic events register fields with
//!   `trace_define_field` (len 0) and user events never set `len` (kmalloc;
//!   zero with init_on_alloc), so both print `char name[]` here.
//! * only ASCII whitespace counts as `isspace` (the kernel's Latin-1 ctype also
//!   treats 0xA0 as space).

use std::fmt::Write as _;

/// `WRITE_BUFSIZE` of trace_parse_run_command.
pub const WRITE_BUFSIZE: usize = 4096;
/// Maximum number of fields of a synthetic event.
pub const SYNTH_FIELDS_MAX: usize = 64;
/// Slot size of a fixed synthetic string (and maximum N of `char[N]`).
pub const STR_VAR_LEN_MAX: u32 = 256;
/// Maximum array size of a user event `char[N]`.
pub const MAX_FIELD_ARRAY_SIZE: u32 = 1024;
/// `sizeof(struct trace_entry)`: offset of the first event field.
pub const TRACE_ENTRY_SIZE: u32 = 8;
const NAME_MAX: usize = 255;

pub const SYNTH_SYSTEM: &str = "synthetic";
pub const USER_EVENTS_SYSTEM: &str = "user_events";

pub const LOC_SYNTHETIC: &str = "synthetic_events";
pub const LOC_DYNAMIC: &str = "dynamic_events";

pub const ERR_BAD_NAME: &str = "Illegal name";
pub const ERR_INVALID_CMD: &str = "Command must be of the form: <name> field[;field] ...";
pub const ERR_INVALID_DYN_CMD: &str =
    "Command must be of the form: s or -:[synthetic/]<name> field[;field] ...";
pub const ERR_EVENT_EXISTS: &str = "Event already exists";
pub const ERR_TOO_MANY_FIELDS: &str = "Too many fields";
pub const ERR_INCOMPLETE_TYPE: &str = "Incomplete type";
pub const ERR_INVALID_TYPE: &str = "Invalid type";
pub const ERR_INVALID_FIELD: &str = "Invalid field";
pub const ERR_INVALID_ARRAY_SPEC: &str = "Invalid array specification";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Synthetic,
    User,
}

/// One field of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// Type as written back: synthetic events without the `__data_loc `
    /// prefix (`u64`, `unsigned int`, `char[16]`, `char[]`, `long[]`); user
    /// events exactly as the kernel keeps it (`u32`, `char[16]`,
    /// `__data_loc char[]`, `struct foo`).
    pub ty: String,
    pub name: String,
    /// Only for user-event `struct <type> <name> <size>` fields.
    pub struct_size: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynEventDef {
    pub kind: Kind,
    pub name: String,
    pub fields: Vec<FieldDef>,
}

/// Record layout of one event field (offsets from the start of the record,
/// i.e. including the 8-byte common header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: String,
    /// The kernel's `field->type` (synthetic dynamic fields carry
    /// `__data_loc `).
    pub field_type: String,
    pub offset: u32,
    /// `size:` shown in `format`.
    pub size: u32,
    /// Bytes the field occupies in the fixed part of the record (synthetic:
    /// 8, or 256 for a fixed string; user: `size`).
    pub slot: u32,
    pub signed: bool,
    /// A string (`char[N]`, `char[]`, `__data_loc char[]`).
    pub is_string: bool,
    /// Stored as a 32-bit `(len << 16) | offset` location word (in an 8-byte
    /// slot for synthetic events); data follows the fixed part.
    pub is_dynamic: bool,
    /// `__rel_loc` (user events): offset relative to the end of the word.
    pub is_rel: bool,
    /// Synthetic `long[]` stacktrace.
    pub is_stack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create(DynEventDef),
    /// `kind` is `Some(Synthetic)` only for `!name` in `synthetic_events`; the
    /// kernel ignores the letter of `!s:`/`!u:` in `dynamic_events` (any dyn
    /// event matching system/name is deleted), so it is `None` there. Match
    /// candidates with [`DynEventDef::matches_delete`] and [`delete_args`].
    Delete {
        kind: Option<Kind>,
        system: Option<String>,
        name: String,
    },
}

/// Why a line failed. `message` empty means the kernel writes no error_log
/// entry (only synthetic-event errors are logged, under `synthetic_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError {
    pub errno: i32,
    pub location: &'static str,
    pub message: String,
    pub command: String,
    pub pos: usize,
}

impl DefError {
    /// Whether the kernel logs this error in `error_log`.
    pub fn logged(&self) -> bool {
        !self.message.is_empty()
    }

    fn plain(errno: i32, cmd: &[u8]) -> DefError {
        DefError {
            errno,
            location: LOC_DYNAMIC,
            message: String::new(),
            command: st(cmd),
            pos: 0,
        }
    }

    fn synth(errno: i32, msg: &str, cmd: &[u8], pos: usize) -> DefError {
        DefError {
            errno,
            location: LOC_SYNTHETIC,
            message: msg.to_string(),
            command: st(cmd),
            pos,
        }
    }
}

// ---------------------------------------------------------------- helpers

fn st(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| is_space(c)).count();
    &b[n..]
}

/// Kernel `argv_split`: whitespace-separated words, no quoting.
fn argv_split(b: &[u8]) -> Vec<&[u8]> {
    b.split(|&c| is_space(c))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Kernel `is_good_name`: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_good_name(b: &[u8]) -> bool {
    match b.first() {
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' => b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_'),
        _ => false,
    }
}

/// `strstr`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.contains(needle)
}

/// Kernel `err_pos`: first occurrence of `s` in the command, else 0.
fn err_pos(cmd: &[u8], s: &[u8]) -> usize {
    if cmd.is_empty() {
        return 0;
    }
    find(cmd, s).unwrap_or(0)
}

/// Kernel `kstrtouint` (base 0 or 10): optional `+`, radix prefix for base 0,
/// one trailing `\n` allowed, no overflow.
fn kstrtouint(s: &[u8], base: u32) -> Option<u32> {
    let mut s = s;
    if s.first() == Some(&b'+') {
        s = &s[1..];
    }
    let mut radix = base;
    if base == 0 {
        if s.first() == Some(&b'0') {
            if s.get(1).map(|c| c.to_ascii_lowercase()) == Some(b'x')
                && s.get(2).is_some_and(|c| c.is_ascii_hexdigit())
            {
                radix = 16;
                s = &s[2..];
            } else {
                radix = 8;
            }
        } else {
            radix = 10;
        }
    }
    let mut val: u64 = 0;
    let mut n = 0usize;
    for &c in s {
        let d = match (c as char).to_digit(16) {
            Some(d) if d < radix => d,
            _ => break,
        };
        val = val.checked_mul(radix as u64)?.checked_add(d as u64)?;
        if val > u32::MAX as u64 {
            return None;
        }
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let rest = &s[n..];
    if !(rest.is_empty() || rest == b"\n") {
        return None;
    }
    u32::try_from(val).ok()
}

// ---------------------------------------------------------------- split

/// Split one write into command lines exactly as `trace_parse_run_command`
/// does (4096-byte chunks, `#` comments cut, a line longer than 4094 bytes
/// plus `\n` — or containing a NUL byte — gives EINVAL). Returns the lines
/// that the kernel would run *before* the failure, and the failure. The
/// kernel runs those earlier lines (and keeps their effects) before returning
/// the error; lines are returned with comments removed and may be empty.
pub fn split_lines_partial(buf: &[u8]) -> (Vec<&[u8]>, Option<i32>) {
    let count = buf.len();
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < count {
        let size = (count - done).min(WRITE_BUFSIZE - 1);
        let chunk = &buf[done..done + size];
        // kbuf[size] = '\0': the chunk is a C string.
        let cstr_len = chunk.iter().position(|&c| c == 0).unwrap_or(size);
        let chunk = &chunk[..cstr_len];
        let mut pos = 0usize;
        loop {
            let rest = &chunk[pos.min(chunk.len())..];
            let (line, sz) = match rest.iter().position(|&c| c == b'\n') {
                Some(i) => (&rest[..i], i + 1),
                None => {
                    let sz = rest.len();
                    if done + sz < count {
                        if pos != 0 {
                            break; // re-read from `done`
                        }
                        return (out, Some(libc::EINVAL));
                    }
                    (rest, sz)
                }
            };
            done += sz;
            let line = match line.iter().position(|&c| c == b'#') {
                Some(h) => &line[..h],
                None => line,
            };
            out.push(line);
            pos += sz;
            if done >= count {
                break;
            }
        }
    }
    (out, None)
}

/// See [`split_lines_partial`]; an error discards the earlier lines.
pub fn split_lines(buf: &[u8]) -> Result<Vec<&[u8]>, i32> {
    match split_lines_partial(buf) {
        (lines, None) => Ok(lines),
        (_, Some(e)) => Err(e),
    }
}

// ---------------------------------------------------------------- synthetic types

fn synth_basic(ty: &str) -> Option<(u32, &'static str)> {
    Some(match ty {
        "s64" => (8, "%lld"),
        "u64" => (8, "%llu"),
        "s32" => (4, "%d"),
        "u32" => (4, "%u"),
        "s16" => (2, "%d"),
        "u16" => (2, "%u"),
        "s8" => (1, "%d"),
        "u8" => (1, "%u"),
        "char" => (1, "%d"),
        "unsigned char" => (1, "%u"),
        "int" => (4, "%d"),
        "unsigned int" => (4, "%u"),
        "long" => (8, "%ld"),
        "unsigned long" => (8, "%lu"),
        "bool" => (1, "%d"),
        "pid_t" => (4, "%d"),
        "gfp_t" => (4, "%x"),
        _ => return None,
    })
}

/// `synth_field_string_size`: Err for -EINVAL.
fn synth_string_size(ty: &str) -> Result<u32, ()> {
    let b = ty.as_bytes();
    let start = find(b, b"char[").ok_or(())? + 5;
    let end = b.iter().position(|&c| c == b']').ok_or(())?;
    if end < start || b.len() > end + 1 {
        return Err(());
    }
    let len = end - start;
    if len > 3 {
        return Err(());
    }
    if len == 0 {
        return Ok(0);
    }
    let size = kstrtouint(&b[start..end], 0).ok_or(())?;
    if size > STR_VAR_LEN_MAX {
        return Err(());
    }
    Ok(size)
}

/// `synth_field_size`: Err for a negative size.
fn synth_field_size(ty: &str) -> Result<u32, ()> {
    if let Some((s, _)) = synth_basic(ty) {
        Ok(s)
    } else if contains(ty, "char[") {
        synth_string_size(ty)
    } else {
        Ok(0) // long[...] stacktrace, or unknown type
    }
}

fn synth_field_fmt(full_ty: &str) -> &'static str {
    if let Some((_, f)) = synth_basic(full_ty) {
        f
    } else if contains(full_ty, "char[") {
        "%.*s"
    } else if contains(full_ty, "long[") {
        "%s"
    } else {
        "%llu"
    }
}

fn synth_layout(fields: &[FieldDef]) -> Vec<FieldLayout> {
    let mut offset = TRACE_ENTRY_SIZE;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let ty = f.ty.as_str();
        let is_str = contains(ty, "char[");
        let is_stack = !is_str && contains(ty, "long[");
        let (size, dynamic) = match synth_field_size(ty) {
            Ok(0) if is_str || is_stack => (8, true),
            Ok(0) | Err(_) => (8, false), // not produced by the parser
            Ok(s) => (s, false),
        };
        let full = if dynamic {
            format!("__data_loc {ty}")
        } else {
            ty.to_string()
        };
        let slot = if is_str && !dynamic {
            STR_VAR_LEN_MAX
        } else {
            8
        };
        let signed = !(full.starts_with('u') || full == "gfp_t");
        out.push(FieldLayout {
            name: f.name.clone(),
            field_type: full,
            offset,
            size,
            slot,
            signed,
            is_string: is_str,
            is_dynamic: dynamic,
            is_rel: false,
            is_stack,
        });
        offset = offset.saturating_add(slot);
    }
    out
}

// ---------------------------------------------------------------- user types

fn user_basic(ty: &str) -> Option<(u32, &'static str)> {
    Some(match ty {
        "s64" => (8, "%lld"),
        "u64" => (8, "%llu"),
        "s32" => (4, "%d"),
        "u32" => (4, "%u"),
        "int" => (4, "%d"),
        "unsigned int" => (4, "%u"),
        "s16" => (2, "%d"),
        "u16" => (2, "%u"),
        "short" => (2, "%d"),
        "unsigned short" => (2, "%u"),
        "s8" => (1, "%d"),
        "u8" => (1, "%u"),
        "char" => (1, "%d"),
        "unsigned char" => (1, "%u"),
        _ => return None,
    })
}

/// `user_field_array_size`.
fn user_array_size(ty: &[u8]) -> Option<u32> {
    let start = ty.iter().position(|&c| c == b'[')?;
    let src = &ty[start + 1..];
    // strscpy(val, src, 8): empty → 0, longer than 7 → -E2BIG.
    if src.is_empty() || src.len() > 7 {
        return None;
    }
    let br = src.iter().position(|&c| c == b']')?;
    let size = kstrtouint(&src[..br], 0)?;
    if size > MAX_FIELD_ARRAY_SIZE {
        return None;
    }
    Some(size)
}

/// `user_field_size`: None for -EINVAL.
fn user_field_size(ty: &str) -> Option<u32> {
    if let Some((s, _)) = user_basic(ty) {
        return Some(s);
    }
    if ty.starts_with("char[") || ty.starts_with("unsigned char[") {
        return user_array_size(ty.as_bytes());
    }
    if ty.starts_with("__data_loc ") || ty.starts_with("__rel_loc ") {
        return Some(4);
    }
    None
}

fn user_field_format(ty: &str) -> &'static str {
    if let Some((_, f)) = user_basic(ty) {
        f
    } else if contains(ty, "char[") {
        "%s"
    } else {
        "%llu"
    }
}

/// `user_field_is_dyn_string`: the string accessor, if any.
fn user_dyn_string_func(ty: &str) -> Option<&'static str> {
    let func = if ty.starts_with("__data_loc ") {
        "__get_str"
    } else if ty.starts_with("__rel_loc ") {
        "__get_rel_str"
    } else {
        return None;
    };
    contains(ty, "char").then_some(func)
}

fn user_layout(fields: &[FieldDef]) -> Vec<FieldLayout> {
    let mut offset = TRACE_ENTRY_SIZE;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let ty = f.ty.as_str();
        let size = f.struct_size.or_else(|| user_field_size(ty)).unwrap_or(0);
        let dynamic = ty.starts_with("__data_loc ") || ty.starts_with("__rel_loc ");
        out.push(FieldLayout {
            name: f.name.clone(),
            field_type: ty.to_string(),
            offset,
            size,
            slot: size,
            signed: !ty.starts_with('u'),
            is_string: if dynamic {
                contains(ty, "char")
            } else {
                contains(ty, "char[")
            },
            is_dynamic: dynamic,
            is_rel: ty.starts_with("__rel_loc "),
            is_stack: false,
        });
        offset = offset.saturating_add(size);
    }
    out
}

/// `f_show` line for one field (array `len` is always 0, see module doc).
fn format_field_line(out: &mut String, l: &FieldLayout) {
    let ty = l.field_type.as_str();
    let arr = if ty.starts_with("__data_loc") {
        None
    } else {
        ty.find('[')
    };
    let signed = u8::from(l.signed);
    let _ = match arr {
        None => writeln!(
            out,
            "\tfield:{ty} {};\toffset:{};\tsize:{};\tsigned:{signed};",
            l.name, l.offset, l.size
        ),
        Some(i) => writeln!(
            out,
            "\tfield:{} {}[];\toffset:{};\tsize:{};\tsigned:{signed};",
            &ty[..i],
            l.name,
            l.offset,
            l.size
        ),
    };
}

const COMMON_FIELDS: &str = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n";

impl DynEventDef {
    /// Subsystem directory under `events/`.
    pub fn system(&self) -> &'static str {
        match self.kind {
            Kind::Synthetic => SYNTH_SYSTEM,
            Kind::User => USER_EVENTS_SYSTEM,
        }
    }

    /// Record layout (offsets include the 8-byte common header).
    pub fn layout(&self) -> Vec<FieldLayout> {
        match self.kind {
            Kind::Synthetic => synth_layout(&self.fields),
            Kind::User => user_layout(&self.fields),
        }
    }

    /// Size of the fixed part of a record (header + slots), before any
    /// dynamic data.
    pub fn fixed_size(&self) -> u32 {
        self.layout()
            .last()
            .map_or(TRACE_ENTRY_SIZE, |l| l.offset.saturating_add(l.slot))
    }

    /// `call->print_fmt` (without the `print fmt: ` prefix).
    pub fn print_fmt(&self) -> String {
        self.print_fmt_sep(", ", false)
    }

    /// What `trace` shows for a record, as a print fmt. A synthetic event's output comes from
    /// `print_synth_event()`, not from its print fmt: fields separated by a space, strings
    /// printed whole. Other kinds print through their print fmt.
    pub fn output_print_fmt(&self) -> String {
        match self.kind {
            Kind::Synthetic => self.print_fmt_sep(" ", true),
            Kind::User => self.print_fmt(),
        }
    }

    fn print_fmt_sep(&self, field_sep: &str, whole_strings: bool) -> String {
        let lay = self.layout();
        let mut s = String::from("\"");
        match self.kind {
            Kind::Synthetic => {
                let n = lay.len();
                for (i, l) in lay.iter().enumerate() {
                    let sep = if i + 1 == n { "" } else { field_sep };
                    let fmt = match synth_field_fmt(&l.field_type) {
                        "%.*s" if whole_strings => "%s",
                        f => f,
                    };
                    let _ = write!(s, "{}={fmt}{sep}", l.name);
                }
                s.push('"');
                for l in &lay {
                    let _ = if l.is_string && l.is_dynamic {
                        write!(s, ", __get_str({})", l.name)
                    } else if l.is_stack {
                        write!(s, ", __get_stacktrace({})", l.name)
                    } else {
                        write!(s, ", REC->{}", l.name)
                    };
                }
            }
            Kind::User => {
                for (i, l) in lay.iter().enumerate() {
                    if i != 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{}={}", l.name, user_field_format(&l.field_type));
                }
                s.push('"');
                for l in &lay {
                    let _ = match user_dyn_string_func(&l.field_type) {
                        Some(f) => write!(s, ", {f}({})", l.name),
                        None => write!(s, ", REC->{}", l.name),
                    };
                }
            }
        }
        s
    }

    /// The `format` file text.
    pub fn format(&self, id: u32) -> String {
        let mut s = String::new();
        let _ = write!(s, "name: {}\nID: {id}\nformat:\n", self.name);
        s.push_str(COMMON_FIELDS);
        s.push('\n');
        for l in self.layout() {
            format_field_line(&mut s, &l);
        }
        let _ = writeln!(s, "\nprint fmt: {}", self.print_fmt());
        s
    }

    fn synth_body(&self) -> String {
        let mut s = format!("{}\t", self.name);
        let n = self.fields.len();
        for (i, f) in self.fields.iter().enumerate() {
            let sep = if i + 1 == n { "" } else { "; " };
            let _ = write!(s, "{} {}{sep}", f.ty, f.name);
        }
        s.push('\n');
        s
    }

    /// Line in `synthetic_events` (empty for user events, which are not
    /// listed there).
    pub fn synthetic_events_line(&self) -> String {
        match self.kind {
            Kind::Synthetic => self.synth_body(),
            Kind::User => String::new(),
        }
    }

    /// Line in `dynamic_events`.
    pub fn dynamic_events_line(&self) -> String {
        match self.kind {
            Kind::Synthetic => format!("s:{SYNTH_SYSTEM}/{}", self.synth_body()),
            Kind::User => {
                let mut s = format!("u:{}", self.name);
                for (i, f) in self.fields.iter().enumerate() {
                    s.push_str(if i == 0 { " " } else { "; " });
                    let _ = write!(s, "{} {}", f.ty, f.name);
                    if f.ty.starts_with("struct ") {
                        let _ = write!(s, " {}", f.struct_size.unwrap_or(0));
                    }
                }
                s.push('\n');
                s
            }
        }
    }

    /// Whether a delete (`-:[sys/]name args…`, `!x:name args…`, or `!name`
    /// from `synthetic_events` with `system == None, args == []`) applies to
    /// this event (`synth_event_match` / `user_event_match`). Synthetic events
    /// match by name only; a user event with fields only matches when the
    /// arguments repeat its fields (`-:user_events/e u32 a`), one without
    /// fields only when no arguments are given.
    pub fn matches_delete(&self, system: Option<&str>, name: &str, args: &[String]) -> bool {
        if self.name != name || system.is_some_and(|s| s != self.system()) {
            return false;
        }
        match self.kind {
            Kind::Synthetic => true,
            Kind::User => user_fields_match(&self.fields, args),
        }
    }
}

/// `user_fields_match`.
fn user_fields_match(fields: &[FieldDef], args: &[String]) -> bool {
    if args.is_empty() {
        return fields.is_empty();
    }
    let mut i = 0usize;
    for f in fields {
        if i >= args.len() {
            return false;
        }
        let mut dyn_s = String::new();
        let mut colon = false;
        let first = i;
        while i < args.len() {
            if i != first {
                dyn_s.push(' ');
            }
            dyn_s.push_str(&args[i]);
            if args[i].contains(';') {
                i += 1;
                colon = true;
                break;
            }
            i += 1;
        }
        let mut fs = format!("{} {}", f.ty, f.name);
        if colon {
            fs.push(';');
        }
        if fs != dyn_s {
            return false;
        }
    }
    i == args.len()
}

/// The arguments after the event name of a delete line (for
/// [`DynEventDef::matches_delete`]).
pub fn delete_args(line: &[u8]) -> Vec<String> {
    argv_split(line).into_iter().skip(1).map(st).collect()
}

// ---------------------------------------------------------------- synthetic parsing

/// `parse_synth_field` for `argv[..]`; returns the field and words consumed.
fn parse_synth_field(argv: &[&[u8]], cmd: &[u8]) -> Result<(FieldDef, usize), DefError> {
    let einval = |msg: &str, pos: usize| DefError::synth(libc::EINVAL, msg, cmd, pos);
    let first = argv[0];
    let (prefix, ftype, fname, consumed): (&[u8], &[u8], Option<&[u8]>, usize) =
        if first == b"unsigned" {
            if argv.len() < 3 {
                return Err(einval(ERR_INCOMPLETE_TYPE, err_pos(cmd, first)));
            }
            (b"unsigned ", argv[1], Some(argv[2]), 3)
        } else {
            (b"", first, argv.get(1).copied(), 2)
        };
    let Some(fname) = fname else {
        return Err(einval(ERR_INVALID_FIELD, err_pos(cmd, ftype)));
    };
    let (name, array) = match fname.iter().position(|&c| c == b'[') {
        Some(i) => (&fname[..i], Some(&fname[i..])),
        None => (fname, None),
    };
    if !is_good_name(name) {
        return Err(einval(ERR_BAD_NAME, err_pos(cmd, fname)));
    }
    let mut ty = Vec::with_capacity(prefix.len() + ftype.len() + 8);
    ty.extend_from_slice(prefix);
    ty.extend_from_slice(ftype);
    if let Some(a) = array {
        ty.extend_from_slice(a);
    }
    let ty = st(&ty);
    match synth_field_size(&ty) {
        Err(()) => {
            return Err(if array.is_some() {
                einval(ERR_INVALID_ARRAY_SPEC, err_pos(cmd, fname))
            } else {
                einval(ERR_INVALID_TYPE, err_pos(cmd, ftype))
            });
        }
        Ok(0) if !(contains(&ty, "char[") || contains(&ty, "long[")) => {
            return Err(einval(ERR_INVALID_TYPE, err_pos(cmd, ftype)));
        }
        Ok(_) => {}
    }
    Ok((
        FieldDef {
            ty,
            name: st(name),
            struct_size: None,
        },
        consumed,
    ))
}

/// Registry existence test: `(kind, name) -> exists`.
pub type Exists<'a> = &'a dyn Fn(Kind, &str) -> bool;

/// `__create_synth_event`.
fn create_synth(
    name: &[u8],
    raw_fields: &[u8],
    cmd: &[u8],
    exists: Exists<'_>,
) -> Result<Option<Command>, DefError> {
    if name.is_empty() {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    }
    if !is_good_name(name) || name.len() > NAME_MAX {
        return Err(DefError::synth(
            libc::EINVAL,
            ERR_BAD_NAME,
            cmd,
            err_pos(cmd, name),
        ));
    }
    let name_s = st(name);
    if exists(Kind::Synthetic, &name_s) {
        return Err(DefError::synth(
            libc::EEXIST,
            ERR_EVENT_EXISTS,
            cmd,
            err_pos(cmd, name),
        ));
    }
    let mut fields: Vec<FieldDef> = Vec::new();
    for field_str in raw_fields.split(|&c| c == b';') {
        let argv = argv_split(field_str);
        let mut consumed = 0usize;
        while argv.len() > consumed {
            let (f, n) = parse_synth_field(&argv[consumed..], cmd)?;
            consumed += n;
            if fields.len() == SYNTH_FIELDS_MAX {
                return Err(DefError::synth(libc::EINVAL, ERR_TOO_MANY_FIELDS, cmd, 0));
            }
            fields.push(f);
        }
    }
    if fields.is_empty() {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    }
    Ok(Some(Command::Create(DynEventDef {
        kind: Kind::Synthetic,
        name: name_s,
        fields,
    })))
}

/// `check_command`: the part before the first `;` needs ≥ 3 words unless it
/// starts with `!`.
fn check_command(raw: &[u8]) -> bool {
    let first = raw.split(|&c| c == b';').next().unwrap_or(b"");
    first.first() == Some(&b'!') || argv_split(first).len() >= 3
}

fn first_blank(raw: &[u8]) -> Option<usize> {
    raw.iter().position(|&c| c == b' ' || c == b'\t')
}

/// One line written to `synthetic_events`; see
/// [`parse_synthetic_events_line_with`].
pub fn parse_synthetic_events_line(line: &[u8]) -> Result<Option<Command>, DefError> {
    parse_synthetic_events_line_with(line, &|_, _| false)
}

/// Like [`parse_synthetic_events_line`], with the registry's existence test so
/// that `Event already exists` (EEXIST) is reported in the kernel's order
/// (after the name check, before field errors).
pub fn parse_synthetic_events_line_with(
    line: &[u8],
    exists: Exists<'_>,
) -> Result<Option<Command>, DefError> {
    if std::str::from_utf8(line).is_err() {
        return Err(DefError::plain(libc::EINVAL, line));
    }
    let raw = skip_spaces(line);
    if raw.is_empty() {
        return Ok(None);
    }
    let cmd = raw;
    if !check_command(raw) {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    }
    let p = first_blank(raw);
    if p.is_none() && raw[0] != b'!' {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    }
    let name = &raw[..p.unwrap_or(raw.len())];
    if name[0] == b'!' {
        return Ok(Some(Command::Delete {
            kind: Some(Kind::Synthetic),
            system: None,
            name: st(&name[1..]),
        }));
    }
    let fields = skip_spaces(&raw[p.unwrap_or(raw.len())..]);
    create_synth(name, fields, cmd, exists)
}

/// `create_synth_event` (the `s:` handler of `dynamic_events`).
fn dyn_create_synth(line: &[u8], exists: Exists<'_>) -> Result<Option<Command>, DefError> {
    let raw = skip_spaces(line);
    let cmd = raw;
    let Some(p) = first_blank(raw) else {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    };
    let fields = skip_spaces(&raw[p..]);
    let mut start = 2usize;
    let rest = raw.get(2..).unwrap_or(b"");
    if rest.contains(&b'/') {
        let pre = b"synthetic/";
        if !rest.starts_with(pre) {
            return Err(DefError::synth(libc::EINVAL, ERR_INVALID_DYN_CMD, cmd, 0));
        }
        start += pre.len();
    }
    if !check_command(raw.get(start..).unwrap_or(b"")) {
        return Err(DefError::synth(libc::EINVAL, ERR_INVALID_CMD, cmd, 0));
    }
    let name = raw.get(start..p).unwrap_or(b"");
    create_synth(name, fields, cmd, exists)
}

// ---------------------------------------------------------------- user parsing

/// `user_event_parse_field`: Ok(None) for an empty field, Err for -EINVAL.
fn parse_user_field(field: &[u8]) -> Result<Option<FieldDef>, ()> {
    let field = skip_spaces(field);
    if field.is_empty() {
        return Ok(None);
    }
    let prefixes: [(&[u8], bool); 6] = [
        (b"unsigned ", false),
        (b"struct ", true),
        (b"__data_loc unsigned ", false),
        (b"__data_loc ", false),
        (b"__rel_loc unsigned ", false),
        (b"__rel_loc ", false),
    ];
    let mut ty: Option<&[u8]> = None;
    let mut depth = 0u32;
    let mut is_struct = false;
    let mut rest = field;
    if let Some(&(pre, st_)) = prefixes.iter().find(|(pre, _)| field.starts_with(pre)) {
        is_struct = st_;
        let sp = field[pre.len()..]
            .iter()
            .position(|&c| c == b' ')
            .ok_or(())?
            + pre.len();
        ty = Some(&field[..sp]);
        rest = &field[sp + 1..];
        depth = 1;
    }
    let mut name: Option<&[u8]> = None;
    let mut size: Option<u32> = None;
    for part in rest.split(|&c| c == b' ') {
        match depth {
            0 => ty = Some(part),
            1 => name = Some(part),
            2 => {
                if !is_struct {
                    return Err(());
                }
                size = Some(kstrtouint(part, 10).ok_or(())?);
            }
            _ => return Err(()),
        }
        depth += 1;
    }
    let (Some(ty), Some(name)) = (ty, name) else {
        return Err(());
    };
    if depth < 2 {
        return Err(());
    }
    let ty = st(ty);
    let size = match size {
        Some(s) => s,
        None => user_field_size(&ty).ok_or(())?,
    };
    if size == 0 {
        return Err(());
    }
    Ok(Some(FieldDef {
        ty,
        name: st(name),
        struct_size: if is_struct { Some(size) } else { None },
    }))
}

/// `user_event_create` (the `u:` handler of `dynamic_events`).
///
/// The caller must additionally: require CAP_PERFMON (else EPERM); and, when a
/// user event of that name exists, treat an identical field list as success
/// without creating anything, a different one as EADDRINUSE.
fn dyn_create_user(line: &[u8], exists: Exists<'_>) -> Result<Option<Command>, DefError> {
    let einval = || DefError::plain(libc::EINVAL, line);
    let raw = skip_spaces(&line[2..]);
    let (name, args) = match raw.iter().position(|&c| c == b' ') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    // `name:FLAGS`: no text flags are supported by the kernel → EINVAL.
    if name.contains(&b':') {
        return Err(einval());
    }
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.len() > NAME_MAX
    {
        return Err(einval());
    }
    let name_s = st(name);
    let mut fields = Vec::new();
    let mut bad = false;
    if let Some(args) = args {
        for f in args.split(|&c| c == b';') {
            match parse_user_field(f) {
                Ok(Some(fd)) => fields.push(fd),
                Ok(None) => {}
                Err(()) => {
                    bad = true;
                    break;
                }
            }
        }
    }
    if bad {
        // An existing event is looked up (and compared) before parsing.
        if exists(Kind::User, &name_s) {
            return Err(DefError::plain(libc::EADDRINUSE, line));
        }
        return Err(einval());
    }
    Ok(Some(Command::Create(DynEventDef {
        kind: Kind::User,
        name: name_s,
        fields,
    })))
}

// ---------------------------------------------------------------- dynamic_events

/// `dyn_event_release` argument parsing.
fn parse_delete(line: &[u8]) -> Result<Option<Command>, DefError> {
    let einval = || DefError::plain(libc::EINVAL, line);
    let argv = argv_split(line);
    let Some(a0) = argv.first() else {
        return Err(einval());
    };
    let event: &[u8] = if a0[0] == b'-' {
        if a0.get(1) != Some(&b':') {
            return Err(einval());
        }
        &a0[2..]
    } else {
        match a0.iter().position(|&c| c == b':') {
            Some(i) => &a0[i + 1..],
            None => return Err(einval()),
        }
    };
    let (system, event) = match event.iter().position(|&c| c == b'/') {
        Some(i) => (Some(st(&event[..i])), &event[i + 1..]),
        None => (None, event),
    };
    if system.is_none() && event.is_empty() {
        return Err(einval());
    }
    Ok(Some(Command::Delete {
        kind: None,
        system,
        name: st(event),
    }))
}

/// One line written to `dynamic_events` (after [`split_lines`]); see
/// [`parse_dynamic_events_line_with`].
pub fn parse_dynamic_events_line(line: &[u8]) -> Result<Option<Command>, DefError> {
    parse_dynamic_events_line_with(line, &|_, _| false)
}

/// `create_dyn_event`: `-`/`!` deletes; otherwise the synthetic handler
/// (`s:[synthetic/]name fields`, leading blanks allowed), then the user-event
/// handler (`u:name[:FLAGS] fields`, must start the line). Anything else
/// (including kprobe/uprobe/eprobe `p:`, `r:`, `e:` commands, unsupported
/// here) gives EINVAL without an error_log entry. Blank lines give `None`.
/// `exists` lets EEXIST (synthetic) / EADDRINUSE (user, bad fields) surface
/// in the kernel's order.
pub fn parse_dynamic_events_line_with(
    line: &[u8],
    exists: Exists<'_>,
) -> Result<Option<Command>, DefError> {
    if std::str::from_utf8(line).is_err() {
        return Err(DefError::plain(libc::EINVAL, line));
    }
    match line.first() {
        None => return Ok(None),
        Some(b'-') | Some(b'!') => return parse_delete(line),
        _ => {}
    }
    if argv_split(line).is_empty() {
        return Ok(None);
    }
    match create_kind(line) {
        Some(Kind::Synthetic) => dyn_create_synth(line, exists),
        Some(Kind::User) => dyn_create_user(line, exists),
        None => Err(DefError::plain(libc::EINVAL, line)),
    }
}

/// Which handler of `dynamic_events` a creating line goes to: the synthetic one
/// (`s:`, leading blanks allowed) or the user-event one (`u:` starting the line).
pub fn create_kind(line: &[u8]) -> Option<Kind> {
    if skip_spaces(line).starts_with(b"s:") {
        Some(Kind::Synthetic)
    } else if line.starts_with(b"u:") {
        Some(Kind::User)
    } else {
        None
    }
}

// ---------------------------------------------------------------- tests

#[cfg(test)]
mod tests {
    use super::*;

    fn create(c: Result<Option<Command>, DefError>) -> DynEventDef {
        match c {
            Ok(Some(Command::Create(d))) => d,
            other => panic!("expected create, got {other:?}"),
        }
    }

    fn fd(ty: &str, name: &str) -> FieldDef {
        FieldDef {
            ty: ty.into(),
            name: name.into(),
            struct_size: None,
        }
    }

    const COMMON: &str = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n";

    #[test]
    fn scenario_67() {
        let d = create(parse_dynamic_events_line(b"s:myev u64 lat; pid_t pid"));
        assert_eq!(d.kind, Kind::Synthetic);
        assert_eq!(d.system(), "synthetic");
        assert_eq!(d.name, "myev");
        assert_eq!(d.fields, vec![fd("u64", "lat"), fd("pid_t", "pid")]);
        assert_eq!(
            d.dynamic_events_line(),
            "s:synthetic/myev\tu64 lat; pid_t pid\n"
        );
        assert_eq!(d.synthetic_events_line(), "myev\tu64 lat; pid_t pid\n");
        let want = format!(
            "name: myev\nID: 1234\nformat:\n{COMMON}\n\
\tfield:u64 lat;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:pid_t pid;\toffset:16;\tsize:4;\tsigned:1;\n\
\nprint fmt: \"lat=%llu, pid=%d\", REC->lat, REC->pid\n"
        );
        assert_eq!(d.format(1234), want);
        assert_eq!(d.fixed_size(), 24);
        // Same via synthetic_events and with the group prefix.
        assert_eq!(
            create(parse_synthetic_events_line(b"myev u64 lat; pid_t pid")),
            d
        );
        assert_eq!(
            create(parse_dynamic_events_line(
                b"  s:synthetic/myev u64 lat;pid_t pid"
            )),
            d
        );
    }

    #[test]
    fn scenario_68_eexist() {
        let e = parse_dynamic_events_line_with(b"s:myev u64 lat; pid_t pid", &|k, n| {
            k == Kind::Synthetic && n == "myev"
        })
        .unwrap_err();
        assert_eq!(e.errno, libc::EEXIST);
        assert_eq!(e.message, ERR_EVENT_EXISTS);
        assert_eq!(e.location, "synthetic_events");
        assert_eq!(e.command, "s:myev u64 lat; pid_t pid");
        assert_eq!(e.pos, 2);
        // EEXIST comes before field errors.
        let e = parse_synthetic_events_line_with(b"myev bogus x", &|_, _| true).unwrap_err();
        assert_eq!(e.errno, libc::EEXIST);
    }

    #[test]
    fn synth_types_layout_real() {
        let d = create(parse_synthetic_events_line(
            b"ev char[16] comm; char[] s; long[] st; unsigned int ui; gfp_t g; char name2[8]",
        ));
        let tys: Vec<&str> = d.fields.iter().map(|f| f.ty.as_str()).collect();
        assert_eq!(
            tys,
            [
                "char[16]",
                "char[]",
                "long[]",
                "unsigned int",
                "gfp_t",
                "char[8]"
            ]
        );
        assert_eq!(
            d.synthetic_events_line(),
            "ev\tchar[16] comm; char[] s; long[] st; unsigned int ui; gfp_t g; char[8] name2\n"
        );
        let want = format!(
            "name: ev\nID: 7\nformat:\n{COMMON}\n\
\tfield:char comm[];\toffset:8;\tsize:16;\tsigned:1;\n\
\tfield:__data_loc char[] s;\toffset:264;\tsize:8;\tsigned:1;\n\
\tfield:__data_loc long[] st;\toffset:272;\tsize:8;\tsigned:1;\n\
\tfield:unsigned int ui;\toffset:280;\tsize:4;\tsigned:0;\n\
\tfield:gfp_t g;\toffset:288;\tsize:4;\tsigned:0;\n\
\tfield:char name2[];\toffset:296;\tsize:8;\tsigned:1;\n\
\nprint fmt: \"comm=%.*s, s=%.*s, st=%s, ui=%u, g=%x, name2=%.*s\", REC->comm, __get_str(s), __get_stacktrace(st), REC->ui, REC->g, REC->name2\n"
        );
        assert_eq!(d.format(7), want);
        let l = d.layout();
        assert!(l[0].is_string && !l[0].is_dynamic && l[0].slot == 256);
        assert!(l[1].is_string && l[1].is_dynamic && l[1].slot == 8);
        assert!(l[2].is_stack && l[2].is_dynamic);
        assert_eq!(d.fixed_size(), 296 + 256);
    }

    #[test]
    fn synth_old_form() {
        let d = create(parse_synthetic_events_line(b"old u64 a u64 b"));
        assert_eq!(d.fields, vec![fd("u64", "a"), fd("u64", "b")]);
        let d = create(parse_synthetic_events_line(
            b"old\tunsigned long a s32 b; u8 c;",
        ));
        assert_eq!(
            d.fields,
            vec![fd("unsigned long", "a"), fd("s32", "b"), fd("u8", "c")]
        );
    }

    #[test]
    fn synth_errors() {
        struct Case(&'static [u8], &'static str, usize);
        let cases = [
            Case(b"9bad u64 a", ERR_BAD_NAME, 0),
            Case(b"ev u64 9x", ERR_BAD_NAME, 7),
            Case(b"ev u64", ERR_INVALID_CMD, 0),
            Case(b"ev", ERR_INVALID_CMD, 0),
            Case(b"ev u64 a; unsigned", ERR_INCOMPLETE_TYPE, 10),
            Case(b"ev u64 a; unsigned int", ERR_INCOMPLETE_TYPE, 10),
            Case(b"ev u64 a; foo b", ERR_INVALID_TYPE, 10),
            Case(b"ev u64 a; u64 b[2]", ERR_INVALID_TYPE, 3),
            Case(b"ev u64 a; char[300] b", ERR_INVALID_TYPE, 10),
            Case(b"ev u64 a; char b[1000]", ERR_INVALID_ARRAY_SPEC, 15),
            Case(b"ev u64 a; char b[1x]", ERR_INVALID_ARRAY_SPEC, 15),
            Case(b"ev u64 a; u32", ERR_INVALID_FIELD, 10),
            Case(b"ev u64 a u32", ERR_INVALID_FIELD, 9),
        ];
        for c in cases {
            let e = parse_synthetic_events_line(c.0).unwrap_err();
            assert_eq!(e.errno, libc::EINVAL, "{:?}", st(c.0));
            assert_eq!(e.message, c.1, "{:?}", st(c.0));
            assert_eq!(e.pos, c.2, "{:?}", st(c.0));
            assert_eq!(e.location, "synthetic_events");
            assert_eq!(e.command.as_bytes(), c.0);
        }
        // Too many fields: 65.
        let mut l = b"ev".to_vec();
        for i in 0..65 {
            l.extend_from_slice(format!(" u8 f{i};").as_bytes());
        }
        let e = parse_synthetic_events_line(&l).unwrap_err();
        assert_eq!((e.message.as_str(), e.pos), (ERR_TOO_MANY_FIELDS, 0));
        l.truncate(l.len() - " u8 f64;".len());
        assert_eq!(create(parse_synthetic_events_line(&l)).fields.len(), 64);
        // char[256] ok, char[010] is octal (base 0), 4 digits invalid, char[] dynamic.
        let d = create(parse_synthetic_events_line(b"ev char[256] a; char[010] b"));
        assert_eq!(d.layout()[1].size, 8);
        let e = parse_synthetic_events_line(b"ev char[0x1f] b").unwrap_err();
        assert_eq!(e.message, ERR_INVALID_TYPE);
        // Dynamic-events specific errors.
        let e = parse_dynamic_events_line(b"s:foo/ev u64 a").unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.errno),
            (ERR_INVALID_DYN_CMD, libc::EINVAL)
        );
        let e = parse_dynamic_events_line(b"s:ev").unwrap_err();
        assert_eq!(e.message, ERR_INVALID_CMD);
        let e = parse_dynamic_events_line(b"s:ev u64").unwrap_err();
        assert_eq!(e.message, ERR_INVALID_CMD);
        let e = parse_dynamic_events_line(b"s:9ev u64 a").unwrap_err();
        assert_eq!((e.message.as_str(), e.pos), (ERR_BAD_NAME, 2));
        let e = parse_dynamic_events_line(b"s: u64 a b").unwrap_err();
        assert_eq!(e.message, ERR_INVALID_CMD);
    }

    #[test]
    fn user_events() {
        let d = create(parse_dynamic_events_line(b"u:myue u32 a"));
        assert_eq!(d.kind, Kind::User);
        assert_eq!(d.system(), "user_events");
        assert_eq!(d.dynamic_events_line(), "u:myue u32 a\n");
        assert_eq!(d.synthetic_events_line(), "");
        let d = create(parse_dynamic_events_line(b"u:myue u32 a; char[16] name"));
        assert_eq!(d.dynamic_events_line(), "u:myue u32 a; char[16] name\n");
        let want = format!(
            "name: myue\nID: 9\nformat:\n{COMMON}\n\
\tfield:u32 a;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:char name[];\toffset:12;\tsize:16;\tsigned:1;\n\
\nprint fmt: \"a=%u name=%s\", REC->a, REC->name\n"
        );
        assert_eq!(d.format(9), want);
        let d = create(parse_dynamic_events_line(
            b"u:e unsigned int x;__data_loc char[] msg; struct foo s 12; __rel_loc char[] r",
        ));
        assert_eq!(
            d.dynamic_events_line(),
            "u:e unsigned int x; __data_loc char[] msg; struct foo s 12; __rel_loc char[] r\n"
        );
        let l = d.layout();
        assert_eq!(
            l.iter().map(|l| (l.offset, l.size)).collect::<Vec<_>>(),
            [(8, 4), (12, 4), (16, 12), (28, 4)]
        );
        assert!(
            d.format(1)
                .contains("\tfield:__data_loc char[] msg;\toffset:12;\tsize:4;\tsigned:1;\n")
        );
        assert!(d.format(1).ends_with(
            "print fmt: \"x=%u msg=%s s=%llu r=%s\", REC->x, __get_str(msg), REC->s, __get_rel_str(r)\n"
        ));
        // No fields.
        let d = create(parse_dynamic_events_line(b"u:bare"));
        assert_eq!(d.dynamic_events_line(), "u:bare\n");
        assert!(d.format(3).ends_with("\n\n\nprint fmt: \"\"\n"));
        // Errors (EINVAL, not logged).
        for bad in [
            &b"u:e:BPF_ITER u32 a"[..],
            b"u:e long a",
            b"u:e u32",
            b"u:e u32  a",
            b"u:e u32 a 4",
            b"u:e char[] a",
            b"u:e char[2000] a",
            b"u:e struct foo a",
            b"u:e struct foo a 0",
            b"u:",
            b" u:e u32 a",
            b"p:kp do_sys_open",
            b"r:kp do_sys_open",
            b"e:ep sched.sched_switch",
        ] {
            let e = parse_dynamic_events_line(bad).unwrap_err();
            assert_eq!(e.errno, libc::EINVAL, "{:?}", st(bad));
            assert!(!e.logged());
        }
        let e = parse_dynamic_events_line_with(b"u:e long a", &|_, _| true).unwrap_err();
        assert_eq!(e.errno, libc::EADDRINUSE);
    }

    #[test]
    fn deletes() {
        let del = |k: Option<Kind>, s: Option<&str>, n: &str| {
            Ok(Some(Command::Delete {
                kind: k,
                system: s.map(String::from),
                name: n.into(),
            }))
        };
        assert_eq!(
            parse_dynamic_events_line(b"-:synthetic/myev"),
            del(None, Some("synthetic"), "myev")
        );
        assert_eq!(
            parse_dynamic_events_line(b"-:myev"),
            del(None, None, "myev")
        );
        assert_eq!(
            parse_dynamic_events_line(b"!s:myev"),
            del(None, None, "myev")
        );
        assert_eq!(
            parse_dynamic_events_line(b"!u:user_events/x u32 a"),
            del(None, Some("user_events"), "x")
        );
        assert_eq!(
            parse_synthetic_events_line(b"!myev"),
            del(Some(Kind::Synthetic), None, "myev")
        );
        assert_eq!(
            parse_synthetic_events_line(b"  !myev u64 x"),
            del(Some(Kind::Synthetic), None, "myev")
        );
        for bad in [&b"-myev"[..], b"-", b"!myev", b"-:", b"!s:"] {
            assert_eq!(
                parse_dynamic_events_line(bad).unwrap_err().errno,
                libc::EINVAL,
                "{:?}",
                st(bad)
            );
        }
        // Matching.
        let s = create(parse_dynamic_events_line(b"s:myev u64 lat"));
        assert!(s.matches_delete(Some("synthetic"), "myev", &[]));
        assert!(s.matches_delete(None, "myev", &["junk".into()]));
        assert!(!s.matches_delete(Some("user_events"), "myev", &[]));
        let u = create(parse_dynamic_events_line(b"u:myue u32 a; char[16] name"));
        assert!(!u.matches_delete(None, "myue", &[]));
        let args = delete_args(b"!u:myue u32 a; char[16] name");
        assert!(u.matches_delete(None, "myue", &args));
        assert!(!u.matches_delete(None, "myue", &delete_args(b"-:myue u32 a")));
        let b = create(parse_dynamic_events_line(b"u:bare"));
        assert!(b.matches_delete(Some("user_events"), "bare", &[]));
    }

    #[test]
    fn blank_and_misc() {
        assert_eq!(parse_dynamic_events_line(b""), Ok(None));
        assert_eq!(parse_dynamic_events_line(b"   \t"), Ok(None));
        assert_eq!(parse_synthetic_events_line(b"  "), Ok(None));
        assert_eq!(
            parse_dynamic_events_line(b"s:\xff u64 a")
                .unwrap_err()
                .errno,
            libc::EINVAL
        );
    }

    #[test]
    fn splitting() {
        assert_eq!(
            split_lines(b"a\nb # c\n#x\nd").unwrap(),
            vec![&b"a"[..], b"b ", b"", b"d"]
        );
        assert_eq!(split_lines(b"").unwrap(), Vec::<&[u8]>::new());
        let mut l = vec![b'x'; 4094];
        l.push(b'\n');
        l.extend_from_slice(b"y\n");
        assert_eq!(split_lines(&l).unwrap().len(), 2);
        let mut l = vec![b'x'; 4095];
        l.push(b'\n');
        assert_eq!(split_lines(&l), Err(libc::EINVAL));
        // Final line without newline may be 4095 bytes.
        assert_eq!(split_lines(&[b'x'; 4095]).unwrap().len(), 1);
        assert_eq!(split_lines(&[b'x'; 4096]), Err(libc::EINVAL));
        // Lines before the failure are reported.
        let mut l = b"a\n".to_vec();
        l.extend_from_slice(&[b'x'; 5000]);
        assert_eq!(
            split_lines_partial(&l),
            (vec![&b"a"[..]], Some(libc::EINVAL))
        );
        assert_eq!(split_lines(b"a\0b"), Err(libc::EINVAL));
        // Many short lines across chunk boundaries.
        let many: Vec<u8> = (0..2000)
            .flat_map(|i| format!("l{i}\n").into_bytes())
            .collect();
        let v = split_lines(&many).unwrap();
        assert_eq!(v.len(), 2000);
        assert_eq!(v[1999], b"l1999");
    }

    #[test]
    fn no_panic_fuzz() {
        // Deterministic pseudo-random inputs over a small alphabet.
        let alpha = b"su:-!/;[]0x19 \t\n#abcharlongunsignedstruct_\xff\0";
        let mut x: u64 = 0x1234_5678;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut v = Vec::with_capacity(len);
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v.push(alpha[(y >> 33) as usize % alpha.len()]);
            }
            for line in [
                &v[..],
                &[&b"s:"[..], &v[..]].concat(),
                &[&b"u:"[..], &v[..]].concat(),
            ] {
                if let Ok(Some(Command::Create(d))) = parse_dynamic_events_line(line) {
                    let _ = d.format(1);
                    let _ = d.dynamic_events_line();
                }
                if let Ok(Some(Command::Create(d))) = parse_synthetic_events_line(line) {
                    let _ = d.format(1);
                }
                let _ = split_lines_partial(line);
            }
        }
    }
}
