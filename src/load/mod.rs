//! Reading inputs: every file a pipeline names is read here, once, into an [`Inputs`]
//! value that the computation then uses without touching a file (so `run`, `validate`,
//! `uncertainty`'s thousand runs and anchoring all compute from the same reads). One
//! strict reader for data files ([`file`]), the one cell parser ([`cell`]) every table
//! goes through (sources, covariates, national and population tables, surveys), and the
//! sources joined into one frame ([`sources`]).

pub mod cell;
pub mod cube;
pub mod file;
pub mod rollup;
pub mod sources;

use std::collections::HashMap;

use crate::config::ChartKind;
use crate::diagnostic::{Problem, Problems};
use crate::plan::charts::ChartsPlan;
use crate::plan::rci::RciPlan;
use crate::plan::{AnchoringPlan, Pipeline, Plan};

pub use file::{BadCell, CellProblems, RawFile, ReadOptions, read_bytes, read_file};
pub use sources::{Covariate, IngestError as LoadError, InputSummary, Table};

/// Everything a pipeline reads.
#[derive(Debug)]
pub struct Inputs {
    pub index: Option<IndexInputs>,
    /// Survey microdata, for the relational capability part.
    pub survey: Option<RawFile>,
    pub charts: ChartInputs,
    /// The downloads the sources came from, for the manifest.
    pub downloads: Vec<crate::fetch::Download>,
    /// What fetching had to say (stale copies used…).
    pub fetch_warnings: Vec<String>,
}

/// What the composite index is computed from.
#[derive(Debug)]
pub struct IndexInputs {
    /// The sources, joined: a row per territory (× year).
    pub table: Table,
    pub anchoring: Option<AnchoringInputs>,
    /// The scorecard's covariate (peers are the closest on it).
    pub scorecard: Option<Covariate>,
    /// What `[rollup]` did, when the pipeline rolls territories up.
    pub rollup: Option<rollup::RollupReport>,
}

/// National scores by (group id, year), then node id.
pub type NationalScores = HashMap<(String, Option<i64>), HashMap<String, f64>>;

#[derive(Debug)]
pub enum National {
    /// Given as a table of national scores.
    Scores(NationalScores),
    /// National indicator data, to be scored with the pipeline's own framework.
    Data(Table),
}

#[derive(Debug)]
pub struct AnchoringInputs {
    pub national: National,
    pub population: Covariate,
}

/// What the chart pack draws from besides the results.
#[derive(Debug, Default)]
pub struct ChartInputs {
    /// The covariate of the scatter chart.
    pub covariate: Option<Covariate>,
    /// The map's GeoJSON text.
    pub map: Option<String>,
}

impl Inputs {
    /// Summaries of every data file read, for the manifest.
    pub fn summaries(&self) -> Vec<InputSummary> {
        let mut out = Vec::new();
        if let Some(ix) = &self.index {
            out.extend(ix.table.inputs.iter().cloned());
        }
        if let Some(raw) = &self.survey {
            out.push(sources::summary(raw));
        }
        out
    }
}

/// Digests of the pipeline file and of every file it reads, and a fingerprint over them
/// and the tool's version: equal fingerprints mean a run computes the same outputs.
/// Files that cannot be read are left out (the run then fails when loading them) and
/// make the fingerprint None.
pub fn fingerprint(
    pipeline: &Pipeline,
    fetched: Option<&crate::fetch::Fetched>,
) -> (Option<String>, Vec<(std::path::PathBuf, String)>) {
    use sha2::{Digest, Sha256};
    let mut files: Vec<(std::path::PathBuf, String)> = Vec::new();
    let mut complete = true;
    let mut paths = pipeline.inputs.clone();
    paths.sort();
    paths.dedup();
    for path in paths {
        match crate::files::read_regular(&path) {
            Ok(bytes) => files.push((path, crate::files::sha256_hex(&bytes))),
            Err(_) => complete = false,
        }
    }
    // Downloads count by their bodies: an unchanged revalidated copy fingerprints the same.
    if let Some(f) = fetched {
        for d in f.downloads() {
            files.push((d.url.into(), d.sha256));
        }
    }
    let mut h = Sha256::new();
    h.update(format!(
        "{} {}\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    ));
    h.update(format!("pipeline {}\n", pipeline.sha256));
    for (path, sha) in &files {
        h.update(format!("{} {sha}\n", path.display()));
    }
    let print = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    (complete.then_some(print), files)
}

/// Reads every input of a pipeline; all problems of every input are reported together.
pub fn load(
    pipeline: &Pipeline,
    fetched: Option<&crate::fetch::Fetched>,
) -> Result<Inputs, LoadError> {
    let mut problems = Vec::new();
    let index = match &pipeline.index {
        Some(plan) => match load_index(plan, fetched) {
            Ok(ix) => Some(ix),
            Err(LoadError::Problems(p)) => {
                problems.extend(p.0);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let survey = match &pipeline.rci {
        Some(rci) => match read_survey(rci) {
            Ok(raw) => Some(raw),
            Err(p) => {
                problems.extend(p.0);
                None
            }
        },
        None => None,
    };
    let charts = match &pipeline.charts {
        Some(plan) => load_charts(plan).unwrap_or_else(|p| {
            problems.extend(p);
            ChartInputs::default()
        }),
        None => ChartInputs::default(),
    };
    if !problems.is_empty() {
        return Err(LoadError::Problems(Problems(problems)));
    }
    Ok(Inputs {
        index,
        survey,
        charts,
        downloads: fetched.map(|f| f.downloads()).unwrap_or_default(),
        fetch_warnings: fetched.map(|f| f.warnings.clone()).unwrap_or_default(),
    })
}

/// Reads the sources and the other tables of a composite index.
pub fn load_index(
    plan: &Plan,
    fetched: Option<&crate::fetch::Fetched>,
) -> Result<IndexInputs, LoadError> {
    let mut problems = Vec::new();
    let table = match sources::load(plan, fetched) {
        Ok(t) => Some(t),
        Err(LoadError::Problems(p)) => {
            problems.extend(p.0);
            None
        }
        Err(e) => return Err(e),
    };
    let anchoring = match &plan.anchoring {
        Some(a) => match load_anchoring(plan, a) {
            Ok(x) => Some(x),
            Err(LoadError::Problems(p)) => {
                problems.extend(p.0);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let scorecard = match &plan.analysis.scorecard {
        Some(sc) => sources::read_covariate(&sc.covariate)
            .map_err(|p| problems.extend(p))
            .ok(),
        None => None,
    };
    let mut report = None;
    let table = match (table, &plan.rollup) {
        (Some(mut table), Some(rp)) if problems.is_empty() => match roll_up(plan, rp, &table) {
            Ok((frame, r)) => {
                for (id, n) in &r.summary.below_coverage {
                    table.warnings.push(format!(
                        "[rollup]: indicator \"{id}\": {n} parent value(s) left missing, fewer than {:.0}% of their units having one (see rollup.csv)",
                        100.0 * r.summary.min_coverage
                    ));
                }
                table.frame = frame;
                report = Some(r);
                Some(table)
            }
            Err(p) => {
                problems.extend(p.0);
                None
            }
        },
        (t, _) => t,
    };
    match table {
        Some(table) if problems.is_empty() => Ok(IndexInputs {
            table,
            anchoring,
            scorecard,
            rollup: report,
        }),
        _ => Err(LoadError::Problems(Problems(problems))),
    }
}

/// Reads the rollup's mapping and weights, and rolls the sources' territories up.
fn roll_up(
    plan: &Plan,
    rp: &crate::plan::RollupPlan,
    table: &sources::Table,
) -> Result<(polars::prelude::DataFrame, rollup::RollupReport), Problems> {
    let rules = &plan.keys.rules;
    let mapping = match &rp.parent {
        crate::plan::Parent::Prefix(_) => None,
        crate::plan::Parent::Mapping(m) => Some(read_mapping(
            &m.file,
            &m.territory,
            &m.parent,
            m.name.as_deref(),
            &m.declared_at,
            rules,
        )?),
    };
    let weights = match &rp.weight {
        Some(w) => {
            let raw = sources::read_covariate(w).map_err(Problems)?;
            Some(if rules.is_empty() {
                raw
            } else {
                raw.into_iter()
                    .map(|((id, y), v)| ((rules.apply(&id).into_owned(), y), v))
                    .collect()
            })
        }
        None => None,
    };
    rollup::apply(plan, rp, &table.frame, mapping.as_ref(), weights.as_ref())
}

/// A table of territories and their parents; every bad row reported.
fn read_mapping(
    file: &crate::plan::FileRef,
    territory: &str,
    parent: &str,
    name: Option<&str>,
    declared_at: &crate::diagnostic::Location,
    rules: &crate::plan::IdRules,
) -> Result<rollup::Mapping, Problems> {
    let raw = read_file(file, &Default::default()).map_err(|p| Problems(vec![p]))?;
    let mut need = vec![("territory", territory), ("parent", parent)];
    if let Some(n) = name {
        need.push(("parent name", n));
    }
    let problems = raw.missing_columns(&need, declared_at);
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let mut problems = Vec::new();
    let mut cells = CellProblems::new(&mut problems);
    let ids = raw.text(territory).expect("checked");
    let parents = raw.text(parent).expect("checked");
    let names = name.and_then(|n| raw.text(n));
    let mut out = rollup::Mapping::new();
    for i in 0..raw.df.height() {
        let id = ids.get(i).map(str::trim).filter(|s| !s.is_empty());
        let p = parents.get(i).map(str::trim).filter(|s| !s.is_empty());
        let (Some(id), Some(p)) = (id, p) else {
            cells.cell(
                &raw,
                i,
                territory,
                "a territory and its parent are both needed",
            );
            continue;
        };
        let id = rules.apply(id).into_owned();
        let n = names
            .as_ref()
            .and_then(|n| n.get(i))
            .map(|s| s.trim().to_owned());
        if let Some((before, _)) = out.get(&id)
            && before != p
        {
            cells.cell(
                &raw,
                i,
                parent,
                format!("territory \"{id}\" has two parents, \"{before}\" and \"{p}\""),
            );
            continue;
        }
        out.insert(id, (p.to_owned(), n));
    }
    cells.finish();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

fn load_anchoring(plan: &Plan, a: &AnchoringPlan) -> Result<AnchoringInputs, LoadError> {
    let national = if a.national_scores {
        National::Scores(national_scores(plan, a)?)
    } else {
        National::Data(sources::load(&a.national_plan(plan), None)?)
    };
    let population = sources::read_covariate(&a.population).map_err(Problems)?;
    Ok(AnchoringInputs {
        national,
        population,
    })
}

/// A table of national scores: a row per group (× year), a column per node id.
fn national_scores(plan: &Plan, a: &AnchoringPlan) -> Result<NationalScores, Problems> {
    let mut out: NationalScores = HashMap::new();
    let raw = read_file(&a.national, &Default::default()).map_err(|p| Problems(vec![p]))?;
    let mut need = vec![("national id", a.national_id.as_str())];
    if let Some(y) = &plan.keys.year {
        need.push(("year", y.as_str()));
    }
    let mut problems = raw.missing_columns(&need, &a.declared_at);
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let missing = crate::plan::default_missing();
    let mut cells = CellProblems::new(&mut problems);
    let ids = raw.text(&a.national_id).expect("checked column");
    let years = plan
        .keys
        .year
        .as_ref()
        .map(|y| sources::years(&raw, y, &mut cells));
    for node in plan.nodes.iter().filter(|n| n.rule.is_some()) {
        if raw.df.column(&node.id).is_err() {
            continue;
        }
        let values = sources::numbers(&raw, &node.id, &missing, &mut cells);
        for (i, x) in values.into_iter().enumerate() {
            let (Some(id), Some(x)) = (ids.get(i).map(str::trim), x) else {
                continue;
            };
            let year = years.as_ref().and_then(|y| y.get(i));
            out.entry((id.to_owned(), year))
                .or_default()
                .insert(node.id.clone(), x);
        }
    }
    cells.finish();
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

/// Survey columns parsed as numbers: the answers and the weight.
fn numeric_columns(plan: &RciPlan) -> Vec<String> {
    let mut v: Vec<String> = plan.items.iter().map(|i| i.column.clone()).collect();
    v.extend(plan.weight.clone());
    v
}

/// Reads survey microdata, with the answers and weights parsed as numbers while reading.
pub fn read_survey(plan: &RciPlan) -> Result<RawFile, Problems> {
    let numeric = numeric_columns(plan);
    let missing = crate::plan::default_missing();
    // Answers and weights are parsed while reading: a large survey never exists as text.
    let options = ReadOptions {
        numeric: numeric.iter().map(String::as_str).collect(),
        missing: &missing,
    };
    let raw = read_file(&plan.source, &options)?;
    let mut need: Vec<(&str, &str)> = vec![("territory", plan.territory.as_str())];
    if let Some(y) = &plan.year {
        need.push(("year", y));
    }
    if let Some(w) = &plan.weight {
        need.push(("survey weight", w));
    }
    if let Some(r) = &plan.respondent_id {
        need.push(("respondent id", r));
    }
    for s in &plan.subgroups {
        need.push(("subgroup", s));
    }
    for item in &plan.items {
        need.push(("answer", &item.column));
    }
    let problems = raw.missing_columns(&need, &plan.declared_at);
    if problems.is_empty() {
        Ok(raw)
    } else {
        Err(Problems(problems))
    }
}

/// Reads the chart pack's covariate and map, when the charts that use them are drawn.
pub fn load_charts(plan: &ChartsPlan) -> Result<ChartInputs, Vec<Problem>> {
    let mut problems = Vec::new();
    let covariate = match &plan.covariate {
        Some(cv) if plan.wants(ChartKind::Scatter) => sources::read_covariate(cv)
            .map_err(|p| problems.extend(p))
            .ok(),
        _ => None,
    };
    let map = match plan.map.as_ref().filter(|_| plan.wants(ChartKind::Map)) {
        Some(mp) => {
            let text = crate::files::read_regular(&mp.path).and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
            });
            match text {
                Ok(t) => Some(t),
                Err(why) => {
                    problems.push(Problem::new(
                        mp.declared_at.clone(),
                        format!(
                            "cannot use the map boundaries {}: {}",
                            mp.path.display(),
                            if why == "not found" {
                                "file not found".to_owned()
                            } else {
                                why
                            }
                        ),
                    ));
                    None
                }
            }
        }
        None => None,
    };
    if problems.is_empty() {
        Ok(ChartInputs { covariate, map })
    } else {
        Err(problems)
    }
}
