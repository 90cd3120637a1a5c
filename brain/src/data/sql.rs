//! The SQL allowlist: which statements may reach polars' SQL engine.
//!
//! The text is parsed with the parser (and options) polars-sql itself uses, and the syntax tree
//! is checked against an allowlist: exactly one statement, a query, built only from `SELECT`,
//! set operations (`UNION`, …), `VALUES` and subqueries, reading only plain table names (which
//! must then resolve to datasets the caller may read) or CTEs defined in the query. Everything
//! else is refused by what it *is*, never by matching strings: DDL and DML (`CREATE TABLE`,
//! `INSERT`, `DROP`, `TRUNCATE`, …), `EXPLAIN`/`SHOW`, `SELECT … INTO`, table functions such as
//! `read_csv('…')`/`read_parquet('…')` (which would read the server's files), and any
//! `FROM` item other than a table, a subquery or a parenthesised join.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use polars::prelude::PolarsError;
use sqlparser::ast::{
    BinaryOperator, Expr, Query, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserOptions};
use sqlparser::tokenizer::{Token, Tokenizer};

/// A statement that passed the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedQuery {
    /// Table names the query reads (CTE names excluded); each must be a dataset the caller may
    /// read.
    pub tables: BTreeSet<String>,
}

/// Why a statement was refused. `Display` is the message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlRefusal {
    #[error("SQL syntax error: {0}")]
    Syntax(String),
    #[error("exactly one SQL statement is allowed, found {0}")]
    StatementCount(usize),
    #[error("only a read-only SELECT query is allowed, not {0}")]
    NotAQuery(String),
    #[error("only SELECT, set operations, VALUES and subqueries are allowed, not {0}")]
    Forbidden(&'static str),
    #[error("table functions such as `{0}(…)` are not allowed; query datasets by name")]
    TableFunction(String),
    #[error("`{0}` is not a plain dataset name (use the dataset's name, without a schema)")]
    QualifiedName(String),
    #[error(
        "the query is too complex: at most {MAX_SQL_OPERATORS} operators and parentheses \
         nested at most {MAX_SQL_NESTING} deep"
    )]
    TooComplex,
}

/// Most operators (`AND`, `OR`, `+`, `=`, …) in one query, and deepest parenthesis nesting.
/// sqlparser turns `a OR b OR …` into a tree as deep as the chain is long, and it, the
/// allowlist's visitor and polars' planner all walk that tree recursively: a chain of 100,000
/// would overflow the stack of the thread running it. Counted on tokens, without recursion.
const MAX_SQL_OPERATORS: usize = 512;
const MAX_SQL_NESTING: usize = 32;

fn check_complexity(sql: &str) -> Result<(), SqlRefusal> {
    let tokens = Tokenizer::new(&GenericDialect, sql)
        .tokenize()
        .map_err(|error| SqlRefusal::Syntax(error.to_string()))?;
    let (mut operators, mut depth) = (0usize, 0usize);
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                if depth > MAX_SQL_NESTING {
                    return Err(SqlRefusal::TooComplex);
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Word(word)
                if matches!(
                    word.keyword,
                    sqlparser::keywords::Keyword::AND
                        | sqlparser::keywords::Keyword::OR
                        | sqlparser::keywords::Keyword::NOT
                        | sqlparser::keywords::Keyword::WHEN
                ) =>
            {
                operators += 1;
            }
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret => operators += 1,
            _ => {}
        }
        if operators > MAX_SQL_OPERATORS {
            return Err(SqlRefusal::TooComplex);
        }
    }
    Ok(())
}

/// Parses `sql` with the dialect and options of `polars_sql::SQLContext::execute`, so what is
/// approved (and rewritten, `super::sql_dates`) here is exactly what polars will run.
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlRefusal> {
    check_complexity(sql)?;
    Parser::new(&GenericDialect)
        .with_options(ParserOptions {
            trailing_commas: true,
            ..Default::default()
        })
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|error| SqlRefusal::Syntax(error.to_string()))
}

/// Statements back to one SQL text (what a rewrite of the parsed query hands to polars).
pub fn render(statements: &[Statement]) -> String {
    statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses `sql` like polars-sql does and checks it against the allowlist.
pub fn approve(sql: &str) -> Result<ApprovedQuery, SqlRefusal> {
    let statements = parse(sql)?;
    let [statement] = statements.as_slice() else {
        return Err(SqlRefusal::StatementCount(statements.len()));
    };
    let Statement::Query(_) = statement else {
        return Err(SqlRefusal::NotAQuery(statement_kind(statement)));
    };
    let mut checker = Checker::default();
    if let ControlFlow::Break(refusal) = statement.visit(&mut checker) {
        return Err(refusal);
    }
    let tables = checker.tables.difference(&checker.ctes).cloned().collect();
    Ok(ApprovedQuery { tables })
}

/// A condition of a query that keeps rows by a word written into it: `region = 'north'`,
/// `region <> 'north'`, `city IN ('Berlin', 'Munich')`, `name LIKE 'dairy%'` (anywhere in the
/// query: `WHERE`, `HAVING`, `JOIN … ON`, `CASE WHEN`). What the grounding check compares with
/// the question (`crate::agent::grounding`, "Conditions the question did not ask for").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordCondition {
    /// The condition as SQL (`region = 'north'`).
    pub condition: String,
    /// The words it compares with: each string literal that starts with a letter (dates,
    /// times and numbers written as strings — `'2025-03-01'`, `'03'` — are not words), a
    /// `LIKE` pattern split at its wildcards.
    pub words: Vec<String>,
}

/// The [`WordCondition`]s of `sql`, in order; none when it does not parse.
pub fn word_conditions(sql: &str) -> Vec<WordCondition> {
    let Ok(statements) = parse(sql) else {
        return Vec::new();
    };
    let mut collector = WordConditions::default();
    for statement in &statements {
        // The visitor never breaks.
        let _ = statement.visit(&mut collector);
    }
    collector.found
}

#[derive(Default)]
struct WordConditions {
    found: Vec<WordCondition>,
}

impl WordConditions {
    fn push(&mut self, condition: &Expr, words: Vec<String>) {
        if !words.is_empty() {
            self.found.push(WordCondition {
                condition: condition.to_string(),
                words,
            });
        }
    }
}

impl Visitor for WordConditions {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq | BinaryOperator::NotEq,
                right,
            } => {
                self.push(expr, literal_words([&**left, &**right]));
            }
            Expr::InList { list, .. } => self.push(expr, literal_words(list)),
            Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } => {
                let words = string_literal(pattern)
                    .map(|pattern| {
                        pattern
                            .split(['%', '_'])
                            .map(str::trim)
                            .filter(|part| is_word(part))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                self.push(expr, words);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The string literals among `exprs` that are words ([`is_word`]).
fn literal_words<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Vec<String> {
    exprs
        .into_iter()
        .filter_map(string_literal)
        .filter(|text| is_word(text))
        .collect()
}

/// The text of a string literal (also in parentheses).
fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => value.value.clone().into_string(),
        Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

/// Whether a literal is a word a question would name: it starts with a letter.
fn is_word(text: &str) -> bool {
    text.trim_start()
        .chars()
        .next()
        .is_some_and(char::is_alphabetic)
}

/// Longest error message a query answers with (longer ones are cut at a word).
const MAX_ERROR_CHARS: usize = 300;

/// A polars error of planning or running a query, as the one line a client (or a model) reads:
/// `query error: <what went wrong>`. Never polars' plan dump: only the first line of its
/// message, with date errors explained (`super::sql_dates::explain`) and unsupported functions
/// named.
pub fn query_error_message(error: &PolarsError) -> String {
    let text = match error {
        // `Context` wraps the real error in plan details.
        PolarsError::Context { error, .. } => return query_error_message(error),
        other => other.to_string(),
    };
    let text = text
        .split("Resolved plan until failure")
        .next()
        .unwrap_or_default();
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("the query failed")
        .trim_end_matches(':');
    let message = if let Some(explained) = super::sql_dates::explain(first) {
        explained
    } else if let Some(name) = first
        .strip_prefix("unsupported function '")
        .and_then(|rest| rest.strip_suffix('\''))
    {
        format!(
            "`{}()` is not supported by the SQL engine (README \"SQL\" lists what is)",
            name.to_ascii_uppercase()
        )
    } else {
        first.to_owned()
    };
    let mut message: String = message.chars().take(MAX_ERROR_CHARS).collect();
    if message.chars().count() == MAX_ERROR_CHARS {
        if let Some(cut) = message.rfind(' ') {
            message.truncate(cut);
        }
        message.push('…');
    }
    format!("query error: {message}")
}

/// The leading keywords of a refused statement, for the message (`CREATE TABLE`, `INSERT`, …).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let kind = match words.as_slice() {
        [first, second]
            if matches!(
                second.to_ascii_uppercase().as_str(),
                "TABLE" | "VIEW" | "INDEX" | "SCHEMA" | "DATABASE" | "TABLES" | "FUNCTION"
            ) =>
        {
            format!("{first} {second}")
        }
        [first, ..] => (*first).to_owned(),
        [] => String::from("an empty statement"),
    };
    kind.to_ascii_uppercase()
}

#[derive(Debug, Default)]
struct Checker {
    tables: BTreeSet<String>,
    ctes: BTreeSet<String>,
}

impl Checker {
    fn check_body(body: &SetExpr) -> ControlFlow<SqlRefusal> {
        match body {
            SetExpr::Select(select) => {
                if select.into.is_some() {
                    return ControlFlow::Break(SqlRefusal::Forbidden("SELECT … INTO"));
                }
                ControlFlow::Continue(())
            }
            // Nested queries are visited (and checked) on their own.
            SetExpr::Query(_) | SetExpr::Values(_) => ControlFlow::Continue(()),
            SetExpr::SetOperation { left, right, .. } => {
                Self::check_body(left)?;
                Self::check_body(right)
            }
            SetExpr::Insert(_) => ControlFlow::Break(SqlRefusal::Forbidden("INSERT")),
            SetExpr::Update(_) => ControlFlow::Break(SqlRefusal::Forbidden("UPDATE")),
            SetExpr::Delete(_) => ControlFlow::Break(SqlRefusal::Forbidden("DELETE")),
            SetExpr::Merge(_) => ControlFlow::Break(SqlRefusal::Forbidden("MERGE")),
            SetExpr::Table(_) => ControlFlow::Break(SqlRefusal::Forbidden("TABLE statements")),
        }
    }
}

impl Visitor for Checker {
    type Break = SqlRefusal;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<SqlRefusal> {
        if !query.locks.is_empty() {
            return ControlFlow::Break(SqlRefusal::Forbidden("locking clauses (FOR UPDATE)"));
        }
        if query.for_clause.is_some() || query.format_clause.is_some() {
            return ControlFlow::Break(SqlRefusal::Forbidden("FOR/FORMAT clauses"));
        }
        if query.settings.is_some() {
            return ControlFlow::Break(SqlRefusal::Forbidden("SETTINGS"));
        }
        if !query.pipe_operators.is_empty() {
            return ControlFlow::Break(SqlRefusal::Forbidden("pipe operators"));
        }
        if let Some(with) = &query.with {
            if with.recursive {
                return ControlFlow::Break(SqlRefusal::Forbidden("recursive CTEs"));
            }
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.clone());
            }
        }
        Self::check_body(&query.body)
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<SqlRefusal> {
        match factor {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    return ControlFlow::Break(SqlRefusal::TableFunction(name.to_string()));
                }
                let parts: Vec<_> = name.0.iter().map(|part| part.as_ident()).collect();
                match parts.as_slice() {
                    [Some(ident)] => {
                        self.tables.insert(ident.value.clone());
                        ControlFlow::Continue(())
                    }
                    _ => ControlFlow::Break(SqlRefusal::QualifiedName(name.to_string())),
                }
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            TableFactor::TableFunction { expr, .. } => {
                ControlFlow::Break(SqlRefusal::TableFunction(expr.to_string()))
            }
            TableFactor::Function { name, .. } => {
                ControlFlow::Break(SqlRefusal::TableFunction(name.to_string()))
            }
            _ => ControlFlow::Break(SqlRefusal::Forbidden(
                "FROM items other than dataset names, subqueries and joins",
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        approve(sql)
            .unwrap_or_else(|refusal| panic!("{sql}: {refusal}"))
            .tables
            .into_iter()
            .collect()
    }

    #[test]
    fn operator_chains_and_nesting_are_bounded_before_parsing() {
        let chain = |n: usize| format!("SELECT * FROM t WHERE {}", vec!["a = 1"; n].join(" OR "));
        // 100,000 ORs would make a tree 100,000 deep; refused from the tokens.
        assert_eq!(approve(&chain(100_000)), Err(SqlRefusal::TooComplex));
        assert_eq!(tables(&chain(200)), ["t"]);
        let nested = format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(approve(&nested), Err(SqlRefusal::TooComplex));
    }

    #[test]
    fn selects_with_ctes_joins_windows_and_aggregates_pass() {
        assert_eq!(tables("SELECT * FROM sales"), ["sales"]);
        assert_eq!(
            tables(
                "WITH big AS (SELECT store_id, SUM(qty) AS q FROM sales GROUP BY store_id) \
                 SELECT s.city, b.q, RANK() OVER (PARTITION BY s.region ORDER BY b.q DESC) \
                 FROM big b JOIN stores s ON s.store_id = b.store_id WHERE b.q > 3 ORDER BY 2"
            ),
            ["sales", "stores"]
        );
        assert_eq!(
            tables("SELECT a FROM x UNION ALL SELECT a FROM (SELECT a FROM y) t"),
            ["x", "y"]
        );
        assert_eq!(
            tables("SELECT * FROM x WHERE a IN (SELECT a FROM y)"),
            ["x", "y"]
        );
        assert!(tables("SELECT 1 + 1").is_empty());
    }

    #[test]
    fn everything_that_is_not_a_single_select_is_refused() {
        let refused = [
            ("CREATE TABLE t AS SELECT * FROM sales", "CREATE TABLE"),
            ("DROP TABLE sales", "DROP TABLE"),
            ("INSERT INTO sales VALUES (1)", "INSERT"),
            ("UPDATE sales SET a = 1", "UPDATE"),
            ("DELETE FROM sales", "DELETE"),
            ("TRUNCATE TABLE sales", "TRUNCATE"),
            ("SHOW TABLES", "SHOW"),
            ("EXPLAIN SELECT * FROM sales", "EXPLAIN"),
        ];
        for (sql, kind) in refused {
            match approve(sql) {
                Err(SqlRefusal::NotAQuery(found)) => {
                    assert!(found.contains(kind), "{sql}: {found}")
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert_eq!(
            approve("SELECT 1; SELECT 2"),
            Err(SqlRefusal::StatementCount(2))
        );
        assert_eq!(approve(""), Err(SqlRefusal::StatementCount(0)));
        assert!(matches!(
            approve("SELECT * INTO copy FROM sales"),
            Err(SqlRefusal::Forbidden(_))
        ));
        assert!(matches!(approve("SELEC 1"), Err(SqlRefusal::Syntax(_))));
    }

    #[test]
    fn file_reading_table_functions_are_refused_wherever_they_hide() {
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_parquet('/data/x.parquet')",
            "SELECT * FROM sales WHERE a IN (SELECT a FROM read_json('x'))",
            "WITH t AS (SELECT * FROM read_ipc('x')) SELECT * FROM t",
            "SELECT * FROM sales JOIN read_csv('x') r ON true",
        ] {
            assert!(
                matches!(approve(sql), Err(SqlRefusal::TableFunction(_))),
                "{sql}: {:?}",
                approve(sql)
            );
        }
        assert!(matches!(
            approve("SELECT * FROM other_schema.sales"),
            Err(SqlRefusal::QualifiedName(_))
        ));
    }

    #[test]
    fn polars_errors_become_one_line_with_one_prefix() {
        use polars::prelude::polars_err;
        let plan_dump = polars_err!(
            ComputeError: "cannot compare 'date/datetime/time' to a string value\n\nResolved plan until failure:\n\n\t---> FAILED HERE RESOLVING 'select' <---\nFILTER col(\"ts\") >= \"x\""
        );
        let message = query_error_message(&plan_dump);
        assert!(
            message.starts_with("query error: a date/time is compared"),
            "{message}"
        );
        assert!(
            !message.contains('\n') && !message.contains("FILTER"),
            "{message}"
        );
        let unsupported = polars_err!(SQLInterface: "unsupported function 'last_day'");
        assert_eq!(
            query_error_message(&unsupported),
            "query error: `LAST_DAY()` is not supported by the SQL engine (README \"SQL\" lists what is)"
        );
        let wrapped =
            polars_err!(ColumnNotFound: "unable to find column \"nope\"; valid columns: [\"a\"]")
                .context("in select".into());
        let message = query_error_message(&wrapped);
        assert!(
            message.starts_with("query error: ") && message.contains("nope"),
            "{message}"
        );
        let long = polars_err!(ComputeError: "{}", "word ".repeat(200));
        let message = query_error_message(&long);
        assert!(message.chars().count() <= MAX_ERROR_CHARS + "query error: ".len() + 1);
        assert!(message.ends_with('…'), "{message}");
    }

    #[test]
    fn cte_names_are_not_dataset_references() {
        assert_eq!(
            tables("WITH t AS (SELECT * FROM sales) SELECT * FROM t"),
            ["sales"]
        );
    }

    fn word_conditions_of(sql: &str) -> Vec<(String, Vec<String>)> {
        word_conditions(sql)
            .into_iter()
            .map(|found| (found.condition, found.words))
            .collect()
    }

    #[test]
    fn word_conditions_are_found_wherever_a_query_compares_with_a_word() {
        let found = word_conditions_of(
            "SELECT s.city, SUM(CASE WHEN p.category = 'dairy' THEN 1 ELSE 0 END) AS n \
             FROM transactions t JOIN stores s ON t.store_id = s.store_id AND s.region <> 'north' \
             JOIN products p ON p.product_id = t.product_id \
             WHERE s.city IN ('Berlin', 'Munich', '2025') AND p.name LIKE 'dairy%' \
             GROUP BY s.city HAVING MAX(p.category) = 'bakery'",
        );
        let words: Vec<&str> = found
            .iter()
            .flat_map(|(_, words)| words.iter().map(String::as_str))
            .collect();
        assert_eq!(
            words,
            ["dairy", "north", "Berlin", "Munich", "dairy", "bakery"]
        );
        assert!(
            found
                .iter()
                .any(|(condition, _)| condition == "s.region <> 'north'")
        );
    }

    #[test]
    fn dates_numbers_and_column_comparisons_are_not_word_conditions() {
        assert!(
            word_conditions_of(
                "SELECT COUNT(*) FROM transactions WHERE ts >= '2025-03-01' \
                 AND strftime(ts, '%m') = '03' AND store_id = 7 AND promotion = true \
                 AND store_id = product_id AND ts < '2025-04-01T00:00:00'"
            )
            .is_empty()
        );
        // Unparsable text has none (the query could not have run).
        assert!(word_conditions_of("SELECT FROM WHERE region = 'north' (((").is_empty());
    }

    #[test]
    fn a_like_pattern_is_split_at_its_wildcards() {
        assert_eq!(
            word_conditions_of("SELECT * FROM products WHERE name ILIKE '%ice_cream%'"),
            [(
                "name ILIKE '%ice_cream%'".to_owned(),
                vec!["ice".to_owned(), "cream".to_owned()]
            )]
        );
    }
}
