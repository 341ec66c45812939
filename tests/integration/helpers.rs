//! Shared helpers: temporary directories, running the binary, reading outputs, and the
//! reference data under ../shared/data (missing data fails under CI=true, skips elsewhere).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bienvivre-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The project root (tests run with it as the working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with `args` from `cwd`.
pub fn bienvivre(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bienvivre"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run bienvivre")
}

/// Runs the binary with `args` from `cwd`, on one thread for polars and rayon, or on the
/// default number (`one_thread` false): determinism tests compare the two.
pub fn bienvivre_threads(cwd: &Path, args: &[&str], one_thread: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bienvivre"));
    c.args(args).current_dir(cwd);
    if one_thread {
        c.env("POLARS_MAX_THREADS", "1")
            .env("RAYON_NUM_THREADS", "1");
    } else {
        c.env_remove("POLARS_MAX_THREADS")
            .env_remove("RAYON_NUM_THREADS");
    }
    c.output().expect("run bienvivre")
}

/// Runs a pipeline of the project (path relative to the project root) quietly into `out`,
/// and asserts that it succeeded.
pub fn run_into(pipeline: &str, out: &Path) {
    let o = bienvivre(
        &root(),
        &[
            "run",
            pipeline,
            "-q",
            "-o",
            out.to_str().expect("a UTF-8 path"),
        ],
    );
    assert!(o.status.success(), "{pipeline}: {}", stderr(&o));
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A file of the shared reference data. Tests that call this are
/// `#[ignore = "needs ../shared/data"]`: they run with `cargo test -- --include-ignored`
/// (as CI does) and fail, never skip, when the data is not there.
pub fn shared(rel: &str) -> PathBuf {
    let p = root().join("../shared/data").join(rel);
    assert!(
        p.exists(),
        "reference data {} is missing: this test needs ../shared/data beside the checkout",
        p.display()
    );
    p
}

pub fn read_csv(path: &Path) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .expect("open csv")
        .finish()
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Column `name` of `df` as f64 values.
pub fn floats(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    let c = df
        .column(name)
        .unwrap_or_else(|_| panic!("no column {name}"));
    let c = c.cast(&DataType::Float64).expect("numeric column");
    c.f64().expect("f64").iter().collect()
}

/// The row of `rollup.csv` for a parent territory, indicator and year.
pub fn rollup_row(rollup: &DataFrame, id: &str, indicator: &str, year: f64) -> usize {
    let (ids, indicators, years) = (
        strings(rollup, "territory_id"),
        strings(rollup, "indicator"),
        floats(rollup, "year"),
    );
    (0..rollup.height())
        .find(|&i| ids[i] == id && indicators[i] == indicator && years[i] == Some(year))
        .unwrap_or_else(|| panic!("no rollup row for {id} {indicator} {year}"))
}

pub fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    let c = df
        .column(name)
        .unwrap_or_else(|_| panic!("no column {name}"));
    let c = c.cast(&DataType::String).expect("text column");
    c.str()
        .expect("str")
        .iter()
        .map(|v| v.unwrap_or("").to_owned())
        .collect()
}

/// A small, valid wide pipeline (4 territories, 2 components, 4 indicators) to break on purpose.
pub const SMALL_CSV: &str = "\
code,name,country,a,b,c,d
T1,One,X,1.0,10,5,100
T2,Two,X,2.0,20,6,200
T3,Three,Y,3.0,30,7,300
T4,Four,Y,4.0,40,8,400
";

pub const SMALL_TOML: &str = r#"[pipeline]
id = "small"

[territories]
id = "code"
name = "name"
group = "country"

[[source]]
path = "small.csv"

[index]
id = "idx"

[[dimension]]
id = "dim"

[[component]]
id = "c1"
dimension = "dim"

[[component]]
id = "c2"
dimension = "dim"

[[indicator]]
id = "a"
component = "c1"
direction = "higher_is_better"
utopia = 5
dystopia = 0

[[indicator]]
id = "b"
component = "c1"
direction = "lower_is_better"
utopia = 0
dystopia = 50

[[indicator]]
id = "c"
component = "c2"
direction = "higher_is_better"
goalposts = "observed"

[[indicator]]
id = "d"
component = "c2"
direction = "higher_is_better"
log = true
utopia = 1000
dystopia = 10
"#;

/// A temp dir holding `small.toml` and `small.csv` (possibly edited).
pub fn small_project(toml: &str, csv: &str) -> TempDir {
    let dir = TempDir::new("small");
    dir.write("small.toml", toml);
    dir.write("small.csv", csv);
    dir
}
