//! Integration tests: the CLI as users run it, the reference datasets in ../shared/data, and
//! the error cases. One binary, shared helpers in `helpers`.

mod analysis;
mod asem;
mod catalogue;
mod charts;
mod cli;
mod demo;
mod errors;
mod euspi;
mod exact;
mod fuzz;
mod helpers;
mod kill;
mod layouts;
mod nightly;
mod outputs;
mod rci;
mod reading;
mod replay;
mod rollup;
mod sources;
mod xlsx;
