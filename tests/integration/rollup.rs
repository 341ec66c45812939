//! `[territories]` id rules and `[rollup]`, on small tables worked by hand: parents by id
//! prefix and by a mapping table, sums, means and population-weighted means, coverage,
//! denominated indicators, and the errors (levels mixed, ids not mapped, weights missing).

use crate::helpers::*;

/// Communes of two départements, two years; `b` missing for 01002 in 2021.
const COMMUNES: &str = "\
code,year,a,b,n,d
1001,2020,10,4,1,10
1002,2020,20,,3,30
2A004,2020,30,6,2,20
2A006,2020,50,8,2,20
1001,2021,12,5,1,10
1002,2021,22,6,3,30
2A004,2021,34,7,4,20
2A006,2021,54,9,0,20
";

const MAPPING: &str = "\
COM;DEP;LIBDEP
01001;01;Ain
01002;01;Ain
2A004;2A;Corse-du-Sud
2A006;2A;Corse-du-Sud
";

const POPULATION: &str = "code,pop\n01001,100\n01002,300\n2A004,200\n2A006,600\n";

fn project(rollup: &str) -> TempDir {
    let dir = TempDir::new("rollup");
    dir.write("communes.csv", COMMUNES);
    dir.write("mapping.csv", MAPPING);
    dir.write("pop.csv", POPULATION);
    dir.write(
        "p.toml",
        &format!(
            r#"[pipeline]
id = "p"
[territories]
id = "code"
year = "year"
id_width = 5
[[source]]
path = "communes.csv"
{rollup}
[index]
id = "idx"
[[dimension]]
id = "dim"
[[component]]
id = "c"
dimension = "dim"
[[indicator]]
id = "a"
component = "c"
direction = "higher_is_better"
utopia = 100
dystopia = 0
[[indicator]]
id = "b"
component = "c"
direction = "higher_is_better"
utopia = 100
dystopia = 0
[[indicator]]
id = "rate"
column = "n"
denominator = "d"
scale = 100
component = "c"
direction = "lower_is_better"
utopia = 0
dystopia = 100
"#
        ),
    );
    dir
}

fn value(dir: &TempDir, id: &str, node: &str, year: f64) -> Option<f64> {
    let s = read_csv(&dir.join("out/scores.csv"));
    let (ids, nodes, years, values) = (
        strings(&s, "territory_id"),
        strings(&s, "node_id"),
        floats(&s, "year"),
        floats(&s, "value"),
    );
    let i = (0..ids.len())
        .find(|&i| ids[i] == id && nodes[i] == node && years[i] == Some(year))
        .unwrap_or_else(|| panic!("no {id} {node} {year}"));
    values[i]
}

fn close(a: Option<f64>, b: f64) {
    let a = a.unwrap_or_else(|| panic!("missing, expected {b}"));
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}

#[test]
fn communes_roll_up_into_departements() {
    let dir = project(
        "[rollup]\nmapping = { path = \"mapping.csv\", separator = \";\", territory = \"COM\", parent = \"DEP\", name = \"LIBDEP\" }\n\
         weight = { path = \"pop.csv\", territory = \"code\", column = \"pop\" }\n\
         methods = { b = \"mean\", rate = \"sum\" }\nmin_coverage = 0.5",
    );
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `1001` is padded to `01001` (id_width = 5) and found in the mapping.
    // a, weighted by population: 01 2020 = (10·100 + 20·300)/400 = 17.5;
    // 2A 2021 = (34·200 + 54·600)/800 = 49.
    close(value(&dir, "01", "a", 2020.0), 17.5);
    close(value(&dir, "2A", "a", 2021.0), 49.0);
    // b, a plain mean: 01 2020 has one unit of two (coverage 0.5 ≥ 0.5): 4; 2A 2020: 7.
    close(value(&dir, "01", "b", 2020.0), 4.0);
    close(value(&dir, "2A", "b", 2020.0), 7.0);
    // rate = Σn / Σd · 100, lower is better on 0–100: 01 2020 = 4/40 → 10% → 90;
    // 2A 2021 = 4/40 → 90 too; 2A 2020 = 4/40.
    close(value(&dir, "01", "rate", 2020.0), 90.0);
    close(value(&dir, "2A", "rate", 2021.0), 90.0);
    // Names from the mapping table.
    let s = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(strings(&s, "territory_id"), ["01", "01", "2A", "2A"]);
    assert_eq!(strings(&s, "territory_name")[2], "Corse-du-Sud");
    // Coverage recorded.
    let r = read_csv(&dir.join("out/rollup.csv"));
    let n = rollup_row(&r, "01", "b", 2020.0);
    assert_eq!(floats(&r, "coverage")[n], Some(0.5));
    assert_eq!(strings(&r, "value_kept")[n], "true");
}

#[test]
fn full_coverage_is_the_default() {
    let dir = project(
        "[rollup]\nmapping = { path = \"mapping.csv\", separator = \";\", territory = \"COM\", parent = \"DEP\" }\n\
         methods = { rate = \"sum\" }",
    );
    let o = bienvivre(dir.path(), &["run", "p.toml", "-o", "out", "--no-progress"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 01 2020 lacks b in one of its two communes: no value, and a warning says so.
    assert_eq!(value(&dir, "01", "b", 2020.0), None);
    close(value(&dir, "01", "b", 2021.0), 5.5);
    let err = stderr(&o);
    assert!(
        err.contains("indicator \"b\": 1 parent value(s) left missing"),
        "{err}"
    );
}

#[test]
fn prefixes_make_parents() {
    // NUTS-like ids: FR10 and FR1A → FR1; parents by the first 3 characters.
    let dir = TempDir::new("prefix");
    dir.write(
        "d.csv",
        "geo,year,x\nfr10,2020,10\nfr1a,2020,30\nFR21,2020,5\nFR22,2020,7\n",
    );
    dir.write(
        "p.toml",
        "[pipeline]\nid = \"p\"\n[territories]\nid = \"geo\"\nyear = \"year\"\nid_case = \"upper\"\n\
         [[source]]\npath = \"d.csv\"\n[rollup]\nprefix = 3\nmethod = \"sum\"\n[index]\nid = \"i\"\n\
         [[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\ndimension = \"d\"\n[[indicator]]\nid = \"x\"\n\
         component = \"c\"\ndirection = \"higher_is_better\"\nutopia = 100\ndystopia = 0\n",
    );
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    close(value(&dir, "FR1", "x", 2020.0), 40.0);
    close(value(&dir, "FR2", "x", 2020.0), 12.0);
}

#[test]
fn rollup_errors_name_what_is_wrong() {
    // A denominated indicator averaged: refused at the config line.
    let dir = project(
        "[rollup]\nmapping = { path = \"mapping.csv\", separator = \";\", territory = \"COM\", parent = \"DEP\" }\n\
         methods = { rate = \"mean\" }",
    );
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("p.toml:11:") && err.contains("must be summed"),
        "{err}"
    );

    // A weighted mean without weights.
    let dir =
        project("[rollup]\nprefix = 2\nmethod = \"weighted_mean\"\nmethods = { rate = \"sum\" }");
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("there is no `weight`"),
        "{}",
        stderr(&o)
    );

    // A commune missing from the mapping, and one with no weight: data errors, nothing
    // written.
    let dir = project(
        "[rollup]\nmapping = { path = \"mapping.csv\", separator = \";\", territory = \"COM\", parent = \"DEP\" }\n\
         weight = { path = \"pop.csv\", territory = \"code\", column = \"pop\" }\nmethods = { rate = \"sum\" }",
    );
    std::fs::write(
        dir.join("mapping.csv"),
        MAPPING.replace("2A006;2A;Corse-du-Sud\n", ""),
    )
    .unwrap();
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("not in the mapping") && err.contains("\"2A006\""),
        "{err}"
    );
    assert!(!dir.join("out").exists());
    std::fs::write(dir.join("mapping.csv"), MAPPING).unwrap();
    std::fs::write(dir.join("pop.csv"), POPULATION.replace("2A004,200\n", "")).unwrap();
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("have no weight") && err.contains("2A004 2020"),
        "{err}"
    );

    // Mixed levels under a prefix rule.
    let dir = project("[rollup]\nprefix = 5\nmethods = { rate = \"sum\" }");
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not finer than their parent"),
        "{}",
        stderr(&o)
    );
}

/// `[territories] years`: only these years are scored; earlier rows feed `latest`.
#[test]
fn earlier_years_only_feed_the_imputation() {
    let dir = TempDir::new("years");
    // `s` is published every five years (2014); `y` every year from 2016.
    dir.write(
        "d.csv",
        "code,year,s,y\nA,2014,40,\nB,2014,80,\nA,2016,,10\nB,2016,,20\nA,2017,,30\nB,2017,,40\n",
    );
    dir.write(
        "p.toml",
        "[pipeline]\nid = \"p\"\n[territories]\nid = \"code\"\nyear = \"year\"\nyears = [2016, 2017]\n\
         [[source]]\npath = \"d.csv\"\n[imputation]\nmethod = \"latest\"\nmax_gap = 5\n\
         [index]\nid = \"i\"\n[[dimension]]\nid = \"d\"\n[[component]]\nid = \"c\"\ndimension = \"d\"\n\
         [[indicator]]\nid = \"s\"\ncomponent = \"c\"\ndirection = \"higher_is_better\"\nutopia = 100\ndystopia = 0\n\
         [[indicator]]\nid = \"y\"\ncomponent = \"c\"\ndirection = \"higher_is_better\"\nutopia = 100\ndystopia = 0\n",
    );
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(
        floats(&wide, "year"),
        [Some(2016.0), Some(2017.0), Some(2016.0), Some(2017.0)]
    );
    // B 2017: s carried forward from 2014 (80), y 40: component (80 + 40) / 2.
    close(floats(&wide, "c")[3], 60.0);
    // Imputed values say so.
    let s = read_csv(&dir.join("out/scores.csv"));
    assert!(strings(&s, "imputed").iter().any(|v| v == "true"));

    // A range with no data is an error at the [territories] line.
    let toml = std::fs::read_to_string(dir.join("p.toml"))
        .unwrap()
        .replace("years = [2016, 2017]", "years = [2030, 2031]");
    dir.write("p.toml", &toml);
    let o = bienvivre(dir.path(), &["run", "p.toml", "-q", "-o", "out2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no row in these years"),
        "{}",
        stderr(&o)
    );
}
