//! TEMPORARY STUB (replaced by the real parsers): same signatures, minimal behaviour.
#![allow(dead_code)]
pub fn parse_unsigned(buf: &[u8]) -> Result<u64, i32> {
    let b = buf.strip_suffix(b"\n").unwrap_or(buf);
    let b = b.strip_prefix(b"+").unwrap_or(b);
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(libc::EINVAL);
    }
    std::str::from_utf8(b)
        .unwrap()
        .parse()
        .map_err(|_| libc::EINVAL)
}
pub fn parse_enable(buf: &[u8]) -> Result<bool, i32> {
    match parse_unsigned(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(libc::EINVAL),
    }
}
pub fn parse_tracing_on(buf: &[u8]) -> Result<bool, i32> {
    Ok(parse_unsigned(buf)? != 0)
}
pub fn parse_option_file(buf: &[u8]) -> Result<bool, i32> {
    parse_enable(buf)
}
pub fn parse_trace_options(buf: &[u8], known: &[&str]) -> Result<(String, bool), i32> {
    let w = parse_word(buf)?;
    let (name, v) = match w.strip_prefix("no") {
        Some(n) if known.contains(&n) => (n, false),
        _ => (w, true),
    };
    if known.contains(&name) {
        Ok((name.to_string(), v))
    } else {
        Err(libc::EINVAL)
    }
}
pub fn parse_word(buf: &[u8]) -> Result<&str, i32> {
    let s = std::str::from_utf8(buf)
        .map_err(|_| libc::EINVAL)?
        .trim_end();
    if s.is_empty() {
        Err(libc::EINVAL)
    } else {
        Ok(s)
    }
}
pub fn parse_buffer_size_kb(buf: &[u8]) -> Result<u64, i32> {
    match parse_unsigned(buf)? {
        0 => Err(libc::EINVAL),
        n => Ok(n),
    }
}
pub fn round_buffer_size_kb(kb: u64) -> u64 {
    (kb * 1024).div_ceil(4080) * 4
}
pub fn parse_pid_list(buf: &[u8]) -> Result<Vec<u32>, i32> {
    std::str::from_utf8(buf)
        .map_err(|_| libc::EINVAL)?
        .split_whitespace()
        .map(|w| w.parse().map_err(|_| libc::EINVAL))
        .collect()
}
pub fn parse_buffer_percent(buf: &[u8]) -> Result<u64, i32> {
    match parse_unsigned(buf)? {
        n @ 0..=100 => Ok(n),
        _ => Err(libc::EINVAL),
    }
}
pub fn parse_saved_cmdlines_size(buf: &[u8]) -> Result<u64, i32> {
    parse_unsigned(buf)
}
pub fn parse_tracing_thresh(buf: &[u8]) -> Result<u64, i32> {
    parse_unsigned(buf)
}
pub fn parse_buffer_subbuf_size_kb(buf: &[u8]) -> Result<u64, i32> {
    parse_unsigned(buf)
}
pub fn parse_tracing_cpumask(buf: &[u8]) -> Result<u64, i32> {
    u64::from_str_radix(parse_word(buf)?, 16).map_err(|_| libc::EINVAL)
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEventWrite {
    pub consumed: usize,
    pub command: Option<SetEventCommand>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetEventCommand {
    pub enable: bool,
    pub selector: EventSelector,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelector {
    Pair(Option<String>, Option<String>),
    Bare(String),
}
impl EventSelector {
    pub fn matches(&self, system: &str, event: &str) -> bool {
        match self {
            EventSelector::Bare(n) => n == system || n == event,
            EventSelector::Pair(s, e) => {
                s.as_deref().is_none_or(|s| s == system) && e.as_deref().is_none_or(|e| e == event)
            }
        }
    }
}
pub fn parse_set_event(buf: &[u8]) -> Result<SetEventWrite, i32> {
    let start = buf
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(buf.len());
    let end = buf[start..]
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .map_or(buf.len(), |p| start + p);
    let consumed = if end < buf.len() { end + 1 } else { end };
    if start == end {
        return Ok(SetEventWrite {
            consumed,
            command: None,
        });
    }
    let tok = std::str::from_utf8(&buf[start..end]).map_err(|_| libc::EINVAL)?;
    let (enable, tok) = match tok.strip_prefix('!') {
        Some(t) => (false, t),
        None => (true, tok),
    };
    let wild = |s: &str| {
        if s.is_empty() || s == "*" {
            None
        } else {
            Some(s.to_string())
        }
    };
    let selector = match tok.split_once(':') {
        Some((s, e)) => EventSelector::Pair(wild(s), wild(e)),
        None => EventSelector::Bare(tok.to_string()),
    };
    Ok(SetEventWrite {
        consumed,
        command: Some(SetEventCommand { enable, selector }),
    })
}
