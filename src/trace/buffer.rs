//! A trace array's buffer: one [`ringbuf::CpuBuffer`] per CPU. Storage only: its text views
//! (`trace`, `trace_pipe`, `stats`) are rendering's (`crate::trace::render::text`).

use crate::trace::ringbuf::{self, CpuBuffer};

pub struct TraceBuffer {
    cpus: Vec<CpuBuffer>,
}

impl TraceBuffer {
    /// `kb[cpu]` KiB per CPU (what `buffer_size_kb` reads back), `subbuf` bytes per page.
    pub fn new(kb: &[u64], subbuf: usize) -> TraceBuffer {
        TraceBuffer {
            cpus: kb
                .iter()
                .map(|k| CpuBuffer::new(subbuf, ringbuf::pages_for_kb(*k, subbuf)))
                .collect(),
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

    /// `n` records lost before they reached `cpu`'s ring (a source's own losses).
    pub fn note_lost(&mut self, cpu: usize, n: u64) {
        if let Some(c) = self.cpus.get_mut(cpu) {
            c.note_lost(n);
        }
    }

    /// New sizes (`buffer_size_kb`, `buffer_subbuf_size_kb`): the kernel keeps what fits.
    pub fn resize(&mut self, kb: &[u64], subbuf: usize) {
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
}
