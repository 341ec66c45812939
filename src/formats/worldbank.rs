//! One page of the World Bank Indicators API v2 JSON (`…/indicator/{ID}?format=json`).
//!
//! A data page is a two-element array: the pagination metadata (`page`, `pages`,
//! `per_page`, `total`: integers in data calls, numeric strings in some metadata calls,
//! both accepted) and the records, or `null` when there are none. The cube's dimensions
//! are `indicator` (ids, names as labels), `country` (`countryiso3code`, or `country.id`
//! when the ISO3 code is empty, names as labels) and `date`. A record with a `null` value
//! and no `obs_status` is not a row.
//!
//! The API reports errors with HTTP 200 as `[{"message":[{"id","key","value"}]}]`; they
//! become a [`FormatError`] quoting them. Pages are joined with [`Cube::append`].

use serde_json::Value;

use super::{Cube, Dimension, Filters, FormatError, Interner, RowFilter, excerpt};

/// The pagination of one page: loop `page = 1..=pages`; `total` counts records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub pages: u32,
    pub per_page: u32,
    pub total: u64,
}

const IDS: [&str; 3] = ["indicator", "country", "date"];

/// Parses one data page, keeping the records `filters` wants (dimensions `indicator`,
/// `country`, `date`).
pub fn parse_page(bytes: &[u8], filters: &Filters) -> Result<(Page, Cube), FormatError> {
    let root: Value = serde_json::from_slice(super::strip_bom(bytes)).map_err(|e| {
        FormatError::new(format!(
            "not JSON: {e} (the response starts with: {}); without format=json the API \
             answers in XML",
            excerpt(bytes)
        ))
    })?;
    let Value::Array(parts) = &root else {
        return Err(FormatError::new(format!(
            "not a World Bank API page: expected [metadata, records], got {}",
            excerpt(bytes)
        )));
    };
    if let Some(messages) = parts.first().and_then(|m| m.get("message")) {
        return Err(FormatError::new(api_error(messages)));
    }
    let (Some(meta), Some(records)) = (parts.first(), parts.get(1)) else {
        return Err(FormatError::new(format!(
            "not a World Bank API page: expected [metadata, records], got {}",
            excerpt(bytes)
        )));
    };
    let page = page_of(meta)?;
    let records = match records {
        Value::Null => &[][..],
        Value::Array(r) => r.as_slice(),
        other => {
            return Err(FormatError::new(format!(
                "the records of the page are {other}, not an array"
            )));
        }
    };

    let mut filter = RowFilter::new(filters, &IDS);
    let mut interners: [Interner; 3] = Default::default();
    let mut dimensions = IDS.map(|id| Dimension {
        id: id.to_owned(),
        ..Dimension::default()
    });
    let mut cube = Cube {
        keys: vec![Vec::new(); 3],
        ..Cube::default()
    };
    for (i, record) in records.iter().enumerate() {
        let n = i + 1;
        let indicator = text(record.pointer("/indicator/id"))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                FormatError::new(format!(
                    "record {n} has no indicator id: this is not an indicator data page \
                     (a /country or /source listing?)"
                ))
            })?;
        let iso3 = text(record.get("countryiso3code")).unwrap_or_default();
        // Aggregates and a few territories have no ISO3 code; their World Bank id is the
        // only key there is.
        let country = if iso3.is_empty() {
            text(record.pointer("/country/id")).unwrap_or_default()
        } else {
            iso3
        };
        if country.is_empty() {
            return Err(FormatError::new(format!(
                "record {n} ({indicator}) has neither countryiso3code nor country.id"
            )));
        }
        let date = match record.get("date") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(y)) => y.to_string(),
            _ => {
                return Err(FormatError::new(format!(
                    "record {n} ({indicator}, {country}) has no date"
                )));
            }
        };
        let codes = [indicator, country, date.as_str()];
        if !codes.iter().enumerate().all(|(d, c)| filter.wants(d, c)) {
            continue;
        }
        let value = match record.get("value") {
            None | Some(Value::Null) => None,
            Some(Value::Number(v)) => v.as_f64(),
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(super::parse_number(s.trim()).ok_or_else(|| {
                FormatError::new(format!(
                    "record {n} ({indicator}, {country}, {date}): the value \"{s}\" is not \
                     a number"
                ))
            })?),
            Some(other) => {
                return Err(FormatError::new(format!(
                    "record {n} ({indicator}, {country}, {date}): the value {other} is not a \
                     number"
                )));
            }
        };
        let flag = text(record.get("obs_status"))
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if value.is_none() && flag.is_none() {
            continue;
        }
        let names = [
            text(record.pointer("/indicator/value")),
            text(record.pointer("/country/value")),
            None,
        ];
        for d in 0..3 {
            let k = interners[d].intern(codes[d])?;
            if let Some(name) = names[d].filter(|s| !s.is_empty()) {
                dimensions[d]
                    .labels
                    .entry(codes[d].to_owned())
                    .or_insert_with(|| name.to_owned());
            }
            cube.keys[d].push(k);
        }
        cube.values.push(value);
        cube.flags.push(flag);
    }
    for (dimension, interner) in dimensions.iter_mut().zip(interners) {
        dimension.codes = interner.into_codes();
    }
    cube.dimensions = dimensions.into();
    Ok((page, cube))
}

fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).map(str::trim)
}

fn api_error(messages: &Value) -> String {
    let items = match messages {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    let described = items
        .iter()
        .map(|m| {
            let field = |k: &str| match m.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            format!("{} (id {}): {}", field("key"), field("id"), field("value"))
        })
        .collect::<Vec<_>>();
    format!(
        "the World Bank API answered with an error instead of data: {}",
        described.join("; ")
    )
}

fn page_of(meta: &Value) -> Result<Page, FormatError> {
    Ok(Page {
        page: count(meta, "page")?,
        pages: count(meta, "pages")?,
        per_page: count(meta, "per_page")?,
        total: count(meta, "total")?,
    })
}

/// A pagination field, as an integer or a numeric string.
fn count<T: TryFrom<u64>>(meta: &Value, name: &str) -> Result<T, FormatError> {
    let raw = meta.get(name);
    let n = match raw {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
        FormatError::new(format!(
            "the page metadata has {} for `{name}`, not a count",
            raw.map_or("nothing".to_owned(), Value::to_string)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::{Page, page_of, parse_page};
    use crate::formats::test_support::{cell, check_shape, filters, has, sample};
    use crate::formats::{Cube, Filters};

    const PAGE: &str = r#"[{"page":2,"pages":"3","per_page":"2","total":"5","sourceid":"2"},
        [{"indicator":{"id":"NY.GDP.MKTP.CD","value":"GDP (current US$)"},
          "country":{"id":"FR","value":"France"},"countryiso3code":"FRA",
          "date":"2020","value":2630317731455.03,"unit":"","obs_status":"","decimal":0},
         {"indicator":{"id":"NY.GDP.MKTP.CD","value":"GDP (current US$)"},
          "country":{"id":"FR","value":"France"},"countryiso3code":"FRA",
          "date":"2021","value":null,"unit":"","obs_status":"","decimal":0},
         {"indicator":{"id":"NY.GDP.MKTP.CD","value":"GDP (current US$)"},
          "country":{"id":"XK","value":"Kosovo"},"countryiso3code":"",
          "date":"2021","value":null,"unit":"","obs_status":"E","decimal":0}]]"#;

    fn ok(json: &str) -> (Page, Cube) {
        let (page, cube) =
            parse_page(json.as_bytes(), &Filters::new()).unwrap_or_else(|e| panic!("{e}"));
        check_shape(&cube);
        (page, cube)
    }

    #[test]
    fn data_page() {
        let (page, cube) = ok(PAGE);
        // Pagination fields as numbers or numeric strings.
        assert_eq!(
            page,
            Page {
                page: 2,
                pages: 3,
                per_page: 2,
                total: 5
            }
        );
        let ids = cube
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(ids, ["indicator", "country", "date"]);
        assert_eq!(
            cell(&cube, &["NY.GDP.MKTP.CD", "FRA", "2020"]),
            (Some(2630317731455.03), None)
        );
        // Null value, no status: no row.
        assert!(!has(&cube, &["NY.GDP.MKTP.CD", "FRA", "2021"]));
        // No ISO3 code: the World Bank id; null with a status: a row.
        assert_eq!(
            cell(&cube, &["NY.GDP.MKTP.CD", "XK", "2021"]),
            (None, Some("E"))
        );
        assert_eq!(
            cube.dimensions[0].labels["NY.GDP.MKTP.CD"],
            "GDP (current US$)"
        );
        assert_eq!(cube.dimensions[1].labels["FRA"], "France");
        assert_eq!(cube.dimensions[1].labels["XK"], "Kosovo");
        assert!(cube.lines.is_none());
        // Filters, case-insensitive.
        let (_, cube) = parse_page(PAGE.as_bytes(), &filters(&[("country", &["xk"])])).unwrap();
        assert_eq!(cube.len(), 1);
        assert_eq!(cube.dimensions[1].codes, ["XK"]);
    }

    #[test]
    fn null_records_is_an_empty_page() {
        let (page, cube) = ok(r#"[{"page":1,"pages":0,"per_page":50,"total":0},null]"#);
        assert_eq!(page.total, 0);
        assert!(cube.is_empty());
        assert_eq!(cube.dimensions.len(), 3);
    }

    #[test]
    fn errors() {
        let body = r#"[{"message":[{"id":"120","key":"Invalid value","value":"The provided parameter value is not valid"}]}]"#;
        let e = parse_page(body.as_bytes(), &Filters::new()).unwrap_err();
        assert!(
            e.message
                .contains("Invalid value (id 120): The provided parameter value is not valid"),
            "{e}"
        );
        let e = parse_page(b"<?xml version=\"1.0\"?><wb:data/>", &Filters::new()).unwrap_err();
        assert!(
            e.message.contains("not JSON") && e.message.contains("format=json"),
            "{e}"
        );
        let e = parse_page(br#"{"page":1}"#, &Filters::new()).unwrap_err();
        assert!(e.message.contains("expected [metadata, records]"), "{e}");
        let e = parse_page(
            br#"[{"page":1,"pages":"x","per_page":1,"total":1},[]]"#,
            &Filters::new(),
        )
        .unwrap_err();
        assert!(e.message.contains("\"x\" for `pages`"), "{e}");
        let e = parse_page(
            br#"[{"page":1,"pages":1,"per_page":1,"total":1},[{"country":{"id":"FR"}}]]"#,
            &Filters::new(),
        )
        .unwrap_err();
        assert!(e.message.contains("record 1 has no indicator id"), "{e}");
        let bad = PAGE.replace("2630317731455.03", "\"n/a\"");
        let e = parse_page(bad.as_bytes(), &Filters::new()).unwrap_err();
        assert!(
            e.message.contains("record 1 (NY.GDP.MKTP.CD, FRA, 2020)"),
            "{e}"
        );
    }

    #[test]
    fn pages_append() {
        let (_, mut all) = ok(PAGE);
        let (_, other) = ok(&PAGE
            .replace("\"FRA\"", "\"DEU\"")
            .replace("France", "Germany"));
        all.append(other).unwrap();
        check_shape(&all);
        assert_eq!(all.len(), 4);
        assert_eq!(all.dimensions[1].codes, ["FRA", "XK", "DEU"]);
        assert_eq!(all.dimensions[0].codes.len(), 1);
        assert_eq!(all.dimensions[1].labels["DEU"], "Germany");
        assert_eq!(
            cell(&all, &["NY.GDP.MKTP.CD", "DEU", "2020"]),
            (Some(2630317731455.03), None)
        );
    }

    // ---- Captured bodies (README.md and FORMATS.md in shared/data/official_samples).

    #[test]
    #[ignore = "needs ../shared/data"]
    fn gdp_first_page() {
        let (page, cube) = parse_page(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/worldbank/extracted_bodies/TestIndicatorValuesService_List.1.json"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // head -c 120: {"page":1,"pages":323,"per_page":50,"total":16104,…
        assert_eq!(
            page,
            Page {
                page: 1,
                pages: 323,
                per_page: 50,
                total: 16104
            }
        );
        // python3: 50 records, all ARB (Arab World, id 1A), 2020 … 1971; 2020 is null
        // and obs_status "" everywhere, so 49 rows.
        assert_eq!(cube.len(), 49);
        assert_eq!(
            cell(&cube, &["NY.GDP.MKTP.CD", "ARB", "2019"]),
            (Some(2817414584665.11), None)
        );
        assert_eq!(
            cell(&cube, &["NY.GDP.MKTP.CD", "ARB", "1971"]),
            (Some(37045140366.8421), None)
        );
        assert!(!has(&cube, &["NY.GDP.MKTP.CD", "ARB", "2020"]));
        assert!(!cube.dimensions[2].codes.contains(&"2020".to_owned()));
        assert_eq!(cube.dimensions[1].labels["ARB"], "Arab World");
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn metadata_pages_and_error_bodies() {
        // /countries and /sources: pagination as strings ("per_page":"2"; all four in
        // /sources). Read leniently; their records are not indicator data.
        let countries = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/worldbank/extracted_bodies/TestCountriesService_List.1.json"
        ));
        let json: serde_json::Value = serde_json::from_slice(&countries).unwrap();
        // cat: [{"page":1,"pages":149,"per_page":"2","total":297},[…]]
        assert_eq!(
            page_of(&json[0]).unwrap(),
            Page {
                page: 1,
                pages: 149,
                per_page: 2,
                total: 297
            }
        );
        let e = parse_page(&countries, &Filters::new()).unwrap_err();
        assert!(e.message.contains("not an indicator data page"), "{e}");
        let sources = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/worldbank/extracted_bodies/TestSourcesService_List.2.json"
        ));
        let json: serde_json::Value = serde_json::from_slice(&sources).unwrap();
        // cat: [{"page":"1","pages":"33","per_page":"2","total":"65"},[…]]
        assert_eq!(
            page_of(&json[0]).unwrap(),
            Page {
                page: 1,
                pages: 33,
                per_page: 2,
                total: 65
            }
        );

        // The 102-byte body the API sends with HTTP 200 for an invalid indicator.
        let body = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/worldbank/extracted_bodies/TestIndicatorValuesService_List.4.json"
        ));
        assert_eq!(body.len(), 102);
        let e = parse_page(&body, &Filters::new()).unwrap_err();
        assert!(
            e.message.contains("120")
                && e.message.contains("Invalid value")
                && e.message
                    .contains("The provided parameter value is not valid"),
            "{e}"
        );
    }
}
