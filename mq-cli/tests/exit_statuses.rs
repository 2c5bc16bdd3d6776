//! The README's table of exit statuses is mq-core's: the same statuses, and
//! each one's meaning starting with the same words.

/// `(status, meaning)` of a Markdown table's rows `| N | meaning |`.
fn rows(text: &str, prefix: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| {
            let mut cells = l.trim().trim_matches('|').split('|');
            let status = cells.next()?.trim().parse().ok()?;
            Some((status, cells.next()?.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_exit_module() {
    let readme = std::fs::read_to_string("../README.md").unwrap();
    let section = readme
        .split("## Exit statuses")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let module = std::fs::read_to_string("../mq-core/src/exit.rs").unwrap();
    let readme = rows(section, "");
    let module = rows(&module, "//!");
    let statuses = |r: &[(u32, String)]| r.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    assert_eq!(statuses(&readme), statuses(&module));
    assert_eq!(statuses(&module), [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]);
    for ((status, theirs), (_, ours)) in readme.iter().zip(&module) {
        // The README may say more (examples in parentheses), not otherwise:
        // the first clause, parentheses left out, is the same.
        let first = |t: &str| {
            let mut plain = String::new();
            let mut depth = 0;
            for c in t.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ if depth == 0 => plain.push(c),
                    _ => {}
                }
            }
            let clause = plain.split([',', ';']).next().unwrap_or("").to_string();
            clause.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert_eq!(first(theirs), first(ours), "status {status}");
    }
}
