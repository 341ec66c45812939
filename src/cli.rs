//! Command-line interface: argument definitions and one function per subcommand.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use bienvivre::progress::Progress;
use bienvivre::run::{self, RunOptions};
use bienvivre::synth::{self, SynthSpec};

#[derive(Debug, Parser)]
#[command(
    name = "bienvivre",
    version,
    about = "Territorial composite indices, computed exactly and fast"
)]
pub struct Cli {
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print stage timings and details on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Do not show the progress display.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// How stderr reports: `text`, or `json`, one JSON object per line for schedulers
    /// (stage starts and ends with timings, warnings, errors, a final summary).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the final JSON summary event says besides the command and exit code.
static SUMMARY: std::sync::Mutex<Vec<(&'static str, serde_json::Value)>> =
    std::sync::Mutex::new(Vec::new());

fn summary_field(key: &'static str, value: impl Into<serde_json::Value>) {
    SUMMARY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((key, value.into()));
}

/// The progress display, unless quiet, asked away, or stderr carries JSON.
fn progress_of(cli: &Cli) -> Progress {
    Progress::new(!cli.quiet && !cli.no_progress && cli.log_format == LogFormat::Text)
}

/// A warning: a `warning:` line on stderr, or a JSON event; nothing when quiet.
fn warn(cli: &Cli, message: &str) {
    if cli.log_format == LogFormat::Json {
        bienvivre::progress::log_event("warning", serde_json::json!({ "message": message }));
    } else if !cli.quiet {
        eprintln!("warning: {message}");
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline and write its outputs.
    Run {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
        /// A directory for a one-off run (default: a new run in the pipeline's history,
        /// outputs/<pipeline id>/runs/<run id>/, then outputs/<pipeline id>/latest).
        #[arg(short, long)]
        output_dir: Option<PathBuf>,
        /// Seconds to wait when another run holds the lock (default 0: fail at once).
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Compute nothing when the pipeline and its inputs are those of the latest run.
        #[arg(long)]
        skip_unchanged: bool,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Download (or revalidate) the pipeline's publishers' sources into the cache,
    /// without computing: a nightly pre-fetch.
    Fetch {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// List the runs in a pipeline's history: id, time, changed inputs.
    Runs {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
    },
    /// What moved between two runs (default: the latest against the run before it).
    Diff(DiffArgs),
    /// A few territories side by side in a run (default: the latest).
    Compare(CompareArgs),
    /// Draw the chart pack of an earlier run from its outputs, without recomputing.
    Plot {
        /// Pipeline file (TOML) with a [charts] section.
        pipeline: PathBuf,
        /// The run's output directory (default: outputs/<pipeline id>/); the pack goes
        /// to its charts/ folder.
        #[arg(short, long)]
        output_dir: Option<PathBuf>,
    },
    /// Monte Carlo of the ranks over the pipeline's [uncertainty] alternatives; writes
    /// <output dir>/uncertainty/.
    Uncertainty {
        /// Pipeline file (TOML) with an [uncertainty] section.
        pipeline: PathBuf,
        /// Number of runs (default: the pipeline's, or 1000).
        #[arg(long)]
        runs: Option<usize>,
        /// The run's output directory (default: outputs/<pipeline id>/).
        #[arg(short, long)]
        output_dir: Option<PathBuf>,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Check a pipeline and its data without writing anything; lists every problem.
    Validate {
        /// Pipeline file (TOML).
        pipeline: PathBuf,
        /// The output directory `run -o` would use, checked too (default:
        /// outputs/<pipeline id>/).
        #[arg(short, long)]
        output_dir: Option<PathBuf>,
        #[command(flatten)]
        fetch: FetchArgs,
    },
    /// Generate seeded synthetic data (and optionally a pipeline for it).
    Generate(GenerateArgs),
}

/// How sources from publishers are fetched.
#[derive(Debug, Args, Clone)]
pub struct FetchArgs {
    /// Use only the cache: never touch the network (a source with no cached copy is an
    /// error).
    #[arg(long, conflicts_with = "refresh")]
    pub offline: bool,
    /// Download every source again, ignoring the cache (which is then replaced).
    #[arg(long)]
    pub refresh: bool,
    /// The download cache (default: the user's cache directory, e.g.
    /// ~/.cache/bienvivre).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl FetchArgs {
    fn options(&self) -> bienvivre::fetch::FetchOptions {
        use bienvivre::fetch::Mode;
        bienvivre::fetch::FetchOptions {
            cache_dir: self.cache_dir.clone(),
            mode: if self.offline {
                Mode::Offline
            } else if self.refresh {
                Mode::Refresh
            } else {
                Mode::Normal
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Pipeline file (TOML).
    pub pipeline: PathBuf,
    /// A run id (or its start) or a run directory (default: the latest run).
    pub run: Option<String>,
    /// The territories, by id, comma-separated: A,B[,C…]
    #[arg(long, value_delimiter = ',', required = true)]
    pub territories: Vec<String>,
    /// The year (default: the latest in the run).
    #[arg(long)]
    pub year: Option<i64>,
    /// Indicators too (the table and CSV; the chart shows components).
    #[arg(long)]
    pub indicators: bool,
    /// Where to write compare.csv, the chart and compare.json (default: a compare-<ids>
    /// folder of the run).
    #[arg(short, long)]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Pipeline file (TOML).
    pub pipeline: PathBuf,
    /// The earlier run: a run id (or its start) or a run directory (default: the run
    /// before NEW).
    pub old: Option<String>,
    /// The later run (default: the latest).
    pub new: Option<String>,
    /// Report rank moves of at least this many places.
    #[arg(long, default_value_t = 5)]
    pub min_rank_move: u32,
    /// Report score changes of at least this much (0–100 scale).
    #[arg(long, default_value_t = 1.0)]
    pub min_delta: f64,
    /// Print the whole comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write the moves as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Exit with code 3 when a condition holds: rank_move>N, delta>X or missing>N
    /// (index level; repeatable).
    #[arg(long, value_parser = parse_fail_on)]
    pub fail_on: Vec<bienvivre::diff::FailOn>,
}

fn parse_fail_on(s: &str) -> Result<bienvivre::diff::FailOn, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// CSV file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a pipeline over the generated file here.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub territories: usize,
    #[arg(long, default_value_t = 10)]
    pub groups: usize,
    #[arg(long, default_value_t = 3)]
    pub years: usize,
    #[arg(long, default_value_t = 2022)]
    pub first_year: i64,
    #[arg(long, default_value_t = 12)]
    pub indicators: usize,
    /// Share of empty indicator cells.
    #[arg(long, default_value_t = 0.03)]
    pub missing: f64,
    #[arg(long, default_value_t = 20_261_123)]
    pub seed: u64,
}

/// How the process ends: every command's outcome maps to one of these, and the codes are
/// the documented ones (README, "Exit codes"). SIGINT/SIGTERM end the process from the
/// signal handler instead, with 130/143 (see `write::install_signal_cleanup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// A data or run error.
    Failure,
    /// A usage or pipeline-file error.
    Usage,
    /// `diff --fail-on`: a threshold was exceeded.
    Threshold,
    /// Another run holds the lock (after `--wait`).
    Locked,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(match s {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Threshold => 3,
            ExitStatus::Locked => 4,
        })
    }
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    Run(run::Error),
    /// A command-line value that cannot be used.
    Usage(String),
    /// Anything else (a file the command cannot write…).
    Other(String),
    /// `diff --fail-on`: the conditions met.
    Threshold(Vec<String>),
}

impl From<run::Error> for Failure {
    fn from(e: run::Error) -> Self {
        Failure::Run(e)
    }
}

impl Failure {
    fn status(&self) -> ExitStatus {
        match self {
            Failure::Run(e) if e.exit_code() == 2 => ExitStatus::Usage,
            Failure::Run(e) if e.exit_code() == 4 => ExitStatus::Locked,
            Failure::Usage(_) => ExitStatus::Usage,
            Failure::Threshold(_) => ExitStatus::Threshold,
            _ => ExitStatus::Failure,
        }
    }

    /// The one error printer: one `error:` line (and its help) per problem, on stderr.
    /// Errors are printed in every mode, quiet included; verbose adds the causes.
    fn report(&self, cli: &Cli) {
        let mut lines = Vec::new();
        match self {
            Failure::Run(e) => match e.problems() {
                Some(problems) => lines.extend(problems.iter().map(|p| p.to_string())),
                None => {
                    lines.push(e.to_string());
                    if cli.verbose {
                        let mut source = std::error::Error::source(e);
                        while let Some(s) = source {
                            lines.push(format!("  caused by: {s}"));
                            source = s.source();
                        }
                    }
                }
            },
            Failure::Usage(m) | Failure::Other(m) => lines.push(m.clone()),
            Failure::Threshold(met) => {
                lines.extend(met.iter().map(|m| format!("threshold exceeded: {m}")));
            }
        }
        for line in lines {
            let line = line.trim_end();
            if cli.log_format == LogFormat::Json {
                // A problem's help follows its message on an indented line.
                let (message, help) = match line.split_once("\n  help: ") {
                    Some((m, h)) => (m, Some(h)),
                    None => (line, None),
                };
                bienvivre::progress::log_event(
                    "error",
                    serde_json::json!({ "message": message, "help": help }),
                );
            } else {
                eprintln!("error: {line}");
            }
        }
    }
}

/// Runs the parsed command; returns how the process ends.
pub fn main(cli: Cli) -> ExitStatus {
    bienvivre::progress::set_json_log(cli.log_format == LogFormat::Json);
    // Everything runs on polars' worker threads, ours (rayon) included: with a second pool,
    // each of its threads kept its own malloc arena, and memory freed in one was not
    // reused by the other's allocations (the national panel peaked 225 MiB higher, 880
    // against 655 MiB, at the same speed).
    let status = polars_core::runtime::THREAD_POOL.install(|| execute(&cli));
    if cli.log_format == LogFormat::Json {
        let mut fields = serde_json::Map::new();
        fields.insert("command".into(), command_name(&cli.command).into());
        fields.insert(
            "exit_code".into(),
            match status {
                ExitStatus::Success => 0,
                ExitStatus::Failure => 1,
                ExitStatus::Usage => 2,
                ExitStatus::Threshold => 3,
                ExitStatus::Locked => 4,
            }
            .into(),
        );
        for (k, v) in SUMMARY.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            fields.insert(k.into(), v);
        }
        bienvivre::progress::log_event("summary", serde_json::Value::Object(fields));
    }
    status
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Run { .. } => "run",
        Command::Fetch { .. } => "fetch",
        Command::Runs { .. } => "runs",
        Command::Diff(_) => "diff",
        Command::Compare(_) => "compare",
        Command::Plot { .. } => "plot",
        Command::Uncertainty { .. } => "uncertainty",
        Command::Validate { .. } => "validate",
        Command::Generate(_) => "generate",
    }
}

fn execute(cli: &Cli) -> ExitStatus {
    if matches!(
        cli.command,
        Command::Run { .. } | Command::Plot { .. } | Command::Uncertainty { .. }
    ) {
        bienvivre::write::install_signal_cleanup();
    }
    let result = match &cli.command {
        Command::Run {
            pipeline,
            output_dir,
            wait,
            skip_unchanged,
            fetch,
        } => run_cmd(
            cli,
            RunOptions {
                pipeline: pipeline.clone(),
                output_dir: output_dir.clone(),
                wait: std::time::Duration::from_secs(*wait),
                skip_unchanged: *skip_unchanged,
                fetch: fetch.options(),
            },
        ),
        Command::Fetch { pipeline, fetch } => fetch_cmd(cli, pipeline, fetch.options()),
        Command::Runs { pipeline } => runs_cmd(cli, pipeline),
        Command::Diff(args) => diff_cmd(cli, args),
        Command::Compare(args) => compare_cmd(cli, args),
        Command::Plot {
            pipeline,
            output_dir,
        } => plot_cmd(cli, pipeline, output_dir.clone()),
        Command::Uncertainty {
            pipeline,
            runs,
            output_dir,
            fetch,
        } => uncertainty_cmd(cli, pipeline, *runs, output_dir.clone(), fetch.options()),
        Command::Validate {
            pipeline,
            output_dir,
            fetch,
        } => validate_cmd(cli, pipeline, output_dir.clone(), &fetch.options()),
        Command::Generate(args) => generate_cmd(cli, args),
    };
    match result {
        Ok(()) => ExitStatus::Success,
        Err(failure) => {
            failure.report(cli);
            failure.status()
        }
    }
}

fn run_cmd(cli: &Cli, options: RunOptions) -> Result<(), Failure> {
    let mut progress = progress_of(cli);
    let summary = run::run(&options, &mut progress)?;
    let Some(m) = &summary.manifest else {
        if !cli.quiet {
            println!(
                "{}: unchanged since run {} (same pipeline and inputs): nothing computed",
                options.pipeline.display(),
                summary.unchanged_since.as_deref().unwrap_or("?")
            );
        }
        return Ok(());
    };
    for w in &m.warnings {
        warn(cli, w);
    }
    summary_field("run_id", m.run.id.clone());
    summary_field("output", summary.output_dir.display().to_string());
    if !cli.quiet {
        let mut parts = Vec::new();
        if let Some(index) = &m.index {
            let c = &index.counts;
            let years = match (c.years.first(), c.years.last()) {
                (Some(a), Some(b)) if a != b => format!(" × {} years ({a}–{b})", c.years.len()),
                (Some(a), _) => format!(" ({a})"),
                _ => String::new(),
            };
            parts.push(format!(
                "{} territories{years}, {} indicators",
                c.territories, c.indicators
            ));
        }
        if let Some(rci) = &m.rci {
            parts.push(format!(
                "{} respondents scored of {}",
                rci.scored, rci.respondents
            ));
        }
        println!(
            "{}: {} → {}",
            m.pipeline_id,
            parts.join("; "),
            summary.output_dir.display()
        );
    }
    if cli.verbose && cli.log_format == LogFormat::Text {
        for (stage, ms) in &m.run.timings_ms {
            eprintln!("  {stage:>10}: {ms} ms");
        }
    }
    Ok(())
}

fn compare_cmd(cli: &Cli, a: &CompareArgs) -> Result<(), Failure> {
    let ids: Vec<String> = a.territories.iter().map(|t| t.trim().to_owned()).collect();
    let done = run::compare(
        &a.pipeline,
        a.run.as_deref(),
        &ids,
        a.year,
        a.indicators,
        a.output_dir.clone(),
    )?;
    summary_field("output", done.directory.display().to_string());
    if cli.quiet {
        return Ok(());
    }
    let c = &done.comparison;
    let score = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{x:.1}"));
    let mut header = format!("{:<34}", "");
    for t in &c.territories {
        header.push_str(&format!(" {:>24}", t.id));
    }
    println!(
        "{}{}",
        c.territories
            .iter()
            .map(|t| format!("{} ({})", t.name, t.id))
            .collect::<Vec<_>>()
            .join(" vs "),
        c.year.map_or(String::new(), |y| format!(", {y}"))
    );
    println!("{header}");
    println!(
        "{:<34}{}",
        "node",
        c.territories
            .iter()
            .map(|_| format!(" {:>24}", "score (rank)  median"))
            .collect::<String>()
    );
    for r in &c.rows {
        let indent = match r.level.as_str() {
            "index" => "",
            "dimension" => "  ",
            "component" => "    ",
            _ => "      ",
        };
        let mut line = format!(
            "{:<34}",
            format!("{indent}{}", r.node_name)
                .chars()
                .take(34)
                .collect::<String>()
        );
        for k in 0..c.territories.len() {
            let rank = r.ranks[k].map_or(String::new(), |x| format!("({x})"));
            line.push_str(&format!(
                " {:>6} {:>7} {:>9}",
                score(r.values[k]),
                rank,
                score(r.group_medians[k])
            ));
        }
        println!("{line}");
    }
    println!("→ {}", done.directory.display());
    Ok(())
}

fn diff_cmd(cli: &Cli, a: &DiffArgs) -> Result<(), Failure> {
    if !(a.min_delta.is_finite() && a.min_delta >= 0.0) {
        return Err(Failure::Usage(format!(
            "--min-delta must be a number ≥ 0, got {}",
            a.min_delta
        )));
    }
    let d = run::diff(
        &a.pipeline,
        a.old.as_deref(),
        a.new.as_deref(),
        bienvivre::diff::Thresholds {
            min_rank_move: a.min_rank_move,
            min_delta: a.min_delta,
        },
    )?;
    if let Some(path) = &a.csv {
        let mut table = bienvivre::diff::moves_table(&d)
            .map_err(|e| Failure::Other(format!("shaping the moves: {e}")))?;
        let file = File::create(path)
            .map_err(|e| Failure::Other(format!("cannot create {}: {e}", path.display())))?;
        let mut w = BufWriter::new(file);
        {
            use polars::prelude::SerWriter;
            polars::prelude::CsvWriter::new(&mut w)
                .include_header(true)
                .finish(&mut table)
                .map_err(|e| Failure::Other(format!("writing {}: {e}", path.display())))?;
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&d).expect("the diff serialises")
        );
    } else if !cli.quiet {
        print_diff(&d);
    }
    summary_field("old_run", d.old_run.clone());
    summary_field("new_run", d.new_run.clone());
    let met: Vec<String> = a.fail_on.iter().filter_map(|f| f.met(&d)).collect();
    if !met.is_empty() {
        return Err(Failure::Threshold(met));
    }
    Ok(())
}

/// The diff as a terminal report: the summary, then each section, shortened where long.
fn print_diff(d: &bienvivre::diff::Diff) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{} → {}", d.old_run, d.new_run);
    let _ = writeln!(out, "{}", d.summary);
    if !d.appeared.is_empty() {
        let _ = writeln!(out, "\nappeared: {}", d.appeared.join(", "));
    }
    if !d.disappeared.is_empty() {
        let _ = writeln!(out, "\ndisappeared: {}", d.disappeared.join(", "));
    }
    let fmt = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{x:.2}"));
    let fmt_rank = |v: Option<u32>| v.map_or("–".to_owned(), |x| x.to_string());
    for level in ["index", "dimension", "component", "indicator"] {
        let rows: Vec<_> = d.moves.iter().filter(|m| m.level == level).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{level} moves ({}):", rows.len());
        let _ = writeln!(
            out,
            "  {:<14} {:<26} {:>6} {:<18} {:>8} {:>8} {:>8} {:>6} {:>6} {:>5}",
            "territory", "name", "year", "node", "old", "new", "delta", "rank", "was", "move"
        );
        for m in rows.iter().take(20) {
            let _ = writeln!(
                out,
                "  {:<14} {:<26} {:>6} {:<18} {:>8} {:>8} {:>8} {:>6} {:>6} {:>5}",
                m.territory_id,
                m.territory_name.chars().take(26).collect::<String>(),
                m.year.map_or(String::new(), |y| y.to_string()),
                m.node_id.chars().take(18).collect::<String>(),
                fmt(m.old_value),
                fmt(m.new_value),
                fmt(m.delta),
                fmt_rank(m.new_rank),
                fmt_rank(m.old_rank),
                m.rank_move.map_or(String::new(), |r| format!("{r:+}")),
            );
        }
        if rows.len() > 20 {
            let _ = writeln!(
                out,
                "  … and {} more (--csv FILE or --json lists all)",
                rows.len() - 20
            );
        }
    }
    if !d.attributions.is_empty() {
        let _ = writeln!(out, "\nwhat moved the index:");
        for a in d.attributions.iter().take(10) {
            let parts: Vec<String> = a
                .contributions
                .iter()
                .filter(|c| c.share.abs() > 1e-12)
                .take(5)
                .map(|c| format!("{} {:+.2} ({:.0}%)", c.node_id, c.points, 100.0 * c.share))
                .collect();
            let _ = writeln!(
                out,
                "  {} {}{}: {:+.2}{} ← {}",
                a.territory_id,
                a.territory_name,
                a.year.map_or(String::new(), |y| format!(" {y}")),
                a.index_delta,
                a.rank_move
                    .map_or(String::new(), |r| format!(" ({r:+} places)")),
                parts.join(", ")
            );
        }
    }
    if !d.changed_files.is_empty() {
        let _ = writeln!(out, "\ninputs changed:");
        for f in &d.changed_files {
            let _ = writeln!(
                out,
                "  {}: {} → {}",
                f.path,
                f.old_sha256.as_deref().unwrap_or("(none)"),
                f.new_sha256.as_deref().unwrap_or("(none)")
            );
        }
    }
    if !d.changed_settings.is_empty() {
        let _ = writeln!(out, "\nconfig changed:");
        for s in d.changed_settings.iter().take(30) {
            let _ = writeln!(
                out,
                "  {}: {} → {}",
                s.key,
                s.old.as_deref().unwrap_or("(unset)"),
                s.new.as_deref().unwrap_or("(unset)")
            );
        }
    }
    print!("{out}");
}

fn runs_cmd(cli: &Cli, pipeline: &Path) -> Result<(), Failure> {
    let runs = run::runs(pipeline)?;
    if cli.quiet {
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs yet");
        return Ok(());
    }
    println!(
        "{:<28} {:<21} {:<8} changed since the run before",
        "run", "started", ""
    );
    for r in &runs {
        println!(
            "{:<28} {:<21} {:<8} {}",
            r.id,
            r.started,
            if r.latest { "latest" } else { "" },
            if r.changed.is_empty() {
                "-".to_owned()
            } else {
                r.changed.join(", ")
            }
        );
    }
    Ok(())
}

fn plot_cmd(cli: &Cli, pipeline: &Path, output_dir: Option<PathBuf>) -> Result<(), Failure> {
    let mut progress = progress_of(cli);
    let options = RunOptions {
        pipeline: pipeline.to_path_buf(),
        output_dir,
        ..RunOptions::default()
    };
    let s = run::plot(&options, &mut progress)?;
    let timings = progress.finish();
    for w in &s.warnings {
        warn(cli, w);
    }
    summary_field("output", s.directory.display().to_string());
    if !cli.quiet {
        println!(
            "{} charts ({} files) → {}",
            s.figures,
            s.files,
            s.directory.join("index.html").display()
        );
    }
    if cli.verbose && cli.log_format == LogFormat::Text {
        for (stage, d) in &timings {
            eprintln!("  {stage:>10}: {} ms", d.as_millis());
        }
    }
    Ok(())
}

fn uncertainty_cmd(
    cli: &Cli,
    pipeline: &Path,
    runs: Option<usize>,
    output_dir: Option<PathBuf>,
    fetch: bienvivre::fetch::FetchOptions,
) -> Result<(), Failure> {
    let mut progress = progress_of(cli);
    let options = RunOptions {
        pipeline: pipeline.to_path_buf(),
        output_dir,
        fetch,
        ..RunOptions::default()
    };
    let done = run::uncertainty(&options, runs, &mut progress)?;
    drop(progress);
    for (reason, n) in &done.summary.failures {
        warn(cli, &format!("{n} run(s) failed: {reason}"));
    }
    summary_field("output", done.directory.display().to_string());
    if !cli.quiet {
        let s = &done.summary;
        println!(
            "{} runs ({} failed) in {:.1} s → {}",
            s.runs,
            s.runs - s.succeeded,
            done.seconds,
            done.directory.display()
        );
        for (name, year, lo, hi) in &done.widest {
            let year = year.map_or(String::new(), |y| format!(" {y}"));
            println!("  widest rank interval: {name}{year}: {lo:.0}–{hi:.0}");
        }
    }
    Ok(())
}

fn fetch_cmd(
    cli: &Cli,
    pipeline: &Path,
    options: bienvivre::fetch::FetchOptions,
) -> Result<(), Failure> {
    let mut progress = progress_of(cli);
    let (fetched, cache) = run::fetch(pipeline, &options, &mut progress)?;
    drop(progress);
    for w in &fetched.warnings {
        warn(cli, w);
    }
    let downloads = fetched.downloads();
    summary_field("downloads", downloads.len());
    if !cli.quiet {
        for d in &downloads {
            println!(
                "  {:<7} {:>12} bytes  {}",
                d.cache.to_string(),
                d.bytes,
                d.url
            );
        }
        println!(
            "{}: {} download(s) for {} source(s), cached in {}",
            pipeline.display(),
            downloads.len(),
            fetched.sources.iter().flatten().count(),
            cache.display()
        );
    }
    Ok(())
}

fn validate_cmd(
    cli: &Cli,
    pipeline: &Path,
    output_dir: Option<PathBuf>,
    fetch: &bienvivre::fetch::FetchOptions,
) -> Result<(), Failure> {
    let v = run::validate(pipeline, output_dir, fetch)?;
    for w in &v.warnings {
        warn(cli, w);
    }
    if !cli.quiet {
        let mut parts = Vec::new();
        if let Some(plan) = &v.pipeline.index {
            parts.push(format!(
                "{} indicators, {} sources, {} territory rows",
                plan.indicators().count(),
                plan.sources.len(),
                v.territory_rows
            ));
        }
        if let Some(rci) = &v.pipeline.rci {
            parts.push(format!(
                "{} items, {} respondents",
                rci.items.len(),
                v.respondents
            ));
        }
        println!("{}: ok ({})", pipeline.display(), parts.join("; "));
    }
    Ok(())
}

fn generate_cmd(cli: &Cli, a: &GenerateArgs) -> Result<(), Failure> {
    if !(0.0..1.0).contains(&a.missing) {
        return Err(Failure::Usage(format!(
            "--missing must be in [0, 1), got {}",
            a.missing
        )));
    }
    let spec = SynthSpec {
        territories: a.territories,
        groups: a.groups,
        years: a.years,
        first_year: a.first_year,
        indicators: a.indicators,
        missing: a.missing,
        seed: a.seed,
        full_precision: false,
    };
    let file = File::create(&a.out)
        .map_err(|e| Failure::Other(format!("cannot create {}: {e}", a.out.display())))?;
    let mut w = BufWriter::new(file);
    synth::write_csv(&spec, &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Failure::Other(format!("writing {}: {e}", a.out.display())))?;
    if let Some(p) = &a.pipeline {
        // The data path is written relative to the pipeline's directory.
        let rel = relative_to(&a.out, p.parent().unwrap_or(std::path::Path::new("")));
        let id = p
            .file_stem()
            .map_or("synthetic".into(), |s| s.to_string_lossy().into_owned());
        std::fs::write(p, synth::pipeline_toml(&spec, &rel, &id))
            .map_err(|e| Failure::Other(format!("cannot write {}: {e}", p.display())))?;
    }
    if !cli.quiet {
        println!("wrote {}", a.out.display());
    }
    Ok(())
}

/// `target` as seen from `base`, for paths given relative to the same directory.
fn relative_to(target: &std::path::Path, base: &std::path::Path) -> String {
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<_> = t.components().collect();
    let bc: Vec<_> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c.as_os_str());
    }
    out.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_to("/a/data/x.csv".as_ref(), "/a/pipelines".as_ref()),
            "../data/x.csv"
        );
        assert_eq!(relative_to("/a/x.csv".as_ref(), "/a".as_ref()), "x.csv");
    }
}
