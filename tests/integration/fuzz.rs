//! Property tests: arbitrary bytes and rows for the CSV reader, arbitrary edits of a
//! pipeline file for the config loader. Whatever comes in, `bienvivre validate` exits 0,
//! 1 or 2, never panics, and a failure always comes with an error message.

use proptest::prelude::*;

use crate::helpers::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 48,
        // Keep the source tree clean: no regression files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs `validate` on the small project with this TOML and CSV content.
fn validate(toml: &[u8], csv: &[u8]) -> Result<(), TestCaseError> {
    let dir = TempDir::new("fuzz");
    std::fs::write(dir.join("small.toml"), toml).unwrap();
    std::fs::write(dir.join("small.csv"), csv).unwrap();
    let out = bienvivre(dir.path(), &["validate", "small.toml"]);
    let err = stderr(&out);
    let code = out.status.code();
    prop_assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?} (a signal or a panic?)\n{err}"
    );
    prop_assert!(!err.contains("panicked"), "{err}");
    if code != Some(0) {
        prop_assert!(err.starts_with("error: "), "no error message: {err:?}");
    }
    prop_assert!(!dir.join("outputs").exists(), "validate wrote outputs");
    Ok(())
}

/// A cell: numbers, words, quotes, separators and line breaks in any mix.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
        "[a-zA-Zé ]{0,6}",
        Just(String::new()),
        Just("\"".to_owned()),
        Just("\"a,b\"".to_owned()),
        Just("\"x\ny\"".to_owned()),
        Just("1e400".to_owned()),
        Just("NaN".to_owned()),
        Just(",".to_owned()),
        Just("\r".to_owned()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_as_csv(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        validate(SMALL_TOML.as_bytes(), &bytes)?;
    }

    #[test]
    fn arbitrary_rows_under_a_valid_header(
        rows in proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..8),
        ending in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
    ) {
        let mut csv = format!("code,name,country,a,b,c,d{ending}");
        for row in rows {
            csv.push_str(&row.join(","));
            csv.push_str(ending);
        }
        validate(SMALL_TOML.as_bytes(), csv.as_bytes())?;
    }

    #[test]
    fn arbitrary_edits_of_a_pipeline_file(
        edits in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0usize..12, "[ -~\n]{0,12}"),
            1..5,
        ),
    ) {
        let mut toml = SMALL_TOML.as_bytes().to_vec();
        for (at, cut, insert) in edits {
            let i = at.index(toml.len() + 1);
            let end = (i + cut).min(toml.len());
            toml.splice(i..end, insert.bytes());
        }
        validate(&toml, SMALL_CSV.as_bytes())?;
    }

    #[test]
    fn arbitrary_numbers_in_a_pipeline_file(
        value in prop_oneof![
            any::<f64>().prop_map(|x| format!("{x:?}")),
            Just("nan".to_owned()),
            Just("-inf".to_owned()),
            Just("1e400".to_owned()),
            Just("1e-400".to_owned()),
            "-?[0-9]{1,3}(\\.[0-9]{0,3})?(e-?[0-9]{1,3})?",
        ],
        key in prop_oneof![
            Just("utopia"), Just("dystopia"), Just("weight"), Just("cap_max"), Just("cap_min"),
        ],
    ) {
        let toml = SMALL_TOML.replacen(
            "id = \"a\"\n",
            &format!("id = \"a\"\n{key} = {value}\n"),
            1,
        );
        // A duplicated key is a TOML error of its own: fine, it must be reported too.
        validate(toml.as_bytes(), SMALL_CSV.as_bytes())?;
    }
}
