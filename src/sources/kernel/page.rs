//! What the kernel source reads from the host, decoded: a `trace_pipe_raw` page's header
//! (its missed-events flags and count), the comms a record carries, and whether a host event's
//! fields are the catalog's. Pure.

use crate::control::filter::{Field, Fields};
use crate::trace::ringbuf::{MISSED_STORED, PAGE_HEADER_BYTES};

/// `RB_MISSED_EVENTS`: bit 31 of the page's `commit` word.
const MISSED_FLAG: u64 = 1 << 31;

/// Records the kernel lost before a page (overwritten or dropped while we were not reading).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    /// The flag without a count (no room was left on the page for it).
    Unknown,
    Count(u64),
}

/// A page's `commit` word decoded: data length and missed events.
pub fn page_missed(page: &[u8]) -> Missed {
    let word = |at: usize| {
        page.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let Some(commit) = word(8) else {
        return Missed::None;
    };
    if commit & MISSED_FLAG == 0 {
        return Missed::None;
    }
    let len = (commit & (MISSED_STORED - 1)) as usize;
    match word(PAGE_HEADER_BYTES + len) {
        Some(n) if commit & MISSED_STORED != 0 => Missed::Count(n),
        _ => Missed::Unknown,
    }
}

/// A comm field of an event and the pid field it names: `comm`/`pid`,
/// `prev_comm`/`prev_pid`, `child_comm`/`child_pid`, `newcomm`/`pid` (a rename's new name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommPair {
    pub comm: CommField,
    pub pid: usize,
}

/// Where a comm lies: a `char[N]` at an offset, or a `__data_loc char[]` word there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommField {
    Array(usize, usize),
    DataLoc(usize),
}

/// The comm/pid pairs of an event's fields, from which the records teach comms.
pub fn comm_pairs(fields: &Fields) -> Vec<CommPair> {
    let evf = fields.event_fields();
    let find = |name: &str| evf.iter().find(|f| f.name == name && f.size == 4);
    evf.iter()
        .filter_map(|f| {
            let comm = if f.type_name.starts_with("char[") && f.size > 0 {
                CommField::Array(f.offset, f.size)
            } else if f.type_name == "__data_loc char[]" && f.size == 4 {
                CommField::DataLoc(f.offset)
            } else {
                return None;
            };
            let pid_name = match f.name.as_str() {
                "comm" | "newcomm" => "pid".to_string(),
                n => format!("{}_pid", n.strip_suffix("_comm")?),
            };
            find(&pid_name).map(|p| CommPair {
                comm,
                pid: p.offset,
            })
        })
        .collect()
}

/// The `(pid, comm)` pairs one record carries (comm up to its NUL).
pub fn record_comms<'a>(
    rec: &'a [u8],
    pairs: &'a [CommPair],
) -> impl Iterator<Item = (i32, &'a [u8])> + 'a {
    pairs.iter().filter_map(move |p| {
        let pid = i32::from_le_bytes(rec.get(p.pid..p.pid + 4)?.try_into().ok()?);
        let comm = match p.comm {
            CommField::Array(at, len) => rec.get(at..at + len)?,
            CommField::DataLoc(at) => {
                let loc = u32::from_le_bytes(rec.get(at..at + 4)?.try_into().ok()?) as usize;
                rec.get(loc & 0xffff..(loc & 0xffff) + (loc >> 16))?
            }
        };
        let comm = &comm[..comm.iter().position(|c| *c == 0).unwrap_or(comm.len())];
        (pid > 0 && !comm.is_empty()).then_some((pid, comm))
    })
}

/// Why a host event cannot be carried into the clone's event of the same name.
pub fn field_difference(host: &Fields, clone: &Fields) -> Option<String> {
    let key = |f: &Field| {
        (
            f.name.clone(),
            f.type_name.clone(),
            f.offset,
            f.size,
            f.signed,
        )
    };
    let list = |fs: &Fields| -> Vec<_> {
        fs.common_fields()
            .iter()
            .chain(fs.event_fields())
            .map(key)
            .collect()
    };
    let (h, c) = (list(host), list(clone));
    if h == c {
        return None;
    }
    let first = h.iter().zip(&c).find(|(a, b)| a != b);
    Some(match first {
        Some((a, b)) => format!(
            "host field `{} {}` (offset {}, size {}) is `{} {}` (offset {}, size {}) in the catalog",
            a.1, a.0, a.2, a.3, b.1, b.0, b.2, b.3
        ),
        None => format!("{} fields on the host, {} in the catalog", h.len(), c.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch\nID: 330\nformat:\n\
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
print fmt: \"x\"\n";

    #[test]
    fn missed_events_from_the_commit_word() {
        let mut p = vec![0u8; 4096];
        p[8..16].copy_from_slice(&100u64.to_le_bytes());
        assert_eq!(page_missed(&p), Missed::None);
        // What ring_buffer_read_page writes: the sign-extended flag, the stored flag, the count.
        let commit = 100u64 + MISSED_STORED + 0xffff_ffff_8000_0000;
        p[8..16].copy_from_slice(&commit.to_le_bytes());
        p[116..124].copy_from_slice(&42u64.to_le_bytes());
        assert_eq!(page_missed(&p), Missed::Count(42));
        let commit = 4080u64 + 0xffff_ffff_8000_0000;
        p[8..16].copy_from_slice(&commit.to_le_bytes());
        assert_eq!(page_missed(&p), Missed::Unknown);
        assert_eq!(page_missed(&p[..8]), Missed::None);
    }

    #[test]
    fn sched_switch_teaches_both_comms() {
        let f = Fields::from_format(SWITCH);
        let pairs = comm_pairs(&f);
        assert_eq!(
            pairs,
            [
                CommPair {
                    comm: CommField::Array(8, 16),
                    pid: 24
                },
                CommPair {
                    comm: CommField::Array(40, 16),
                    pid: 56
                }
            ]
        );
        let mut rec = vec![0u8; 64];
        rec[8..12].copy_from_slice(b"bash");
        rec[24..28].copy_from_slice(&7i32.to_le_bytes());
        rec[40..50].copy_from_slice(b"kworker/0:");
        rec[56..60].copy_from_slice(&0i32.to_le_bytes());
        let got: Vec<_> = record_comms(&rec, &pairs).collect();
        assert_eq!(got, [(7, &b"bash"[..])], "the idle task teaches nothing");
    }

    #[test]
    fn fork_comms_are_data_loc_strings() {
        let fork = "format:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
\tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\
\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n\
\n";
        let pairs = comm_pairs(&Fields::from_format(fork));
        assert_eq!(pairs.len(), 2);
        let mut rec = vec![0u8; 24];
        let mut put = |at: usize, v: u32| rec[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(8, 3 << 16 | 24);
        put(12, 10);
        put(16, 3 << 16 | 27);
        put(20, 11);
        rec.extend_from_slice(b"sh\0sh\0");
        let got: Vec<_> = record_comms(&rec, &pairs).collect();
        assert_eq!(got, [(10, &b"sh"[..]), (11, &b"sh"[..])]);
    }

    #[test]
    fn differing_fields_are_named() {
        let a = Fields::from_format(SWITCH);
        assert_eq!(field_difference(&a, &a), None);
        let b =
            Fields::from_format(&SWITCH.replace("prev_prio;\toffset:28", "prev_prio;\toffset:29"));
        let why = field_difference(&a, &b).unwrap();
        assert!(why.contains("prev_prio"), "{why}");
        let c = Fields::from_format(&SWITCH.replace(
            "\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;\n",
            "",
        ));
        assert_eq!(
            field_difference(&a, &c).unwrap(),
            "11 fields on the host, 10 in the catalog"
        );
    }
}
