//! Files whose content never changes for the life of their inode, read by the kernel itself
//! from a sealed memfd (FUSE passthrough: `FUSE_PASSTHROUGH` granted at INIT, root only), so
//! a READ never reaches the daemon. `st_size` stays 0 as in tracefs: passthrough reads the
//! backing file whatever size the inode shows.
//!
//! Which files: an event's `id` (the kernel keeps it readable after the event or its instance
//! is gone, as a passthrough fd does), and the top level's `format` of a catalog event (which
//! can never be removed). A `format` that can go away (a dynamic event's, an instance's) stays
//! on direct I/O, so an fd opened before the removal reads ENODEV as in the kernel; and
//! `header_page`/`header_event` too (a read past offset 0 is EOF there, §3.3).
//!
//! The kernel insists that while an inode has a passthrough open, every open of it is
//! passthrough with the same backing file (else the open fails with EIO). So a backing is kept
//! per inode until the kernel forgets the inode, and a write open (root may open a 0444 file
//! for writing) is direct I/O, its writes answered EINVAL as in tracefs — unless a read open
//! is still live: it then shares the backing, and its writes fail with EPERM (the sealed
//! memfd). A reader closed just before is not live, but the kernel sends its RELEASE after
//! close(2) returns: the write open waits a moment ([`RELEASE_GRACE`]) for pending releases,
//! so `cat format; echo 1 > format` gets EINVAL every time.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fuser::{BackingId, FopenFlags, ReplyOpen};
use parking_lot::{Condvar, Mutex};

use super::files::File;
use crate::events::catalog::EventFile;
use crate::events::registry::RELEASE_GRACE;
use crate::trace::state::TraceArray;

/// The backing files of the inodes open (or opened) through passthrough.
#[derive(Default)]
pub struct Passthrough {
    /// The kernel granted FUSE_PASSTHROUGH and backing files can be registered.
    enabled: AtomicBool,
    backings: Mutex<HashMap<u64, Backing>>,
    /// Signalled when a read open is released (a write open may be waiting for it).
    released: Condvar,
    /// `backings.len()`, readable without the lock.
    held: AtomicUsize,
}

struct Backing {
    id: Arc<BackingId>,
    /// The handles of read opens the kernel has not released yet.
    readers: HashSet<u64>,
}

/// Does `file` of `ta` keep its content for the life of its inode, and of every fd on it?
pub fn is_static(ta: &TraceArray, file: &File) -> bool {
    match file {
        File::Event(_, EventFile::Id) => true,
        File::Event(ev, EventFile::Format) => ta.is_top() && ev.dynamic.is_none(),
        _ => false,
    }
}

/// A memfd holding `content`, sealed against any change.
fn sealed_memfd(content: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and flags; the fd returned is ours.
    let fd = unsafe {
        libc::memfd_create(
            c"utracefs-static".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::File::from(fd.try_clone()?).write_all(content)?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an fd we own.
    if unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::F_ADD_SEALS,
            seals,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

impl Passthrough {
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Answers the open of `ino` (handle `fh`) through passthrough if it can: `Ok` if it
    /// replied, else `reply` handed back for the caller to open the file as usual.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        read_only: bool,
        content: impl FnOnce() -> Option<Vec<u8>>,
        reply: ReplyOpen,
    ) -> Result<(), ReplyOpen> {
        // An inode that has a backing keeps it (the kernel may hold a passthrough open on it),
        // even if new backings can no longer be made.
        if self.held.load(Ordering::Relaxed) == 0 && !self.enabled.load(Ordering::Relaxed) {
            return Err(reply);
        }
        let mut backings = self.backings.lock();
        if !read_only {
            // Only while a read open is live must a write open share its backing; one closed
            // a moment ago has its RELEASE on the way.
            let deadline = std::time::Instant::now() + RELEASE_GRACE;
            while backings.get(&ino).is_some_and(|b| !b.readers.is_empty())
                && !self
                    .released
                    .wait_until(&mut backings, deadline)
                    .timed_out()
            {}
            return match backings.get(&ino) {
                Some(b) if !b.readers.is_empty() => {
                    let id = b.id.clone();
                    drop(backings);
                    reply.opened_passthrough(fuser::FileHandle(fh), FopenFlags::empty(), &id);
                    Ok(())
                }
                _ => Err(reply),
            };
        }
        let id = match backings.get_mut(&ino) {
            Some(b) => {
                b.readers.insert(fh);
                b.id.clone()
            }
            None => {
                let text = content().filter(|_| self.enabled.load(Ordering::Relaxed));
                let Some(text) = text else {
                    return Err(reply);
                };
                let id = sealed_memfd(&text).and_then(|fd| reply.open_backing(fd));
                let id = match id {
                    Ok(id) => Arc::new(id),
                    Err(e) => {
                        // One line, however many opens fail at once.
                        if self.enabled.swap(false, Ordering::Relaxed) {
                            tracing::warn!(
                                "FUSE passthrough unavailable ({e}): static files are read \
                             through the daemon"
                            );
                        }
                        return Err(reply);
                    }
                };
                backings.insert(
                    ino,
                    Backing {
                        id: id.clone(),
                        readers: HashSet::from([fh]),
                    },
                );
                self.held.store(backings.len(), Ordering::Relaxed);
                id
            }
        };
        drop(backings);
        reply.opened_passthrough(fuser::FileHandle(fh), FopenFlags::empty(), &id);
        Ok(())
    }

    /// Handle `fh` of `ino` was released.
    pub fn release(&self, ino: u64, fh: u64) {
        if let Some(b) = self.backings.lock().get_mut(&ino)
            && b.readers.remove(&fh)
        {
            self.released.notify_all();
        }
    }

    /// The kernel forgot `ino`: no file of it is open any more, its backing can go.
    pub fn forget(&self, ino: u64) {
        let mut backings = self.backings.lock();
        backings.remove(&ino);
        self.held.store(backings.len(), Ordering::Relaxed);
    }

    /// Backing files held (for `--stats`).
    pub fn backing_count(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}
