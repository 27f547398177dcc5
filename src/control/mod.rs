//! What users write: the pure languages of the control files — values (enable, numbers,
//! sizes, words), `tracing_cpumask`, `set_event` and pid lists, filters, triggers, dynamic
//! events, histogram triggers. Parsers and compiled programs only: no registry, no trace array, no I/O.
pub mod cpumask;
pub mod dynevent;
pub mod filter;
pub mod hist;
pub mod set_event;
pub mod trigger;
pub mod values;
