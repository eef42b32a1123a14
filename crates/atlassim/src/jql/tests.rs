//! Parser unit and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use super::*;

fn err(jql: &str) -> String {
    parse(jql).unwrap_err().messages.join(" | ")
}

#[test]
fn and_binds_tighter_than_or() {
    let q = parse("project = A OR status = Done AND type = Bug").unwrap();
    let Some(Expr::Or(_, right)) = q.clause else {
        panic!("expected OR at the top")
    };
    assert!(matches!(*right, Expr::And(..)));
}

#[test]
fn parentheses_override_precedence() {
    let q = parse("(project = A OR status = Done) AND type = Bug").unwrap();
    assert!(matches!(q.clause, Some(Expr::And(..))));
}

#[test]
fn not_in_is_empty_and_functions_parse() {
    let q = parse("status NOT IN (Done, \"In Review\") and assignee is not EMPTY and sprint in openSprints() and updated >= -15m order by rank, created DESC").unwrap();
    assert_eq!(q.order_by.len(), 2);
    assert_eq!(q.order_by[1].direction, Some(Direction::Desc));
    assert!(q.to_string().contains("NOT IN (\"Done\", \"In Review\")"));
}

#[test]
fn order_by_alone_has_no_clause() {
    let q = parse("order by key desc").unwrap();
    assert!(q.clause.is_none());
}

#[test]
fn parse_errors_use_jiras_wording() {
    assert_eq!(
        err("project = "),
        "Error in the JQL Query: Expecting either a value, list or function before the end of the query."
    );
    assert_eq!(
        err("project foo"),
        "Error in the JQL Query: Expecting operator but got 'foo'. The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line 1, character 9)"
    );
    assert_eq!(
        err("summary ~ \"abc"),
        "Error in the JQL Query: The quoted string 'abc' has not been completed. (line 1, character 11)"
    );
    assert_eq!(
        err("project = A status = B"),
        "Error in the JQL Query: Expecting either 'OR' or 'AND' but got 'status'. (line 1, character 13)"
    );
    assert_eq!(
        err("(project = A"),
        "Error in the JQL Query: Expecting ')' before the end of the query."
    );
    assert_eq!(
        err("project = A%"),
        "Error in the JQL Query: The character '%' is a reserved JQL character. You must enclose it in a string or use the escape '\\u0025' instead. (line 1, character 12)"
    );
}

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_]{0,8}".prop_filter("not a keyword", |s| {
        ![
            "and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc", "was",
            "changed", "after", "before", "during", "on", "from", "to",
        ]
        .contains(&s.to_ascii_lowercase().as_str())
    })
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![ident(), "[ -~]{1,12}", Just("cf[10016]".to_string())]
}

fn value() -> impl Strategy<Value = Operand> {
    prop_oneof![
        "\\PC{0,12}".prop_map(Operand::Value),
        Just(Operand::Empty),
        (ident(), proptest::collection::vec("[ -~]{0,6}", 0..3))
            .prop_map(|(f, a)| Operand::Function(f, a)),
    ]
}

fn clause() -> impl Strategy<Value = Expr> {
    let ops = prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Like),
        Just(Op::NotLike),
        Just(Op::In),
        Just(Op::NotIn),
        Just(Op::Is),
        Just(Op::IsNot)
    ];
    (
        field(),
        ops,
        value(),
        proptest::collection::vec(value(), 1..4),
    )
        .prop_map(|(field, op, v, list)| {
            let operand = match op {
                Op::Is | Op::IsNot => Operand::Empty,
                Op::In | Op::NotIn => Operand::List(list),
                _ => v,
            };
            Expr::Clause(Clause { field, op, operand })
        })
}

fn history_clause() -> impl Strategy<Value = Expr> {
    let pred = prop_oneof![
        Just(HistoryPredicate::From),
        Just(HistoryPredicate::To),
        Just(HistoryPredicate::By),
        Just(HistoryPredicate::After),
        Just(HistoryPredicate::Before),
        Just(HistoryPredicate::On),
        Just(HistoryPredicate::During),
    ];
    let op = prop_oneof![
        Just(HistoryOp::Was),
        Just(HistoryOp::WasNot),
        Just(HistoryOp::WasIn),
        Just(HistoryOp::WasNotIn),
        Just(HistoryOp::Changed),
    ];
    (
        field(),
        op,
        value(),
        proptest::collection::vec(value(), 1..3),
        proptest::collection::vec((pred, value(), value()), 0..3),
    )
        .prop_map(|(field, op, v, list, preds)| {
            let operand = match op {
                HistoryOp::Changed => None,
                HistoryOp::WasIn | HistoryOp::WasNotIn => Some(Operand::List(list)),
                _ => Some(v),
            };
            let predicates = preds
                .into_iter()
                .filter(|(p, ..)| {
                    op == HistoryOp::Changed
                        || !matches!(p, HistoryPredicate::From | HistoryPredicate::To)
                })
                .map(|(p, a, b)| match p {
                    HistoryPredicate::During => (p, Operand::List(vec![a, b])),
                    _ => (p, a),
                })
                .collect();
            Expr::History(HistoryClause {
                field,
                op,
                operand,
                predicates,
            })
        })
}

#[test]
fn history_clauses_parse() {
    let q = parse("status CHANGED FROM \"In Progress\" TO Done BY (a, b) AFTER -2d BEFORE now() DURING (\"2026-01-01\", \"2026-02-01\") ON 2026-01-15").unwrap();
    let Some(Expr::History(h)) = &q.clause else {
        panic!("expected a history clause: {q:?}")
    };
    assert_eq!(h.op, HistoryOp::Changed);
    assert_eq!(h.operand, None);
    let preds: Vec<HistoryPredicate> = h.predicates.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        preds,
        [
            HistoryPredicate::From,
            HistoryPredicate::To,
            HistoryPredicate::By,
            HistoryPredicate::After,
            HistoryPredicate::Before,
            HistoryPredicate::During,
            HistoryPredicate::On
        ]
    );
    let q = parse("assignee WAS NOT IN (a, EMPTY) BY currentUser() AND status was Done").unwrap();
    let Some(Expr::And(a, b)) = &q.clause else {
        panic!("expected AND")
    };
    assert!(
        matches!(&**a, Expr::History(h) if h.op == HistoryOp::WasNotIn && h.predicates.len() == 1)
    );
    assert!(matches!(&**b, Expr::History(h) if h.op == HistoryOp::Was));
    assert!(err("status WAS IN Done").contains("Expecting a list"));
    assert!(err("status WAS Done TO x").starts_with("Error in the JQL Query: "));
    assert!(err("status CHANGED DURING (a)").contains("DURING"));
    assert!(err("status CHANGED DURING now()").contains("Expecting '('"));
}

fn expr() -> impl Strategy<Value = Expr> {
    prop_oneof![3 => clause(), 1 => history_clause()].prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let dir = prop_oneof![
        Just(None),
        Just(Some(Direction::Asc)),
        Just(Some(Direction::Desc))
    ];
    (
        proptest::option::of(expr()),
        proptest::collection::vec(
            (field(), dir).prop_map(|(field, direction)| OrderItem { field, direction }),
            0..3,
        ),
    )
        .prop_map(|(clause, order_by)| Query { clause, order_by })
}

proptest! {
    #[test]
    fn printed_query_parses_back_to_the_same_tree(q in query()) {
        let text = q.to_string();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, q);
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,60}") {
        let _ = parse(&s);
    }

    #[test]
    fn jql_looking_input_never_panics(s in "[a-z =!<>~()\",'&|-]{0,60}") {
        let _ = parse(&s);
    }
}

#[test]
fn webhook_subset_accepts_only_the_documented_clauses() {
    let ok = parse("project = A AND issuetype IN (Bug, Story) OR status != Done AND assignee NOT IN (x) AND issueKey = A-1 AND cf[10014] = e AND issue.property[p].k = v").unwrap();
    assert!(webhook::subset_errors(&ok).is_empty());
    let bad = parse("summary ~ x AND project > A AND NOT status = Done ORDER BY key").unwrap();
    assert_eq!(
        webhook::subset_errors(&bad),
        vec![
            "The ORDER BY clause is unsupported".to_string(),
            "The clause summary is unsupported".to_string(),
            "The operator > is unsupported".to_string(),
            "The operator NOT is unsupported".to_string(),
        ]
    );
}

#[test]
fn symbolic_operators_and_case_insensitive_keywords() {
    let a = parse("project = A && status = B || !type = C").unwrap();
    let b = parse("project = A and STATUS = B Or not type = C").unwrap();
    assert!(a.clause.is_some());
    assert_eq!(a.to_string(), b.to_string().replace("STATUS", "status"));
}

fn seeded_world() -> &'static crate::model::World {
    static WORLD: std::sync::OnceLock<crate::model::World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let config = crate::SimConfig {
            issues: 20,
            ..crate::SimConfig::default()
        };
        crate::seed::seed_world(&config, chrono::Utc::now())
    })
}

fn jql_text() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("project"),
        Just("key"),
        Just("status"),
        Just("statusCategory"),
        Just("sprint"),
        Just("assignee"),
        Just("labels"),
        Just("summary"),
        Just("updated"),
        Just("created"),
        Just("priority"),
        Just("issuetype"),
        Just("\"Story Points\""),
        Just("cf[10016]"),
        Just("rank"),
        Just("text"),
        Just("description"),
        Just("resolution"),
        Just("resolved"),
        Just("parent"),
        Just("reporter"),
        Just("nope")
    ];
    let op = prop_oneof![
        Just("="),
        Just("!="),
        Just(">"),
        Just("<="),
        Just("~"),
        Just("in"),
        Just("not in"),
        Just("is"),
        Just("is not")
    ];
    let value = prop_oneof![
        Just("EMPTY".to_string()),
        Just("openSprints()".to_string()),
        Just("currentUser()".to_string()),
        Just("-1d".to_string()),
        Just("\"2026-01-01 10:00\"".to_string()),
        Just("Done".to_string()),
        Just("(\"To Do\", Done)".to_string()),
        Just("now()".to_string()),
        "[A-Z]{2,4}-[0-9]{1,3}",
        "[a-z0-9 ]{0,8}".prop_map(|s| format!("\"{s}\"")),
    ];
    let plain = (field, op, value.clone()).prop_map(|(f, o, v)| format!("{f} {o} {v}"));
    let history_field = prop_oneof![
        Just("status"),
        Just("assignee"),
        Just("priority"),
        Just("resolution"),
        Just("reporter"),
        Just("summary"),
        Just("nope")
    ];
    let history_op = prop_oneof![
        Just("WAS"),
        Just("WAS NOT"),
        Just("WAS IN"),
        Just("CHANGED"),
        Just("CHANGED FROM")
    ];
    let history_pred = prop_oneof![
        Just(""),
        Just(" BY currentUser()"),
        Just(" AFTER -10d"),
        Just(" BEFORE now()"),
        Just(" ON 2026-01-01"),
        Just(" DURING (-30d, -1d)"),
        Just(" TO Done")
    ];
    let history = (history_field, history_op, value, history_pred)
        .prop_map(|(f, o, v, p)| format!("{f} {o} {v}{p}"));
    let clause = prop_oneof![3 => plain, 1 => history];
    (
        proptest::collection::vec(clause, 1..4),
        prop_oneof![Just(" AND "), Just(" OR ")],
        proptest::option::of(Just(" ORDER BY rank, updated DESC")),
    )
        .prop_map(|(clauses, join, order)| clauses.join(join) + order.unwrap_or(""))
}

proptest! {
    #[test]
    fn evaluating_any_query_never_panics(text in jql_text()) {
        let world = seeded_world();
        let site = &world.sites[0];
        if let Ok(q) = parse(&text) {
            for strict in [true, false] {
                let ctx = EvalCtx { site, users: &world.users, now: chrono::Utc::now(), current_user: world.users.first().map(|u| u.account_id.as_str()), strict };
                if let Ok(c) = Compiled::new(&q, &ctx) {
                    let mut hits: Vec<&crate::model::Issue> = site.issues.values().filter(|i| c.matches(i, site)).collect();
                    c.sort_prefix(&mut hits, site, 5);
                    prop_assert!(hits.len() <= 5);
                }
            }
        }
    }
}

#[test]
fn sort_prefix_agrees_with_a_full_sort() {
    let world = seeded_world();
    let site = &world.sites[0];
    let q = parse("project is not EMPTY ORDER BY status, updated DESC").unwrap();
    let ctx = EvalCtx {
        site,
        users: &world.users,
        now: chrono::Utc::now(),
        current_user: None,
        strict: false,
    };
    let c = Compiled::new(&q, &ctx).unwrap();
    let mut all: Vec<&crate::model::Issue> = site.issues.values().collect();
    c.sort(&mut all, site);
    for end in [0, 1, 7, 30, 10_000] {
        let mut part: Vec<&crate::model::Issue> = site.issues.values().collect();
        c.sort_prefix(&mut part, site, end);
        let want: Vec<u64> = all.iter().take(end).map(|i| i.id).collect();
        let got: Vec<u64> = part.iter().map(|i| i.id).collect();
        assert_eq!(got, want, "end = {end}");
    }
}

/// Found by `fuzz/fuzz_targets/jql.rs`: 8 KB of `!` overflowed the stack.
#[test]
fn nesting_is_bounded_and_long_chains_print_flat() {
    let deep = format!("{}a = b", "!".repeat(8000));
    assert_eq!(
        err(&deep),
        "Error in the JQL Query: The query nests 'NOT' and parentheses more than 100 levels deep. (line 1, character 101)"
    );
    let deep = format!("{}a = b{}", "(".repeat(101), ")".repeat(101));
    assert!(
        err(&deep).contains("more than 100 levels deep"),
        "{}",
        err(&deep)
    );
    // Exactly the bound still parses, and prints back to the same tree.
    for q in [
        format!("{}a = b", "NOT ".repeat(ast::MAX_NESTING)),
        format!(
            "{}a = b{}",
            "(".repeat(ast::MAX_NESTING),
            ")".repeat(ast::MAX_NESTING)
        ),
        format!("{}a = b{}", "NOT (a = b OR ".repeat(50), ")".repeat(50)),
    ] {
        let tree = parse(&q).unwrap();
        assert_eq!(parse(&tree.to_string()).unwrap(), tree);
    }
    // A chain is no nesting: 2,000 clauses parse, and print without parentheses.
    let chain = vec!["a = b"; 2000].join(" OR ");
    let tree = parse(&chain).unwrap();
    let printed = tree.to_string();
    assert!(!printed.contains('('), "{}", &printed[..80]);
    assert_eq!(parse(&printed).unwrap(), tree);
}
