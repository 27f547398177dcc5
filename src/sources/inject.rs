//! An event's `inject` file: `field=value …` (parsed by the record layout, as the kernel's
//! `trace_events_inject.c` does) becomes one record of that event.

use crate::events::registry::{Event, Registry};
use crate::trace::commit::{Source, Writer, commit, common};
use crate::trace::state::TraceArray;

/// A write to an event's `inject` file: `field=value …` becomes one record of that event.
pub fn inject(
    reg: &Registry,
    ta: &TraceArray,
    ev: &Event,
    text: &[u8],
    w: Writer,
) -> Result<usize, i32> {
    let rec = ev.layout().record.inject(&common(ev, w), text)?;
    commit(reg, ta, ev, &rec, w, None, Source::Inject);
    Ok(text.len())
}
