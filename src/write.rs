//! Writes a run's outputs: all files go to a temporary directory beside the target, which
//! then replaces the target in one rename, so a failed run never leaves a half-written or
//! mixed set of outputs. The manifest is written last.
//!
//! Output tables are shaped here from the computed frame (one column per node): the tidy
//! long table is one concatenation of per-node selections, in framework order
//! (index, dimensions, components, indicators), rows sorted by territory then year.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::aggregate::{count_column, rank_column, required_children};
use crate::impute::flag_column;
use crate::plan::{GROUP, Level, Plan, TERRITORY_ID, TERRITORY_NAME, YEAR};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write outputs to {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Polars {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

/// Levels in output order.
pub const LEVEL_ORDER: [Level; 4] = [
    Level::Index,
    Level::Dimension,
    Level::Component,
    Level::Indicator,
];

fn keys() -> [Expr; 4] {
    [
        col(TERRITORY_ID),
        col(TERRITORY_NAME),
        col(GROUP),
        col(YEAR),
    ]
}

/// `territory_id, territory_name, group, year, level, node_id, value, rank`, then
/// `imputed` when the pipeline imputes: the indicator's value was imputed, or for a
/// parent, some indicator beneath it was.
pub fn long_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let frames: Vec<LazyFrame> = LEVEL_ORDER
        .iter()
        .flat_map(|&level| plan.nodes_at(level))
        .map(|node| {
            let mut select = keys().to_vec();
            select.extend([
                lit(node.level.as_str()).alias("level"),
                lit(node.id.as_str()).alias("node_id"),
                col(node.id.as_str()).alias("value"),
                col(rank_column(&node.id)).alias("rank"),
            ]);
            if plan.prep.imputation {
                let flags = plan
                    .indicators_under(node)
                    .into_iter()
                    .map(|i| col(flag_column(&plan.nodes[i].id)))
                    .reduce(|a, b| a.or(b))
                    .unwrap_or_else(|| lit(false));
                select.push(flags.alias("imputed"));
            }
            df.clone().lazy().select(select)
        })
        .collect();
    concat(
        frames,
        UnionArgs {
            maintain_order: true,
            ..Default::default()
        },
    )?
    .collect()
}

/// One row per territory (× year), one column per index, dimension and component.
pub fn wide_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let mut select = keys().to_vec();
    for level in [Level::Index, Level::Dimension, Level::Component] {
        select.extend(plan.nodes_at(level).map(|n| col(n.id.as_str())));
    }
    df.clone().lazy().select(select).collect()
}

/// Every score the availability rule left missing, with the count that decided it.
pub fn missing_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let frames: Vec<LazyFrame> = LEVEL_ORDER
        .iter()
        .flat_map(|&level| plan.nodes_at(level))
        .filter_map(|node| {
            let rule = node.rule.as_ref()?;
            let total = node.children.len();
            let required = required_children(rule.min_share, total);
            let mut select = keys().to_vec();
            select.extend([
                lit(node.level.as_str()).alias("level"),
                lit(node.id.as_str()).alias("node_id"),
                col(count_column(&node.id)).alias("present"),
                lit(total as u32).alias("total"),
                lit(required as u32).alias("required"),
            ]);
            Some(
                df.clone()
                    .lazy()
                    .filter(col(node.id.as_str()).is_null())
                    .select(select),
            )
        })
        .collect();
    concat(
        frames,
        UnionArgs {
            maintain_order: true,
            ..Default::default()
        },
    )?
    .collect()
}

/// A file to put in the output directory.
#[derive(Debug)]
pub enum Output<'a> {
    Csv(&'a str, DataFrame),
    Parquet(&'a str, DataFrame),
    Text(&'a str, String),
    /// Any bytes, at a path relative to the output directory (subdirectories made).
    File(String, Vec<u8>),
}

/// Writes `files`, then the file made by `last` (the manifest), into a fresh temporary
/// directory and moves it to `dir`, replacing what was there only once everything is written.
pub fn commit<'a>(
    dir: &Path,
    files: Vec<Output<'a>>,
    last: impl FnOnce() -> Output<'a>,
) -> Result<(), WriteError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::Io { path, source }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "outputs".into());
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let stamp = std::process::id();
    let tmp = parent.join(format!(".{name}.tmp-{stamp}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir(&tmp).map_err(io(&tmp))?;
    let result = write_all(&tmp, files)
        .and_then(|()| write_all(&tmp, vec![last()]))
        .and_then(|()| swap_in(&tmp, dir, &parent.join(format!(".{name}.old-{stamp}"))));
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_all(tmp: &Path, files: Vec<Output<'_>>) -> Result<(), WriteError> {
    for file in files {
        // Outputs may sit in subdirectories (analysis/, charts/).
        let name = match &file {
            Output::Csv(n, _) | Output::Parquet(n, _) | Output::Text(n, _) => n.to_string(),
            Output::File(n, _) => n.clone(),
        };
        if let Some(parent) = tmp.join(&name).parent() {
            fs::create_dir_all(parent).map_err(|source| WriteError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        match file {
            Output::Csv(name, mut df) => {
                let path = tmp.join(name);
                let f = File::create(&path).map_err(|source| WriteError::Io {
                    path: path.clone(),
                    source,
                })?;
                let mut w = BufWriter::new(f);
                CsvWriter::new(&mut w)
                    .include_header(true)
                    .finish(&mut df)
                    .map_err(|source| WriteError::Polars {
                        path: path.clone(),
                        source,
                    })?;
                w.flush()
                    .map_err(|source| WriteError::Io { path, source })?;
            }
            Output::Parquet(name, mut df) => {
                let path = tmp.join(name);
                let f = File::create(&path).map_err(|source| WriteError::Io {
                    path: path.clone(),
                    source,
                })?;
                ParquetWriter::new(BufWriter::new(f))
                    .finish(&mut df)
                    .map_err(|source| WriteError::Polars { path, source })?;
            }
            Output::Text(name, text) => {
                let path = tmp.join(name);
                fs::write(&path, text).map_err(|source| WriteError::Io { path, source })?;
            }
            Output::File(name, bytes) => {
                let path = tmp.join(&name);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|source| WriteError::Io {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                fs::write(&path, bytes).map_err(|source| WriteError::Io { path, source })?;
            }
        }
    }
    Ok(())
}

fn swap_in(tmp: &Path, dir: &Path, old: &Path) -> Result<(), WriteError> {
    let io = |path: &Path, source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    };
    if dir.exists() {
        if old.exists() {
            fs::remove_dir_all(old).map_err(|e| io(old, e))?;
        }
        fs::rename(dir, old).map_err(|e| io(dir, e))?;
        if let Err(e) = fs::rename(tmp, dir) {
            // Put the previous outputs back before reporting.
            let _ = fs::rename(old, dir);
            return Err(io(dir, e));
        }
        fs::remove_dir_all(old).map_err(|e| io(old, e))?;
    } else {
        fs::rename(tmp, dir).map_err(|e| io(dir, e))?;
    }
    Ok(())
}
