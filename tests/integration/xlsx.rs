//! Excel sources, as publishers ship them (the global SPI 2024 dataset comes as an xlsx
//! workbook): a sheet chosen by name, title rows above the header, numbers and text read
//! as stored, and bad cells reported at the row Excel shows.

use rust_xlsxwriter::{Formula, Workbook};

use crate::helpers::*;

/// A workbook laid out like the SPI 2024 dataset: a definitions sheet first, then the data
/// under two title rows; the header on row 3.
fn workbook(path: &std::path::Path, stunting_ken: Option<&str>) {
    let mut wb = Workbook::new();
    let defs = wb.add_worksheet();
    defs.set_name("Definitions").unwrap();
    defs.write_string(0, 0, "Indicator").unwrap();
    defs.write_string(1, 0, "Child stunting").unwrap();
    let data = wb.add_worksheet();
    data.set_name("2011-2024 data").unwrap();
    data.write_string(0, 0, "Social Progress Index 2024")
        .unwrap();
    data.write_string(1, 0, "Source: Social Progress Imperative")
        .unwrap();
    let header = [
        "Country",
        "SPI country code",
        "SPI year",
        "Child stunting (% of children)",
        "Access to electricity (% of pop.)",
    ];
    for (c, h) in header.iter().enumerate() {
        data.write_string(2, c as u16, *h).unwrap();
    }
    let rows: [(&str, &str, f64, f64, f64); 4] = [
        ("Kenya", "KEN", 2023.0, 17.6, 76.5),
        ("Kenya", "KEN", 2024.0, 17.0, 79.2),
        ("Norway", "NOR", 2023.0, 2.1, 100.0),
        ("Norway", "NOR", 2024.0, 2.0, 100.0),
    ];
    for (r, (name, code, year, stunting, electricity)) in rows.iter().enumerate() {
        let r = r as u32 + 3;
        data.write_string(r, 0, *name).unwrap();
        data.write_string(r, 1, *code).unwrap();
        data.write_number(r, 2, *year).unwrap();
        match (r, stunting_ken) {
            (3, Some(text)) if text.starts_with('=') => {
                data.write_formula(r, 3, Formula::new(text).set_result("#N/A"))
                    .unwrap();
            }
            (3, Some(text)) => {
                data.write_string(r, 3, text).unwrap();
            }
            _ => {
                data.write_number(r, 3, *stunting).unwrap();
            }
        }
        data.write_number(r, 4, *electricity).unwrap();
    }
    wb.save(path).unwrap();
}

fn project(sheet: &str, stunting_ken: Option<&str>) -> TempDir {
    let dir = TempDir::new("xlsx");
    workbook(&dir.join("spi2024.xlsx"), stunting_ken);
    dir.write(
        "spi.toml",
        &format!(
            r#"[pipeline]
id = "spi"
[territories]
id = "SPI country code"
name = "Country"
year = "SPI year"
[[source]]
path = "spi2024.xlsx"
sheet = "{sheet}"
header_row = 3
[index]
id = "spi"
[[dimension]]
id = "basic"
[[component]]
id = "nutrition"
dimension = "basic"
[[indicator]]
id = "stunting"
column = "Child stunting (% of children)"
component = "nutrition"
direction = "lower_is_better"
utopia = 0
dystopia = 50
[[indicator]]
id = "electricity"
column = "Access to electricity (% of pop.)"
component = "nutrition"
direction = "higher_is_better"
utopia = 100
dystopia = 0
"#
        ),
    );
    dir
}

#[test]
fn an_spi_style_workbook_is_read_directly() {
    let dir = project("2011-2024 data", None);
    let o = bienvivre(dir.path(), &["run", "spi.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let wide = read_csv(&dir.join("out/scores_wide.csv"));
    assert_eq!(strings(&wide, "territory_id"), ["KEN", "KEN", "NOR", "NOR"]);
    assert_eq!(strings(&wide, "territory_name")[0], "Kenya");
    // Kenya 2024: stunting 17.0 on 50–0 → 66; electricity 79.2 → 79.2; mean 72.6.
    let nutrition = floats(&wide, "nutrition");
    let expected = ((50.0 - 17.0) / 50.0 * 100.0 + 79.2) / 2.0;
    assert!(
        (nutrition[1].unwrap() - expected).abs() < 1e-9,
        "{nutrition:?}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["inputs"][0]["rows"], 4);
}

#[test]
fn workbook_errors_name_the_sheet_and_the_row() {
    // A sheet that does not exist: the sheets are listed.
    let dir = project("2011-2024 Data", None);
    let o = bienvivre(dir.path(), &["run", "spi.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no sheet \"2011-2024 Data\"")
            && err.contains("did you mean \"2011-2024 data\"")
            && err.contains("Definitions"),
        "{err}"
    );
    // Text where a number belongs: the row as Excel numbers it (Kenya 2023 is on row 4).
    let dir = project("2011-2024 data", Some("17,6 %"));
    let o = bienvivre(dir.path(), &["run", "spi.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("spi2024.xlsx") && err.contains("line 4"),
        "{err}"
    );
    assert!(err.contains("\"17,6 %\" is not a number"), "{err}");
    assert!(!dir.join("out").exists());
    // An Excel error value (a formula's cached #N/A).
    let dir = project("2011-2024 data", Some("=NA()"));
    let o = bienvivre(dir.path(), &["run", "spi.toml", "-q", "-o", "out"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("line 4") && err.contains("\"#N/A\" is not a number (an Excel error value)"),
        "{err}"
    );
}
