//! Writes a run's outputs: all files go to a temporary directory beside the target, which
//! then takes the target's place in one atomic step (`renameat2(RENAME_EXCHANGE)`), so a
//! failed or killed run never leaves a half-written, mixed or missing set of outputs. The
//! manifest is written last.
//!
//! A nightly batch runs with nobody watching, so the target is checked before anything is
//! computed and again before the swap: only a directory that a run of the same pipeline
//! wrote (it holds the [`MARKER`] file) or an empty one is ever replaced; an existing file,
//! a link, a foreign directory, or a directory holding one of the pipeline's inputs is
//! refused, named as the user typed it. Temporary directories are registered so that
//! SIGINT/SIGTERM remove them before exiting ([`install_signal_cleanup`]), and the next
//! run removes those of processes that no longer exist (SIGKILL leaves them behind).
//!
//! Output tables are shaped here from the computed frame (one column per node): the tidy
//! long table is one concatenation of per-node selections, in framework order
//! (index, dimensions, components, indicators), rows sorted by territory then year.

pub mod history;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use polars::prelude::*;

use crate::aggregate::{count_column, rank_column, required_children};
use crate::anchor::Shift;
use crate::config::PartitionKey;
use crate::impute::flag_column;
use crate::plan::{GROUP, Level, Plan, TERRITORY_ID, TERRITORY_NAME, YEAR};
use crate::transform::treat::TreatmentRow;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write outputs to {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {message}", path.display())]
    Polars { path: PathBuf, message: String },
    /// The output directory is something bienvivre must not replace.
    #[error("{}", refusal(path, why, help))]
    Refused {
        path: PathBuf,
        why: String,
        help: &'static str,
    },
    #[error("interrupted: the unfinished outputs were removed")]
    Interrupted,
    /// Another run holds the history's lock.
    #[error("{} is locked by another run{}{}", path.display(), match holder {
        Some((pid, started)) => format!(" (pid {pid}, started {started})"),
        None => String::new(),
    }, if waited.is_zero() { String::new() } else { format!("; waited {} s", waited.as_secs()) })]
    Locked {
        path: PathBuf,
        holder: Option<(u32, String)>,
        waited: std::time::Duration,
    },
}

fn refusal(path: &Path, why: &str, help: &str) -> String {
    format!(
        "will not write outputs to {}: {why}\n  help: {help}",
        path.display()
    )
}

/// Opens a written run's tidy `scores.parquet` (what `diff` and `compare` read), saying
/// why when it is not there.
pub fn open_scores(dir: &Path) -> Result<File, String> {
    File::open(dir.join("scores.parquet")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "it has no scores.parquet: the run's [output] formats left it out (add \"parquet\" to read it here), or it is not a run's directory".to_owned()
        } else {
            format!("scores.parquet: {e}")
        }
    })
}

/// Levels in output order.
pub const LEVEL_ORDER: [Level; 4] = [
    Level::Index,
    Level::Dimension,
    Level::Component,
    Level::Indicator,
];

/// `territory_id, territory_name, group, year, level, node_id, value, rank`, then
/// `imputed` when the pipeline imputes: the indicator's value was imputed, or for a
/// parent, some indicator beneath it was. All blocks of [`TidyBlocks`] stacked.
pub fn long_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let mut out: Option<DataFrame> = None;
    for block in TidyBlocks::new(plan.clone(), df.clone())? {
        let block = block?;
        match &mut out {
            None => out = Some(block),
            Some(acc) => {
                acc.vstack_mut_owned(block)?;
            }
        }
    }
    let mut out = out.expect("a plan has nodes");
    out.rechunk_mut();
    Ok(out)
}

/// The tidy score table as one block of rows per node, in output order (index,
/// dimensions, components, indicators), so that it can be written as it is produced:
/// memory then follows the input, not the output, which has a row per territory × node.
/// (A lazy concatenation of one query per node was also quadratic in the number of
/// nodes: each query carries the whole frame's schema.)
#[derive(Debug)]
pub struct TidyBlocks {
    frame: DataFrame,
    /// (node id, level) in output order.
    nodes: Vec<(String, Level)>,
    /// Per entry of `nodes`, when the pipeline imputes.
    imputed: Option<Vec<BooleanChunked>>,
    /// Publishers' flags travel into indicator rows, when some source has them.
    flags: bool,
    keys: Vec<Column>,
    next: usize,
}

impl TidyBlocks {
    pub fn new(plan: Plan, frame: DataFrame) -> PolarsResult<Self> {
        let keys: Vec<Column> = [TERRITORY_ID, TERRITORY_NAME, GROUP, YEAR]
            .iter()
            .map(|k| frame.column(k).cloned())
            .collect::<PolarsResult<_>>()?;
        let mut order = Vec::new();
        for &level in &LEVEL_ORDER {
            order.extend((0..plan.nodes.len()).filter(|&i| plan.nodes[i].level == level));
        }
        let imputed = if plan.prep.imputation {
            let all = imputed_flags(&plan, &frame)?;
            Some(order.iter().map(|&i| all[i].clone()).collect())
        } else {
            None
        };
        let nodes = order
            .iter()
            .map(|&i| (plan.nodes[i].id.clone(), plan.nodes[i].level))
            .collect();
        Ok(TidyBlocks {
            flags: plan.has_flags(),
            frame,
            nodes,
            imputed,
            keys,
            next: 0,
        })
    }

    fn block(&self, k: usize) -> PolarsResult<DataFrame> {
        let height = self.frame.height();
        let (id, level) = &self.nodes[k];
        let mut columns = self.keys.clone();
        columns.push(Column::new_scalar(
            "level".into(),
            Scalar::from(PlSmallStr::from(level.as_str())),
            height,
        ));
        columns.push(Column::new_scalar(
            "node_id".into(),
            Scalar::from(PlSmallStr::from(id.as_str())),
            height,
        ));
        columns.push(self.frame.column(id)?.clone().with_name("value".into()));
        columns.push(
            self.frame
                .column(&rank_column(id))?
                .clone()
                .with_name("rank".into()),
        );
        if let Some(flags) = &self.imputed {
            columns.push(flags[k].clone().with_name("imputed".into()).into_column());
        }
        if self.flags {
            let published = Plan::published_flag_column(id);
            columns.push(match self.frame.column(&published) {
                Ok(c) if *level == Level::Indicator => c.clone().with_name("flag".into()),
                _ => Column::full_null("flag".into(), height, &DataType::String),
            });
        }
        DataFrame::new(height, columns)
    }
}

impl Iterator for TidyBlocks {
    type Item = PolarsResult<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.nodes.len() {
            return None;
        }
        self.next += 1;
        Some(self.block(self.next - 1))
    }
}

/// Per node (by index in the plan): whether its value, or that of an indicator beneath
/// it, was imputed. Computed bottom-up, once per node.
fn imputed_flags(plan: &Plan, df: &DataFrame) -> PolarsResult<Vec<BooleanChunked>> {
    let height = df.height();
    let mut flags: Vec<Option<BooleanChunked>> = vec![None; plan.nodes.len()];
    // Nodes are stored index first, indicators last: children come after their parents.
    for i in (0..plan.nodes.len()).rev() {
        let node = &plan.nodes[i];
        let flag = if node.indicator.is_some() {
            df.column(&flag_column(&node.id))?.bool()?.clone()
        } else {
            let mut acc = BooleanChunked::full("imputed".into(), false, height);
            for &c in &node.children {
                let child = flags[c].as_ref().expect("children are computed first");
                acc = &acc | child;
            }
            acc
        };
        flags[i] = Some(flag);
    }
    Ok(flags.into_iter().map(|f| f.expect("every node")).collect())
}

/// One row per territory (× year), one column per index, dimension and component.
pub fn wide_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let mut names: Vec<&str> = vec![TERRITORY_ID, TERRITORY_NAME, GROUP, YEAR];
    for level in [Level::Index, Level::Dimension, Level::Component] {
        names.extend(plan.nodes_at(level).map(|n| n.id.as_str()));
    }
    df.select(names)
}

/// Every score the availability rule left missing, with the count that decided it.
pub fn missing_scores(plan: &Plan, df: &DataFrame) -> PolarsResult<DataFrame> {
    let height = df.height();
    let keys: Vec<Column> = [TERRITORY_ID, TERRITORY_NAME, GROUP, YEAR]
        .iter()
        .map(|k| df.column(k).cloned())
        .collect::<PolarsResult<_>>()?;
    let mut out: Option<DataFrame> = None;
    for &level in &LEVEL_ORDER {
        for node in plan.nodes_at(level) {
            let Some(rule) = node.rule.as_ref() else {
                continue;
            };
            let mask = df.column(node.id.as_str())?.is_null();
            let total = node.children.len();
            let required = required_children(rule.min_share, total);
            let mut columns = keys.clone();
            columns.push(Column::new_scalar(
                "level".into(),
                Scalar::from(PlSmallStr::from(node.level.as_str())),
                height,
            ));
            columns.push(Column::new_scalar(
                "node_id".into(),
                Scalar::from(PlSmallStr::from(node.id.as_str())),
                height,
            ));
            columns.push(
                df.column(&count_column(&node.id))?
                    .clone()
                    .with_name("present".into()),
            );
            columns.push(Column::new_scalar(
                "total".into(),
                Scalar::from(total as u32),
                height,
            ));
            columns.push(Column::new_scalar(
                "required".into(),
                Scalar::from(required as u32),
                height,
            ));
            let block = DataFrame::new(height, columns)?.filter(&mask)?;
            match &mut out {
                None => out = Some(block),
                Some(acc) => {
                    acc.vstack_mut_owned(block)?;
                }
            }
        }
    }
    let mut out = match out {
        Some(df) => df,
        None => {
            // No parent has a rule: an empty table with the same columns.
            let mut columns = keys.iter().map(|k| k.clear()).collect::<Vec<_>>();
            columns.push(Column::new_empty("level".into(), &DataType::String));
            columns.push(Column::new_empty("node_id".into(), &DataType::String));
            columns.push(Column::new_empty("present".into(), &DataType::UInt32));
            columns.push(Column::new_empty("total".into(), &DataType::UInt32));
            columns.push(Column::new_empty("required".into(), &DataType::UInt32));
            DataFrame::new(0, columns)?
        }
    };
    out.rechunk_mut();
    Ok(out)
}

/// anchoring.csv: one row per group (× year) and anchored node.
pub fn anchoring_table(shifts: &[Shift]) -> PolarsResult<DataFrame> {
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
pub fn treatment_table(rows: &[TreatmentRow]) -> PolarsResult<DataFrame> {
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

/// A file to put in the output directory.
#[derive(Debug)]
pub enum Output<'a> {
    /// The tidy scores, written block by block to a Parquet file, a CSV file, or both.
    Tidy {
        parquet: Option<&'a str>,
        csv: Option<&'a str>,
        blocks: TidyBlocks,
    },
    /// The tidy scores as a hive-partitioned Parquet dataset under `dir`: one directory
    /// level per key (`year=2020/group=FR1/`), a `part-0.parquet` in each, without the
    /// key columns (the paths hold them, as DuckDB, Spark and DataFusion expect).
    Partitioned {
        dir: &'a str,
        by: Vec<PartitionKey>,
        plan: Box<Plan>,
        frame: DataFrame,
    },
    Csv(&'a str, DataFrame),
    Parquet(&'a str, DataFrame),
    Text(&'a str, String),
    /// Any bytes, at a path relative to the output directory (subdirectories made).
    File(String, Vec<u8>),
}

/// The file every output directory holds, naming the pipeline that wrote it: only a
/// directory with this marker (for the same pipeline) is ever replaced.
pub const MARKER: &str = ".bienvivre-output";

/// What a [`MARKER`] says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub tool: String,
    pub pipeline_id: String,
    /// "run", "charts" or "uncertainty".
    pub kind: String,
}

/// Where a command writes, as the user named it, and what it must never touch.
#[derive(Debug, Clone)]
pub struct Target {
    /// The directory as typed after `-o` (or the default), shown in every message.
    pub dir: PathBuf,
    pub pipeline_id: String,
    pub kind: &'static str,
    /// The pipeline file and every input it names: the output directory may neither be
    /// nor contain any of them.
    pub protected: Vec<PathBuf>,
}

/// The [`MARKER`] file's text for outputs of `kind` of a pipeline.
pub fn marker_text(pipeline_id: &str, kind: &str) -> String {
    let m = Marker {
        tool: env!("CARGO_PKG_NAME").into(),
        pipeline_id: pipeline_id.into(),
        kind: kind.into(),
    };
    serde_json::to_string(&m).expect("marker serialises") + "\n"
}

impl Target {
    fn refuse(&self, why: impl Into<String>, help: &'static str) -> WriteError {
        WriteError::Refused {
            path: self.dir.clone(),
            why: why.into(),
            help,
        }
    }

    /// Refuses a target that is not ours to replace. Run before computing (so a wrong `-o`
    /// costs nothing) and again just before the swap.
    pub fn check(&self) -> Result<(), WriteError> {
        const CHOOSE: &str =
            "choose a new or empty directory, or an earlier output directory of this pipeline";
        let abs = absolute(&self.dir);
        for input in &self.protected {
            let input_abs = absolute(input);
            if input_abs == abs {
                return Err(self.refuse(
                    format!("it is {}, which the run reads", input.display()),
                    CHOOSE,
                ));
            }
            if input_abs.starts_with(&abs) {
                return Err(self.refuse(
                    format!("it contains {}, which the run reads", input.display()),
                    CHOOSE,
                ));
            }
        }
        let meta = match fs::symlink_metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.refuse(format!("cannot inspect it: {e}"), CHOOSE)),
        };
        if meta.file_type().is_symlink() {
            return Err(self.refuse(
                "it is a symbolic link, which bienvivre does not replace",
                "give the directory the link points to, or a new directory",
            ));
        }
        if !meta.is_dir() {
            return Err(self.refuse(
                "it is an existing file, not a directory; bienvivre never replaces files",
                CHOOSE,
            ));
        }
        match read_marker(&self.dir) {
            Some(m) if m.pipeline_id == self.pipeline_id && m.kind == self.kind => Ok(()),
            Some(m) if m.pipeline_id != self.pipeline_id => Err(self.refuse(
                format!(
                    "it holds the outputs of another pipeline (\"{}\")",
                    m.pipeline_id
                ),
                "each pipeline writes to its own directory",
            )),
            Some(m) => Err(self.refuse(
                format!(
                    "it holds bienvivre {} outputs, not {} outputs",
                    m.kind, self.kind
                ),
                CHOOSE,
            )),
            None if self.kind != "run" && parent_is_output_of(&self.dir, &self.pipeline_id) => {
                Ok(())
            }
            None if legacy_output(&self.dir, &self.pipeline_id) => Ok(()),
            None => {
                let empty = fs::read_dir(&self.dir)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    Ok(())
                } else {
                    Err(self.refuse(
                        format!(
                            "it is an existing directory that bienvivre did not write (no {MARKER} marker of pipeline \"{}\"), and replacing it would delete its contents",
                            self.pipeline_id
                        ),
                        CHOOSE,
                    ))
                }
            }
        }
    }
}

/// An absolute, lexically normalised path (symlinks of existing parents resolved).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = fs::canonicalize(p) {
        return c;
    }
    // Not there yet: resolve the parent that exists and append the rest.
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(c) = fs::canonicalize(base) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return abs,
        }
    }
}

pub fn read_marker(dir: &Path) -> Option<Marker> {
    let text = fs::read_to_string(dir.join(MARKER)).ok()?;
    serde_json::from_str::<Marker>(&text)
        .ok()
        .filter(|m| m.tool == env!("CARGO_PKG_NAME"))
}

/// `charts/` and `uncertainty/` belong to the run directory above them.
fn parent_is_output_of(dir: &Path, pipeline_id: &str) -> bool {
    let Some(parent) = dir.parent() else {
        return false;
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    read_marker(parent).is_some_and(|m| m.pipeline_id == pipeline_id && m.kind == "run")
        || legacy_output(parent, pipeline_id)
}

/// Output directories written before markers existed: a manifest of this tool and pipeline.
fn legacy_output(dir: &Path, pipeline_id: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Tool {
        name: String,
    }
    #[derive(serde::Deserialize)]
    struct Manifest {
        tool: Tool,
        pipeline_id: String,
    }
    fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
        .is_some_and(|m| m.tool.name == env!("CARGO_PKG_NAME") && m.pipeline_id == pipeline_id)
}

/// Temporary directories of this process, removed if it is interrupted.
static ACTIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static ABORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn active() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// On SIGINT or SIGTERM: remove this process's unfinished output directories, then exit
/// with 130 or 143 (the shell's convention). Idempotent.
pub fn install_signal_cleanup() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Holding the lock keeps a swap from starting or being half seen.
                let dirs = active();
                ABORTING.store(true, std::sync::atomic::Ordering::SeqCst);
                for dir in dirs.iter() {
                    remove_tree(dir);
                }
                eprintln!("interrupted: the unfinished outputs were removed");
                std::process::exit(128 + signal);
            }
        });
    });
}

/// Removes a temporary tree that another thread may still be writing into: moved aside
/// first, so that new files cannot appear in it while it is removed.
fn remove_tree(dir: &Path) {
    let aside = dir.with_extension(format!("abort-{}", std::process::id()));
    let target = if fs::rename(dir, &aside).is_ok() {
        aside
    } else {
        dir.to_path_buf()
    };
    for _ in 0..3 {
        if fs::remove_dir_all(&target).is_ok() || !target.exists() {
            return;
        }
    }
}

/// Whether a process with this pid is running (Linux: /proc). Unknown elsewhere: assumed
/// running, so nothing is removed.
fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes `.NAME.tmp-PID` (and `.NAME.old-PID`) directories beside `dir` left by
/// processes that no longer exist: only directories of that name holding our marker (or
/// empty ones, killed before the marker was written). Returns what was removed.
fn remove_leftovers(parent: &Path, name: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(parent) else {
        return removed;
    };
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old-")];
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some(pid) = prefixes
            .iter()
            .find_map(|p| file_name.strip_prefix(p.as_str()))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        if read_marker(&path).is_some() {
            if fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            }
        } else if fs::remove_dir(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Writes `files`, then the file made by `last` (the manifest), into a fresh temporary
/// directory and swaps it with `target.dir` only once everything is written. Returns
/// warnings (e.g. the previous outputs could not all be deleted after the swap).
pub fn commit<'a>(
    target: &Target,
    files: Vec<Output<'a>>,
    last: impl FnOnce() -> Output<'a>,
) -> Result<Vec<String>, WriteError> {
    target.check()?;
    let dir = &target.dir;
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
    fs::create_dir_all(&parent).map_err(io(dir))?;
    remove_leftovers(&parent, &name);
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        // Ours (this pid): an earlier commit of this process that failed to clean up.
        fs::remove_dir_all(&tmp).map_err(io(dir))?;
    }
    fs::create_dir(&tmp).map_err(io(dir))?;
    active().push(tmp.clone());
    let marker = marker_text(&target.pipeline_id, target.kind);
    let mut files = files;
    files.insert(0, Output::Text(MARKER, marker));
    let result = write_all(&tmp, dir, files)
        .and_then(|()| write_all(&tmp, dir, vec![last()]))
        .and_then(|()| target.check())
        .and_then(|()| swap_in(&tmp, dir));
    let mut warnings = Vec::new();
    match &result {
        Ok(Swapped::Exchanged) => {
            // The previous outputs are now at `tmp`.
            if let Err(e) = fs::remove_dir_all(&tmp) {
                warnings.push(format!(
                    "the new outputs are in place, but the previous ones could not all be deleted from {}: {e}",
                    tmp.display()
                ));
            }
        }
        Ok(Swapped::Moved) => {}
        Err(_) => {
            let _ = fs::remove_dir_all(&tmp);
        }
    }
    active().retain(|p| p != &tmp);
    result.map(|_| warnings)
}

/// Errors name the file in the directory the user asked for, not the temporary one.
fn io_error(shown: &Path, name: &str) -> impl FnOnce(std::io::Error) -> WriteError + use<> {
    let path = shown.join(name);
    move |source| WriteError::Io { path, source }
}

/// As [`io_error`], with polars' own wording cut to its first line (no internals).
fn polars_error(shown: &Path, name: &str) -> impl FnOnce(PolarsError) -> WriteError + use<> {
    let path = shown.join(name);
    move |e: PolarsError| WriteError::Polars {
        path,
        message: match e {
            PolarsError::IO { error, .. } => error.to_string(),
            other => other.to_string().lines().next().unwrap_or("").to_string(),
        },
    }
}

fn write_all(tmp: &Path, shown: &Path, files: Vec<Output<'_>>) -> Result<(), WriteError> {
    if ABORTING.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(WriteError::Interrupted);
    }
    let io = |name: &str| io_error(shown, name);
    let pl = |name: &str| polars_error(shown, name);
    for file in files {
        // Outputs may sit in subdirectories (analysis/, charts/).
        let name = match &file {
            Output::Csv(n, _) | Output::Parquet(n, _) | Output::Text(n, _) => n.to_string(),
            Output::File(n, _) => n.clone(),
            Output::Tidy { csv, parquet, .. } => csv
                .or(*parquet)
                .expect("a tidy output has a file")
                .to_string(),
            Output::Partitioned { dir, .. } => dir.to_string(),
        };
        let path = tmp.join(&name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(&name))?;
        }
        match file {
            Output::Csv(_, mut df) => {
                let f = File::create(&path).map_err(io(&name))?;
                let mut w = BufWriter::new(f);
                CsvWriter::new(&mut w)
                    .include_header(true)
                    .finish(&mut df)
                    .map_err(pl(&name))?;
                w.flush().map_err(io(&name))?;
            }
            Output::Parquet(_, mut df) => {
                let f = File::create(&path).map_err(io(&name))?;
                write_parquet(&mut df, f).map_err(pl(&name))?;
            }
            Output::Tidy {
                parquet,
                csv,
                blocks,
            } => write_tidy(tmp, shown, parquet, csv, blocks, &[])?,
            Output::Partitioned {
                dir,
                by,
                plan,
                frame,
            } => write_partitioned(tmp, shown, dir, &by, *plan, frame)?,
            Output::Text(_, text) => fs::write(&path, text).map_err(io(&name))?,
            Output::File(_, bytes) => fs::write(&path, bytes).map_err(io(&name))?,
        }
    }
    Ok(())
}

/// A Parquet file written with polars' defaults (zstd, statistics, dictionaries), its row
/// groups encoded and compressed on every core, then written in order.
///
/// Why: polars' batched writer hands the file writer lazily encoded pages, so encoding and
/// compression run page by page on the thread that writes; on a large table (the RCI
/// persons, 10 million rows; the panel's tidy scores, 27 million) that is most of the
/// write stage, with the other core idle. Here a few row groups at a time (bounded memory)
/// become their compressed pages in parallel, through the same polars-parquet functions
/// and options polars' writer uses; the file writer then writes them in order.
struct ParallelParquet<W: Write + Send> {
    writer: polars::io::parquet::write::BatchedWriter<W>,
    fields: Vec<polars_parquet::write::ParquetType>,
    encodings: Vec<Vec<polars_parquet::write::Encoding>>,
    options: polars_parquet::write::WriteOptions,
    /// Row groups waiting to be encoded, each a single-chunk frame.
    pending: Vec<DataFrame>,
}

impl<W: Write + Send> ParallelParquet<W> {
    fn new(out: W, schema: &Schema) -> PolarsResult<Self> {
        let arrow = schema.to_arrow(CompatLevel::newest());
        let fields = polars_parquet::write::to_parquet_schema(&arrow)?
            .fields()
            .to_vec();
        let encodings = polars::io::parquet::write::get_encodings(&arrow)
            .iter()
            .cloned()
            .collect();
        // ParquetWriter::new's defaults, as materialised by polars for its own writer.
        let options = polars_parquet::write::WriteOptions {
            statistics: StatisticsOptions::default(),
            version: polars_parquet::write::Version::V1,
            compression: ParquetCompression::default().into(),
            data_page_size: None,
        };
        Ok(ParallelParquet {
            writer: ParquetWriter::new(out).batched(schema)?,
            fields,
            encodings,
            options,
            pending: Vec::new(),
        })
    }

    /// Adds `df` (any number of rows), in row groups of at most ROW_GROUP rows.
    fn push(&mut self, df: &mut DataFrame) -> PolarsResult<()> {
        if df.should_rechunk() {
            // Columns chunked differently (the RCI persons: the survey's columns beside
            // the scores): polars would first copy the whole table into one chunk per
            // column (half a gigabyte on 10 million respondents, the run's peak) and split
            // that; the same row groups are sliced and made contiguous one at a time.
            for (offset, len) in even_parts(df.height()) {
                let mut part = df.slice(offset as i64, len);
                part.rechunk_mut_par();
                self.queue(part)?;
            }
            return Ok(());
        }
        let mut chunked = polars::frame::chunk_df_for_writing(df, ROW_GROUP)?.into_owned();
        for part in chunked.split_chunks() {
            self.queue(part)?;
        }
        Ok(())
    }

    /// Adds one single-chunk row group, encoding a few at a time (all of a large table's
    /// pages at once were hundreds of megabytes).
    fn queue(&mut self, part: DataFrame) -> PolarsResult<()> {
        if part.height() > 0 {
            self.pending.push(part);
        }
        if self.pending.len() >= 2 * rayon::current_num_threads().max(1) {
            self.flush()?;
        }
        Ok(())
    }

    /// The compressed pages of one single-chunk row group, column by column.
    fn encode(
        &self,
        part: &DataFrame,
    ) -> PolarsResult<Vec<Vec<polars_parquet::write::CompressedPage>>> {
        use polars_parquet::parquet::error::ParquetError;
        use polars_parquet::write::{Compressor, array_to_columns};
        let mut columns = Vec::new();
        for batch in part.iter_chunks(CompatLevel::newest(), false) {
            for ((array, type_), encoding) in batch
                .columns()
                .iter()
                .zip(&self.fields)
                .zip(&self.encodings)
            {
                let dictionary;
                let plain;
                let (array, encoding): (&dyn polars_arrow::array::Array, _) =
                    match dictionary_shortcut(array.as_ref(), encoding) {
                        Shortcut::Dictionary(d) => {
                            dictionary = d;
                            (&dictionary, encoding)
                        }
                        Shortcut::Plain => {
                            plain = vec![polars_parquet::write::Encoding::Plain; encoding.len()];
                            (array.as_ref(), &plain)
                        }
                        Shortcut::None => (array.as_ref(), encoding),
                    };
                for pages in array_to_columns(array, type_.clone(), self.options, encoding)? {
                    let pages = pages.map(|page| {
                        page.map_err(|e| {
                            ParquetError::FeatureNotSupported(format!("reraised in polars: {e}"))
                        })
                    });
                    let compressed = Compressor::new(pages, self.options.compression, Vec::new())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(PolarsError::from)?;
                    columns.push(compressed);
                }
            }
        }
        Ok(columns)
    }

    fn flush(&mut self) -> PolarsResult<()> {
        use rayon::prelude::*;
        let this = &*self;
        let groups: Vec<(u64, Vec<Vec<polars_parquet::write::CompressedPage>>)> = this
            .pending
            .par_iter()
            .map(|part| Ok((part.height() as u64, this.encode(part)?)))
            .collect::<PolarsResult<_>>()?;
        self.pending.clear();
        for (rows, columns) in groups {
            self.writer.write_row_group(rows, &columns)?;
        }
        Ok(())
    }

    fn finish(mut self) -> PolarsResult<()> {
        self.flush()?;
        self.writer.finish()?;
        Ok(())
    }
}

/// What [`dictionary_shortcut`] found.
enum Shortcut {
    /// The column as the dictionary polars would have built for it.
    Dictionary(polars_arrow::array::DictionaryArray<u32>),
    /// A column polars would have written plain after estimating its cardinality.
    Plain,
    /// Leave the decision to polars.
    None,
}

/// Takes polars' dictionary decision, with the same outcome, where it costs the most.
///
/// polars tries a dictionary for every string and number column of every row group:
/// it estimates the column's cardinality (hashing every value), then, when at most 3/4
/// of the values are distinct (or the row group has at most 128 rows), builds the
/// dictionary (hashing every value again). On the RCI persons table that was a good
/// part of the encoding, and needlessly so for two kinds of column:
///
/// - floats: polars cannot build a float dictionary (the cast fails) and writes them
///   plain after the estimate; we write them plain without it;
/// - strings of at most 12 bytes (territory ids, subgroup labels, statuses) are stored
///   inside their 16-byte views, so each is hashed as one integer, once; the dictionary
///   comes out as polars builds it (values in order of first appearance, same pages).
fn dictionary_shortcut(
    array: &dyn polars_arrow::array::Array,
    encoding: &[polars_parquet::write::Encoding],
) -> Shortcut {
    use polars_arrow::array::Utf8ViewArray;
    use polars_arrow::datatypes::ArrowDataType;
    if encoding != [polars_parquet::write::Encoding::RleDictionary] {
        return Shortcut::None;
    }
    match array.dtype() {
        ArrowDataType::Float32 | ArrowDataType::Float64 => Shortcut::Plain,
        ArrowDataType::Utf8View => {
            let strings = array
                .as_any()
                .downcast_ref::<Utf8ViewArray>()
                .expect("Utf8View");
            // polars' threshold: any number of distinct values in a short row group.
            let limit = if array.len() > 128 {
                array.len() as f64 * 0.75
            } else {
                f64::INFINITY
            };
            match short_string_dictionary(strings, limit) {
                Some(d) => Shortcut::Dictionary(d),
                None => Shortcut::None,
            }
        }
        _ => Shortcut::None,
    }
}

/// `strings` as a dictionary (keys in order of first appearance, nulls kept as null
/// keys) when every value fits in its view and there are at most `limit` of them.
fn short_string_dictionary(
    strings: &polars_arrow::array::Utf8ViewArray,
    limit: f64,
) -> Option<polars_arrow::array::DictionaryArray<u32>> {
    use polars_arrow::array::{Array, DictionaryArray, MutableBinaryViewArray, PrimitiveArray};
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    let validity = strings.validity();
    let mut index: PlHashMap<u128, u32> = PlHashMap::default();
    let mut values = MutableBinaryViewArray::<str>::new();
    let mut keys = Vec::with_capacity(strings.len());
    for (i, view) in strings.views().iter().enumerate() {
        if validity.is_some_and(|v| !v.get_bit(i)) {
            keys.push(0);
            continue;
        }
        let len = view.length as usize;
        if len > 12 {
            return None;
        }
        // The length, then the bytes; whatever follows them in the view is not compared.
        let raw = view.as_u128() & (u128::MAX >> (8 * (12 - len)));
        let next = index.len() as u32;
        let key = *index.entry(raw).or_insert_with(|| {
            values.push_value(strings.value(i));
            next
        });
        if index.len() as f64 > limit {
            return None;
        }
        keys.push(key);
    }
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.cloned());
    DictionaryArray::try_new(
        ArrowDataType::Dictionary(
            IntegerType::UInt32,
            Box::new(ArrowDataType::Utf8View),
            false,
        ),
        keys,
        values.freeze().boxed(),
    )
    .ok()
}

fn write_parquet(df: &mut DataFrame, file: File) -> PolarsResult<()> {
    let mut w = ParallelParquet::new(BufWriter::new(file), df.schema())?;
    w.push(df)?;
    w.finish()
}

/// The row groups (offset, rows) polars makes of a table of `height` rows in one chunk
/// per column (`chunk_df_for_writing`): as many as whole ROW_GROUPs fit, of equal size,
/// the last taking the remainder; one when fewer than two fit.
fn even_parts(height: usize) -> Vec<(usize, usize)> {
    let n = height / ROW_GROUP;
    if n <= 1 {
        return vec![(0, height)];
    }
    let size = height / n;
    (0..n)
        .map(|i| (i * size, if i == n - 1 { height - i * size } else { size }))
        .collect()
}

/// Rows per Parquet row group of the tidy table (polars' own default).
const ROW_GROUP: usize = 512 * 512;

/// Writes the tidy blocks to the Parquet and CSV files asked for, as they come; Parquet
/// row groups are gathered to [`ROW_GROUP`] rows so that small blocks do not make a file
/// of tiny row groups.
fn write_tidy(
    tmp: &Path,
    shown: &Path,
    parquet: Option<&str>,
    csv: Option<&str>,
    blocks: TidyBlocks,
    without: &[&str],
) -> Result<(), WriteError> {
    let name = csv.or(parquet).unwrap_or("scores");
    let fail = |name: &str| polars_error(shown, name);
    let io = |name: &str| io_error(shown, name);
    let open = |n: &str| File::create(tmp.join(n)).map(BufWriter::new).map_err(io(n));
    let mut pq_file = parquet.map(open).transpose()?;
    let mut csv_file = csv.map(open).transpose()?;
    let mut pq_writer = None;
    let mut csv_writer = None;
    // Blocks are gathered to ROW_GROUP rows before either writer sees them: Parquet
    // then gets full row groups, and the CSV writer large batches (it serialises each
    // batch in parallel; a batch per node of a 1,000-territory framework is too small).
    let mut pending: Option<DataFrame> = None;
    let mut started = false;
    let mut flush = |pending: &mut Option<DataFrame>| -> Result<(), WriteError> {
        let Some(mut df) = pending.take() else {
            return Ok(());
        };
        df.rechunk_mut();
        if !started {
            started = true;
            let schema = df.schema().clone();
            if let (Some(f), Some(n)) = (pq_file.take(), parquet) {
                pq_writer = Some(ParallelParquet::new(f, &schema).map_err(fail(n))?);
            }
            if let (Some(f), Some(n)) = (csv_file.take(), csv) {
                csv_writer = Some(
                    CsvWriter::new(f)
                        .include_header(true)
                        .batched(&schema)
                        .map_err(fail(n))?,
                );
            }
        }
        if let (Some(w), Some(n)) = (csv_writer.as_mut(), csv) {
            w.write_batch(&df).map_err(fail(n))?;
        }
        if let (Some(w), Some(n)) = (pq_writer.as_mut(), parquet) {
            w.push(&mut df).map_err(fail(n))?;
        }
        Ok(())
    };
    for block in blocks {
        let mut block = block.map_err(fail(name))?;
        for column in without {
            block.drop_in_place(column).map_err(fail(name))?;
        }
        let full = match &mut pending {
            None => {
                let full = block.height() >= ROW_GROUP;
                pending = Some(block);
                full
            }
            Some(acc) => {
                acc.vstack_mut_owned(block).map_err(fail(name))?;
                acc.height() >= ROW_GROUP
            }
        };
        if full {
            flush(&mut pending)?;
        }
    }
    flush(&mut pending)?;
    if let (Some(w), Some(n)) = (pq_writer.take(), parquet) {
        w.finish().map_err(fail(n))?;
    }
    if let (Some(w), Some(n)) = (csv_writer.as_mut(), csv) {
        w.finish().map_err(fail(n))?;
    }
    Ok(())
}

/// Writes the tidy rows of each partition of `frame` (the computed scores, a row per
/// territory × year) in turn: memory stays that of the frame and one row group.
fn write_partitioned(
    tmp: &Path,
    shown: &Path,
    dir: &str,
    by: &[PartitionKey],
    plan: Plan,
    frame: DataFrame,
) -> Result<(), WriteError> {
    let fail = |name: &str| polars_error(shown, name);
    let years = frame
        .column(YEAR)
        .map_err(fail(dir))?
        .i64()
        .map_err(fail(dir))?
        .clone();
    let groups = frame
        .column(GROUP)
        .and_then(|c| c.cast(&DataType::String))
        .map_err(fail(dir))?;
    let groups = groups.str().map_err(fail(dir))?;
    // Rows of each partition, partitions in key order (years ascending, groups sorted).
    let mut parts: std::collections::BTreeMap<Vec<PartValue>, Vec<IdxSize>> = Default::default();
    for row in 0..frame.height() {
        let key = by
            .iter()
            .map(|k| match k {
                PartitionKey::Year => PartValue::Year(years.get(row)),
                PartitionKey::Group => PartValue::Group(groups.get(row).map(str::to_owned)),
            })
            .collect();
        parts.entry(key).or_default().push(row as IdxSize);
    }
    let without: Vec<&str> = by
        .iter()
        .map(|k| match k {
            PartitionKey::Year => YEAR,
            PartitionKey::Group => GROUP,
        })
        .collect();
    for (key, rows) in parts {
        let mut path = dir.to_owned();
        for (k, v) in by.iter().zip(&key) {
            path.push('/');
            path.push_str(&format!("{k}={}", v.segment()));
        }
        fs::create_dir_all(tmp.join(&path)).map_err(io_error(shown, &path))?;
        path.push_str("/part-0.parquet");
        let part = frame
            .take(&IdxCa::from_vec("rows".into(), rows))
            .map_err(fail(&path))?;
        let blocks = TidyBlocks::new(plan.clone(), part).map_err(fail(&path))?;
        write_tidy(tmp, shown, Some(&path), None, blocks, &without)?;
    }
    Ok(())
}

/// A partition key's value in one row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PartValue {
    Year(Option<i64>),
    Group(Option<String>),
}

impl PartValue {
    /// The value as a hive path segment: Hive's escapes (`%2F` for `/`, …), and its
    /// name for a missing value.
    fn segment(&self) -> String {
        let text = match self {
            PartValue::Year(Some(y)) => y.to_string(),
            PartValue::Group(Some(g)) if !g.is_empty() => g.clone(),
            _ => return "__HIVE_DEFAULT_PARTITION__".to_owned(),
        };
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() || "\"#%'*/:=?\\{[]^".contains(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

enum Swapped {
    /// The target existed: it now holds the new outputs, and `tmp` the previous ones.
    Exchanged,
    /// The target did not exist.
    Moved,
}

/// Puts `tmp` in place of `dir` in one atomic step: at every instant `dir` holds either
/// the complete previous outputs or the complete new ones.
fn swap_in(tmp: &Path, dir: &Path) -> Result<Swapped, WriteError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    let io = |source: std::io::Error| WriteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // The signal handler holds this lock while it removes temporary directories.
    let _guard = active();
    if ABORTING.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(WriteError::Interrupted);
    }
    if fs::symlink_metadata(dir).is_err() {
        // NOREPLACE: if something appeared at `dir` meanwhile, fail rather than replace it.
        return match renameat_with(CWD, tmp, CWD, dir, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(Swapped::Moved),
            Err(e) if unsupported(e) => fs::rename(tmp, dir).map(|()| Swapped::Moved).map_err(io),
            Err(e) => Err(io(e.into())),
        };
    }
    match renameat_with(CWD, tmp, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(Swapped::Exchanged),
        Err(e) if unsupported(e) => {
            // Filesystems without RENAME_EXCHANGE: two renames, the previous outputs kept
            // until the new ones are in place.
            let old = tmp.with_extension("old");
            fs::rename(dir, &old).map_err(io)?;
            if let Err(e) = fs::rename(tmp, dir) {
                let _ = fs::rename(&old, dir);
                return Err(io(e));
            }
            fs::rename(&old, tmp).map_err(io)?;
            Ok(Swapped::Exchanged)
        }
        Err(e) => Err(io(e.into())),
    }
}

/// Exchanges two directories in one step (`RENAME_EXCHANGE`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(Into::into)
}

/// Renames `from` to `to`, failing if `to` exists (`RENAME_NOREPLACE`).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(e) if unsupported(e) => {
            if to.exists() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        other => other.map_err(Into::into),
    }
}

/// Whether a signal asked the process to stop.
fn aborting() -> bool {
    ABORTING.load(std::sync::atomic::Ordering::SeqCst)
}

fn unsupported(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS || e == rustix::io::Errno::NOTSUP
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our Parquet writer, shortcuts included, against polars' own writer.
    fn both(df: &mut DataFrame) -> (Vec<u8>, Vec<u8>) {
        let mut ours = Vec::new();
        let mut w = ParallelParquet::new(&mut ours, df.schema()).unwrap();
        w.push(df).unwrap();
        w.finish().unwrap();
        let mut theirs = Vec::new();
        ParquetWriter::new(&mut theirs).finish(df).unwrap();
        (ours, theirs)
    }

    #[test]
    fn parquet_bytes_are_polars_own() {
        for rows in [0, 1, 100, 128, 129, 1000, 5000] {
            let short_few: Vec<Option<String>> = (0..rows)
                .map(|i| (i % 7 != 3).then(|| ["FR1", "m", "", "scored"][i % 4].to_owned()))
                .collect();
            let short_many: Vec<String> = (0..rows).map(|i| format!("R{i:05}")).collect();
            // Twelve bytes fit in a view, thirteen do not.
            let edge: Vec<String> = (0..rows)
                .map(|i| format!("{:012}", i % 3) + if i % 2 == 0 { "" } else { "x" })
                .collect();
            let long: Vec<String> = (0..rows)
                .map(|i| format!("a territory name {}", i % 5))
                .collect();
            let floats: Vec<Option<f64>> = (0..rows)
                .map(|i| (i % 11 != 0).then_some((i % 4) as f64 / 3.0))
                .collect();
            let mut df = df!(
                "short_few" => short_few,
                "short_many" => short_many,
                "edge" => edge,
                "long" => long,
                "floats" => floats,
                "ints" => (0..rows as i64).map(|i| i % 9).collect::<Vec<_>>(),
            )
            .unwrap();
            let (ours, theirs) = both(&mut df);
            assert!(ours == theirs, "{rows} rows: the files differ");
        }
    }

    /// A table whose columns are chunked differently (the RCI persons: the survey's
    /// columns beside the scores) is written in the row groups polars makes of it, though
    /// sliced one row group at a time rather than copied whole into single chunks.
    #[test]
    fn parquet_of_misaligned_chunks_is_polars_own() {
        for rows in [
            1000,
            ROW_GROUP - 1,
            ROW_GROUP + 5,
            2 * ROW_GROUP + 7,
            3 * ROW_GROUP + 54_321,
        ] {
            // Integers in uneven chunks, strings in one.
            let mut ints = Series::new("ints".into(), Vec::<i64>::new());
            let mut at = 0;
            for (k, len) in [300, 120_000, 1, 300_000, 7_000].iter().cycle().enumerate() {
                let len = (*len).min(rows - at);
                let piece: Vec<i64> = (at..at + len)
                    .map(|i| (i % 1000) as i64 + k as i64)
                    .collect();
                ints.append(&Series::new("ints".into(), piece)).unwrap();
                at += len;
                if at == rows {
                    break;
                }
            }
            let labels: Vec<String> = (0..rows).map(|i| format!("T{}", i % 37)).collect();
            let mut df = DataFrame::new(
                rows,
                vec![ints.into_column(), Column::new("labels".into(), labels)],
            )
            .unwrap();
            assert!(df.should_rechunk(), "{rows} rows: chunks aligned");
            let (ours, theirs) = both(&mut df);
            assert!(ours == theirs, "{rows} rows: the files differ");
        }
        assert_eq!(even_parts(10), [(0, 10)]);
        assert_eq!(
            even_parts(2 * ROW_GROUP + 1),
            [(0, ROW_GROUP), (ROW_GROUP, ROW_GROUP + 1)]
        );
    }

    #[test]
    fn short_strings_become_polars_dictionary() {
        use polars_arrow::array::Utf8ViewArray;
        let strings = Utf8ViewArray::from_slice([Some("b"), None, Some("a"), Some("b")]);
        let d = short_string_dictionary(&strings, f64::INFINITY).unwrap();
        let keys: Vec<Option<u32>> = d.keys().iter().map(|k| k.copied()).collect();
        assert_eq!(keys, [Some(0), None, Some(1), Some(0)]);
        let values = d.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap();
        assert_eq!(values.values_iter().collect::<Vec<_>>(), ["b", "a"]);
        // Over the limit of distinct values, or a value too long for its view: polars'.
        assert!(short_string_dictionary(&strings, 1.0).is_none());
        let long = Utf8ViewArray::from_slice([Some("thirteen byte")]);
        assert!(short_string_dictionary(&long, f64::INFINITY).is_none());
    }
}
