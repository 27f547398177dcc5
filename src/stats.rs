//! The daemon's counters on a unix socket (`--stats PATH`): each connection receives the
//! current `key value` lines and EOF. Kept out of the tracefs namespace on purpose.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use crate::fs::Core;

pub fn serve(path: &Path, core: Arc<Core>) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(mut c) => {
                        let _ = c.write_all(core.stats_text().as_bytes());
                    }
                    Err(e) => tracing::warn!("stats socket: {e}"),
                }
            }
        })?;
    Ok(())
}
