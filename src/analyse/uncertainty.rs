//! Uncertainty and sensitivity of the ranks to methodological choices.
//!
//! Monte Carlo: each run draws, independently, a multiplier in [1 − x, 1 + x] for every
//! weight, and one option per varied choice — normalisation method, aggregation rule (on
//! the levels given), imputation method — among the pipeline's own and the alternatives,
//! recomputes the index and records every territory's rank. Each run has its own
//! generator, seeded from the pipeline's seed and the run's number, so results do not
//! depend on how the runs are spread over threads. Per territory (× year): the nominal
//! rank, the median rank and the 5–95% rank interval.
//!
//! Sensitivity, one choice at a time: each alternative alone (and the weights alone, over
//! up to 100 draws) against the nominal ranks — the mean absolute rank shift says which
//! choice matters most.

use std::collections::HashMap;

use polars::prelude::*;
use serde::Serialize;

use crate::compute::{self, ComputeError};
use crate::config::{ImputeMethod, NormMethod};
use crate::load::IndexInputs;
use crate::plan::{
    Goalposts, Level, Mean, Normalisation, Plan, TERRITORY_ID, TERRITORY_NAME, UncertaintyPlan,
    YEAR,
};
use crate::stats::Rng;
use crate::stats::quantile;

/// A territory (× year).
type Key = (String, Option<i64>);
/// Index rank and score of every territory (× year) in one run.
type Ranks = HashMap<Key, (u32, f64)>;

/// The choices of one run (None: the pipeline's own).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub weights: Option<Vec<f64>>,
    pub normalisation: Option<NormMethod>,
    pub aggregation: Option<Mean>,
    pub imputation: Option<ImputeMethod>,
}

/// The plan of a run: the pipeline's, with the chosen alternatives applied.
pub fn variant(plan: &Plan, u: &UncertaintyPlan, c: &Choices) -> Plan {
    let mut p = plan.clone();
    if let Some(w) = &c.weights {
        for (node, m) in p.nodes.iter_mut().zip(w) {
            node.weight *= m;
        }
    }
    for node in &mut p.nodes {
        if let (Some(mean), Some(rule)) = (c.aggregation, node.rule.as_mut())
            && u.aggregation_levels.contains(&node.level)
        {
            rule.mean = mean;
        }
        if let Some(spec) = node.indicator.as_mut() {
            if let Some(m) = c.normalisation {
                spec.normalisation = match m {
                    NormMethod::Goalposts => match spec.normalisation {
                        n @ Normalisation::Goalposts(_) => n,
                        _ => Normalisation::Goalposts(Goalposts::Observed),
                    },
                    NormMethod::Minmax => Normalisation::MinMax { lo: 0.0, hi: 100.0 },
                    NormMethod::Zscore => Normalisation::ZScore { mean: 0.0, sd: 1.0 },
                    NormMethod::Rank => Normalisation::Rank,
                    NormMethod::Percentile => Normalisation::Percentile { lo: 0.0, hi: 100.0 },
                    NormMethod::DistanceToMax => Normalisation::DistanceToMax,
                    NormMethod::DistanceToTarget => unreachable!("rejected by the plan"),
                };
            }
            if let Some(m) = c.imputation {
                spec.impute = m;
            }
        }
    }
    if c.imputation.is_some() {
        let any = p.indicators().any(|(_, s)| s.impute != ImputeMethod::None);
        p.prep.imputation = any;
    }
    p
}

/// Draws the choices of run `i`.
pub fn draw(plan: &Plan, u: &UncertaintyPlan, i: usize) -> Choices {
    let mut rng = Rng::new(
        u.seed
            ^ (i as u64)
                .wrapping_add(1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let mut pick = |n: usize| ((rng.uniform() * (n + 1) as f64) as usize).min(n);
    // Index 0 is the pipeline's own choice.
    let normalisation = match pick(u.normalisation.len()) {
        0 => None,
        k => Some(u.normalisation[k - 1]),
    };
    let aggregation = match pick(u.aggregation.len()) {
        0 => None,
        k => Some(u.aggregation[k - 1]),
    };
    let imputation = match pick(u.imputation.len()) {
        0 => None,
        k => Some(u.imputation[k - 1]),
    };
    let weights = u.weights.map(|x| {
        plan.nodes
            .iter()
            .map(|n| {
                if n.level == Level::Index {
                    1.0
                } else {
                    1.0 + x * (2.0 * rng.uniform() - 1.0)
                }
            })
            .collect()
    });
    Choices {
        weights,
        normalisation,
        aggregation,
        imputation,
    }
}

/// Index ranks and scores of one computed frame.
fn ranks(plan: &Plan, frame: &DataFrame) -> PolarsResult<Ranks> {
    let id = &plan.nodes[0].id;
    let t = frame.column(TERRITORY_ID)?.str()?;
    let y = frame.column(YEAR)?.i64()?;
    let r = frame.column(&crate::aggregate::rank_column(id))?.u32()?;
    let v = frame.column(id)?.f64()?;
    Ok((0..frame.height())
        .filter_map(|i| Some(((t.get(i)?.to_owned(), y.get(i)), (r.get(i)?, v.get(i)?))))
        .collect())
}

/// What runs start from: a frame prepared with one imputation choice and normalised with
/// one normalisation choice (None: the pipeline's own), and each of its rows' place among
/// the nominal keys. Runs vary weights and aggregation on top of it.
struct Start {
    frame: DataFrame,
    slots: Vec<Option<usize>>,
}

type Starts = Vec<(
    (Option<ImputeMethod>, Option<NormMethod>),
    Result<Start, String>,
)>;

/// Per nominal key (in the order of the nominal keys), its rank in one run.
type RunRanks = Vec<Option<u32>>;

/// Every start the runs can use, or why it could not be computed (each run that draws it
/// then fails with that reason).
fn starts(
    plan: &Plan,
    u: &UncertaintyPlan,
    inputs: &IndexInputs,
    slot_of: &HashMap<Key, usize>,
) -> Starts {
    let mut out = Vec::new();
    for imputation in std::iter::once(None).chain(u.imputation.iter().copied().map(Some)) {
        let c = Choices {
            imputation,
            ..Default::default()
        };
        let prepared = compute::prepared(&variant(plan, u, &c), inputs).map_err(|e| e.to_string());
        for normalisation in std::iter::once(None).chain(u.normalisation.iter().copied().map(Some))
        {
            let c = Choices {
                imputation,
                normalisation,
                ..Default::default()
            };
            let start = prepared.clone().and_then(|frame| {
                let frame =
                    compute::normalised(&variant(plan, u, &c), frame).map_err(|e| e.to_string())?;
                let slots = slots(&frame, slot_of).map_err(|e| e.to_string())?;
                Ok(Start { frame, slots })
            });
            out.push(((imputation, normalisation), start));
        }
    }
    out
}

/// Each row's place among the nominal keys.
fn slots(frame: &DataFrame, slot_of: &HashMap<Key, usize>) -> PolarsResult<Vec<Option<usize>>> {
    let t = frame.column(TERRITORY_ID)?.str()?;
    let y = frame.column(YEAR)?.i64()?;
    Ok(t.iter()
        .zip(y.iter())
        .map(|(t, y)| slot_of.get(&(t?.to_owned(), y)).copied())
        .collect())
}

/// Computes one variant from its start: the index rank of every nominal key, or why it
/// could not be computed. Only what the choices change is recomputed: the aggregation
/// (weights and rules) and the index rank.
fn one(
    plan: &Plan,
    u: &UncertaintyPlan,
    c: &Choices,
    starts: &Starts,
    inputs: &IndexInputs,
    slot_of: &HashMap<Key, usize>,
) -> Result<RunRanks, String> {
    let start = starts
        .iter()
        .find(|(k, _)| *k == (c.imputation, c.normalisation))
        .map(|(_, s)| s.as_ref())
        .expect("every choice has its start")
        .map_err(Clone::clone)?;
    let plan = variant(plan, u, c);
    let rank =
        compute::index_ranks(&plan, start.frame.clone(), inputs).map_err(|e| e.to_string())?;
    // The aggregation keeps the rows of its start.
    if rank.len() != start.slots.len() {
        return Err(format!(
            "the aggregation returned {} rows for {}",
            rank.len(),
            start.slots.len()
        ));
    }
    let mut out = vec![None; slot_of.len()];
    for (slot, rank) in start.slots.iter().zip(rank) {
        if let Some(s) = slot {
            out[*s] = rank;
        }
    }
    Ok(out)
}

fn mean_abs_shift(nominal: &[u32], run: &RunRanks) -> (f64, f64) {
    let shifts: Vec<f64> = nominal
        .iter()
        .zip(run)
        .filter_map(|(r, s)| s.map(|s| (s as f64 - *r as f64).abs()))
        .collect();
    if shifts.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (
        shifts.iter().sum::<f64>() / shifts.len() as f64,
        shifts.iter().copied().fold(0.0, f64::max),
    )
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub succeeded: usize,
    /// The first reasons runs failed (e.g. a geometric mean of a zero), with counts.
    pub failures: Vec<(String, usize)>,
    pub seed: u64,
    pub files: [&'static str; 2],
}

/// The analysis: uncertainty table, sensitivity table and summary.
pub fn analyse(
    plan: &Plan,
    u: &UncertaintyPlan,
    inputs: &IndexInputs,
    tick: &(dyn Fn(usize) + Sync),
) -> Result<(DataFrame, DataFrame, Summary), ComputeError> {
    let nominal_computed = compute::compute(plan, inputs)?;
    let nominal = ranks(plan, &nominal_computed.frame)?;
    let names: HashMap<String, String> = {
        let f = &nominal_computed.frame;
        let t = f.column(TERRITORY_ID)?.str()?;
        let n = f.column(TERRITORY_NAME)?.cast(&DataType::String)?;
        let n = n.str()?;
        (0..f.height())
            .filter_map(|i| {
                Some((
                    t.get(i)?.to_owned(),
                    n.get(i).unwrap_or(t.get(i)?).to_owned(),
                ))
            })
            .collect()
    };
    let mut keys: Vec<Key> = nominal.keys().cloned().collect();
    keys.sort();
    let slot_of: HashMap<Key, usize> = keys.iter().cloned().zip(0..).collect();
    let nominal_ranks: Vec<u32> = keys.iter().map(|k| nominal[k].0).collect();
    let starts = starts(plan, u, inputs, &slot_of);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<RunRanks, String>> = run_all(u.runs, |i| {
        let r = one(plan, u, &draw(plan, u, i), &starts, inputs, &slot_of);
        tick(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        r
    })?;

    // Per territory: ranks over the successful runs.
    let mut failures: Vec<(String, usize)> = Vec::new();
    let mut by_key: Vec<Vec<f64>> = vec![Vec::new(); keys.len()];
    let mut succeeded = 0;
    for r in &results {
        match r {
            Ok(ranks) => {
                succeeded += 1;
                for (all, rank) in by_key.iter_mut().zip(ranks) {
                    if let Some(rank) = rank {
                        all.push(*rank as f64);
                    }
                }
            }
            Err(e) => match failures.iter_mut().find(|(m, _)| m == e) {
                Some((_, n)) => *n += 1,
                None => failures.push((e.clone(), 1)),
            },
        }
    }
    let (mut tid, mut tname, mut year, mut score, mut nrank) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut median, mut p05, mut p95, mut width, mut count) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (k, mut rs) in keys.iter().zip(by_key) {
        let (r, v) = nominal[k];
        rs.sort_by(|a, b| a.total_cmp(b));
        tid.push(k.0.clone());
        tname.push(names.get(&k.0).cloned().unwrap_or_else(|| k.0.clone()));
        year.push(k.1);
        score.push(v);
        nrank.push(r);
        count.push(rs.len() as u32);
        if rs.is_empty() {
            median.push(None);
            p05.push(None);
            p95.push(None);
            width.push(None);
        } else {
            let (a, b) = (quantile(&rs, 0.05), quantile(&rs, 0.95));
            median.push(Some(quantile(&rs, 0.5)));
            p05.push(Some(a));
            p95.push(Some(b));
            width.push(Some(b - a));
        }
    }
    let uncertainty = DataFrame::new(
        tid.len(),
        vec![
            Column::new(TERRITORY_ID.into(), tid),
            Column::new(TERRITORY_NAME.into(), tname),
            Column::new(YEAR.into(), year),
            Column::new("nominal_score".into(), score),
            Column::new("nominal_rank".into(), nrank),
            Column::new("median_rank".into(), median),
            Column::new("rank_p05".into(), p05),
            Column::new("rank_p95".into(), p95),
            Column::new("rank_interval".into(), width),
            Column::new("runs".into(), count),
        ],
    )?;

    // One choice at a time.
    let mut alternatives: Vec<(&str, String, Vec<Choices>)> = Vec::new();
    for &m in &u.normalisation {
        let c = Choices {
            normalisation: Some(m),
            ..Default::default()
        };
        alternatives.push(("normalisation", m.to_string(), vec![c]));
    }
    for &m in &u.aggregation {
        let c = Choices {
            aggregation: Some(m),
            ..Default::default()
        };
        alternatives.push(("aggregation", describe(m), vec![c]));
    }
    for &m in &u.imputation {
        let c = Choices {
            imputation: Some(m),
            ..Default::default()
        };
        alternatives.push(("imputation", m.to_string(), vec![c]));
    }
    if let Some(x) = u.weights {
        let draws = (0..u.runs.min(100))
            .map(|i| Choices {
                weights: draw(plan, u, i).weights,
                ..Default::default()
            })
            .collect();
        alternatives.push(("weights", format!("±{:.0}%", 100.0 * x), draws));
    }
    let (mut factor, mut option, mut runs, mut mean, mut max) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (f, o, choices) in alternatives {
        let shifts: Vec<(f64, f64)> = run_all(choices.len(), |k| {
            one(plan, u, &choices[k], &starts, inputs, &slot_of)
                .ok()
                .map(|r| mean_abs_shift(&nominal_ranks, &r))
        })?
        .into_iter()
        .flatten()
        .collect();
        factor.push(f);
        option.push(o);
        runs.push(shifts.len() as u32);
        mean.push(
            (!shifts.is_empty())
                .then(|| shifts.iter().map(|s| s.0).sum::<f64>() / shifts.len() as f64),
        );
        max.push(shifts.iter().map(|s| s.1).reduce(f64::max));
    }
    let sensitivity = DataFrame::new(
        factor.len(),
        vec![
            Column::new("factor".into(), factor),
            Column::new("option".into(), option),
            Column::new("runs".into(), runs),
            Column::new("mean_abs_rank_shift".into(), mean),
            Column::new("max_abs_rank_shift".into(), max),
        ],
    )?;
    failures.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    failures.truncate(5);
    Ok((
        uncertainty,
        sensitivity,
        Summary {
            runs: u.runs,
            succeeded,
            failures,
            seed: u.seed,
            files: ["uncertainty.csv", "sensitivity.csv"],
        },
    ))
}

/// `f(0..n)` on as many threads as there are cores, each run after the other on its
/// thread; results in run order.
///
/// Not a rayon pool: a rayon worker waiting for polars' own pool keeps busy by starting
/// another run, so runs pile up on each thread, each holding its frames (1.7 GiB after
/// 300 runs of the panel's latest year, growing with the number of runs). Plain threads
/// wait. Their stacks are large because polars plans a query recursively over its
/// expression trees, deeper than a default thread's stack allows for EU-SPI's framework.
fn run_all<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Result<Vec<T>, ComputeError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let next = AtomicUsize::new(0);
    let work = || {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return mine;
            }
            mine.push((i, f(i)));
        }
    };
    let parts = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let handle = std::thread::Builder::new()
                .name("monte-carlo".into())
                .stack_size(64 << 20)
                .spawn_scoped(s, work)
                .map_err(|e| {
                    ComputeError::Problems(crate::diagnostic::Problems(vec![
                        crate::diagnostic::Problem::new(
                            crate::diagnostic::Location::Nowhere,
                            format!("starting the Monte Carlo threads: {e}"),
                        ),
                    ]))
                })?;
            handles.push(handle);
        }
        // This thread is one of polars' workers (cli::main installs every command on its
        // pool), and the runs' polars queries (national scores, PCA) are queued there:
        // blocked in join, it would leave them a worker short, none on one core. It runs
        // the pool's queued jobs while it waits.
        while !handles.iter().all(|h| h.is_finished()) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        Ok::<_, ComputeError>(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Vec<_>>(),
        )
    })?;
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, v) in parts.into_iter().flatten() {
        out[i] = Some(v);
    }
    Ok(out
        .into_iter()
        .map(|v| v.expect("every run is done by one thread"))
        .collect())
}

fn describe(m: Mean) -> String {
    match m {
        Mean::Arithmetic => "arithmetic".into(),
        Mean::Geometric => "geometric".into(),
        Mean::Harmonic => "harmonic".into(),
        Mean::Power(p) => format!("power p = {p}"),
    }
}
