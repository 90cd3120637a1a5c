//! From approved SQL text to the lazy plan the brain runs.
//!
//! polars-sql plans the query; then [`fast_sql_sums`] rewrites one pattern of that plan into an
//! equivalent, faster one. polars-sql writes `SUM(x)` as
//! `when(x.null_count() < x.len()).then(x.sum()).otherwise(NULL)`, so that a group holding only
//! NULLs sums to NULL as SQL requires (polars' own `sum` gives 0). Inside a `GROUP BY` that
//! ternary is not a plain aggregation, so polars leaves its partitioned (pre-aggregating)
//! group-by for the general one and evaluates `x` three times: about 2× slower on the 1e6-row
//! sample (BENCHMARKS.md). The rewrite aggregates `x.sum()` and the count of non-NULL `x` — two
//! plain aggregations — and applies the NULL rule to the aggregated rows, one per group.
//!
//! The rewrite is an optimisation only: a plan it does not recognise runs as polars-sql planned
//! it, with the same answer. Its tests check that the pattern is still the one polars-sql emits,
//! so a polars upgrade that changes it fails a test instead of silently losing the speed.

use std::sync::Arc;

use polars::prelude::*;
use polars::sql::SQLContext;

/// Prefix of the hidden per-`SUM` count columns; they never leave the plan.
const NON_NULL_PREFIX: &str = "__edgebrain_non_null_";

/// Plans `text` (already approved by [`super::sql::approve`]) over `tables`, by name.
pub fn plan(
    text: &str,
    tables: impl IntoIterator<Item = (String, LazyFrame)>,
) -> PolarsResult<LazyFrame> {
    let mut context = SQLContext::new();
    for (name, frame) in tables {
        context.register(&name, frame);
    }
    let planned = context.execute(text)?;
    let flags = planned.get_current_optimizations();
    let mut plan = planned.logical_plan;
    fast_sql_sums(&mut plan);
    Ok(LazyFrame::from_logical_plan(plan, flags))
}

/// Rewrites every `GROUP BY` in `plan` whose aggregations include polars-sql's `SUM` pattern.
fn fast_sql_sums(plan: &mut DslPlan) {
    match plan {
        DslPlan::GroupBy {
            input, aggs, apply, ..
        } => {
            rewrite_input(input);
            // A group-by running a function over each group (`apply`) is not polars-sql's.
            if apply.is_none() {
                let null_rules = fast_sums(aggs);
                null_rules.apply_to(plan);
            }
        }
        DslPlan::Filter { input, .. }
        | DslPlan::Cache { input, .. }
        | DslPlan::Select { input, .. }
        | DslPlan::HStack { input, .. }
        | DslPlan::Distinct { input, .. }
        | DslPlan::Sort { input, .. }
        | DslPlan::Slice { input, .. }
        | DslPlan::MapFunction { input, .. } => rewrite_input(input),
        DslPlan::Join {
            input_left,
            input_right,
            ..
        } => {
            rewrite_input(input_left);
            rewrite_input(input_right);
        }
        DslPlan::Union { inputs, .. } | DslPlan::HConcat { inputs, .. } => {
            inputs.iter_mut().for_each(fast_sql_sums);
        }
        // polars-sql resolves schemas while it plans, which leaves converted sub-plans behind
        // as `IR` nodes. Their IR belongs to an arena the new frame does not share: drop it so
        // the rewritten DSL is converted afresh.
        DslPlan::IR { dsl, node, .. } => {
            rewrite_input(dsl);
            *node = None;
        }
        // Nothing polars-sql builds puts a GROUP BY under the remaining nodes.
        _ => {}
    }
}

/// True when every node of `plan` does work bounded by the size of its inputs — scans, filters,
/// projections, group-bys, sorts, distinct, slices, unions — so no node can multiply rows. Joins
/// can (a cross join of two large frames), and so can functions over a frame such as explode or
/// unpivot, which polars' public API does not let this walk tell from a rename: those, and any
/// node this walk does not know, are not bounded. A bounded plan may run on polars' streaming
/// engine, which cannot be cancelled: past the time limit it still ends within work set by
/// frames the memory budget already bounds. The others stay on the cancellable engine.
pub fn bounded_by_input(plan: &DslPlan) -> bool {
    match plan {
        DslPlan::DataFrameScan { .. } | DslPlan::Scan { .. } => true,
        DslPlan::Filter { input, predicate } => {
            expressions_bounded([predicate]) && bounded_by_input(input)
        }
        DslPlan::Select { input, expr, .. } => expressions_bounded(expr) && bounded_by_input(input),
        DslPlan::HStack { input, exprs, .. } => {
            expressions_bounded(exprs) && bounded_by_input(input)
        }
        DslPlan::GroupBy {
            input,
            keys,
            predicates,
            aggs,
            apply,
            ..
        } => {
            apply.is_none()
                && expressions_bounded(keys.iter().chain(predicates).chain(aggs))
                && bounded_by_input(input)
        }
        DslPlan::Sort {
            input, by_column, ..
        } => expressions_bounded(by_column) && bounded_by_input(input),
        DslPlan::Cache { input, .. }
        | DslPlan::Distinct { input, .. }
        | DslPlan::Slice { input, .. } => bounded_by_input(input),
        DslPlan::Union { inputs, .. } | DslPlan::HConcat { inputs, .. } => {
            inputs.iter().all(bounded_by_input)
        }
        DslPlan::IR { dsl, .. } => bounded_by_input(dsl),
        _ => false,
    }
}

/// True when no expression explodes rows or runs a sub-plan (an `IN (SELECT …)`, say) that is
/// not itself bounded by its input.
fn expressions_bounded<'a>(expressions: impl IntoIterator<Item = &'a Expr>) -> bool {
    expressions.into_iter().all(|expression| {
        expression.into_iter().all(|node| match node {
            Expr::Explode { .. } | Expr::AnonymousFunction { .. } => false,
            Expr::SubPlan(plan, _) => bounded_by_input(plan),
            _ => true,
        })
    })
}

/// Rewrites a shared sub-plan in place (copied first if another plan also holds it).
fn rewrite_input(input: &mut Arc<DslPlan>) {
    fast_sql_sums(Arc::make_mut(input));
}

/// What [`fast_sums`] leaves to do on the aggregated rows.
#[derive(Default)]
struct NullRules {
    /// `name = CASE WHEN hidden > 0 THEN name END`, one per rewritten `SUM`.
    rules: Vec<Expr>,
    /// The hidden count columns, dropped after the rules ran.
    hidden: Vec<PlSmallStr>,
}

impl NullRules {
    /// Puts the rules (and the drop of the hidden columns) on top of `group_by`.
    fn apply_to(self, group_by: &mut DslPlan) {
        if self.hidden.is_empty() {
            return;
        }
        *group_by = LazyFrame::from(std::mem::take(group_by))
            .with_columns(self.rules)
            .drop(cols(self.hidden))
            .logical_plan;
    }
}

/// `SUM(x) AS name` (polars-sql's form) becomes two aggregations: `x.sum() AS name` and the
/// count of non-NULL `x` under a hidden name; the returned rules then set `name` to NULL where
/// that count is 0. Other aggregations keep their place and form.
fn fast_sums(aggs: &mut Vec<Expr>) -> NullRules {
    let mut new_aggs = Vec::with_capacity(aggs.len());
    let mut null_rules = NullRules::default();
    for (index, agg) in std::mem::take(aggs).into_iter().enumerate() {
        let Some((summed, name)) = polars_sql_sum(&agg) else {
            new_aggs.push(agg);
            continue;
        };
        let non_null = PlSmallStr::from(format!("{NON_NULL_PREFIX}{index}"));
        new_aggs.push(summed.clone().sum().alias(name.clone()));
        new_aggs.push(
            summed
                .is_not_null()
                .cast(DataType::UInt64)
                .sum()
                .alias(non_null.clone()),
        );
        null_rules.rules.push(
            when(col(non_null.clone()).gt(lit(0)))
                .then(col(name.clone()))
                .otherwise(lit(LiteralValue::untyped_null()))
                .alias(name),
        );
        null_rules.hidden.push(non_null);
    }
    *aggs = new_aggs;
    null_rules
}

/// `(x, name)` when `agg` is exactly polars-sql's `SUM(x) AS name`.
fn polars_sql_sum(agg: &Expr) -> Option<(Expr, PlSmallStr)> {
    let Expr::Alias(inner, name) = agg else {
        return None;
    };
    let Expr::Ternary { truthy, .. } = inner.as_ref() else {
        return None;
    };
    let Expr::Agg(AggExpr::Sum(summed)) = truthy.as_ref() else {
        return None;
    };
    let summed = summed.as_ref().clone();
    // polars-sql 0.55's `sql_sum`, built the same way, so equality means "this pattern".
    let pattern = when(summed.clone().null_count().lt(summed.clone().len()))
        .then(summed.clone().sum())
        .otherwise(lit(LiteralValue::untyped_null()));
    (*inner.as_ref() == pattern).then(|| (summed, name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<(String, LazyFrame)> {
        let sales = df!(
            "store" => ["a", "a", "b", "b", "c", "c"],
            "product" => [1i64, 2, 1, 2, 1, 3],
            "quantity" => [Some(1i64), Some(2), None, None, Some(5), None],
            "price" => [Some(1.5f64), None, Some(2.0), None, Some(1.0), Some(4.0)],
        )
        .unwrap();
        let products = df!(
            "product" => [1i64, 2, 3],
            "category" => ["x", "y", "x"],
        )
        .unwrap();
        vec![
            ("sales".to_owned(), sales.lazy()),
            ("products".to_owned(), products.lazy()),
        ]
    }

    /// The query as polars-sql plans it, without the rewrite.
    fn unrewritten(text: &str) -> DataFrame {
        let mut context = SQLContext::new();
        for (name, frame) in tables() {
            context.register(&name, frame);
        }
        context.execute(text).unwrap().collect().unwrap()
    }

    fn rewritten(text: &str) -> (DataFrame, String) {
        let planned = plan(text, tables()).unwrap();
        let described = planned.describe_plan().unwrap();
        (planned.collect().unwrap(), described)
    }

    #[test]
    fn a_group_of_only_nulls_still_sums_to_null_and_others_to_their_sum() {
        let text = "SELECT store, SUM(quantity) AS units, SUM(quantity * price) AS revenue, \
                    COUNT(*) AS n FROM sales GROUP BY store ORDER BY store";
        let (frame, described) = rewritten(text);
        let expected = df!(
            "store" => ["a", "b", "c"],
            "units" => [Some(3i64), None, Some(5)],
            "revenue" => [Some(1.5f64), None, Some(5.0)],
            "n" => [2u32, 2, 2],
        )
        .unwrap();
        assert!(frame.equals_missing(&expected), "{frame}");
        assert!(
            !described.contains("null_count"),
            "the SUM pattern was not rewritten: {described}"
        );
        assert!(described.contains(NON_NULL_PREFIX), "{described}");
    }

    #[test]
    fn polars_sql_still_plans_sum_with_the_pattern_the_rewrite_matches() {
        // If polars-sql changes how it writes SUM, the rewrite stops matching: this fails then.
        let mut context = SQLContext::new();
        for (name, frame) in tables() {
            context.register(&name, frame);
        }
        let planned = context
            .execute("SELECT store, SUM(quantity) AS units FROM sales GROUP BY store")
            .unwrap();
        assert!(planned.describe_plan().unwrap().contains("null_count"));
    }

    #[test]
    fn rewritten_plans_answer_like_polars_sql_for_joins_having_ctes_and_subqueries() {
        for text in [
            "SELECT p.category, SUM(s.quantity * s.price) AS revenue, COUNT(*) AS n \
             FROM sales s JOIN products p ON p.product = s.product GROUP BY p.category \
             ORDER BY p.category",
            "SELECT store, SUM(quantity) AS units FROM sales GROUP BY store \
             HAVING SUM(quantity) > 1 ORDER BY store",
            "WITH per_store AS (SELECT store, SUM(quantity) AS units FROM sales GROUP BY store) \
             SELECT SUM(units) AS total, COUNT(*) AS stores FROM per_store",
            "SELECT store, total FROM (SELECT store, SUM(price) AS total, MAX(quantity) AS top \
             FROM sales GROUP BY store) AS t WHERE total IS NULL OR total > 1 ORDER BY store",
            "SELECT store, SUM(quantity) AS units, AVG(price) AS price FROM sales \
             WHERE product < 3 GROUP BY store ORDER BY units DESC NULLS LAST, store",
            "SELECT store AS s, SUM(quantity) FROM sales GROUP BY store ORDER BY s",
        ] {
            let (frame, _) = rewritten(text);
            let expected = unrewritten(text);
            assert!(
                frame.equals_missing(&expected),
                "{text}\nrewritten:\n{frame}\npolars-sql:\n{expected}"
            );
        }
    }

    #[test]
    fn only_plans_bounded_by_their_input_may_stream() {
        for bounded in [
            "SELECT store, SUM(quantity) AS units FROM sales GROUP BY store ORDER BY units DESC \
             LIMIT 2",
            "SELECT DISTINCT store FROM sales WHERE price > 1",
            "WITH per_store AS (SELECT store, SUM(quantity) AS units FROM sales GROUP BY store) \
             SELECT SUM(units) AS total FROM per_store",
            "SELECT store, product, ROW_NUMBER() OVER (PARTITION BY store ORDER BY product) AS rn \
             FROM sales",
            "SELECT * FROM (SELECT store, price FROM sales) AS t WHERE price IS NOT NULL",
            "SELECT store FROM sales WHERE product IN (SELECT product FROM products)",
        ] {
            let planned = plan(bounded, tables()).unwrap();
            assert!(bounded_by_input(&planned.logical_plan), "{bounded}");
        }
        for unbounded in [
            "SELECT p.category, COUNT(*) AS n FROM sales s JOIN products p \
             ON p.product = s.product GROUP BY p.category",
            "SELECT * FROM sales CROSS JOIN products",
            "SELECT store FROM sales WHERE product IN (SELECT s.product FROM sales s \
             JOIN products p ON p.product = s.product)",
            // Bounded, but polars-sql aligns a union's columns with a function over the frame,
            // which the walk cannot tell from explode: kept cancellable, conservatively.
            "SELECT store FROM sales UNION ALL SELECT category FROM products",
        ] {
            let planned = plan(unbounded, tables()).unwrap();
            assert!(!bounded_by_input(&planned.logical_plan), "{unbounded}");
        }
    }
}
