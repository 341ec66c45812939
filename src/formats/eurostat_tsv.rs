//! Eurostat's TSV: the bulk `.tsv.gz` files and the APIs' `format=TSV`.
//!
//! Accepted:
//! - plain or gzipped bytes (recognised by the gzip magic; decompressed as a stream, several
//!   members allowed), a UTF-8 BOM, LF or CRLF line ends;
//! - the header `dim1,dim2,…,geo\TIME_PERIOD` (legacy `unit,geo\time`): the series
//!   dimensions joined by commas, a backslash, the time dimension; then one period per
//!   cell, trailing spaces allowed, in any order (legacy files are descending);
//! - one series per line: the comma-joined codes, then one cell per period: `value flags`
//!   (`38500 `, `12.7 b`, `4.4 bu`), or missing `:` with optional flags (`: `, `: u`,
//!   `: c`), or Comext's `:C`.
//!
//! The cube's dimensions are the series dimensions then the time dimension; one row per
//! cell with a value or a flag (a bare `: ` is no row), `lines` giving each row's physical
//! line. Rows are filtered on their codes before any number is read, so a bulk file is
//! never held whole, and a filtered-out row is never checked beyond its number of cells.
//!
//! Upper-case confidentiality letters (`C`, `N`, `P`, the 2025 CONF_STATUS list) are
//! written after a bar (`:C` → `|C`), the form JSON-stat and [`super::Flag`] use, since
//! TSV cells have no separate confidentiality slot; lower-case flags are kept as published.
//!
//! A non-numeric cell (Comext's `KG` in its unit-of-quantity rows) is an error naming the
//! line and period, unless its row is filtered out: a text where a number is expected
//! means the request mixes rows that are not observations, and silently reading it as
//! missing would hide that.

use super::{Cube, Dimension, Filters, FormatError, Interner, RowFilter, read_line, text_reader};

/// Parses a Eurostat TSV (plain or gzipped), keeping the rows `filters` wants.
pub fn parse(bytes: &[u8], filters: &Filters) -> Result<Cube, FormatError> {
    let mut reader = text_reader(bytes);
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0usize;

    if !next(&mut *reader, &mut buf, &mut line_no)? {
        return Err(FormatError::new("the file is empty: no header line"));
    }
    // Owned: the periods borrow from it while `buf` is reused for the data lines.
    let header = String::from_utf8(super::strip_bom(&buf).to_vec())
        .map_err(|_| FormatError::at(1, "the header is not UTF-8 text"))?;
    let mut cells = header.split('\t');
    let first = cells.next().unwrap_or_default();
    let Some((series_ids, time_id)) = first.rsplit_once('\\') else {
        return Err(FormatError::at(
            1,
            format!(
                "not a Eurostat TSV header: the first cell should read like \
                 'unit,geo\\TIME_PERIOD' (dimensions, a backslash, the time dimension), \
                 not '{}'",
                super::excerpt(first.as_bytes())
            ),
        ));
    };
    let mut ids = series_ids
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect::<Vec<_>>();
    ids.push(time_id.trim().to_owned());
    if let Some(empty) = ids.iter().position(String::is_empty) {
        return Err(FormatError::at(
            1,
            format!(
                "dimension {} of the header '{first}' has no name",
                empty + 1
            ),
        ));
    }
    let series_dims = ids.len() - 1;
    let mut filter = RowFilter::new(filters, &ids);

    // Periods in header order; each column maps to its code among the wanted periods.
    let periods = cells.map(str::trim).collect::<Vec<_>>();
    if periods.is_empty() {
        return Err(FormatError::at(1, "the header lists no time period"));
    }
    let mut times = Interner::default();
    let mut columns: Vec<Option<u32>> = Vec::with_capacity(periods.len());
    let mut distinct = std::collections::HashSet::with_capacity(periods.len());
    for (i, &p) in periods.iter().enumerate() {
        if p.is_empty() {
            return Err(FormatError::at(
                1,
                format!("header cell {} (a time period) is empty", i + 2),
            ));
        }
        if !distinct.insert(p) {
            return Err(FormatError::at(
                1,
                format!("the period {p} appears twice in the header"),
            ));
        }
        columns.push(if filter.wants(series_dims, p) {
            Some(times.intern(p)?)
        } else {
            None
        });
    }
    let width = periods.len() + 1;

    let mut interners = (0..series_dims)
        .map(|_| Interner::default())
        .collect::<Vec<_>>();
    let mut keys: Vec<Vec<u32>> = vec![Vec::new(); ids.len()];
    let mut values = Vec::new();
    let mut flags = Vec::new();
    let mut lines = Vec::new();

    while next(&mut *reader, &mut buf, &mut line_no)? {
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let found = memchr::memchr_iter(b'\t', &buf).count() + 1;
        if found != width {
            return Err(FormatError::at(
                line_no,
                format!(
                    "{found} cells where the header has {width} (the series key and {} periods)",
                    periods.len()
                ),
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| FormatError::at(line_no, "the line is not UTF-8 text"))?;
        let (key, rest) = text.split_once('\t').unwrap_or((text, ""));
        let series = key.split(',').map(str::trim).collect::<Vec<_>>();
        if series.len() != series_dims {
            return Err(FormatError::at(
                line_no,
                format!(
                    "the series key '{key}' has {} codes; the header names {series_dims} \
                     dimensions ({})",
                    series.len(),
                    ids[..series_dims].join(",")
                ),
            ));
        }
        // Decide on the codes before interning any, so that a rejected row leaves no code.
        if !series
            .iter()
            .enumerate()
            .all(|(d, code)| filter.wants(d, code))
        {
            continue;
        }
        let line = u32::try_from(line_no)
            .map_err(|_| FormatError::at(line_no, "more than 4 billion lines"))?;
        let mut codes: Option<Vec<u32>> = None;
        for (cell, (column, period)) in rest.split('\t').zip(columns.iter().zip(&periods)) {
            let Some(time) = column else { continue };
            let Some((value, flag)) = read_cell(cell).map_err(|()| {
                FormatError::at(
                    line_no,
                    format!(
                        "series {key}, period {period}: '{}' is not a number (expected \
                         'value flags', ': flags' or ':')",
                        cell.trim()
                    ),
                )
            })?
            else {
                continue;
            };
            let codes = match &mut codes {
                Some(c) => c,
                None => {
                    let mut interned = Vec::with_capacity(series_dims);
                    for (interner, code) in interners.iter_mut().zip(&series) {
                        interned.push(interner.intern(code)?);
                    }
                    codes.insert(interned)
                }
            };
            for (k, &c) in keys.iter_mut().zip(codes.iter()) {
                k.push(c);
            }
            keys[series_dims].push(*time);
            values.push(value);
            flags.push(flag);
            lines.push(line);
        }
    }

    let mut dimensions = interners
        .into_iter()
        .zip(&ids)
        .map(|(interner, id)| Dimension {
            id: id.clone(),
            codes: interner.into_codes(),
            ..Dimension::default()
        })
        .collect::<Vec<_>>();
    dimensions.push(Dimension {
        id: ids[series_dims].clone(),
        codes: times.into_codes(),
        ..Dimension::default()
    });
    Ok(Cube {
        dimensions,
        keys,
        values,
        flags,
        lines: Some(lines),
    })
}

/// A cell's value and flag.
type Cell = (Option<f64>, Option<String>);

/// One cell: Ok(None) when it holds neither a value nor a flag; Err when it holds text
/// that is not a number.
fn read_cell(cell: &str) -> Result<Option<Cell>, ()> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    let (value, letters) = match cell.strip_prefix(':') {
        // `: u`, `: c`, and Comext's `:C` without the space.
        Some(letters) => (None, letters.trim()),
        None => {
            let (number, letters) = cell.split_once(' ').unwrap_or((cell, ""));
            (Some(super::parse_number(number).ok_or(())?), letters.trim())
        }
    };
    let flag = flag(letters);
    if value.is_none() && flag.is_none() {
        return Ok(None);
    }
    Ok(Some((value, flag)))
}

fn flag(letters: &str) -> Option<String> {
    if letters.is_empty() {
        return None;
    }
    let is_conf = |c: char| matches!(c, 'C' | 'N' | 'P');
    if letters.contains('|') || !letters.chars().any(is_conf) {
        return Some(letters.to_owned());
    }
    let observation = letters.chars().filter(|&c| !is_conf(c) && c != ' ');
    let confidentiality = letters.chars().filter(|&c| is_conf(c));
    Some(format!(
        "{}|{}",
        observation.collect::<String>(),
        confidentiality.collect::<String>()
    ))
}

/// The next line, counting lines; a read error can only come from the gzip stream.
fn next(
    reader: &mut dyn std::io::BufRead,
    buf: &mut Vec<u8>,
    line_no: &mut usize,
) -> Result<bool, FormatError> {
    let more = read_line(reader, buf).map_err(|e| super::gzip_error(&e, *line_no))?;
    if more {
        *line_no += 1;
    }
    Ok(more)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::parse;
    use crate::formats::test_support::{cell, check_shape, codes, filters, has, parsed, sample};
    use crate::formats::{Cube, Filters, Flag};

    fn ok(text: &str) -> Cube {
        parsed(parse(text.as_bytes(), &Filters::new()))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// The legacy bulk layout: `unit,geo\time`, years descending, every cell form.
    const LEGACY: &str = "unit,geo\\time\t2015 \t2014 \t2013 \n\
        THS,AT\t26.3 \t26.8 b\t: \n\
        THS,BE24\t: c\t: bu\t4.4 bu\n\
        THS,FR\t: \t: \t: \n\
        PC,AT\t1e2 \t-0.5 u\t:C\n";

    #[test]
    fn legacy_header_and_cell_forms() {
        let cube = ok(LEGACY);
        let ids = cube
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(ids, ["unit", "geo", "time"]);
        // Header order (descending), trailing spaces trimmed.
        assert_eq!(cube.dimensions[2].codes, ["2015", "2014", "2013"]);
        assert_eq!(cell(&cube, &["THS", "AT", "2015"]), (Some(26.3), None));
        assert_eq!(cell(&cube, &["THS", "AT", "2014"]), (Some(26.8), Some("b")));
        // `: ` alone is no row; a series with nothing published leaves no code behind.
        assert!(!has(&cube, &["THS", "AT", "2013"]));
        assert!(!cube.dimensions[1].codes.contains(&"FR".to_owned()));
        let (value, flag) = cell(&cube, &["THS", "BE24", "2015"]);
        assert_eq!((value, flag), (None, Some("c")));
        assert!(Flag::parse(flag.unwrap()).confidential);
        assert_eq!(cell(&cube, &["THS", "BE24", "2014"]), (None, Some("bu")));
        assert_eq!(
            cell(&cube, &["THS", "BE24", "2013"]),
            (Some(4.4), Some("bu"))
        );
        assert_eq!(cell(&cube, &["PC", "AT", "2015"]), (Some(100.0), None));
        assert_eq!(cell(&cube, &["PC", "AT", "2014"]), (Some(-0.5), Some("u")));
        // Comext's `:C`: confidential in the obs|conf form.
        let (value, flag) = cell(&cube, &["PC", "AT", "2013"]);
        assert_eq!((value, flag), (None, Some("|C")));
        assert!(Flag::parse(flag.unwrap()).confidential);
        assert_eq!(cube.len(), 8);
        // Each row's physical line.
        let lines = cube.lines.as_ref().unwrap();
        assert_eq!(lines, &[2, 2, 3, 3, 3, 5, 5, 5]);
    }

    /// The current layout, CRLF, a BOM, ascending periods.
    const CURRENT: &str = "\u{feff}freq,unit,geo\\TIME_PERIOD\t2021 \t2022 \r\n\
        A,PC,FR10\t12.7 b\t13 \r\n\
        A,PC,DE1\t: u\t: p C\r\n\
        A,PC,DE2\t1 e|N\t: \r\n\
        \r\n";

    #[test]
    fn current_header_crlf_and_bom() {
        let cube = ok(CURRENT);
        let ids = cube
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(ids, ["freq", "unit", "geo", "TIME_PERIOD"]);
        assert_eq!(cube.dimensions[3].codes, ["2021", "2022"]);
        assert_eq!(
            cell(&cube, &["A", "PC", "FR10", "2021"]),
            (Some(12.7), Some("b"))
        );
        assert_eq!(
            cell(&cube, &["A", "PC", "FR10", "2022"]),
            (Some(13.0), None)
        );
        assert_eq!(cell(&cube, &["A", "PC", "DE1", "2021"]), (None, Some("u")));
        // Observation letters before the bar, confidentiality after.
        let (_, flag) = cell(&cube, &["A", "PC", "DE1", "2022"]);
        assert_eq!(flag, Some("p|C"));
        let read = Flag::parse(flag.unwrap());
        assert!(read.confidential && read.observation == "p");
        // Already in the obs|conf form: as published.
        assert_eq!(
            cell(&cube, &["A", "PC", "DE2", "2021"]),
            (Some(1.0), Some("e|N"))
        );
        assert_eq!(cube.lines.as_ref().unwrap(), &[2, 2, 3, 3, 4]);
    }

    #[test]
    fn filters_apply_before_numbers_are_read() {
        let text = format!("{LEGACY}THS,DE\tKG \t1 \t2 \n");
        // Unfiltered, the text cell is an error naming its line, series and period.
        let e = parse(text.as_bytes(), &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(
            e.message
                .contains("series THS,DE, period 2015: 'KG' is not a number"),
            "{e}"
        );
        // Filtered out (case-insensitively), it is never read.
        let cube = parse(text.as_bytes(), &filters(&[("GEO", &["at", "be24"])])).unwrap();
        check_shape(&cube);
        assert_eq!(cube.len(), 8);
        assert_eq!(cube.dimensions[1].codes, ["AT", "BE24"]);
        // On the time dimension, and combined.
        let cube = parse(
            text.as_bytes(),
            &filters(&[
                ("time", &["2014"]),
                ("unit", &["THS"]),
                ("geo", &["AT", "BE24"]),
            ]),
        )
        .unwrap();
        check_shape(&cube);
        assert_eq!(cube.dimensions[2].codes, ["2014"]);
        let rows = (0..cube.len())
            .map(|r| codes(&cube, r).join("/"))
            .collect::<Vec<_>>();
        assert_eq!(rows, ["THS/AT/2014", "THS/BE24/2014"]);
        // The text cell's period filtered out: the row is kept, the cell never read.
        let cube = parse(text.as_bytes(), &filters(&[("time", &["2013"])])).unwrap();
        assert_eq!(cell(&cube, &["THS", "DE", "2013"]), (Some(2.0), None));
        // A filter on a dimension the file lacks filters nothing (the loader reports it).
        let cube = parse(
            text.as_bytes(),
            &filters(&[("nace_r2", &["B"]), ("geo", &["AT"])]),
        );
        assert_eq!(cube.unwrap().dimensions[1].codes, ["AT"]);
    }

    #[test]
    fn gzip_round_trip_and_truncation() {
        let packed = gzip(LEGACY.as_bytes());
        assert_eq!(parse(&packed, &Filters::new()).unwrap(), ok(LEGACY));
        // Two members back to back (concatenated .gz files) are one stream.
        let mut two = gzip(b"unit,geo\\time\t2015 \nTHS,AT\t1 \n");
        two.extend(gzip(b"THS,BE\t2 \n"));
        assert_eq!(parse(&two, &Filters::new()).unwrap().len(), 2);
        // Cut short: an error, never a partial cube.
        let big = (0..2000).fold(String::from("unit,geo\\time\t2015 \n"), |mut s, i| {
            s.push_str(&format!("THS,R{i}\t{i}.5 \n"));
            s
        });
        let packed = gzip(big.as_bytes());
        for cut in [packed.len() - 4, packed.len() / 2, 12] {
            let e = parse(&packed[..cut], &Filters::new()).unwrap_err();
            assert!(
                e.message.contains("gzip stream is truncated or corrupt"),
                "{cut}: {e}"
            );
        }
        // Corrupt (a flipped byte in the deflate data).
        let mut corrupt = packed.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        assert!(parse(&corrupt, &Filters::new()).is_err());
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let e = parse(
            b"unit,geo\\time\t2015 \t2014 \nTHS,AT\t1 \n",
            &Filters::new(),
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("2 cells where the header has 3"), "{e}");
        assert!(e.to_string().starts_with("line 2: "));
        let e = parse(b"unit,geo\\time\t2015 \nTHS\t1 \n", &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message.contains("'THS' has 1 codes; the header names 2"),
            "{e}"
        );
        let e = parse(b"unit,geo,time\t2015 \n", &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("not a Eurostat TSV header"), "{e}");
        let e = parse(b"unit,geo\\time\n", &Filters::new()).unwrap_err();
        assert!(e.message.contains("no time period"), "{e}");
        let e = parse(b"unit,geo\\time\t2015 \t2015\n", &Filters::new()).unwrap_err();
        assert!(e.message.contains("2015 appears twice"), "{e}");
        let e = parse(b"", &Filters::new()).unwrap_err();
        assert!(e.message.contains("empty"), "{e}");
        let e = parse(b"unit,geo\\time\t2015 \nTHS,\xff\t1 \n", &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = parse(b"unit,geo\\time\t2015 \nTHS,AT\tinf \n", &Filters::new()).unwrap_err();
        assert!(e.message.contains("'inf' is not a number"), "{e}");
        // A header alone is an empty cube.
        assert!(ok("unit,geo\\time\t2015 \n").is_empty());
    }

    // ---- Captured files (README.md and FORMATS.md in shared/data/official_samples).

    #[test]
    #[ignore = "needs ../shared/data"]
    fn regional_gdp_bulk_file() {
        let bytes = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/eurostat_tsv/nama_10r_2gdp.tsv.gz"
        ));
        let cube = parse(&bytes, &Filters::new()).unwrap();
        check_shape(&cube);
        // python3 over zcat's text: 37,288 cells with a value or a flag (37,144 unflagged,
        // 130 `e`, 14 `: e`).
        assert_eq!(cube.len(), 37288);
        assert_eq!(
            cube.dimensions[2].codes.first().map(String::as_str),
            Some("2014")
        );
        assert_eq!(
            cube.dimensions[2].codes.last().map(String::as_str),
            Some("2000")
        );
        // zcat nama_10r_2gdp.tsv.gz | sed -n 166p → "EUR_HAB,FI1B\t… \t49300 e\t…":
        // third cell = 2013 (header: 2014 2013 …).
        assert_eq!(
            cell(&cube, &["EUR_HAB", "FI1B", "2013"]),
            (Some(49300.0), Some("e"))
        );
        // The row keeps the physical line of its series.
        let row = (0..cube.len())
            .find(|&r| codes(&cube, r) == ["EUR_HAB", "FI1B", "2013"])
            .unwrap();
        assert_eq!(cube.lines.as_ref().unwrap()[row], 166);
        // zcat | sed -n 2p → "EUR_HAB,AT\t38500 \t38100 …".
        assert_eq!(
            cell(&cube, &["EUR_HAB", "AT", "2014"]),
            (Some(38500.0), None)
        );
        // Filtered while streaming: one region.
        let fi = parse(
            &bytes,
            &filters(&[("geo", &["fi1b"]), ("unit", &["EUR_HAB"])]),
        )
        .unwrap();
        assert_eq!(fi.len(), 15);
        assert_eq!(
            cell(&fi, &["EUR_HAB", "FI1B", "2013"]),
            (Some(49300.0), Some("e"))
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn regional_unemployment_flags() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_tsv/lfst_r_lfu3pers.tsv.gz"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // python3 over zcat's text: 89,585 cells with a value or a flag.
        assert_eq!(cube.len(), 89585);
        // python3, pairing header and cells of line 22 (header 2015 … 1999): THS,Y15-24,F,BE24
        // 2015 "2.6 u", 2005 "2.8 bu", 2003 ": c", 2001 ": bc", 2000 ": c".
        let at = |year| ["THS", "Y15-24", "F", "BE24", year];
        assert_eq!(cell(&cube, &at("2015")), (Some(2.6), Some("u")));
        assert_eq!(cell(&cube, &at("2005")), (Some(2.8), Some("bu")));
        let (value, flag) = cell(&cube, &at("2003"));
        assert_eq!((value, flag), (None, Some("c")));
        assert!(Flag::parse(flag.unwrap()).confidential);
        let (value, flag) = cell(&cube, &at("2001"));
        assert_eq!((value, flag), (None, Some("bc")));
        let read = Flag::parse(flag.unwrap());
        assert!(read.confidential && read.observation == "b");
        // Line 2, same pairing: THS,Y15-24,F,AT 2007 "26.7 b".
        assert_eq!(
            cell(&cube, &["THS", "Y15-24", "F", "AT", "2007"]),
            (Some(26.7), Some("b"))
        );
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn education_attainment_excerpt() {
        let cube = parse(
            &sample(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/official_samples/eurostat_tsv/edat_lfse_04_excerpt/sample_data.tsv"
            )),
            &Filters::new(),
        )
        .unwrap();
        check_shape(&cube);
        // 40 series (41 lines, CRLF); python3: 829 cells with a value or a flag.
        assert_eq!(cube.len(), 829);
        // python3: 22 distinct geo codes among the 40 series, each with some cell.
        assert_eq!(cube.dimensions[5].codes.len(), 22);
        assert_eq!(cube.dimensions[6].codes.len(), 24);
        assert_eq!(cube.dimensions[6].id, "TIME_PERIOD");
        assert_eq!(cube.dimensions[6].codes[0], "2000");
        // sed -n 2p: "A,F,ED3_4VOC,Y25-64,PC,EL6" … "12.7 b" (2021) "13.7 " "12.4 ".
        let el6 = |y| ["A", "F", "ED3_4VOC", "Y25-64", "PC", "EL6", y];
        assert_eq!(cell(&cube, &el6("2021")), (Some(12.7), Some("b")));
        assert_eq!(cell(&cube, &el6("2023")), (Some(12.4), None));
        assert!(!has(&cube, &el6("2020")));
        // sed -n 4p: "A,T,ED5-8,Y20-24,PC,FRY1" … 2014 "17.5 bu", 2015 "18.3 u".
        let fry1 = |y| ["A", "T", "ED5-8", "Y20-24", "PC", "FRY1", y];
        assert_eq!(cell(&cube, &fry1("2014")), (Some(17.5), Some("bu")));
        assert_eq!(cell(&cube, &fry1("2015")), (Some(18.3), Some("u")));
        // sed -n 25p: "A,F,ED0-2,Y20-24,PC,AT11\t: u\t: u\t: u\t: u\t: bu" (2004 = ": bu").
        let at11 = |y| ["A", "F", "ED0-2", "Y20-24", "PC", "AT11", y];
        assert_eq!(cell(&cube, &at11("2000")), (None, Some("u")));
        assert_eq!(cell(&cube, &at11("2004")), (None, Some("bu")));
    }

    #[test]
    #[ignore = "needs ../shared/data"]
    fn comext_current_layout() {
        let bytes = sample(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/official_samples/eurostat_tsv/ds-059358-de-2022.tsv"
        ));
        // The QNTUNIT rows carry the unit's name ("KG", line 6 first) where a number is
        // expected: an error unless they are filtered out.
        let e = parse(&bytes, &Filters::new()).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(
            e.message
                .contains("series A,DE,20143420,QNTUNIT, period 2022: 'KG' is not a number"),
            "{e}"
        );
        let observations = [
            "EXPQNT",
            "EXPVAL",
            "IMPQNT",
            "IMPVAL",
            "PRODQNT",
            "PRODVAL",
            "OWNPRODVAL",
            "OWNQNTFLAG",
            "OWNVALFLAG",
            "PQNTFLAG",
            "PVALFLAG",
            "SCQNTFLAG",
            "SCVALFLAG",
        ];
        let cube = parse(&bytes, &filters(&[("indicators", &observations)])).unwrap();
        check_shape(&cube);
        // 58 series (cat -n), 6 QNTUNIT rows (grep -c KG); 27 `:C` cells (grep -c ':C').
        assert_eq!(cube.len(), 52);
        let ids = cube
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(
            ids,
            ["freq", "reporter", "product", "indicators", "TIME_PERIOD"]
        );
        let confidential = (0..cube.len())
            .filter(|&r| {
                cube.flags[r]
                    .as_deref()
                    .is_some_and(|f| Flag::parse(f).confidential)
            })
            .collect::<Vec<_>>();
        assert_eq!(confidential.len(), 27);
        assert!(confidential.iter().all(|&r| cube.values[r].is_none()));
        // cat -n: line 2 "A,DE,20143420,OWNQNTFLAG\t:C", line 19 "A,DE,20143440,EXPVAL\t104439971".
        assert_eq!(
            cell(&cube, &["A", "DE", "20143420", "OWNQNTFLAG", "2022"]),
            (None, Some("|C"))
        );
        assert_eq!(
            cell(&cube, &["A", "DE", "20143440", "EXPVAL", "2022"]),
            (Some(104439971.0), None)
        );
    }
}
