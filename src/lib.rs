//! bienvivre: territorial composite indices (Social-Progress style) computed with polars.
//!
//! The data flows through one module per stage: [`config`] (the TOML as written) →
//! [`plan`] (checked, resolved node table) → [`ingest`] (sources → one frame) →
//! [`transform`] and [`normalise`] (raw → 0–100) → [`aggregate`] (parents and ranks) →
//! [`write`] (outputs, atomically). [`run`] strings the stages together; [`synth`] makes
//! the seeded synthetic demo and benchmark data.

pub mod aggregate;
pub mod analyse;
pub mod anchor;
pub mod compute;
pub mod config;
pub mod diagnostic;
pub mod files;
pub mod impute;
pub mod load;
pub mod manifest;
pub mod normalise;
pub mod plan;
pub mod progress;
pub mod relational;
pub mod render;
pub mod run;
pub mod stats;
pub mod synth;
pub mod transform;
pub mod weight;
pub mod write;
