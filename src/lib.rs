pub mod catalog;
pub mod control;
