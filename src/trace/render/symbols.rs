//! The addresses our records carry and the names `trace` prints for them (`%ps`).

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

/// `%ps` of the addresses our records carry.
pub fn symbolize(ip: u64) -> Option<String> {
    (ip != 0 && ip == mark_write_ip()).then(|| "tracing_mark_write".to_string())
}
