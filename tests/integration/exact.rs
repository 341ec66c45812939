//! Exact scores at the goalposts, end to end: a value at its utopia scores 100 and shares
//! the first rank with values clipped to 100; equal ratios of two indicators score equal,
//! and so do their parents.

use crate::helpers::*;

#[test]
fn values_at_the_goalposts_share_their_rank() {
    let dir = TempDir::new("exact");
    // x: utopia 49 (A exactly at it, B above it and clipped). y: the same, lower is better.
    // p and q: the same ratio on two scales (3/5 = 9/15), for B and C alike.
    dir.write(
        "data.csv",
        "code,x,y,p,q\nA,49,0,5,15\nB,60,-3,3,9\nC,0,49,3,9\nD,7,42,0,0\n",
    );
    let mut toml = String::from(
        "[pipeline]\nid = \"exact\"\n[territories]\nid = \"code\"\n[[source]]\npath = \"data.csv\"\n\
         [normalisation]\nclip = true\n[index]\nid = \"idx\"\n[[dimension]]\nid = \"d\"\n\
         [[component]]\nid = \"c1\"\ndimension = \"d\"\n[[component]]\nid = \"c2\"\ndimension = \"d\"\n",
    );
    for (id, c, dir, u, d) in [
        ("x", "c1", "higher_is_better", 49, 0),
        ("y", "c1", "lower_is_better", 0, 49),
        ("p", "c2", "higher_is_better", 5, 0),
        ("q", "c2", "higher_is_better", 15, 0),
    ] {
        toml.push_str(&format!(
            "[[indicator]]\nid = \"{id}\"\ncomponent = \"{c}\"\ndirection = \"{dir}\"\nutopia = {u}\ndystopia = {d}\n"
        ));
    }
    dir.write("exact.toml", &toml);
    let o = bienvivre(dir.path(), &["run", "exact.toml", "-q", "-o", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let tidy = read_csv(&dir.join("out/scores.csv"));
    let (ids, nodes, values, ranks) = (
        strings(&tidy, "territory_id"),
        strings(&tidy, "node_id"),
        floats(&tidy, "value"),
        floats(&tidy, "rank"),
    );
    let row = |node: &str, t: &str| {
        let i = (0..ids.len()).find(|&i| nodes[i] == node && ids[i] == t);
        i.expect("a row per territory and node")
    };
    let score = |node: &str| -> Vec<f64> {
        ["A", "B", "C", "D"]
            .map(|t| values[row(node, t)].expect("a score"))
            .to_vec()
    };
    // Bit-exact: at the utopia 100, at the dystopia 0, clipped values 100 and 0.
    assert_eq!(score("x"), [100.0, 100.0, 0.0, 7.0 / 49.0 * 100.0]);
    assert_eq!(score("y"), [100.0, 100.0, 0.0, 7.0 / 49.0 * 100.0]);
    assert_eq!(score("p"), [100.0, 60.0, 60.0, 0.0]);
    assert_eq!(score("q"), score("p"));
    // A and B tie on c1, B and C on c2: their parents are equal to the bit.
    assert_eq!(score("c1")[0], score("c1")[1]);
    assert_eq!(score("c2")[1], score("c2")[2]);
    // Ties share the best rank: A and B first on x, y and c1.
    for node in ["x", "y", "c1"] {
        assert_eq!(
            (ranks[row(node, "A")], ranks[row(node, "B")]),
            (Some(1.0), Some(1.0)),
            "{node}: A and B share the first rank"
        );
    }
}
