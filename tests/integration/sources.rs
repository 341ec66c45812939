//! Publishers' sources over HTTP, against the local replay server: the cache (miss, then
//! 304 → hit, offline with and without a copy, refresh), retries (500, 500, 200), a
//! timeout, API errors in the API's words (Eurostat 404 and 413, a World Bank error
//! served with HTTP 200), and responses that must never reach the cache (invalid JSON,
//! a truncated gzip body).

use std::time::Duration;

use crate::helpers::*;
use crate::replay::{Replay, Reply};

/// A small JSON-stat 2.0 dataset: 3 territories × 2 years, one provisional value and one
/// confidential cell.
const DATASET: &str = r#"{"version":"2.0","class":"dataset","label":"test",
"id":["unit","geo","time"],"size":[1,3,2],
"dimension":{"unit":{"category":{"index":["PC"]}},
"geo":{"category":{"index":["AA","BB","CC"],"label":{"AA":"Aland","BB":"Bland","CC":"Cland"}}},
"time":{"category":{"index":["2020","2021"]}}},
"value":{"0":10,"1":12,"2":20,"3":21,"4":30},"status":{"1":"p","5":"|C"}}"#;

/// A pipeline reading `x` from `url` (kind `jsonstat`), with `extra` lines on the source.
fn project(url: &str, extra: &str) -> TempDir {
    let dir = TempDir::new("sources");
    dir.write(
        "p.toml",
        &format!(
            r#"[pipeline]
id = "p"
[territories]
id = "geo"
name = "name"
year = "year"
[[source]]
kind = "jsonstat"
url = "{url}"
indicator = "x"
{extra}
[index]
id = "idx"
[[dimension]]
id = "d"
[[component]]
id = "c"
dimension = "d"
[[indicator]]
id = "x"
component = "c"
direction = "higher_is_better"
utopia = 40
dystopia = 0
"#
        ),
    );
    dir
}

fn run(dir: &TempDir, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "p.toml", "-q", "-o", "out", "--cache-dir", "cache"];
    args.extend_from_slice(extra);
    bienvivre(dir.path(), &args)
}

fn manifest(dir: &TempDir) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("out/manifest.json")).unwrap()).unwrap()
}

fn json(body: &str) -> Reply {
    Reply::ok(body, "application/json; charset=UTF-8")
}

#[test]
fn downloads_are_cached_and_revalidated() {
    let server = Replay::start();
    server.route("/data.json", vec![json(DATASET).gzip()]);
    let dir = project(&format!("{}/data.json", server.base()), "");

    // First run: downloaded.
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest(&dir);
    let d = &m["downloads"][0];
    assert_eq!(d["cache"], "miss");
    assert_eq!(d["http_status"], 200);
    assert_eq!(d["bytes"], DATASET.len());
    assert_eq!(d["url"], format!("{}/data.json", server.base()));
    // The flags: 12 in AA 2021 is provisional; CC 2021 is confidential (no value).
    let scores = read_csv(&dir.join("out/scores.csv"));
    let (ids, nodes, years, flags) = (
        strings(&scores, "territory_id"),
        strings(&scores, "node_id"),
        floats(&scores, "year"),
        strings(&scores, "flag"),
    );
    let row = |id: &str, y: f64| {
        (0..ids.len())
            .find(|&i| ids[i] == id && nodes[i] == "x" && years[i] == Some(y))
            .unwrap()
    };
    assert_eq!(flags[row("AA", 2021.0)], "p");
    assert_eq!(flags[row("AA", 2020.0)], "");
    assert_eq!(floats(&scores, "value")[row("CC", 2021.0)], None);
    assert_eq!(
        strings(&scores, "territory_name")[row("BB", 2020.0)],
        "Bland"
    );
    assert_eq!(m["index"]["flags"]["x"]["p"], 1);
    assert_eq!(m["index"]["flags"]["x"]["c"], 1);

    // Second run: the server says 304, the cached copy is used.
    server.clear_seen();
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].status, 304);
    assert!(seen[0].headers.contains_key("if-none-match"));
    assert!(
        seen[0].headers["user-agent"].starts_with("bienvivre/"),
        "{:?}",
        seen[0].headers
    );
    let d = &manifest(&dir)["downloads"][0];
    assert_eq!(d["cache"], "hit");
    assert_eq!(d["http_status"], 304);

    // Offline with the copy: no request at all.
    server.clear_seen();
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let o = run(&dir, &["--offline"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(server.seen().is_empty());
    assert_eq!(manifest(&dir)["downloads"][0]["cache"], "offline");

    // --refresh downloads again, without validators.
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let o = run(&dir, &["--refresh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].headers.contains_key("if-none-match"));
    assert_eq!(manifest(&dir)["downloads"][0]["cache"], "miss");
}

#[test]
fn offline_without_a_copy_names_the_source_and_the_cache() {
    let server = Replay::start();
    server.route("/data.json", vec![json(DATASET)]);
    let dir = project(&format!("{}/data.json", server.base()), "");
    let o = run(&dir, &["--offline"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("p.toml:7:1"), "{err}");
    assert!(
        err.contains("offline") && err.contains("not in the cache"),
        "{err}"
    );
    assert!(err.contains("source 1"), "{err}");
    assert!(
        err.contains(&dir.join("cache").display().to_string()) || err.contains("cache/http/"),
        "{err}"
    );
    assert!(server.seen().is_empty());
    assert!(!dir.join("out").exists());
}

#[test]
fn server_errors_are_retried() {
    let server = Replay::start();
    server.route(
        "/data.json",
        vec![
            Reply::status(500, "oops"),
            Reply::status(500, "oops again"),
            json(DATASET),
        ],
    );
    let dir = project(&format!("{}/data.json", server.base()), "");
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let statuses: Vec<u16> = server.seen().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(manifest(&dir)["downloads"][0]["cache"], "miss");

    // With no retry allowed, the first 500 is the answer: an error, nothing written.
    server.route(
        "/other.json",
        vec![Reply::status(500, "oops"), json(DATASET)],
    );
    let dir = project(&format!("{}/other.json", server.base()), "retries = 0");
    let o = run(&dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("HTTP 500") && err.contains("1 attempt"),
        "{err}"
    );
    assert!(!dir.join("out").exists());
}

#[test]
fn a_timeout_fails_or_falls_back_on_the_cache() {
    let server = Replay::start();
    server.route("/data.json", vec![json(DATASET)]);
    let url = format!("{}/data.json", server.base());
    let dir = project(&url, "timeout = 0.5\nretries = 0");
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The server now hangs: the cached copy is used, with a warning.
    server.route(
        "/data.json",
        vec![json(DATASET).delayed(Duration::from_secs(3))],
    );
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let o = bienvivre(
        dir.path(),
        &[
            "run",
            "p.toml",
            "-o",
            "out",
            "--cache-dir",
            "cache",
            "--no-progress",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning:") && err.contains("timeout") && err.contains("cached"),
        "{err}"
    );
    assert_eq!(manifest(&dir)["downloads"][0]["cache"], "stale");

    // Without a copy, the timeout is the error.
    let fresh = project(&url, "timeout = 0.5\nretries = 0");
    let o = run(&fresh, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("timeout") && err.contains("no cached copy"),
        "{err}"
    );
}

#[test]
fn api_errors_are_quoted() {
    let server = Replay::start();
    server.route(
        "/statistics/1.0/data/nope",
        vec![Reply::status(
            404,
            r#"{"error":[{"status":404,"id":100,"label":"ERR_NOT_FOUND_4: NOPE (DATA_FLOW:ALL,1.0) is not available for dissemination."}]}"#,
        )],
    );
    server.route(
        "/statistics/1.0/data/big",
        vec![Reply::status(
            413,
            r#"{"error":[{"status":413,"id":413,"label":"EXTRACTION_TOO_BIG: The requested extraction is too big, estimated 10305182 rows, max authorised is 5000000"}]}"#,
        )],
    );
    for (dataset, expected, help) in [
        ("nope", "ERR_NOT_FOUND_4: NOPE", "dataset"),
        ("big", "EXTRACTION_TOO_BIG", "format = \"tsv\""),
    ] {
        let dir = TempDir::new("api-error");
        let toml = std::fs::read_to_string(project("http://x/", "").join("p.toml"))
            .unwrap()
            .replace(
                "kind = \"jsonstat\"\nurl = \"http://x/\"\nindicator = \"x\"",
                &format!(
                    "kind = \"eurostat\"\ndataset = \"{dataset}\"\nbase_url = \"{}\"\nindicator = \"x\"",
                    server.base()
                ),
            );
        dir.write("p.toml", &toml);
        let o = run(&dir, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expected), "{err}");
        assert!(err.contains(help), "{err}");
        assert!(err.contains("p.toml:7:1"), "{err}");
        let seen = server.seen();
        let last = seen.last().unwrap();
        assert!(last.path.contains("format=JSON"), "{}", last.path);
    }
}

#[test]
fn unreadable_responses_never_reach_the_cache() {
    let server = Replay::start();
    let url = format!("{}/data.json", server.base());
    let dir = project(&url, "retries = 0");
    // A good copy first.
    server.route("/data.json", vec![json(DATASET)]);
    assert!(run(&dir, &[]).status.success());
    let entry_before = cache_entries(&dir);

    // Then a body that is not JSON (a new version, by its ETag).
    server.route(
        "/data.json",
        vec![json("{\"version\": \"2.0\", \"class\": ")],
    );
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    let o = run(&dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("cannot be read") && err.contains("nothing was cached"),
        "{err}"
    );
    assert!(!dir.join("out").exists());
    assert_eq!(
        cache_entries(&dir),
        entry_before,
        "the cached copy is untouched"
    );

    // A gzip body cut short: a transfer error, not a short dataset.
    server.route("/data.json", vec![json(DATASET).gzip().truncated(60)]);
    let o = run(&dir, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.is_empty() || err.contains("gzip"), "{err}");
    assert_eq!(cache_entries(&dir), entry_before);

    // A fresh cache: the truncated body is an error, and nothing is cached.
    let fresh = project(&url, "retries = 0");
    let o = run(&fresh, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("gzip"), "{err}");
    assert!(cache_entries(&fresh).is_empty());
}

/// The cache's entries: (file name, bytes).
fn cache_entries(dir: &TempDir) -> Vec<(String, Vec<u8>)> {
    let Ok(read) = std::fs::read_dir(dir.join("cache/http")) else {
        return Vec::new();
    };
    let mut v: Vec<(String, Vec<u8>)> = read
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn world_bank_errors_come_with_http_200() {
    let server = Replay::start();
    server.route(
        "/v2/country/all/indicator/INVALID.ID",
        vec![json(
            r#"[{"message":[{"id":"120","key":"Invalid value","value":"The provided parameter value is not valid"}]}]"#,
        )],
    );
    let dir = TempDir::new("wb");
    let toml = std::fs::read_to_string(project("http://x/", "").join("p.toml"))
        .unwrap()
        .replace(
            "kind = \"jsonstat\"\nurl = \"http://x/\"\nindicator = \"x\"",
            &format!(
                "kind = \"worldbank\"\nindicators = [\"INVALID.ID\"]\nbase_url = \"{}\"\nretries = 0",
                server.base()
            ),
        )
        .replace("component = \"c\"", "column = \"INVALID.ID\"\ncomponent = \"c\"");
    dir.write("p.toml", &toml);
    let o = run(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("Invalid value") && err.contains("120"),
        "{err}"
    );
    assert!(cache_entries(&dir).is_empty());
}

/// The captured responses in ../shared/data/official_samples, replayed.
fn sample(rel: &str) -> std::path::PathBuf {
    shared(&format!("official_samples/{rel}"))
}

/// A pipeline of one indicator `x` (goalposts 0 and `utopia`) from the source `source`.
fn sample_project(source: &str, utopia: f64) -> TempDir {
    let dir = TempDir::new("samples");
    dir.write(
        "p.toml",
        &format!(
            "[pipeline]\nid = \"p\"\n[territories]\nid = \"geo\"\nname = \"name\"\nyear = \"year\"\n\
             [[source]]\n{source}\n[index]\nid = \"idx\"\n[[dimension]]\nid = \"d\"\n\
             [[component]]\nid = \"c\"\ndimension = \"d\"\n[[indicator]]\nid = \"x\"\n\
             component = \"c\"\ndirection = \"higher_is_better\"\nutopia = {utopia}\ndystopia = 0\n"
        ),
    );
    dir
}

/// (value, flag) of indicator `x` for a territory and year in `out/scores.csv`.
fn cell_of(dir: &TempDir, id: &str, year: i64) -> (Option<f64>, String) {
    let scores = read_csv(&dir.join("out/scores.csv"));
    let (ids, nodes, years) = (
        strings(&scores, "territory_id"),
        strings(&scores, "node_id"),
        floats(&scores, "year"),
    );
    let i = (0..ids.len())
        .find(|&i| ids[i] == id && nodes[i] == "x" && years[i] == Some(year as f64))
        .unwrap_or_else(|| panic!("no row for {id} {year}"));
    (
        floats(&scores, "value")[i],
        strings(&scores, "flag")[i].clone(),
    )
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
#[ignore = "needs ../shared/data"]
fn eurostat_bulk_tsv_replayed() {
    let server = Replay::start();
    server.route(
        "/sdmx/2.1/data/nama_10r_2gdp",
        vec![Reply::file(
            &sample("eurostat_tsv/nama_10r_2gdp.tsv.gz"),
            "application/octet-stream",
        )],
    );
    server.route(
        "/sdmx/2.1/data/lfst_r_lfu3pers",
        vec![Reply::file(
            &sample("eurostat_tsv/lfst_r_lfu3pers.tsv.gz"),
            "application/octet-stream",
        )],
    );
    // `zcat nama_10r_2gdp.tsv.gz | grep '^EUR_HAB,FI1B'`: 2013 is "49300 e" (scored on
    // goalposts 0–100,000: 49.3).
    let dir = sample_project(
        &format!(
            "kind = \"eurostat\"\ndataset = \"nama_10r_2gdp\"\nformat = \"tsv\"\nbase_url = \"{}\"\n\
             indicator = \"x\"\nfilters = {{ unit = \"EUR_HAB\", geoLevel = \"nuts2\" }}",
            server.base()
        ),
        100_000.0,
    );
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (v, flag) = cell_of(&dir, "FI1B", 2013);
    assert!(close(v, 49.3), "{v:?}");
    assert_eq!(flag, "e");
    // `… | grep '^EUR_HAB,AT11'`: 2014 is "26500 " (no flag).
    let (v, flag) = cell_of(&dir, "AT11", 2014);
    assert!(close(v, 26.5), "{v:?}");
    assert_eq!(flag, "");
    assert!(server.seen()[0].path.contains("format=TSV"));
    let m = manifest(&dir);
    assert_eq!(m["index"]["counts"]["years"].as_array().unwrap().len(), 15);
    // nuts2 keeps 4-character codes only.
    let scores = read_csv(&dir.join("out/scores.csv"));
    assert!(
        strings(&scores, "territory_id")
            .iter()
            .all(|id| id.len() == 4)
    );

    // Unemployment by age and sex: `zcat lfst_r_lfu3pers.tsv.gz | grep '^THS,Y15-24,F,BE24'`
    // → 2015 "2.6 u", 2005 "2.8 bu", 2003 ": c" (confidential: no value).
    let dir = sample_project(
        &format!(
            "kind = \"eurostat\"\ndataset = \"lfst_r_lfu3pers\"\nformat = \"tsv\"\nbase_url = \"{}\"\n\
             indicator = \"x\"\nfilters = {{ age = \"Y15-24\", sex = \"F\" }}",
            server.base()
        ),
        100.0,
    );
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cell_of(&dir, "BE24", 2015), (Some(2.6), "u".into()));
    let (v, flag) = cell_of(&dir, "BE24", 2005);
    assert!(close(v, 2.8) && flag == "bu", "{v:?} {flag}");
    assert_eq!(cell_of(&dir, "BE24", 2003), (None, String::new()));
    let flags = &manifest(&dir)["index"]["flags"]["x"];
    assert!(flags["c"].as_u64().unwrap() >= 1, "{flags}");
    assert!(flags["u"].as_u64().unwrap() >= 1, "{flags}");

    // Without the sex filter, three codes are left: an error that says how to choose.
    let dir = sample_project(
        &format!(
            "kind = \"eurostat\"\ndataset = \"lfst_r_lfu3pers\"\nformat = \"tsv\"\nbase_url = \"{}\"\n\
             indicator = \"x\"\nfilters = {{ age = \"Y15-24\" }}",
            server.base()
        ),
        100.0,
    );
    let o = run(&dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("dimension \"sex\" still has 3 codes")
            && err.contains("filters = { sex = \"F\" }"),
        "{err}"
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn jsonstat_replayed() {
    let server = Replay::start();
    server.route(
        "/data/HLTH_EHIS_HC7",
        vec![
            Reply::file(
                &sample("eurostat_jsonstat/HLTH_EHIS_HC7.json"),
                "application/json",
            )
            .gzip(),
        ],
    );
    // Cells read with python3 (flat index = Σ pos·stride): BE (A, TOTAL, T, E10-E14,
    // TOTAL) 2008 = 4.6; for ED0-2, DE is "|C" (confidential, no value).
    let source = |isced: &str| {
        format!(
            "kind = \"jsonstat\"\nurl = \"{}/data/HLTH_EHIS_HC7?format=JSON\"\nindicator = \"x\"\n\
             filters = {{ age = \"TOTAL\", sex = \"T\", icd10 = \"E10-E14\", isced97 = \"{isced}\" }}",
            server.base()
        )
    };
    let dir = sample_project(&source("TOTAL"), 100.0);
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cell_of(&dir, "BE", 2008), (Some(4.6), String::new()));
    // Names come from the dataset's labels.
    let scores = read_csv(&dir.join("out/scores.csv"));
    let at = strings(&scores, "territory_id")
        .iter()
        .position(|id| id == "DE")
        .unwrap();
    assert_eq!(strings(&scores, "territory_name")[at], "Germany");
    let dir = sample_project(&source("ED0-2"), 100.0);
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cell_of(&dir, "DE", 2008), (None, String::new()));
    assert!(manifest(&dir)["index"]["flags"]["x"]["c"].as_u64().unwrap() >= 1);
}

#[test]
#[ignore = "needs ../shared/data"]
fn sdmx_csv_replayed() {
    let server = Replay::start();
    server.route(
        "/public/rest/data/prices",
        vec![Reply::file(
            &sample("sdmx_csv/oecd_g20_prices_data.csv"),
            "application/vnd.sdmx.data+csv; version=1.0.0",
        )],
    );
    // `grep ',1988,' oecd_g20_prices_data.csv` → CHN 1988 = 18.8, OBS_STATUS A (normal).
    let dir = sample_project(
        &format!(
            "kind = \"sdmx_csv\"\nurl = \"{}/public/rest/data/prices\"\nindicator = \"x\"",
            server.base()
        ),
        100.0,
    );
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cell_of(&dir, "CHN", 1988), (Some(18.8), String::new()));
}

#[test]
#[ignore = "needs ../shared/data"]
fn world_bank_pages_replayed() {
    // Page 1 of the captured answer, split in two pages (records and totals as captured).
    let body = std::fs::read_to_string(sample(
        "worldbank/extracted_bodies/TestIndicatorValuesService_List.1.json",
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let records = v[1].as_array().unwrap();
    let (a, b) = records.split_at(25);
    let page = |n: u32, recs: &[serde_json::Value]| {
        let meta = serde_json::json!({"page": n, "pages": 2, "per_page": 25, "total": records.len(),
            "sourceid": "2", "lastupdated": "2021-05-25"});
        serde_json::to_string(&serde_json::json!([meta, recs])).unwrap()
    };
    let server = Replay::start();
    let path = "/v2/country/all/indicator/NY.GDP.MKTP.CD";
    server.route(path, vec![json(&page(1, a))]);
    server.route(
        &format!("{path}?format=json&per_page=1000&page=2"),
        vec![json(&page(2, b))],
    );
    let dir = sample_project(
        &format!(
            "kind = \"worldbank\"\nindicators = [\"NY.GDP.MKTP.CD\"]\nbase_url = \"{}\"",
            server.base()
        ),
        1e13,
    );
    let toml = std::fs::read_to_string(dir.join("p.toml"))
        .unwrap()
        .replace("id = \"x\"\n", "id = \"x\"\ncolumn = \"NY.GDP.MKTP.CD\"\n");
    dir.write("p.toml", &toml);
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.seen().len(), 2);
    let m = manifest(&dir);
    assert_eq!(m["downloads"].as_array().unwrap().len(), 2);
    // Every record of both pages with a value is a row (`null` is no observation).
    let scores = read_csv(&dir.join("out/scores.csv"));
    let x_rows = strings(&scores, "node_id")
        .iter()
        .filter(|n| *n == "x")
        .count();
    let with_value = records.iter().filter(|r| !r["value"].is_null()).count();
    assert_eq!(x_rows, with_value);
    // ARB 2019 = 2817414584665.11 (as captured), scored on 0–1e13.
    let (v, _) = cell_of(&dir, "ARB", 2019);
    assert!(close(v, 2817414584665.11 / 1e13 * 100.0), "{v:?}");
}

/// `pipelines/eurostat_regional.toml` against the replay server: the two bulk files,
/// joined, rolled up from NUTS 2 to NUTS 1, checked against a hand-computed example.
#[test]
#[ignore = "needs ../shared/data"]
fn eurostat_regional_pipeline_replayed() {
    let server = Replay::start();
    for code in ["nama_10r_2gdp", "lfst_r_lfu3pers"] {
        server.route(
            &format!("/sdmx/2.1/data/{code}"),
            vec![Reply::file(
                &sample(&format!("eurostat_tsv/{code}.tsv.gz")),
                "application/octet-stream",
            )],
        );
    }
    let dir = TempDir::new("regional");
    let toml = std::fs::read_to_string(root().join("pipelines/eurostat_regional.toml"))
        .unwrap()
        .replace(
            "format = \"tsv\"\n",
            &format!("format = \"tsv\"\nbase_url = \"{}\"\n", server.base()),
        )
        .replace("../data/", &format!("{}/data/", root().display()));
    dir.write("p.toml", &toml);
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.seen().len(), 2);

    // AT1 2014, GDP per head (PPS), by hand: `zcat nama_10r_2gdp.tsv.gz | grep
    // '^PPS_HAB,AT1[123]'` → 24400, 28900, 43500; populations 2017: 291942, 1665753,
    // 1867582; (24400·291942 + 28900·1665753 + 43500·1867582) / 3825277 = 35684.5957…,
    // scored on 10,000–60,000: 51.3691915644…
    let scores = read_csv(&dir.join("out/scores.csv"));
    let (ids, nodes, years, values) = (
        strings(&scores, "territory_id"),
        strings(&scores, "node_id"),
        floats(&scores, "year"),
        floats(&scores, "value"),
    );
    let get = |id: &str, node: &str, y: f64| {
        let i = (0..ids.len())
            .find(|&i| ids[i] == id && nodes[i] == node && years[i] == Some(y))
            .unwrap_or_else(|| panic!("{id} {node} {y}"));
        values[i]
    };
    let gdp = (24400.0 * 291942.0 + 28900.0 * 1665753.0 + 43500.0 * 1867582.0) / 3825277.0;
    assert!(close(
        get("AT1", "gdp_per_head", 2014.0),
        (gdp - 10000.0) / 50000.0 * 100.0
    ));
    // BE2 2014, young among the unemployed, by hand: `zcat lfst_r_lfu3pers.tsv.gz | grep
    // -P '^THS,(Y15-24|Y_GE15),T,BE2'`: (10.7+5.1+9.7+6.2+6.5) / (49.1+21.8+29.5+25.5+22.2)
    // = 25.7933…%, lower is better on 0–50: 48.413…
    let share = (10.7 + 5.1 + 9.7 + 6.2 + 6.5) / (49.1 + 21.8 + 29.5 + 25.5 + 22.2) * 100.0;
    assert!(close(
        get("BE2", "youth_unemployment", 2014.0),
        (50.0 - share) / 50.0 * 100.0
    ));
    // The parents are the six NUTS 1 regions, nothing else.
    let parents: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        parents.into_iter().cloned().collect::<Vec<_>>(),
        ["AT1", "AT2", "AT3", "BE1", "BE2", "BE3"]
    );
    // AT1 lacks a youth count in one of its three regions (`: u`): no value, 2/3 coverage.
    assert_eq!(get("AT1", "youth_unemployment", 2014.0), None);
    let rollup = read_csv(&dir.join("out/rollup.csv"));
    let row = rollup_row(&rollup, "AT1", "youth_unemployment", 2014.0);
    assert_eq!(floats(&rollup, "units")[row], Some(3.0));
    assert_eq!(floats(&rollup, "present")[row], Some(2.0));
    let m = manifest(&dir);
    assert_eq!(m["index"]["rollup"]["parents"], 6);
    assert_eq!(m["index"]["rollup"]["territories"], 20);
    assert_eq!(m["downloads"].as_array().unwrap().len(), 2);
}

/// A data.gouv.fr export over HTTP (`kind = "http"`): UTF-8 with a byte-order mark, `;`,
/// every field quoted, decimal comma; codes such as 2A and 971 stay text. Then the same
/// file in Windows-1252, as older French exports are.
#[test]
#[ignore = "needs ../shared/data"]
fn a_data_gouv_export_over_http() {
    let file =
        sample("france_datagouv/donnee-dep-data.gouv-2024-geographie2024-produit-le2025-01-26.csv");
    let bytes = std::fs::read(&file).unwrap();
    let server = Replay::start();
    server.route(
        "/fr/datasets/r/crime",
        vec![Reply::ok(bytes.clone(), "text/csv; charset=utf-8").gzip()],
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let (latin1, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!unmappable);
    server.route(
        "/fr/datasets/r/crime-latin1",
        vec![Reply::ok(latin1.into_owned(), "text/csv")],
    );
    let project = |path: &str, encoding: &str| {
        let dir = TempDir::new("datagouv");
        dir.write(
            "p.toml",
            &format!(
                r#"[pipeline]
id = "p"
[territories]
id = "Code_departement"
group = "Code_region"
year = "annee"
[[source]]
kind = "http"
url = "{}{path}"
format = "csv"
separator = ";"
decimal = ","
{encoding}
layout = "long"
indicator_column = "indicateur"
value_column = "taux_pour_mille"
[index]
id = "idx"
[[dimension]]
id = "d"
[[component]]
id = "c"
dimension = "d"
[[indicator]]
id = "burglary"
column = "Cambriolages de logement"
component = "c"
direction = "lower_is_better"
utopia = 0
dystopia = 10
[[indicator]]
id = "damage"
column = "Destructions et dégradations volontaires"
component = "c"
direction = "lower_is_better"
utopia = 0
dystopia = 10
"#,
                server.base()
            ),
        );
        dir
    };
    // `grep -E '^"(971|2B)";' … | grep '"2024"'`: burglary 2B = "0,8703794",
    // 971 = "4,8608343"; damage 971 = "7,8812417" (per thousand).
    let check = |dir: &TempDir| {
        let s = read_csv(&dir.join("out/scores.csv"));
        let (ids, nodes, years, values) = (
            strings(&s, "territory_id"),
            strings(&s, "node_id"),
            floats(&s, "year"),
            floats(&s, "value"),
        );
        let get = |id: &str, node: &str| {
            let i = (0..ids.len())
                .find(|&i| ids[i] == id && nodes[i] == node && years[i] == Some(2024.0))
                .unwrap_or_else(|| panic!("{id} {node}"));
            values[i]
        };
        assert!(close(get("2B", "burglary"), (10.0 - 0.8703794) * 10.0));
        assert!(close(get("971", "burglary"), (10.0 - 4.8608343) * 10.0));
        assert!(close(get("971", "damage"), (10.0 - 7.8812417) * 10.0));
        assert!(ids.iter().any(|i| i == "01") && ids.iter().any(|i| i == "2A"));
        // Codes stay text (the test reader would infer numbers: look at the file itself).
        let text = std::fs::read_to_string(dir.join("out/scores.csv")).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("971,,01,2024,")),
            "the région code stays text"
        );
        assert!(text.lines().any(|l| l.starts_with("01,,84,2024,")));
    };
    let dir = project("/fr/datasets/r/crime", "");
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    check(&dir);
    let m = manifest(&dir);
    assert_eq!(m["downloads"][0]["bytes"], bytes.len());
    assert_eq!(
        m["downloads"][0]["sha256"],
        bienvivre::files::sha256_hex(&bytes)
    );

    // Windows-1252: refused as UTF-8 with the line of the first bad byte, read when said.
    let dir = project("/fr/datasets/r/crime-latin1", "");
    let o = run(&dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("invalid UTF-8") && err.contains("windows-1252"),
        "{err}"
    );
    let dir = project("/fr/datasets/r/crime-latin1", "encoding = \"windows-1252\"");
    let o = run(&dir, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    check(&dir);
}

/// `bienvivre fetch` fills the cache without computing; a nightly `run --skip-unchanged`
/// then finds the revalidated copy unchanged, and a new version of the data runs again.
#[test]
fn prefetch_and_skip_unchanged() {
    let server = Replay::start();
    server.route("/data.json", vec![json(DATASET)]);
    let dir = project(&format!("{}/data.json", server.base()), "");
    let o = bienvivre(dir.path(), &["fetch", "p.toml", "--cache-dir", "cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("miss") && out.contains("1 download(s) for 1 source(s)"),
        "{out}"
    );
    assert!(!dir.join("outputs").exists(), "fetch computes nothing");
    let o = bienvivre(dir.path(), &["fetch", "p.toml", "--cache-dir", "cache"]);
    assert!(stdout(&o).contains("hit"), "{}", stdout(&o));

    // Nightly runs into the history: the second finds nothing new.
    let nightly = ["run", "p.toml", "--skip-unchanged", "--cache-dir", "cache"];
    let o = bienvivre(dir.path(), &nightly);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = bienvivre(dir.path(), &nightly);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("unchanged since run"), "{}", stdout(&o));
    // The publisher revises a value: a new ETag, a new run.
    server.route(
        "/data.json",
        vec![json(&DATASET.replace("\"4\":30", "\"4\":31"))],
    );
    let o = bienvivre(dir.path(), &nightly);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("unchanged"), "{}", stdout(&o));
    let runs = std::fs::read_dir(dir.join("outputs/p/runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 2);
}
