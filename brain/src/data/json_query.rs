//! The typed JSON query ([`shared_types::data::JsonQuery`]) as a polars lazy plan.
//!
//! Every column the query names is checked against the dataset's schema first, so a typo is a
//! 400 naming the column rather than a polars error. Filter values are JSON scalars; against a
//! date or datetime column a string value is parsed as that type.

use polars::prelude::*;
use serde_json::Value;
use shared_types::data::{Aggregate, AggregateFunction, Filter, JsonQuery};

use super::DataError;

/// The plan of `query` over `source`, whose schema is `schema` (without the page: the caller
/// slices).
pub fn plan(query: &JsonQuery, source: LazyFrame, schema: &Schema) -> Result<LazyFrame, DataError> {
    let column = |name: &str| -> Result<DataType, DataError> {
        schema.get(name).cloned().ok_or_else(|| {
            DataError::BadRequest(format!(
                "dataset `{}` has no column `{name}`",
                query.dataset
            ))
        })
    };
    let mut lazy = source;
    if let Some(filter) = &query.filter {
        check_filter_size(filter)?;
        lazy = lazy.filter(filter_expr(filter, &column)?);
    }
    if !query.group_by.is_empty() || !query.aggregates.is_empty() {
        if !query.select.is_empty() {
            return Err(DataError::BadRequest(
                "`select` cannot be combined with `group_by`/`aggregates`: the result has the \
                 group columns and the aggregates"
                    .to_owned(),
            ));
        }
        let mut keys = Vec::with_capacity(query.group_by.len());
        for name in &query.group_by {
            column(name)?;
            keys.push(col(name.as_str()));
        }
        let mut aggregates = Vec::with_capacity(query.aggregates.len());
        for aggregate in &query.aggregates {
            column(&aggregate.column)?;
            aggregates.push(aggregate_expr(aggregate));
        }
        lazy = if keys.is_empty() {
            lazy.select(aggregates)
        } else {
            // Stable order of groups (first appearance), so pages are deterministic.
            lazy.group_by_stable(keys).agg(aggregates)
        };
    } else if !query.select.is_empty() {
        let mut selected = Vec::with_capacity(query.select.len());
        for name in &query.select {
            column(name)?;
            selected.push(col(name.as_str()));
        }
        lazy = lazy.select(selected);
    }
    if !query.sort.is_empty() {
        let output = lazy
            .collect_schema()
            .map_err(|error| DataError::BadRequest(error.to_string()))?;
        let mut names = Vec::with_capacity(query.sort.len());
        for key in &query.sort {
            if output.get(key.column.as_str()).is_none() {
                return Err(DataError::BadRequest(format!(
                    "cannot sort by `{}`: not a column of the result",
                    key.column
                )));
            }
            names.push(PlSmallStr::from(key.column.as_str()));
        }
        let descending: Vec<bool> = query.sort.iter().map(|key| key.descending).collect();
        lazy = lazy.sort(
            names,
            SortMultipleOptions::default()
                .with_order_descending_multi(descending)
                .with_maintain_order(true),
        );
    }
    Ok(lazy)
}

fn aggregate_expr(aggregate: &Aggregate) -> Expr {
    let column = col(aggregate.column.as_str());
    let (expr, function) = match aggregate.function {
        AggregateFunction::Count => (column.count(), "count"),
        AggregateFunction::Sum => (column.sum(), "sum"),
        AggregateFunction::Mean => (column.mean(), "mean"),
        AggregateFunction::Min => (column.min(), "min"),
        AggregateFunction::Max => (column.max(), "max"),
        AggregateFunction::CountDistinct => (column.n_unique(), "count_distinct"),
    };
    let alias = aggregate
        .alias
        .clone()
        .unwrap_or_else(|| format!("{function}_{}", aggregate.column));
    expr.alias(alias.as_str())
}

/// Most conditions in one filter, and deepest nesting of `and`/`or`/`not`. Each condition
/// becomes a node of polars' expression tree (an `and` of n conditions a chain n deep), which
/// polars' optimizer walks recursively: a filter of 100,000 conditions would overflow the
/// stack of the thread running the query.
const MAX_FILTER_CONDITIONS: usize = 256;
const MAX_FILTER_DEPTH: usize = 16;

/// Refuses (400) a filter beyond [`MAX_FILTER_CONDITIONS`] or [`MAX_FILTER_DEPTH`], walking it
/// without recursion.
fn check_filter_size(filter: &Filter) -> Result<(), DataError> {
    let mut pending = vec![(filter, 1usize)];
    let mut conditions = 0usize;
    while let Some((filter, depth)) = pending.pop() {
        conditions += 1;
        if conditions > MAX_FILTER_CONDITIONS || depth > MAX_FILTER_DEPTH {
            return Err(DataError::BadRequest(format!(
                "the filter is too large: at most {MAX_FILTER_CONDITIONS} conditions nested at \
                 most {MAX_FILTER_DEPTH} deep"
            )));
        }
        match filter {
            Filter::And { args } | Filter::Or { args } => {
                pending.extend(args.iter().map(|arg| (arg, depth + 1)));
            }
            Filter::Not { arg } => pending.push((arg, depth + 1)),
            _ => {}
        }
    }
    Ok(())
}

fn filter_expr(
    filter: &Filter,
    column: &impl Fn(&str) -> Result<DataType, DataError>,
) -> Result<Expr, DataError> {
    let combine = |args: &[Filter], and: bool| -> Result<Expr, DataError> {
        let mut exprs = args.iter().map(|arg| filter_expr(arg, column));
        let Some(first) = exprs.next() else {
            // An empty AND is true, an empty OR false.
            return Ok(lit(and));
        };
        exprs.try_fold(first?, |acc, next| {
            Ok(if and { acc.and(next?) } else { acc.or(next?) })
        })
    };
    let compare = |name: &str, value: &Value| -> Result<(Expr, Expr), DataError> {
        let dtype = column(name)?;
        Ok((col(name), literal(value, &dtype, name)?))
    };
    Ok(match filter {
        Filter::And { args } => combine(args, true)?,
        Filter::Or { args } => combine(args, false)?,
        Filter::Not { arg } => filter_expr(arg, column)?.not(),
        Filter::Eq {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.eq(right)
        }
        Filter::Ne {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.neq(right)
        }
        Filter::Lt {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.lt(right)
        }
        Filter::Le {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.lt_eq(right)
        }
        Filter::Gt {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.gt(right)
        }
        Filter::Ge {
            column: name,
            value,
        } => {
            let (left, right) = compare(name, value)?;
            left.gt_eq(right)
        }
        Filter::In {
            column: name,
            values,
        } => {
            let dtype = column(name)?;
            let any = values
                .iter()
                .map(|value| Ok(col(name.as_str()).eq(literal(value, &dtype, name)?)))
                .collect::<Result<Vec<Expr>, DataError>>()?;
            any.into_iter()
                .reduce(|left, right| left.or(right))
                .unwrap_or(lit(false))
        }
        Filter::IsNull { column: name } => {
            column(name)?;
            col(name.as_str()).is_null()
        }
        Filter::IsNotNull { column: name } => {
            column(name)?;
            col(name.as_str()).is_not_null()
        }
    })
}

fn literal(value: &Value, dtype: &DataType, name: &str) -> Result<Expr, DataError> {
    let expr = match value {
        Value::Null => lit(Null {}),
        Value::Bool(b) => lit(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                lit(i)
            } else if let Some(f) = n.as_f64() {
                lit(f)
            } else {
                return Err(DataError::BadRequest(format!(
                    "the value for `{name}` is out of range"
                )));
            }
        }
        Value::String(s) if dtype.is_temporal() => lit(s.as_str()).strict_cast(dtype.clone()),
        Value::String(s) => lit(s.as_str()),
        Value::Array(_) | Value::Object(_) => {
            return Err(DataError::BadRequest(format!(
                "the value for `{name}` must be a JSON scalar"
            )));
        }
    };
    Ok(expr)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "store" => ["a", "b", "a", "c", "b"],
            "qty" => [1i64, 2, 3, 4, 5],
            "price" => [1.0f64, 2.0, 3.0, 4.0, 5.0]
        )
        .unwrap()
    }

    fn run(json: &str) -> DataFrame {
        let query: JsonQuery = serde_json::from_str(json).unwrap();
        {
            let frame = frame();
            plan(&query, frame.clone().lazy(), frame.schema())
                .unwrap()
                .collect()
                .unwrap()
        }
    }

    #[test]
    fn filter_group_aggregate_sort() {
        let result = run(
            r#"{"dataset":"t","filter":{"op":"ge","column":"qty","value":2},
                "group_by":["store"],"aggregates":[{"function":"sum","column":"qty","alias":"units"},
                {"function":"count","column":"qty"}],"sort":[{"column":"units","descending":true}]}"#,
        );
        assert_eq!(
            result,
            df!("store" => ["b", "c", "a"], "units" => [7i64, 4, 3], "count_qty" => [2u32, 1, 1])
                .unwrap()
        );
    }

    #[test]
    fn boolean_combinations_and_in() {
        let result = run(
            r#"{"dataset":"t","select":["qty"],"filter":{"op":"or","args":[
                {"op":"in","column":"store","values":["c"]},
                {"op":"and","args":[{"op":"eq","column":"store","value":"a"},{"op":"not","arg":{"op":"lt","column":"qty","value":2}}]}]},
                "sort":[{"column":"qty"}]}"#,
        );
        assert_eq!(result, df!("qty" => [3i64, 4]).unwrap());
    }

    #[test]
    fn unknown_columns_are_named() {
        let query: JsonQuery =
            serde_json::from_str(r#"{"dataset":"t","select":["nope"]}"#).unwrap();
        let frame = frame();
        match plan(&query, frame.clone().lazy(), frame.schema()) {
            Err(DataError::BadRequest(message)) => assert!(message.contains("`nope`"), "{message}"),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a plan for an unknown column"),
        }
    }
}
