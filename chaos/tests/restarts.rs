//! 100 000 live entries restarted from the AOF command log, rewritten AOFs (with and without
//! the RDB preamble) and an RDB snapshot: every entry back with its phase, token and exact
//! expiry, the token counter too, and memory within 5 %. `make soak` does the same with 1M.

#[test]
fn a_hundred_thousand_entries_come_back_from_every_kind_of_file() {
    let report = dedup_chaos::persistence::run(100_000).expect("the restart check runs");
    println!("{report}");
    assert_eq!(report.restarts.len(), 4);
    assert!(report.passed(), "{report}");
}
