//! `ORDER BY` an aggregate (`ORDER BY COUNT(*) DESC`), rewritten into what polars-sql orders
//! correctly, or refused in one line.
//!
//! polars-sql 0.55 evaluates an aggregate in `ORDER BY` over the whole input, not per group:
//! `SELECT region, COUNT(*) FROM stores GROUP BY region ORDER BY COUNT(*) DESC LIMIT 1` sorts
//! the groups by one constant. The in-memory engine then fails ("sort expressions must have
//! same length as DataFrame"); the streaming engine (`--query-engine auto` streams such plans)
//! answers with an arbitrary group — a wrong number that looks right (BENCHMARKS.md, the
//! evaluation of 2026-12-04 evening). Ordering by the select item's position or alias is
//! correct on both engines, so [`rewrite`] replaces an `ORDER BY` expression that holds an
//! aggregate:
//! - by the position of the select item with the same expression (`ORDER BY 2 DESC`), when no
//!   wildcard comes before it (a `*` makes positions depend on the table);
//! - else by that item's alias (`COUNT(*) AS n` → `ORDER BY n`);
//! - else (the aggregate is not selected, or only after a `*` without an alias) the query is
//!   refused, naming the expression and what to write instead.
//!
//! Only the `ORDER BY` of a plain `SELECT` (at any depth: subqueries and CTEs too) is read; the
//! `ORDER BY` of a set operation (`UNION …`) orders by output columns already, and window
//! specifications (`OVER (ORDER BY …)`) are polars' own.

use std::borrow::Cow;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, OrderByKind, Query, SelectItem, SetExpr, Value, Visit, VisitMut, Visitor, VisitorMut,
};

use super::sql::{parse, render};

/// Aggregate functions polars-sql knows (lower case); an `ORDER BY` expression calling one of
/// them without `OVER` is rewritten or refused.
const AGGREGATES: &[&str] = &[
    "array_agg",
    "avg",
    "corr",
    "count",
    "covar",
    "covar_pop",
    "covar_samp",
    "first",
    "last",
    "max",
    "mean",
    "median",
    "min",
    "quantile_cont",
    "quantile_disc",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "stdev",
    "string_agg",
    "sum",
    "var",
    "var_pop",
    "var_samp",
    "variance",
];

/// Why a query's `ORDER BY` was refused. `Display` is the one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ORDER BY {expression}: order by an aggregate that the SELECT list holds — write \
     `{expression} AS n` in the SELECT list and `ORDER BY n`"
)]
pub struct OrderRefusal {
    /// The `ORDER BY` expression as SQL.
    pub expression: String,
}

/// `sql` with each `ORDER BY` aggregate replaced (see the module docs); borrowed when nothing
/// needed replacing. Text that does not parse is returned as it is (the planner reports it).
pub fn rewrite(sql: &str) -> Result<Cow<'_, str>, OrderRefusal> {
    let Ok(mut statements) = parse(sql) else {
        return Ok(Cow::Borrowed(sql));
    };
    let mut rewriter = Rewriter { changed: false };
    for statement in &mut statements {
        if let ControlFlow::Break(refusal) = statement.visit(&mut rewriter) {
            return Err(refusal);
        }
    }
    if !rewriter.changed {
        return Ok(Cow::Borrowed(sql));
    }
    Ok(Cow::Owned(render(&statements)))
}

struct Rewriter {
    changed: bool,
}

impl VisitorMut for Rewriter {
    type Break = OrderRefusal;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<OrderRefusal> {
        let SetExpr::Select(select) = query.body.as_ref() else {
            return ControlFlow::Continue(());
        };
        let Some(order_by) = query.order_by.as_mut() else {
            return ControlFlow::Continue(());
        };
        let OrderByKind::Expressions(expressions) = &mut order_by.kind else {
            return ControlFlow::Continue(());
        };
        for ordering in expressions.iter_mut() {
            if !holds_aggregate(&ordering.expr) {
                continue;
            }
            match replacement(&select.projection, &ordering.expr) {
                Some(replacement) => {
                    ordering.expr = replacement;
                    self.changed = true;
                }
                None => {
                    return ControlFlow::Break(OrderRefusal {
                        expression: ordering.expr.to_string(),
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The position (1-based) or alias of the select item whose expression is `wanted`.
fn replacement(projection: &[SelectItem], wanted: &Expr) -> Option<Expr> {
    let wanted = same_text(wanted);
    let mut wildcard_before = false;
    for (index, item) in projection.iter().enumerate() {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (expr, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
            SelectItem::ExprWithAliases { expr, aliases } => (expr, aliases.first()),
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                wildcard_before = true;
                continue;
            }
        };
        if same_text(expr) != wanted {
            continue;
        }
        if !wildcard_before {
            return Some(Expr::value(Value::Number((index + 1).to_string(), false)));
        }
        return alias.map(|alias| Expr::Identifier(alias.clone()));
    }
    None
}

/// An expression as SQL, with letters lower-cased: `COUNT(*)` and `count(*)` are the same item.
fn same_text(expr: &Expr) -> String {
    expr.to_string().to_lowercase()
}

/// Whether `expr` calls an aggregate function (not as a window function). Also inside a
/// scalar subquery (`ORDER BY (SELECT MAX(x) FROM u)`): such an ordering is refused unless
/// the SELECT list holds it too — rare, and never silently wrong.
fn holds_aggregate(expr: &Expr) -> bool {
    struct Finder;
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(function) = expr
                && function.over.is_none()
                && AGGREGATES.contains(&function.name.to_string().to_lowercase().as_str())
            {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    expr.visit(&mut Finder).is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        rewrite(sql)
            .unwrap_or_else(|refusal| panic!("{sql}: {refusal}"))
            .into_owned()
    }

    #[test]
    fn an_aggregate_in_order_by_becomes_the_position_of_its_select_item() {
        assert_eq!(
            rewritten(
                "SELECT region, COUNT(*) FROM stores GROUP BY region ORDER BY COUNT(*) DESC LIMIT 1"
            ),
            "SELECT region, COUNT(*) FROM stores GROUP BY region ORDER BY 2 DESC LIMIT 1"
        );
        // Aliased, in another case, inside an expression, several keys.
        assert_eq!(
            rewritten(
                "SELECT region, SUM(a) / count(*) AS avg_a, MAX(b) FROM t GROUP BY region \
                 ORDER BY sum(a) / COUNT(*) DESC, region, max(b)"
            ),
            "SELECT region, SUM(a) / count(*) AS avg_a, MAX(b) FROM t GROUP BY region \
             ORDER BY 2 DESC, region, 3"
        );
    }

    #[test]
    fn after_a_wildcard_the_alias_is_used_or_the_query_refused() {
        assert_eq!(
            rewritten(
                "SELECT *, COUNT(*) OVER () AS w, SUM(x) AS s FROM t GROUP BY a ORDER BY SUM(x)"
            ),
            "SELECT *, COUNT(*) OVER () AS w, SUM(x) AS s FROM t GROUP BY a ORDER BY s"
        );
        let refusal = rewrite("SELECT *, SUM(x) FROM t GROUP BY a ORDER BY SUM(x)").unwrap_err();
        assert_eq!(refusal.expression, "SUM(x)");
    }

    #[test]
    fn an_aggregate_the_select_list_does_not_hold_is_refused_with_what_to_write() {
        let refusal = rewrite("SELECT region FROM stores GROUP BY region ORDER BY COUNT(*) DESC")
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "ORDER BY COUNT(*): order by an aggregate that the SELECT list holds — write \
             `COUNT(*) AS n` in the SELECT list and `ORDER BY n`"
        );
    }

    #[test]
    fn subqueries_and_ctes_are_rewritten_too() {
        assert_eq!(
            rewritten(
                "WITH c AS (SELECT region, COUNT(*) AS n FROM stores GROUP BY region \
                 ORDER BY COUNT(*) DESC LIMIT 2) SELECT * FROM (SELECT region, MIN(n) FROM c \
                 GROUP BY region ORDER BY MIN(n)) AS s"
            ),
            "WITH c AS (SELECT region, COUNT(*) AS n FROM stores GROUP BY region \
             ORDER BY 2 DESC LIMIT 2) SELECT * FROM (SELECT region, MIN(n) FROM c \
             GROUP BY region ORDER BY 2) AS s"
        );
    }

    #[test]
    fn other_orderings_are_left_as_written() {
        for sql in [
            "SELECT region, COUNT(*) AS n FROM stores GROUP BY region ORDER BY n DESC",
            "SELECT region, COUNT(*) FROM stores GROUP BY region ORDER BY 2 DESC",
            "SELECT store_id FROM stores ORDER BY floor_m2 * 2 DESC",
            "SELECT a, SUM(b) OVER (ORDER BY SUM(c)) FROM t",
            "SELECT a FROM t UNION SELECT b FROM u ORDER BY 1",
            "SELECT a, RANK() OVER (ORDER BY a) AS r FROM t ORDER BY ROW_NUMBER() OVER (ORDER BY a)",
            "not sql at all (((",
        ] {
            assert!(matches!(rewrite(sql), Ok(Cow::Borrowed(_))), "{sql}");
        }
    }
}
