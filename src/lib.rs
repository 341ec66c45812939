//! bienvivre: territorial composite indices (Social-Progress style) and relational
//! capability indicators, computed with polars.
//!
//! The data flows through one module per stage, and a module only imports the stages
//! before it:
//! [`config`] (the TOML as written) → [`plan`] (checked, resolved node table) →
//! [`fetch`] (publishers' sources downloaded or revalidated through the cache, parsed by
//! [`formats`] before they are cached) →
//! [`load`] (every input read once: sources, tables, surveys, maps; the one cell parser;
//! publishers' datasets mapped onto the pipeline; roll-ups) →
//! [`transform`] (denomination, caps, logs, outlier treatment) and [`impute`] →
//! [`normalise`] (raw → 0–100) → [`weight`] (explicit, equal, PCA) → [`aggregate`]
//! (parents, ranks, the checks that no score is undefined) → [`anchor`] (regional scores
//! onto national ones) → [`compute`] (all of it, pure: no file, no terminal) →
//! [`analyse`] (coherence, scorecards, uncertainty) and [`relational`] (survey
//! microdata) → [`manifest`] → [`render`] (the chart pack) → [`write`](mod@write) (outputs,
//! atomically, only where ours) → [`diff`] (what moved between two written runs) and
//! [`compare`] (a few territories side by side in one) →
//! [`run`] (the commands).
//!
//! Beside the flow: [`diagnostic`] (problems and where they are), [`files`] (reading
//! regular files only, digests), [`stats`] (quantiles, hashes, the seeded generator),
//! [`clock`] (UTC times), [`progress`] (the terminal's progress display, stage timings
//! and JSON log events) and [`synth`] (the
//! seeded synthetic test and benchmark data).

pub mod aggregate;
pub mod analyse;
pub mod anchor;
pub mod clock;
pub mod compare;
pub mod compute;
pub mod config;
pub mod diagnostic;
pub mod diff;
pub mod fetch;
pub mod files;
pub mod formats;
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
