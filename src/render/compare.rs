//! Territories side by side: the comparison's shape, its dot plot, and the comparison
//! built from a run's results for the chart pack's `[charts] compare` pages (the
//! `compare` command reads the same from a written run).

use serde::Serialize;

use super::charts::{Chart, Figure, Frame, dots::Dots};
use super::data::IndexResults;
use crate::plan::Level;

#[derive(Debug, Clone, Serialize)]
pub struct Territory {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
}

/// One node, for every territory compared.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub level: String,
    pub node_id: String,
    pub node_name: String,
    pub values: Vec<Option<f64>>,
    pub ranks: Vec<Option<u32>>,
    /// Median of the other territories of each territory's group.
    pub group_medians: Vec<Option<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub year: Option<i64>,
    pub territories: Vec<Territory>,
    pub rows: Vec<Row>,
}

/// The comparison of `ids` in the pack's results, for the year at position `year`.
pub fn from_results(ix: &IndexResults, ids: &[String], year: usize) -> Result<Comparison, String> {
    let positions: Vec<usize> = ids
        .iter()
        .map(|id| {
            ix.territory(id)
                .ok_or_else(|| format!("compared territory \"{id}\" is not in the results"))
        })
        .collect::<Result<_, _>>()?;
    let territories: Vec<Territory> = positions
        .iter()
        .map(|&t| Territory {
            id: ix.territories[t].id.clone(),
            name: ix.territories[t].name.clone(),
            group: ix.territories[t].group.clone(),
        })
        .collect();
    let mut rows = Vec::new();
    for level in [Level::Index, Level::Dimension, Level::Component] {
        for node in ix.nodes_at(level) {
            let median = |t: usize| {
                let group = &ix.territories[t].group;
                let mut v: Vec<f64> = (0..ix.territories.len())
                    .filter(|&o| o != t && &ix.territories[o].group == group)
                    .filter_map(|o| ix.value(node, year, o))
                    .collect();
                crate::stats::median(&mut v)
            };
            rows.push(Row {
                level: level.to_string(),
                node_id: ix.nodes[node].id.clone(),
                node_name: ix.nodes[node].name.clone(),
                values: positions.iter().map(|&t| ix.value(node, year, t)).collect(),
                ranks: positions.iter().map(|&t| ix.rank(node, year, t)).collect(),
                group_medians: positions.iter().map(|&t| median(t)).collect(),
            });
        }
    }
    Ok(Comparison {
        year: ix.years[year],
        territories,
        rows,
    })
}

/// The dot plot of a comparison: components (and the index and dimensions above them).
pub fn figure(c: &Comparison, source: &str) -> Figure {
    let names: Vec<String> = c.territories.iter().map(|t| t.name.clone()).collect();
    let rows: Vec<&Row> = c.rows.iter().filter(|r| r.level != "indicator").collect();
    Figure {
        stem: format!(
            "compare_{}",
            c.territories
                .iter()
                .map(|t| super::style::file_stem(&t.id))
                .collect::<Vec<_>>()
                .join("_")
        ),
        frame: Frame {
            title: format!("{} compared", names.join(", ")),
            subtitle: format!(
                "Scores 0–100{}; grey rings: the median of the other territories of each one's group",
                c.year.map_or(String::new(), |y| format!(", {y}"))
            ),
            notes: Vec::new(),
            source: source.to_owned(),
        },
        chart: Chart::Dots(Dots {
            rows: rows
                .iter()
                .map(|r| match r.level.as_str() {
                    "index" => r.node_name.clone(),
                    "dimension" => format!("  {}", r.node_name),
                    _ => format!("    {}", r.node_name),
                })
                .collect(),
            series: c
                .territories
                .iter()
                .enumerate()
                .map(|(k, t)| (t.name.clone(), rows.iter().map(|r| r.values[k]).collect()))
                .collect(),
            medians: (0..c.territories.len())
                .map(|k| rows.iter().map(|r| r.group_medians[k]).collect())
                .collect(),
            median_label: "median of the other territories of the same group".into(),
        }),
        caption: format!("{} side by side", names.join(", ")),
    }
}
