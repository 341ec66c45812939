//! The two things a user asks for — `run` and `validate` — as sequences of stages:
//! config → plan → ingest → normalise → aggregate → write. Each stage is timed; the
//! manifest records what was read, what was decided and how long it took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::aggregate;
use crate::config::{self, ConfigError};
use crate::diagnostic::{Location, Problem, Problems};
use crate::ingest::{self, IngestError, InputSummary};
use crate::normalise::{self, NormaliseError, ResolvedGoalposts};
use crate::plan::{self, Level, Mean, Plan, TERRITORY_ID, YEAR};
use crate::progress::Progress;
use crate::write::{self, Output, WriteError};

/// Everything that can stop a run, by stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Plan(Problems),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Normalise(#[from] NormaliseError),
    #[error("{0}")]
    Compute(Problems),
    #[error("computing scores: {0}")]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl Error {
    /// 2 for a pipeline file that cannot be used, 1 for data and run errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Plan(_) => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    /// Defaults to `outputs/<pipeline id>/`.
    pub output_dir: Option<PathBuf>,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    pub output_dir: PathBuf,
    pub manifest: Manifest,
}

/// The computed frame: keys, raw and rescaled indicators, parents, counts and ranks.
#[derive(Debug)]
pub struct Computed {
    pub frame: DataFrame,
    pub goalposts: Vec<ResolvedGoalposts>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: Tool,
    pub pipeline: FileDigest,
    pub pipeline_id: String,
    pub inputs: Vec<InputDigest>,
    pub counts: Counts,
    pub goalposts: Vec<ResolvedGoalposts>,
    pub missing_data: MissingData,
    pub warnings: Vec<String>,
    pub timings_ms: BTreeMap<String, u128>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct InputDigest {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub rows: usize,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    /// Territory (× year) rows scored.
    pub rows: usize,
    pub territories: usize,
    pub years: Vec<i64>,
    pub indicators: usize,
    pub components: usize,
    pub dimensions: usize,
}

#[derive(Debug, Serialize)]
pub struct MissingData {
    /// Indicator cells with no value.
    pub missing_indicator_values: usize,
    /// Per parent node: its rule and how many scores it left missing.
    pub rules: Vec<MissingRule>,
    /// Every missing score with the counts that decided it.
    pub details: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MissingRule {
    pub node_id: String,
    pub level: &'static str,
    pub aggregation: String,
    pub children: usize,
    pub required_present: usize,
    pub missing_scores: usize,
}

/// Loads and resolves a pipeline file.
pub fn load_plan(path: &Path) -> Result<Plan, Error> {
    let loaded = config::load(path)?;
    plan::resolve(&loaded).map_err(Error::Plan)
}

/// Checks a pipeline and its data completely without writing anything; returns every problem.
pub fn validate(path: &Path) -> Result<(Plan, usize), Error> {
    let plan = load_plan(path)?;
    let table = ingest::load(&plan)?;
    let rows = table.frame.height();
    compute(&plan, table.frame)?;
    Ok((plan, rows))
}

/// Transforms, rescales and aggregates the ingested frame, with ranks; checks that no score
/// came out as NaN or infinite.
pub fn compute(plan: &Plan, frame: DataFrame) -> Result<Computed, Error> {
    let lf = frame.lazy();
    let goalposts = normalise::goalposts(&lf, plan)?;
    let lf = lf.with_columns(normalise::rescale(plan, &goalposts));
    let lf = aggregate::aggregate(lf, plan, Level::Indicator);
    let frame = lf.with_columns(aggregate::ranks(plan)).collect()?;
    check_finite(plan, &frame)?;
    let warnings = normalise::out_of_range(&frame, plan)
        .iter()
        .map(|(id, below, above)| {
            format!(
                "indicator \"{id}\": {below} rescaled value(s) below 0 (worse than its dystopia) and \
                 {above} above 100 (better than its utopia); set [normalisation] clip = true to clip them"
            )
        })
        .collect();
    Ok(Computed {
        frame,
        goalposts,
        warnings,
    })
}

/// NaN or ±∞ in any score means a mean was undefined for its inputs (e.g. a geometric mean
/// of a negative rescaled value): report the first case, never write it.
fn check_finite(plan: &Plan, frame: &DataFrame) -> Result<(), Error> {
    let mut problems = Vec::new();
    for node in &plan.nodes {
        let Ok(values) = frame.column(&node.id).and_then(|c| c.f64().cloned()) else {
            continue;
        };
        let Some(row) = values
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        else {
            continue;
        };
        let at = |name: &str| {
            frame
                .column(name)
                .ok()
                .and_then(|c| c.get(row).ok())
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        let mut territory = at(TERRITORY_ID).trim_matches('"').to_owned();
        if plan.has_years() {
            territory = format!("{territory}, {}", at(YEAR));
        }
        let children: Vec<String> = node
            .children
            .iter()
            .map(|&i| format!("{} = {}", plan.nodes[i].id, at(&plan.nodes[i].id)))
            .collect();
        let method = node
            .rule
            .as_ref()
            .map_or("rescaling".into(), |r| describe_mean(r.mean));
        problems.push(
            Problem::new(
                Location::Nowhere,
                format!(
                    "{} \"{}\" is not a finite number for territory {territory}: {method} of [{}]",
                    node.level.as_str(),
                    node.id,
                    children.join(", ")
                ),
            )
            .with_help(
                "geometric, harmonic and power means need positive inputs; rescaled values below \
                 the dystopia are negative: set [normalisation] clip = true or use an arithmetic mean",
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Compute(Problems(problems)))
    }
}

fn describe_mean(mean: Mean) -> String {
    match mean {
        Mean::Arithmetic => "arithmetic mean".into(),
        Mean::Geometric => "geometric mean".into(),
        Mean::Harmonic => "harmonic mean".into(),
        Mean::Power(p) => format!("power mean (p = {p})"),
    }
}

/// Runs a pipeline end to end and writes its outputs.
pub fn run(options: &RunOptions, progress: &mut Progress) -> Result<RunSummary, Error> {
    progress.stage("plan", options.pipeline.display().to_string());
    let plan = load_plan(&options.pipeline)?;

    progress.stage("ingest", format!("{} source(s)", plan.sources.len()));
    let table = ingest::load(&plan)?;

    progress.stage(
        "compute",
        format!("{} rows × {} nodes", table.frame.height(), plan.nodes.len()),
    );
    let computed = compute(&plan, table.frame)?;

    progress.stage("write", "scores");
    let output_dir = options
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("outputs").join(&plan.id));
    let long = write::long_scores(&plan, &computed.frame)?;
    let wide = write::wide_scores(&plan, &computed.frame)?;
    let missing = write::missing_scores(&plan, &computed.frame)?;
    let mut manifest = manifest(&plan, &table.inputs, &computed, &missing)?;
    let outputs = vec![
        Output::Parquet("scores.parquet", long.clone()),
        Output::Csv("scores.csv", long),
        Output::Csv("scores_wide.csv", wide),
        Output::Csv("missing.csv", missing),
    ];
    manifest.outputs = outputs
        .iter()
        .map(|o| match o {
            Output::Csv(n, _) | Output::Parquet(n, _) | Output::Text(n, _) => n.to_string(),
        })
        .chain(["manifest.json".to_string()])
        .collect();

    // The manifest is written last, once the data files are, so its timings include writing.
    write::commit(&output_dir, outputs, || {
        let timings = std::mem::replace(progress, Progress::hidden()).finish();
        for (stage, d) in &timings {
            manifest.timings_ms.insert(stage.to_string(), d.as_millis());
        }
        let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n";
        Output::Text("manifest.json", json)
    })?;
    Ok(RunSummary {
        output_dir,
        manifest,
    })
}

fn manifest(
    plan: &Plan,
    inputs: &[InputSummary],
    computed: &Computed,
    missing: &DataFrame,
) -> Result<Manifest, Error> {
    let frame = &computed.frame;
    let territories = frame.column(TERRITORY_ID)?.n_unique()?;
    let mut years: Vec<i64> = frame.column(YEAR)?.i64()?.iter().flatten().collect();
    years.sort_unstable();
    years.dedup();
    let missing_indicator_values = plan
        .indicators()
        .map(|(n, _)| frame.column(&n.id).map(|c| c.null_count()).unwrap_or(0))
        .sum();
    let missing_by_node: BTreeMap<String, usize> = {
        let mut m = BTreeMap::new();
        if let Ok(ids) = missing.column("node_id").and_then(|c| c.str().cloned()) {
            for id in ids.iter().flatten() {
                *m.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        m
    };
    let rules = write::LEVEL_ORDER
        .iter()
        .flat_map(|&l| plan.nodes_at(l))
        .filter_map(|n| {
            let rule = n.rule.as_ref()?;
            Some(MissingRule {
                node_id: n.id.clone(),
                level: n.level.as_str(),
                aggregation: describe_mean(rule.mean),
                children: n.children.len(),
                required_present: aggregate::required_children(rule.min_share, n.children.len()),
                missing_scores: missing_by_node.get(&n.id).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(Manifest {
        tool: Tool {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        },
        pipeline: FileDigest {
            path: plan.pipeline_path.display().to_string(),
            sha256: plan.pipeline_sha256.clone(),
        },
        pipeline_id: plan.id.clone(),
        inputs: inputs
            .iter()
            .map(|i| InputDigest {
                path: i.path.display().to_string(),
                sha256: i.sha256.clone(),
                bytes: i.bytes,
                rows: i.rows,
            })
            .collect(),
        counts: Counts {
            rows: frame.height(),
            territories,
            years,
            indicators: plan.nodes_at(Level::Indicator).count(),
            components: plan.nodes_at(Level::Component).count(),
            dimensions: plan.nodes_at(Level::Dimension).count(),
        },
        goalposts: computed.goalposts.clone(),
        missing_data: MissingData {
            missing_indicator_values,
            rules,
            details: "missing.csv",
        },
        warnings: computed.warnings.clone(),
        timings_ms: BTreeMap::new(),
        outputs: Vec::new(),
    })
}
