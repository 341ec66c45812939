//! The results the charts draw: index scores and ranks per node, year and territory, and
//! relational capability per territory. Built from the tidy output tables, either the
//! files of an earlier run (`bienvivre plot`) or the frames of the run in progress.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use crate::plan::{Level, Pipeline, Plan};
use crate::relational::SUBGROUP;

#[derive(Debug, Clone)]
pub struct Territory {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    pub level: Level,
    /// Index into `IndexResults::nodes`.
    pub parent: Option<usize>,
}

/// Index, dimension and component scores (not indicators) of every territory and year.
#[derive(Debug)]
pub struct IndexResults {
    /// Sorted by id.
    pub territories: Vec<Territory>,
    /// Ascending; a single `None` when the pipeline has no years.
    pub years: Vec<Option<i64>>,
    /// The index, then dimensions, then components, in framework order.
    pub nodes: Vec<NodeInfo>,
    values: Vec<Option<f64>>,
    ranks: Vec<Option<u32>>,
}

impl IndexResults {
    fn at(&self, node: usize, year: usize, territory: usize) -> usize {
        (node * self.years.len() + year) * self.territories.len() + territory
    }

    pub fn value(&self, node: usize, year: usize, territory: usize) -> Option<f64> {
        self.values[self.at(node, year, territory)]
    }

    pub fn rank(&self, node: usize, year: usize, territory: usize) -> Option<u32> {
        self.ranks[self.at(node, year, territory)]
    }

    pub fn nodes_at(&self, level: Level) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.nodes[i].level == level)
    }

    pub fn children(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| self.nodes[i].parent == Some(node))
    }

    pub fn territory(&self, id: &str) -> Option<usize> {
        self.territories
            .binary_search_by(|t| t.id.as_str().cmp(id))
            .ok()
    }

    pub fn has_years(&self) -> bool {
        self.years.len() > 1 || self.years[0].is_some()
    }

    /// Builds the results from the tidy scores table (`scores.parquet`).
    pub fn from_scores(plan: &Plan, scores: &DataFrame) -> PolarsResult<IndexResults> {
        let keep: Vec<&crate::plan::Node> = plan
            .nodes
            .iter()
            .filter(|n| n.level != Level::Indicator)
            .collect();
        let position: HashMap<&str, usize> = keep
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let nodes: Vec<NodeInfo> = keep
            .iter()
            .map(|n| NodeInfo {
                id: n.id.clone(),
                name: n.name.clone(),
                level: n.level,
                parent: n
                    .parent
                    .and_then(|p| position.get(plan.nodes[p].id.as_str()).copied()),
            })
            .collect();

        let df = scores
            .clone()
            .lazy()
            .filter(col("level").neq(lit("indicator")))
            .collect()?;
        let ids = df.column("territory_id")?.str()?;
        let names = df.column("territory_name")?.cast(&DataType::String)?;
        let names = names.str()?;
        let groups = df.column("group")?.cast(&DataType::String)?;
        let groups = groups.str()?;
        let years = df.column("year")?.cast(&DataType::Int64)?;
        let years = years.i64()?;
        let node_ids = df.column("node_id")?.str()?;
        let values = df.column("value")?.cast(&DataType::Float64)?;
        let values = values.f64()?;
        let ranks = df.column("rank")?.cast(&DataType::UInt32)?;
        let ranks = ranks.u32()?;

        let mut territories: HashMap<&str, Territory> = HashMap::new();
        let mut year_set: Vec<Option<i64>> = Vec::new();
        for i in 0..df.height() {
            let id = ids.get(i).unwrap_or("");
            territories.entry(id).or_insert_with(|| Territory {
                id: id.to_owned(),
                name: names.get(i).unwrap_or(id).to_owned(),
                group: groups.get(i).map(str::to_owned),
            });
            year_set.push(years.get(i));
        }
        year_set.sort();
        year_set.dedup();
        if year_set.is_empty() {
            year_set.push(None);
        }
        let mut territories: Vec<Territory> = territories.into_values().collect();
        territories.sort_by(|a, b| a.id.cmp(&b.id));
        let mut out = IndexResults {
            values: vec![None; nodes.len() * year_set.len() * territories.len()],
            ranks: vec![None; nodes.len() * year_set.len() * territories.len()],
            territories,
            years: year_set,
            nodes,
        };
        let territory_index: HashMap<String, usize> = out
            .territories
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let year_index: HashMap<Option<i64>, usize> =
            out.years.iter().enumerate().map(|(i, y)| (*y, i)).collect();
        for i in 0..df.height() {
            let Some(&node) = node_ids.get(i).and_then(|n| position.get(n)) else {
                continue;
            };
            let t = territory_index[ids.get(i).unwrap_or("")];
            let y = year_index[&years.get(i)];
            let at = out.at(node, y, t);
            out.values[at] = values.get(i);
            out.ranks[at] = ranks.get(i);
        }
        Ok(out)
    }
}

/// Relational capability of one territory (one year).
#[derive(Debug, Clone)]
pub struct RciTerritory {
    pub id: String,
    pub respondents: u32,
    pub small_sample: bool,
    pub mean: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub rank: Option<u32>,
    pub m0: Option<f64>,
    /// Per dimension: its share of the mean score.
    pub shares: Vec<Option<f64>>,
}

#[derive(Debug)]
pub struct RciResults {
    /// (id, name) of the dimensions.
    pub dimensions: Vec<(String, String)>,
    pub year: Option<i64>,
    /// Territories of `year`, by id.
    pub territories: Vec<RciTerritory>,
    pub years: Vec<Option<i64>>,
}

impl RciResults {
    /// From the tidy RCI table (`rci_scores.parquet`), for `year` (default: the latest).
    pub fn from_scores(
        pipeline: &Pipeline,
        scores: &DataFrame,
        year: Option<i64>,
    ) -> PolarsResult<RciResults> {
        let rci = pipeline
            .rci
            .as_ref()
            .expect("RCI results need an [rci] plan");
        let df = scores
            .clone()
            .lazy()
            .filter(
                col(SUBGROUP)
                    .is_null()
                    .and(col("territory_id").is_not_null()),
            )
            .collect()?;
        let ids = df.column("territory_id")?.str()?;
        let years = df.column("year")?.cast(&DataType::Int64)?;
        let years = years.i64()?;
        let mut all_years: Vec<Option<i64>> = years.iter().collect();
        all_years.sort();
        all_years.dedup();
        let year = year.or_else(|| all_years.last().copied().flatten());
        let levels = df.column("level")?.str()?;
        let nodes = df.column("node_id")?.str()?;
        let values = df.column("value")?.f64()?;
        let ranks = df.column("rank")?.cast(&DataType::UInt32)?;
        let ranks = ranks.u32()?;
        let lo = df.column("ci_low")?.f64()?;
        let hi = df.column("ci_high")?.f64()?;
        let respondents = df.column("respondents")?.cast(&DataType::UInt32)?;
        let respondents = respondents.u32()?;
        let small = df.column("small_sample")?.bool()?;
        let dimensions: Vec<(String, String)> = rci
            .dimensions
            .iter()
            .map(|d| (d.id.clone(), d.name.clone()))
            .collect();
        let mut by_id: std::collections::BTreeMap<String, RciTerritory> = Default::default();
        for i in 0..df.height() {
            if years.get(i) != year {
                continue;
            }
            let id = ids.get(i).unwrap_or("").to_owned();
            let t = by_id.entry(id.clone()).or_insert_with(|| RciTerritory {
                id,
                respondents: respondents.get(i).unwrap_or(0),
                small_sample: small.get(i).unwrap_or(false),
                mean: None,
                ci: None,
                rank: None,
                m0: None,
                shares: vec![None; dimensions.len()],
            });
            match (levels.get(i), nodes.get(i)) {
                (Some("rci"), Some("mean")) => {
                    t.mean = values.get(i);
                    t.rank = ranks.get(i);
                    t.ci = lo.get(i).zip(hi.get(i));
                }
                (Some("af"), Some("M0")) => t.m0 = values.get(i),
                (Some("rci_contribution"), Some(d)) => {
                    if let Some(k) = dimensions.iter().position(|(id, _)| id == d) {
                        t.shares[k] = values.get(i);
                    }
                }
                _ => {}
            }
        }
        Ok(RciResults {
            dimensions,
            year,
            territories: by_id.into_values().collect(),
            years: all_years,
        })
    }
}

/// What a pack is drawn from.
#[derive(Debug)]
pub struct RunResults {
    pub index: Option<IndexResults>,
    pub rci_scores: Option<DataFrame>,
}

impl RunResults {
    /// Reads the outputs of an earlier run in `dir`.
    pub fn read(
        pipeline: &Pipeline,
        dir: &Path,
    ) -> Result<RunResults, (std::path::PathBuf, String)> {
        let read = |name: &str| -> Result<DataFrame, (std::path::PathBuf, String)> {
            let path = dir.join(name);
            let file = std::fs::File::open(&path).map_err(|e| {
                (
                    path.clone(),
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "not found: run the pipeline first (`bienvivre run`)".to_string()
                    } else {
                        e.to_string()
                    },
                )
            })?;
            ParquetReader::new(file)
                .finish()
                .map_err(|e| (path.clone(), e.to_string()))
        };
        let index = match &pipeline.index {
            Some(plan) => {
                let scores = read("scores.parquet")?;
                Some(
                    IndexResults::from_scores(plan, &scores)
                        .map_err(|e| (dir.join("scores.parquet"), e.to_string()))?,
                )
            }
            None => None,
        };
        let rci_scores = match &pipeline.rci {
            Some(_) => Some(read("rci_scores.parquet")?),
            None => None,
        };
        Ok(RunResults { index, rci_scores })
    }
}
