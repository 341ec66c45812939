//! Every bad input gets a specific message naming the file and row/column or config line,
//! a non-zero exit, and no output directory.

use crate::helpers::*;

/// Runs the small project with edits, expects failure with `code`, and returns stderr.
/// Asserts that no output directory (nor its parent) was created.
fn fails(toml: &str, csv: &str, code: i32) -> String {
    let dir = small_project(toml, csv);
    let out = bienvivre(
        dir.path(),
        &["run", "small.toml", "--output-dir", "outputs/small"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{err}");
    assert!(
        !dir.join("outputs").exists(),
        "outputs created despite the error:\n{err}"
    );
    assert!(stdout(&out).is_empty(), "stdout on error: {}", stdout(&out));
    // `validate` finds the same problem without writing either.
    let v = bienvivre(dir.path(), &["validate", "small.toml"]);
    assert_eq!(v.status.code(), Some(code));
    assert!(!dir.join("outputs").exists());
    err
}

fn assert_has(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}

#[test]
fn the_small_project_is_valid() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let out = bienvivre(
        dir.path(),
        &["run", "small.toml", "--output-dir", "outputs/small", "-q"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("outputs/small/manifest.json").exists());
}

#[test]
fn missing_input_file() {
    let toml = SMALL_TOML.replace("path = \"small.csv\"", "path = \"nowhere.csv\"");
    let err = fails(&toml, SMALL_CSV, 1);
    assert_has(
        &err,
        &["small.toml:10:8: input file not found: ", "nowhere.csv"],
    );
}

#[test]
fn unknown_key_column_lists_available_and_suggests() {
    let toml = SMALL_TOML.replace("id = \"code\"", "id = \"cod\"");
    let err = fails(&toml, SMALL_CSV, 1);
    assert_has(
        &err,
        &[
            "small.csv: no column \"cod\" (territory id column, set at ",
            "small.toml:5:6",
            "did you mean \"code\"?",
            "available columns: \"code\", \"name\", \"country\", \"a\"",
        ],
    );
}

#[test]
fn unknown_indicator_column_suggests_the_closest() {
    let toml = SMALL_TOML.replace("id = \"d\"\n", "id = \"d\"\ncolumn = \"dd\"\n");
    let err = fails(&toml, SMALL_CSV, 1);
    assert_has(
        &err,
        &[
            "column \"dd\" of indicator \"d\" is not in the data",
            "did you mean \"d\"?",
        ],
    );
}

#[test]
fn indicator_absent_from_the_data() {
    let toml = format!(
        "{SMALL_TOML}\n[[indicator]]\nid = \"life_expectancy\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"\n"
    );
    let err = fails(&toml, SMALL_CSV, 1);
    assert_has(
        &err,
        &[
            "small.toml:54:1: indicator \"life_expectancy\" is not in the data (",
            "small.csv)",
            "available: ",
        ],
    );
}

#[test]
fn non_numeric_cell_names_row_and_column() {
    let csv = SMALL_CSV.replace("T2,Two,X,2.0,20", "T2,Two,X,2.0,twenty");
    let err = fails(SMALL_TOML, &csv, 1);
    assert_has(
        &err,
        &["small.csv: row 2 (line 3), column \"b\": \"twenty\" is not a number"],
    );
}

#[test]
fn decimal_comma_without_setting_gets_a_hint() {
    let csv = SMALL_CSV.replace(",", ";").replace("2.0", "2,5");
    let toml = SMALL_TOML.replace(
        "path = \"small.csv\"",
        "path = \"small.csv\"\nseparator = \";\"",
    );
    let err = fails(&toml, &csv, 1);
    assert_has(
        &err,
        &[
            "row 2 (line 3), column \"a\": \"2,5\" is not a number",
            "decimal = \",\"",
        ],
    );
}

#[test]
fn duplicate_territory_rows() {
    let csv = format!("{SMALL_CSV}T2,Two again,X,2.5,25,6,250\n");
    let err = fails(SMALL_TOML, &csv, 1);
    assert_has(
        &err,
        &[
            "small.csv: row 2 (line 3), column \"code\": duplicate territory (T2): 2 rows, first at row 2 (line 3) and last at row 5 (line 6)",
        ],
    );
}

#[test]
fn utopia_equal_to_dystopia() {
    let toml = SMALL_TOML.replace("utopia = 5\ndystopia = 0", "utopia = 5\ndystopia = 5");
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "small.toml:30:10: indicator \"a\": utopia equals dystopia (5), so it cannot be rescaled",
        ],
    );
}

#[test]
fn observed_goalposts_on_a_constant_indicator() {
    let csv = SMALL_CSV
        .replace(",5,100", ",7,100")
        .replace(",6,200", ",7,200")
        .replace(",8,400", ",7,400");
    let err = fails(SMALL_TOML, &csv, 1);
    assert_has(
        &err,
        &["indicator \"c\": utopia equals dystopia (every observed value is 7)"],
    );
}

#[test]
fn log_of_a_non_positive_value() {
    let csv = SMALL_CSV.replace("T3,Three,Y,3.0,30,7,300", "T3,Three,Y,3.0,30,7,0");
    let err = fails(SMALL_TOML, &csv, 1);
    assert_has(
        &err,
        &[
            "small.csv: row 3 (line 4), column \"d\": value 0 cannot be log-transformed (log needs a positive value)",
        ],
    );
}

#[test]
fn negative_weight() {
    let toml = SMALL_TOML.replace(
        "id = \"c2\"\ndimension = \"dim\"",
        "id = \"c2\"\ndimension = \"dim\"\nweight = -1",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &["small.toml:25:10: weight must be a finite number ≥ 0, got -1"],
    );
}

#[test]
fn all_zero_weights() {
    let toml = SMALL_TOML
        .replace(
            "[[dimension]]\nid = \"dim\"",
            "[[dimension]]\nid = \"dim\"\naggregation = { method = \"weighted\" }",
        )
        .replace(
            "id = \"c1\"\ndimension = \"dim\"",
            "id = \"c1\"\ndimension = \"dim\"\nweight = 0",
        )
        .replace(
            "id = \"c2\"\ndimension = \"dim\"",
            "id = \"c2\"\ndimension = \"dim\"\nweight = 0",
        );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &["small.toml:15:1: the weights of the components of \"dim\" are all zero"],
    );
}

#[test]
fn weights_with_an_unweighted_mean() {
    let toml = SMALL_TOML.replace(
        "id = \"c2\"\ndimension = \"dim\"",
        "id = \"c2\"\ndimension = \"dim\"\nweight = 2",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "dimension \"dim\" uses the unweighted arithmetic mean but its components have weights",
            "method = \"weighted\"",
        ],
    );
}

#[test]
fn empty_table() {
    let err = fails(SMALL_TOML, "code,name,country,a,b,c,d\n", 1);
    assert_has(
        &err,
        &["small.csv: the table is empty: it has a header but no data rows"],
    );
    let err = fails(SMALL_TOML, "", 1);
    assert_has(&err, &["small.csv: the file is empty (no header, no rows)"]);
}

#[test]
fn unknown_config_key() {
    let toml = SMALL_TOML.replace("id = \"idx\"", "id = \"idx\"\nwieght = 2");
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &["small.toml:14:1: unknown field `wieght`, expected one of `id`, `name`, `aggregation`"],
    );
}

#[test]
fn component_with_no_indicators() {
    let toml = SMALL_TOML.replace(
        "[[indicator]]\nid = \"a\"",
        "[[component]]\nid = \"c3\"\ndimension = \"dim\"\n\n[[indicator]]\nid = \"a\"",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "small.toml:26:1: component \"c3\" has no indicators",
            "add a [[indicator]] with component = \"c3\"",
        ],
    );
}

#[test]
fn power_mean_without_exponent() {
    let toml = SMALL_TOML.replace(
        "[index]\nid = \"idx\"",
        "[index]\nid = \"idx\"\naggregation = { method = \"power\" }",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &["index aggregation: method \"power\" needs an exponent p"],
    );
}

#[test]
fn geometric_mean_of_a_negative_value_is_an_error_not_nan() {
    // Without clipping, a value below the dystopia rescales below 0.
    let csv = SMALL_CSV.replace("T1,One,X,1.0,10", "T1,One,X,1.0,60");
    let toml = SMALL_TOML.replace(
        "id = \"c1\"\ndimension = \"dim\"",
        "id = \"c1\"\ndimension = \"dim\"\naggregation = { method = \"geometric\" }",
    );
    let err = fails(&toml, &csv, 1);
    assert_has(
        &err,
        &[
            "component \"c1\" is a geometric mean of its children, which needs positive values, but indicator \"b\" is -20 for territory T1",
            "range = [1, 100]",
        ],
    );
}

#[test]
fn geometric_or_harmonic_mean_of_zero_is_an_error_not_zero() {
    // b = 50 is its dystopia: it rescales to exactly 0, which ln() would turn into a 0 mean.
    let csv = SMALL_CSV.replace("T2,Two,X,2.0,20", "T2,Two,X,2.0,50");
    for method in ["geometric", "harmonic"] {
        let toml = SMALL_TOML.replace(
            "id = \"c1\"\ndimension = \"dim\"",
            &format!("id = \"c1\"\ndimension = \"dim\"\naggregation = {{ method = \"{method}\" }}"),
        );
        let err = fails(&toml, &csv, 1);
        assert_has(
            &err,
            &[&format!(
                "component \"c1\" is a {method} mean of its children, which needs positive values, but indicator \"b\" is 0 for territory T2"
            )],
        );
    }
}

#[test]
fn validate_lists_every_problem() {
    let toml = SMALL_TOML
        .replace("utopia = 5\ndystopia = 0", "utopia = 5\ndystopia = 5")
        .replace(
            "component = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts",
            "component = \"c9\"\ndirection = \"higher_is_better\"\ngoalposts",
        )
        .replace(
            "id = \"c2\"\ndimension = \"dim\"",
            "id = \"c2\"\ndimension = \"dim\"\nweight = -1",
        );
    let dir = small_project(&toml, SMALL_CSV);
    let out = bienvivre(dir.path(), &["validate", "small.toml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stderr(&out));
}

#[test]
fn a_failed_run_leaves_earlier_outputs_untouched() {
    let dir = small_project(SMALL_TOML, SMALL_CSV);
    let ok = bienvivre(dir.path(), &["run", "small.toml", "-q"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let manifest = dir.join("outputs/small/latest/manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    let listing = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let files_before = listing(&dir.join("outputs/small/latest"));
    let runs_before = listing(&dir.join("outputs/small/runs"));

    dir.write("small.csv", &SMALL_CSV.replace("2.0", "two"));
    let bad = bienvivre(dir.path(), &["run", "small.toml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    assert_eq!(listing(&dir.join("outputs/small/latest")), files_before);
    // No new run, and no temporary directory left in the history.
    assert_eq!(listing(&dir.join("outputs/small/runs")), runs_before);
    assert_eq!(listing(&dir.join("outputs")), vec!["small".to_string()]);
}

#[test]
fn unknown_normalisation_method() {
    let toml = SMALL_TOML.replace(
        "[index]",
        "[normalisation]\nmethod = \"minmaxx\"\n\n[index]",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "small.toml:13:10: unknown variant `minmaxx`, expected one of `goalposts`, `minmax`, `zscore`",
        ],
    );
}

#[test]
fn distance_to_target_without_a_target() {
    let toml = SMALL_TOML.replace(
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"",
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\nnormalisation = { method = \"distance_to_target\" }",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "indicator \"c\": method \"distance_to_target\" needs a target",
            "add target = … in the indicator's own units",
        ],
    );
}

#[test]
fn normalisation_settings_that_do_not_fit_the_method() {
    let toml = SMALL_TOML.replace(
        "[index]",
        "[normalisation]\nmethod = \"zscore\"\nrange = [0, 1]\n\n[index]",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &[
            "[normalisation]: `range` applies to methods \"minmax\" and \"percentile\", not \"zscore\"",
            // The small project's goalposts do not fit a z-scored pipeline either.
            "indicator \"a\": utopia, dystopia and goalposts apply to method \"goalposts\", not \"zscore\"",
        ],
    );
    let toml = SMALL_TOML.replace(
        "[index]",
        "[normalisation]\nscope = \"per_year\"\n\n[index]",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(&err, &["scope = \"per_year\" needs years"]);
}

#[test]
fn minmax_of_a_constant_indicator() {
    let toml = SMALL_TOML.replace(
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\ngoalposts = \"observed\"",
        "id = \"c\"\ncomponent = \"c2\"\ndirection = \"higher_is_better\"\nnormalisation = { method = \"minmax\" }",
    );
    let csv = SMALL_CSV
        .replace(",5,", ",7,")
        .replace(",6,", ",7,")
        .replace(",8,", ",7,");
    let err = fails(&toml, &csv, 1);
    assert_has(
        &err,
        &[
            "indicator \"c\": every value is 7, so it cannot be normalised with minmax (its range is 0)",
        ],
    );
}

#[test]
fn denominator_column_absent() {
    let toml = SMALL_TOML.replace(
        "id = \"a\"\ncomponent = \"c1\"",
        "id = \"a\"\ndenominator = \"populaton\"\ncomponent = \"c1\"",
    );
    let csv = SMALL_CSV
        .replace("code,name,country,a", "code,name,country,population,a")
        .replace(",X,", ",X,10,")
        .replace(",Y,", ",Y,10,");
    let err = fails(&toml, &csv, 1);
    assert_has(
        &err,
        &[
            "denominator \"populaton\" is not in the data",
            "did you mean \"population\"?",
        ],
    );
}

#[test]
fn zero_denominator() {
    let toml = SMALL_TOML.replace(
        "id = \"a\"\ncomponent = \"c1\"",
        "id = \"a\"\ndenominator = \"population\"\nscale = 1000\ncomponent = \"c1\"",
    );
    let csv = SMALL_CSV
        .replace("code,name,country,a", "code,name,country,population,a")
        .replace("T2,Two,X,", "T2,Two,X,0,")
        .replace("T1,One,X,", "T1,One,X,10,")
        .replace("T3,Three,Y,", "T3,Three,Y,10,")
        .replace("T4,Four,Y,", "T4,Four,Y,10,");
    let err = fails(&toml, &csv, 1);
    assert_has(
        &err,
        &["indicator \"a\": denominator \"population\" is 0 for T2"],
    );
}

#[test]
fn imputation_that_needs_years_or_groups() {
    let toml = SMALL_TOML.replace("[index]", "[imputation]\nmethod = \"linear\"\n\n[index]");
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(
        &err,
        &["indicator \"a\": imputation \"linear\" needs years"],
    );
    let toml = SMALL_TOML.replace("group = \"country\"\n", "").replace(
        "[index]",
        "[imputation]\nmethod = \"group_mean\"\n\n[index]",
    );
    let err = fails(&toml, SMALL_CSV, 2);
    assert_has(&err, &["imputation \"group_mean\" needs a group column"]);
}
