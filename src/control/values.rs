//! Pure parsers for what users write into tracefs control files.
//!
//! Every function here is pure: no I/O, no global state. The registry applies
//! the results. Errors are positive errno values (`libc::EINVAL`, ...).
//!
//! The behaviour follows `kernel-tracefs-spec.md` (cited as §n) and probes
//! made on the reference kernel 6.18 inside a throw-away instance (cited as
//! "verified on 6.18"). All parsers work on bytes, so no input can make them
//! panic; text that must become a `&str`/`String` and is not UTF-8 gives
//! `EINVAL` (the kernel would fail to match it against any ASCII name too).
//!
//! Kernel helpers that are modelled here:
//!
//! * `kstrtoul_from_user(buf, count, 10)`, used by every numeric control file:
//!   see [`parse_unsigned`].
//! * `trace_get_user()`, the whitespace tokenizer behind `set_event` and
//!   `set_event_pid`: see [`parse_set_event`] and [`parse_pid_list_write`].
//! * `strstrip()`/`strim()` with the kernel's `isspace()`: see [`parse_word`].
//! * `bitmap_parse()` and `%*pb`: see [`parse_tracing_cpumask_for`] and
//!   [`format_tracing_cpumask`].

use libc::{EINVAL, EOVERFLOW, EPERM, ERANGE};

// ---------------------------------------------------------------------------
// Low-level helpers
// ---------------------------------------------------------------------------

/// The kernel's `isspace()` (lib/ctype.c): `\t \n \v \f \r`, space, and
/// Latin-1 NBSP (0xA0). Verified on 6.18: `b"3\xa0"` is accepted by
/// `tracing_cpumask` and `b"raw\xa0"` by `trace_options`.
fn is_kspace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// The bytes of `buf` up to (not including) the first NUL: the kernel copies
/// the write into a NUL-terminated buffer and then treats it as a C string.
fn c_str(buf: &[u8]) -> &[u8] {
    match buf.iter().position(|&b| b == 0) {
        Some(n) => &buf[..n],
        None => buf,
    }
}

/// `strstrip()`: remove leading and trailing kernel whitespace.
fn kstrip(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_kspace(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_kspace(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn hex_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a') + 10),
        b'A'..=b'F' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

fn digit_value(b: u8, base: u32) -> Option<u32> {
    hex_value(b).filter(|&d| d < base)
}

/// The kernel's `_kstrtoull()` on a C string `s` (already cut at NUL):
/// optional leading `+`, the digits of `base` (0 = auto: `0x`/`0X` + hex
/// digit -> 16, leading `0` -> 8, else 10), at most one trailing `\n`.
/// Overflow -> ERANGE (checked before trailing junk), no digits or trailing
/// junk -> EINVAL.
fn kstrtoull(s: &[u8], base: u32) -> Result<u64, i32> {
    let mut s = s;
    if let [b'+', rest @ ..] = s {
        s = rest;
    }
    let base = match (base, s) {
        (0, [b'0', x, h, ..]) if (*x == b'x' || *x == b'X') && hex_value(*h).is_some() => {
            s = &s[2..];
            16
        }
        (0, [b'0', ..]) => 8,
        (0, _) => 10,
        (b, _) => b,
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut ndigits = 0usize;
    for &b in s {
        let Some(d) = digit_value(b, base) else { break };
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = value
                    .wrapping_mul(u64::from(base))
                    .wrapping_add(u64::from(d));
            }
        }
        ndigits += 1;
    }
    if overflow {
        return Err(ERANGE);
    }
    if ndigits == 0 {
        return Err(EINVAL);
    }
    let mut rest = &s[ndigits..];
    if let [b'\n', tail @ ..] = rest {
        rest = tail;
    }
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(EINVAL)
    }
}

/// Size of the on-stack buffer of `kstrtoul_from_user()` minus the NUL:
/// `1 + sizeof(unsigned long) * 8 + 1 + 1 - 1` = 66 on 64-bit.
const KSTRTOUL_FROM_USER_MAX: usize = 66;

// ---------------------------------------------------------------------------
// Numeric control files
// ---------------------------------------------------------------------------

/// §3.2 numeric control value, exactly as `kstrtoul_from_user(.., 10, ..)`:
/// optional leading `+`, decimal digits (leading zeros ok), at most one
/// trailing `\n`.
///
/// * EINVAL for spaces, tabs, `\r`, `0x`, `-`, the empty write, a lone `\n`,
///   `1\n\n`, trailing junk (§3.2, §5.1).
/// * **ERANGE** (not EINVAL) when the digits overflow `u64`, e.g.
///   `18446744073709551616` (verified on 6.18 on event/subsystem/top `enable`,
///   `tracing_on`, `options/*`). Out-of-range-for-the-file values that fit in
///   `u64` (e.g. `2` for `enable`) are EINVAL; that check is the caller's.
/// * Only the first **66 bytes** of the write are looked at, and the value
///   ends at the first NUL (verified on 6.18: `"0"*66 + "1"` sets `0` and
///   returns 67; `"1\0xyz"` sets `1`; `"0"*64 + "1\n\n"` is accepted).
pub fn parse_unsigned(buf: &[u8]) -> Result<u64, i32> {
    let head = &buf[..buf.len().min(KSTRTOUL_FROM_USER_MAX)];
    kstrtoull(c_str(head), 10)
}

/// Per-event, subsystem and top `enable` (§5.1, §5.2): exactly 0 or 1 in the
/// [`parse_unsigned`] syntax; any other value is EINVAL (ERANGE on `u64`
/// overflow, verified on 6.18).
pub fn parse_enable(buf: &[u8]) -> Result<bool, i32> {
    match parse_unsigned(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(EINVAL),
    }
}

/// `tracing_on` (§10.4): any unsigned value; non-zero means on (`2`, `10`,
/// `18446744073709551615` all read back `1`; verified on 6.18).
pub fn parse_tracing_on(buf: &[u8]) -> Result<bool, i32> {
    Ok(parse_unsigned(buf)? != 0)
}

/// `options/<name>` files (core and tracer options): 0 or 1 only, same
/// syntax and errors as [`parse_enable`] (verified on 6.18: `2`, `10`, `x`,
/// ` 1`, `1\n\n` give EINVAL; `+1`, `01`, `1\n` are accepted). Reads back
/// `0\n` / `1\n`.
pub fn parse_option_file(buf: &[u8]) -> Result<bool, i32> {
    parse_enable(buf)
}

/// `buffer_size_kb` (§10.5): per-CPU size in KiB, [`parse_unsigned`] syntax;
/// `0` (also `00`) is EINVAL. The caller applies [`round_buffer_size_kb`]
/// (or [`round_buffer_size_kb_for_subbuf`]) to get the value that reads back.
/// The kernel answers ENOMEM when the resulting page count exceeds available
/// memory (verified: `1000000000000` -> ENOMEM); see [`buffer_size_pages`].
pub fn parse_buffer_size_kb(buf: &[u8]) -> Result<u64, i32> {
    match parse_unsigned(buf)? {
        0 => Err(EINVAL),
        kb => Ok(kb),
    }
}

/// Sub-buffer header size (`BUF_PAGE_HDR_SIZE`: u64 timestamp + local_t commit).
const SUBBUF_HEADER_BYTES: u64 = 16;

/// Number of ring-buffer sub-buffers per CPU for a `buffer_size_kb` write of
/// `kb` with sub-buffers of `subbuf_kb` KiB: `DIV_ROUND_UP(kb << 10, data)`
/// with `data = subbuf_kb * 1024 - 16`, at least 2. The arithmetic wraps like
/// the kernel's `unsigned long` (verified on 6.18: `2^54` and
/// `18446744073709551615` both read back `7`).
pub fn buffer_size_pages(kb: u64, subbuf_kb: u64) -> u64 {
    let data = subbuf_data_bytes(subbuf_kb);
    let size = kb.wrapping_shl(10);
    let pages = size.wrapping_add(data - 1) / data;
    pages.max(2)
}

fn subbuf_data_bytes(subbuf_kb: u64) -> u64 {
    subbuf_kb
        .saturating_mul(1024)
        .saturating_sub(SUBBUF_HEADER_BYTES)
        .max(1)
}

/// The value `buffer_size_kb` reads back after writing `kb` with the default
/// 4 KiB sub-buffers: whole sub-buffers of 4080 data bytes, at least two
/// (§10.5). Verified on 6.18: 1..=7 -> 7, 8 -> 11, 16 -> 19, 64 -> 67,
/// 67 -> 67, 68 -> 71, 100 -> 103, 1000 -> 1000, 1408 -> 1410, 4096 -> 4099.
/// `buffer_total_size_kb` is this times the number of CPUs.
pub fn round_buffer_size_kb(kb: u64) -> u64 {
    round_buffer_size_kb_for_subbuf(kb, 4)
}

/// [`round_buffer_size_kb`] for any `buffer_subbuf_size_kb`: sub-buffers
/// hold `subbuf_kb * 1024 - 16` data bytes. Verified on 6.18 with 8 KiB
/// sub-buffers: 1 -> 15, 16 -> 23, 64 -> 71, 100 -> 103; with 64 KiB:
/// 1, 64, 100 -> 127. (Changing `buffer_subbuf_size_kb` alone does not change
/// what `buffer_size_kb` reads.)
pub fn round_buffer_size_kb_for_subbuf(kb: u64, subbuf_kb: u64) -> u64 {
    let data = subbuf_data_bytes(subbuf_kb);
    let bytes = u128::from(buffer_size_pages(kb, subbuf_kb)) * u128::from(data);
    u64::try_from(bytes >> 10).unwrap_or(u64::MAX)
}

/// `buffer_percent`: 0..=100 in the [`parse_unsigned`] syntax; anything
/// larger is EINVAL (verified on 6.18; reads back `<n>\n`, default `50\n`).
pub fn parse_buffer_percent(buf: &[u8]) -> Result<u64, i32> {
    match parse_unsigned(buf)? {
        v @ 0..=100 => Ok(v),
        _ => Err(EINVAL),
    }
}

/// `buffer_subbuf_size_kb`: returns the **effective** size in KiB, which is
/// what reads back (`<n>\n`, default `4\n`). The kernel computes
/// `pages = (int)DIV_ROUND_UP(val * 1024, 4096)`, `order = fls(pages - 1)`
/// and rejects `order > 7`, so the value rounds up to a power of two times
/// 4 KiB, from 4 to 512. Verified on 6.18: 1..=4 -> 4, 5..=8 -> 8, 9..=16 ->
/// 16, 17 -> 32, 100 -> 128, 257..=512 -> 512; `0`, `513`, `1024` -> EINVAL.
/// The `int` truncation is reproduced: `17179869188` is accepted as 4.
pub fn parse_buffer_subbuf_size_kb(buf: &[u8]) -> Result<u64, i32> {
    let val = parse_unsigned(buf)?;
    let bytes = val.wrapping_mul(1024);
    let pages = (bytes.wrapping_add(4095) / 4096) as u32 as i32;
    let below = pages.wrapping_sub(1) as u32;
    let order = 32 - below.leading_zeros(); // fls()
    if order > 7 {
        return Err(EINVAL);
    }
    Ok(4u64 << order)
}

/// `saved_cmdlines_size` (top level only): 1..=32768 (`PID_MAX_DEFAULT`),
/// else EINVAL. From source (`tracing_saved_cmdlines_size_write`); the 6.18
/// bound was confirmed through the kernel's BTF (`map_pid_to_cmdline` has
/// 32769 entries, i.e. the pre-`PID_MAP_SIZE` code). Not written live (top
/// level). The read-back value is [`saved_cmdlines_capacity`].
pub fn parse_saved_cmdlines_size(buf: &[u8]) -> Result<u64, i32> {
    match parse_unsigned(buf)? {
        v @ 1..=32768 => Ok(v),
        _ => Err(EINVAL),
    }
}

/// What `saved_cmdlines_size` reads back after a write of `n`: the kernel
/// rounds the allocation up to a power-of-two number of pages and fills it.
/// `sizeof(struct saved_cmdlines_buffer)` is 131096 on 6.18 (from BTF) and
/// each entry takes 16 (comm) + 4 (pid) bytes. The default 128 gives 6552,
/// which is what the reference kernel shows.
pub fn saved_cmdlines_capacity(n: u64) -> u64 {
    const HEADER: u64 = 131_096;
    const ENTRY: u64 = 20;
    let need = HEADER.saturating_add(n.saturating_mul(ENTRY));
    let mut size: u64 = 4096;
    while size < need && size < (1 << 62) {
        size <<= 1;
    }
    (size - HEADER) / ENTRY
}

/// `tracing_thresh` (top level only): any unsigned value in microseconds,
/// [`parse_unsigned`] syntax (source: `tracing_nsecs_write`; not written
/// live). The kernel stores `val * 1000` ns; see [`tracing_thresh_readback`].
pub fn parse_tracing_thresh(buf: &[u8]) -> Result<u64, i32> {
    parse_unsigned(buf)
}

/// The number `tracing_thresh` reads back (`<n>\n`) after writing `usecs`:
/// the kernel keeps `usecs * 1000` in an `unsigned long` (wrapping) and
/// prints it divided by 1000.
pub fn tracing_thresh_readback(usecs: u64) -> u64 {
    usecs.wrapping_mul(1000) / 1000
}

// ---------------------------------------------------------------------------
// Words: trace_options, current_tracer, trace_clock
// ---------------------------------------------------------------------------

/// A single word written to `current_tracer` / `trace_clock`: the write is
/// cut at the first NUL, then **leading and trailing** kernel whitespace is
/// stripped (`strstrip`, including `\v`, `\f`, `\r` and 0xA0). Empty ->
/// EINVAL; non-UTF-8 -> EINVAL. Interior whitespace is kept (`"no p"` is
/// returned as is; the caller's membership test then gives EINVAL). Verified
/// on 6.18: ` nop`, `\tnop\n\n`, `nop\0junk`, `\xa0nop\xa0` select `nop`.
/// The per-file length rules are in [`parse_current_tracer`] and
/// [`parse_trace_clock`].
pub fn parse_word(buf: &[u8]) -> Result<&str, i32> {
    let word = kstrip(c_str(buf));
    if word.is_empty() {
        return Err(EINVAL);
    }
    std::str::from_utf8(word).map_err(|_| EINVAL)
}

/// Kernel `MAX_TRACER_SIZE`: `current_tracer` looks only at this many bytes.
const MAX_TRACER_SIZE: usize = 100;

/// `current_tracer` (§10.6): only the first 100 bytes are looked at (the write
/// still returns its full count), then [`parse_word`]. Verified on 6.18:
/// `"nop" + 97 spaces + "x"` (101 bytes) selects `nop` and returns 101.
/// Note: in an instance, `function` (listed in `available_tracers`) gave
/// EPERM on the reference kernel; that is the caller's concern.
pub fn parse_current_tracer(buf: &[u8]) -> Result<&str, i32> {
    parse_word(&buf[..buf.len().min(MAX_TRACER_SIZE)])
}

/// `trace_clock`: a write of 64 bytes or more is EINVAL (the kernel's buffer
/// is 64 bytes), otherwise [`parse_word`]. Verified on 6.18: `"local" + 58
/// spaces` (63 bytes) works, 64 bytes gives EINVAL. The `[clock]` form as
/// read back is not accepted (EINVAL from the caller's membership test).
pub fn parse_trace_clock(buf: &[u8]) -> Result<&str, i32> {
    if buf.len() >= 64 {
        return Err(EINVAL);
    }
    parse_word(buf)
}

/// `trace_options` write: `name` sets, `no<name>` clears; returns
/// `(name, value)`. Verified on 6.18:
///
/// * A write of 64 bytes or more is EINVAL (63 works).
/// * The write is cut at the first NUL; leading and trailing kernel
///   whitespace is stripped (`" raw\n"`, `"\traw "`, `"raw\n\n"`,
///   `"\x0braw\x0c\r"` all work). Interior whitespace is EINVAL (`no raw`).
/// * The `no` prefix is stripped once (`nonoraw` is EINVAL), names are case
///   sensitive (`RAW` is EINVAL), an empty name (`""`, `"\n"`, `"no"`) is
///   EINVAL.
/// * An unknown name is **EINVAL**. `known` must list every name the caller
///   accepts (core options and the current tracer's options).
///
/// The caller may still refuse a known option (the kernel's
/// `test_nop_refuse` gives EINVAL both ways). Read-back of the file is one
/// option per line, `name\n` or `no<name>\n`, in the kernel's option order.
pub fn parse_trace_options(buf: &[u8], known: &[&str]) -> Result<(String, bool), i32> {
    if buf.len() >= 64 {
        return Err(EINVAL);
    }
    let word = kstrip(c_str(buf));
    let (name, value) = match word {
        [b'n', b'o', rest @ ..] => (rest, false),
        _ => (word, true),
    };
    let name = std::str::from_utf8(name).map_err(|_| EINVAL)?;
    if name.is_empty() || !known.contains(&name) {
        return Err(EINVAL);
    }
    Ok((name.to_owned(), value))
}

// ---------------------------------------------------------------------------
// tracing_cpumask
// ---------------------------------------------------------------------------

/// `bitmap_parse()`'s region separator: whitespace or a comma.
fn is_region_end(b: u8) -> bool {
    is_kspace(b) || b == b','
}

/// `tracing_cpumask` write, exactly as the kernel's `bitmap_parse()` with
/// `nmaskbits = nr_cpus`. Returns the mask as 64-bit words, CPU 0 in bit 0 of
/// word 0, `ceil(nr_cpus / 64)` words.
///
/// * The empty write is EINVAL. Otherwise the text ends at the first `\n` or
///   NUL (`"3\ngarbage"` -> 3, `"\n3"` -> 0).
/// * Hex digits (either case, no `0x`), in comma- or whitespace-separated
///   groups of at most 8 digits, each group 32 bits, the last group lowest.
///   Leading/trailing/repeated separators are fine (`" 3"`, `",3,"`). A group
///   or mask that is only separators gives the empty mask (`"\n"`, `","`,
///   `"  "` all set 0; the kernel accepts an empty mask).
/// * A non-hex character -> EINVAL (`0x3`, `-1`, `g`).
/// * More than 8 digits in a group, more groups than `ceil(nr_cpus / 32)`, or
///   a set bit at or above `nr_cpus` -> **EOVERFLOW** (`ff`, `4`, `1 2`,
///   `0,3`, `000000003` on 2 CPUs).
///
/// Verified on 6.18 (2 CPUs), including the quirk that a non-hex character
/// right after an 8-digit group is skipped (`g00000003` -> 3).
pub fn parse_tracing_cpumask_for(buf: &[u8], nr_cpus: usize) -> Result<Vec<u64>, i32> {
    if buf.is_empty() {
        return Err(EINVAL);
    }
    let text = {
        let s = c_str(buf);
        match s.iter().position(|&b| b == b'\n') {
            Some(n) => &s[..n],
            None => s,
        }
    };
    let nchunks = nr_cpus.div_ceil(32);
    let mut chunks = vec![0u32; nchunks];
    let mut parsed = 0usize;
    // `end` is one past the last unconsumed byte (the kernel's `end + 1`).
    let mut end = text.len();
    loop {
        while end > 0 && is_region_end(text[end - 1]) {
            end -= 1;
        }
        if end == 0 {
            break;
        }
        if parsed == nchunks {
            return Err(EOVERFLOW);
        }
        let mut value: u32 = 0;
        let mut shift = 0;
        let mut done = false;
        while shift < 32 {
            let digit = hex_value(text[end - 1]).ok_or(EINVAL)?;
            end -= 1;
            value |= digit << shift;
            shift += 4;
            if end == 0 || is_region_end(text[end - 1]) {
                done = true;
                break;
            }
        }
        if !done {
            // Eight digits read and the group goes on.
            if hex_value(text[end - 1]).is_some() {
                return Err(EOVERFLOW);
            }
            end -= 1;
        }
        chunks[parsed] = value;
        parsed += 1;
    }
    // Bits at or above nr_cpus must be clear.
    for (i, &c) in chunks.iter().enumerate() {
        for bit in 0..32 {
            if c & (1 << bit) != 0 && i * 32 + bit >= nr_cpus {
                return Err(EOVERFLOW);
            }
        }
    }
    let mut words = vec![0u64; nr_cpus.div_ceil(64)];
    for (i, &c) in chunks.iter().enumerate() {
        words[i / 2] |= u64::from(c) << ((i % 2) * 32);
    }
    Ok(words)
}

/// `tracing_cpumask` as a single 64-bit mask, i.e.
/// [`parse_tracing_cpumask_for`] with `nr_cpus = 64`: CPU `n` is bit `n`.
///
/// Kept for callers that store the mask in a `u64`. It is exact only on a
/// 64-CPU machine: with fewer CPUs the kernel also answers EOVERFLOW for a
/// set bit at or above the CPU count (`ff` or `4` on 2 CPUs) and for more
/// 32-bit groups than the CPUs need (`0,3` on 2 CPUs). Prefer
/// `parse_tracing_cpumask_for(buf, ncpu)` and [`format_tracing_cpumask`].
pub fn parse_tracing_cpumask(buf: &[u8]) -> Result<u64, i32> {
    parse_tracing_cpumask_for(buf, 64).map(|words| words.first().copied().unwrap_or(0))
}

/// What `tracing_cpumask` reads: the kernel's `%*pb` over `nr_cpus` bits plus
/// `\n`. Lower-case hex, 32-bit groups separated by commas, most significant
/// first; the first group has `ceil((nr_cpus % 32 or 32) / 4)` zero-padded
/// digits, the others 8. Examples: 2 CPUs -> `3\n` (verified on 6.18, also
/// `1\n`, `2\n`, `0\n`); 8 CPUs -> `ff\n`; 40 CPUs -> `ff,ffffffff\n`.
/// Missing words count as zero.
pub fn format_tracing_cpumask(mask: &[u64], nr_cpus: usize) -> String {
    let mut out = String::new();
    if nr_cpus == 0 {
        out.push('\n');
        return out;
    }
    let nchunks = nr_cpus.div_ceil(32);
    for i in (0..nchunks).rev() {
        let word = mask.get(i / 2).copied().unwrap_or(0);
        let mut chunk = (word >> ((i % 2) * 32)) as u32;
        let bits = if i == nchunks - 1 {
            match nr_cpus % 32 {
                0 => 32,
                r => r,
            }
        } else {
            32
        };
        if bits < 32 {
            chunk &= (1u32 << bits) - 1;
        }
        if i != nchunks - 1 {
            out.push(',');
        }
        let width = bits.div_ceil(4);
        out.push_str(&format!("{chunk:0width$x}"));
    }
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------
// trace_get_user(): set_event and set_event_pid
// ---------------------------------------------------------------------------

/// Longest token `set_event` and `set_event_pid` accept (`EVENT_BUF_SIZE`,
/// `PID_BUF_SIZE`).
const MAX_TOKEN: usize = 127;

/// One call of the kernel's `trace_get_user()` with a fresh parser on a
/// non-empty `buf`: skip leading whitespace; a token ends at whitespace or
/// NUL, which is consumed. Returns `(consumed, token)`; `token` is `None`
/// when only whitespace (or a NUL after it) was found. A token longer than
/// [`MAX_TOKEN`] is EINVAL.
fn next_token(buf: &[u8]) -> Result<(usize, Option<&[u8]>), i32> {
    let Some(&first) = buf.first() else {
        return Ok((0, None));
    };
    let mut ch = first;
    let mut read = 1;
    while read < buf.len() && is_kspace(ch) {
        ch = buf[read];
        read += 1;
    }
    if is_kspace(ch) || ch == 0 {
        return Ok((read, None));
    }
    let start = read - 1;
    let mut len = 0;
    while read < buf.len() && !is_kspace(ch) && ch != 0 {
        if len >= MAX_TOKEN {
            return Err(EINVAL);
        }
        len += 1;
        ch = buf[read];
        read += 1;
    }
    if !is_kspace(ch) && ch != 0 {
        // The buffer ended inside the token: the last byte belongs to it.
        if len >= MAX_TOKEN {
            return Err(EINVAL);
        }
        len += 1;
    }
    Ok((read, Some(&buf[start..start + len])))
}

/// The result of one `write(2)` to `set_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEventWrite {
    /// Bytes consumed: the value `write(2)` returns.
    pub consumed: usize,
    /// The command of the token, if a token was found.
    pub command: Option<SetEventCommand>,
}

/// One `set_event` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEventCommand {
    /// `false` when the token starts with `!`.
    pub enable: bool,
    /// Which events the token names.
    pub selector: EventSelector,
}

/// The event grammar of §6.1. No globbing: only a whole field that is empty
/// or `*` is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelector {
    /// A token with a colon, `system:event`, split at the **first** colon:
    /// `Pair(system, event)`. `None` is a wildcard (the field was empty or
    /// exactly `*`): `sub:`/`sub:*`, `:event`/`*:event`, `*:*`/`*:`/`:`/`:*`.
    /// Fields are matched literally, so `sched:sched_process_e*` or `a:b:c`
    /// match nothing.
    Pair(Option<String>, Option<String>),
    /// A bare `name` (no colon): every event whose subsystem **or** event
    /// name is `name`. Matched literally, so `*` matches nothing, and so does
    /// the empty name of a lone `!`.
    Bare(String),
}

impl EventSelector {
    /// Whether the event `system:event` is selected.
    pub fn matches(&self, system: &str, event: &str) -> bool {
        match self {
            EventSelector::Pair(sys, ev) => {
                sys.as_deref().is_none_or(|s| s == system)
                    && ev.as_deref().is_none_or(|e| e == event)
            }
            EventSelector::Bare(name) => name == system || name == event,
        }
    }
}

fn wildcard_field(field: &str) -> Option<String> {
    if field.is_empty() || field == "*" {
        None
    } else {
        Some(field.to_owned())
    }
}

/// Parse the grammar of one `set_event` token (without whitespace).
fn parse_event_token(token: &[u8]) -> Result<SetEventCommand, i32> {
    let (enable, body) = match token {
        [b'!', rest @ ..] => (false, rest),
        _ => (true, token),
    };
    // `:mod:<module>` restricts to a module's events. The reference kernel
    // has no modules, so such a token can never match (§0.1, §6.1).
    if body.windows(5).any(|w| w == b":mod:") {
        return Err(EINVAL);
    }
    let body = std::str::from_utf8(body).map_err(|_| EINVAL)?;
    let selector = match body.split_once(':') {
        Some((system, event)) => EventSelector::Pair(wildcard_field(system), wildcard_field(event)),
        None => EventSelector::Bare(body.to_owned()),
    };
    Ok(SetEventCommand { enable, selector })
}

/// `set_event` (§6.1): each `write(2)` parses ONE whitespace-delimited token
/// (the kernel's `trace_get_user()` on a fresh parser).
///
/// * Leading whitespace is skipped; the token ends at the first whitespace
///   character or NUL, which is consumed. `consumed` is what `write(2)`
///   returns: `"sched_process_wait sched_process_hang"` -> 19.
/// * `""` -> 0, no command; `"\n"` -> 1, no command; a NUL where a token
///   would start ends the write: `"\0sched"` -> 1 and `"  \0abc"` -> 3, no
///   command (verified on 6.18). `"sched:sched_process_fork\0garbage"` -> 25.
/// * Whitespace is the kernel's `isspace()`, so 0xA0 separates tokens too
///   (verified on 6.18).
/// * A token longer than 127 bytes -> EINVAL; a token containing `:mod:` ->
///   EINVAL (no modules); a non-UTF-8 token -> EINVAL (it cannot match).
///
/// The caller reports EINVAL when the selector matches nothing (also for
/// `!`), and never lets ignore-enable (ftrace) events match.
pub fn parse_set_event(buf: &[u8]) -> Result<SetEventWrite, i32> {
    let (consumed, token) = next_token(buf)?;
    let command = match token {
        Some(token) => Some(parse_event_token(token)?),
        None => None,
    };
    Ok(SetEventWrite { consumed, command })
}

/// The result of one `write(2)` to `set_event_pid` / `set_event_notrace_pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidListWrite {
    /// Bytes consumed: the value `write(2)` returns.
    pub consumed: usize,
    /// The pids to **add**, in write order (may hold duplicates).
    pub pids: Vec<u32>,
}

/// Pids must be below `1 << 30` (`MAX_PID` of kernel/trace/pid_list.c).
const PID_LIMIT: u64 = 1 << 30;

/// `set_event_pid` / `set_event_notrace_pid` write (§10.8), with the exact
/// return value. The kernel (`trace_pid_write()`) reads tokens with
/// `trace_get_user()` until the write is used up; verified on 6.18:
///
/// * Tokens are separated by any kernel whitespace or NUL; each is parsed
///   with `kstrtoul(tok, 0)`: decimal, `0x`/`0X` hex, leading-`0` octal,
///   optional `+` (`0x10` -> 16, `010` -> 8, `+0x5` -> 5, `08` -> EINVAL).
/// * Non-numeric (`abc`, `1,2`), negative (`-1`) or a number overflowing
///   `u64` -> EINVAL; a token longer than 127 bytes -> EINVAL.
/// * The value is truncated to 32 bits (`4294967297` adds pid 1); a pid
///   `>= 1 << 30` -> **EPERM** (`1073741824`, `0xffffffff`).
/// * All or nothing: any error leaves the list unchanged.
/// * The pids are **added** to the existing list; a write with no pids (`""`,
///   `"\n"`) changes nothing. Only an `O_TRUNC` open clears.
/// * A NUL where a token would start stops the parse and the write returns
///   a short count: `"1 \0 2"` adds only 1 and returns 3.
///
/// The file reads one pid per line in ascending order, no duplicates, and
/// is empty (0 bytes) when the list is empty; see [`format_pid_list`].
pub fn parse_pid_list_write(buf: &[u8]) -> Result<PidListWrite, i32> {
    let mut consumed = 0;
    let mut pids = Vec::new();
    while consumed < buf.len() {
        let (read, token) = next_token(&buf[consumed..])?;
        consumed += read;
        let Some(token) = token else { break };
        let value = kstrtoull(token, 0).map_err(|_| EINVAL)?;
        let pid = value as u32;
        if u64::from(pid) >= PID_LIMIT {
            return Err(EPERM);
        }
        pids.push(pid);
    }
    Ok(PidListWrite { consumed, pids })
}

/// `set_event_pid` / `set_event_notrace_pid` (§10.8): the pids of one write,
/// see [`parse_pid_list_write`] for the rules and the exact `write(2)` return
/// value (it is the full count unless the write holds a NUL).
pub fn parse_pid_list(buf: &[u8]) -> Result<Vec<u32>, i32> {
    parse_pid_list_write(buf).map(|w| w.pids)
}

/// What `set_event_pid` reads: one pid per line, ascending, without
/// duplicates (`123\n`; `"30 10 20"` reads `10\n20\n30\n`); empty list -> "".
pub fn format_pid_list(pids: &[u32]) -> String {
    let mut sorted = pids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    for pid in sorted {
        out.push_str(&pid.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // -- §3.2 / §5.1 numeric syntax --------------------------------------

    #[test]
    fn unsigned_accepted() {
        let cases: &[(&[u8], u64)] = &[
            (b"0", 0),
            (b"1", 1),
            (b"1\n", 1),
            (b"01", 1),
            (b"+1", 1),
            (b"0001\n", 1),
            (b"00", 0),
            (b"+7\n", 7),
            (b"4294967296", 4_294_967_296),
            (b"18446744073709551615", u64::MAX),
            // C-string: the value ends at the first NUL (verified on 6.18).
            (b"1\0xyz", 1),
            (b"0\0", 0),
            (b"1\n\0", 1),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_unsigned(input), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn unsigned_rejected() {
        let cases: &[(&[u8], i32)] = &[
            (b"", EINVAL),
            (b"\n", EINVAL),
            (b" 1", EINVAL),
            (b"1 ", EINVAL),
            (b"1\t", EINVAL),
            (b"\t1", EINVAL),
            (b"1\r", EINVAL),
            (b"1\n\n", EINVAL),
            (b"0x1", EINVAL),
            (b"-1", EINVAL),
            (b"x", EINVAL),
            (b"true", EINVAL),
            (b"1x", EINVAL),
            (b"+", EINVAL),
            (b"+\n", EINVAL),
            (b"++1", EINVAL),
            (b"\0", EINVAL),
            (b"\x001", EINVAL),
            (b"1\xff", EINVAL),
            (b"\xff", EINVAL),
            (b"\xe2\x82", EINVAL),
            // u64 overflow is ERANGE, also before trailing junk (6.18).
            (b"18446744073709551616", ERANGE),
            (b"99999999999999999999999", ERANGE),
            (b"99999999999999999999999x", ERANGE),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_unsigned(input), Err(want), "input {input:?}");
        }
    }

    #[test]
    fn unsigned_looks_at_66_bytes_only() {
        let mut v = vec![b'0'; 66];
        v.push(b'1');
        assert_eq!(parse_unsigned(&v), Ok(0)); // 67 bytes, the '1' is cut
        let mut v = vec![b'0'; 65];
        v.push(b'1');
        assert_eq!(parse_unsigned(&v), Ok(1));
        let mut v = vec![b'0'; 66];
        v.extend_from_slice(b"xyz");
        assert_eq!(parse_unsigned(&v), Ok(0));
        let mut v = vec![b'0'; 64];
        v.extend_from_slice(b"1\n\n");
        assert_eq!(parse_unsigned(&v), Ok(1));
        let mut v = vec![b'+'];
        v.extend(std::iter::repeat_n(b'0', 65));
        v.push(b'1');
        assert_eq!(parse_unsigned(&v), Ok(0));
        let mut v = vec![b'0'; 65];
        v.extend_from_slice(b"\ngarbage");
        assert_eq!(parse_unsigned(&v), Ok(0));
    }

    #[test]
    fn enable_table() {
        // §5.1 and §14 row 10.
        for input in [&b"1"[..], b"1\n", b"01", b"+1", b"0001\n"] {
            assert_eq!(parse_enable(input), Ok(true), "{input:?}");
        }
        for input in [&b"0"[..], b"0\n", b"00", b"+0"] {
            assert_eq!(parse_enable(input), Ok(false), "{input:?}");
        }
        // §5.1 rejected list and §14 row 11 (and row 14: `2`).
        let rejected: &[&[u8]] = &[
            b"2",
            b"10",
            b"4294967297",
            b"4294967296",
            b"18446744073709551615",
            b"x",
            b"true",
            b"1x",
            b"-1",
            b"0x1",
            b" 1",
            b"1 ",
            b"1\t",
            b"1\r",
            b"1\n\n",
            b"\n",
            b"",
        ];
        for &input in rejected {
            assert_eq!(parse_enable(input), Err(EINVAL), "{input:?}");
        }
        assert_eq!(parse_enable(b"18446744073709551616"), Err(ERANGE));
    }

    #[test]
    fn tracing_on_table() {
        // §10.4, §14 row 53.
        let cases: &[(&[u8], Result<bool, i32>)] = &[
            (b"1", Ok(true)),
            (b"0", Ok(false)),
            (b"2", Ok(true)),
            (b"10", Ok(true)),
            (b"4294967296", Ok(true)),
            (b"18446744073709551615", Ok(true)),
            (b"0\n", Ok(false)),
            (b"-1", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"x", Err(EINVAL)),
            (b"18446744073709551616", Err(ERANGE)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_tracing_on(input), want, "{input:?}");
        }
    }

    #[test]
    fn option_file_table() {
        // Verified on 6.18 on options/overwrite.
        let cases: &[(&[u8], Result<bool, i32>)] = &[
            (b"1", Ok(true)),
            (b"0", Ok(false)),
            (b"+1", Ok(true)),
            (b"01", Ok(true)),
            (b"1\n", Ok(true)),
            (b"2", Err(EINVAL)),
            (b"10", Err(EINVAL)),
            (b"1\n\n", Err(EINVAL)),
            (b" 1", Err(EINVAL)),
            (b"1 ", Err(EINVAL)),
            (b"x", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"\n", Err(EINVAL)),
            (b"-1", Err(EINVAL)),
            (b"0x1", Err(EINVAL)),
            (b"1\r", Err(EINVAL)),
            (b"4294967297", Err(EINVAL)),
            (b"18446744073709551617", Err(ERANGE)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_option_file(input), want, "{input:?}");
        }
    }

    // -- buffer sizes --------------------------------------------------------

    #[test]
    fn buffer_size_kb_parse() {
        assert_eq!(parse_buffer_size_kb(b"64"), Ok(64));
        assert_eq!(parse_buffer_size_kb(b"+8\n"), Ok(8));
        assert_eq!(parse_buffer_size_kb(b"0"), Err(EINVAL));
        assert_eq!(parse_buffer_size_kb(b"00"), Err(EINVAL));
        assert_eq!(parse_buffer_size_kb(b"abc"), Err(EINVAL));
        assert_eq!(parse_buffer_size_kb(b" 5"), Err(EINVAL));
        assert_eq!(parse_buffer_size_kb(b""), Err(EINVAL));
    }

    #[test]
    fn buffer_size_kb_rounding() {
        // Verified on 6.18 in an instance (4 KiB sub-buffers).
        let cases: &[(u64, u64)] = &[
            (1, 7),
            (2, 7),
            (3, 7),
            (4, 7),
            (7, 7),
            (8, 11),
            (9, 11),
            (16, 19),
            (64, 67),
            (67, 67),
            (68, 71),
            (100, 103),
            (1000, 1000),
            (1408, 1410),
            (4096, 4099),
            // Wrapping `kb << 10` and DIV_ROUND_UP, as the kernel.
            (1 << 54, 7),
            ((1 << 54) + 8, 11),
            (u64::MAX, 7),
        ];
        for &(kb, want) in cases {
            assert_eq!(round_buffer_size_kb(kb), want, "kb {kb}");
        }
        // Other sub-buffer sizes.
        let cases: &[(u64, u64, u64)] = &[
            (1, 8, 15),
            (7, 8, 15),
            (8, 8, 15),
            (16, 8, 23),
            (64, 8, 71),
            (100, 8, 103),
            (1, 64, 127),
            (64, 64, 127),
            (65, 64, 127),
            (100, 64, 127),
            (64, 4, 67),
        ];
        for &(kb, sub, want) in cases {
            assert_eq!(round_buffer_size_kb_for_subbuf(kb, sub), want, "{kb} {sub}");
        }
        assert_eq!(buffer_size_pages(64, 4), 17);
        assert_eq!(buffer_size_pages(1, 4), 2);
        // Degenerate sub-buffer sizes must not panic.
        let _ = round_buffer_size_kb_for_subbuf(u64::MAX, 0);
        let _ = round_buffer_size_kb_for_subbuf(u64::MAX, u64::MAX);
        let _ = round_buffer_size_kb_for_subbuf(u64::MAX - 5, 1);
    }

    #[test]
    fn buffer_percent_table() {
        let cases: &[(&[u8], Result<u64, i32>)] = &[
            (b"0", Ok(0)),
            (b"1", Ok(1)),
            (b"50", Ok(50)),
            (b"100", Ok(100)),
            (b"+7\n", Ok(7)),
            (b"101", Err(EINVAL)),
            (b"1000", Err(EINVAL)),
            (b" 5", Err(EINVAL)),
            (b"-1", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"x", Err(EINVAL)),
            (b"4294967296", Err(EINVAL)),
            (b"4294967346", Err(EINVAL)),
            (b"18446744073709551615", Err(EINVAL)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_buffer_percent(input), want, "{input:?}");
        }
    }

    #[test]
    fn buffer_subbuf_size_table() {
        // Verified on 6.18 in an instance.
        let cases: &[(&[u8], Result<u64, i32>)] = &[
            (b"0", Err(EINVAL)),
            (b"1", Ok(4)),
            (b"2", Ok(4)),
            (b"3", Ok(4)),
            (b"4", Ok(4)),
            (b"4\n", Ok(4)),
            (b"5", Ok(8)),
            (b"7", Ok(8)),
            (b"8", Ok(8)),
            (b"9", Ok(16)),
            (b"12", Ok(16)),
            (b"16", Ok(16)),
            (b"17", Ok(32)),
            (b"64", Ok(64)),
            (b"100", Ok(128)),
            (b"256", Ok(256)),
            (b"257", Ok(512)),
            (b"512", Ok(512)),
            (b"513", Err(EINVAL)),
            (b"1024", Err(EINVAL)),
            (b"4294967297", Err(EINVAL)),
            (b"17179869184", Err(EINVAL)),
            (b"17179869188", Ok(4)),
            (b"17179869192", Ok(8)),
            (b"18446744073709551613", Err(EINVAL)),
            (b"18446744073709551612", Err(EINVAL)),
            (b"18446744073709551615", Err(EINVAL)),
            (b" 4", Err(EINVAL)),
            (b"-4", Err(EINVAL)),
            (b"x", Err(EINVAL)),
            (b"", Err(EINVAL)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_buffer_subbuf_size_kb(input), want, "{input:?}");
        }
    }

    #[test]
    fn saved_cmdlines_size_table() {
        let cases: &[(&[u8], Result<u64, i32>)] = &[
            (b"1", Ok(1)),
            (b"128\n", Ok(128)),
            (b"32768", Ok(32768)),
            (b"0", Err(EINVAL)),
            (b"32769", Err(EINVAL)),
            (b"-1", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"18446744073709551616", Err(ERANGE)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_saved_cmdlines_size(input), want, "{input:?}");
        }
        // Default 128 reads back 6552 on the reference kernel.
        assert_eq!(saved_cmdlines_capacity(128), 6552);
        assert_eq!(saved_cmdlines_capacity(1), 6552);
        assert_eq!(saved_cmdlines_capacity(6552), 6552);
        assert_eq!(saved_cmdlines_capacity(6553), 19659);
        assert_eq!(saved_cmdlines_capacity(32768), 45874);
    }

    #[test]
    fn tracing_thresh_table() {
        assert_eq!(parse_tracing_thresh(b"0"), Ok(0));
        assert_eq!(parse_tracing_thresh(b"100\n"), Ok(100));
        assert_eq!(parse_tracing_thresh(b"-1"), Err(EINVAL));
        assert_eq!(parse_tracing_thresh(b""), Err(EINVAL));
        assert_eq!(tracing_thresh_readback(100), 100);
        assert_eq!(tracing_thresh_readback(0), 0);
        assert_eq!(
            tracing_thresh_readback(u64::MAX),
            u64::MAX.wrapping_mul(1000) / 1000
        );
    }

    // -- words -------------------------------------------------------------

    #[test]
    fn word_table() {
        let cases: &[(&[u8], Result<&str, i32>)] = &[
            (b"nop", Ok("nop")),
            (b"nop\n", Ok("nop")),
            (b" nop", Ok("nop")),
            (b"\tnop\n\n", Ok("nop")),
            (b"nop\0junk", Ok("nop")),
            (b"\xa0nop\xa0", Ok("nop")),
            (b"\x0bcounter\x0c\r", Ok("counter")),
            (b"no p", Ok("no p")),
            (b"NOP", Ok("NOP")),
            (b"", Err(EINVAL)),
            (b"\n", Err(EINVAL)),
            (b"  ", Err(EINVAL)),
            (b"\0nop", Err(EINVAL)),
            (b"nop\xff", Err(EINVAL)),
            (b"\xffnop", Err(EINVAL)),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_word(input), want, "{input:?}");
        }
    }

    #[test]
    fn current_tracer_truncates_at_100() {
        let mut v = b"nop".to_vec();
        v.extend(std::iter::repeat_n(b' ', 200));
        assert_eq!(parse_current_tracer(&v), Ok("nop"));
        let mut v = b"nop".to_vec();
        v.extend(std::iter::repeat_n(b' ', 97));
        v.push(b'x');
        assert_eq!(v.len(), 101);
        assert_eq!(parse_current_tracer(&v), Ok("nop"));
        let mut v = vec![b'x'; 97];
        v.extend_from_slice(b"nop");
        assert_eq!(parse_current_tracer(&v).map(str::len), Ok(100));
        assert_eq!(parse_current_tracer(b""), Err(EINVAL));
        // A multi-byte character cut at byte 100 must not panic.
        let mut v = vec![b'a'; 99];
        v.extend_from_slice("é".as_bytes());
        assert_eq!(parse_current_tracer(&v), Err(EINVAL));
    }

    #[test]
    fn trace_clock_length_limit() {
        let mut v = b"local".to_vec();
        v.extend(std::iter::repeat_n(b' ', 58));
        assert_eq!(v.len(), 63);
        assert_eq!(parse_trace_clock(&v), Ok("local"));
        v.push(b' ');
        assert_eq!(parse_trace_clock(&v), Err(EINVAL));
        assert_eq!(parse_trace_clock(b"\tlocal\n\n"), Ok("local"));
        assert_eq!(parse_trace_clock(b"local\0zz"), Ok("local"));
        assert_eq!(parse_trace_clock(b"[local]"), Ok("[local]"));
        assert_eq!(parse_trace_clock(b"\n"), Err(EINVAL));
    }

    const OPTS: &[&str] = &[
        "print-parent",
        "raw",
        "record-cmd",
        "trace_printk",
        "test_nop_accept",
        "test_nop_refuse",
    ];

    #[test]
    fn trace_options_table() {
        let ok = |n: &str, v: bool| Ok((n.to_owned(), v));
        type Want = Result<(String, bool), i32>;
        let cases: &[(&[u8], Want)] = &[
            (b"raw", ok("raw", true)),
            (b"noraw", ok("raw", false)),
            (b" raw\n", ok("raw", true)),
            (b"raw\n\n", ok("raw", true)),
            (b"\traw ", ok("raw", true)),
            (b"  noraw  \n", ok("raw", false)),
            (b"raw\0junk", ok("raw", true)),
            (b"raw\xa0", ok("raw", true)),
            (b"\xa0raw", ok("raw", true)),
            (b"\x0braw\x0c\r", ok("raw", true)),
            (b"record-cmd", ok("record-cmd", true)),
            (b"norecord-cmd", ok("record-cmd", false)),
            (b"notrace_printk", ok("trace_printk", false)),
            (b"test_nop_refuse", ok("test_nop_refuse", true)),
            (b"no raw", Err(EINVAL)),
            (b"RAW", Err(EINVAL)),
            (b"no", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"\n", Err(EINVAL)),
            (b"  ", Err(EINVAL)),
            (b"nonoraw", Err(EINVAL)),
            (b"raw junk", Err(EINVAL)),
            (b"bogus", Err(EINVAL)),
            (b"nobogus", Err(EINVAL)),
            (b"\xff", Err(EINVAL)),
            (b"no\xff", Err(EINVAL)),
        ];
        for (input, want) in cases {
            assert_eq!(&parse_trace_options(input, OPTS), want, "{input:?}");
        }
        let mut v = vec![b' '; 60];
        v.extend_from_slice(b"raw");
        assert_eq!(v.len(), 63);
        assert_eq!(parse_trace_options(&v, OPTS), ok("raw", true));
        v.insert(0, b' ');
        assert_eq!(parse_trace_options(&v, OPTS), Err(EINVAL));
        let mut v = b"raw\0".to_vec();
        v.extend(std::iter::repeat_n(b'x', 70));
        assert_eq!(parse_trace_options(&v, OPTS), Err(EINVAL));
    }

    // -- tracing_cpumask -----------------------------------------------------

    #[test]
    fn cpumask_two_cpus() {
        // Verified on 6.18 with 2 CPUs.
        let cases: &[(&[u8], Result<u64, i32>)] = &[
            (b"3", Ok(3)),
            (b"1", Ok(1)),
            (b"2", Ok(2)),
            (b"0", Ok(0)),
            (b"3\n", Ok(3)),
            (b" 3", Ok(3)),
            (b"3 ", Ok(3)),
            (b"\t3\t", Ok(3)),
            (b"1\n2", Ok(1)),
            (b"3\ngarbage", Ok(3)),
            (b",3,", Ok(3)),
            (b"00000003", Ok(3)),
            (b"\n", Ok(0)),
            (b"  ", Ok(0)),
            (b",", Ok(0)),
            (b"\n3", Ok(0)),
            (b"1\n\n", Ok(1)),
            (b"3\0zz", Ok(3)),
            (b"3\r", Ok(3)),
            (b"3\xa0", Ok(3)),
            (b"\xa03", Ok(3)),
            (b"\x0b3\x0c", Ok(3)),
            (b"g00000003", Ok(3)),
            (b"ff", Err(EOVERFLOW)),
            (b"FF", Err(EOVERFLOW)),
            (b"4", Err(EOVERFLOW)),
            (b"7", Err(EOVERFLOW)),
            (b"1 2", Err(EOVERFLOW)),
            (b"1,2", Err(EOVERFLOW)),
            (b"0,3", Err(EOVERFLOW)),
            (b"00000000,00000003", Err(EOVERFLOW)),
            (b"000000003", Err(EOVERFLOW)),
            (b"0 0 0 3", Err(EOVERFLOW)),
            (b"xyz00000003", Err(EOVERFLOW)),
            (b"0x3", Err(EINVAL)),
            (b"g", Err(EINVAL)),
            (b"-1", Err(EINVAL)),
            (b"", Err(EINVAL)),
            (b"\xff", Err(EINVAL)),
        ];
        for &(input, want) in cases {
            let got = parse_tracing_cpumask_for(input, 2).map(|w| {
                assert_eq!(w.len(), 1);
                w[0]
            });
            assert_eq!(got, want, "{input:?}");
        }
        let mut v = b"3".to_vec();
        v.extend(std::iter::repeat_n(b' ', 98));
        v.push(b'1');
        assert_eq!(parse_tracing_cpumask_for(&v, 2), Err(EOVERFLOW));
    }

    #[test]
    fn cpumask_many_cpus() {
        assert_eq!(
            parse_tracing_cpumask_for(b"ff,ffffffff", 40),
            Ok(vec![0xff_ffff_ffff])
        );
        assert_eq!(
            parse_tracing_cpumask_for(b"1ff,ffffffff", 40),
            Err(EOVERFLOW)
        );
        assert_eq!(parse_tracing_cpumask_for(b"1,0", 40), Ok(vec![1 << 32]));
        assert_eq!(parse_tracing_cpumask_for(b"1 0", 40), Ok(vec![1 << 32]));
        assert_eq!(
            parse_tracing_cpumask_for(b"1,,5", 40),
            Ok(vec![(1 << 32) | 5])
        );
        assert_eq!(parse_tracing_cpumask_for(b"1,0,0", 40), Err(EOVERFLOW));
        assert_eq!(
            parse_tracing_cpumask_for(b"80000000,00000000,00000001", 96),
            Ok(vec![1, 0x8000_0000])
        );
        assert_eq!(
            parse_tracing_cpumask_for(b"ffffffff", 32),
            Ok(vec![0xffff_ffff])
        );
        assert_eq!(parse_tracing_cpumask_for(b"f", 64), Ok(vec![0xf]));
        assert_eq!(parse_tracing_cpumask_for(b"1", 0), Err(EOVERFLOW));
        assert_eq!(parse_tracing_cpumask_for(b"\n", 0), Ok(vec![]));
    }

    #[test]
    fn cpumask_u64_compat() {
        assert_eq!(parse_tracing_cpumask(b"3"), Ok(3));
        assert_eq!(parse_tracing_cpumask(b"ff\n"), Ok(0xff));
        assert_eq!(parse_tracing_cpumask(b"1,00000000"), Ok(1 << 32));
        assert_eq!(parse_tracing_cpumask(b"1,0,0"), Err(EOVERFLOW));
        assert_eq!(parse_tracing_cpumask(b"0x3"), Err(EINVAL));
        assert_eq!(parse_tracing_cpumask(b""), Err(EINVAL));
    }

    #[test]
    fn cpumask_format() {
        assert_eq!(format_tracing_cpumask(&[3], 2), "3\n");
        assert_eq!(format_tracing_cpumask(&[1], 2), "1\n");
        assert_eq!(format_tracing_cpumask(&[0], 2), "0\n");
        assert_eq!(format_tracing_cpumask(&[0xff], 8), "ff\n");
        assert_eq!(format_tracing_cpumask(&[1], 8), "01\n");
        assert_eq!(
            format_tracing_cpumask(&[u64::MAX], 64),
            "ffffffff,ffffffff\n"
        );
        assert_eq!(
            format_tracing_cpumask(&[0xff_ffff_ffff], 40),
            "ff,ffffffff\n"
        );
        assert_eq!(format_tracing_cpumask(&[1], 40), "00,00000001\n");
        assert_eq!(format_tracing_cpumask(&[u64::MAX], 2), "3\n");
        assert_eq!(
            format_tracing_cpumask(&[1, 0x8000_0000], 96),
            "80000000,00000000,00000001\n"
        );
        assert_eq!(format_tracing_cpumask(&[], 33), "0,00000000\n");
        assert_eq!(format_tracing_cpumask(&[], 0), "\n");
        // Round trip.
        for n in [1usize, 2, 7, 31, 32, 33, 63, 64, 65, 130] {
            let full: Vec<u64> = (0..n.div_ceil(64))
                .map(|i| {
                    let bits = (n - i * 64).min(64);
                    if bits == 64 {
                        u64::MAX
                    } else {
                        (1 << bits) - 1
                    }
                })
                .collect();
            let text = format_tracing_cpumask(&full, n);
            assert_eq!(
                parse_tracing_cpumask_for(text.as_bytes(), n),
                Ok(full),
                "{n}"
            );
        }
    }

    // -- set_event -----------------------------------------------------------

    fn pair(system: Option<&str>, event: Option<&str>) -> EventSelector {
        EventSelector::Pair(system.map(str::to_owned), event.map(str::to_owned))
    }

    fn cmd(enable: bool, selector: EventSelector) -> Option<SetEventCommand> {
        Some(SetEventCommand { enable, selector })
    }

    #[test]
    fn set_event_tokens() {
        let name = |n: &str| EventSelector::Bare(n.to_owned());
        let cases: Vec<(&[u8], usize, Option<SetEventCommand>)> = vec![
            // §14 row 22.
            (b"", 0, None),
            (b"\n", 1, None),
            (b"\n\n\n", 3, None),
            (
                b"\n\n\nsched:sched_process_fork\n",
                28,
                cmd(true, pair(Some("sched"), Some("sched_process_fork"))),
            ),
            // §14 row 19.
            (
                b"sched_process_wait sched_process_hang",
                19,
                cmd(true, name("sched_process_wait")),
            ),
            // §14 row 20.
            (b"sched:", 6, cmd(true, pair(Some("sched"), None))),
            (b"sched:*", 7, cmd(true, pair(Some("sched"), None))),
            (b"sched", 5, cmd(true, name("sched"))),
            (
                b":sched_process_exec",
                19,
                cmd(true, pair(None, Some("sched_process_exec"))),
            ),
            (
                b"*:sched_process_exec",
                20,
                cmd(true, pair(None, Some("sched_process_exec"))),
            ),
            (b"*:*", 3, cmd(true, pair(None, None))),
            (b"*:", 2, cmd(true, pair(None, None))),
            (b":", 1, cmd(true, pair(None, None))),
            (b":*\n", 3, cmd(true, pair(None, None))),
            (b"!*:*", 4, cmd(false, pair(None, None))),
            (b"!*:", 3, cmd(false, pair(None, None))),
            (b"!:", 2, cmd(false, pair(None, None))),
            (b"!:\n", 3, cmd(false, pair(None, None))),
            // §14 row 21: parsed, then match nothing (the caller's EINVAL).
            (
                b"sched:sched_process_e*",
                22,
                cmd(true, pair(Some("sched"), Some("sched_process_e*"))),
            ),
            (
                b"nosuch:event",
                12,
                cmd(true, pair(Some("nosuch"), Some("event"))),
            ),
            (
                b"sched:nosuch",
                12,
                cmd(true, pair(Some("sched"), Some("nosuch"))),
            ),
            (
                b"!nosuch:event",
                13,
                cmd(false, pair(Some("nosuch"), Some("event"))),
            ),
            (b"*", 1, cmd(true, name("*"))),
            (b"!*", 2, cmd(false, name("*"))),
            (b"!", 1, cmd(false, name(""))),
            (b"!!sched", 7, cmd(false, name("!sched"))),
            (b"a:b:c", 5, cmd(true, pair(Some("a"), Some("b:c")))),
            (b"sched::", 7, cmd(true, pair(Some("sched"), Some(":")))),
            // Verified on 6.18: NUL and 0xA0 delimit.
            (
                b"sched:sched_process_fork\0garbage",
                25,
                cmd(true, pair(Some("sched"), Some("sched_process_fork"))),
            ),
            (b"\0sched", 1, None),
            (b"  \0abc", 3, None),
            (
                b"sched_process_exec\xa0sched_process_exit",
                19,
                cmd(true, name("sched_process_exec")),
            ),
            (
                b"!sched:sched_process_exec\x0bfoo",
                26,
                cmd(false, pair(Some("sched"), Some("sched_process_exec"))),
            ),
            (b"sched:\n", 7, cmd(true, pair(Some("sched"), None))),
        ];
        for (input, consumed, command) in cases {
            assert_eq!(
                parse_set_event(input),
                Ok(SetEventWrite { consumed, command }),
                "{input:?}"
            );
        }
        let mut v = vec![b' '; 200];
        v.extend_from_slice(b"sched:sched_process_exec");
        assert_eq!(parse_set_event(&v).map(|w| w.consumed), Ok(224));
    }

    #[test]
    fn set_event_errors() {
        let rejected: &[&[u8]] = &[
            b":mod:xyz",
            b"sched:mod:x",
            b"sched:sched_process_fork:mod:x",
            b"!sched:mod:x",
            b"\xffsched",
            b"sched\xff",
        ];
        for &input in rejected {
            assert_eq!(parse_set_event(input), Err(EINVAL), "{input:?}");
        }
        // Token length: 127 is fine, 128 is EINVAL (§6.1, §14 row 21).
        for (len, tail) in [(127usize, &b""[..]), (127, b" "), (127, b"\n rest")] {
            let mut v = vec![b'x'; len];
            v.extend_from_slice(tail);
            let got = parse_set_event(&v).unwrap();
            assert_eq!(got.consumed, len + tail.len().min(1), "{len} {tail:?}");
        }
        for tail in [&b""[..], b" ", b"x"] {
            let mut v = vec![b'x'; 128];
            v.extend_from_slice(tail);
            assert_eq!(parse_set_event(&v), Err(EINVAL));
        }
        let mut v = b"!".to_vec();
        v.extend(std::iter::repeat_n(b'x', 127));
        assert_eq!(parse_set_event(&v), Err(EINVAL));
    }

    #[test]
    fn selector_matching() {
        let name = |n: &str| EventSelector::Bare(n.to_owned());
        let events = [
            ("sched", "sched_process_exec"),
            ("sched", "sched_process_exit"),
            ("irq", "irq_handler_entry"),
            ("sched_process_exec", "other"), // a subsystem named like an event
        ];
        let cases: Vec<(EventSelector, [bool; 4])> = vec![
            (pair(None, None), [true, true, true, true]),
            (pair(Some("sched"), None), [true, true, false, false]),
            (
                pair(None, Some("sched_process_exec")),
                [true, false, false, false],
            ),
            (
                pair(Some("sched"), Some("sched_process_exit")),
                [false, true, false, false],
            ),
            (
                pair(Some("sched"), Some("sched_process_e*")),
                [false, false, false, false],
            ),
            (name("sched"), [true, true, false, false]),
            (name("sched_process_exec"), [true, false, false, true]),
            (name("irq_handler_entry"), [false, false, true, false]),
            (name("*"), [false, false, false, false]),
            (name(""), [false, false, false, false]),
            (pair(Some("nosuch"), None), [false, false, false, false]),
        ];
        for (sel, want) in cases {
            for (i, (sys, ev)) in events.iter().enumerate() {
                assert_eq!(sel.matches(sys, ev), want[i], "{sel:?} {sys}:{ev}");
            }
        }
    }

    // -- set_event_pid ---------------------------------------------------------

    #[test]
    fn pid_list_table() {
        let cases: &[(&[u8], usize, &[u32])] = &[
            (b"", 0, &[]),
            (b"\n", 1, &[]),
            (b"123", 3, &[123]),
            (b"30 10 20", 8, &[30, 10, 20]),
            (b"5\n", 2, &[5]),
            (b"  9\t10\n11  ", 11, &[9, 10, 11]),
            (b"0x10", 4, &[16]),
            (b"0X1f", 4, &[31]),
            (b"010", 3, &[8]),
            (b"00", 2, &[0]),
            (b"+12", 3, &[12]),
            (b"+0x5", 4, &[5]),
            (b"1073741823", 10, &[1_073_741_823]),
            (b"4294967296", 10, &[0]),
            (b"4294967297", 10, &[1]),
            (b"4194305", 7, &[4_194_305]),
            (b"13\x0014", 5, &[13, 14]),
            (b"\x0015", 1, &[]),
            (b"16\xa017", 5, &[16, 17]),
            (b"1 \x00 2", 3, &[1]),
            (b"3\n\x00", 3, &[3]),
            (b"4\r5\x0b6\x0c7", 7, &[4, 5, 6, 7]),
            (b"7 7", 3, &[7, 7]),
        ];
        for &(input, consumed, pids) in cases {
            assert_eq!(
                parse_pid_list_write(input),
                Ok(PidListWrite {
                    consumed,
                    pids: pids.to_vec()
                }),
                "{input:?}"
            );
            assert_eq!(parse_pid_list(input), Ok(pids.to_vec()));
        }
    }

    #[test]
    fn pid_list_errors() {
        let cases: &[(&[u8], i32)] = &[
            (b"-1", EINVAL),
            (b"abc", EINVAL),
            (b"1 abc", EINVAL),
            (b"20 x", EINVAL),
            (b"1,2", EINVAL),
            (b"0x", EINVAL),
            (b"08", EINVAL),
            (b"0b1", EINVAL),
            (b"0x1g", EINVAL),
            (b"0x+5", EINVAL),
            (b" +", EINVAL),
            (b"\xff", EINVAL),
            (b"18446744073709551616", EINVAL),
            (b"1073741824", EPERM),
            (b"0x40000000", EPERM),
            (b"0xffffffff", EPERM),
            (b"18446744073709551615", EPERM),
            (b"1 1073741824", EPERM),
        ];
        for &(input, errno) in cases {
            assert_eq!(parse_pid_list_write(input), Err(errno), "{input:?}");
        }
        // Token length limit 127 (verified on 6.18).
        let mut v = vec![b'0'; 125];
        v.extend_from_slice(b"17");
        assert_eq!(parse_pid_list(&v), Ok(vec![15]));
        let mut w = b"1 ".to_vec();
        w.extend_from_slice(&v);
        w.extend_from_slice(b" 2");
        assert_eq!(
            parse_pid_list_write(&w),
            Ok(PidListWrite {
                consumed: 131,
                pids: vec![1, 15, 2]
            })
        );
        v.insert(0, b'0');
        assert_eq!(parse_pid_list(&v), Err(EINVAL));
        assert_eq!(parse_pid_list(&[b'1'; 127]), Err(EINVAL)); // overflow
    }

    #[test]
    fn pid_list_format() {
        assert_eq!(format_pid_list(&[]), "");
        assert_eq!(format_pid_list(&[123]), "123\n");
        assert_eq!(format_pid_list(&[30, 10, 20, 10]), "10\n20\n30\n");
    }

    // -- robustness --------------------------------------------------------------

    #[test]
    fn no_panics_on_arbitrary_bytes() {
        // A small deterministic fuzz over interesting bytes.
        let alphabet: &[u8] = b"01x+-:!* \n\t\r\0\xa0\xff\xc3,abfg";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 140) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            let _ = parse_unsigned(&buf);
            let _ = parse_enable(&buf);
            let _ = parse_tracing_on(&buf);
            let _ = parse_option_file(&buf);
            let _ = parse_buffer_size_kb(&buf);
            let _ = parse_buffer_percent(&buf);
            let _ = parse_buffer_subbuf_size_kb(&buf);
            let _ = parse_saved_cmdlines_size(&buf);
            let _ = parse_tracing_thresh(&buf);
            let _ = parse_word(&buf);
            let _ = parse_current_tracer(&buf);
            let _ = parse_trace_clock(&buf);
            let _ = parse_trace_options(&buf, OPTS);
            for n in [0usize, 1, 2, 33, 64, 200] {
                if let Ok(m) = parse_tracing_cpumask_for(&buf, n) {
                    let text = format_tracing_cpumask(&m, n);
                    assert_eq!(parse_tracing_cpumask_for(text.as_bytes(), n), Ok(m));
                }
            }
            if let Ok(w) = parse_set_event(&buf) {
                assert!(w.consumed <= buf.len());
                assert_eq!(w.consumed == 0, buf.is_empty());
            }
            if let Ok(w) = parse_pid_list_write(&buf) {
                assert!(w.consumed <= buf.len());
            }
        }
    }
}
