//! The commands, each a composition of the same steps: load the pipeline file and plan
//! it, load every input once ([`crate::load`]), compute without I/O
//! ([`crate::compute`], [`crate::relational`], [`crate::render`]), then write once
//! ([`crate::write`]). `validate` is `run` without the writing, so the two cannot drift.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::analyse;
use crate::compute::{self, ComputeError};
use crate::config::{self, ConfigError, OutputFormat};
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
    #[error("{0}")]
    Fetch(Problems),
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
    #[error(transparent)]
    Diff(#[from] crate::diff::DiffError),
    #[error(transparent)]
    Compare(#[from] crate::compare::CompareError),
}

impl Error {
    /// 2 for a pipeline file that cannot be used, 4 when another run holds the lock, 1 for
    /// data and run errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Plan(_) => 2,
            Error::Write(WriteError::Locked { .. }) => 4,
            _ => 1,
        }
    }

    /// The problems behind the error, when it is a list of them (each printed as its own
    /// `error:` line); None for a single failure.
    pub fn problems(&self) -> Option<&[Problem]> {
        let list = match self {
            Error::Config(ConfigError::Parse(p)) => return Some(std::slice::from_ref(p)),
            Error::Config(ConfigError::Values(p)) | Error::Plan(p) | Error::Fetch(p) => p,
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

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    /// A directory of the user's choice for a one-off run; by default the run goes into
    /// the pipeline's history, `outputs/<pipeline id>/runs/<run id>/`.
    pub output_dir: Option<PathBuf>,
    /// How long to wait for another run holding the lock.
    pub wait: std::time::Duration,
    /// Do nothing when inputs and config fingerprint as the latest run's.
    pub skip_unchanged: bool,
    /// The network and the cache, for downloaded sources.
    pub fetch: crate::fetch::FetchOptions,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunSummary {
    /// The run's folder (in the history, or the `-o` directory).
    pub output_dir: PathBuf,
    /// None when the run was skipped.
    pub manifest: Option<Manifest>,
    /// With `--skip-unchanged`: the id of the latest run, which has the same fingerprint.
    pub unchanged_since: Option<String>,
}

/// The history of a pipeline: `outputs/<pipeline id>`.
pub fn history_of(pipeline: &Pipeline) -> write::history::History {
    let mut protected = pipeline.inputs.clone();
    protected.push(pipeline.path.clone());
    write::history::History {
        root: Path::new("outputs").join(&pipeline.id),
        pipeline_id: pipeline.id.clone(),
        protected,
    }
}

/// The directory of the latest run of a pipeline (or of an earlier single run written
/// straight into `outputs/<pipeline id>`).
pub fn latest_dir(pipeline: &Pipeline) -> PathBuf {
    let history = history_of(pipeline);
    match history.latest() {
        Some(run) => run.dir,
        None => history.root,
    }
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
pub fn validate(
    path: &Path,
    output_dir: Option<PathBuf>,
    fetch: &crate::fetch::FetchOptions,
) -> Result<Validated, Error> {
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
    match output_dir {
        Some(dir) => target_of(&pipeline, dir, "run").check()?,
        None => {
            history_of(&pipeline).check()?;
        }
    }
    let fetched = fetch_sources(&pipeline, fetch, &mut Progress::hidden())?;
    let inputs = load::load(&pipeline, fetched.as_ref())?;
    let built = build(&pipeline, inputs, &mut Progress::hidden())?;
    let m = built.manifest;
    Ok(Validated {
        territory_rows: m.index.as_ref().map_or(0, |i| i.counts.rows),
        respondents: m.rci.as_ref().map_or(0, |r| r.respondents),
        warnings: m.warnings,
        pipeline,
    })
}

/// Fetches the downloaded sources of a pipeline (None when it has none).
pub fn fetch_sources(
    pipeline: &Pipeline,
    options: &crate::fetch::FetchOptions,
    progress: &mut Progress,
) -> Result<Option<crate::fetch::Fetched>, Error> {
    let Some(plan) = &pipeline.index else {
        return Ok(None);
    };
    let remote = plan.sources.iter().filter(|s| s.remote.is_some()).count();
    if remote == 0 {
        return Ok(None);
    }
    progress.stage("fetch", format!("{remote} source(s)"));
    let mut fetcher =
        crate::fetch::Fetcher::new(options).map_err(|p| Error::Fetch(Problems(vec![p])))?;
    crate::fetch::fetch_plan(plan, &mut fetcher)
        .map(Some)
        .map_err(Error::Fetch)
}

/// `bienvivre fetch`: fills the cache with the pipeline's downloads, computing nothing.
/// Returns what was fetched and the cache directory.
pub fn fetch(
    path: &Path,
    options: &crate::fetch::FetchOptions,
    progress: &mut Progress,
) -> Result<(crate::fetch::Fetched, PathBuf), Error> {
    progress.stage("plan", path.display().to_string());
    let pipeline = load_pipeline(path)?;
    let cache = crate::fetch::Fetcher::new(options)
        .map_err(|p| Error::Fetch(Problems(vec![p])))?
        .cache
        .dir;
    let fetched = fetch_sources(&pipeline, options, progress)?.unwrap_or_default();
    Ok((fetched, cache))
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

/// Runs a pipeline end to end and writes its outputs: into the pipeline's history (a new
/// run, then `latest` switched to it, then retention), or into `-o DIR` for a one-off run.
/// Either way under an exclusive lock, and with the target checked before computing.
pub fn run(options: &RunOptions, progress: &mut Progress) -> Result<RunSummary, Error> {
    progress.stage("plan", options.pipeline.display().to_string());
    let started = std::time::SystemTime::now();
    let pipeline = load_pipeline(&options.pipeline)?;
    // A wrong target is refused before anything is fetched.
    match &options.output_dir {
        Some(dir) => target_of(&pipeline, dir.clone(), "run").check()?,
        None => {
            history_of(&pipeline).check()?;
        }
    }
    let fetched = fetch_sources(&pipeline, &options.fetch, progress)?;
    let (fingerprint, files) = load::fingerprint(&pipeline, fetched.as_ref());
    let files: Vec<FileDigest> = files
        .into_iter()
        .map(|(p, sha256)| FileDigest {
            path: p.display().to_string(),
            sha256,
        })
        .collect();
    let fingerprint = fingerprint.unwrap_or_default();
    let tag: String = fingerprint.chars().take(8).collect();
    let finish = |mut manifest: Manifest, id: String, progress: &mut Progress| {
        manifest.fingerprint = fingerprint.clone();
        manifest.files = files.clone();
        let timings = std::mem::replace(progress, Progress::hidden()).finish();
        manifest.run = crate::manifest::RunInfo {
            id,
            started: crate::clock::run_time_readable(started),
            finished: crate::clock::run_time_readable(std::time::SystemTime::now()),
            timings_ms: timings
                .iter()
                .map(|(stage, d)| (stage.to_string(), d.as_millis()))
                .collect(),
            peak_rss_mib: crate::progress::peak_rss_mib(),
        };
        manifest
    };
    match &options.output_dir {
        Some(dir) => {
            // A wrong -o is refused before anything is computed.
            let target = target_of(&pipeline, dir.clone(), "run");
            target.check()?;
            // The folder the output directory is in (or the nearest that exists: nothing
            // is created before the run succeeds).
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let _lock = write::history::lock_nearest(&parent, options.wait)?;
            progress.stage("load", format!("{} input file(s)", pipeline.files().len()));
            let inputs = load::load(&pipeline, fetched.as_ref())?;
            let Built { outputs, manifest } = build(&pipeline, inputs, progress)?;
            progress.stage("write", dir.display().to_string());
            let id = format!("{}-{tag}", crate::clock::run_time(started));
            let mut written = None;
            // The manifest is written last, so its timings include writing.
            let warnings = write::commit(&target, outputs, || {
                let m = finish(manifest, id, progress);
                let json = serde_json::to_string_pretty(&m).expect("manifest serialises") + "\n";
                written = Some(m);
                Output::Text("manifest.json", json)
            })?;
            let mut manifest = written.expect("the manifest is written last");
            manifest.warnings.extend(warnings);
            Ok(RunSummary {
                output_dir: dir.clone(),
                manifest: Some(manifest),
                unchanged_since: None,
            })
        }
        None => {
            let history = history_of(&pipeline);
            history.check()?;
            let lock = history.lock(options.wait)?;
            if options.skip_unchanged
                && !fingerprint.is_empty()
                && let Some(latest) = history.latest()
                && manifest_fingerprint(&latest.dir).as_deref() == Some(fingerprint.as_str())
            {
                return Ok(RunSummary {
                    output_dir: latest.dir,
                    manifest: None,
                    unchanged_since: Some(latest.id),
                });
            }
            progress.stage("load", format!("{} input file(s)", pipeline.files().len()));
            let inputs = load::load(&pipeline, fetched.as_ref())?;
            let Built { outputs, manifest } = build(&pipeline, inputs, progress)?;
            let id = history.new_id(started, &tag);
            progress.stage(
                "write",
                history.root.join("runs").join(&id).display().to_string(),
            );
            let mut written = None;
            let committed = history.commit(&lock, &id, pipeline.keep, outputs, || {
                let m = finish(manifest, id.clone(), progress);
                let json = serde_json::to_string_pretty(&m).expect("manifest serialises") + "\n";
                written = Some(m);
                Output::Text("manifest.json", json)
            })?;
            let mut manifest = written.expect("the manifest is written last");
            manifest.warnings.extend(committed.warnings);
            Ok(RunSummary {
                output_dir: committed.dir,
                manifest: Some(manifest),
                unchanged_since: None,
            })
        }
    }
}

/// A run named on the command line: a run directory, or a run id (or the start of one)
/// in the pipeline's history.
pub fn resolve_run(pipeline: &Pipeline, name: &str) -> Result<PathBuf, Error> {
    let path = Path::new(name);
    if path.join("manifest.json").is_file() {
        return Ok(path.to_path_buf());
    }
    let runs = history_of(pipeline).runs();
    let found: Vec<_> = runs.iter().filter(|r| r.id.starts_with(name)).collect();
    match found.as_slice() {
        [one] => Ok(one.dir.clone()),
        [] => Err(Error::Plan(Problems(vec![Problem::new(
            Location::Nowhere,
            format!(
                "no run \"{name}\": neither a run directory nor a run of {} ({} run(s); `bienvivre runs` lists them)",
                history_of(pipeline).root.display(),
                runs.len()
            ),
        )]))),
        many => Err(Error::Plan(Problems(vec![Problem::new(
            Location::Nowhere,
            format!(
                "\"{name}\" is the start of {} run ids: give more of it",
                many.len()
            ),
        )]))),
    }
}

/// Compares two runs (default: the latest against the run before it).
pub fn diff(
    pipeline_path: &Path,
    old: Option<&str>,
    new: Option<&str>,
    thresholds: crate::diff::Thresholds,
) -> Result<crate::diff::Diff, Error> {
    let pipeline = load_pipeline(pipeline_path)?;
    let runs = history_of(&pipeline).runs();
    let new_dir = match new {
        Some(n) => resolve_run(&pipeline, n)?,
        None => latest_dir(&pipeline),
    };
    let old_dir = match old {
        Some(o) => resolve_run(&pipeline, o)?,
        None => {
            let position = runs.iter().position(|r| r.dir == new_dir);
            match position
                .and_then(|k| k.checked_sub(1))
                .map(|k| runs[k].dir.clone())
            {
                Some(d) => d,
                None => {
                    return Err(Error::Plan(Problems(vec![Problem::new(
                        Location::Nowhere,
                        format!(
                            "nothing to compare: {} has no run before {}",
                            history_of(&pipeline).root.display(),
                            new_dir.display()
                        ),
                    )])));
                }
            }
        }
    };
    Ok(crate::diff::diff(
        pipeline.index.as_ref(),
        &old_dir,
        &new_dir,
        thresholds,
    )?)
}

/// What `compare` wrote.
#[derive(Debug)]
pub struct Compared {
    pub comparison: crate::compare::Comparison,
    pub directory: PathBuf,
}

/// Puts territories side by side in a run (default: the latest) and writes
/// `compare.csv` and the dot plot (SVG and PNG) into `out` (default: a `compare-<ids>`
/// folder of the run).
pub fn compare(
    pipeline_path: &Path,
    run: Option<&str>,
    ids: &[String],
    year: Option<i64>,
    indicators: bool,
    out: Option<PathBuf>,
) -> Result<Compared, Error> {
    let pipeline = load_pipeline(pipeline_path)?;
    let Some(plan) = &pipeline.index else {
        return Err(Error::Plan(Problems(vec![Problem::new(
            Location::Config {
                file: pipeline.path.clone(),
                line: 1,
                column: 1,
            },
            "compare needs an [index]",
        )])));
    };
    let dir = match run {
        Some(r) => resolve_run(&pipeline, r)?,
        None => latest_dir(&pipeline),
    };
    let comparison = crate::compare::compare(plan, &dir, ids, year, indicators)?;
    let source = pipeline
        .charts
        .as_ref()
        .map(|c| c.source_line.clone())
        .unwrap_or_else(|| format!("Source: {}; computed with bienvivre", pipeline.name));
    let figure = crate::compare::figure(&comparison, &source);
    let directory = out.unwrap_or_else(|| dir.join(figure.stem.replace("compare_", "compare-")));
    let (svg, png) = render::charts::render(&figure).map_err(|message| RenderError::Draw {
        chart: figure.stem.clone(),
        message,
    })?;
    let table = crate::compare::table(&comparison)?;
    let target = target_of(&pipeline, directory.clone(), "compare");
    let json = serde_json::to_string_pretty(&comparison).expect("serialises") + "\n";
    write::commit(
        &target,
        vec![
            Output::Csv("compare.csv", table),
            Output::File("compare.svg".into(), svg.into_bytes()),
            Output::File("compare.png".into(), png),
        ],
        || Output::Text("compare.json", json),
    )?;
    Ok(Compared {
        comparison,
        directory,
    })
}

/// One run of a pipeline's history, as `runs` lists it.
#[derive(Debug, Clone)]
pub struct RunListing {
    pub id: String,
    pub dir: PathBuf,
    pub started: String,
    pub latest: bool,
    /// What differs from the run before: "config" and the paths of changed input files.
    pub changed: Vec<String>,
}

/// The runs of a pipeline's history, oldest first, with what changed from one to the next.
pub fn runs(pipeline_path: &Path) -> Result<Vec<RunListing>, Error> {
    let pipeline = load_pipeline(pipeline_path)?;
    let history = history_of(&pipeline);
    let mut out = Vec::new();
    let mut before: Option<serde_json::Value> = None;
    for run in history.runs() {
        let manifest: Option<serde_json::Value> =
            std::fs::read_to_string(run.dir.join("manifest.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
        let started = manifest
            .as_ref()
            .and_then(|m| m["run"]["started"].as_str())
            .unwrap_or("")
            .to_owned();
        let changed = match (&before, &manifest) {
            (Some(a), Some(b)) => changed_inputs(a, b),
            _ => Vec::new(),
        };
        out.push(RunListing {
            id: run.id,
            dir: run.dir,
            started,
            latest: run.latest,
            changed,
        });
        before = manifest;
    }
    Ok(out)
}

/// What differs between the inputs of two runs' manifests: "config" when the pipeline
/// file changed, then each input file added, removed or changed.
pub fn changed_inputs(a: &serde_json::Value, b: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    if a["pipeline"]["sha256"] != b["pipeline"]["sha256"] {
        out.push("config".to_owned());
    }
    let (fa, fb) = (
        crate::diff::manifest_files(a),
        crate::diff::manifest_files(b),
    );
    for (path, sha) in &fb {
        match fa.get(path) {
            Some(before) if before == sha => {}
            Some(_) => out.push(path.clone()),
            None => out.push(format!("{path} (new)")),
        }
    }
    for path in fa.keys().filter(|p| !fb.contains_key(*p)) {
        out.push(format!("{path} (gone)"));
    }
    out
}

/// The fingerprint recorded in a run's manifest.
fn manifest_fingerprint(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("fingerprint")?.as_str().map(str::to_owned)
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
        downloads,
        fetch_warnings,
    } = inputs;
    let mut warnings = fetch_warnings;
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
        if pipeline.formats.contains(&OutputFormat::Wide) || pipeline.rci.is_some() {
            wide = Some(write::wide_scores(plan, &computed.frame)?);
        }
        let mut m = index_manifest_of(plan, &computed, &missing)?;
        m.flags = ix.table.flags.clone();
        if let Some(r) = &ix.rollup {
            m.rollup = Some(r.summary.clone());
            outputs.push(Output::Csv("rollup.csv", r.coverage.clone()));
        }
        index_manifest = Some(m);
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
        let wants = |f| pipeline.formats.contains(&f);
        let (parquet, csv) = (
            wants(OutputFormat::Parquet).then_some("scores.parquet"),
            wants(OutputFormat::Csv).then_some("scores.csv"),
        );
        if !pipeline.partition_by.is_empty() {
            outputs.push(Output::Partitioned {
                dir: "scores",
                by: pipeline.partition_by.clone(),
                plan: Box::new(plan.clone()),
                frame: computed.frame.clone(),
            });
        }
        if parquet.is_some() || csv.is_some() {
            outputs.push(Output::Tidy {
                parquet,
                csv,
                blocks: write::TidyBlocks::new(plan.clone(), computed.frame.clone())?,
            });
        }
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

    if let Some(wide) = wide.filter(|_| pipeline.formats.contains(&OutputFormat::Wide)) {
        outputs.push(Output::Csv("scores_wide.csv", wide));
    }
    // The pipeline file as run: `diff` compares two runs' settings key by key.
    outputs.push(Output::Text("pipeline.toml", pipeline.text.clone()));
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
        outputs: Vec::new(),
        fingerprint: String::new(),
        files: Vec::new(),
        downloads,
        run: Default::default(),
    };
    manifest.outputs = outputs
        .iter()
        .flat_map(|o| match o {
            Output::Csv(n, _) | Output::Parquet(n, _) | Output::Text(n, _) => vec![n.to_string()],
            Output::Tidy { parquet, csv, .. } => {
                parquet.iter().chain(csv).map(|n| n.to_string()).collect()
            }
            Output::Partitioned { dir, by, .. } => vec![format!(
                "{dir}/ (Parquet, hive-partitioned by {})",
                by.iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
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
        .unwrap_or_else(|| latest_dir(&pipeline))
        .join("uncertainty");
    let target = target_of(&pipeline, dir.clone(), "uncertainty");
    target.check()?;
    let fetched = fetch_sources(&pipeline, &options.fetch, progress)?;
    progress.stage("load", format!("{} source(s)", plan.sources.len()));
    let inputs = load::load_index(plan, fetched.as_ref())?;
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
        .unwrap_or_else(|| latest_dir(&pipeline));
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
