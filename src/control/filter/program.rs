//! The compiled filter: predicates over a record laid out as its event's `format` says, the
//! kernel's branch program (`filter_match_preds()`), and the string matchers with their
//! buffer-length quirks. What [`super`] parses; it never parses anything itself.

use super::{TASK_COMM_LEN, at, nr_cpu_ids};

// ---------------------------------------------------------------------------
// Predicates
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Glob,
    Ne,
    Eq,
    Le,
    Lt,
    Ge,
    Gt,
    Band,
}

/// In the kernel's matching order ("<=" before "<").
pub(super) const OPS: [(&[u8], Op); 8] = [
    (b"~", Op::Glob),
    (b"!=", Op::Ne),
    (b"==", Op::Eq),
    (b"<=", Op::Le),
    (b"<", Op::Lt),
    (b">=", Op::Ge),
    (b">", Op::Gt),
    (b"&", Op::Band),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MatchKind {
    Full,
    Front,
    Middle,
    End,
    Glob,
}

#[derive(Clone, Debug)]
pub(super) struct Regex {
    pub(super) kind: MatchKind,
    pub(super) pattern: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum StrSource {
    Static { offset: usize, len: usize },
    Dyn { offset: usize },
    RelDyn { offset: usize },
    Comm,
    Ptr,
}

#[derive(Clone, Debug)]
pub(super) enum Pred {
    Nop,
    Num {
        offset: usize,
        size: usize,
        signed: bool,
        op: Op,
        val: u64,
        not: bool,
    },
    NumCpumask {
        offset: usize,
        size: usize,
        op: Op,
        mask: Vec<bool>,
    },
    Cpu {
        op: Op,
        val: i32,
    },
    CpuCpumask {
        op: Op,
        mask: Vec<bool>,
    },
    Cpumask {
        offset: usize,
        op: Op,
        mask: Vec<bool>,
    },
    CpumaskCpu {
        offset: usize,
        op: Op,
        cpu: usize,
    },
    Str {
        src: StrSource,
        regex: Regex,
        not: bool,
    },
    /// `.function`: the address field lies in [start, end) (`filter_pred_function()`).
    Function {
        offset: usize,
        start: u64,
        end: u64,
        not: bool,
    },
}

fn read_uint(rec: &[u8], offset: usize, size: usize) -> u64 {
    let mut v: u64 = 0;
    for k in (0..size.min(8)).rev() {
        v = (v << 8) | at(rec, offset.saturating_add(k)) as u64;
    }
    v
}

fn sign_extend(v: u64, size: usize) -> i64 {
    let sh = 64 - 8 * size as u32;
    ((v << sh) as i64) >> sh
}

fn cmp_op<T: PartialOrd>(op: Op, a: T, b: T) -> bool {
    match op {
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        _ => false,
    }
}

fn mask_equal(a: &[bool], b: &[bool]) -> bool {
    let n = a.len().max(b.len());
    (0..n).all(|i| a.get(i).copied().unwrap_or(false) == b.get(i).copied().unwrap_or(false))
}

fn mask_intersects(a: &[bool], b: &[bool]) -> bool {
    a.iter().zip(b).any(|(x, y)| *x && *y)
}

fn mask_test(m: &[bool], cpu: usize) -> bool {
    m.get(cpu).copied().unwrap_or(false)
}

fn do_filter_cpumask(op: Op, mask: &[bool], cmp: &[bool]) -> bool {
    match op {
        Op::Eq => mask_equal(mask, cmp),
        Op::Ne => !mask_equal(mask, cmp),
        Op::Band => mask_intersects(mask, cmp),
        _ => false,
    }
}

fn do_filter_scalar_cpumask(op: Op, cpu: usize, mask: &[bool]) -> bool {
    match op {
        Op::Eq => false,
        Op::Ne => true,
        Op::Band => mask_test(mask, cpu),
        _ => false,
    }
}

/// A cpumask stored in the record behind a `__data_loc` word.
fn record_cpumask(rec: &[u8], offset: usize, nbits: usize) -> Vec<bool> {
    let item = read_uint(rec, offset, 4);
    let loc = (item & 0xffff) as usize;
    (0..nbits)
        .map(|b| at(rec, loc + b / 8) & (1 << (b % 8)) != 0)
        .collect()
}

// --- string matching (regex_match_* with the kernel's length semantics) ---

/// C `strncmp(a, b, n) == 0` over NUL-padded views.
fn strneq(a: &[u8], b: &[u8], n: usize) -> bool {
    for i in 0..n {
        let (x, y) = (at(a, i), at(b, i));
        if x != y {
            return false;
        }
        if x == 0 {
            return true;
        }
    }
    true
}

fn c_len(s: &[u8]) -> usize {
    s.iter().position(|&b| b == 0).unwrap_or(s.len())
}

fn regex_match(r: &Regex, s: &[u8], len: usize) -> bool {
    let plen = r.pattern.len();
    match r.kind {
        MatchKind::Full => {
            if len == 0 {
                strneq(s, &r.pattern, usize::MAX)
            } else {
                strneq(s, &r.pattern, len)
            }
        }
        MatchKind::Front => {
            if len != 0 && len < plen {
                return false;
            }
            strneq(s, &r.pattern, plen)
        }
        MatchKind::Middle => {
            if len == 0 {
                let hay = &s[..c_len(s)];
                plen == 0 || hay.windows(plen).any(|w| w == r.pattern.as_slice())
            } else {
                // strnstr(): memcmp-based, may look past a NUL within len.
                if plen == 0 {
                    return true;
                }
                let mut l = len;
                let mut p = 0;
                while l >= plen {
                    l -= 1;
                    if (0..plen).all(|k| at(s, p + k) == r.pattern[k]) {
                        return true;
                    }
                    p += 1;
                }
                false
            }
        }
        MatchKind::End => {
            let slen = len as i64 - 1;
            if slen >= plen as i64 {
                let start = slen as usize - plen;
                (0..plen).all(|k| at(s, start + k) == r.pattern[k])
            } else {
                false
            }
        }
        MatchKind::Glob => glob_match(&r.pattern, s),
    }
}

/// lib/glob.c `glob_match()` (`*`, `?`, `[...]`, `[!...]`, `\`).
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut si) = (0usize, 0usize);
    let mut back: Option<(usize, usize)> = None;
    loop {
        let c = at(s, si);
        si += 1;
        let mut d = at(pat, p);
        p += 1;
        let mut literal = true;
        let mut backtrack = false;
        match d {
            b'?' => {
                if c == 0 {
                    return false;
                }
                literal = false;
            }
            b'*' => {
                if at(pat, p) == 0 {
                    return true;
                }
                si -= 1;
                back = Some((p, si));
                literal = false;
            }
            b'[' => {
                let inverted = at(pat, p) == b'!';
                let mut class = p + inverted as usize;
                let mut a = at(pat, class);
                class += 1;
                let mut matched = false;
                let mut malformed = false;
                loop {
                    let mut b = a;
                    if a == 0 {
                        malformed = true;
                        break;
                    }
                    if at(pat, class) == b'-' && at(pat, class + 1) != b']' {
                        b = at(pat, class + 1);
                        if b == 0 {
                            malformed = true;
                            break;
                        }
                        class += 2;
                    }
                    matched |= a <= c && c <= b;
                    a = at(pat, class);
                    class += 1;
                    if a == b']' {
                        break;
                    }
                }
                if !malformed {
                    literal = false;
                    if matched == inverted {
                        backtrack = true;
                    } else {
                        p = class;
                    }
                }
            }
            b'\\' => {
                d = at(pat, p);
                p += 1;
            }
            _ => {}
        }
        if literal {
            if c == d {
                if d == 0 {
                    return true;
                }
                continue;
            }
            backtrack = true;
        }
        if backtrack {
            match back {
                Some((bp, bs)) if c != 0 => {
                    p = bp;
                    si = bs + 1;
                    back = Some((bp, bs + 1));
                }
                _ => return false,
            }
        }
    }
}

impl Pred {
    fn eval(&self, rec: &[u8], ctx: &RecordContext) -> bool {
        match self {
            Pred::Nop => false,
            Pred::Function {
                offset,
                start,
                end,
                not,
            } => {
                let addr = read_uint(rec, *offset, 8);
                (*start..*end).contains(&addr) ^ not
            }
            Pred::Num {
                offset,
                size,
                signed,
                op,
                val,
                not,
            } => {
                let raw = read_uint(rec, *offset, *size);
                let mask = if *size >= 8 {
                    u64::MAX
                } else {
                    (1u64 << (8 * size)) - 1
                };
                match op {
                    Op::Eq | Op::Ne => (raw == (val & mask)) ^ not,
                    Op::Band => raw & val & mask != 0,
                    _ if *signed => {
                        cmp_op(*op, sign_extend(raw, *size), sign_extend(val & mask, *size))
                    }
                    _ => cmp_op(*op, raw, val & mask),
                }
            }
            Pred::NumCpumask {
                offset,
                size,
                op,
                mask,
            } => {
                let cpu = read_uint(rec, *offset, *size) as u32 as usize;
                cpu < mask.len() && do_filter_scalar_cpumask(*op, cpu, mask)
            }
            Pred::Cpu { op, val } => {
                let cpu = ctx.cpu as i32;
                match op {
                    Op::Eq => cpu == *val,
                    Op::Ne => cpu != *val,
                    Op::Band | Op::Glob => false,
                    _ => cmp_op(*op, cpu, *val),
                }
            }
            Pred::CpuCpumask { op, mask } => do_filter_scalar_cpumask(*op, ctx.cpu as usize, mask),
            Pred::Cpumask { offset, op, mask } => {
                let m = record_cpumask(rec, *offset, mask.len());
                do_filter_cpumask(*op, &m, mask)
            }
            Pred::CpumaskCpu { offset, op, cpu } => {
                let nbits = nr_cpu_ids();
                let m = record_cpumask(rec, *offset, nbits);
                match op {
                    Op::Eq => mask_test(&m, *cpu) && m.iter().filter(|b| **b).count() == 1,
                    Op::Ne => !mask_test(&m, *cpu) || m.iter().filter(|b| **b).count() > 1,
                    Op::Band => mask_test(&m, *cpu),
                    _ => false,
                }
            }
            Pred::Str { src, regex, not } => {
                let (s, len): (&[u8], usize) = match *src {
                    StrSource::Static { offset, len } => (rec.get(offset..).unwrap_or(&[]), len),
                    StrSource::Dyn { offset } => {
                        let item = read_uint(rec, offset, 4);
                        let loc = (item & 0xffff) as usize;
                        (rec.get(loc..).unwrap_or(&[]), (item >> 16) as usize)
                    }
                    StrSource::RelDyn { offset } => {
                        let item = read_uint(rec, offset, 4);
                        let loc = offset + 4 + (item & 0xffff) as usize;
                        (rec.get(loc..).unwrap_or(&[]), (item >> 16) as usize)
                    }
                    StrSource::Comm => {
                        let mut buf = [0u8; TASK_COMM_LEN];
                        let c = ctx.comm.as_bytes();
                        let n = c.len().min(TASK_COMM_LEN - 1);
                        buf[..n].copy_from_slice(&c[..n]);
                        return regex_match(regex, &buf, TASK_COMM_LEN) ^ not;
                    }
                    // Kernel pointers cannot be followed here; the kernel also
                    // returns 0 (without `not`) when the copy fails.
                    StrSource::Ptr => return false,
                };
                regex_match(regex, s, len) ^ not
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) target: isize,
    pub(super) when_to_branch: bool,
    pub(super) pred: Pred,
}

/// A compiled filter: the kernel's branch program.
#[derive(Clone, Debug)]
pub struct Filter {
    pub(super) prog: Vec<Entry>,
}

/// Generic pseudo fields that are not in the record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordContext {
    /// The CPU the event happened on (`CPU`, `cpu`, `common_cpu`).
    pub cpu: u32,
    /// The current task's comm (`COMM`, `comm`); only 15 bytes are compared.
    pub comm: String,
}

impl Filter {
    /// `filter_match_preds()`: evaluate against a record laid out as the format
    /// says (little endian; `__data_loc` = u32 `len << 16 | offset`). Bytes
    /// outside `record` read as 0.
    pub fn matches(&self, record: &[u8], ctx: &RecordContext) -> bool {
        let n = self.prog.len();
        let mut i = 0usize;
        let mut steps = 0usize;
        while i < n {
            let e = &self.prog[i];
            if e.pred.eval(record, ctx) == e.when_to_branch {
                match usize::try_from(e.target) {
                    Ok(t) => i = t,
                    Err(_) => return false,
                }
            }
            i += 1;
            steps += 1;
            if steps > n + 2 {
                return false;
            }
        }
        i == n
    }
}
