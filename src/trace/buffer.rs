//! A trace array's buffer: one [`ringbuf::CpuBuffer`] per CPU. Storage only: its text views
//! (`trace`, `trace_pipe`, `stats`) are rendering's (`crate::trace::render::text`).

use crate::trace::ringbuf::{self, CpuBuffer};

pub struct TraceBuffer {
    cpus: Vec<CpuBuffer>,
    /// The snapshot buffer (the kernel's `max_buffer`) while allocated: same sizes as the
    /// live rings; `echo 1 > snapshot` and the `snapshot` trigger swap it with them
    /// (`crate::trace::snapshot`). Under the same lock, so a swap is atomic for readers.
    snapshot: Option<Box<TraceBuffer>>,
    /// A conditional snapshot is registered (a hist `.snapshot()` action): writes to the
    /// `snapshot` file answer EBUSY meanwhile, as the kernel's `tr->cond_snapshot` makes them.
    pub cond_snapshot: bool,
}

impl TraceBuffer {
    /// `kb[cpu]` KiB per CPU (what `buffer_size_kb` reads back), `subbuf` bytes per page.
    pub fn new(kb: &[u64], subbuf: usize) -> TraceBuffer {
        TraceBuffer {
            cpus: kb
                .iter()
                .map(|k| CpuBuffer::new(subbuf, ringbuf::pages_for_kb(*k, subbuf)))
                .collect(),
            snapshot: None,
            cond_snapshot: false,
        }
    }

    pub fn ncpu(&self) -> usize {
        self.cpus.len()
    }

    /// Stores one record on `cpu`'s ring; false when it was dropped (full, not overwriting).
    pub fn write(&mut self, cpu: usize, ts: u64, rec: &[u8], overwrite: bool) -> bool {
        let Some(c) = self.cpus.get_mut(cpu) else {
            return false;
        };
        c.write(ts, rec, overwrite) == ringbuf::WriteOutcome::Written
    }

    /// New sizes (`buffer_size_kb`, `buffer_subbuf_size_kb`): the kernel keeps what fits. An
    /// allocated snapshot is resized with the live rings (`__tracing_resize_ring_buffer`).
    pub fn resize(&mut self, kb: &[u64], subbuf: usize) {
        if let Some(snap) = &mut self.snapshot {
            snap.resize(kb, subbuf);
        }
        for (c, k) in self.cpus.iter_mut().zip(kb) {
            let pages = ringbuf::pages_for_kb(*k, subbuf);
            if c.subbuf_bytes() == subbuf {
                c.resize(pages);
            } else {
                c.set_subbuf_size(subbuf, pages);
            }
        }
    }

    /// `echo > trace` (all CPUs) or `echo > per_cpu/cpuN/trace`.
    pub fn clear(&mut self, cpu: Option<usize>) {
        for (i, c) in self.cpus.iter_mut().enumerate() {
            if cpu.is_none_or(|n| n == i) {
                c.clear();
            }
        }
    }

    /// No unread record on `cpu` (or on any CPU).
    pub fn is_empty(&self, cpu: Option<usize>) -> bool {
        self.cpus
            .iter()
            .enumerate()
            .all(|(i, c)| cpu.is_some_and(|n| n != i) || c.iter().next().is_none())
    }

    /// `entries-in-buffer/entries-written` over all CPUs (`get_total_entries`).
    pub fn totals(&self) -> (u64, u64) {
        self.cpus.iter().fold((0, 0), |(e, w), c| {
            let s = c.stats();
            (e + s.entries, w + s.entries_written())
        })
    }

    /// `per_cpu/cpuN/trace_pipe_raw`: the next sub-buffer page, consumed.
    pub fn read_page(&mut self, cpu: usize) -> Option<Vec<u8>> {
        let c = self.cpus.get_mut(cpu)?;
        let len = c.subbuf_bytes();
        c.read_page(len, false)
    }

    /// The CPUs' rings, in CPU order.
    pub fn cpus(&self) -> &[CpuBuffer] {
        &self.cpus
    }

    /// The CPUs' rings, for consuming reads.
    pub fn cpus_mut(&mut self) -> &mut [CpuBuffer] {
        &mut self.cpus
    }

    /// The snapshot buffer, if allocated.
    pub fn snapshot(&self) -> Option<&TraceBuffer> {
        self.snapshot.as_deref()
    }

    pub fn snapshot_mut(&mut self) -> Option<&mut TraceBuffer> {
        self.snapshot.as_deref_mut()
    }

    /// Allocates an empty snapshot buffer the size of the live rings, if there is none
    /// (`tracing_alloc_snapshot_instance`).
    pub fn alloc_snapshot(&mut self) {
        if self.snapshot.is_none() {
            let cpus = self
                .cpus
                .iter()
                .map(|c| CpuBuffer::new(c.subbuf_bytes(), c.nr_pages()))
                .collect();
            self.snapshot = Some(Box::new(TraceBuffer {
                cpus,
                snapshot: None,
                cond_snapshot: false,
            }));
        }
    }

    /// Frees the snapshot buffer and what it held (`free_snapshot`).
    pub fn free_snapshot(&mut self) {
        self.snapshot = None;
    }

    /// Swaps the live rings of every CPU (or of `cpu`) with the snapshot's: the live rings'
    /// records, counters and all become the snapshot, tracing goes on in the former snapshot
    /// (`update_max_tr`, `update_max_tr_single`). False when no snapshot is allocated.
    pub fn swap_snapshot(&mut self, cpu: Option<usize>) -> bool {
        let Some(snap) = self.snapshot.as_deref_mut() else {
            return false;
        };
        match cpu {
            None => std::mem::swap(&mut self.cpus, &mut snap.cpus),
            Some(n) => {
                if let (Some(a), Some(b)) = (self.cpus.get_mut(n), snap.cpus.get_mut(n)) {
                    std::mem::swap(a, b);
                }
            }
        }
        true
    }
}
