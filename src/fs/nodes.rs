//! The node table: one node per inode the kernel holds a lookup count on, created when a
//! LOOKUP or READDIRPLUS reply names it and freed when FORGET brings the count to zero.
//!
//! Invariant: every node is complete (entry, owner trace array, times) before the reply that
//! names it is sent; its attributes are derived from the registry each time, so a node never
//! carries state that the kernel forgetting it could lose, except its own timestamps (as in
//! tracefs, where an inode's times are those of its creation).

use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;

use super::entry::Entry;
use crate::trace::state::TraceArray;

#[derive(Clone, Copy)]
pub struct Times {
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Times {
    pub fn at(t: SystemTime) -> Times {
        Times {
            atime: t,
            mtime: t,
            ctime: t,
        }
    }
}

pub struct Node {
    pub ta: Arc<TraceArray>,
    pub entry: Entry,
    pub nlookup: u64,
    pub times: Times,
}

/// Hashes the u64 keys of the adapter's tables (inode numbers, file handles) with one multiply
/// and a fold, instead of SipHash: these keys come from the daemon, not from an attacker, and
/// the tables are on every request's path. DashMap picks its shard from the high bits, the
/// table its bucket from the low ones, so both halves are mixed.
#[derive(Clone, Copy, Default)]
pub struct InoHash;

pub struct InoHasher(u64);

impl std::hash::BuildHasher for InoHash {
    type Hasher = InoHasher;
    fn build_hasher(&self) -> InoHasher {
        InoHasher(0)
    }
}

impl std::hash::Hasher for InoHasher {
    fn finish(&self) -> u64 {
        let m = u128::from(self.0) * 0x9E37_79B9_7F4A_7C15;
        (m as u64) ^ ((m >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A concurrent table keyed by inode number or file handle.
pub type InoMap<V> = DashMap<u64, V, InoHash>;

#[derive(Default)]
pub struct Nodes {
    map: InoMap<Node>,
    /// Frees since the table was last checked for shrinking.
    frees: std::sync::atomic::AtomicU64,
}

impl Nodes {
    /// Counts one more kernel reference to `ino`, creating the node (born at `born()`, asked
    /// only then) if needed; returns the node's times.
    pub fn remember(
        &self,
        ino: u64,
        ta: &Arc<TraceArray>,
        entry: &Entry,
        born: impl FnOnce() -> SystemTime,
    ) -> Times {
        let mut node = self.map.entry(ino).or_insert_with(|| Node {
            ta: ta.clone(),
            entry: entry.clone(),
            nlookup: 0,
            times: Times::at(born()),
        });
        node.nlookup += 1;
        node.times
    }

    /// Drops `n` kernel references; frees the node at zero. Returns false for an unknown ino.
    pub fn forget(&self, ino: u64, n: u64) -> bool {
        let gone = match self.map.get_mut(&ino) {
            Some(mut node) => {
                node.nlookup = node.nlookup.saturating_sub(n);
                node.nlookup == 0
            }
            None => return false,
        };
        if gone
            && self
                .map
                .remove_if(&ino, |_, node| node.nlookup == 0)
                .is_some()
        {
            self.maybe_shrink();
        }
        true
    }

    /// After the kernel forgets most of a big walk, give the memory back: shrink the table
    /// and return freed heap pages to the system (checked once per 1024 frees, and when the
    /// last node goes).
    fn maybe_shrink(&self) {
        use std::sync::atomic::Ordering;
        let n = self.frees.fetch_add(1, Ordering::Relaxed);
        if n % 1024 != 1023 && !self.map.is_empty() {
            return;
        }
        if self.map.capacity() > 1024 && self.map.len() * 8 < self.map.capacity() {
            self.map.shrink_to_fit();
            // SAFETY: malloc_trim only releases free memory of the allocator.
            unsafe { libc::malloc_trim(0) };
        }
    }

    /// The node's trace array, entry and times.
    pub fn get(&self, ino: u64) -> Option<(Arc<TraceArray>, Entry, Times)> {
        self.map
            .get(&ino)
            .map(|n| (n.ta.clone(), n.entry.clone(), n.times))
    }

    pub fn contains(&self, ino: u64) -> bool {
        self.map.contains_key(&ino)
    }

    pub fn update_times(&self, ino: u64, f: impl FnOnce(&mut Times)) {
        if let Some(mut n) = self.map.get_mut(&ino) {
            f(&mut n.times);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The live nodes for which `pred(trace array, entry)` holds.
    pub fn matching(
        &self,
        pred: impl Fn(&TraceArray, &Entry) -> bool,
    ) -> Vec<(Arc<TraceArray>, Entry)> {
        self.map
            .iter()
            .filter(|n| pred(&n.ta, &n.entry))
            .map(|n| (n.ta.clone(), n.entry.clone()))
            .collect()
    }

    /// Live nodes split into (directories, files).
    pub fn count_by_kind(&self) -> (usize, usize) {
        // One pass: the map changes under us (FORGET), so two counts could disagree.
        self.map.iter().fold((0, 0), |(d, f), n| {
            if n.entry.is_dir() {
                (d + 1, f)
            } else {
                (d, f + 1)
            }
        })
    }
}
