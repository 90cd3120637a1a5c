//! The data tools: `list_datasets`, `describe_dataset`, `sql`, `chart`. They reach data only
//! through [`DataPlane`](crate::data::DataPlane) with the caller's owner key, so the SQL
//! allowlist (one read-only SELECT over dataset names, no table functions, no file paths) and
//! tenancy (another tenant's dataset is indistinguishable from a missing one) apply exactly as
//! on `POST /api/v1/queries/sql`. Generated SQL never runs anywhere else, and no generated
//! code runs at all.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use polars::prelude::DataType;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use shared_types::agent::{
    ChartEncoding, ChartMark, ChartSpec, ChartToolOutput, FieldDef, FieldType, InlineData,
    SqlToolOutput, VEGA_LITE_SCHEMA,
};
use shared_types::data::{
    DatasetDescription, DatasetInfo, DatasetList, DatasetRef, PageRequest, ResultRequest,
    ResultShape, SqlQuery,
};

use super::{DataRead, Tool, ToolContext, ToolError};
use crate::data::{DataError, output};
use crate::llm::tokens::EstimateTokens;

/// `list_datasets`: the datasets the caller may query.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListDatasets;

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDatasetsInput {}

impl Tool for ListDatasets {
    const NAME: &'static str = "list_datasets";
    const DESCRIPTION: &'static str =
        "List the datasets you can query with SQL: names, columns with types, row counts.";
    type Input = ListDatasetsInput;
    type Output = DatasetList;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        _input: ListDatasetsInput,
    ) -> BoxFuture<'a, Result<DatasetList, ToolError>> {
        async move {
            let datasets = context
                .services
                .data
                .datasets
                .list(context.owner)
                .await
                .map_err(data_error)?;
            context.record_read(DataRead {
                sql: None,
                datasets: datasets.iter().map(dataset_ref).collect(),
                row_count: None,
                row_count_exact: true,
                shown_rows: None,
                truncated: false,
            });
            Ok(DatasetList { datasets })
        }
        .boxed()
    }
}

/// `describe_dataset`: columns, statistics and sample rows of one dataset.
#[derive(Debug, Clone, Copy, Default)]
pub struct DescribeDataset;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DescribeDatasetInput {
    /// The dataset's name (as in SQL) or id.
    pub dataset: String,
}

impl Tool for DescribeDataset {
    const NAME: &'static str = "describe_dataset";
    const DESCRIPTION: &'static str = "Describe one dataset: columns and types, row count, \
        per-column null count, min/max/mean, and the first rows.";
    type Input = DescribeDatasetInput;
    type Output = DatasetDescription;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: DescribeDatasetInput,
    ) -> BoxFuture<'a, Result<DatasetDescription, ToolError>> {
        async move {
            let data = &context.services.data;
            let datasets = data
                .datasets
                .list(context.owner)
                .await
                .map_err(data_error)?;
            // The caller's own dataset wins over a public one of the same name (as in SQL).
            let id = datasets
                .iter()
                .filter(|d| d.name == input.dataset || d.id == input.dataset)
                .max_by_key(|d| d.owned)
                .map(|d| d.id.clone())
                .ok_or_else(|| {
                    let names = datasets
                        .iter()
                        .map(|dataset| dataset.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    ToolError::MissingDataset {
                        message: format!("no dataset named `{}`", input.dataset),
                        datasets: names,
                    }
                })?;
            let description = data
                .datasets
                .describe(context.owner, &id)
                .await
                .map_err(data_error)?;
            let info = &description.dataset;
            let shown = description.sample_rows.len() as u64;
            context.record_read(DataRead {
                sql: None,
                datasets: vec![dataset_ref(info)],
                row_count: Some(info.row_count),
                row_count_exact: true,
                shown_rows: Some(shown),
                truncated: shown < info.row_count,
            });
            Ok(description)
        }
        .boxed()
    }
}

/// `sql`: one read-only SELECT over the caller's datasets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sql;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SqlInput {
    /// One read-only SQL SELECT statement over dataset names (polars SQL dialect).
    pub sql: String,
}

impl Tool for Sql {
    const NAME: &'static str = "sql";
    const DESCRIPTION: &'static str = "Run one read-only SQL SELECT over the datasets (use \
        dataset names as table names). Returns the first rows that fit, with the total row count.";
    type Input = SqlInput;
    type Output = SqlToolOutput;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: SqlInput,
    ) -> BoxFuture<'a, Result<SqlToolOutput, ToolError>> {
        async move { run_sql(context, &input.sql).await }.boxed()
    }
}

/// A query's page as the tools use it.
struct Fetched {
    columns: Vec<(String, FieldType)>,
    rows: Vec<Map<String, Value>>,
    more: bool,
    /// The datasets read, at the versions read.
    datasets: Vec<DatasetRef>,
}

async fn fetch(context: &ToolContext<'_>, sql: &str, limit: u64) -> Result<Fetched, ToolError> {
    let data = &context.services.data;
    let limit = limit.clamp(1, data.limits().query_max_rows.max(1));
    let query = SqlQuery {
        sql: sql.to_owned(),
        result: ResultRequest {
            page: PageRequest {
                offset: 0,
                limit: Some(limit),
            },
            shape: ResultShape::Rows,
        },
    };
    let result = match data.queries.sql(context.owner, &query).await {
        Ok(result) => result,
        Err(DataError::NotFound(message)) => {
            return Err(missing_dataset(context, &message).await);
        }
        Err(error) => return Err(data_error(error)),
    };
    let more = result.page.next_offset.is_some();
    let datasets = result.datasets;
    let frame = result.frame;
    let (columns, rows) = tokio::task::spawn_blocking(move || {
        let columns = frame
            .columns()
            .iter()
            .map(|column| (column.name().to_string(), field_type(column.dtype())))
            .collect::<Vec<_>>();
        output::rows(&frame).map(|rows| (columns, rows))
    })
    .await
    .map_err(|_| ToolError::Failed("the query was interrupted".to_owned()))?
    .map_err(data_error)?;
    Ok(Fetched {
        columns,
        rows,
        more,
        datasets,
    })
}

async fn run_sql(context: &ToolContext<'_>, sql: &str) -> Result<SqlToolOutput, ToolError> {
    let budget = u64::from(context.limits.result_token_budget.max(1));
    // No row costs less than a couple of tokens: fetch at most `budget` rows.
    let fetched = fetch(context, sql, budget).await?;
    let (total_rows, exact) = if fetched.more {
        match count_rows(context, sql).await {
            Some(total) => (total, true),
            None => (fetched.rows.len() as u64 + 1, false),
        }
    } else {
        (fetched.rows.len() as u64, true)
    };
    let mut rows = Vec::new();
    let mut tokens = 0_u64;
    for row in fetched.rows {
        let value = Value::Object(row);
        let cost = EstimateTokens::estimate(&value.to_string()) as u64 + 1;
        if tokens + cost > budget {
            break;
        }
        tokens += cost;
        rows.push(value);
    }
    let shown = rows.len() as u64;
    let truncated = shown < total_rows;
    context.record_read(DataRead {
        sql: Some(sql.to_owned()),
        datasets: fetched.datasets,
        row_count: Some(total_rows),
        row_count_exact: exact,
        shown_rows: Some(shown),
        truncated,
    });
    let note = match (truncated, exact) {
        (false, _) => format!("all {total_rows} rows shown"),
        (true, true) => format!(
            "{shown} of {total_rows} rows shown (the rest exceed the result budget of {budget} tokens); aggregate or filter in SQL to see more"
        ),
        (true, false) => format!(
            "{shown} rows shown of at least {total_rows}; aggregate or filter in SQL to see more"
        ),
    };
    Ok(SqlToolOutput {
        columns: fetched.columns.into_iter().map(|(name, _)| name).collect(),
        rows,
        total_rows,
        total_rows_exact: exact,
        shown_rows: shown,
        truncated,
        note,
    })
}

/// `SELECT COUNT(*)` over the query (itself approved by the allowlist again); `None` if that
/// fails.
async fn count_rows(context: &ToolContext<'_>, sql: &str) -> Option<u64> {
    let inner = sql.trim().trim_end_matches(';').trim();
    let counting = format!("SELECT COUNT(*) AS n FROM ({inner}) AS edgebrain_counted");
    let fetched = fetch(context, &counting, 1).await.ok()?;
    fetched.rows.first()?.get("n")?.as_u64()
}

fn field_type(dtype: &DataType) -> FieldType {
    if dtype.is_temporal() {
        FieldType::Temporal
    } else if dtype.is_primitive_numeric() {
        FieldType::Quantitative
    } else {
        FieldType::Nominal
    }
}

/// `chart`: a Vega-Lite spec over a query's rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chart;

/// Mark types.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MarkInput {
    Bar,
    Line,
    Point,
    Area,
    Arc,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChartInput {
    /// One read-only SQL SELECT producing the rows to draw (same rules as the sql tool).
    pub sql: String,
    /// bar, line, point, area, or arc (pie).
    pub mark: MarkInput,
    /// Result column for the x axis (for arc: the slices' categories).
    pub x: String,
    /// Result column for the y axis (for arc: the slices' sizes).
    pub y: String,
    /// Optional result column to color by.
    #[serde(default)]
    pub color: Option<String>,
    /// Optional chart title.
    #[serde(default)]
    pub title: Option<String>,
}

impl Tool for Chart {
    const NAME: &'static str = "chart";
    const DESCRIPTION: &'static str = "Draw a chart of a SQL query's result: give the query, \
        a mark (bar, line, point, area, arc) and the result columns for x, y and optionally color.";
    type Input = ChartInput;
    type Output = ChartToolOutput;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: ChartInput,
    ) -> BoxFuture<'a, Result<ChartToolOutput, ToolError>> {
        async move {
            let max_rows = u64::from(context.limits.chart_max_rows.max(1));
            let fetched = fetch(context, &input.sql, max_rows).await?;
            let field = |name: &str| -> Result<FieldDef, ToolError> {
                fetched
                    .columns
                    .iter()
                    .find(|(column, _)| column == name)
                    .map(|(column, kind)| FieldDef {
                        field: column.clone(),
                        kind: *kind,
                    })
                    .ok_or_else(|| ToolError::InvalidInput {
                        tool: "chart".to_owned(),
                        message: format!(
                            "the result has no column `{name}` (columns: {})",
                            fetched
                                .columns
                                .iter()
                                .map(|(c, _)| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            };
            let (x, y) = (field(&input.x)?, field(&input.y)?);
            let color = input.color.as_deref().map(field).transpose()?;
            let (mark, encoding) = match input.mark {
                MarkInput::Arc => (
                    ChartMark::Arc,
                    ChartEncoding {
                        theta: Some(FieldDef {
                            kind: FieldType::Quantitative,
                            ..y
                        }),
                        color: Some(color.unwrap_or(FieldDef {
                            kind: FieldType::Nominal,
                            ..x
                        })),
                        ..ChartEncoding::default()
                    },
                ),
                // A bar per value of x: ids, years and codes are numbers, yet bars placed on a
                // numeric axis come out as slivers at their positions (store 5, 20, 28).
                MarkInput::Bar => (
                    ChartMark::Bar,
                    ChartEncoding {
                        x: Some(FieldDef {
                            kind: match x.kind {
                                FieldType::Quantitative => FieldType::Nominal,
                                other => other,
                            },
                            ..x
                        }),
                        y: Some(y),
                        color,
                        theta: None,
                    },
                ),
                other => (
                    match other {
                        MarkInput::Bar => ChartMark::Bar,
                        MarkInput::Line => ChartMark::Line,
                        MarkInput::Point => ChartMark::Point,
                        MarkInput::Area | MarkInput::Arc => ChartMark::Area,
                    },
                    ChartEncoding {
                        x: Some(x),
                        y: Some(y),
                        color,
                        theta: None,
                    },
                ),
            };
            let rows = fetched.rows.len() as u64;
            context.record_read(DataRead {
                sql: Some(input.sql.clone()),
                datasets: fetched.datasets,
                row_count: Some(rows),
                row_count_exact: !fetched.more,
                shown_rows: Some(rows),
                truncated: fetched.more,
            });
            Ok(ChartToolOutput {
                spec: ChartSpec {
                    schema: VEGA_LITE_SCHEMA.to_owned(),
                    title: input.title,
                    mark,
                    encoding,
                    data: InlineData {
                        values: fetched.rows.into_iter().map(Value::Object).collect(),
                    },
                },
                rows,
                truncated: fetched.more,
            })
        }
        .boxed()
    }
}

fn dataset_ref(info: &DatasetInfo) -> DatasetRef {
    DatasetRef {
        id: info.id.clone(),
        name: info.name.clone(),
        version: info.version,
    }
}

/// A query named a dataset the caller cannot read. The model gets the names it can query and
/// what to do when none fits: small models otherwise answer a question the data cannot answer
/// (the weather, customers) from memory once their query failed (BENCHMARKS.md, "Local models").
async fn missing_dataset(context: &ToolContext<'_>, message: &str) -> ToolError {
    let names = match context.services.data.datasets.list(context.owner).await {
        Ok(datasets) => datasets
            .iter()
            .map(|dataset| dataset.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        Err(error) => return data_error(error),
    };
    ToolError::MissingDataset {
        message: message.to_owned(),
        datasets: names,
    }
}

/// What the model reads when a query named a missing dataset.
pub(super) fn missing_dataset_hint(message: &str, names: &str) -> String {
    if names.is_empty() {
        return format!(
            "{message}; there are no datasets to query, so the data cannot answer this question"
        );
    }
    format!(
        "{message}; the datasets are: {names}. If none of them holds what the question asks, \
         answer that the data cannot answer it, without numbers"
    )
}

/// A data-plane error as the model sees it: client errors verbatim (they say what to fix),
/// server errors generic (details go to the log).
fn data_error(error: DataError) -> ToolError {
    match error {
        DataError::Store(_) | DataError::Internal(_) => {
            tracing::error!(error = %crate::telemetry::error_chain(&error), "data tool failed");
            ToolError::Failed("internal error while reading the data".to_owned())
        }
        other => ToolError::Failed(other.to_string()),
    }
}
