//! Reading inputs: one strict reader for data files ([`file`]) and the one cell parser
//! ([`cell`]) that every table of a pipeline goes through (sources, covariates, national
//! and population tables, surveys), so the same text means the same value everywhere.

pub mod cell;
pub mod file;

pub use file::{BadCell, CellProblems, RawFile, ReadOptions, read_file};
