//! The daemon's counters on a unix socket (`--stats PATH`): each connection receives the
//! current `key value` lines and EOF. Kept out of the tracefs namespace on purpose.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use crate::fs::Core;

/// Binds the socket (before the mount appears, so it is ready once the mount is visible).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

/// Answers connections from a thread of its own.
pub fn serve(listener: UnixListener, core: Arc<Core>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(mut c) => {
                        let mut text = core.stats_text();
                        text.push_str(&crate::sources::kernel::COUNTERS.text());
                        let _ = c.write_all(text.as_bytes());
                    }
                    Err(e) => tracing::warn!("stats socket: {e}"),
                }
            }
        })?;
    Ok(())
}
