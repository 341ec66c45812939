//! A few territories side by side in one run: every node's score and rank, each
//! territory's group median (the median of the other territories of its group, as on the
//! radar charts) and its difference from it, and the difference from the first territory
//! named. Read from a written run (`scores.parquet`), so it never recomputes.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use crate::plan::{Level, Plan};
pub use crate::render::compare::{Comparison, Row, Territory, figure};

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read the run in {}: {why}", dir.display())]
    Run {
        dir: std::path::PathBuf,
        why: String,
    },
    #[error("{0}")]
    Territories(String),
}

/// Compares `ids` in the run at `dir`, for `year` (default: the latest), over the
/// index, dimensions and components of `plan` (indicators too with `indicators`).
pub fn compare(
    plan: &Plan,
    dir: &Path,
    ids: &[String],
    year: Option<i64>,
    indicators: bool,
) -> Result<Comparison, CompareError> {
    let fail = |why: String| CompareError::Run {
        dir: dir.to_path_buf(),
        why,
    };
    if ids.len() < 2 {
        return Err(CompareError::Territories(
            "compare needs at least two territories (--territories A,B)".into(),
        ));
    }
    let file = crate::write::open_scores(dir).map_err(fail)?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|_| fail("scores.parquet is not a readable Parquet file".into()))?;
    let text = |name: &str| -> Result<StringChunked, CompareError> {
        df.column(name)
            .ok()
            .and_then(|c| c.cast(&DataType::String).ok())
            .and_then(|c| c.str().ok().cloned())
            .ok_or_else(|| fail(format!("scores.parquet has no text column {name}")))
    };
    let number = |name: &str| -> Result<Float64Chunked, CompareError> {
        df.column(name)
            .ok()
            .and_then(|c| c.cast(&DataType::Float64).ok())
            .and_then(|c| c.f64().ok().cloned())
            .ok_or_else(|| fail(format!("scores.parquet has no numeric column {name}")))
    };
    let (tid, tname, group, node) = (
        text("territory_id")?,
        text("territory_name")?,
        text("group")?,
        text("node_id")?,
    );
    let (years, values, ranks) = (number("year")?, number("value")?, number("rank")?);
    let year = match year {
        Some(y) => Some(y),
        None => years.iter().flatten().map(|y| y as i64).max(),
    };
    // (territory, node) → (value, rank) for the year; territory → (name, group).
    let mut cells: HashMap<(String, String), (Option<f64>, Option<u32>)> = HashMap::new();
    let mut who: HashMap<String, (String, Option<String>)> = HashMap::new();
    for i in 0..df.height() {
        if years.get(i).map(|y| y as i64) != year {
            continue;
        }
        let (Some(t), Some(n)) = (tid.get(i), node.get(i)) else {
            continue;
        };
        who.entry(t.to_owned()).or_insert_with(|| {
            (
                tname.get(i).unwrap_or(t).to_owned(),
                group.get(i).map(str::to_owned),
            )
        });
        cells.insert(
            (t.to_owned(), n.to_owned()),
            (values.get(i), ranks.get(i).map(|r| r as u32)),
        );
    }
    let unknown: Vec<&String> = ids.iter().filter(|id| !who.contains_key(*id)).collect();
    if !unknown.is_empty() {
        let mut known: Vec<&String> = who.keys().collect();
        known.sort();
        let mut msg = format!(
            "not in the run{}: {}",
            year.map_or(String::new(), |y| format!(" for {y}")),
            crate::diagnostic::list(&unknown, 10)
        );
        if let Some(s) = unknown
            .first()
            .and_then(|u| crate::diagnostic::closest(u, known.iter().map(|k| k.as_str())))
        {
            msg.push_str(&format!(" (did you mean \"{s}\"?)"));
        }
        return Err(CompareError::Territories(msg));
    }
    let territories: Vec<Territory> = ids
        .iter()
        .map(|id| Territory {
            id: id.clone(),
            name: who[id].0.clone(),
            group: who[id].1.clone(),
        })
        .collect();
    let mut rows = Vec::new();
    let levels: &[Level] = if indicators {
        &[
            Level::Index,
            Level::Dimension,
            Level::Component,
            Level::Indicator,
        ]
    } else {
        &[Level::Index, Level::Dimension, Level::Component]
    };
    for &level in levels {
        for n in plan.nodes_at(level) {
            let get = |t: &str| cells.get(&(t.to_owned(), n.id.clone())).copied();
            let group_median = |t: &Territory| -> Option<f64> {
                let mut v: Vec<f64> = who
                    .iter()
                    .filter(|(id, (_, g))| *id != &t.id && g == &t.group)
                    .filter_map(|(id, _)| get(id).and_then(|c| c.0))
                    .collect();
                crate::stats::median(&mut v)
            };
            rows.push(Row {
                level: level.to_string(),
                node_id: n.id.clone(),
                node_name: n.name.clone(),
                values: territories
                    .iter()
                    .map(|t| get(&t.id).and_then(|c| c.0))
                    .collect(),
                ranks: territories
                    .iter()
                    .map(|t| get(&t.id).and_then(|c| c.1))
                    .collect(),
                group_medians: territories.iter().map(group_median).collect(),
            });
        }
    }
    Ok(Comparison {
        year,
        territories,
        rows,
    })
}

/// compare.csv: one row per node × territory.
pub fn table(c: &Comparison) -> PolarsResult<DataFrame> {
    let mut cols: HashMap<&str, Vec<Option<String>>> = HashMap::new();
    let mut nums: HashMap<&str, Vec<Option<f64>>> = HashMap::new();
    let mut ranks: Vec<Option<u32>> = Vec::new();
    for r in &c.rows {
        let first = r.values[0];
        for (k, t) in c.territories.iter().enumerate() {
            for (name, v) in [
                ("level", Some(r.level.clone())),
                ("node_id", Some(r.node_id.clone())),
                ("node_name", Some(r.node_name.clone())),
                ("territory_id", Some(t.id.clone())),
                ("territory_name", Some(t.name.clone())),
                ("group", t.group.clone()),
            ] {
                cols.entry(name).or_default().push(v);
            }
            let (v, m) = (r.values[k], r.group_medians[k]);
            for (name, x) in [
                ("value", v),
                ("group_median", m),
                ("minus_group_median", v.zip(m).map(|(a, b)| a - b)),
                ("minus_first", v.zip(first).map(|(a, b)| a - b)),
            ] {
                nums.entry(name).or_default().push(x);
            }
            ranks.push(r.ranks[k]);
        }
    }
    let n = ranks.len();
    let mut columns = Vec::new();
    for name in [
        "level",
        "node_id",
        "node_name",
        "territory_id",
        "territory_name",
        "group",
    ] {
        columns.push(Column::new(
            name.into(),
            cols.remove(name).unwrap_or_default(),
        ));
    }
    columns.push(Column::new("year".into(), vec![c.year; n]));
    columns.push(Column::new(
        "value".into(),
        nums.remove("value").unwrap_or_default(),
    ));
    columns.push(Column::new("rank".into(), ranks));
    for name in ["group_median", "minus_group_median", "minus_first"] {
        columns.push(Column::new(
            name.into(),
            nums.remove(name).unwrap_or_default(),
        ));
    }
    DataFrame::new(n, columns)
}
