//! `tracing_cpumask`: the kernel's `bitmap_parse()` on writes and `%*pb` on reads, with its
//! errno (§10.7). Pure, like the other value parsers ([`super::values`]).

use libc::{EINVAL, EOVERFLOW};

use super::values::{c_str, hex_value, is_kspace};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
