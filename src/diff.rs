//! What moved between two runs of a pipeline, for the morning after a nightly batch:
//! territories that appeared or disappeared, score deltas and rank moves per node above
//! thresholds, the input files whose digest changed, the settings that changed (key by
//! key), and for each large index move the components and indicators that made it.
//!
//! Attribution follows the aggregation, level by level, with the new run's framework:
//! a parent `P` of children `x` with weights `w` over the children present in both runs
//! changes by `ΔP = Σ w·Δx / Σ w` for an arithmetic mean, so child `c` contributes exactly
//! `w_c·Δx_c / Σ w`. Other means are decomposed on the scale where they are arithmetic —
//! `Δ(P^p) = Σ w·Δ(x^p) / Σ w` (power), `Δ ln P = Σ w·Δ ln x / Σ w` (geometric),
//! `Δ(1/P) = Σ w·Δ(1/x) / Σ w` (harmonic) — and each child gets its term's share of that
//! change, times `ΔP`. Shares of a parent's move sum to 1; a child's share of the index
//! move is the product of the shares down its path. Where the children present differ
//! between the runs, or a parent did not move, no attribution is given below it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::plan::{Level, Mean, Plan};

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read the run in {}: {why}", dir.display())]
    Run { dir: PathBuf, why: String },
}

/// Thresholds of what is worth reporting.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Rank moves of at least this many places.
    pub min_rank_move: u32,
    /// Score changes of at least this much (0–100 scale).
    pub min_delta: f64,
}

/// One territory (× year) × node present in both runs and moving beyond a threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub territory_id: String,
    pub territory_name: String,
    pub year: Option<i64>,
    pub level: String,
    pub node_id: String,
    pub old_value: Option<f64>,
    pub new_value: Option<f64>,
    pub delta: Option<f64>,
    pub old_rank: Option<u32>,
    pub new_rank: Option<u32>,
    /// Positive: climbed (a smaller rank number).
    pub rank_move: Option<i64>,
}

/// A node's part in a territory's index move.
#[derive(Debug, Clone, Serialize)]
pub struct Contribution {
    pub node_id: String,
    pub level: String,
    /// Share of the index move (sums to 1 over the nodes of one level).
    pub share: f64,
    /// Points of the index move (share × index delta).
    pub points: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    pub territory_id: String,
    pub territory_name: String,
    pub year: Option<i64>,
    pub index_delta: f64,
    pub rank_move: Option<i64>,
    /// The largest contributions first, components then indicators.
    pub contributions: Vec<Contribution>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedFile {
    pub path: String,
    pub old_sha256: Option<String>,
    pub new_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangedSetting {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Everything `diff` reports.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub old_run: String,
    pub new_run: String,
    pub summary: String,
    pub appeared: Vec<String>,
    pub disappeared: Vec<String>,
    /// Index scores that became missing.
    pub lost_scores: Vec<String>,
    pub moves: Vec<Move>,
    pub changed_files: Vec<ChangedFile>,
    pub changed_settings: Vec<ChangedSetting>,
    pub attributions: Vec<Attribution>,
}

/// A territory (× year) × node.
type Key = (String, Option<i64>, String);

/// The scores of one run: (territory, year, node) → (value, rank), names, and levels.
struct Scores {
    cells: HashMap<Key, (Option<f64>, Option<u32>)>,
    names: HashMap<String, String>,
    levels: HashMap<String, String>,
    territories: BTreeSet<String>,
}

fn read_scores(dir: &Path) -> Result<Scores, DiffError> {
    let fail = |why: String| DiffError::Run {
        dir: dir.to_path_buf(),
        why,
    };
    let file = crate::write::open_scores(dir).map_err(fail)?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|_| fail("scores.parquet is not a readable Parquet file".into()))?;
    let text = |name: &str| -> Result<StringChunked, DiffError> {
        let c = df
            .column(name)
            .map_err(|_| fail(format!("scores.parquet has no column {name}")))?;
        c.cast(&DataType::String)
            .ok()
            .and_then(|c| c.str().ok().cloned())
            .ok_or_else(|| fail(format!("column {name} is not text")))
    };
    let number = |name: &str| -> Result<Float64Chunked, DiffError> {
        let c = df
            .column(name)
            .map_err(|_| fail(format!("scores.parquet has no column {name}")))?;
        c.cast(&DataType::Float64)
            .ok()
            .and_then(|c| c.f64().ok().cloned())
            .ok_or_else(|| fail(format!("column {name} is not numeric")))
    };
    let (ids, names, levels, nodes) = (
        text("territory_id")?,
        text("territory_name")?,
        text("level")?,
        text("node_id")?,
    );
    let (years, values, ranks) = (number("year")?, number("value")?, number("rank")?);
    let mut out = Scores {
        cells: HashMap::new(),
        names: HashMap::new(),
        levels: HashMap::new(),
        territories: BTreeSet::new(),
    };
    for i in 0..df.height() {
        let (Some(id), Some(node)) = (ids.get(i), nodes.get(i)) else {
            continue;
        };
        let year = years.get(i).map(|y| y as i64);
        out.territories.insert(id.to_owned());
        if let Some(n) = names.get(i) {
            out.names
                .entry(id.to_owned())
                .or_insert_with(|| n.to_owned());
        }
        if let Some(l) = levels.get(i) {
            out.levels
                .entry(node.to_owned())
                .or_insert_with(|| l.to_owned());
        }
        out.cells.insert(
            (id.to_owned(), year, node.to_owned()),
            (values.get(i), ranks.get(i).map(|r| r as u32)),
        );
    }
    Ok(out)
}

fn read_manifest(dir: &Path) -> Result<serde_json::Value, DiffError> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).map_err(|e| DiffError::Run {
        dir: dir.to_path_buf(),
        why: format!("manifest.json: {e}"),
    })?;
    serde_json::from_str(&text).map_err(|e| DiffError::Run {
        dir: dir.to_path_buf(),
        why: format!("manifest.json is not valid JSON: {e}"),
    })
}

/// Compares two run directories. `plan` is the pipeline's framework (the new run's),
/// used to attribute index moves to the nodes below.
pub fn diff(
    plan: Option<&Plan>,
    old_dir: &Path,
    new_dir: &Path,
    t: Thresholds,
) -> Result<Diff, DiffError> {
    let (old, new) = (read_scores(old_dir)?, read_scores(new_dir)?);
    let (mo, mn) = (read_manifest(old_dir)?, read_manifest(new_dir)?);
    let run_name = |m: &serde_json::Value, dir: &Path| {
        m["run"]["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| dir.display().to_string())
    };
    let appeared: Vec<String> = new
        .territories
        .difference(&old.territories)
        .cloned()
        .collect();
    let disappeared: Vec<String> = old
        .territories
        .difference(&new.territories)
        .cloned()
        .collect();
    let name_of = |id: &str| {
        new.names
            .get(id)
            .or_else(|| old.names.get(id))
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    };

    // Moves, in a stable order: level (index first), then the largest rank move.
    let level_order = |l: &str| match l {
        "index" => 0,
        "dimension" => 1,
        "component" => 2,
        _ => 3,
    };
    let mut moves = Vec::new();
    let mut lost_scores = Vec::new();
    let mut keys: Vec<&Key> = new.cells.keys().collect();
    keys.sort();
    for key in keys {
        let Some(&(ov, or)) = old.cells.get(key) else {
            continue;
        };
        let (nv, nr) = new.cells[key];
        let level = new.levels.get(&key.2).cloned().unwrap_or_default();
        let delta = match (ov, nv) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let rank_move = match (or, nr) {
            (Some(a), Some(b)) => Some(i64::from(a) - i64::from(b)),
            _ => None,
        };
        if level == "index" && ov.is_some() && nv.is_none() {
            lost_scores.push(key.0.clone());
        }
        let big = rank_move.is_some_and(|m| m.unsigned_abs() >= u64::from(t.min_rank_move))
            || delta.is_some_and(|d| d.abs() >= t.min_delta)
            || ov.is_some() != nv.is_some();
        if big {
            moves.push(Move {
                territory_id: key.0.clone(),
                territory_name: name_of(&key.0),
                year: key.1,
                level,
                node_id: key.2.clone(),
                old_value: ov,
                new_value: nv,
                delta,
                old_rank: or,
                new_rank: nr,
                rank_move,
            });
        }
    }
    moves.sort_by(|a, b| {
        level_order(&a.level)
            .cmp(&level_order(&b.level))
            .then(
                b.rank_move
                    .map_or(0, i64::abs)
                    .cmp(&a.rank_move.map_or(0, i64::abs)),
            )
            .then(
                b.delta
                    .map_or(0.0, f64::abs)
                    .total_cmp(&a.delta.map_or(0.0, f64::abs)),
            )
            .then(a.territory_id.cmp(&b.territory_id))
            .then(a.year.cmp(&b.year))
            .then(a.node_id.cmp(&b.node_id))
    });

    let changed_files = changed_files(&mo, &mn);
    let changed_settings = changed_settings(old_dir, new_dir);

    let attributions = match plan {
        Some(plan) => moves
            .iter()
            .filter(|m| m.level == "index" && m.delta.is_some_and(|d| d != 0.0))
            .filter_map(|m| attribute(plan, &old, &new, m))
            .collect(),
        None => Vec::new(),
    };

    let index_moves = moves
        .iter()
        .filter(|m| {
            m.level == "index"
                && m.rank_move
                    .is_some_and(|r| r.unsigned_abs() >= u64::from(t.min_rank_move))
        })
        .count();
    let mut parts = vec![format!(
        "{index_moves} territor{} moved {} or more places in the index",
        if index_moves == 1 { "y" } else { "ies" },
        t.min_rank_move
    )];
    if !appeared.is_empty() || !disappeared.is_empty() {
        parts.push(format!(
            "{} territories appeared and {} disappeared",
            appeared.len(),
            disappeared.len()
        ));
    }
    if !lost_scores.is_empty() {
        parts.push(format!("{} index scores became missing", lost_scores.len()));
    }
    if changed_files.is_empty() {
        parts.push("inputs unchanged".into());
    } else {
        let files: Vec<String> = changed_files
            .iter()
            .map(|f| {
                let short = |s: &Option<String>| {
                    s.as_deref()
                        .map_or("none".to_owned(), |h| h.chars().take(8).collect())
                };
                format!(
                    "{} ({} → {})",
                    f.path,
                    short(&f.old_sha256),
                    short(&f.new_sha256)
                )
            })
            .collect();
        parts.push(format!("inputs changed: {}", files.join(", ")));
    }
    if changed_settings.is_empty() {
        parts.push("config unchanged".into());
    } else {
        parts.push(format!(
            "config changed: {}",
            describe_settings(&changed_settings)
        ));
    }
    Ok(Diff {
        old_run: run_name(&mo, old_dir),
        new_run: run_name(&mn, new_dir),
        summary: parts.join("; ") + ".",
        appeared,
        disappeared,
        lost_scores,
        moves,
        changed_files,
        changed_settings,
        attributions,
    })
}

/// The input files a manifest lists, path → SHA-256.
pub fn manifest_files(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f["path"].as_str()?.to_owned(),
                f["sha256"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn changed_files(a: &serde_json::Value, b: &serde_json::Value) -> Vec<ChangedFile> {
    let (fa, fb) = (manifest_files(a), manifest_files(b));
    let paths: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    paths
        .into_iter()
        .filter(|p| fa.get(*p) != fb.get(*p))
        .map(|p| ChangedFile {
            path: p.clone(),
            old_sha256: fa.get(p).cloned(),
            new_sha256: fb.get(p).cloned(),
        })
        .collect()
}

/// Settings that differ between the two runs' pipeline files, as dotted keys. Tables of
/// arrays with an `id` (`[[indicator]]`, `[[component]]`…) are keyed by it, so that a
/// reordering is no change and a goalpost reads `indicator.life_expectancy.utopia`.
fn changed_settings(old_dir: &Path, new_dir: &Path) -> Vec<ChangedSetting> {
    let read = |d: &Path| -> Option<toml::Table> {
        std::fs::read_to_string(d.join("pipeline.toml"))
            .ok()?
            .parse()
            .ok()
    };
    let (Some(a), Some(b)) = (read(old_dir), read(new_dir)) else {
        return Vec::new();
    };
    let (fa, fb) = (flatten(&a), flatten(&b));
    let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| ChangedSetting {
            key: k.clone(),
            old: fa.get(k).cloned(),
            new: fb.get(k).cloned(),
        })
        .collect()
}

fn flatten(t: &toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    walk(&join(prefix, k), v, out);
                }
            }
            toml::Value::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.get("id").and_then(|x| x.as_str()).is_some()) =>
            {
                for item in items {
                    let id = item.get("id").and_then(|x| x.as_str()).expect("checked");
                    walk(&join(prefix, id), item, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    fn join(a: &str, b: &str) -> String {
        if a.is_empty() {
            b.to_owned()
        } else {
            format!("{a}.{b}")
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in t {
        walk(k, v, &mut out);
    }
    out
}

/// "goalposts of 2 indicators, weights of 1 node, …" from changed keys.
fn describe_settings(s: &[ChangedSetting]) -> String {
    let mut kinds: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in s {
        let parts: Vec<&str> = c.key.split('.').collect();
        let last = *parts.last().unwrap_or(&"");
        let owner = if parts.len() >= 2 {
            parts[..parts.len() - 1].join(".")
        } else {
            c.key.clone()
        };
        let kind = match last {
            "utopia" | "dystopia" | "goalposts" | "cap_max" | "cap_min" | "target" => {
                "goalposts".to_owned()
            }
            "weight" => "weights".to_owned(),
            "method" | "p" | "min_share" | "aggregation" | "normalisation" => "methods".to_owned(),
            // Anything else by the table it is in: "[anchoring]", "[charts]"…
            _ => format!("[{}]", parts[0]),
        };
        kinds.entry(kind).or_default().insert(owner);
    }
    kinds
        .iter()
        .map(|(k, owners)| {
            if k.starts_with('[') {
                k.clone()
            } else {
                format!("{k} of {}", owners.len())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A territory's index move split over the components and indicators beneath, level by
/// level (see the module docs).
fn attribute(plan: &Plan, old: &Scores, new: &Scores, m: &Move) -> Option<Attribution> {
    let index_delta = m.delta?;
    let key = |node: &str| (m.territory_id.clone(), m.year, node.to_owned());
    let value = |s: &Scores, node: &str| s.cells.get(&key(node)).and_then(|c| c.0);
    // Shares of the index move, node by node, from the top down.
    let mut share: HashMap<usize, f64> = HashMap::new();
    share.insert(0, 1.0);
    let mut contributions = Vec::new();
    for level in [Level::Index, Level::Dimension, Level::Component] {
        for (p, parent) in plan.nodes.iter().enumerate() {
            if parent.level != level {
                continue;
            }
            let Some(&parent_share) = share.get(&p) else {
                continue;
            };
            let rule = parent.rule.as_ref()?;
            let children: Vec<(usize, f64, f64, f64)> = parent
                .children
                .iter()
                .filter_map(|&c| {
                    let id = &plan.nodes[c].id;
                    Some((c, plan.nodes[c].weight, value(old, id)?, value(new, id)?))
                })
                .collect();
            // Children present in one run only: no exact split of this parent's move.
            let present_in_either = parent
                .children
                .iter()
                .filter(|&&c| {
                    let id = &plan.nodes[c].id;
                    value(old, id).is_some() || value(new, id).is_some()
                })
                .count();
            if children.len() != present_in_either || children.is_empty() {
                continue;
            }
            let term = |x: f64| -> Option<f64> {
                match rule.mean {
                    Mean::Arithmetic => Some(x),
                    Mean::Power(p) => Some(x.powf(p)),
                    Mean::Geometric => (x > 0.0).then(|| x.ln()),
                    Mean::Harmonic => (x != 0.0).then(|| 1.0 / x),
                }
            };
            let terms: Vec<f64> = children
                .iter()
                .map(|&(_, w, a, b)| Some(w * (term(b)? - term(a)?)))
                .collect::<Option<_>>()?;
            let total: f64 = terms.iter().sum();
            if total == 0.0 || !total.is_finite() {
                continue;
            }
            for (&(c, _, _, _), t) in children.iter().zip(&terms) {
                let s = parent_share * t / total;
                share.insert(c, s);
                let child = &plan.nodes[c];
                if matches!(child.level, Level::Component | Level::Indicator) {
                    contributions.push(Contribution {
                        node_id: child.id.clone(),
                        level: child.level.to_string(),
                        share: s,
                        points: s * index_delta,
                    });
                }
            }
        }
    }
    contributions.sort_by(|a, b| {
        (a.level != "component")
            .cmp(&(b.level != "component"))
            .then(b.share.abs().total_cmp(&a.share.abs()))
            .then(a.node_id.cmp(&b.node_id))
    });
    Some(Attribution {
        territory_id: m.territory_id.clone(),
        territory_name: m.territory_name.clone(),
        year: m.year,
        index_delta,
        rank_move: m.rank_move,
        contributions,
    })
}

/// `diff.csv`: one row per move, then the attributions as rows of their own.
pub fn moves_table(d: &Diff) -> PolarsResult<DataFrame> {
    let n = d.moves.len();
    let s = |f: fn(&Move) -> String| d.moves.iter().map(f).collect::<Vec<_>>();
    DataFrame::new(
        n,
        vec![
            Column::new("territory_id".into(), s(|m| m.territory_id.clone())),
            Column::new("territory_name".into(), s(|m| m.territory_name.clone())),
            Column::new(
                "year".into(),
                d.moves.iter().map(|m| m.year).collect::<Vec<_>>(),
            ),
            Column::new("level".into(), s(|m| m.level.clone())),
            Column::new("node_id".into(), s(|m| m.node_id.clone())),
            Column::new(
                "old_value".into(),
                d.moves.iter().map(|m| m.old_value).collect::<Vec<_>>(),
            ),
            Column::new(
                "new_value".into(),
                d.moves.iter().map(|m| m.new_value).collect::<Vec<_>>(),
            ),
            Column::new(
                "delta".into(),
                d.moves.iter().map(|m| m.delta).collect::<Vec<_>>(),
            ),
            Column::new(
                "old_rank".into(),
                d.moves.iter().map(|m| m.old_rank).collect::<Vec<_>>(),
            ),
            Column::new(
                "new_rank".into(),
                d.moves.iter().map(|m| m.new_rank).collect::<Vec<_>>(),
            ),
            Column::new(
                "rank_move".into(),
                d.moves.iter().map(|m| m.rank_move).collect::<Vec<_>>(),
            ),
        ],
    )
}

/// A condition of `--fail-on`: `rank_move>10`, `delta>5`, `missing>0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailOn {
    /// Some index rank moved by more than this many places.
    RankMove(f64),
    /// Some index score changed by more than this.
    Delta(f64),
    /// More than this many territories disappeared or lost their index score.
    Missing(f64),
}

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (what, limit) = s
            .split_once('>')
            .ok_or_else(|| format!("\"{s}\": expected rank_move>N, delta>X or missing>N"))?;
        let limit: f64 = limit
            .trim()
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| format!("\"{s}\": the limit must be a number"))?;
        match what.trim() {
            "rank_move" => Ok(FailOn::RankMove(limit)),
            "delta" => Ok(FailOn::Delta(limit)),
            "missing" => Ok(FailOn::Missing(limit)),
            other => Err(format!("\"{other}\": expected rank_move, delta or missing")),
        }
    }
}

impl FailOn {
    /// The condition's description when the diff meets it.
    pub fn met(&self, d: &Diff) -> Option<String> {
        let index = d.moves.iter().filter(|m| m.level == "index");
        match *self {
            FailOn::RankMove(n) => {
                let worst = index.filter_map(|m| m.rank_move).map(i64::abs).max()?;
                (worst as f64 > n).then(|| format!("an index rank moved {worst} places (> {n})"))
            }
            FailOn::Delta(x) => {
                let worst = index
                    .filter_map(|m| m.delta)
                    .map(f64::abs)
                    .fold(0.0, f64::max);
                (worst > x).then(|| format!("an index score changed by {worst:.2} (> {x})"))
            }
            FailOn::Missing(n) => {
                let count = d.disappeared.len() + d.lost_scores.len();
                (count as f64 > n).then(|| {
                    format!("{count} territories disappeared or lost their index score (> {n})")
                })
            }
        }
    }
}
