//! The kernel's dedicated printers: ftrace's own events (`trace_output.c`), syscalls
//! (`print_syscall_enter`/`_exit`), and libtraceevent's `[FAILED TO PARSE]` fallback — the
//! events whose text does not come from their print fmt.

use std::fmt::Write as _;

use super::{FKind, FRef, loc, read_cstr, read_int, read_u, rec_bytes, strip_offset};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Special {
    Print,
    RawData,
    Function,
    KernelStack,
    UserStack,
    /// `bputs`/`bprint`: their text lives in kernel memory (format pointers).
    KernelText,
}

impl Special {
    /// The ftrace event `name` printed by a dedicated function, if it is one.
    pub(super) fn of(name: &str) -> Option<Special> {
        match name {
            "print" => Some(Special::Print),
            "raw_data" => Some(Special::RawData),
            "function" => Some(Special::Function),
            "kernel_stack" => Some(Special::KernelStack),
            "user_stack" => Some(Special::UserStack),
            "bputs" | "bprint" => Some(Special::KernelText),
            _ => None,
        }
    }
}

/// `seq_print_ip_sym()` without sym-offset: bare name, `0x%08lx` if unknown, `0` for 0.
fn ip_sym(sym: &dyn Fn(u64) -> Option<String>, ip: u64, out: &mut String) {
    if ip == 0 {
        out.push('0');
        return;
    }
    match sym(ip) {
        Some(s) => {
            let s = strip_offset(&s);
            out.push_str(s.split(" [").next().unwrap_or(""));
        }
        None => {
            let _ = write!(out, "0x{ip:08x}");
        }
    }
}

/// ftrace's own events, as `trace_output.c` prints them.
pub(super) fn special(
    sp: Special,
    rec: &[u8],
    sym: &dyn Fn(u64) -> Option<String>,
    s: &mut String,
) {
    let u64_at = |o: usize| read_u(rec, o, 8);
    match sp {
        Special::Print => {
            ip_sym(sym, u64_at(8), s);
            s.push_str(": ");
            s.push_str(&String::from_utf8_lossy(read_cstr(rec, 16, usize::MAX)));
        }
        Special::RawData => {
            let _ = write!(s, "# {:x} buf:", read_u(rec, 8, 4));
            for b in rec.get(12..).unwrap_or(&[]) {
                let _ = write!(s, " {b:02x}");
            }
            s.push('\n');
        }
        Special::Function => {
            ip_sym(sym, u64_at(8), s);
            let parent = u64_at(16);
            if parent != 0 {
                s.push_str(" <-");
                ip_sym(sym, parent, s);
            }
        }
        Special::KernelStack => {
            s.push_str("<stack trace>\n");
            let mut o = 16;
            while o + 8 <= rec.len() && u64_at(o) != u64::MAX {
                s.push_str(" => ");
                ip_sym(sym, u64_at(o), s);
                s.push('\n');
                o += 8;
            }
        }
        Special::UserStack => {
            s.push_str("<user stack trace>\n");
            for i in 0..8 {
                let ip = u64_at(16 + 8 * i);
                if ip == 0 {
                    break;
                }
                let _ = writeln!(s, " =>  <{ip:016x}>");
            }
        }
        Special::KernelText => {
            ip_sym(sym, u64_at(8), s);
            let _ = write!(s, ": (text at 0x{:x})", u64_at(16));
        }
    }
}

/// `print_syscall_enter()`: `sys_<name>(arg: value, …)`.
pub(super) fn sys_enter(name: &str, args: &[(String, usize)], rec: &[u8], out: &mut String) {
    let _ = write!(out, "{name}(");
    for (i, (n, off)) in args.iter().enumerate() {
        let v = read_u(rec, *off, 8);
        let sep = if i > 0 { ", " } else { "" };
        let _ = if v < 10 {
            write!(out, "{sep}{n}: {v}")
        } else {
            write!(out, "{sep}{n}: 0x{v:x}")
        };
    }
    out.push(')');
}

/// `print_syscall_exit()`: `sys_<name> -> 0x<ret>`.
pub(super) fn sys_exit(name: &str, off: usize, rec: &[u8], out: &mut String) {
    let _ = write!(out, "{name} -> 0x{:x}", read_u(rec, off, 8));
}

/// libtraceevent's fallback for a print fmt that did not compile: `[FAILED TO PARSE]`, then
/// `name=value` for each field.
pub(super) fn failed(refs: &[FRef], names: &[String], rec: &[u8], out: &mut String) {
    out.push_str("[FAILED TO PARSE]");
    for (f, n) in refs.iter().zip(names) {
        let _ = write!(out, " {n}=");
        field_value(rec, *f, out);
    }
}

/// libtraceevent-style `name=value` for the fallback line.
fn field_value(rec: &[u8], f: FRef, out: &mut String) {
    let text = |o: usize, max: usize, out: &mut String| {
        out.push_str(&String::from_utf8_lossy(read_cstr(rec, o, max)));
    };
    match f.kind {
        FKind::Scalar(t) => {
            let v = read_int(rec, f.off, t);
            if t.signed {
                let _ = write!(out, "{}", v as i64);
            } else if t.size == 8 {
                let _ = write!(out, "0x{v:x}");
            } else {
                let _ = write!(out, "{v}");
            }
        }
        FKind::Array(t) if t.size == 1 => text(f.off, f.size.max(1), out),
        FKind::Loc { elem, .. } if elem.size == 1 && elem.signed => {
            let (o, len) = loc(rec, f);
            text(o, len, out);
        }
        FKind::Array(_) | FKind::Loc { .. } => {
            let (o, len) = match f.kind {
                FKind::Loc { .. } => loc(rec, f),
                _ => (f.off, f.size),
            };
            let b = rec_bytes(rec, o, len.min(rec.len()));
            let parts: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
            let _ = write!(out, "ARRAY[{}]", parts.join(", "));
        }
    }
}
