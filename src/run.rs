//! The commands, each a composition of the same steps: load the pipeline file and plan
//! it, load every input once ([`crate::load`]), compute without I/O
//! ([`crate::compute`], [`crate::relational`], [`crate::render`]), then write once
//! ([`crate::write`]). `validate` is `run` without the writing, so the two cannot drift.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::analyse;
use crate::compute::{self, ComputeError};
use crate::config::{self, ConfigError};
use crate::diagnostic::{Location, Problem, Problems};
use crate::load::{self, Inputs, LoadError};
use crate::manifest::{
    AnalysisManifest, ChartsManifest, FileDigest, InputDigest, Manifest, ScorecardManifest, Tool,
    index_manifest_of,
};
use crate::plan::{self, Pipeline, Plan, TERRITORY_ID, TERRITORY_NAME, YEAR};
use crate::progress::Progress;
use crate::relational::{self, RelationalError};
use crate::render::{self, RenderError, data::IndexResults, data::RunResults};
use crate::write::{self, Output, WriteError};

/// Everything that can stop a run, by stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Plan(Problems),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Compute(#[from] ComputeError),
    #[error(transparent)]
    Relational(#[from] RelationalError),
    #[error("shaping the outputs: {}", .0.to_string().lines().next().unwrap_or(""))]
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

    /// The problems behind the error, when it is a list of them (each printed as its own
    /// `error:` line); None for a single failure.
    pub fn problems(&self) -> Option<&[Problem]> {
        let list = match self {
            Error::Config(ConfigError::Parse(p)) => return Some(std::slice::from_ref(p)),
            Error::Config(ConfigError::Values(p)) | Error::Plan(p) => p,
            Error::Load(LoadError::Problems(p)) => p,
            Error::Compute(ComputeError::Problems(p)) => p,
            Error::Compute(ComputeError::Normalise(
                crate::normalise::NormaliseError::Problems(p),
            )) => p,
            Error::Relational(RelationalError::Problems(p)) => p,
            Error::Render(RenderError::Problems(p)) => p,
            _ => return None,
        };
        Some(&list.0)
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
    let inputs = load::load(&pipeline)?;
    let built = build(&pipeline, inputs, &mut Progress::hidden())?;
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
    progress.stage("load", format!("{} input file(s)", pipeline.files().len()));
    let inputs = load::load(&pipeline)?;
    let Built {
        outputs,
        mut manifest,
    } = build(&pipeline, inputs, progress)?;
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

/// Computes from the loaded inputs and shapes the outputs and the manifest: what `run`
/// writes and `validate` checks, so that the two cannot drift apart.
fn build(pipeline: &Pipeline, inputs: Inputs, progress: &mut Progress) -> Result<Built, Error> {
    let mut outputs = Vec::new();
    let summaries = inputs.summaries();
    let Inputs {
        index: index_inputs,
        survey,
        charts: chart_inputs,
    } = inputs;
    let mut warnings = Vec::new();
    let mut index_manifest = None;
    let mut analysis_manifest = None;
    let mut wide: Option<DataFrame> = None;
    let mut results = RunResults {
        index: None,
        rci_scores: None,
    };

    if let (Some(plan), Some(ix)) = (&pipeline.index, &index_inputs) {
        warnings.extend(ix.table.warnings.iter().cloned());
        progress.stage(
            "compute",
            format!(
                "{} rows × {} nodes",
                ix.table.frame.height(),
                plan.nodes.len()
            ),
        );
        let computed = compute::compute(plan, ix)?;
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
                write::anchoring_table(&computed.anchoring)?,
            ));
        }
        if let Some(rows) = &computed.preparation.treatment {
            outputs.push(Output::Csv("treatment.csv", write::treatment_table(rows)?));
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
            if let (Some(sc), Some(covariate)) = (&a.scorecard, &ix.scorecard) {
                let (long, summary, without) =
                    analyse::scorecard(plan, sc, &computed.frame, covariate)?;
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
    if let (Some(rci), Some(raw)) = (&pipeline.rci, survey) {
        let out = relational::compute(rci, raw, progress)?;
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
        let pack = render::pack(pipeline, charts, &chart_inputs, &mut results)?;
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
        inputs: summaries
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
    progress.stage("load", format!("{} source(s)", plan.sources.len()));
    let inputs = load::load_index(plan)?;
    progress.stage("runs", format!("{} runs", u.runs));
    let tick = progress.ticker();
    let total = u.runs;
    let start = std::time::Instant::now();
    let (table_u, table_s, summary) = analyse::uncertainty::analyse(plan, &u, &inputs, &|done| {
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
    let chart_inputs =
        load::load_charts(charts).map_err(|p| Error::Load(LoadError::Problems(Problems(p))))?;
    progress.stage("read", dir.display().to_string());
    let mut results = RunResults::read(&pipeline, &dir)
        .map_err(|(path, message)| RenderError::Results { path, message })?;
    progress.stage("charts", "rendering the chart pack");
    let pack = render::pack(&pipeline, charts, &chart_inputs, &mut results)?;
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
