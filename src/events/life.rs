//! The one word the registry and the trace arrays share, kept apart so that neither needs
//! the other for it.

/// Whether a registry directory still exists. Removal flips it under the directory's lock, so a
/// lookup holding the lock either sees a live entry or none at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    Alive,
    Removed,
}
