//! What users write: the pure languages of the control files — values (enable, numbers,
//! sizes, words, cpumasks, `set_event`, pid lists), filters, triggers, dynamic events.
//! Parsers and compiled programs only: no registry, no trace array, no I/O.
pub mod dynevent;
pub mod filter;
pub mod trigger;
pub mod values;
