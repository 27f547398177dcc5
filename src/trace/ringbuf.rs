//! The per-CPU trace ring buffer, storing records in the kernel's binary
//! sub-buffer layout so that `trace_pipe_raw` can hand pages out verbatim.
//!
//! Pure: no files, no clocks; timestamps come in as `u64` nanoseconds.
//!
//! # Page layout (`events/header_page`, `events/header_event`; x86-64)
//!
//! ```text
//! @0  u64 timestamp   time of the page's first event (or, for a copied page,
//!                     of the event read just before the first one on it)
//! @8  i64 commit      data bytes; flags RB_MISSED_EVENTS (bit 31, added as a
//!                     sign-extended int, so bits 31..63 are set) and
//!                     RB_MISSED_STORED (bit 30: a u64 count follows the data)
//! @16 data            subbuf_size - 16 bytes of 4-byte aligned events
//! ```
//!
//! Each event starts with a little-endian u32 `type_len:5 | time_delta:27 << 5`:
//! - `type_len` 1..=28: `type_len * 4` data bytes follow;
//! - 0: `array[0]` is the event length minus the 4-byte header (so it counts
//!   itself; libtraceevent subtracts 4 again), the data follows it;
//! - 29: padding, `array[0] + 4` bytes long, or the 4-byte end marker when
//!   `time_delta` is 0; 30: time extend (delta = `array[0] << 27 | time_delta`),
//!   8 bytes, glued to the next event, whose delta is then 0; 31: absolute
//!   timestamp (only decoded; we never write it).
//!
//! The ring mirrors `kernel/trace/ring_buffer.c`: `nr_pages` sub-buffers in a
//! ring plus a separate reader page that readers swap with the oldest (head)
//! page. Pages are allocated only as data arrives, so an idle buffer costs
//! nothing. Counters follow the kernel (see [`CpuStats`]); behaviour was
//! checked against a live 6.18 tracefs instance.

use std::collections::VecDeque;
use std::ops::Range;

/// `BUF_PAGE_HDR_SIZE`: the u64 timestamp and the 8-byte `commit`.
pub const PAGE_HEADER_BYTES: usize = 16;
/// Default sub-buffer size (`buffer_subbuf_size_kb` = 4).
pub const DEFAULT_SUBBUF_BYTES: usize = 4096;
/// `RB_MISSED_EVENTS` as it appears in the 64-bit `commit` (sign-extended).
pub const MISSED_EVENTS: u64 = 0xffff_ffff_8000_0000;
/// `RB_MISSED_STORED`.
pub const MISSED_STORED: u64 = 1 << 30;

const TS_SHIFT: u32 = 27;
const TS_MASK: u64 = (1 << TS_SHIFT) - 1;
const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;
/// `RB_MAX_SMALL_DATA`: largest body whose length fits in `type_len`.
const MAX_SMALL_DATA: usize = 4 * 28;
const LEN_TIME_EXTEND: usize = 8;
/// `RB_EVNT_MIN_SIZE`: below this, the page end gets a 4-byte null padding.
const EVENT_MIN_SIZE: usize = 8;
const TS_MSB: u64 = 0xf8 << 56;

/// Sub-buffers per CPU for a `buffer_size_kb` write, as the kernel computes
/// it (see [`crate::control::values::buffer_size_pages`]; at least 2).
pub fn pages_for_kb(kb: u64, subbuf_bytes: usize) -> usize {
    let pages = crate::control::values::buffer_size_pages(kb, (subbuf_bytes / 1024) as u64);
    usize::try_from(pages).unwrap_or(usize::MAX)
}

/// What `buffer_size_kb` reads back for `pages` sub-buffers: data bytes / 1024.
pub fn kb_for_pages(pages: usize, subbuf_bytes: usize) -> u64 {
    let data = subbuf_bytes.saturating_sub(PAGE_HEADER_BYTES) as u128;
    u64::try_from((pages as u128 * data) >> 10).unwrap_or(u64::MAX)
}

/// Largest payload one record may have with `subbuf_bytes` sub-buffers
/// (`ring_buffer_max_event_size`): the data area minus the 8-byte long-event
/// header, 4072 with 4 KiB sub-buffers. That is where trace_marker's cap of
/// 4054 text bytes comes from (16 bytes of print entry, common header + ip,
/// and 2 for the `\n\0` it reserves: 4054 + 18 = 4072), and trace_marker_raw's
/// 4064 (the 8-byte common header before the id: 4064 + 8 = 4072).
pub fn max_payload(subbuf_bytes: usize) -> usize {
    subbuf_bytes.max(PAGE_HEADER_BYTES + 16) - PAGE_HEADER_BYTES - 8
}

/// `rb_calculate_event_length`: bytes a payload takes in the buffer.
fn event_len(payload: usize) -> usize {
    let mut len = payload.max(1);
    if len > MAX_SMALL_DATA {
        len += 4;
    }
    len = (len + 4 + 3) & !3;
    // A 12-byte event could not be turned into a time extend + padding.
    if len == LEN_TIME_EXTEND + 4 {
        len += 4;
    }
    len
}

fn rd32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Why a page (or an event in it) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the page header.
    ShortPage,
    /// `commit` claims more data than the page holds.
    BadCommit(u64),
    /// An event at this data offset runs past the committed data.
    Truncated(usize),
}

/// One decoded event header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    /// A record: `data` is its range in the data area, padded to 4 bytes.
    Data {
        delta: u64,
        data: (usize, usize),
    },
    /// Padding; `len` 4 with `null` for the end-of-page marker.
    Padding {
        null: bool,
    },
    Extend(u64),
    Absolute(u64),
}

/// Decodes the event at `off` of the data area `d`; returns it and its length.
fn parse(d: &[u8], off: usize) -> Result<(Ev, usize), DecodeError> {
    let bad = DecodeError::Truncated(off);
    let hdr = rd32(d, off).ok_or(bad.clone())?;
    let (tl, delta) = (hdr & 31, u64::from(hdr >> 5));
    let arr = || rd32(d, off + 4).map(u64::from).ok_or(bad.clone());
    let (ev, len) = match tl {
        TYPE_PADDING if delta == 0 => (Ev::Padding { null: true }, 4),
        TYPE_PADDING => (Ev::Padding { null: false }, arr()? as usize + 4),
        TYPE_TIME_EXTEND => (Ev::Extend(arr()? << TS_SHIFT | delta), LEN_TIME_EXTEND),
        TYPE_TIME_STAMP => (Ev::Absolute(arr()? << TS_SHIFT | delta), LEN_TIME_EXTEND),
        0 => {
            let len = arr()? as usize + 4;
            let data = (off + 8, off + len);
            (Ev::Data { delta, data }, len)
        }
        n => {
            let len = n as usize * 4 + 4;
            (
                Ev::Data {
                    delta,
                    data: (off + 4, off + len),
                },
                len,
            )
        }
    };
    if len < 4 || off + len > d.len() || matches!(ev, Ev::Data { data: (s, e), .. } if s > e) {
        return Err(bad);
    }
    Ok((ev, len))
}

/// `rb_fix_abs_ts`: restore the 5 top bits an absolute stamp cannot hold.
fn fix_abs(abs: u64, save: u64) -> u64 {
    if save & TS_MSB == 0 {
        return abs;
    }
    let abs = abs | (save & TS_MSB);
    if abs < save {
        abs.wrapping_add(1 << 59)
    } else {
        abs
    }
}

/// Walks the events of data area `d` starting at `off` with running time
/// `ts`, calling `f(ts, data_range)` for each record. Stops at a null padding.
fn walk(
    d: &[u8],
    mut off: usize,
    mut ts: u64,
    mut f: impl FnMut(u64, Range<usize>),
) -> Result<(), DecodeError> {
    while off < d.len() {
        let (ev, len) = parse(d, off)?;
        match ev {
            Ev::Padding { null: true } => break,
            Ev::Padding { null: false } => {}
            Ev::Extend(delta) => ts = ts.wrapping_add(delta),
            Ev::Absolute(abs) => ts = fix_abs(abs, ts),
            Ev::Data { delta, data } => {
                ts = ts.wrapping_add(delta);
                f(ts, data.0..data.1);
            }
        }
        off += len;
    }
    Ok(())
}

/// The records of one `trace_pipe_raw` page: absolute timestamps and the
/// byte ranges of their data within `page` (padded to 4 bytes, as the kernel
/// stores them).
pub fn decode_page(page: &[u8]) -> Result<Vec<(u64, Range<usize>)>, DecodeError> {
    let head = page
        .get(..PAGE_HEADER_BYTES)
        .ok_or(DecodeError::ShortPage)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(&head[..8]);
    let ts = u64::from_le_bytes(w);
    w.copy_from_slice(&head[8..16]);
    let commit = u64::from_le_bytes(w);
    let len = (commit & (MISSED_STORED - 1)) as usize;
    let data = page
        .get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + len)
        .ok_or(DecodeError::BadCommit(commit))?;
    let mut out = Vec::new();
    walk(data, 0, ts, |t, r| {
        out.push((t, r.start + PAGE_HEADER_BYTES..r.end + PAGE_HEADER_BYTES))
    })?;
    Ok(out)
}

/// One sub-buffer. `data` is the page's data area up to its write index
/// (the kernel's `commit`), including any end padding we wrote.
#[derive(Debug, Clone, Default)]
struct Page {
    ts: u64,
    data: Vec<u8>,
    entries: u64,
    /// Data end before the end padding, handed out as `commit` on a page
    /// swap so the count of missed events fits behind it; 0 when unknown.
    real_end: usize,
    /// The writer has left this page (padded it).
    closed: bool,
    /// Records a source lost just before this page's first (see [`CpuBuffer::note_lost`]).
    lost_before: u64,
}

/// Result of [`CpuBuffer::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Written,
    /// Buffer full and not in overwrite mode: counted in `dropped events`.
    Dropped,
    /// Larger than [`CpuBuffer::max_payload`]; nothing is counted (the
    /// kernel's `ring_buffer_lock_reserve` just fails).
    TooLarge,
}

/// The counters of `per_cpu/cpuN/stats`, with the kernel's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStats {
    /// Unread records: written - overrun - read.
    pub entries: u64,
    /// Records lost to overwrite or to shrinking the buffer.
    pub overrun: u64,
    /// Always 0 here (needs nested writers wrapping the whole ring).
    pub commit_overrun: u64,
    /// Unread bytes: event lengths including time extends and end padding.
    pub bytes: u64,
    /// Timestamp of the head page, or of the reader page while the writer
    /// is on it (the kernel's `ring_buffer_oldest_event_ts`).
    pub oldest_event_ts: u64,
    /// Records refused because the buffer was full (overwrite off).
    pub dropped_events: u64,
    /// Records consumed (trace_pipe, trace_pipe_raw).
    pub read_events: u64,
}

impl CpuStats {
    /// `entries-written` of the `trace` header for this CPU (`get_total_entries`):
    /// entries + overrun. Dropped records are not included, and consumed
    /// records drop out of it.
    pub fn entries_written(&self) -> u64 {
        self.entries + self.overrun
    }
}

/// `ns2usecs` then `%5llu.%06lu`.
fn fmt_ts(ns: u64, in_ns: bool) -> String {
    if !in_ns {
        return ns.to_string();
    }
    let us = ns.saturating_add(500) / 1000;
    format!("{:5}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// The exact text of `per_cpu/cpuN/stats`. `clock_in_ns` is false for the
/// `counter` and `x86-tsc` clocks, which print raw values.
pub fn format_stats(s: &CpuStats, now_ns: u64, clock_in_ns: bool) -> String {
    format!(
        "entries: {}\noverrun: {}\ncommit overrun: {}\nbytes: {}\noldest event ts: {}\n\
         now ts: {}\ndropped events: {}\nread events: {}\n",
        s.entries,
        s.overrun,
        s.commit_overrun,
        s.bytes,
        fmt_ts(s.oldest_event_ts, clock_in_ns),
        fmt_ts(now_ns, clock_in_ns),
        s.dropped_events,
        s.read_events
    )
}

/// A record seen by [`CpuBuffer::iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub ts: u64,
    /// Payload padded with zeros to the stored length (a multiple of 4).
    pub data: &'a [u8],
}

/// A record consumed by [`CpuBuffer::pop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popped {
    pub ts: u64,
    pub data: Vec<u8>,
    /// Records overwritten since the previous consuming read (trace_pipe's
    /// `CPU:N [LOST n EVENTS]`).
    pub lost: u64,
}

/// One CPU's ring buffer.
#[derive(Debug, Clone)]
pub struct CpuBuffer {
    subbuf: usize,
    nr_pages: usize,
    /// The reader page and how far it has been consumed.
    reader: Option<Page>,
    read: usize,
    /// The writer is on the reader page (the ring is then empty).
    tail_on_reader: bool,
    /// Pages with data, oldest (head) first; the back one is the tail.
    ring: VecDeque<Page>,
    write_stamp: u64,
    read_stamp: u64,
    entries: u64,
    overrun: u64,
    entries_bytes: u64,
    read_bytes: u64,
    dropped: u64,
    read_events: u64,
    lost_events: u64,
    last_overrun: u64,
    /// Of `overrun`, the records sources lost ([`CpuBuffer::note_lost`]), reported with the
    /// page after them rather than at the next page swap; the part not yet on a page.
    lost_noted: u64,
    lost_pending: u64,
}

impl CpuBuffer {
    /// An empty buffer of `nr_pages` sub-buffers (at least 2) of
    /// `subbuf_bytes` each (clamped to at least one header and one event).
    pub fn new(subbuf_bytes: usize, nr_pages: usize) -> Self {
        CpuBuffer {
            subbuf: subbuf_bytes.max(PAGE_HEADER_BYTES + 16),
            nr_pages: nr_pages.max(2),
            reader: None,
            read: 0,
            tail_on_reader: false,
            ring: VecDeque::new(),
            write_stamp: 0,
            read_stamp: 0,
            entries: 0,
            overrun: 0,
            entries_bytes: 0,
            read_bytes: 0,
            dropped: 0,
            read_events: 0,
            lost_events: 0,
            last_overrun: 0,
            lost_noted: 0,
            lost_pending: 0,
        }
    }

    pub fn subbuf_bytes(&self) -> usize {
        self.subbuf
    }

    pub fn nr_pages(&self) -> usize {
        self.nr_pages
    }

    fn data_size(&self) -> usize {
        self.subbuf - PAGE_HEADER_BYTES
    }

    /// Largest payload a write accepts: [`max_payload`] of this buffer's sub-buffer size.
    pub fn max_payload(&self) -> usize {
        max_payload(self.subbuf)
    }

    /// Appends a record stamped `ts` (clamped so time never goes backwards
    /// on one CPU). `overwrite` is the `overwrite` trace option.
    pub fn write(&mut self, ts: u64, payload: &[u8], overwrite: bool) -> WriteOutcome {
        if payload.len() > self.max_payload() {
            return WriteOutcome::TooLarge;
        }
        let ts = ts.max(self.write_stamp);
        let len = event_len(payload.len());
        let size = self.data_size();
        // At most two passes: the current page, then a fresh one.
        for _ in 0..3 {
            let prev = self.write_stamp;
            let tail = if self.tail_on_reader {
                self.reader.as_mut()
            } else {
                self.ring.back_mut()
            };
            if let Some(page) = tail {
                let at = page.data.len();
                let delta = ts - prev;
                let extend = at != 0 && delta > TS_MASK;
                let need = len + if extend { LEN_TIME_EXTEND } else { 0 };
                if !page.closed && at + need <= size {
                    let d = &mut page.data;
                    let mut delta = if at == 0 { 0 } else { delta };
                    if extend {
                        // The kernel zeroes deltas it cannot trust (> 2^59).
                        let ext = if delta > 1 << 59 { 0 } else { delta };
                        let hdr = TYPE_TIME_EXTEND | ((ext & TS_MASK) as u32) << 5;
                        d.extend_from_slice(&hdr.to_le_bytes());
                        d.extend_from_slice(&((ext >> TS_SHIFT) as u32).to_le_bytes());
                        delta = 0;
                    }
                    let body = len - 4;
                    if body > MAX_SMALL_DATA {
                        d.extend_from_slice(&((delta as u32) << 5).to_le_bytes());
                        d.extend_from_slice(&(body as u32).to_le_bytes());
                    } else {
                        let hdr = (body as u32).div_ceil(4) | (delta as u32) << 5;
                        d.extend_from_slice(&hdr.to_le_bytes());
                    }
                    d.extend_from_slice(payload);
                    d.resize(at + need, 0);
                    if at == 0 {
                        page.ts = ts;
                    }
                    page.entries += 1;
                    self.entries += 1;
                    self.entries_bytes += need as u64;
                    self.write_stamp = ts;
                    return WriteOutcome::Written;
                }
                // rb_reset_tail: close the page, even when the write then fails.
                if at >= size {
                    if at == size {
                        page.real_end = 0;
                    }
                } else {
                    page.real_end = at;
                    if size - at >= EVENT_MIN_SIZE {
                        let d = &mut page.data;
                        d.extend_from_slice(&(TYPE_PADDING | 1 << 5).to_le_bytes());
                        d.extend_from_slice(&((size - at - 4) as u32).to_le_bytes());
                        d.resize(size, 0);
                        self.entries_bytes += (size - at) as u64;
                    }
                }
                page.closed = true;
            }
            // rb_move_tail: the writer leaves the reader page freely; in the
            // ring it may need the head page.
            if self.tail_on_reader {
                self.tail_on_reader = false;
            } else if self.ring.len() >= self.nr_pages {
                if !overwrite {
                    self.dropped += 1;
                    return WriteOutcome::Dropped;
                }
                self.drop_head();
            }
            self.ring.push_back(Page {
                lost_before: std::mem::take(&mut self.lost_pending),
                ..Page::default()
            });
        }
        WriteOutcome::Dropped
    }

    /// `n` records were lost before reaching this ring (a source lost them): they count as
    /// overrun, and the next page starts after them, so a consuming read reports them
    /// (`[LOST n EVENTS]`, the missed-events flag) just before the records that followed.
    pub fn note_lost(&mut self, n: u64) {
        let tail = if self.tail_on_reader {
            self.reader.as_mut()
        } else {
            self.ring.back_mut()
        };
        if let Some(page) = tail.filter(|p| !p.data.is_empty() && !p.closed) {
            page.real_end = page.data.len();
            page.closed = true;
        }
        self.entries += n;
        self.overrun += n;
        self.lost_noted += n;
        self.lost_pending += n;
    }

    /// Loses the head page (overwrite, shrink): its records become overrun.
    fn drop_head(&mut self) {
        if let Some(p) = self.ring.pop_front() {
            // A source's loss before the page is now part of the overwritten stretch.
            self.lost_noted -= p.lost_before;
            self.overrun += p.entries;
            self.entries_bytes = self.entries_bytes.saturating_sub(p.data.len() as u64);
        }
    }

    /// `rb_get_reader_page`: makes sure the reader page has unread data,
    /// swapping in the head page when it is exhausted. Notes lost events.
    fn reader_page(&mut self) -> bool {
        for _ in 0..3 {
            if self
                .reader
                .as_ref()
                .is_some_and(|r| self.read < r.data.len())
            {
                return true;
            }
            if self.tail_on_reader {
                return false;
            }
            let Some(page) = self.ring.pop_front() else {
                return false;
            };
            self.tail_on_reader = self.ring.is_empty();
            self.read_stamp = page.ts;
            self.reader = Some(page);
            self.read = 0;
            let own = self.overrun - self.lost_noted;
            if own != self.last_overrun {
                self.lost_events = own - self.last_overrun;
                self.last_overrun = own;
            }
            let noted = self.reader.as_ref().map_or(0, |p| p.lost_before);
            self.lost_events += noted;
            self.lost_noted -= noted;
            self.last_overrun += noted;
        }
        false
    }

    /// The event at the reader position, if any.
    fn reader_event(&self) -> Option<(Ev, usize)> {
        let r = self.reader.as_ref()?;
        parse(&r.data, self.read).ok()
    }

    /// `rb_advance_reader` over one event.
    fn advance(&mut self, ev: Ev, len: usize) {
        match ev {
            Ev::Data { delta, .. } => {
                self.read_events += 1;
                self.read_stamp = self.read_stamp.wrapping_add(delta);
            }
            Ev::Extend(delta) => self.read_stamp = self.read_stamp.wrapping_add(delta),
            Ev::Absolute(abs) => self.read_stamp = fix_abs(abs, self.read_stamp),
            Ev::Padding { .. } => {}
        }
        self.read += len;
        self.read_bytes += len as u64;
    }

    /// Skips padding and time extends up to the next record, like
    /// `ring_buffer_peek`; returns that record's event and length.
    fn next_record(&mut self) -> Option<(Ev, usize)> {
        loop {
            if !self.reader_page() {
                return None;
            }
            let Some((ev, len)) = self.reader_event() else {
                // Unparseable (cannot happen for pages we wrote): skip the page.
                self.read = usize::MAX;
                self.reader = None;
                continue;
            };
            if matches!(ev, Ev::Data { .. }) {
                return Some((ev, len));
            }
            self.advance(ev, len);
        }
    }

    /// Timestamp of the next record a consuming read returns. Like the
    /// kernel's peek, this may swap in the head page (which affects
    /// `oldest event ts` and when lost events are noticed).
    pub fn peek_ts(&mut self) -> Option<u64> {
        match self.next_record()? {
            (Ev::Data { delta, .. }, _) => Some(self.read_stamp.wrapping_add(delta)),
            _ => None,
        }
    }

    /// Consumes the oldest record (trace_pipe).
    pub fn pop(&mut self) -> Option<Popped> {
        let (ev, len) = self.next_record()?;
        let Ev::Data { data: (s, e), .. } = ev else {
            return None;
        };
        let data = self.reader.as_ref()?.data.get(s..e)?.to_vec();
        self.advance(ev, len);
        let lost = std::mem::take(&mut self.lost_events);
        Some(Popped {
            ts: self.read_stamp,
            data,
            lost,
        })
    }

    /// `ring_buffer_read_page`: consumes up to a page for `trace_pipe_raw`,
    /// returning a whole `subbuf_bytes` page (zero after the data). `len` is
    /// the reader's buffer size (a `read` of `count` bytes passes `count`);
    /// the kernel's `read()` path uses `full = false`, so a page the writer
    /// is still filling is handed out too (verified: three markers, then a
    /// non-blocking read of `per_cpu/cpu0/trace_pipe_raw` returned them).
    ///
    /// A page that was partly consumed, or is still being written, or does
    /// not fit in `len`, is copied event by event (time extend and its
    /// event together) with the timestamp of the last consumed record as
    /// page timestamp; otherwise the page itself goes, with `commit` set to
    /// the data end before its end padding. `full` refuses both a page
    /// still being written and an unread page that needs copying. Returns
    /// `None` when nothing fits (the kernel's read then returns 0 bytes).
    pub fn read_page(&mut self, len: usize, full: bool) -> Option<Vec<u8>> {
        let mut len = len.checked_sub(PAGE_HEADER_BYTES).filter(|l| *l > 0)?;
        if !self.reader_page() {
            return None;
        }
        let missed = self.lost_events;
        let (read, commit) = (self.read, self.reader.as_ref()?.data.len());
        let mut out = vec![0u8; self.subbuf];
        let (page_ts, used);
        if read > 0 || len < commit - read || self.tail_on_reader {
            if full && (read == 0 || len < commit - read || self.tail_on_reader) {
                return None;
            }
            len = len.min(commit - read);
            let ts_len = |b: &Self| -> Option<usize> {
                let (ev, l) = b.reader_event()?;
                if let Ev::Extend(_) | Ev::Absolute(_) = ev {
                    let r = b.reader.as_ref()?;
                    return Some(l + parse(&r.data, b.read + l).ok()?.1);
                }
                Some(l)
            };
            if len < ts_len(self)? {
                return None;
            }
            page_ts = self.read_stamp;
            let mut pos = 0;
            loop {
                let (ev, l) = self.reader_event()?;
                let src = &self.reader.as_ref()?.data[self.read..self.read + l];
                out[PAGE_HEADER_BYTES + pos..PAGE_HEADER_BYTES + pos + l].copy_from_slice(src);
                len -= l;
                pos += l;
                self.advance(ev, l);
                if self.read >= commit || ts_len(self).is_none_or(|n| len < n) {
                    break;
                }
            }
            used = pos;
        } else {
            let page = self.reader.take()?;
            self.read = 0;
            self.read_events += page.entries;
            self.read_bytes += commit as u64;
            used = if page.real_end != 0 {
                page.real_end
            } else {
                commit
            };
            out[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + used].copy_from_slice(&page.data[..used]);
            page_ts = page.ts;
        }
        self.lost_events = 0;
        let mut commit_field = used as u64;
        if missed > 0 {
            let at = PAGE_HEADER_BYTES + used;
            if self.data_size() - used >= 8 {
                out[at..at + 8].copy_from_slice(&missed.to_le_bytes());
                commit_field += MISSED_STORED;
            }
            commit_field = commit_field.wrapping_add(MISSED_EVENTS);
        }
        out[..8].copy_from_slice(&page_ts.to_le_bytes());
        out[8..16].copy_from_slice(&commit_field.to_le_bytes());
        Some(out)
    }

    /// Unread records in order, without consuming (the `trace` file): the
    /// rest of the reader page, then the ring from its head.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        let first = self.reader.as_ref().map(|r| {
            let ts = if self.read > 0 { self.read_stamp } else { r.ts };
            (r, self.read, ts)
        });
        let rest = self.ring.iter().map(|p| (p, 0, p.ts));
        first.into_iter().chain(rest).flat_map(|(p, off, ts)| {
            let mut recs = Vec::new();
            // Pages we wrote always decode; a failure just ends that page.
            let _ = walk(&p.data, off, ts, |t, r| recs.push((t, r)));
            recs.into_iter().map(move |(ts, r)| RecordRef {
                ts,
                data: &p.data[r],
            })
        })
    }

    /// The counters of `per_cpu/cpuN/stats`.
    pub fn stats(&self) -> CpuStats {
        let oldest = if self.tail_on_reader {
            self.reader.as_ref().map(|r| r.ts)
        } else {
            self.ring.front().map(|p| p.ts)
        };
        CpuStats {
            entries: self.entries.saturating_sub(self.overrun + self.read_events),
            overrun: self.overrun,
            commit_overrun: 0,
            bytes: self.entries_bytes.saturating_sub(self.read_bytes),
            oldest_event_ts: oldest.unwrap_or(0),
            dropped_events: self.dropped,
            read_events: self.read_events,
        }
    }

    /// `ring_buffer_reset_cpu` (`echo > trace`, clock changes): drops all
    /// data and zeroes every counter. The kernel then shows a stale page
    /// timestamp as `oldest event ts`; we show 0, as for a fresh buffer.
    pub fn clear(&mut self) {
        *self = CpuBuffer::new(self.subbuf, self.nr_pages);
    }

    /// New `buffer_size_kb` (in pages, at least 2). Contents are kept;
    /// shrinking drops the oldest pages and counts their records as overrun
    /// (verified: 140 entries in 5 pages, shrink to 2 pages -> entries 50,
    /// overrun +90).
    pub fn resize(&mut self, nr_pages: usize) {
        self.nr_pages = nr_pages.max(2);
        while self.ring.len() > self.nr_pages {
            self.drop_head();
        }
    }

    /// New `buffer_subbuf_size_kb`: all pages are replaced, so the data is
    /// lost, but (as verified on 6.18) the counters are left as they were.
    /// `nr_pages` is the page count that keeps `buffer_size_kb`.
    pub fn set_subbuf_size(&mut self, subbuf_bytes: usize, nr_pages: usize) {
        let mut fresh = CpuBuffer::new(subbuf_bytes, nr_pages);
        fresh.entries = self.entries;
        fresh.overrun = self.overrun;
        fresh.entries_bytes = self.entries_bytes;
        fresh.read_bytes = self.read_bytes;
        fresh.dropped = self.dropped;
        fresh.read_events = self.read_events;
        // The pages and their noted losses are gone: all of it is plain overrun now.
        fresh.last_overrun = self.last_overrun + self.lost_noted;
        *self = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `per_cpu/cpu0/trace_pipe_raw` on 6.18 after three trace_marker writes
    /// ("hello", "aaaaaaaa", 200 x "x") on CPU 0; first 304 bytes, rest zero.
    const KERNEL_PAGE: &str = concat!(
        "457759d9420b0000200100000000000006000000050000013b7800001a8b4981ffffffff68656c6c6f0a0000c7280500",
        "050000013b7800001a8b4981ffffffff61616161616161610a000000007c0200e0000000050000013b7800001a8b4981",
        "ffffffff7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878",
        "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878",
        "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878",
        "787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878787878",
        "7878787878787878787878780a000000",
    );

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn kernel_page() -> Vec<u8> {
        let mut p = unhex(KERNEL_PAGE);
        p.resize(4096, 0);
        p
    }

    fn u64_at(p: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(p[off..off + 8].try_into().unwrap())
    }

    /// A 132-byte event (payload 121, like a 103-byte marker).
    fn rec(i: u32) -> Vec<u8> {
        let mut v = vec![b'z'; 121];
        v[..4].copy_from_slice(&i.to_le_bytes());
        v
    }

    #[test]
    fn event_lengths_follow_rb_calculate_event_length() {
        let cases = [(0, 8), (1, 8), (4, 8), (5, 16), (8, 16), (12, 16), (13, 20)];
        for (payload, len) in cases
            .into_iter()
            .chain([(112, 116), (113, 124), (4072, 4080)])
        {
            assert_eq!(event_len(payload), len, "payload {payload}");
        }
    }

    #[test]
    fn encodes_the_kernel_page_byte_for_byte() {
        let page = kernel_page();
        let recs = decode_page(&page).unwrap();
        let ts: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(ts, [12381742266181, 12381742276747, 12381742281835]);
        // array[0] of the 200-byte marker is 224: event length 228 minus 4.
        assert_eq!(rd32(&page, 16 + 60 + 4), Some(224));
        let mut b = CpuBuffer::new(4096, 2);
        // The kernel reserves 16 + text + 2 bytes; the data areas are padded.
        for ((t, r), reserved) in recs.iter().zip([23, 26, 218]) {
            assert_eq!(
                b.write(*t, &page[r.start..r.start + reserved], true),
                WriteOutcome::Written
            );
        }
        assert_eq!(b.stats().bytes, 288);
        assert_eq!(b.iter().map(|r| r.ts).collect::<Vec<_>>(), ts);
        assert_eq!(b.read_page(4096, false).unwrap(), page);
        let s = b.stats();
        assert_eq!(
            (s.entries, s.read_events, s.bytes, s.entries_written()),
            (0, 3, 0, 0)
        );
        assert_eq!(s.oldest_event_ts, 12381742266181);
    }

    /// Observed: after the page above was read, "one" 10.8 s later, "two"
    /// 0.3 s later and "three" went on the same page behind time extends;
    /// the copied page carries the last read timestamp.
    #[test]
    fn writer_continues_on_read_page_with_time_extends() {
        let page = kernel_page();
        let mut b = CpuBuffer::new(4096, 2);
        for (t, r) in decode_page(&page).unwrap() {
            b.write(t, &page[r], true);
        }
        b.read_page(4096, false).unwrap();
        assert!(b.read_page(4096, false).is_none());
        for (t, text) in [
            (12392540142552, "one\n"),
            (12392840310875, "two\n"),
            (12392840324205, "three\n"),
        ] {
            let mut p = page[16 + 4..16 + 20].to_vec();
            p.extend_from_slice(text.as_bytes());
            p.push(0);
            b.write(t, &p, true);
        }
        let out = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&out, 0), 12381742281835);
        assert_eq!(u64_at(&out, 8), 100);
        let ext = 10797860717u64;
        assert_eq!(rd32(&out, 16), Some(30 | ((ext & TS_MASK) as u32) << 5));
        assert_eq!(rd32(&out, 20), Some((ext >> 27) as u32));
        assert_eq!(
            rd32(&out, 24),
            Some(6),
            "data event after an extend has delta 0"
        );
        assert_eq!(rd32(&out, 88), Some(6 | 13330 << 5));
        let ts: Vec<u64> = decode_page(&out).unwrap().iter().map(|r| r.0).collect();
        assert_eq!(ts, [12392540142552, 12392840310875, 12392840324205]);
    }

    #[test]
    fn first_event_of_a_page_needs_no_extend() {
        let mut b = CpuBuffer::new(4096, 4);
        b.write(5, &[1; 8], true);
        b.write(u64::from(u32::MAX) * 1000, &[2; 8], true);
        b.read_page(4096, false).unwrap();
        // Writer still on that page: the next event gets an extend.
        let t = u64::from(u32::MAX) * 3000;
        b.write(t, &[3; 8], true);
        let out = b.read_page(4096, false).unwrap();
        assert_eq!(rd32(&out, 16).map(|h| h & 31), Some(30));
        assert_eq!(decode_page(&out).unwrap()[0].0, t);
        let mut c = CpuBuffer::new(4096, 4);
        c.write(7, &[1; 8], true);
        let out = c.read_page(4096, false).unwrap();
        assert_eq!((u64_at(&out, 0), rd32(&out, 16)), (7, Some(3)));
    }

    /// Observed with overwrite off and buffer_size_kb=4 (2 pages).
    #[test]
    fn non_overwrite_drops_and_pads_like_the_kernel() {
        let mut b = CpuBuffer::new(4096, 2);
        let outcomes: Vec<_> = (0..61)
            .map(|i| b.write(1000 + i, &rec(i as u32), false))
            .collect();
        assert!(outcomes[..60].iter().all(|o| *o == WriteOutcome::Written));
        assert_eq!(outcomes[60], WriteOutcome::Dropped);
        let s = b.stats();
        assert_eq!(
            (s.entries, s.bytes, s.dropped_events, s.entries_written()),
            (60, 8160, 1, 60)
        );
        // Swapped page: commit is the data end before the padding.
        let p1 = b.read_page(4096, true).unwrap();
        assert_eq!(u64_at(&p1, 8), 0xf78);
        assert!(p1[16 + 3960..].iter().all(|&x| x == 0));
        for i in 0..5 {
            assert_eq!(b.write(2000 + i, &rec(200), false), WriteOutcome::Written);
        }
        let s = b.stats();
        assert_eq!((s.entries, s.bytes, s.read_events), (35, 4740, 30));
        // A later write found that page full, so it goes out with its padding.
        let p2 = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&p2, 8), 0xff0);
        assert_eq!(rd32(&p2, 16 + 3960), Some(29 | 1 << 5));
        assert_eq!(rd32(&p2, 16 + 3964), Some(116));
        assert!(
            b.read_page(4096, true).is_none(),
            "full refuses the writer's page"
        );
        let p3 = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&p3, 8), 660);
        assert_eq!(decode_page(&p3).unwrap().len(), 5);
    }

    /// Observed with overwrite on, 2 pages, 100 records of 132 bytes.
    #[test]
    fn overwrite_counts_overrun_and_flags_missed_events() {
        let mut b = CpuBuffer::new(4096, 2);
        for i in 0..100 {
            assert_eq!(
                b.write(1000 + i, &rec(i as u32), true),
                WriteOutcome::Written
            );
        }
        let s = b.stats();
        assert_eq!(
            (s.entries, s.overrun, s.bytes, s.entries_written()),
            (40, 60, 5400, 100)
        );
        let ids: Vec<u32> = b
            .iter()
            .map(|r| u32::from_le_bytes(r.data[..4].try_into().unwrap()))
            .collect();
        assert_eq!(ids, (60..100).collect::<Vec<_>>());
        assert_eq!(s.oldest_event_ts, 1060);
        let p1 = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&p1, 8), 0xffff_ffff_c000_0f78);
        assert_eq!(u64_at(&p1, 16 + 3960), 60);
        assert_eq!(decode_page(&p1).unwrap().len(), 30);
        let p2 = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&p2, 8), 0x528);
        let s = b.stats();
        assert_eq!(
            (s.entries, s.overrun, s.read_events, s.bytes),
            (0, 60, 40, 0)
        );
        assert_eq!((s.entries_written(), s.oldest_event_ts), (60, 1090));
    }

    #[test]
    fn pop_reports_lost_events_once() {
        let mut b = CpuBuffer::new(4096, 2);
        for i in 0..100 {
            b.write(i, &rec(i as u32), true);
        }
        assert_eq!(b.peek_ts(), Some(60));
        let p = b.pop().unwrap();
        assert_eq!(
            (p.ts, p.lost, &p.data[..4]),
            (60, 60, &60u32.to_le_bytes()[..])
        );
        assert_eq!(b.pop().unwrap().lost, 0);
        // The page now holds a partial read: copied, with the last read time.
        let page = b.read_page(4096, false).unwrap();
        assert_eq!((u64_at(&page, 0), u64_at(&page, 8)), (61, 28 * 132 + 120));
        assert_eq!(decode_page(&page).unwrap()[0].0, 62);
    }

    #[test]
    fn a_sources_losses_come_before_the_records_after_them() {
        let mut b = CpuBuffer::new(4096, 8);
        b.write(1, &rec(1), true);
        b.write(2, &rec(2), true);
        b.note_lost(5);
        b.write(3, &rec(3), true);
        let s = b.stats();
        assert_eq!((s.entries, s.overrun, s.entries_written()), (3, 5, 8));
        let lost: Vec<_> = std::iter::from_fn(|| b.pop())
            .map(|p| (p.ts, p.lost))
            .collect();
        assert_eq!(lost, [(1, 0), (2, 0), (3, 5)]);
    }

    #[test]
    fn partial_read_after_pop_and_short_reads() {
        let mut b = CpuBuffer::new(4096, 8);
        for (i, t) in [100u64, 110, 125, 133].into_iter().enumerate() {
            b.write(t, &[i as u8; 20], true);
        }
        assert_eq!(b.pop().unwrap().ts, 100);
        assert_eq!(b.iter().map(|r| r.ts).collect::<Vec<_>>(), [110, 125, 133]);
        // Too short for one 24-byte event: nothing consumed (read gives 0).
        assert!(b.read_page(16 + 23, false).is_none());
        let one = b.read_page(16 + 24, false).unwrap();
        assert_eq!(one.len(), 4096);
        assert_eq!((u64_at(&one, 0), u64_at(&one, 8)), (100, 24));
        assert_eq!(rd32(&one, 16), Some(5 | 10 << 5));
        let rest = b.read_page(4096, false).unwrap();
        assert_eq!(
            decode_page(&rest)
                .unwrap()
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            [125, 133]
        );
        assert_eq!(b.stats().read_events, 4);
        assert!(b.pop().is_none() && b.peek_ts().is_none() && b.read_page(4096, false).is_none());
    }

    #[test]
    fn max_payload_and_big_records() {
        let mut b = CpuBuffer::new(4096, 4);
        assert_eq!(b.max_payload(), 4072);
        assert_eq!(b.max_payload() - 18, 4054, "trace_marker's cap");
        assert_eq!(CpuBuffer::new(8192, 2).max_payload(), 8168);
        assert_eq!(b.write(1, &vec![1; 4073], true), WriteOutcome::TooLarge);
        b.write(1, &[0; 500], true);
        assert_eq!(b.write(2, &vec![7; 4072], true), WriteOutcome::Written);
        let s = b.stats();
        assert_eq!((s.entries, s.bytes), (2, 4080 * 2));
        let recs: Vec<_> = b.iter().map(|r| (r.ts, r.data.len())).collect();
        assert_eq!(recs, [(1, 500), (2, 4072)]);
    }

    #[test]
    fn null_padding_when_fewer_than_8_bytes_remain() {
        let mut b = CpuBuffer::new(4096, 4);
        // 4076 = 4072 + 4 bytes: one record of 4068 payload (4076 bytes).
        b.write(1, &vec![1; 4068], true);
        b.write(2, &[2; 8], true);
        assert_eq!(b.stats().bytes, 4076 + 16, "no padding bytes counted");
        let p = b.read_page(4096, false).unwrap();
        assert_eq!(u64_at(&p, 8), 4076);
        assert_eq!(decode_page(&p).unwrap().len(), 1);
        assert_eq!(b.pop().unwrap().ts, 2);
    }

    /// Observed: grow keeps data; 140 records on 5 pages shrunk to 2 pages
    /// leave 50 with overrun 150 and bytes 6720.
    #[test]
    fn resize_keeps_newest_pages() {
        let mut b = CpuBuffer::new(4096, 2);
        for i in 0..100 {
            b.write(i, &rec(i as u32), true);
        }
        b.resize(6);
        assert_eq!(b.stats().entries, 40);
        for i in 100..200 {
            b.write(i, &rec(i as u32), true);
        }
        assert_eq!(b.stats().entries, 140);
        b.resize(1);
        assert_eq!(b.nr_pages(), 2);
        let s = b.stats();
        assert_eq!((s.entries, s.overrun, s.bytes), (50, 150, 6720));
        b.clear();
        assert_eq!(b.stats(), CpuStats::default());
        b.write(5, &[1; 8], true);
        b.set_subbuf_size(8192, 2);
        assert_eq!(
            (b.iter().count(), b.stats().entries, b.subbuf_bytes()),
            (0, 1, 8192)
        );
    }

    #[test]
    fn stats_text_matches_the_kernel() {
        let s = CpuStats {
            entries: 3,
            bytes: 288,
            oldest_event_ts: 12381742266181,
            ..Default::default()
        };
        assert_eq!(
            format_stats(&s, 12381742298499, true),
            "entries: 3\noverrun: 0\ncommit overrun: 0\nbytes: 288\noldest event ts: 12381.742266\n\
             now ts: 12381.742298\ndropped events: 0\nread events: 0\n"
        );
        let z = format_stats(&CpuStats::default(), 999_999_500, true);
        assert!(z.contains("oldest event ts:     0.000000\nnow ts:     1.000000\n"));
        let c = format_stats(
            &CpuStats {
                oldest_event_ts: 71,
                ..Default::default()
            },
            73,
            false,
        );
        assert!(c.contains("oldest event ts: 71\nnow ts: 73\n"));
    }

    #[test]
    fn pages_for_kb_agrees_with_control() {
        for sub in [4096usize, 8192, 65536] {
            for kb in [1u64, 4, 7, 8, 16, 64, 67, 100, 1000, 1408, 4096] {
                let pages = pages_for_kb(kb, sub);
                let want =
                    crate::control::values::round_buffer_size_kb_for_subbuf(kb, sub as u64 / 1024);
                assert_eq!(kb_for_pages(pages, sub), want, "kb {kb} subbuf {sub}");
            }
        }
        assert_eq!(pages_for_kb(4, 4096), 2);
        assert_eq!(pages_for_kb(1410, 4096), 354);
    }

    #[test]
    fn decode_rejects_bad_pages() {
        assert_eq!(decode_page(&[0; 8]), Err(DecodeError::ShortPage));
        let mut p = vec![0u8; 64];
        p[8] = 200;
        assert_eq!(decode_page(&p), Err(DecodeError::BadCommit(200)));
        p[8] = 8;
        p[16] = 0; // type_len 0 needs array[0]
        p[20..24].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(decode_page(&p), Err(DecodeError::Truncated(0)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write { gap: u64, len: usize },
        Pop,
        ReadPage { len: usize, full: bool },
        Resize(usize),
        Overwrite(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (prop_oneof![0..200u64, 0..1u64 << 40], prop_oneof![8..130usize, 8..=4072usize])
                .prop_map(|(gap, len)| Op::Write { gap, len }),
            2 => Just(Op::Pop),
            2 => (prop_oneof![0..200usize, 0..5000usize], any::<bool>())
                .prop_map(|(len, full)| Op::ReadPage { len, full }),
            1 => (0..6usize).prop_map(Op::Resize),
            1 => any::<bool>().prop_map(Op::Overwrite),
        ]
    }

    proptest! {
        #[test]
        fn every_record_is_read_once_or_overrun(ops in prop::collection::vec(op(), 1..300)) {
            let mut b = CpuBuffer::new(4096, 2);
            let (mut now, mut overwrite, mut written) = (0u64, true, Vec::new());
            let mut seen = Vec::new();
            let check = |seen: &mut Vec<(u64, u64)>, ts: u64, data: &[u8]| {
                seen.push((u64::from_le_bytes(data[..8].try_into().unwrap()), ts));
            };
            for op in ops {
                match op {
                    Op::Write { gap, len } => {
                        now += gap;
                        let id = written.len() as u64;
                        let mut p = vec![0xab; len];
                        p[..8].copy_from_slice(&id.to_le_bytes());
                        if b.write(now, &p, overwrite) == WriteOutcome::Written {
                            written.push(now);
                        }
                    }
                    Op::Pop => {
                        if let Some(p) = b.pop() { check(&mut seen, p.ts, &p.data) }
                    }
                    Op::ReadPage { len, full } => {
                        if let Some(page) = b.read_page(len, full) {
                            prop_assert_eq!(page.len(), 4096);
                            for (ts, r) in decode_page(&page).unwrap() { check(&mut seen, ts, &page[r]) }
                        }
                    }
                    Op::Resize(n) => b.resize(n),
                    Op::Overwrite(o) => overwrite = o,
                }
                let s = b.stats();
                prop_assert_eq!(s.entries as usize, b.iter().count());
                prop_assert_eq!(s.entries + s.overrun + s.read_events, written.len() as u64);
            }
            while let Some(p) = b.pop() { check(&mut seen, p.ts, &p.data) }
            let s = b.stats();
            prop_assert_eq!((s.entries, s.bytes), (0, 0));
            prop_assert_eq!(seen.len() as u64 + s.overrun, written.len() as u64);
            prop_assert_eq!(s.read_events as usize, seen.len());
            for w in seen.windows(2) { prop_assert!(w[0].0 < w[1].0) }
            for (id, ts) in seen { prop_assert_eq!(written[id as usize], ts) }
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_page(&bytes);
        }
    }
}
