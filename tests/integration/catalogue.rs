//! The catalogue of bad inputs and faults a nightly batch must survive: each case breaks
//! one thing in a small valid project that already has outputs from a good run, then
//! asserts the exit code, the message (with the file and line/column, or the config
//! line), that nothing panicked, that `validate` rejects it the same way, and that every
//! file of the project — the previous outputs included — is byte-identical afterwards,
//! with no temporary directory left behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::helpers::*;

/// A change to the project directory.
type Setup = Box<dyn Fn(&Path)>;

/// One bad input or fault.
struct Case {
    name: &'static str,
    toml: String,
    csv: Vec<u8>,
    /// Further changes to the project (extra files, links, FIFOs…).
    extra: Option<Setup>,
    /// Arguments after `bienvivre`, run in the project directory.
    args: Vec<String>,
    code: i32,
    expect: Vec<String>,
}

impl Case {
    fn new(name: &'static str, code: i32) -> Self {
        Case {
            name,
            toml: SMALL_TOML.to_owned(),
            csv: SMALL_CSV.as_bytes().to_vec(),
            extra: None,
            args: ["run", "small.toml", "-o", "out"]
                .map(String::from)
                .to_vec(),
            code,
            expect: Vec::new(),
        }
    }

    fn toml(mut self, from: &str, to: &str) -> Self {
        assert!(
            self.toml.contains(from),
            "{}: no {from:?} in the TOML",
            self.name
        );
        self.toml = self.toml.replacen(from, to, 1);
        self
    }

    fn append(mut self, text: &str) -> Self {
        self.toml.push_str(text);
        self
    }

    fn csv(mut self, text: &str) -> Self {
        self.csv = text.as_bytes().to_vec();
        self
    }

    fn csv_bytes(mut self, bytes: &[u8]) -> Self {
        self.csv = bytes.to_vec();
        self
    }

    fn csv_edit(mut self, from: &str, to: &str) -> Self {
        let text = String::from_utf8(self.csv.clone()).unwrap();
        assert!(text.contains(from), "{}: no {from:?} in the CSV", self.name);
        self.csv = text.replacen(from, to, 1).into_bytes();
        self
    }

    fn extra(mut self, f: impl Fn(&Path) + 'static) -> Self {
        self.extra = Some(Box::new(f));
        self
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    fn expect(mut self, text: &str) -> Self {
        self.expect.push(text.to_owned());
        self
    }

    /// Expects `small.toml:LINE:` where LINE is the line of `needle` in the case's TOML.
    fn expect_at(self, needle: &str, text: &str) -> Self {
        let line = self
            .toml
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{}: no {needle:?} in the TOML", self.name))
            + 1;
        self.expect(&format!("small.toml:{line}:")).expect(text)
    }
}

/// Every file under `dir` (relative path → kind and bytes); symlinks and FIFOs by kind.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (char, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (char, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.insert(rel, ('l', target.to_string_lossy().as_bytes().to_vec()));
            } else if t.is_dir() {
                out.insert(rel, ('d', Vec::new()));
                walk(base, &p, out);
            } else if t.is_file() {
                out.insert(rel, ('f', std::fs::read(&p).unwrap()));
            } else {
                out.insert(rel, ('o', Vec::new()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn check(case: &Case) -> Result<(), String> {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    // Outputs of a good run, which the bad one must leave alone.
    let good = bienvivre(dir.path(), &["run", "small.toml", "-o", "out", "-q"]);
    if !good.status.success() {
        return Err(format!("the good run failed: {}", stderr(&good)));
    }
    std::fs::write(dir.join("small.toml"), &case.toml).unwrap();
    std::fs::write(dir.join("small.csv"), &case.csv).unwrap();
    if let Some(f) = &case.extra {
        f(dir.path());
    }
    let before = snapshot(dir.path());
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let out = bienvivre(dir.path(), &args);
    let err = stderr(&out);
    let mut failures = Vec::new();
    if out.status.code() != Some(case.code) {
        failures.push(format!(
            "exit code {:?}, expected {}",
            out.status.code(),
            case.code
        ));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        failures.push("it panicked".into());
    }
    if !err.starts_with("error: ") {
        failures.push("stderr does not start with \"error: \"".into());
    }
    for e in &case.expect {
        if !err.contains(e.as_str()) {
            failures.push(format!("no {e:?} in the message"));
        }
    }
    let after = snapshot(dir.path());
    if before != after {
        let changed: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .map(|k| k.display().to_string())
            .collect();
        failures.push(format!("files changed: {changed:?}"));
    }
    // `validate` rejects what `run` rejects, the same way, writing nothing.
    if args[0] == "run" {
        let mut v = args.clone();
        v[0] = "validate";
        let out = bienvivre(dir.path(), &v);
        if out.status.code() != Some(case.code) {
            failures.push(format!(
                "validate exits {:?}: {}",
                out.status.code(),
                stderr(&out)
            ));
        }
        if snapshot(dir.path()) != before {
            failures.push("validate changed files".into());
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n--- stderr:\n{err}", failures.join("\n")))
    }
}

fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    // -- Output directory: only ever replace an output of the same pipeline.
    c.push(
        Case::new("-o a folder of documents", 1)
            .extra(|d| {
                std::fs::create_dir(d.join("docs")).unwrap();
                std::fs::write(d.join("docs/report.odt"), "precious").unwrap();
            })
            .args(&["run", "small.toml", "-o", "docs"])
            .expect("will not write outputs to docs: it is an existing directory that bienvivre did not write"),
    );
    c.push(
        Case::new("-o the pipeline's own folder", 1)
            .args(&["run", "small.toml", "-o", "."])
            .expect("will not write outputs to .: it contains"),
    );
    c.push(
        Case::new("-o the input CSV", 1)
            .args(&["run", "small.toml", "-o", "small.csv"])
            .expect("will not write outputs to small.csv: it is small.csv, which the run reads"),
    );
    c.push(
        Case::new("-o the pipeline file", 1)
            .args(&["run", "small.toml", "-o", "small.toml"])
            .expect("will not write outputs to small.toml: it is small.toml"),
    );
    c.push(
        Case::new("-o an unrelated existing file", 1)
            .extra(|d| std::fs::write(d.join("notes.txt"), "keep me").unwrap())
            .args(&["run", "small.toml", "-o", "notes.txt"])
            .expect("will not write outputs to notes.txt: it is an existing file, not a directory"),
    );
    c.push(
        Case::new("-o a data folder holding the input", 1)
            .toml("path = \"small.csv\"", "path = \"data/small.csv\"")
            .extra(|d| {
                std::fs::create_dir(d.join("data")).unwrap();
                std::fs::copy(d.join("small.csv"), d.join("data/small.csv")).unwrap();
            })
            .args(&["run", "small.toml", "-o", "data"])
            .expect(
                "will not write outputs to data: it contains data/small.csv, which the run reads",
            ),
    );
    c.push(
        Case::new("-o the outputs folder of several pipelines", 1)
            .extra(|d| {
                std::fs::create_dir_all(d.join("outputs/other")).unwrap();
                std::fs::write(d.join("outputs/other/scores.csv"), "x").unwrap();
            })
            .args(&["run", "small.toml", "-o", "outputs"])
            .expect("will not write outputs to outputs: it is an existing directory that bienvivre did not write"),
    );
    c.push(
        Case::new("-o another pipeline's outputs", 1)
            .extra(|d| {
                std::fs::create_dir(d.join("theirs")).unwrap();
                std::fs::write(
                    d.join("theirs/.bienvivre-output"),
                    "{\"tool\":\"bienvivre\",\"pipeline_id\":\"other\",\"kind\":\"run\"}\n",
                )
                .unwrap();
                std::fs::write(d.join("theirs/scores.csv"), "x").unwrap();
            })
            .args(&["run", "small.toml", "-o", "theirs"])
            .expect("it holds the outputs of another pipeline (\"other\")"),
    );
    c.push(
        Case::new("-o a symbolic link to the outputs", 1)
            .extra(|d| std::os::unix::fs::symlink("out", d.join("link")).unwrap())
            .args(&["run", "small.toml", "-o", "link"])
            .expect("will not write outputs to link: it is a symbolic link"),
    );
    c.push(
        Case::new("-o a FIFO", 1)
            .extra(|d| mkfifo(&d.join("pipe")))
            .args(&["run", "small.toml", "-o", "pipe"])
            .expect("will not write outputs to pipe: it is an existing file, not a directory"),
    );
    c.push(
        Case::new("-o below an existing file", 1)
            .args(&["run", "small.toml", "-o", "small.csv/out"])
            .expect("small.csv/out"),
    );
    c.push(
        Case::new("-o the folder above the project", 1)
            .args(&["run", "small.toml", "-o", "../"])
            .expect("will not write outputs to ../: it"),
    );
    c.push(
        Case::new("uncertainty into a foreign folder", 1)
            .append("\n[uncertainty]\nruns = 3\nweights = 0.1\n")
            .extra(|d| {
                std::fs::create_dir_all(d.join("docs/uncertainty")).unwrap();
                std::fs::write(d.join("docs/uncertainty/mine.txt"), "precious").unwrap();
            })
            .args(&["uncertainty", "small.toml", "-o", "docs"])
            .expect("will not write outputs to docs/uncertainty"),
    );
    c.push(
        Case::new("plot into a folder that is not an output", 1)
            .append("\n[charts]\n")
            .extra(|d| {
                std::fs::create_dir_all(d.join("docs/charts")).unwrap();
                std::fs::write(d.join("docs/charts/mine.txt"), "precious").unwrap();
            })
            .args(&["plot", "small.toml", "-o", "docs"])
            .expect("will not write outputs to docs/charts"),
    );

    // -- CSV strictness.
    c.push(
        Case::new("a row with a field missing in the middle", 1)
            .csv_edit("T2,Two,X,2.0,20,6,200", "T2,Two,X,20,6,200")
            .expect("small.csv: line 3: 6 fields, expected 7 as in the header (line 1)"),
    );
    c.push(
        Case::new("a row with a field too many", 1)
            .csv_edit("T3,Three,Y,3.0,30,7,300", "T3,Three,Y,3.0,30,7,300,9")
            .expect("small.csv: line 4: 8 fields, expected 7"),
    );
    c.push(
        Case::new("a trailing separator on every row", 1)
            .csv(&SMALL_CSV.replace('\n', ",\n").replacen(",\n", "\n", 1))
            .expect("small.csv: line 2: 8 fields, expected 7"),
    );
    c.push(
        Case::new("a ragged row after a quoted line break", 1)
            .csv_edit("T1,One,X", "T1,\"One\nand a half\",X")
            .csv_edit("T3,Three,Y,3.0,30,7,300", "T3,Three,Y,3.0,30,7")
            .expect("small.csv: line 5: 6 fields, expected 7"),
    );
    c.push(
        Case::new("duplicate header names", 1)
            .csv_edit("code,name,country,a,b,c,d", "code,name,country,a,b,c,a")
            .expect("small.csv: line 1: the header names column \"a\" twice (columns 4 and 7)"),
    );
    c.push(
        Case::new("invalid UTF-8 without an encoding", 1)
            .csv_bytes(
                &SMALL_CSV
                    .replace("Three", "Tr\u{1}s")
                    .replace('\u{1}', "\u{e8}")
                    .as_bytes()
                    .iter()
                    .filter(|&&b| b != 0xC3)
                    .map(|&b| if b == 0xA8 { 0xE8 } else { b })
                    .collect::<Vec<u8>>(),
            )
            .expect("small.csv: line 4: invalid UTF-8 (byte 0xE8)")
            .expect("encoding = \"windows-1252\""),
    );
    c.push(
        Case::new("an unknown encoding", 2)
            .toml(
                "path = \"small.csv\"",
                "path = \"small.csv\"\nencoding = \"klingon\"",
            )
            .expect_at("klingon", "unknown encoding \"klingon\""),
    );
    c.push(
        Case::new("a damaged gzip file", 1)
            .csv_bytes(&{
                let mut g = gzip(SMALL_CSV.as_bytes());
                let n = g.len();
                g.truncate(n / 2);
                g
            })
            .expect("small.csv: the file looks gzip-compressed but cannot be decompressed"),
    );
    c.push(
        Case::new("a FIFO as the input", 1)
            .toml("path = \"small.csv\"", "path = \"pipe.csv\"")
            .extra(|d| mkfifo(&d.join("pipe.csv")))
            .expect_at(
                "pipe.csv",
                "cannot read input file pipe.csv: it is a FIFO (named pipe), not a regular file",
            ),
    );
    c.push(
        Case::new("a directory as the input", 1)
            .toml("path = \"small.csv\"", "path = \"folder.csv\"")
            .extra(|d| std::fs::create_dir(d.join("folder.csv")).unwrap())
            .expect_at("folder.csv", "it is a directory, not a regular file"),
    );
    c.push(
        Case::new("a missing input", 1)
            .toml("path = \"small.csv\"", "path = \"nowhere.csv\"")
            .expect_at("nowhere.csv", "input file not found: nowhere.csv"),
    );
    c.push(
        Case::new("an empty file", 1)
            .csv("")
            .expect("small.csv: the file is empty (no header, no rows)"),
    );
    c.push(
        Case::new("a header and no rows", 1)
            .csv("code,name,country,a,b,c,d\n")
            .expect("small.csv: the table is empty: it has a header but no data rows"),
    );
    c.push(
        Case::new("a quote never closed", 1)
            .csv_edit("T4,Four", "T4,\"Four")
            .expect("small.csv: line 5: a quoted field opened here is never closed"),
    );
    c.push(
        Case::new("a point in a decimal-comma file", 1)
            .toml(
                "path = \"small.csv\"",
                "path = \"small.csv\"\nseparator = \";\"\ndecimal = \",\"",
            )
            .csv(&SMALL_CSV.replace(',', ";").replace("100", "26.754"))
            .expect("small.csv: row 1 (line 2), column \"d\": \"26.754\" is not a number")
            .expect("thousands = \".\""),
    );
    c.push(
        Case::new("thousands not in groups of three", 1)
            .toml(
                "path = \"small.csv\"",
                "path = \"small.csv\"\nthousands = \",\"",
            )
            .csv(&SMALL_CSV.replace(",100\n", ",\"1,00\"\n"))
            .expect("row 1 (line 2), column \"d\": \"1,00\" is not a number (thousands separators"),
    );
    c.push(
        Case::new("a number out of range", 1)
            .csv_edit("T2,Two,X,2.0,20", "T2,Two,X,2.0,1e400")
            .expect("small.csv: row 2 (line 3), column \"b\": \"1e400\" is out of range"),
    );
    c.push(
        Case::new("infinity in a cell", 1)
            .csv_edit("T2,Two,X,2.0,20", "T2,Two,X,2.0,inf")
            .expect("small.csv: row 2 (line 3), column \"b\": \"inf\" is not a finite number"),
    );
    c.push(
        Case::new("a text in a number column", 1)
            .csv_edit("T3,Three,Y,3.0", "T3,Three,Y,three")
            .expect("small.csv: row 3 (line 4), column \"a\": \"three\" is not a number"),
    );
    c.push(
        Case::new("a fractional year", 1)
            .toml("group = \"country\"", "group = \"country\"\nyear = \"year\"")
            .csv(&SMALL_CSV.replace("code,", "year,code,").replace("\nT", "\n2022,T").replacen("2022,T3", "2022.5,T3", 1))
            .expect("small.csv: row 3 (line 4), column \"year\": year must be a whole number, got \"2022.5\""),
    );
    c.push(
        Case::new("an empty territory id", 1)
            .csv_edit("T4,Four", ",Four")
            .expect("small.csv: row 4 (line 5), column \"code\": empty territory id"),
    );
    c.push(
        Case::new("a bad cell and a duplicate row, both listed", 1)
            .csv_edit("T3,Three,Y,3.0", "T3,Three,Y,x")
            .csv_edit("T4,Four", "T1,Four")
            .expect("column \"a\": \"x\" is not a number")
            .expect("duplicate territory (T1): 2 rows"),
    );
    c.push(
        Case::new("line numbers after blank lines", 1)
            .csv(
                &SMALL_CSV
                    .replace("\nT3", "\n\n\nT3")
                    .replace("T4,Four,Y,4.0", "T4,Four,Y,four"),
            )
            .expect("small.csv: row 4 (line 7), column \"a\": \"four\" is not a number"),
    );
    c.push(
        Case::new("a CSV that is really Parquet-named", 1)
            .toml("path = \"small.csv\"", "path = \"small.parquet\"")
            .extra(|d| {
                std::fs::copy(d.join("small.csv"), d.join("small.parquet"))
                    .map(|_| ())
                    .unwrap()
            })
            .expect("small.parquet: not a Parquet file"),
    );
    c.push(
        Case::new("a truncated Parquet file", 1)
            .toml("path = \"small.csv\"", "path = \"cut/s.parquet\"")
            .extra(|d| {
                let bytes = std::fs::read(d.join("out/scores.parquet")).unwrap();
                std::fs::create_dir(d.join("cut")).unwrap();
                std::fs::write(d.join("cut/s.parquet"), &bytes[..bytes.len() / 2]).unwrap();
            })
            .expect("cut/s.parquet: the Parquet file is truncated"),
    );

    // -- Data problems that must stop the run.
    c.push(
        Case::new("two sources that share no territory", 1)
            .toml(
                "[[source]]\npath = \"small.csv\"",
                "[[source]]\npath = \"small.csv\"\n\n[[source]]\npath = \"more.csv\"",
            )
            .append("\n[[indicator]]\nid = \"e\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"\n")
            .extra(|d| std::fs::write(d.join("more.csv"), "code,e\nFR1,1\nFR2,2\n").unwrap())
            .expect("no territory id of this source is in the other source(s), more.csv")
            .expect("there \"FR1\", \"FR2\""),
    );
    c.push(
        Case::new("a log of a negative value", 1)
            .csv_edit("T1,One,X,1.0,10,5,100", "T1,One,X,1.0,10,5,-100")
            .expect("small.csv: row 1 (line 2), column \"d\""),
    );
    c.push(
        Case::new("screening excludes every territory", 1)
            .append("\n[screening]\nmin_availability = 0.5\nexclude = [\"T1\", \"T2\", \"T3\", \"T4\"]\n")
            .expect_at("[screening]", "screening dropped every territory: [screening] exclude names them all"),
    );

    // -- Config values: non-finite and meaningless numbers, with their line and column.
    for (key, from, to) in [
        (
            "target",
            "utopia = 5\ndystopia = 0\n",
            "method = \"distance_to_target\"\ntarget = nan\n",
        ),
        ("utopia", "utopia = 5\n", "utopia = inf\n"),
        ("dystopia", "dystopia = 50\n", "dystopia = -inf\n"),
        ("cap_max", "utopia = 5\n", "utopia = 5\ncap_max = nan\n"),
        ("cap_min", "utopia = 5\n", "utopia = 5\ncap_min = -nan\n"),
        ("weight", "id = \"b\"\n", "id = \"b\"\nweight = nan\n"),
        (
            "range",
            "[index]",
            "[normalisation]\nmethod = \"minmax\"\nrange = [0.0, inf]\n\n[index]",
        ),
    ] {
        let case = Case::new("a non-finite number in the config", 2).toml(from, to);
        let written = to.lines().find(|l| l.starts_with(key)).unwrap().to_owned();
        c.push(case.expect_at(&written, "is not a finite number"));
    }
    c.push(
        Case::new("a number beyond f64", 2)
            .toml("utopia = 1000", "utopia = 1e400")
            .expect_at("1e400", "utopia = 1e400: is out of range"),
    );
    c.push(
        Case::new("a power mean exponent of 1e-20", 2)
            .toml(
                "[index]\nid = \"idx\"",
                "[index]\nid = \"idx\"\naggregation = { method = \"power\", p = 1e-20 }",
            )
            .expect_at(
                "p = 1e-20",
                "power mean exponent p = 1e-20 is too close to 0",
            ),
    );
    c.push(
        Case::new("a power mean exponent of 1000", 2)
            .toml(
                "[index]\nid = \"idx\"",
                "[index]\nid = \"idx\"\naggregation = { method = \"power\", p = 1000 }",
            )
            .expect_at("p = 1000", "power mean exponent p = 1000.0 is out of range"),
    );
    c.push(
        Case::new("a power mean exponent of nan", 2)
            .toml(
                "[index]\nid = \"idx\"",
                "[index]\nid = \"idx\"\naggregation = { method = \"power\", p = nan }",
            )
            .expect_at("p = nan", "p = nan: is not a finite number"),
    );
    c.push(
        Case::new("goalposts at ±1e308", 2)
            .toml(
                "utopia = 5\ndystopia = 0",
                "utopia = 1e308\ndystopia = -1e308",
            )
            .expect_at("utopia = 1e308", "are too far apart to rescale"),
    );
    c.push(
        Case::new("a weight of 1e300", 2)
            .toml("id = \"b\"\n", "id = \"b\"\nweight = 1e300\n")
            .expect_at("weight = 1e300", "weight 1e300 is out of range"),
    );
    c.push(
        Case::new("a min_availability of 2", 2)
            .append("\n[screening]\nmin_availability = 2\n")
            .expect_at(
                "min_availability = 2",
                "min_availability is a share between 0 and 1",
            ),
    );
    c.push(
        Case::new("an unknown key", 2)
            .toml("id = \"dim\"", "id = \"dim\"\nwieght = 2")
            .expect_at("wieght", "unknown field `wieght`"),
    );
    c.push(
        Case::new("a node id used twice", 2)
            .toml("id = \"c2\"", "id = \"c1\"")
            .expect("node id \"c1\" is used twice"),
    );
    c.push(
        Case::new("a separator of two characters", 2)
            .toml(
                "path = \"small.csv\"",
                "path = \"small.csv\"\nseparator = \";;\"",
            )
            .expect_at("separator", "separator must be one ASCII character"),
    );
    c.push(
        Case::new("a thousands separator equal to the decimal mark", 2)
            .toml(
                "path = \"small.csv\"",
                "path = \"small.csv\"\nthousands = \".\"\ndecimal = \".\"",
            )
            .expect_at(
                "thousands",
                "thousands separator \".\" is also the decimal mark",
            ),
    );
    c.push(
        Case::new("a TOML syntax error", 2)
            .toml("id = \"dim\"", "id = \"dim")
            .expect("small.toml:"),
    );
    c.push(
        Case::new("a missing pipeline file", 2)
            .args(&["run", "nowhere.toml", "-o", "out"])
            .expect("cannot read pipeline file nowhere.toml: not found"),
    );
    c.push(
        Case::new("a FIFO as the pipeline file", 2)
            .extra(|d| mkfifo(&d.join("pipe.toml")))
            .args(&["run", "pipe.toml", "-o", "out"])
            .expect("cannot read pipeline file pipe.toml: it is a FIFO (named pipe), not a regular file"),
    );
    c.push(
        Case::new("a directory as the pipeline file", 2)
            .extra(|d| std::fs::create_dir(d.join("dir.toml")).unwrap())
            .args(&["run", "dir.toml", "-o", "out"])
            .expect("cannot read pipeline file dir.toml: it is a directory"),
    );
    c.push(
        Case::new("a pipeline file in Latin-1", 2)
            .toml("id = \"dim\"", "id = \"dim\"\nname = \"Bien-\u{ea}tre\"")
            .extra(|d| {
                let t = std::fs::read(d.join("small.toml")).unwrap();
                let latin: Vec<u8> = String::from_utf8(t)
                    .unwrap()
                    .chars()
                    .map(|c| c as u32 as u8)
                    .collect();
                std::fs::write(d.join("small.toml"), latin).unwrap();
            })
            .expect("cannot read pipeline file small.toml: invalid UTF-8 at line"),
    );
    // Publishers' sources.
    c.push(
        Case::new("a eurostat source without a dataset", 2)
            .append("\n[[source]] # the second\nkind = \"eurostat\"\n")
            .expect_at("# the second", "needs `dataset`"),
    );
    c.push(
        Case::new("an unknown source kind", 2)
            .append("\n[[source]]\nkind = \"sdmx_json\"\n")
            .expect_at("kind = \"sdmx_json\"", "unknown variant `sdmx_json`"),
    );
    c.push(
        Case::new("a source URL that is not http", 2)
            .append("\n[[source]]\nkind = \"jsonstat\"\nurl = \"ftp://example.org/x.json\"\nindicator = \"x\"\n")
            .expect_at("ftp://", "URL scheme \"ftp\" is not supported"),
    );
    c.push(
        Case::new("a filter that is not a code", 2)
            .append(
                "\n[[source]]\nkind = \"eurostat\"\ndataset = \"x\"\nfilters = { unit = 1.5 }\n",
            )
            .expect_at("filters", "expected a code or a list of codes"),
    );
    c.push(
        Case::new("a CSV read as a Eurostat bulk file", 1)
            .append("\n[[source]]\nkind = \"eurostat\"\ndataset = \"x\"\nformat = \"tsv\"\npath = \"small.csv\"\n")
            .expect("source 2 (eurostat x)"),
    );
    c.push(
        Case::new("offline with nothing cached", 1)
            .append("\n[[source]]\nkind = \"jsonstat\"\nurl = \"http://127.0.0.1:9/x.json\"\nindicator = \"x\"\n")
            .args(&["run", "small.toml", "-o", "out", "--offline", "--cache-dir", "cache"])
            .expect("offline, and http://127.0.0.1:9/x.json is not in the cache"),
    );
    c.push(
        Case::new("an id width of zero", 2)
            .toml("[territories]", "[territories]\nid_width = 0")
            .expect_at("id_width", "id_width must be between 1 and 32"),
    );
    c.push(
        Case::new("a config error does not hide a data error", 2)
            .toml("utopia = 5\ndystopia = 0", "utopia = 5\ndystopia = 5")
            .csv_edit("T2,Two,X,2.0,20,6,200", "T2,Two,X,20,6,200")
            .args(&["validate", "small.toml"])
            .expect_at("utopia = 5", "utopia equals dystopia (5)")
            .expect("small.csv: line 3: 6 fields, expected 7"),
    );
    c.push(
        Case::new("a key typo does not hide a data error", 2)
            .toml("id = \"dim\"", "id = \"dim\"\nwieght = 2")
            .csv_edit("T2,Two,X,2.0,20,6,200", "T2,Two,X,20,6,200")
            .args(&["validate", "small.toml"])
            .expect_at("wieght", "unknown field `wieght`")
            .expect("small.csv: line 3: 6 fields, expected 7"),
    );
    c
}

#[test]
fn every_bad_input_is_refused_cleanly_and_touches_nothing() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| check(case).err().map(|e| format!("## {}\n{e}", case.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
