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
//!   `set_event_pid`: see [`super::set_event`].
//! * `strstrip()`/`strim()` with the kernel's `isspace()`: see [`parse_word`].
//! * `bitmap_parse()` and `%*pb`: see [`super::cpumask`].

use libc::{EINVAL, ERANGE};

// ---------------------------------------------------------------------------
// Low-level helpers
// ---------------------------------------------------------------------------

/// The kernel's `isspace()` (lib/ctype.c): `\t \n \v \f \r`, space, and
/// Latin-1 NBSP (0xA0). Verified on 6.18: `b"3\xa0"` is accepted by
/// `tracing_cpumask` and `b"raw\xa0"` by `trace_options`.
pub(super) fn is_kspace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

/// The bytes of `buf` up to (not including) the first NUL: the kernel copies
/// the write into a NUL-terminated buffer and then treats it as a C string.
pub(super) fn c_str(buf: &[u8]) -> &[u8] {
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

pub(super) fn hex_value(b: u8) -> Option<u32> {
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
pub(super) fn kstrtoull(s: &[u8], base: u32) -> Result<u64, i32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::cpumask::{format_tracing_cpumask, parse_tracing_cpumask_for};
    use crate::control::set_event::{parse_pid_list_write, parse_set_event};

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
