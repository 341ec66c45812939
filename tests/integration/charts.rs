//! Chart packs: the EU-SPI and French packs, every page opened in headless Chromium,
//! byte-identical renders, `plot` from outputs alone, and the error cases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::helpers::*;

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Width and height of a PNG, from its header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// The EU-SPI run with its pack, made once for the tests that look at it.
fn euspi_run() -> &'static (PathBuf, String) {
    shared("euspi2020/regional_raw.csv");
    shared("nuts/nuts2_2016.geojson");
    static RUN: OnceLock<(PathBuf, String)> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("euspi-pack-{}", std::process::id()));
        let o = bienvivre(
            &root(),
            &[
                "run",
                "pipelines/euspi2020.toml",
                "-o",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        (out, stderr(&o))
    })
}

#[test]
#[ignore = "needs ../shared/data"]
fn euspi_pack_has_rankings_map_heatmap_and_profiles() {
    let (out, err) = euspi_run();
    let charts = out.join("charts");
    let pack = files(&charts);
    // Index ranking: 240 regions over pages of 60, every region named once.
    let raw = read_csv(&root().join("../shared/data/euspi2020/regional_raw.csv"));
    let names = strings(&raw, "region_name");
    assert_eq!(names.len(), 240);
    let mut ranking = String::new();
    for k in 1..=4 {
        let svg = &pack[&format!("ranking_eu_spi_{k}.svg")];
        ranking.push_str(std::str::from_utf8(svg).unwrap());
        assert!(pack.contains_key(&format!("ranking_eu_spi_{k}.png")));
    }
    assert!(!pack.contains_key("ranking_eu_spi_5.svg"));
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&apos;")
    };
    for n in &names {
        assert!(
            // plotters writes each text on a line of its own.
            ranking.contains(&format!("\n{}\n", escape(n))),
            "{n} missing from the index ranking"
        );
    }
    assert!(ranking.contains("positions 181–240 of 240"));
    // Dimension rankings, maps of the index and dimensions, heatmap, radar profiles.
    for dim in [
        "basic_human_needs",
        "foundations_of_wellbeing",
        "opportunity",
    ] {
        assert!(pack.contains_key(&format!("ranking_{dim}_1.png")), "{dim}");
        assert!(pack.contains_key(&format!("map_{dim}.png")), "{dim}");
    }
    let (w, h) = png_size(&pack["map_eu_spi.png"]);
    assert!(w == 1200 && h > 600, "{w}×{h}");
    let map = std::str::from_utf8(&pack["map_eu_spi.svg"]).unwrap();
    assert!(map.matches("<polygon").count() >= 240);
    assert!(pack.contains_key("heatmap_1.png"));
    for id in ["FR10", "ITC4", "PL91", "SE33", "RO21"] {
        assert!(
            pack.contains_key(&format!("profiles/{id}_radar.png")),
            "{id}"
        );
        assert!(pack.contains_key(&format!("profiles/{id}.html")), "{id}");
    }
    // Features that match no region are named in a warning (and drawn as context).
    assert!(
        err.contains("warning: map: 92 features of")
            && err.contains("match no territory")
            && err.contains("\"CH01\""),
        "{err}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    // Every file of the pack but the output marker.
    assert!(pack.contains_key(".bienvivre-output"));
    assert_eq!(
        manifest["charts"]["files"].as_u64().unwrap() as usize,
        pack.len() - 1
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn france_departement_map() {
    shared("france/departements.geojson");
    let dir = TempDir::new("france");
    let out = dir.join("out");
    let o = bienvivre(
        &root(),
        &[
            "run",
            "pipelines/france_crime.toml",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(out.join("charts/map_safety.svg")).unwrap();
    assert!(
        svg.matches("<polygon").count() >= 96,
        "every metropolitan département is drawn"
    );
    // Names come from the boundaries; the overseas départements have none and are named.
    assert!(
        svg.contains("Not on the map (no boundary in the map file): 971, 972, 973, 974, 976"),
        "note"
    );
    assert!(
        stderr(&o).contains("5 territories have no boundary"),
        "{}",
        stderr(&o)
    );
    let ranking = std::fs::read_to_string(out.join("charts/ranking_safety_1.svg")).unwrap();
    assert!(
        ranking.contains("\nLozère\n") && ranking.contains("\nCantal\n"),
        "names come from the boundaries"
    );
    assert!(out.join("charts/scatter_safety.png").exists());
    assert!(out.join("charts/trend_safety.png").exists());
    assert!(out.join("charts/profiles/75_trend.png").exists());
}

/// The Chromium binary. Tests that call this are `#[ignore = "needs Chromium…"]`: they
/// run with `cargo test -- --include-ignored` (CI installs Debian's chromium) and fail,
/// never skip, without it.
fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(o) = std::process::Command::new("which").arg(c).output()
            && o.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        }
    }
    panic!(
        "chromium is missing: this test needs it (Debian package chromium; .ci/run installs it)"
    );
}

/// Opens every page in headless Chromium: each image's naturalWidth and each link's target.
const CHECKER: &str = r#"<!doctype html><html><body><pre id="result">pending</pre><script>
const pages = PAGES;
function exists(u) {
  return new Promise(r => {
    const x = new XMLHttpRequest();
    x.onload = () => r(x.status === 0 || x.status === 200);
    x.onerror = () => r(false);
    try { x.open('GET', u); x.send(); } catch (e) { r(false); }
  });
}
async function main() {
  const out = {pages: 0, images: [], links: [], errors: []};
  for (const url of pages) {
    const frame = document.createElement('iframe');
    frame.style.width = '1300px'; frame.style.height = '1000px';
    document.body.appendChild(frame);
    await new Promise(r => { frame.onload = r; frame.src = url; });
    let doc = null;
    try { doc = frame.contentDocument; } catch (e) { out.errors.push(url + ': ' + e); }
    if (!doc || !doc.body) { out.errors.push(url + ': no document'); continue; }
    out.pages += 1;
    const imgs = [...doc.images];
    await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
    for (const i of imgs) out.images.push([url, i.getAttribute('src'), i.naturalWidth]);
    for (const a of doc.querySelectorAll('a[href]')) {
      const href = a.getAttribute('href');
      if (href.startsWith('#')) { out.links.push([url, href, !!doc.getElementById(href.slice(1))]); continue; }
      out.links.push([url, href, await exists(new URL(href, frame.contentWindow.location.href).href)]);
    }
    frame.remove();
  }
  document.getElementById('result').textContent = JSON.stringify(out);
}
main().catch(e => { document.getElementById('result').textContent = 'ERROR ' + e; });
</script></body></html>"#;

/// Loads `index.html` and every profile page of a pack; returns (pages, images, links).
fn check_in_chromium(chromium: &Path, charts: &Path) -> (usize, usize, usize) {
    let mut pages = vec![charts.join("index.html")];
    for folder in ["profiles", "compare"] {
        if let Ok(entries) = std::fs::read_dir(charts.join(folder)) {
            let mut found: Vec<PathBuf> = entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "html"))
                .collect();
            found.sort();
            pages.extend(found);
        }
    }
    let urls: Vec<String> = pages
        .iter()
        .map(|p| format!("file://{}", std::path::absolute(p).unwrap().display()))
        .collect();
    let dir = TempDir::new("chromium");
    let page = dir.write(
        "check.html",
        &CHECKER.replace("PAGES", &serde_json::to_string(&urls).unwrap()),
    );
    let o = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--virtual-time-budget=120000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&o.stdout);
    let start =
        dom.find("<pre id=\"result\">").expect("result element") + "<pre id=\"result\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "chromium reported: {text}\n{}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    let images = report["images"].as_array().unwrap();
    let links = report["links"].as_array().unwrap();
    for i in images {
        assert!(i[2].as_u64().unwrap() > 0, "image did not load: {i}");
    }
    for l in links {
        assert!(l[2].as_bool().unwrap(), "broken link: {l}");
    }
    assert_eq!(report["pages"].as_u64().unwrap() as usize, pages.len());
    (pages.len(), images.len(), links.len())
}

#[test]
#[ignore = "needs Chromium and ../shared/data"]
fn every_image_loads_and_no_link_is_broken_in_chromium() {
    let chromium = chromium();
    let (out, _) = euspi_run();
    let (pages, images, links) = check_in_chromium(&chromium, &out.join("charts"));
    assert_eq!(pages, 8);
    assert!(
        images >= 30 && links >= 100,
        "{images} images, {links} links"
    );
    // The synthetic pack, with its comparison page: every image and link resolves.
    let synthetic = TempDir::new("synthetic-pack");
    run_into("pipelines/synthetic.toml", &synthetic.join("out"));
    let (pages, images, _) = check_in_chromium(&chromium, &synthetic.join("out/charts"));
    assert_eq!(pages, 5, "index, three profiles and a comparison");
    assert!(images >= 15, "{images} images");
    // A relational-capability pack too.
    shared("afrobarometer_r1/mali.csv");
    let dir = TempDir::new("rci-pack");
    run_into("pipelines/afrobarometer_r1_mali_rci.toml", &dir.join("out"));
    let (_, images, _) = check_in_chromium(&chromium, &dir.join("out/charts"));
    assert_eq!(images, 2, "intervals and contributions");
}

/// The README's demo pack (French départements; nothing from ../shared): every image,
/// the maps among them, loads and every link resolves.
#[test]
#[ignore = "needs Chromium"]
fn the_demo_pack_loads_in_chromium() {
    let chromium = chromium();
    let dir = TempDir::new("demo-pack-chromium");
    run_into("pipelines/demo.toml", &dir.join("out"));
    let (pages, images, _) = check_in_chromium(&chromium, &dir.join("out/charts"));
    assert_eq!(pages, 5, "index, three profiles and a comparison");
    assert!(images >= 23, "{images} images");
}

#[test]
#[ignore = "needs Chromium"]
fn chromium_check_catches_a_missing_image() {
    let chromium = chromium();
    let dir = small_charts_project(SMALL_GEOJSON);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(dir.join("out/charts/heatmap_1.png")).unwrap();
    let result = std::panic::catch_unwind(|| check_in_chromium(&chromium, &dir.join("out/charts")));
    assert!(
        result.is_err(),
        "the check must fail when an image is missing"
    );
}

#[test]
#[ignore = "needs ../shared/data"]
fn two_renders_are_byte_identical_and_plot_draws_what_run_drew() {
    let (out, _) = euspi_run();
    let dir = TempDir::new("twice");
    // The first run used the default threads; this one runs on one thread.
    let o = bienvivre_threads(
        &root(),
        &[
            "run",
            "pipelines/euspi2020.toml",
            "-q",
            "-o",
            dir.join("a").to_str().unwrap(),
        ],
        true,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let first = files(&out.join("charts"));
    let second = files(&dir.join("a/charts"));
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(bytes == &second[name], "{name} differs between two runs");
    }
    // `plot` redraws the same pack from the outputs.
    let o = bienvivre(
        &root(),
        &[
            "plot",
            "pipelines/euspi2020.toml",
            "-q",
            "-o",
            dir.join("a").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let third = files(&dir.join("a/charts"));
    assert!(first == third, "plot and run draw different packs");
}

/// Four squares for T1–T4 of the small project, and one feature no territory claims.
const SMALL_GEOJSON: &str = r#"{"type": "FeatureCollection", "features": [
{"type": "Feature", "properties": {"id": "T1"}, "geometry": {"type": "Polygon", "coordinates": [[[0,45],[1,45],[1,46],[0,46],[0,45]]]}},
{"type": "Feature", "properties": {"id": "T2"}, "geometry": {"type": "Polygon", "coordinates": [[[1,45],[2,45],[2,46],[1,46],[1,45]],[[1.4,45.4],[1.6,45.4],[1.6,45.6],[1.4,45.6],[1.4,45.4]]]}},
{"type": "Feature", "properties": {"id": "T3"}, "geometry": {"type": "MultiPolygon", "coordinates": [[[[0,46],[1,46],[1,47],[0,47],[0,46]]], [[[0.2,47.2],[0.4,47.2],[0.4,47.4],[0.2,47.4],[0.2,47.2]]]]}},
{"type": "Feature", "properties": {"id": "T4"}, "geometry": {"type": "Polygon", "coordinates": [[[1,46],[2,46],[2,47],[1,47],[1,46]]]}},
{"type": "Feature", "properties": {"id": "ZZ9"}, "geometry": {"type": "Polygon", "coordinates": [[[2,45],[3,45],[3,46],[2,46],[2,45]]]}}
]}"#;

const SMALL_COVARIATE: &str = "code,gdp\nT1,21000\nT2,25000\nT3,32000\nT4,40000\n";

const SMALL_CHARTS: &str = r#"
[charts]
profiles = ["T1", "T3"]

[charts.covariate]
path = "context.csv"
territory = "code"
column = "gdp"
name = "GDP per capita"

[charts.map]
path = "shapes.geojson"
"#;

/// The small project with a [charts] section, its map and its covariate.
fn small_charts_project(geojson: &str) -> TempDir {
    let dir = small_project(&format!("{SMALL_TOML}{SMALL_CHARTS}"), SMALL_CSV);
    dir.write("shapes.geojson", geojson);
    dir.write("context.csv", SMALL_COVARIATE);
    dir
}

#[test]
fn small_pack_warns_about_unmatched_features() {
    let dir = small_charts_project(SMALL_GEOJSON);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: map: 1 features of shapes.geojson match no territory (drawn as context): \"ZZ9\""),
        "{}",
        stderr(&o)
    );
    for f in [
        "index.html",
        "map_idx.svg",
        "map_idx.png",
        "scatter_idx.png",
        "heatmap_1.png",
        "ranking_idx_1.png",
        "profiles/T1.html",
    ] {
        assert!(dir.join("out/charts").join(f).exists(), "{f}");
    }
    // The index page lists the warning too.
    let html = std::fs::read_to_string(dir.join("out/charts/index.html")).unwrap();
    assert!(html.contains("match no territory"));
}

#[test]
fn plot_redraws_from_outputs_without_the_input_data() {
    let dir = small_charts_project(SMALL_GEOJSON);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = files(&dir.join("out/charts"));
    // Without the source data, nothing could be recomputed: plot reads the outputs only.
    std::fs::remove_file(dir.join("small.csv")).unwrap();
    std::fs::remove_dir_all(dir.join("out/charts")).unwrap();
    let o = bienvivre(dir.path(), &["plot", "small.toml", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("charts"), "{}", stdout(&o));
    assert!(before == files(&dir.join("out/charts")));
    // No run yet: say so.
    let o = bienvivre(dir.path(), &["plot", "small.toml", "-o", "elsewhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("scores.parquet: not found: run the pipeline first"),
        "{}",
        stderr(&o)
    );
}

/// Runs the small charts project expecting failure; checks that nothing was written.
fn charts_fail(dir: &TempDir, code: i32) -> String {
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert!(!dir.join("out").exists(), "no output may be written");
    stderr(&o)
}

#[test]
fn unreadable_geojson() {
    let dir = small_charts_project("{\"type\": \"FeatureCollection\", \"features\": [ {\"type\": ");
    let err = charts_fail(&dir, 1);
    assert!(
        err.contains("cannot use the map boundaries")
            && err.contains("shapes.geojson: not valid JSON at line 1"),
        "{err}"
    );
    let dir = small_charts_project(SMALL_GEOJSON);
    std::fs::remove_file(dir.join("shapes.geojson")).unwrap();
    let err = charts_fail(&dir, 1);
    assert!(err.contains("shapes.geojson: file not found"), "{err}");
    let dir = small_charts_project(&SMALL_GEOJSON.replace(
        "\"type\": \"Polygon\", \"coordinates\": [[[0,45]",
        "\"type\": \"Point\", \"coordinates\": [[[0,45]",
    ));
    let err = charts_fail(&dir, 1);
    assert!(
        err.contains("feature 1 (\"T1\") is a Point; only Polygon and MultiPolygon can be mapped"),
        "{err}"
    );
}

#[test]
fn geojson_whose_ids_match_nothing() {
    let dir = small_charts_project(&SMALL_GEOJSON.replace("\"id\": \"T", "\"id\": \"X"));
    let err = charts_fail(&dir, 1);
    assert!(
        err.contains("no territory id matches a feature of shapes.geojson (property \"id\""),
        "{err}"
    );
    assert!(err.contains("aliases"), "{err}");
}

#[test]
fn covariate_column_missing() {
    let dir = small_charts_project(SMALL_GEOJSON);
    dir.write("context.csv", "code,gdp_pc\nT1,1\n");
    let err = charts_fail(&dir, 1);
    assert!(
        err.contains("context.csv") && err.contains("\"gdp\""),
        "{err}"
    );
    assert!(err.contains("gdp_pc"), "lists the available columns: {err}");
}

#[test]
fn unknown_profiled_territory() {
    let dir = small_charts_project(SMALL_GEOJSON);
    dir.write(
        "small.toml",
        &format!(
            "{SMALL_TOML}{}",
            SMALL_CHARTS.replace("[\"T1\", \"T3\"]", "[\"T1\", \"T33\"]")
        ),
    );
    let err = charts_fail(&dir, 1);
    assert!(
        err.contains("profiled territory \"T33\" is not in the results")
            && err.contains("did you mean \"T3\"?"),
        "{err}"
    );
}

#[test]
fn chart_that_needs_missing_settings() {
    let dir = small_project(
        &format!("{SMALL_TOML}\n[charts]\ninclude = [\"ranking\", \"scatter\", \"trend\"]\n"),
        SMALL_CSV,
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("small.toml:55:23: chart \"scatter\" needs a [charts.covariate]"),
        "{err}"
    );
    assert!(err.contains("chart \"trend\" needs years"), "{err}");
    assert!(!dir.join("out").exists());
}

#[test]
fn failed_plot_leaves_the_previous_pack_untouched() {
    let dir = small_charts_project(SMALL_GEOJSON);
    let o = bienvivre(dir.path(), &["run", "small.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = files(&dir.join("out"));
    dir.write("shapes.geojson", "not json");
    let o = bienvivre(dir.path(), &["plot", "small.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        before == files(&dir.join("out")),
        "a failed plot changed the outputs"
    );
    let o = bienvivre(dir.path(), &["run", "small.toml", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        before == files(&dir.join("out")),
        "a failed run changed the outputs"
    );
}

#[test]
fn comparison_pages_are_linked_from_the_index() {
    let dir = TempDir::new("pack-compare");
    run_into("pipelines/synthetic.toml", &dir.join("out"));
    let charts = dir.join("out/charts");
    let index = std::fs::read_to_string(charts.join("index.html")).unwrap();
    assert!(
        index.contains("<a href=\"compare/T00007_T00042_T00083.html\">"),
        "{index}"
    );
    let page = std::fs::read_to_string(charts.join("compare/T00007_T00042_T00083.html")).unwrap();
    assert!(
        page.contains("<img src=\"../compare/T00007_T00042_T00083.png\""),
        "{page}"
    );
    assert!(page.contains("median of its group"));
    for ext in ["svg", "png"] {
        assert!(
            charts
                .join(format!("compare/T00007_T00042_T00083.{ext}"))
                .is_file()
        );
    }
    // An unknown territory in a comparison is an error naming it.
    let toml = std::fs::read_to_string(root().join("pipelines/synthetic.toml"))
        .unwrap()
        .replace(
            "../data/synthetic.csv",
            root().join("data/synthetic.csv").to_str().unwrap(),
        )
        .replace(
            "[\"T00007\", \"T00042\", \"T00083\"]]",
            "[\"T00007\", \"T99999\"]]",
        );
    dir.write("bad.toml", &toml);
    let o = bienvivre(dir.path(), &["run", "bad.toml", "-o", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("compared territory \"T99999\" is not in the results"),
        "{}",
        stderr(&o)
    );
}
