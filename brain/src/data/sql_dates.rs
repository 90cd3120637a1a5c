//! SQL date idioms: the date and time constructs people (and models) write in other SQL
//! dialects, rewritten into what polars-sql runs, or refused in one line naming the construct.
//!
//! [`rewrite`] works on the syntax tree of a query the allowlist approved (`super::sql`) and
//! knows which columns of the queried datasets are dates or datetimes. What it does:
//! - `DATE_TRUNC('year' | 'quarter' | 'month' | 'week' | 'day' | 'hour' | 'minute' | 'second',
//!   x)` → the first instant of that period, from `STRFTIME`/`DATE`/`TIMESTAMP` (a date for
//!   year to day, a datetime for hour to second; weeks start on Monday, ISO 8601);
//! - MySQL-style `YEAR(x)`, `QUARTER(x)`, `MONTH(x)`, `WEEK(x)`, `DAY(x)`, `DAYOFWEEK(x)`,
//!   `DAYOFYEAR(x)`, `HOUR(x)`, `MINUTE(x)`, `SECOND(x)` → `EXTRACT(… FROM x)`;
//! - `DATE(x)` of a date/datetime → `CAST(x AS DATE)` (polars' `DATE` parses strings only);
//! - a string compared with a date/datetime (`=`, `<>`, `<`, `<=`, `>`, `>=`, `BETWEEN`, `IN`):
//!   `'2025-03-01'`, `'2025/03/01'`, `'2025-03-01 10:30'`, `'2025-03-01T10:30:00Z'` become typed
//!   values (`DATE('…')` / `TIMESTAMP '…'`); `'2025-03'` and `'2025'` compare with the month's or
//!   year's first day (`=`/`<>` compare the month or year itself, via `STRFTIME`); anything
//!   else (`'March 2025'`, `'03/01/2025'`, an offset other than UTC) is refused;
//! - `CAST('2025-03-01' AS TIMESTAMP)` → `TIMESTAMP '2025-03-01 00:00:00'`.
//!
//! Refused with a message naming the construct and what to write instead: the clock
//! (`NOW()`, `CURRENT_DATE`, …: the data is historical and answers must not depend on when they
//! ran) and other dialects' date arithmetic (`DATEADD`, `DATEDIFF`, `TO_CHAR`, …).
//! `CAST(x AS DATE|TIMESTAMP)`, `DATE '…'`, `TIMESTAMP '…'`, `EXTRACT`, `DATE_PART`,
//! `STRFTIME` and `INTERVAL` arithmetic polars-sql runs itself.
//!
//! [`explain`] turns polars' date-related planning errors into one line; everything else about
//! query error messages is in `super::sql::query_error`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use polars::prelude::{DataType as PolarsType, Schema};
use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::sql::{approve, parse, render};

/// What kind of time a column or expression holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporal {
    Date,
    Datetime,
}

/// The date and datetime columns of the tables a query reads, by column name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemporalColumns(BTreeMap<String, Temporal>);

impl TemporalColumns {
    /// From the tables' schemas. A name that is a date in one table and a datetime in another
    /// counts as a datetime (its strings then compare at midnight either way).
    pub fn of<'a>(schemas: impl IntoIterator<Item = &'a Schema>) -> Self {
        let mut columns = BTreeMap::new();
        for schema in schemas {
            for (name, dtype) in schema.iter() {
                let kind = match dtype {
                    PolarsType::Date => Temporal::Date,
                    PolarsType::Datetime(..) => Temporal::Datetime,
                    _ => continue,
                };
                columns
                    .entry(name.to_string())
                    .and_modify(|known: &mut Temporal| {
                        if kind == Temporal::Datetime {
                            *known = Temporal::Datetime;
                        }
                    })
                    .or_insert(kind);
            }
        }
        Self(columns)
    }

    fn get(&self, name: &str) -> Option<Temporal> {
        self.0.get(name).copied()
    }
}

/// A date idiom refused; `Display` is the one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdiomRefusal(pub String);

/// The query to plan: `sql` itself when no idiom needed rewriting, else the rewritten text.
pub fn rewrite<'a>(sql: &'a str, columns: &TemporalColumns) -> Result<Cow<'a, str>, IdiomRefusal> {
    // The text was approved, so it parses; a failure here is left for the planner to report.
    let Ok(mut statements) = parse(sql) else {
        return Ok(Cow::Borrowed(sql));
    };
    let mut rewriter = Rewriter {
        columns,
        changed: false,
    };
    for statement in &mut statements {
        if let ControlFlow::Break(refusal) = statement.visit(&mut rewriter) {
            return Err(refusal);
        }
    }
    if !rewriter.changed {
        return Ok(Cow::Borrowed(sql));
    }
    let text = render(&statements);
    // Rewrites only replace expressions; the rewritten query must read what the approved one did.
    let tables = |text: &str| approve(text).ok().map(|approved| approved.tables);
    if tables(&text).is_none() || tables(&text) != tables(sql) {
        return Err(IdiomRefusal(
            "the date expressions of this query cannot be rewritten; write them with CAST, \
             EXTRACT or STRFTIME"
                .to_owned(),
        ));
    }
    Ok(Cow::Owned(text))
}

/// A one-line message for a date-related polars error, if `message` is one.
pub fn explain(message: &str) -> Option<String> {
    if message.contains("cannot compare 'date/datetime/time' to a string value") {
        return Some(
            "a date/time is compared with a string that is not a date: write dates as \
             'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'"
                .to_owned(),
        );
    }
    if message.starts_with("conversion from `str` to `date")
        || message.starts_with("conversion from `str` to `datetime")
    {
        let value = message
            .split_once("values: [")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(values, _)| values.trim().to_owned())
            .unwrap_or_default();
        return Some(format!(
            "{value} is not a date/time the engine reads: write 'YYYY-MM-DD' or \
             'YYYY-MM-DD HH:MM:SS'"
        ));
    }
    None
}

struct Rewriter<'a> {
    columns: &'a TemporalColumns,
    changed: bool,
}

fn refuse<T>(message: String) -> ControlFlow<IdiomRefusal, T> {
    ControlFlow::Break(IdiomRefusal(message))
}

/// Parses an expression the rewriter builds (always valid SQL).
fn expression(text: &str) -> ControlFlow<IdiomRefusal, Expr> {
    match Parser::new(&GenericDialect)
        .try_with_sql(text)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(expr) => ControlFlow::Continue(expr),
        Err(error) => refuse(format!("cannot rewrite a date expression: {error}")),
    }
}

/// The plain arguments of a function call (`None` if any is named, a wildcard or a subquery).
fn arguments(function: &sqlparser::ast::Function) -> Option<Vec<&Expr>> {
    match &function.args {
        FunctionArguments::None => Some(Vec::new()),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
                _ => None,
            })
            .collect(),
        FunctionArguments::Subquery(_) => None,
    }
}

fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) => Some(text),
            _ => None,
        },
        Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Functions of the clock: refused.
const CLOCK: [&str; 9] = [
    "now",
    "current_date",
    "current_timestamp",
    "current_time",
    "localtimestamp",
    "localtime",
    "getdate",
    "sysdate",
    "today",
];

/// Other dialects' date functions, refused with what to write instead.
const FOREIGN: [(&str, &str); 14] = [
    ("dateadd", "add an INTERVAL, e.g. x + INTERVAL '7 days'"),
    ("date_add", "add an INTERVAL, e.g. x + INTERVAL '7 days'"),
    (
        "date_sub",
        "subtract an INTERVAL, e.g. x - INTERVAL '7 days'",
    ),
    ("adddate", "add an INTERVAL, e.g. x + INTERVAL '7 days'"),
    (
        "subdate",
        "subtract an INTERVAL, e.g. x - INTERVAL '7 days'",
    ),
    ("add_months", "add an INTERVAL, e.g. x + INTERVAL '1 month'"),
    (
        "datediff",
        "subtract the two dates, e.g. CAST(b AS DATE) - CAST(a AS DATE)",
    ),
    (
        "date_diff",
        "subtract the two dates, e.g. CAST(b AS DATE) - CAST(a AS DATE)",
    ),
    ("timestampdiff", "subtract the two timestamps"),
    ("to_char", "use STRFTIME(x, '%Y-%m')"),
    ("date_format", "use STRFTIME(x, '%Y-%m')"),
    ("format_date", "use STRFTIME(x, '%Y-%m')"),
    (
        "to_date",
        "compare with DATE 'YYYY-MM-DD', or parse with STRPTIME(x, '%d.%m.%Y')",
    ),
    (
        "to_timestamp",
        "write TIMESTAMP 'YYYY-MM-DD HH:MM:SS', or parse with STRPTIME",
    ),
];

/// MySQL-style field functions → `EXTRACT` (`{x}` is the argument). MySQL's `DAYOFWEEK`
/// counts Sunday as 1, `EXTRACT(DOW …)` as 0.
const FIELDS: [(&str, &str); 11] = [
    ("year", "EXTRACT(YEAR FROM {x})"),
    ("quarter", "EXTRACT(QUARTER FROM {x})"),
    ("month", "EXTRACT(MONTH FROM {x})"),
    ("week", "EXTRACT(WEEK FROM {x})"),
    ("day", "EXTRACT(DAY FROM {x})"),
    ("dayofmonth", "EXTRACT(DAY FROM {x})"),
    ("dayofweek", "(EXTRACT(DOW FROM {x}) + 1)"),
    ("dayofyear", "EXTRACT(DOY FROM {x})"),
    ("hour", "EXTRACT(HOUR FROM {x})"),
    ("minute", "EXTRACT(MINUTE FROM {x})"),
    ("second", "EXTRACT(SECOND FROM {x})"),
];

impl Rewriter<'_> {
    /// The kind of time `expr` holds, when it visibly holds one.
    fn temporal(&self, expr: &Expr) -> Option<Temporal> {
        match expr {
            Expr::Identifier(ident) => self.columns.get(&ident.value),
            Expr::CompoundIdentifier(parts) => parts
                .last()
                .and_then(|ident| self.columns.get(&ident.value)),
            Expr::Nested(inner) => self.temporal(inner),
            Expr::Cast { data_type, .. } => data_type_kind(data_type),
            Expr::TypedString(typed) => data_type_kind(&typed.data_type),
            Expr::Function(function) => {
                match function.name.to_string().to_ascii_lowercase().as_str() {
                    "date" => Some(Temporal::Date),
                    "timestamp" | "datetime" | "strptime" => Some(Temporal::Datetime),
                    _ => None,
                }
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Plus | BinaryOperator::Minus,
                right,
            } => match (left.as_ref(), right.as_ref()) {
                (time, Expr::Interval(_)) | (Expr::Interval(_), time) => self.temporal(time),
                _ => None,
            },
            _ => None,
        }
    }

    fn function(&mut self, expr: &mut Expr) -> ControlFlow<IdiomRefusal> {
        let Expr::Function(function) = &*expr else {
            return ControlFlow::Continue(());
        };
        let name = function.name.to_string().to_ascii_lowercase();
        let shown = name.to_ascii_uppercase();
        if CLOCK.contains(&name.as_str()) {
            return refuse(format!(
                "`{shown}` is not supported: a query cannot read the clock; write the date, \
                 e.g. DATE '2025-12-31'"
            ));
        }
        if let Some((_, instead)) = FOREIGN.iter().find(|(foreign, _)| *foreign == name) {
            return refuse(format!("`{shown}(…)` is not supported: {instead}"));
        }
        let Some(args) = arguments(function) else {
            return ControlFlow::Continue(());
        };
        let replacement = if name == "date_trunc" || name == "datetrunc" {
            let [unit, value] = args.as_slice() else {
                return refuse(
                    "`DATE_TRUNC` takes a unit and a date, e.g. DATE_TRUNC('month', ts)".to_owned(),
                );
            };
            let Some(unit) = string_literal(unit) else {
                return refuse(
                    "`DATE_TRUNC` needs the unit as a string, e.g. DATE_TRUNC('month', ts)"
                        .to_owned(),
                );
            };
            let x = value.to_string();
            let text = match unit.trim().to_ascii_lowercase().as_str() {
                "year" | "years" => format!("DATE(STRFTIME({x}, '%Y-01-01'))"),
                "quarter" | "quarters" => format!(
                    "DATE(CONCAT(STRFTIME({x}, '%Y-'), LPAD(CAST(EXTRACT(QUARTER FROM {x}) * 3 - 2 \
                     AS VARCHAR), 2, '0'), '-01'))"
                ),
                "month" | "months" => format!("DATE(STRFTIME({x}, '%Y-%m-01'))"),
                "week" | "weeks" => format!("DATE(STRFTIME({x}, '%G-W%V-1'), '%G-W%V-%u')"),
                "day" | "days" => format!("CAST({x} AS DATE)"),
                "hour" | "hours" => {
                    format!("TIMESTAMP(STRFTIME({x}, '%Y-%m-%d %H:00:00'), '%Y-%m-%d %H:%M:%S')")
                }
                "minute" | "minutes" => {
                    format!("TIMESTAMP(STRFTIME({x}, '%Y-%m-%d %H:%M:00'), '%Y-%m-%d %H:%M:%S')")
                }
                "second" | "seconds" => {
                    format!("TIMESTAMP(STRFTIME({x}, '%Y-%m-%d %H:%M:%S'), '%Y-%m-%d %H:%M:%S')")
                }
                other => {
                    return refuse(format!(
                        "`DATE_TRUNC('{other}', …)` is not supported: use year, quarter, month, \
                         week, day, hour, minute or second"
                    ));
                }
            };
            Some(text)
        } else if let Some((_, template)) = FIELDS.iter().find(|(function, _)| *function == name)
            && let [value] = args.as_slice()
        {
            Some(template.replace("{x}", &value.to_string()))
        } else if name == "date"
            && let [value] = args.as_slice()
            && self.temporal(value).is_some()
        {
            Some(format!("CAST({value} AS DATE)"))
        } else {
            None
        };
        if let Some(text) = replacement {
            *expr = expression(&text)?;
            self.changed = true;
        }
        ControlFlow::Continue(())
    }

    /// The typed value a string compared with a `kind` expression stands for.
    fn time_literal(
        &self,
        text: &str,
        kind: Temporal,
        context: &str,
    ) -> ControlFlow<IdiomRefusal, String> {
        match read_time(text) {
            Some(TimeText::Date(date)) => ControlFlow::Continue(match kind {
                Temporal::Date => format!("DATE({})", quoted(&date)),
                Temporal::Datetime => format!("TIMESTAMP {}", quoted(&format!("{date} 00:00:00"))),
            }),
            Some(TimeText::Datetime(datetime)) => {
                ControlFlow::Continue(format!("TIMESTAMP {}", quoted(&datetime)))
            }
            Some(TimeText::Offset) => refuse(format!(
                "the timestamp {} has a time zone offset: write it in UTC, e.g. \
                 '2025-03-01 10:30:00'",
                quoted(text)
            )),
            Some(TimeText::Month(..) | TimeText::Year(..)) | None => refuse(format!(
                "cannot compare the date/time {context} with {}: write dates as 'YYYY-MM-DD' \
                 or 'YYYY-MM-DD HH:MM:SS'",
                quoted(text)
            )),
        }
    }

    /// Rewrites a string operand compared with a date/time.
    fn compared(&mut self, expr: &mut Expr) -> ControlFlow<IdiomRefusal> {
        match expr {
            Expr::BinaryOp { left, op, right }
                if matches!(
                    op,
                    BinaryOperator::Eq
                        | BinaryOperator::NotEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                        | BinaryOperator::Gt
                        | BinaryOperator::GtEq
                ) =>
            {
                let equality = matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq);
                let (time, text, time_left) = match (
                    self.temporal(left),
                    string_literal(right),
                    self.temporal(right),
                    string_literal(left),
                ) {
                    (Some(kind), Some(text), _, _) => (kind, text.to_owned(), true),
                    (_, _, Some(kind), Some(text)) => (kind, text.to_owned(), false),
                    _ => return ControlFlow::Continue(()),
                };
                let (time_side, literal_side) = if time_left {
                    (left.as_mut(), right.as_mut())
                } else {
                    (right.as_mut(), left.as_mut())
                };
                let shown = time_side.to_string();
                match read_time(&text) {
                    // A whole month or year: `=`/`<>` compare it; order compares its first day.
                    Some(TimeText::Month(month)) if equality => {
                        *time_side = expression(&format!("STRFTIME({shown}, '%Y-%m')"))?;
                        *literal_side = expression(&quoted(&month))?;
                    }
                    Some(TimeText::Year(year)) if equality => {
                        *time_side = expression(&format!("STRFTIME({shown}, '%Y')"))?;
                        *literal_side = expression(&quoted(&year))?;
                    }
                    Some(TimeText::Month(month)) => {
                        *literal_side = expression(&self.time_literal(
                            &format!("{month}-01"),
                            time,
                            &shown,
                        )?)?;
                    }
                    Some(TimeText::Year(year)) => {
                        *literal_side = expression(&self.time_literal(
                            &format!("{year}-01-01"),
                            time,
                            &shown,
                        )?)?;
                    }
                    _ => *literal_side = expression(&self.time_literal(&text, time, &shown)?)?,
                }
                self.changed = true;
            }
            Expr::Between {
                expr: value,
                low,
                high,
                ..
            } => {
                let Some(kind) = self.temporal(value) else {
                    return ControlFlow::Continue(());
                };
                let shown = value.to_string();
                for bound in [low.as_mut(), high.as_mut()] {
                    if let Some(text) = string_literal(bound).map(str::to_owned) {
                        let text = match read_time(&text) {
                            Some(TimeText::Month(month)) => format!("{month}-01"),
                            Some(TimeText::Year(year)) => format!("{year}-01-01"),
                            _ => text,
                        };
                        *bound = expression(&self.time_literal(&text, kind, &shown)?)?;
                        self.changed = true;
                    }
                }
            }
            Expr::InList {
                expr: value, list, ..
            } => {
                let Some(kind) = self.temporal(value) else {
                    return ControlFlow::Continue(());
                };
                let shown = value.to_string();
                for item in list.iter_mut() {
                    if let Some(text) = string_literal(item).map(str::to_owned) {
                        *item = expression(&self.time_literal(&text, kind, &shown)?)?;
                        self.changed = true;
                    }
                }
            }
            Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr: value,
                data_type,
                ..
            } if data_type_kind(data_type) == Some(Temporal::Datetime) => {
                if let Some(TimeText::Date(date)) = string_literal(value).and_then(read_time) {
                    *expr = expression(&format!(
                        "TIMESTAMP {}",
                        quoted(&format!("{date} 00:00:00"))
                    ))?;
                    self.changed = true;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = IdiomRefusal;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<IdiomRefusal> {
        self.function(expr)?;
        self.compared(expr)
    }
}

fn data_type_kind(data_type: &DataType) -> Option<Temporal> {
    match data_type {
        DataType::Date => Some(Temporal::Date),
        DataType::Timestamp(..) | DataType::Datetime(..) => Some(Temporal::Datetime),
        _ => None,
    }
}

/// How a string reads as a time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeText {
    /// `YYYY-MM-DD` (also written `YYYY/MM/DD`).
    Date(String),
    /// `YYYY-MM-DD HH:MM:SS[.fff]` (from `T` or space, optional seconds, `Z` or `+00:00`).
    Datetime(String),
    /// A datetime with an offset other than UTC.
    Offset,
    /// `YYYY-MM`.
    Month(String),
    /// `YYYY`.
    Year(String),
}

fn read_time(text: &str) -> Option<TimeText> {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        #[allow(clippy::expect_used)] // a constant pattern, covered by the tests
        regex::Regex::new(
            r"^(\d{4})(?:[-/](\d{2})(?:[-/](\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?)?)?$",
        )
        .expect("time pattern")
    });
    let captures = pattern.captures(text.trim())?;
    let part = |index: usize| captures.get(index).map(|found| found.as_str());
    let year = part(1)?;
    let Some(month) = part(2) else {
        return Some(TimeText::Year(year.to_owned()));
    };
    let month_number: u32 = month.parse().ok()?;
    if !(1..=12).contains(&month_number) {
        return None;
    }
    let Some(day) = part(3) else {
        return Some(TimeText::Month(format!("{year}-{month}")));
    };
    let day_number: u32 = day.parse().ok()?;
    if !(1..=31).contains(&day_number) {
        return None;
    }
    let date = format!("{year}-{month}-{day}");
    let Some(hour) = part(4) else {
        return Some(TimeText::Date(date));
    };
    if let Some(offset) = part(8)
        && offset != "Z"
        && offset.trim_start_matches(['+', '-']).replace(':', "") != "0000"
    {
        return Some(TimeText::Offset);
    }
    let minute = part(5)?;
    let second = part(6).unwrap_or("00");
    let fraction = part(7).unwrap_or("");
    Some(TimeText::Datetime(format!(
        "{date} {hour}:{minute}:{second}{fraction}"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::data::{sample, sql, sql_plan};

    fn columns() -> TemporalColumns {
        TemporalColumns(BTreeMap::from([
            ("ts".to_owned(), Temporal::Datetime),
            ("day".to_owned(), Temporal::Date),
        ]))
    }

    fn rewritten(sql: &str) -> String {
        rewrite(sql, &columns()).unwrap().into_owned()
    }

    fn refused(sql: &str) -> String {
        rewrite(sql, &columns()).unwrap_err().0
    }

    #[test]
    fn queries_without_idioms_are_left_as_written() {
        for text in [
            "SELECT * FROM t WHERE ts >= DATE '2025-03-01'",
            "select  store_id from t where EXTRACT(YEAR FROM ts) = 2025",
            "SELECT name FROM t WHERE name = '2025-03-01'",
        ] {
            assert!(
                matches!(rewrite(text, &columns()).unwrap(), Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn date_trunc_becomes_strftime_based_periods() {
        assert_eq!(
            rewritten("SELECT DATE_TRUNC('month', ts) AS m FROM t"),
            "SELECT DATE(STRFTIME(ts, '%Y-%m-01')) AS m FROM t"
        );
        assert_eq!(
            rewritten("SELECT date_trunc('DAY', t.ts) FROM t"),
            "SELECT CAST(t.ts AS DATE) FROM t"
        );
        assert!(refused("SELECT DATE_TRUNC('fortnight', ts) FROM t").contains("'fortnight'"));
        assert!(refused("SELECT DATE_TRUNC(unit, ts) FROM t").contains("unit as a string"));
    }

    #[test]
    fn mysql_field_functions_become_extract() {
        assert_eq!(
            rewritten("SELECT YEAR(ts) AS y, MONTH(ts) FROM t WHERE DAYOFWEEK(ts) = 1"),
            "SELECT EXTRACT(YEAR FROM ts) AS y, EXTRACT(MONTH FROM ts) FROM t WHERE (EXTRACT(DOW FROM ts) + 1) = 1"
        );
        assert_eq!(
            rewritten("SELECT DATE(ts) FROM t"),
            "SELECT CAST(ts AS DATE) FROM t"
        );
        // DATE of a string is polars' own parse.
        assert!(matches!(
            rewrite("SELECT DATE('2025-03-01')", &columns()).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn strings_compared_with_times_become_typed_values() {
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts >= '2025-03-01T10:30:00Z'"),
            "SELECT * FROM t WHERE ts >= TIMESTAMP '2025-03-01 10:30:00'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE '2025/03/01' <= ts"),
            "SELECT * FROM t WHERE TIMESTAMP '2025-03-01 00:00:00' <= ts"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE day = '2025-03-01'"),
            "SELECT * FROM t WHERE day = DATE('2025-03-01')"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts IN ('2025-03-01', '2025-03-02 08:00')"),
            "SELECT * FROM t WHERE ts IN (TIMESTAMP '2025-03-01 00:00:00', TIMESTAMP '2025-03-02 08:00:00')"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts BETWEEN '2025-03' AND '2025-04-01'"),
            "SELECT * FROM t WHERE ts BETWEEN TIMESTAMP '2025-03-01 00:00:00' AND TIMESTAMP '2025-04-01 00:00:00'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts = '2025-03'"),
            "SELECT * FROM t WHERE STRFTIME(ts, '%Y-%m') = '2025-03'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts <> '2025'"),
            "SELECT * FROM t WHERE STRFTIME(ts, '%Y') <> '2025'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts < '2026'"),
            "SELECT * FROM t WHERE ts < TIMESTAMP '2026-01-01 00:00:00'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE ts >= CAST('2025-03-01' AS TIMESTAMP)"),
            "SELECT * FROM t WHERE ts >= TIMESTAMP '2025-03-01 00:00:00'"
        );
        assert_eq!(
            rewritten("SELECT * FROM t WHERE DATE_TRUNC('month', ts) = '2025-03-01'"),
            "SELECT * FROM t WHERE DATE(STRFTIME(ts, '%Y-%m-01')) = DATE('2025-03-01')"
        );
        // Strings compared with other columns are not touched.
        assert!(matches!(
            rewrite(
                "SELECT * FROM t WHERE name >= '2025-03-01T00:00:00Z'",
                &columns()
            )
            .unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn unreadable_dates_the_clock_and_foreign_functions_are_refused_in_one_line() {
        let cases = [
            ("SELECT * FROM t WHERE ts >= 'March 2025'", "'March 2025'"),
            ("SELECT * FROM t WHERE ts >= '03/01/2025'", "'03/01/2025'"),
            (
                "SELECT * FROM t WHERE ts >= '2025-03-01T10:00:00+02:00'",
                "offset",
            ),
            ("SELECT * FROM t WHERE ts >= '2025-13-01'", "'2025-13-01'"),
            ("SELECT * FROM t WHERE ts < NOW()", "`NOW`"),
            (
                "SELECT * FROM t WHERE ts > CURRENT_DATE - INTERVAL '30 days'",
                "`CURRENT_DATE`",
            ),
            ("SELECT DATEADD(day, 7, ts) FROM t", "`DATEADD(…)`"),
            ("SELECT DATEDIFF(ts, ts) FROM t", "`DATEDIFF(…)`"),
            ("SELECT TO_CHAR(ts, 'YYYY-MM') FROM t", "STRFTIME"),
        ];
        for (text, named) in cases {
            let message = refused(text);
            assert!(message.contains(named), "{text}: {message}");
            assert!(!message.contains('\n'), "{text}: {message}");
        }
    }

    #[test]
    fn read_time_accepts_iso_forms_only() {
        assert_eq!(
            read_time("2025-03-01"),
            Some(TimeText::Date("2025-03-01".into()))
        );
        assert_eq!(
            read_time(" 2025-03-01T10:30:15.250+00:00 "),
            Some(TimeText::Datetime("2025-03-01 10:30:15.250".into()))
        );
        assert_eq!(read_time("2025-03-01 10:30-0500"), Some(TimeText::Offset));
        assert_eq!(
            read_time("2025-03"),
            Some(TimeText::Month("2025-03".into()))
        );
        assert_eq!(read_time("2025"), Some(TimeText::Year("2025".into())));
        for bad in [
            "25-03-01",
            "2025-3-1",
            "2025-00-10",
            "2025-01-32",
            "March",
            "",
            "2025-03-01T",
        ] {
            assert_eq!(read_time(bad), None, "{bad}");
        }
    }

    /// Runs `text` the way the data plane does (allowlist, idioms, polars) over the sample.
    fn run(text: &str, frame: &DataFrame) -> Result<DataFrame, String> {
        sql::approve(text).map_err(|e| e.to_string())?;
        let columns = TemporalColumns::of([frame.schema().as_ref()]);
        let text = rewrite(text, &columns).map_err(|e| e.0)?;
        sql_plan::plan(&text, [("transactions".to_owned(), frame.clone().lazy())])
            .and_then(LazyFrame::collect)
            .map_err(|e| sql::query_error_message(&e))
    }

    fn count(text: &str, frame: &DataFrame) -> i64 {
        let result = run(text, frame).unwrap_or_else(|error| panic!("{text}: {error}"));
        let value = result.column("n").unwrap().get(0).unwrap();
        value.try_extract::<i64>().unwrap()
    }

    #[test]
    fn the_idioms_answer_like_their_plain_forms_on_the_sample() {
        let frame = sample::generate(2000).unwrap().transactions;
        let march = count(
            "SELECT COUNT(*) AS n FROM transactions WHERE ts >= TIMESTAMP '2025-03-01 00:00:00' \
             AND ts < TIMESTAMP '2025-04-01 00:00:00'",
            &frame,
        );
        assert!(march > 0);
        for text in [
            "SELECT COUNT(*) AS n FROM transactions WHERE ts >= '2025-03-01' AND ts < '2025-04-01'",
            "SELECT COUNT(*) AS n FROM transactions WHERE ts >= DATE '2025-03-01' AND ts < DATE '2025-04-01'",
            "SELECT COUNT(*) AS n FROM transactions WHERE ts >= '2025-03-01T00:00:00Z' AND ts < '2025-04-01T00:00:00Z'",
            "SELECT COUNT(*) AS n FROM transactions WHERE ts >= CAST('2025-03-01' AS TIMESTAMP) AND ts < CAST('2025-04-01' AS TIMESTAMP)",
            "SELECT COUNT(*) AS n FROM transactions WHERE CAST(ts AS DATE) BETWEEN DATE '2025-03-01' AND DATE '2025-03-31'",
            "SELECT COUNT(*) AS n FROM transactions WHERE ts = '2025-03'",
            "SELECT COUNT(*) AS n FROM transactions WHERE EXTRACT(MONTH FROM ts) = 3",
            "SELECT COUNT(*) AS n FROM transactions WHERE MONTH(ts) = 3",
            "SELECT COUNT(*) AS n FROM transactions WHERE DATE_TRUNC('month', ts) = '2025-03-01'",
            "SELECT COUNT(*) AS n FROM transactions WHERE DATE_TRUNC('quarter', ts) = DATE '2025-01-01' AND MONTH(ts) = 3",
            "SELECT COUNT(*) AS n FROM transactions WHERE DATE(ts) >= '2025-03-01' AND DATE(ts) <= '2025-03-31'",
        ] {
            assert_eq!(count(text, &frame), march, "{text}");
        }
        let year = count(
            "SELECT COUNT(*) AS n FROM transactions WHERE YEAR(ts) = 2025",
            &frame,
        );
        assert_eq!(year, 2000);
        assert_eq!(
            count(
                "SELECT COUNT(*) AS n FROM transactions WHERE ts = '2025'",
                &frame
            ),
            2000
        );
        // Every period of DATE_TRUNC groups the year into as many groups as it has.
        for (unit, groups) in [("year", 1), ("quarter", 4), ("month", 12)] {
            let text = format!(
                "SELECT DATE_TRUNC('{unit}', ts) AS p, COUNT(*) AS c FROM transactions GROUP BY 1"
            );
            let result = run(&text, &frame).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(result.height(), groups, "{unit}");
            assert_eq!(
                result.column("p").unwrap().dtype(),
                &PolarsType::Date,
                "{unit}"
            );
        }
        let weeks = run(
            "SELECT DATE_TRUNC('week', ts) AS w, COUNT(*) AS c FROM transactions GROUP BY 1 ORDER BY 1",
            &frame,
        )
        .unwrap();
        assert!((52..=54).contains(&weeks.height()), "{}", weeks.height());
        let first = weeks.column("w").unwrap().get(0).unwrap().to_string();
        // 2025-01-01 is a Wednesday: its ISO week began on Monday, 2024-12-30.
        assert_eq!(first, "2024-12-30");
        let hours = run(
            "SELECT DATE_TRUNC('hour', ts) AS h, COUNT(*) AS c FROM transactions GROUP BY 1",
            &frame,
        )
        .unwrap();
        assert!(matches!(
            hours.column("h").unwrap().dtype(),
            PolarsType::Datetime(..)
        ));
    }

    #[test]
    fn polars_date_errors_become_one_line() {
        let frame = sample::generate(100).unwrap().transactions;
        for (text, named) in [
            (
                "SELECT COUNT(*) AS n FROM transactions WHERE ts >= 'soon'",
                "'soon'",
            ),
            (
                "SELECT STRPTIME('x', '%Y') AS n FROM transactions",
                "query error",
            ),
            (
                "SELECT COUNT(*) AS n FROM transactions WHERE nope > 1",
                "nope",
            ),
            ("SELECT LAST_DAY(ts) AS n FROM transactions", "`LAST_DAY()`"),
        ] {
            let message = run(text, &frame).unwrap_err();
            assert!(message.contains(named), "{text}: {message}");
            assert!(!message.contains('\n'), "{text}: {message}");
            assert!(!message.contains("Resolved plan"), "{text}: {message}");
        }
    }
}
