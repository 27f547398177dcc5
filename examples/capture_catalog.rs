//! Captures the event catalog of a mounted tracefs into the project's catalog file format.
//!
//! `cargo run --example capture_catalog -- /sys/kernel/tracing catalog/linux-6.18.catalog`
//! (mount one first if needed: `mount -t tracefs nodev /tmp/ktr`). Only reads the tracefs.
use std::process::ExitCode;

const USAGE: &str = "usage: capture_catalog <tracefs-dir> <out-file>\n\
    Writes the event catalog of a mounted tracefs (read only) to <out-file>.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let [src, out] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let cat = match utracefs::events::catalog::Catalog::from_tracefs_dir(src.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("capture_catalog: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(out, cat.to_text()) {
        eprintln!("capture_catalog: {out}: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("captured {} events into {out}", cat.events.len());
    ExitCode::SUCCESS
}
