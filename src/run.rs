//! The two things a user asks for — `run` and `validate` — as sequences of stages:
//! config → plan → (ingest → normalise → aggregate for an index) and/or (relational for
//! survey microdata) → write. Each stage is timed; the manifest records what was read,
//! what was decided and how long it took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::aggregate;
use crate::analyse;
use crate::config::{self, ConfigError};
use crate::config::{ScreenOn, WeightMethod};
use crate::diagnostic::{Location, Problem, Problems};
use crate::impute;
use crate::ingest::{self, IngestError};
use crate::normalise::{self, NormaliseError, ResolvedNormalisation};
use crate::plan::{
    self, Goalposts, Level, Mean, Normalisation, Pipeline, Plan, TERRITORY_ID, TERRITORY_NAME, YEAR,
};
use crate::progress::Progress;
use crate::relational::{self, RciSummary, RelationalError};
use crate::render::{self, RenderError, data::IndexResults, data::RunResults};
use crate::transform::{self, treat::TreatmentRow};
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
    #[error(transparent)]
    Relational(#[from] RelationalError),
    #[error("{0}")]
    Compute(Problems),
    #[error("computing scores: {0}")]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Render(#[from] RenderError),
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
    pub normalisation: Vec<ResolvedNormalisation>,
    pub preparation: PreparationReport,
    /// PCA weights, when a level is weighted by PCA.
    pub weights: Vec<PcaWeights>,
    /// Anchoring shifts, when the pipeline anchors.
    pub anchoring: Vec<crate::anchor::Shift>,
    pub warnings: Vec<String>,
}

/// What happened to the data between reading and normalising.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PreparationReport {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denominated: Vec<Denominated>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screening: Option<impute::ScreeningReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imputation: Option<Vec<impute::ImputedCount>>,
    /// One row per indicator; also written to treatment.csv.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treatment: Option<Vec<TreatmentRow>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Denominated {
    pub indicator: String,
    pub denominator: String,
    pub scale: f64,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: Tool,
    pub pipeline: FileDigest,
    pub pipeline_id: String,
    pub inputs: Vec<InputDigest>,
    /// The composite index part, when the pipeline has one.
    pub index: Option<IndexManifest>,
    /// The relational capability part, when the pipeline has one.
    pub rci: Option<RciSummary>,
    /// The chart pack, when the pipeline has a [charts] section.
    pub charts: Option<ChartsManifest>,
    /// Coherence and scorecard, when the pipeline has an [analysis] section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisManifest>,
    pub warnings: Vec<String>,
    pub timings_ms: BTreeMap<String, u128>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AnchoringManifest {
    pub level: &'static str,
    pub national: String,
    pub groups: usize,
    pub largest_shift: f64,
    pub file: &'static str,
}

#[derive(Debug, Default, Serialize)]
pub struct AnalysisManifest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coherence: Option<analyse::CoherenceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<ScorecardManifest>,
}

#[derive(Debug, Serialize)]
pub struct ScorecardManifest {
    pub peers: usize,
    pub covariate: String,
    pub files: [&'static str; 2],
    /// Territories with no covariate value, hence no peers.
    pub without_covariate: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ChartsManifest {
    pub directory: &'static str,
    pub figures: usize,
    /// Every file of the pack (each figure as SVG and PNG, the HTML pages).
    pub files: usize,
}

#[derive(Debug, Serialize)]
pub struct IndexManifest {
    pub counts: Counts,
    /// Denomination, screening, imputation and outlier treatment, as configured.
    pub preparation: PreparationReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pca_weights: Vec<PcaWeights>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchoring: Option<AnchoringManifest>,
    pub normalisation: Vec<ResolvedNormalisation>,
    pub missing_data: MissingData,
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
pub fn load_pipeline(path: &Path) -> Result<Pipeline, Error> {
    let loaded = config::load(path)?;
    plan::resolve(&loaded).map_err(Error::Plan)
}

/// Loads a pipeline that has a composite index, and returns the index plan.
pub fn load_plan(path: &Path) -> Result<Plan, Error> {
    load_pipeline(path)?.index.ok_or_else(|| {
        Error::Plan(Problems(vec![Problem::new(
            Location::Config {
                file: path.to_path_buf(),
                line: 1,
                column: 1,
            },
            "the pipeline has no [index]",
        )]))
    })
}

/// What `validate` found: the pipeline and the rows it would score.
#[derive(Debug)]
pub struct Validated {
    pub pipeline: Pipeline,
    pub territory_rows: usize,
    pub respondents: usize,
    /// Everything `run` would warn about.
    pub warnings: Vec<String>,
}

/// Checks a pipeline and its data completely without writing anything: the same loading,
/// computing and shaping of outputs as `run` (so whatever `run` would reject, this rejects),
/// and the output directory `run` would write to. When the pipeline file has errors, the
/// data files it names are still read, so their problems are listed in the same pass.
pub fn validate(path: &Path, output_dir: Option<PathBuf>) -> Result<Validated, Error> {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => {
            let mut problems = match e {
                ConfigError::Parse(p) => vec![p],
                ConfigError::Values(p) => p.0,
                read @ ConfigError::Read { .. } => return Err(read.into()),
            };
            // The data files it names are still read, leniently.
            let text = crate::files::read_regular(path)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            for file in plan::files_of_unparsed(path, &text) {
                if let Err(p) = crate::load::read_file(&file, &Default::default()) {
                    problems.push(p);
                }
            }
            return Err(Error::Plan(Problems(problems)));
        }
    };
    let (pipeline, problems) = plan::resolve_all(&loaded);
    if !problems.is_empty() {
        let mut all = problems;
        all.extend(file_problems(&pipeline));
        return Err(Error::Plan(Problems(all)));
    }
    let dir = output_dir.unwrap_or_else(|| Path::new("outputs").join(&pipeline.id));
    target_of(&pipeline, dir, "run").check()?;
    let built = build(&pipeline, &mut Progress::hidden())?;
    let m = built.manifest;
    Ok(Validated {
        territory_rows: m.index.as_ref().map_or(0, |i| i.counts.rows),
        respondents: m.rci.as_ref().map_or(0, |r| r.respondents),
        warnings: m.warnings,
        pipeline,
    })
}

/// Problems of the data files a pipeline names, read on their own.
fn file_problems(pipeline: &Pipeline) -> Vec<Problem> {
    let mut out = Vec::new();
    for file in pipeline.files() {
        if let Err(p) = crate::load::read_file(file, &Default::default()) {
            out.push(p);
        }
    }
    out
}

/// Transforms, rescales and aggregates the ingested frame, with ranks; checks that no score
/// came out as NaN or infinite.
pub fn compute(plan: &Plan, frame: DataFrame) -> Result<Computed, Error> {
    let (frame, preparation, mut warnings) = prepare(plan, frame)?;
    let lf = frame.lazy();
    let normalisation = normalise::resolve(&lf, plan)?;
    let lf = lf.with_columns(normalise::rescale(plan, &normalisation));
    let (lf, weights, weighted) = if plan.weighting.contains(&WeightMethod::Pca) {
        let (lf, reports, weighted) = pca_aggregate(plan, lf)?;
        (lf, reports, Some(weighted))
    } else {
        (
            aggregate::aggregate(lf, plan, Level::Indicator),
            Vec::new(),
            None,
        )
    };
    // The plan with the weights actually used.
    let used = weighted.as_ref().unwrap_or(plan);
    let (lf, anchoring) = match &plan.anchoring {
        Some(a) => {
            let (frame, shifts, w) = crate::anchor::anchor(used, a, lf.collect()?)?;
            warnings.extend(w);
            let mut lf = frame.lazy();
            for level in [Level::Dimension, Level::Index] {
                if level > a.level {
                    lf = aggregate::aggregate_level(lf, used, level);
                }
            }
            (lf, shifts)
        }
        None => (lf, Vec::new()),
    };
    let frame = lf.with_columns(aggregate::ranks(plan)).collect()?;
    check_positive_inputs(plan, &frame)?;
    check_finite(plan, &frame)?;
    warnings.extend(normalise::out_of_range(&frame, plan).iter().map(|(id, below, above)| {
        format!(
            "indicator \"{id}\": {below} rescaled value(s) below 0 (worse than its dystopia) and \
             {above} above 100 (better than its utopia); set [normalisation] clip = true to clip them"
        )
    }));
    for w in &weights {
        for (child, loading) in w.children.iter().zip(&w.loadings) {
            if *loading < 0.0 {
                warnings.push(format!(
                    "PCA weights of \"{}\": \"{child}\" loads negatively ({loading:.3}) on the first component, against its siblings; it weighs 0",
                    w.parent
                ));
            }
        }
    }
    Ok(Computed {
        frame,
        normalisation,
        preparation,
        weights,
        anchoring,
        warnings,
    })
}

/// PCA weights of one parent's children, as used.
#[derive(Debug, Clone, Serialize)]
pub struct PcaWeights {
    pub parent: String,
    pub children: Vec<String>,
    pub loadings: Vec<f64>,
    pub weights: Vec<f64>,
    pub variance_share: f64,
    pub complete_cases: usize,
}

/// Aggregates level by level, giving the children of each PCA-weighted level the weights
/// of their first principal component (over all rows) before their parents are computed.
fn pca_aggregate(plan: &Plan, lf: LazyFrame) -> Result<(LazyFrame, Vec<PcaWeights>, Plan), Error> {
    let mut plan = plan.clone();
    let mut frame = lf.collect()?;
    let mut reports = Vec::new();
    let mut problems = Vec::new();
    for (k, level) in [Level::Component, Level::Dimension, Level::Index]
        .into_iter()
        .enumerate()
    {
        if plan.weighting[k] == WeightMethod::Pca {
            let parents: Vec<usize> = (0..plan.nodes.len())
                .filter(|&i| plan.nodes[i].level == level)
                .collect();
            for p in parents {
                let children = plan.nodes[p].children.clone();
                let columns: Vec<Vec<Option<f64>>> = children
                    .iter()
                    .map(|&c| Ok(frame.column(&plan.nodes[c].id)?.f64()?.iter().collect()))
                    .collect::<PolarsResult<_>>()?;
                let parent = plan.nodes[p].id.clone();
                match crate::weight::pca(&columns) {
                    Ok(pca) => {
                        for (&c, &w) in children.iter().zip(&pca.weights) {
                            plan.nodes[c].weight = w;
                        }
                        reports.push(PcaWeights {
                            parent,
                            children: children.iter().map(|&c| plan.nodes[c].id.clone()).collect(),
                            loadings: pca.loadings,
                            weights: pca.weights,
                            variance_share: pca.variance_share,
                            complete_cases: pca.n,
                        });
                    }
                    Err(e) => problems.push(Problem::new(
                        Location::Nowhere,
                        match e {
                            crate::weight::PcaError::TooFewCases { n, k } => format!(
                                "PCA weights of \"{parent}\": {n} territories have all its {k} children, too few for a principal component"
                            ),
                            crate::weight::PcaError::Constant { variable } => format!(
                                "PCA weights of \"{parent}\": \"{}\" does not vary over the complete cases",
                                plan.nodes[children[variable]].id
                            ),
                        },
                    )),
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Compute(Problems(problems)));
        }
        frame = aggregate::aggregate_level(frame.lazy(), &plan, level).collect()?;
    }
    Ok((frame.lazy(), reports, plan))
}

/// anchoring.csv: one row per group (× year) and anchored node.
fn anchoring_table(shifts: &[crate::anchor::Shift]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        shifts.len(),
        vec![
            Column::new(
                "group".into(),
                shifts.iter().map(|s| s.group.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                YEAR.into(),
                shifts.iter().map(|s| s.year).collect::<Vec<_>>(),
            ),
            Column::new(
                "node_id".into(),
                shifts
                    .iter()
                    .map(|s| s.node_id.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "national".into(),
                shifts.iter().map(|s| s.national).collect::<Vec<_>>(),
            ),
            Column::new(
                "regional_mean".into(),
                shifts.iter().map(|s| s.regional_mean).collect::<Vec<_>>(),
            ),
            Column::new(
                "shift".into(),
                shifts.iter().map(|s| s.shift).collect::<Vec<_>>(),
            ),
            Column::new(
                "territories".into(),
                shifts
                    .iter()
                    .map(|s| s.territories as u32)
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

/// treatment.csv: one row per indicator considered for outlier treatment.
fn treatment_table(rows: &[TreatmentRow]) -> PolarsResult<DataFrame> {
    let f = |g: fn(&TreatmentRow) -> Option<f64>| rows.iter().map(g).collect::<Vec<_>>();
    let b = |g: fn(&TreatmentRow) -> bool| rows.iter().map(g).collect::<Vec<_>>();
    let u = |g: fn(&TreatmentRow) -> usize| rows.iter().map(|r| g(r) as u32).collect::<Vec<_>>();
    DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "indicator".into(),
                rows.iter()
                    .map(|r| r.indicator.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new("n".into(), u(|r| r.n)),
            Column::new("skewness_before".into(), f(|r| r.skewness_before)),
            Column::new("kurtosis_before".into(), f(|r| r.kurtosis_before)),
            Column::new("passed_before".into(), b(|r| r.passed_before)),
            Column::new("winsorised_high".into(), u(|r| r.winsorised_high)),
            Column::new("winsorised_low".into(), u(|r| r.winsorised_low)),
            Column::new("log_transformed".into(), b(|r| r.log_transformed)),
            Column::new("skewness_after".into(), f(|r| r.skewness_after)),
            Column::new("kurtosis_after".into(), f(|r| r.kurtosis_after)),
            Column::new("passed_after".into(), b(|r| r.passed_after)),
            Column::new(
                "note".into(),
                rows.iter().map(|r| r.note.clone()).collect::<Vec<_>>(),
            ),
        ],
    )
}

/// Denomination, screening (before or after imputation), imputation and outlier
/// treatment, each only when the pipeline asks for it.
fn prepare(
    plan: &Plan,
    frame: DataFrame,
) -> Result<(DataFrame, PreparationReport, Vec<String>), Error> {
    let mut report = PreparationReport::default();
    let mut warnings = Vec::new();
    let mut frame = transform::denominate(plan, frame).map_err(Error::Compute)?;
    report.denominated = plan
        .indicators()
        .filter_map(|(n, s)| {
            s.denominator.as_ref().map(|(d, scale)| Denominated {
                indicator: n.id.clone(),
                denominator: d.clone(),
                scale: *scale,
            })
        })
        .collect();
    let screening = |frame: DataFrame,
                     on: ScreenOn,
                     report: &mut PreparationReport,
                     warnings: &mut Vec<String>| {
        let Some(s) = plan.prep.screening.as_ref().filter(|s| s.on == on) else {
            return Ok::<_, Error>(frame);
        };
        let (kept, r) = impute::screen(plan, s, frame)?;
        if !r.dropped.is_empty() {
            let shown: Vec<String> = r
                .dropped
                .iter()
                .map(|d| match d.year {
                    Some(y) => format!("{} {y} ({:.0}%)", d.territory_id, 100.0 * d.availability),
                    None => format!("{} ({:.0}%)", d.territory_id, 100.0 * d.availability),
                })
                .collect();
            warnings.push(format!(
                "screening dropped {} row(s) below {:.0}% of indicators present or excluded: {}",
                r.dropped.len(),
                100.0 * s.min_availability,
                crate::diagnostic::list(&shown, 20)
            ));
        }
        if !r.unknown_ids.is_empty() {
            warnings.push(format!(
                "screening: include/exclude name territories that are not in the data: {}",
                crate::diagnostic::list(&r.unknown_ids, 20)
            ));
        }
        if kept.height() == 0 {
            let excluded = r.dropped.iter().filter(|d| d.reason == "excluded").count();
            let message = if excluded == r.dropped.len() {
                "screening dropped every territory: [screening] exclude names them all".to_owned()
            } else if excluded > 0 {
                format!(
                    "screening dropped every territory: {excluded} row(s) excluded by [screening] exclude, the other {} below {:.0}% of their indicators",
                    r.dropped.len() - excluded,
                    100.0 * s.min_availability
                )
            } else {
                format!(
                    "screening dropped every territory: none has {:.0}% of its indicators",
                    100.0 * s.min_availability
                )
            };
            return Err(Error::Compute(Problems(vec![Problem::new(
                s.declared_at.clone(),
                message,
            )])));
        }
        report.screening = Some(r);
        Ok(kept)
    };
    frame = screening(frame, ScreenOn::Raw, &mut report, &mut warnings)?;
    if plan.prep.imputation {
        let (f, counts) = impute::impute(plan, frame)?;
        frame = f;
        report.imputation = Some(counts);
    }
    frame = screening(frame, ScreenOn::Imputed, &mut report, &mut warnings)?;
    if let Some(t) = &plan.prep.treatment {
        let (f, rows) = transform::treat::treat(plan, t, frame)?;
        frame = f;
        // A log transform would put the values off the scale of fixed goalposts.
        let problems: Vec<Problem> = rows
            .iter()
            .filter(|r| r.log_transformed)
            .filter_map(|r| {
                let (_, spec) = plan.indicators().find(|(n, _)| n.id == r.indicator)?;
                matches!(spec.normalisation, Normalisation::Goalposts(Goalposts::Fixed { .. })).then(|| {
                    Problem::new(
                        spec.declared_at.clone(),
                        format!(
                            "indicator \"{}\" needs a log transform as outlier treatment, which its fixed goalposts (in the original units) would not fit",
                            r.indicator
                        ),
                    )
                    .with_help("set treatment = false on the indicator, log_fallback = false in [treatment], or use goalposts = \"observed\"")
                })
            })
            .collect();
        if !problems.is_empty() {
            return Err(Error::Compute(Problems(problems)));
        }
        report.treatment = Some(rows);
    }
    Ok((frame, report, warnings))
}

/// A cell of the frame as text, for messages.
fn cell(frame: &DataFrame, name: &str, row: usize) -> String {
    frame
        .column(name)
        .ok()
        .and_then(|c| c.get(row).ok())
        .map(|v| v.to_string().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// "territory" or "territory, year" of a row, for messages.
fn territory_at(plan: &Plan, frame: &DataFrame, row: usize) -> String {
    let territory = cell(frame, TERRITORY_ID, row);
    if plan.has_years() {
        format!("{territory}, {}", cell(frame, YEAR, row))
    } else {
        territory
    }
}

/// Geometric and harmonic means (and power means with p < 0) are undefined for inputs
/// ≤ 0, yet would quietly come out as 0: report each such parent with its first case.
fn check_positive_inputs(plan: &Plan, frame: &DataFrame) -> Result<(), Error> {
    let mut problems = Vec::new();
    for node in &plan.nodes {
        let Some(rule) = &node.rule else { continue };
        let needs_positive = match rule.mean {
            Mean::Geometric | Mean::Harmonic => true,
            Mean::Power(p) => p < 0.0,
            Mean::Arithmetic => false,
        };
        if !needs_positive {
            continue;
        }
        let found = node.children.iter().find_map(|&c| {
            let child = &plan.nodes[c];
            if child.weight == 0.0 {
                return None;
            }
            let values = frame.column(&child.id).ok()?.f64().ok()?.clone();
            let row = values.iter().position(|v| v.is_some_and(|v| v <= 0.0))?;
            Some((child, row, values.get(row)?))
        });
        let Some((child, row, value)) = found else {
            continue;
        };
        let territory = territory_at(plan, frame, row);
        problems.push(
            Problem::new(
                Location::Nowhere,
                format!(
                    "{} \"{}\" is a {} of its children, which needs positive values, but {} \"{}\" is {value} for territory {territory}",
                    node.level.as_str(),
                    node.id,
                    describe_mean(rule.mean),
                    child.level.as_str(),
                    child.id,
                ),
            )
            .with_help(
                "normalise onto a positive range (e.g. method = \"minmax\", range = [1, 100], as COINr does for geometric means) or use an arithmetic mean",
            ),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Compute(Problems(problems)))
    }
}

/// NaN or ±∞ in any score means a mean was undefined for its inputs (e.g. a geometric mean
/// of a negative rescaled value): report the first case, never write it.
fn check_finite(plan: &Plan, frame: &DataFrame) -> Result<(), Error> {
    let mut problems = Vec::new();
    // Bottom-up, and a node whose child is already reported is not: one NaN climbs to
    // the index, and one message per problem is enough.
    let mut bad = vec![false; plan.nodes.len()];
    for i in (0..plan.nodes.len()).rev() {
        let node = &plan.nodes[i];
        let Ok(values) = frame.column(&node.id).and_then(|c| c.f64().cloned()) else {
            continue;
        };
        let Some(row) = values
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        else {
            continue;
        };
        bad[i] = true;
        if node.children.iter().any(|&c| bad[c]) {
            continue;
        }
        let at = |name: &str| cell(frame, name, row);
        let territory = territory_at(plan, frame, row);
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
    let pipeline = load_pipeline(&options.pipeline)?;
    let output_dir = options
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("outputs").join(&pipeline.id));
    // A wrong -o is refused before anything is computed.
    let target = target_of(&pipeline, output_dir.clone(), "run");
    target.check()?;
    let Built {
        outputs,
        mut manifest,
    } = build(&pipeline, progress)?;
    progress.stage("write", output_dir.display().to_string());
    // The manifest is written last, once the data files are, so its timings include writing.
    let write_warnings = write::commit(&target, outputs, || {
        let timings = std::mem::replace(progress, Progress::hidden()).finish();
        for (stage, d) in &timings {
            manifest.timings_ms.insert(stage.to_string(), d.as_millis());
        }
        let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n";
        Output::Text("manifest.json", json)
    })?;
    manifest.warnings.extend(write_warnings);
    Ok(RunSummary {
        output_dir,
        manifest,
    })
}

/// Everything a run writes, computed and not yet written.
struct Built {
    outputs: Vec<Output<'static>>,
    manifest: Manifest,
}

/// Loads every input, computes, and shapes the outputs and the manifest: what `run`
/// writes and `validate` checks, so that the two cannot drift apart.
fn build(pipeline: &Pipeline, progress: &mut Progress) -> Result<Built, Error> {
    let mut outputs = Vec::new();
    let mut inputs = Vec::new();
    let mut warnings = Vec::new();
    let mut index_manifest = None;
    let mut analysis_manifest = None;
    let mut wide: Option<DataFrame> = None;
    let mut results = RunResults {
        index: None,
        rci_scores: None,
    };

    if let Some(plan) = &pipeline.index {
        progress.stage("ingest", format!("{} source(s)", plan.sources.len()));
        let table = ingest::load(plan)?;
        inputs.extend(table.inputs.iter().cloned());
        warnings.extend(table.warnings.iter().cloned());

        progress.stage(
            "compute",
            format!("{} rows × {} nodes", table.frame.height(), plan.nodes.len()),
        );
        let computed = compute(plan, table.frame)?;
        warnings.extend(computed.warnings.iter().cloned());
        let missing = write::missing_scores(plan, &computed.frame)?;
        wide = Some(write::wide_scores(plan, &computed.frame)?);
        index_manifest = Some(index_manifest_of(plan, &computed, &missing)?);
        if pipeline.charts.is_some() {
            let long = write::long_scores(plan, &computed.frame)?;
            results.index = Some(IndexResults::from_scores(plan, &long)?);
        }
        if !computed.anchoring.is_empty() {
            outputs.push(Output::Csv(
                "anchoring.csv",
                anchoring_table(&computed.anchoring)?,
            ));
        }
        if let Some(rows) = &computed.preparation.treatment {
            outputs.push(Output::Csv("treatment.csv", treatment_table(rows)?));
        }
        let a = &plan.analysis;
        if a.coherence || a.scorecard.is_some() {
            progress.stage("analyse", "coherence and scorecards");
            let mut m = AnalysisManifest::default();
            if a.coherence {
                let (table, summary) = analyse::coherence(plan, &computed.frame)?;
                outputs.push(Output::Csv("analysis/coherence.csv", table));
                m.coherence = Some(summary);
            }
            if let Some(sc) = &a.scorecard {
                let covariate = ingest::read_covariate(&sc.covariate)
                    .map_err(|p| Error::Compute(Problems(p)))?;
                let (long, summary, without) =
                    analyse::scorecard(plan, sc, &computed.frame, &covariate)?;
                if !without.is_empty() {
                    warnings.push(format!(
                        "scorecard: {} territories have no {} value, hence no peers: {}",
                        without.len(),
                        sc.covariate.name,
                        crate::diagnostic::list(&without, 20)
                    ));
                }
                outputs.push(Output::Csv("analysis/scorecard.csv", long));
                outputs.push(Output::Csv("analysis/strengths_weaknesses.csv", summary));
                m.scorecard = Some(ScorecardManifest {
                    peers: sc.peers,
                    covariate: sc.covariate.name.clone(),
                    files: [
                        "analysis/scorecard.csv",
                        "analysis/strengths_weaknesses.csv",
                    ],
                    without_covariate: without,
                });
            }
            analysis_manifest = Some(m);
        }
        outputs.push(Output::Tidy {
            parquet: "scores.parquet",
            csv: "scores.csv",
            blocks: write::TidyBlocks::new(plan.clone(), computed.frame.clone())?,
        });
        outputs.push(Output::Csv("missing.csv", missing));
    }

    let mut rci_summary = None;
    if let Some(rci) = &pipeline.rci {
        let out = relational::compute(rci, progress)?;
        inputs.push(out.input.clone());
        if !out.summary.small_territories.is_empty() {
            warnings.push(format!(
                "{} territories have fewer than {} respondents (flagged small_sample): {}",
                out.summary.small_territories.len(),
                rci.min_respondents,
                out.summary.small_territories.join(", ")
            ));
        }
        wide = Some(match wide {
            None => out.territories.clone(),
            Some(index) => join_wide(
                index,
                out.territories.clone(),
                pipeline.index.as_ref(),
                &mut warnings,
            )?,
        });
        if pipeline.charts.is_some() {
            results.rci_scores = Some(out.scores.clone());
        }
        outputs.push(Output::Parquet("rci_scores.parquet", out.scores.clone()));
        outputs.push(Output::Csv("rci_scores.csv", out.scores));
        outputs.push(Output::Parquet("rci_persons.parquet", out.persons));
        rci_summary = Some(out.summary);
    }

    let mut charts_manifest = None;
    if let Some(charts) = &pipeline.charts {
        progress.stage("charts", "rendering the chart pack");
        let pack = render::pack(pipeline, charts, &mut results)?;
        warnings.extend(pack.warnings.iter().cloned());
        charts_manifest = Some(ChartsManifest {
            directory: "charts",
            figures: pack.figures,
            files: pack.files.len(),
        });
        // The pack is its own output directory too, which `plot` may replace later.
        outputs.push(Output::File(
            format!("charts/{}", write::MARKER),
            write::marker_text(&pipeline.id, "charts").into_bytes(),
        ));
        outputs.extend(
            pack.files
                .into_iter()
                .map(|(name, bytes)| Output::File(format!("charts/{name}"), bytes)),
        );
    }

    if let Some(wide) = wide {
        outputs.push(Output::Csv("scores_wide.csv", wide));
    }
    let mut manifest = Manifest {
        tool: Tool {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        },
        pipeline: FileDigest {
            path: pipeline.path.display().to_string(),
            sha256: pipeline.sha256.clone(),
        },
        pipeline_id: pipeline.id.clone(),
        inputs: inputs
            .iter()
            .map(|i| InputDigest {
                path: i.path.display().to_string(),
                sha256: i.sha256.clone(),
                bytes: i.bytes,
                rows: i.rows,
            })
            .collect(),
        index: index_manifest,
        rci: rci_summary,
        charts: charts_manifest,
        analysis: analysis_manifest,
        warnings,
        timings_ms: BTreeMap::new(),
        outputs: Vec::new(),
    };
    manifest.outputs = outputs
        .iter()
        .flat_map(|o| match o {
            Output::Csv(n, _) | Output::Parquet(n, _) | Output::Text(n, _) => vec![n.to_string()],
            Output::Tidy { parquet, csv, .. } => vec![parquet.to_string(), csv.to_string()],
            // The pack is one entry: its files are counted under `charts`.
            Output::File(n, _) if n == "charts/index.html" => vec![n.clone()],
            Output::File(..) => Vec::new(),
        })
        .chain(["manifest.json".to_string()])
        .collect();

    Ok(Built { outputs, manifest })
}

/// What `uncertainty` computed.
#[derive(Debug)]
pub struct UncertaintyDone {
    pub directory: PathBuf,
    pub summary: analyse::uncertainty::Summary,
    pub seconds: f64,
    /// The territories with the widest 5–95% rank intervals: (name, year, p05, p95).
    pub widest: Vec<(String, Option<i64>, f64, f64)>,
}

/// Runs the Monte Carlo of the pipeline's [uncertainty] section (`runs` overrides its
/// number of runs) and writes `<output dir>/uncertainty/`.
pub fn uncertainty(
    options: &RunOptions,
    runs: Option<usize>,
    progress: &mut Progress,
) -> Result<UncertaintyDone, Error> {
    progress.stage("plan", options.pipeline.display().to_string());
    let pipeline = load_pipeline(&options.pipeline)?;
    let top = Location::Config {
        file: pipeline.path.clone(),
        line: 1,
        column: 1,
    };
    let Some(plan) = &pipeline.index else {
        return Err(Error::Plan(Problems(vec![Problem::new(
            top,
            "the uncertainty analysis needs an [index]",
        )])));
    };
    let Some(mut u) = plan.uncertainty.clone() else {
        let p = Problem::new(top, "the pipeline has no [uncertainty] section")
            .with_help("add [uncertainty] with the alternatives to vary (weights, normalisation, aggregation, imputation)");
        return Err(Error::Plan(Problems(vec![p])));
    };
    if let Some(r) = runs {
        u.runs = r.max(1);
    }
    let dir = options
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("outputs").join(&pipeline.id))
        .join("uncertainty");
    let target = target_of(&pipeline, dir.clone(), "uncertainty");
    target.check()?;
    progress.stage("ingest", format!("{} source(s)", plan.sources.len()));
    let table = ingest::load(plan)?;
    progress.stage("runs", format!("{} runs", u.runs));
    let tick = progress.ticker();
    let total = u.runs;
    let start = std::time::Instant::now();
    let (table_u, table_s, summary) =
        analyse::uncertainty::analyse(plan, &u, &table.frame, &|done| {
            tick(format!("run {done} of {total}"))
        })?;
    let seconds = start.elapsed().as_secs_f64();
    let widest = {
        let sorted = table_u.sort(
            ["rank_interval"],
            SortMultipleOptions::default()
                .with_order_descending(true)
                .with_nulls_last(true),
        )?;
        let names = sorted.column(TERRITORY_NAME)?.str()?.clone();
        let years = sorted.column(YEAR)?.i64()?.clone();
        let lo = sorted.column("rank_p05")?.f64()?.clone();
        let hi = sorted.column("rank_p95")?.f64()?.clone();
        (0..sorted.height().min(3))
            .filter_map(|i| {
                Some((
                    names.get(i)?.to_owned(),
                    years.get(i),
                    lo.get(i)?,
                    hi.get(i)?,
                ))
            })
            .collect()
    };
    progress.stage("write", dir.display().to_string());
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises") + "\n";
    write::commit(
        &target,
        vec![
            Output::Csv("uncertainty.csv", table_u),
            Output::Csv("sensitivity.csv", table_s),
        ],
        || Output::Text("summary.json", json),
    )?;
    Ok(UncertaintyDone {
        directory: dir,
        summary,
        seconds,
        widest,
    })
}

/// The output target of a command: the directory as given, and every file the pipeline
/// reads, which no output may replace.
fn target_of(pipeline: &Pipeline, dir: PathBuf, kind: &'static str) -> write::Target {
    let mut protected = pipeline.inputs.clone();
    protected.push(pipeline.path.clone());
    write::Target {
        dir,
        pipeline_id: pipeline.id.clone(),
        kind,
        protected,
    }
}

/// What `plot` drew.
#[derive(Debug)]
pub struct PlotSummary {
    pub directory: PathBuf,
    pub figures: usize,
    pub files: usize,
    pub warnings: Vec<String>,
}

/// Draws the chart pack of an earlier run from its outputs (nothing is recomputed) into
/// `<output dir>/charts/`, replacing the previous pack only once the new one is complete.
pub fn plot(options: &RunOptions, progress: &mut Progress) -> Result<PlotSummary, Error> {
    progress.stage("plan", options.pipeline.display().to_string());
    let pipeline = load_pipeline(&options.pipeline)?;
    let Some(charts) = &pipeline.charts else {
        let mut p = Problem::new(
            Location::Config {
                file: pipeline.path.clone(),
                line: 1,
                column: 1,
            },
            "the pipeline has no [charts] section",
        );
        p = p.with_help("add [charts] (an empty section draws every chart that applies)");
        return Err(Error::Plan(Problems(vec![p])));
    };
    let dir = options
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("outputs").join(&pipeline.id));
    let target = target_of(&pipeline, dir.join("charts"), "charts");
    target.check()?;
    progress.stage("read", dir.display().to_string());
    let mut results = RunResults::read(&pipeline, &dir)
        .map_err(|(path, message)| RenderError::Results { path, message })?;
    progress.stage("charts", "rendering the chart pack");
    let pack = render::pack(&pipeline, charts, &mut results)?;
    let summary = PlotSummary {
        directory: dir.join("charts"),
        figures: pack.figures,
        files: pack.files.len(),
        warnings: pack.warnings.clone(),
    };
    progress.stage("write", summary.directory.display().to_string());
    let mut summary = summary;
    summary.warnings.extend(render::write(pack, &target)?);
    Ok(summary)
}

/// The index's wide table and the RCI territory table side by side, joined on territory
/// (and year when the index has years). Territories found in only one are kept and named
/// in a warning.
fn join_wide(
    index: DataFrame,
    rci: DataFrame,
    plan: Option<&Plan>,
    warnings: &mut Vec<String>,
) -> Result<DataFrame, Error> {
    let by_year = plan.is_some_and(Plan::has_years);
    let mut keys = vec![col(TERRITORY_ID)];
    let rci = if by_year {
        keys.push(col(YEAR));
        rci
    } else {
        rci.drop(YEAR)?
    };
    let ids = |df: &DataFrame| -> Result<std::collections::BTreeSet<String>, Error> {
        Ok(df
            .column(TERRITORY_ID)?
            .str()?
            .iter()
            .flatten()
            .map(str::to_owned)
            .collect())
    };
    let (a, b) = (ids(&index)?, ids(&rci)?);
    let only_index: Vec<&String> = a.difference(&b).collect();
    let only_rci: Vec<&String> = b.difference(&a).collect();
    if !only_index.is_empty() {
        warnings.push(format!(
            "territories with index scores but no survey respondents: {}",
            crate::diagnostic::list(&only_index, 20)
        ));
    }
    if !only_rci.is_empty() {
        warnings.push(format!(
            "territories with survey respondents but no index scores: {}",
            crate::diagnostic::list(&only_rci, 20)
        ));
    }
    Ok(index
        .lazy()
        .join(
            rci.lazy(),
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .sort(
            [TERRITORY_ID, YEAR],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .collect()?)
}

fn index_manifest_of(
    plan: &Plan,
    computed: &Computed,
    missing: &DataFrame,
) -> Result<IndexManifest, Error> {
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
    Ok(IndexManifest {
        counts: Counts {
            rows: frame.height(),
            territories,
            years,
            indicators: plan.nodes_at(Level::Indicator).count(),
            components: plan.nodes_at(Level::Component).count(),
            dimensions: plan.nodes_at(Level::Dimension).count(),
        },
        preparation: computed.preparation.clone(),
        pca_weights: computed.weights.clone(),
        anchoring: plan.anchoring.as_ref().map(|a| AnchoringManifest {
            level: a.level.as_str(),
            national: a.national.path.display().to_string(),
            groups: {
                let mut g: Vec<&str> = computed
                    .anchoring
                    .iter()
                    .map(|s| s.group.as_str())
                    .collect();
                g.sort_unstable();
                g.dedup();
                g.len()
            },
            largest_shift: computed
                .anchoring
                .iter()
                .map(|s| s.shift.abs())
                .fold(0.0, f64::max),
            file: "anchoring.csv",
        }),
        normalisation: computed.normalisation.clone(),
        missing_data: MissingData {
            missing_indicator_values,
            rules,
            details: "missing.csv",
        },
    })
}
