//! The addresses our records carry and the names `trace` prints for them (`%pS`, `%ps`):
//! the clone's own marker address, and the kernel's (`--kernel-source`) through kallsyms.

/// `_THIS_IP_` of the kernel's `tracing_mark_write`, read from /proc/kallsyms once (0 when
/// it is not readable), so tools that symbolize `ip` with the machine's kallsyms (trace-cmd
/// report) print `tracing_mark_write` as the kernel's records do.
pub fn mark_write_ip() -> u64 {
    static IP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *IP.get_or_init(|| {
        use std::io::BufRead;
        // Streamed: the file is megabytes, and a daemon keeps what it once allocated.
        let Ok(f) = std::fs::File::open("/proc/kallsyms") else {
            return 0;
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                let mut it = l.split_whitespace();
                let (addr, _, name) = (it.next()?, it.next()?, it.next()?);
                (name == "tracing_mark_write")
                    .then(|| u64::from_str_radix(addr, 16).ok())
                    .flatten()
            })
            .unwrap_or(0)
    })
}

/// `sprint_symbol()` text of an address our records may carry (`name+0xoff/0xsize`, plus
/// ` [module]`), or `None` where kallsyms names nothing.
pub fn symbolize(ip: u64) -> Option<String> {
    if ip == 0 {
        return None;
    }
    // Our own marker records name their writer without loading the whole table.
    if ip == mark_write_ip() {
        return Some("tracing_mark_write".to_string());
    }
    // A user-space value never names a kernel symbol: no need to load kallsyms for it.
    if ip < KERNEL_HALF {
        return None;
    }
    crate::kallsyms::sprint_symbol(ip)
}

/// Where the kernel's half of the x86-64 address space starts.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;
