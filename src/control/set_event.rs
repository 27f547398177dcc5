//! `set_event` and the pid lists (`set_event_pid`, `set_event_notrace_pid`): the kernel's
//! `trace_get_user()` tokenizer and what each token means. Pure, like the other value parsers
//! ([`super::values`]).

use libc::{EINVAL, EPERM};

use super::values::{is_kspace, kstrtoull};

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
}
