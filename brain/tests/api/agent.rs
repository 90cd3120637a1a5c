//! The agent loop over real HTTP: against a scripted OpenAI-compatible server (a real HTTP
//! server in the test answering with pre-written tool calls, so every run is deterministic),
//! and once end to end against the local tool-capable model.

use std::sync::{Arc, Mutex};

use brain::agent::knowledge::KnowledgeSearch;
use brain::{Application, Extras};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::agent::{
    AgentList, Escalation, EscalationList, EscalationStatus, KnowledgeSource, Urgency,
};
use shared_types::chat::{MessagePage, RunState, STREAM_DONE, Thread};
use shared_types::error::ErrorCode;
use shared_types::knowledge::DocumentChunk;

use crate::chat::{
    assert_well_formed_success, chunks, get_run, messages, replay, run_id_of, send, text_of, types,
};
use crate::datasets::upload_csv;
use crate::helpers::{
    BACKENDS, Backend, Caller, EventReader, ReceivedEvent, TestApp, TestDatabase, assert_error,
    spawn_app_with,
};
use crate::llm_server::tool_llm;
use crate::scripted_llm::{Reply, Scripted};

/// Writes the LLM configuration (model `chat` on the scripted server, tools on; model
/// `no-tools` on the same server without tools) and an agents
/// file whose agent `coach` has `agent_toml` appended (TOML lines of the `[[agents]]` table
/// and its sub-tables).
pub(crate) fn config_files(scripted: &Scripted, agent_toml: &str) -> ConfigFiles {
    let dir = std::env::temp_dir().join(format!("edgebrain-agent-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let llm = dir.join("llm.toml");
    std::fs::write(
        &llm,
        format!(
            "default_model = \"chat\"\n[[providers]]\nname = \"scripted\"\nkind = \"openai-compatible\"\nbase_url = \"{}\"\nmax_retries = 0\n\n[[models]]\nname = \"chat\"\nroute = [{{ provider = \"scripted\", model = \"m\" }}]\ncontext_tokens = 4096\nmax_output_tokens = 64\ntools = true\n\n[[models]]\nname = \"no-tools\"\nroute = [{{ provider = \"scripted\", model = \"m\" }}]\ncontext_tokens = 4096\nmax_output_tokens = 64\n",
            scripted.base_url()
        ),
    )
    .unwrap();
    let agents = dir.join("agents.toml");
    std::fs::write(
        &agents,
        format!(
            "default_agent = \"coach\"\n\n[[agents]]\nname = \"coach\"\ndescription = \"test coach\"\nsystem_prompt = \"You are the coach. Tools: {{{{ tools | join(', ') }}}}.\"\n{agent_toml}\n\n[[agents]]\nname = \"plain\"\nsystem_prompt = \"You are plain.\"\n"
        ),
    )
    .unwrap();
    ConfigFiles { dir, llm, agents }
}

/// A test's LLM and agents configuration files, in a folder of their own that goes when this
/// is dropped (the brain reads them once, when it is built).
pub(crate) struct ConfigFiles {
    dir: std::path::PathBuf,
    pub(crate) llm: std::path::PathBuf,
    pub(crate) agents: std::path::PathBuf,
}

impl Drop for ConfigFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) const DATA_TOOLS: &str = "tools = [\"list_datasets\", \"describe_dataset\", \"sql\", \"chart\", \"search_knowledge\", \"escalate_to_human\"]";

pub(crate) async fn agent_app(backend: Backend, scripted: &Scripted, agent_toml: &str) -> TestApp {
    agent_app_with(backend, scripted, agent_toml, Extras::default()).await
}

async fn agent_app_with(
    backend: Backend,
    scripted: &Scripted,
    agent_toml: &str,
    extras: Extras,
) -> TestApp {
    let files = config_files(scripted, agent_toml);
    let database = TestDatabase::new(backend).await;
    let mut config = database.config();
    config.chat.llm_config = Some(files.llm.clone());
    config.chat.agents_config = Some(files.agents.clone());
    // Uploads of the test datasets.
    config.server.max_body_bytes = 64 * 1024;
    let application = Application::build_with(config, extras)
        .await
        .unwrap_or_else(|error| panic!("the {backend} brain failed to build: {error:#}"));
    TestApp::run(application, database)
}

pub(crate) async fn new_thread(app: &TestApp, caller: &Caller, agent: Option<&str>) -> Thread {
    let mut body = json!({"title": "agent"});
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    let response = app
        .send_as(
            caller,
            app.client.post(app.url("/api/v1/threads")).json(&body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// Sends `content` and returns the run id and the parsed stream.
pub(crate) async fn turn(
    app: &TestApp,
    caller: &Caller,
    thread: &str,
    content: &str,
) -> (String, Vec<(Option<u64>, Value)>) {
    turn_with(app, caller, thread, json!({"content": content})).await
}

/// Sends `body` (a `SendMessage`) and returns the run id and the parsed stream.
pub(crate) async fn turn_with(
    app: &TestApp,
    caller: &Caller,
    thread: &str,
    body: Value,
) -> (String, Vec<(Option<u64>, Value)>) {
    let response = send(app, caller, thread, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let run_id = run_id_of(&response);
    (run_id, chunks(&EventReader::new(response).collect().await))
}

pub(crate) fn of_type<'a>(stream: &'a [(Option<u64>, Value)], kind: &str) -> Vec<&'a Value> {
    stream
        .iter()
        .map(|(_, chunk)| chunk)
        .filter(|chunk| chunk["type"] == kind)
        .collect()
}

pub(crate) const SALES_CSV: &str = "store,units\nA,3\nB,5\nA,4\nC,1\n";

#[tokio::test]
async fn a_multi_step_turn_runs_data_tools_and_streams_every_step() {
    for backend in BACKENDS {
        let group = "SELECT store, SUM(units) AS units FROM sales GROUP BY store ORDER BY store";
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("list_datasets", json!({}))]),
            Reply::Tools(vec![("sql", json!({"sql": group}))]),
            Reply::Tools(vec![(
                "chart",
                json!({"sql": group, "mark": "bar", "x": "store", "y": "units", "title": "Units"}),
            )]),
            Reply::Text(vec!["Store A ", "sold the most."]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;
        assert_eq!(thread.agent.as_deref(), Some("coach"));

        let (run_id, stream) = turn(&app, &alice, &thread.id, "Which store sold most?").await;

        assert_well_formed_success(&stream);
        let kinds = types(&stream);
        assert_eq!(
            kinds.iter().filter(|t| *t == "start-step").count(),
            4,
            "{kinds:?}"
        );
        assert_eq!(
            kinds.iter().filter(|t| *t == "finish-step").count(),
            4,
            "{kinds:?}"
        );
        let outputs = of_type(&stream, "tool-output-available");
        assert_eq!(outputs.len(), 3, "{kinds:?}");
        let inputs = of_type(&stream, "tool-input-available");
        let names: Vec<&str> = inputs
            .iter()
            .map(|c| c["toolName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["list_datasets", "sql", "chart"]);
        for (input, output) in inputs.iter().zip(&outputs) {
            assert_eq!(input["toolCallId"], output["toolCallId"]);
        }
        let listed = &outputs[0]["output"]["datasets"];
        assert_eq!(listed[0]["name"], "sales", "{listed}");
        let sql = &outputs[1]["output"];
        assert_eq!(
            sql["rows"],
            json!([{"store": "A", "units": 7}, {"store": "B", "units": 5}, {"store": "C", "units": 1}])
        );
        assert_eq!(
            (sql["total_rows"].as_u64(), sql["truncated"].as_bool()),
            (Some(3), Some(false))
        );
        let chart = &outputs[2]["output"];
        assert_eq!(
            chart["spec"]["$schema"],
            "https://vega.github.io/schema/vega-lite/v5.json"
        );
        assert_eq!(chart["spec"]["mark"], "bar");
        assert_eq!(
            chart["spec"]["encoding"]["x"],
            json!({"field": "store", "type": "nominal"})
        );
        assert_eq!(
            chart["spec"]["encoding"]["y"],
            json!({"field": "units", "type": "quantitative"})
        );
        assert_eq!(chart["spec"]["data"]["values"], sql["rows"]);
        assert_eq!(
            (chart["rows"].as_u64(), chart["truncated"].as_bool()),
            (Some(3), Some(false))
        );
        // The answer named no numbers: the brain states the (small) result after it.
        assert_eq!(
            text_of(&stream),
            "Store A sold the most.The query's result:\n\n| store | units |\n| --- | --- |\n| A | 7 |\n| B | 5 |\n| C | 1 |\n"
        );

        // The model saw every tool result, offered as typed JSON Schemas.
        let requests = scripted.requests();
        assert_eq!(requests.len(), 4, "{backend}");
        let offered: Vec<&str> = requests[0]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(offered.len(), 6, "{offered:?}");
        assert_eq!(
            requests[0]["tools"][0]["function"]["parameters"]["type"],
            "object"
        );
        assert!(
            requests[0]["messages"][0]["content"]
                .as_str()
                .unwrap()
                .starts_with("You are the coach")
        );
        let last = requests[3]["messages"].as_array().unwrap();
        let tool_results: Vec<&Value> = last.iter().filter(|m| m["role"] == "tool").collect();
        assert_eq!(tool_results.len(), 3);
        assert!(
            tool_results[1]["content"]
                .as_str()
                .unwrap()
                .contains("\"total_rows\":3")
        );

        // Stored on the run and in the reply.
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.state, RunState::Succeeded);
        assert_eq!(run.agent.as_deref(), Some("coach"));
        assert_eq!(run.refusal, None);
        let page = messages(&app, &alice, &thread.id).await;
        let parts = &page.messages[1].parts;
        assert_eq!(
            parts.iter().filter(|p| p["type"] == "dynamic-tool").count(),
            3
        );
        let text = parts.iter().find(|p| p["type"] == "text").unwrap();
        assert_eq!(text["text"], "Store A sold the most.");
        // The grounding check closes the reply (no numbers here).
        assert_eq!(parts.last().unwrap()["type"], "data-grounding");
        assert_eq!(parts.last().unwrap()["data"]["status"], "no-claims");
        assert_eq!(replay(&app, &alice, &run_id).await, stream);
        app.stop().await;
    }
}

#[tokio::test]
async fn sql_results_are_truncated_to_the_token_budget_with_totals_stated() {
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![(
            "sql",
            json!({"sql": "SELECT * FROM numbers ORDER BY n"}),
        )]),
        Reply::Text(vec!["done"]),
    ])
    .await;
    let mut app = agent_app(
        Backend::Sqlite,
        &scripted,
        &format!("{DATA_TOOLS}\n[agents.limits]\nresult_token_budget = 40\n"),
    )
    .await;
    let alice = Caller::user("alice");
    let csv: String = std::iter::once("n,label\n".to_owned())
        .chain((0..200).map(|n| format!("{n},row number {n}\n")))
        .collect();
    upload_csv(&app, &alice, "numbers", &csv).await;
    let thread = new_thread(&app, &alice, None).await;

    let (_, stream) = turn(&app, &alice, &thread.id, "Show the numbers").await;

    let output = &of_type(&stream, "tool-output-available")[0]["output"];
    let shown = output["shown_rows"].as_u64().unwrap();
    assert!((1..200).contains(&shown), "{output}");
    assert_eq!(output["rows"].as_array().unwrap().len() as u64, shown);
    assert_eq!(output["total_rows"], 200);
    assert_eq!(output["total_rows_exact"], true);
    assert_eq!(output["truncated"], true);
    assert!(
        output["note"]
            .as_str()
            .unwrap()
            .contains(&format!("{shown} of 200 rows")),
        "{output}"
    );
    assert_eq!(output["rows"][0]["n"], 0);
    app.stop().await;
}

#[tokio::test]
async fn the_step_cap_ends_a_turn_that_keeps_calling_tools() {
    let scripted = Scripted::start(vec![Reply::Tools(vec![("list_datasets", json!({}))])]).await;
    let mut app = agent_app(
        Backend::Sqlite,
        &scripted,
        &format!(
            "{DATA_TOOLS}\ntool_choice = \"required-first\"\n[agents.limits]\nmax_steps = 2\n"
        ),
    )
    .await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    let (run_id, stream) = turn(&app, &alice, &thread.id, "Loop forever").await;

    let requests = scripted.requests();
    assert_eq!(requests.len(), 2, "two model calls, no more");
    assert!(requests[0].get("tools").is_some());
    assert_eq!(requests[0]["tool_choice"], "required", "required-first");
    assert!(
        requests[1].get("tools").is_none(),
        "the last allowed call offers no tools"
    );
    let kinds = types(&stream);
    assert_eq!(
        kinds.iter().filter(|t| *t == "start-step").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        of_type(&stream, "tool-output-available").len(),
        1,
        "{kinds:?}"
    );
    let abandoned = of_type(&stream, "tool-output-error");
    assert_eq!(abandoned.len(), 1, "{kinds:?}");
    assert!(
        abandoned[0]["errorText"]
            .as_str()
            .unwrap()
            .contains("step limit of 2")
    );
    assert!(text_of(&stream).contains("stopped after 2 steps"));
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["finish-step", "finish", STREAM_DONE]
    );
    let finish = of_type(&stream, "finish")[0];
    assert_eq!(finish["messageMetadata"]["steps"], 2);
    assert_eq!(
        get_run(&app, &alice, &run_id).await.state,
        RunState::Succeeded
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_tool_call_is_fed_back_to_the_model() {
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![
            ("sql", json!({"sql": "DROP TABLE sales"})),
            ("no_such_tool", json!({})),
            (
                "chart",
                json!({"sql": "SELECT 1 AS a", "mark": "bar", "x": "a", "y": "b"}),
            ),
        ]),
        Reply::Text(vec!["Sorry, that failed."]),
    ])
    .await;
    let mut app = agent_app(Backend::Sqlite, &scripted, DATA_TOOLS).await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    let (run_id, stream) = turn(&app, &alice, &thread.id, "Drop it").await;

    let errors = of_type(&stream, "tool-output-error");
    assert_eq!(errors.len(), 3, "{:?}", types(&stream));
    let texts: Vec<&str> = errors
        .iter()
        .map(|e| e["errorText"].as_str().unwrap())
        .collect();
    assert!(texts[0].contains("only a read-only SELECT"), "{texts:?}");
    assert!(
        texts[1].contains("unknown tool `no_such_tool`"),
        "{texts:?}"
    );
    assert!(texts[2].contains("no column `b`"), "{texts:?}");
    // The second model call saw each error as the tool's result.
    let requests = scripted.requests();
    assert_eq!(requests.len(), 2);
    let fed_back: Vec<String> = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fed_back.len(), 3);
    for (content, text) in fed_back.iter().zip(&texts) {
        let value: Value = serde_json::from_str(content).unwrap();
        assert_eq!(value["error"], *text);
    }
    assert_eq!(text_of(&stream), "Sorry, that failed.");
    assert_eq!(
        get_run(&app, &alice, &run_id).await.state,
        RunState::Succeeded
    );
    app.stop().await;
}

/// A knowledge base that answers only for `user:alice`, or never (stalling).
#[derive(Debug)]
struct TestKnowledge {
    stall: bool,
    queries: Mutex<Vec<(String, String, usize)>>,
}

impl KnowledgeSearch for TestKnowledge {
    fn search<'a>(
        &'a self,
        owner: &'a str,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KnowledgeSource>, String>> {
        self.queries
            .lock()
            .unwrap()
            .push((owner.to_owned(), query.to_owned(), limit));
        async move {
            if self.stall {
                std::future::pending::<()>().await;
            }
            if owner != "user:alice" {
                return Ok(Vec::new());
            }
            Ok(vec![
                KnowledgeSource {
                    chunk: DocumentChunk {
                        document_id: "doc-1".into(),
                        document_name: "Returns policy".into(),
                        chunk_index: 2,
                        start: 120,
                        end: 180,
                        text: "Returns are accepted within 30 days.".into(),
                    },
                    score: 0.9,
                },
                KnowledgeSource {
                    chunk: DocumentChunk {
                        document_id: "doc-2".into(),
                        document_name: "Old memo".into(),
                        chunk_index: 0,
                        start: 0,
                        end: 10,
                        text: "irrelevant".into(),
                    },
                    score: 0.1,
                },
            ])
        }
        .boxed()
    }
}

/// An agent app (SQLite) whose `search_knowledge` is served by a [`TestKnowledge`], returned
/// too so that tests can see the queries it got.
async fn app_with_knowledge(
    scripted: &Scripted,
    agent_toml: &str,
    stall: bool,
) -> (TestApp, Arc<TestKnowledge>) {
    let knowledge = Arc::new(TestKnowledge {
        stall,
        queries: Mutex::default(),
    });
    let extras = Extras {
        knowledge: Some(knowledge.clone()),
        ..Extras::default()
    };
    let app = agent_app_with(Backend::Sqlite, scripted, agent_toml, extras).await;
    (app, knowledge)
}

#[tokio::test]
async fn a_tool_that_exceeds_its_timeout_fails_and_the_turn_goes_on() {
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![("search_knowledge", json!({"query": "returns"}))]),
        Reply::Text(vec!["No answer in time."]),
    ])
    .await;
    let (mut app, knowledge) = app_with_knowledge(
        &scripted,
        &format!(
            "{DATA_TOOLS}\n[agents.limits]\ntool_timeouts_ms = {{ search_knowledge = 200 }}\n"
        ),
        true,
    )
    .await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    let started = std::time::Instant::now();
    let (run_id, stream) = turn(&app, &alice, &thread.id, "What is the returns policy?").await;

    let errors = of_type(&stream, "tool-output-error");
    assert_eq!(errors.len(), 1, "{:?}", types(&stream));
    assert_eq!(
        errors[0]["errorText"],
        "the tool `search_knowledge` did not finish within 200 ms"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(knowledge.queries.lock().unwrap().len(), 1);
    assert_eq!(
        scripted.requests().len(),
        2,
        "the model heard about the timeout"
    );
    assert_eq!(text_of(&stream), "No answer in time.");
    assert_eq!(
        get_run(&app, &alice, &run_id).await.state,
        RunState::Succeeded
    );
    app.stop().await;
}

/// Alice asks for the returns policy in a new thread of an app with the test knowledge base
/// (which answers at once) and the `[agents.retrieval]` settings `retrieval`: the app, the
/// knowledge base, her thread and the turn's stream.
async fn ask_for_the_returns_policy(
    scripted: &Scripted,
    retrieval: &str,
) -> (
    TestApp,
    Arc<TestKnowledge>,
    Thread,
    Vec<(Option<u64>, Value)>,
) {
    let agents = format!("{DATA_TOOLS}\n[agents.retrieval]\n{retrieval}");
    let (app, knowledge) = app_with_knowledge(scripted, &agents, false).await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;
    let (_, stream) = turn(&app, &alice, &thread.id, "What is the returns policy?").await;
    (app, knowledge, thread, stream)
}

#[tokio::test]
async fn search_knowledge_returns_chunks_and_cites_them_in_the_stream() {
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![(
            "search_knowledge",
            json!({"query": "returns", "limit": 10}),
        )]),
        Reply::Text(vec!["Within 30 days."]),
    ])
    .await;
    let (mut app, knowledge, thread, stream) =
        ask_for_the_returns_policy(&scripted, "k = 3\nmin_score = 0.5\n").await;
    let alice = Caller::user("alice");

    // Searched as the caller, with the limit capped at k.
    assert_eq!(
        knowledge.queries.lock().unwrap().clone(),
        [("user:alice".to_owned(), "returns".to_owned(), 3)]
    );
    let output = &of_type(&stream, "tool-output-available")[0]["output"];
    assert_eq!(
        output["hits"].as_array().unwrap().len(),
        1,
        "min_score drops the weak hit"
    );
    assert_eq!(output["hits"][0]["document_id"], "doc-1");
    assert_eq!(
        (
            output["hits"][0]["start"].as_u64(),
            output["hits"][0]["end"].as_u64()
        ),
        (Some(120), Some(180))
    );
    let sources = of_type(&stream, "source-document");
    assert_eq!(sources.len(), 1);
    assert_eq!(
        *sources[0],
        json!({"type": "source-document", "sourceId": "doc-1:2", "mediaType": "text/plain",
               "title": "Returns policy",
               "providerMetadata": {"edgebrain": {"documentId": "doc-1", "chunkIndex": 2, "start": 120, "end": 180}}})
    );
    let kinds = types(&stream);
    let position = |kind: &str| kinds.iter().position(|t| t == kind).unwrap();
    assert!(position("tool-output-available") < position("source-document"));
    let page = messages(&app, &alice, &thread.id).await;
    assert!(
        page.messages[1]
            .parts
            .iter()
            .any(|p| p["type"] == "source-document")
    );
    app.stop().await;

    // The brain's own knowledge base (local MiniLM embeddings) by default: the agent finds
    // the caller's uploaded document, never another tenant's, and cites its chunk.
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![(
            "search_knowledge",
            json!({"query": "how many days do customers have to return an item"}),
        )]),
        Reply::Text(vec!["ok"]),
    ])
    .await;
    let mut app = agent_app(
        Backend::Sqlite,
        &scripted,
        &format!("{DATA_TOOLS}\n[agents.retrieval]\nk = 4\nmin_score = 0.2\n"),
    )
    .await;
    let bob = Caller::user("bob");
    let upload = |caller: &Caller, text: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/documents?name=returns.md"))
            .header("content-type", "text/markdown")
            .body(text);
        let caller = caller.clone();
        let app = &app;
        async move {
            let response = app.send_as(&caller, request).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<Value>().await.unwrap()
        }
    };
    let own = upload(
        &alice,
        "# Returns\n\nCustomers may return any item within 30 days of purchase with a receipt.\n",
    )
    .await;
    let foreign = upload(
        &bob,
        "# Returns\n\nItems can be returned within 14 days; bring the original packaging.\n",
    )
    .await;
    let thread = new_thread(&app, &alice, None).await;
    let (_, stream) = turn(&app, &alice, &thread.id, "Return window?").await;
    let output = &of_type(&stream, "tool-output-available")[0]["output"];
    let hits = output["hits"].as_array().unwrap();
    // Scores are cosine similarities, so the agent's min_score means the same everywhere.
    assert!(
        hits.iter()
            .all(|hit| (0.0..=1.0).contains(&hit["score"].as_f64().unwrap()))
    );
    assert!(!hits.is_empty(), "{output}");
    assert!(
        hits.iter().all(|hit| hit["document_id"] == own["id"]),
        "only alice's document: {output}"
    );
    assert_ne!(own["id"], foreign["id"]);
    assert!(hits[0]["text"].as_str().unwrap().contains("30 days"));
    let sources = of_type(&stream, "source-document");
    assert_eq!(
        sources[0]["providerMetadata"]["edgebrain"]["documentId"],
        own["id"]
    );
    app.stop().await;
}

#[tokio::test]
async fn prefetch_retrieves_before_the_first_model_call_and_cites() {
    let scripted = Scripted::start(vec![Reply::Text(vec!["Within 30 days."])]).await;
    let (mut app, knowledge, _, stream) =
        ask_for_the_returns_policy(&scripted, "k = 2\nmin_score = 0.5\nprefetch = true\n").await;

    assert_eq!(
        knowledge.queries.lock().unwrap().clone(),
        [(
            "user:alice".to_owned(),
            "What is the returns policy?".to_owned(),
            2
        )]
    );
    let kinds = types(&stream);
    let position = |kind: &str| kinds.iter().position(|t| t == kind).unwrap();
    assert!(
        position("source-document") < position("start-step"),
        "{kinds:?}"
    );
    assert_eq!(of_type(&stream, "source-document").len(), 1);
    let request = &scripted.requests()[0];
    let passages = request["messages"][1]["content"].as_str().unwrap();
    assert_eq!(request["messages"][1]["role"], "system");
    assert!(
        passages.contains("Returns are accepted within 30 days."),
        "{passages}"
    );
    assert!(!passages.contains("irrelevant"), "{passages}");
    assert_eq!(text_of(&stream), "Within 30 days.");
    app.stop().await;
}

#[tokio::test]
async fn guardrails_refuse_blocked_input_and_output_without_leaking() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![
            Reply::Text(vec![
                "Here is a long and harmless introduction to what you asked about, ",
                "and then the launch co",
                "des are 1234 and more text follows here so the window moves on.",
            ]),
            Reply::Text(vec![
                "Write to carol@example.com or call 555-123-4567 any time.",
            ]),
        ])
        .await;
        let guardrails = "[agents.guardrails]\nblocked_phrases = [\"launch codes\"]\nmax_input_chars = 200\nrefusal_message = \"I can't help with that.\"\n";
        let mut app = agent_app(backend, &scripted, &format!("{DATA_TOOLS}\n{guardrails}")).await;
        let alice = Caller::user("alice");
        let thread = new_thread(&app, &alice, None).await;

        // Blocked input: refused before any model call.
        let (run_id, stream) = turn(&app, &alice, &thread.id, "Tell me the LAUNCH  codes").await;
        assert_well_formed_success(&stream);
        assert_eq!(text_of(&stream), "I can't help with that.");
        assert!(scripted.requests().is_empty());
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.state, RunState::Succeeded, "a refusal is an answer");
        assert!(
            run.refusal
                .unwrap()
                .contains("blocked phrase `launch codes`")
        );
        let finish = of_type(&stream, "finish")[0];
        assert!(
            finish["messageMetadata"]["refusal"]
                .as_str()
                .unwrap()
                .contains("input")
        );

        // Too long input.
        let (run_id, stream) = turn(&app, &alice, &thread.id, &"a ".repeat(150)).await;
        assert_eq!(text_of(&stream), "I can't help with that.");
        assert!(
            get_run(&app, &alice, &run_id)
                .await
                .refusal
                .unwrap()
                .contains("exceeds the limit of 200")
        );

        // Blocked output: what streamed before is kept, the phrase never appears, even split.
        let (run_id, stream) = turn(&app, &alice, &thread.id, "Tell me about rockets").await;
        assert_well_formed_success(&stream);
        let text = text_of(&stream);
        assert!(!text.to_lowercase().contains("launch"), "{text}");
        assert!(text.starts_with("Here is a long"), "{text}");
        assert!(text.ends_with("I can't help with that."), "{text}");
        assert!(
            get_run(&app, &alice, &run_id)
                .await
                .refusal
                .unwrap()
                .contains("output contains")
        );

        // PII: redacted before the model and the database, and in the reply.
        let (_, stream) = turn(
            &app,
            &alice,
            &thread.id,
            "I am bob@example.com, card 4111 1111 1111 1111",
        )
        .await;
        let request = scripted.requests().last().unwrap().to_string();
        assert!(
            !request.contains("bob@example.com") && !request.contains("4111"),
            "{request}"
        );
        assert_eq!(
            text_of(&stream),
            "Write to [redacted] or call [redacted] any time."
        );
        let page = messages(&app, &alice, &thread.id).await;
        let stored = page.messages.iter().rev().nth(1).unwrap();
        assert_eq!(stored.parts[0]["text"], "I am [redacted], card [redacted]");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_moderation_hook_refuses_flagged_input() {
    let scripted = Scripted::start(vec![Reply::Text(vec!["fine answer"])]).await;
    let guardrails = format!(
        "[agents.guardrails]\nmoderation = {{ base_url = \"{}\" }}\n",
        scripted.base_url()
    );
    let mut app = agent_app(
        Backend::Sqlite,
        &scripted,
        &format!("{DATA_TOOLS}\n{guardrails}"),
    )
    .await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    let (run_id, stream) = turn(&app, &alice, &thread.id, "something evil").await;
    assert!(scripted.requests().is_empty());
    assert!(
        get_run(&app, &alice, &run_id)
            .await
            .refusal
            .unwrap()
            .contains("flagged by moderation (violence)")
    );
    assert!(!text_of(&stream).is_empty());

    let (run_id, stream) = turn(&app, &alice, &thread.id, "something nice").await;
    assert_eq!(text_of(&stream), "fine answer");
    assert_eq!(get_run(&app, &alice, &run_id).await.refusal, None);
    app.stop().await;
}

#[tokio::test]
async fn escalations_are_recorded_listed_and_resolved_by_operators() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![(
                "escalate_to_human",
                json!({"reason": "customer wants a refund over the limit", "urgency": "high"}),
            )]),
            Reply::Text(vec!["A colleague will contact you."]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        let operator = Caller::user("olga").with_scopes(&["edgebrain:operator"]);
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "I want a human").await;

        let output = &of_type(&stream, "tool-output-available")[0]["output"];
        assert_eq!(output["status"], "open");
        assert_eq!(output["urgency"], "high");
        let id = output["escalation_id"].as_str().unwrap().to_owned();

        // Only operators see the queue.
        for caller in [&alice, &Caller::user("mallory").with_scopes(&["admin"])] {
            let response = app
                .send_as(caller, app.client.get(app.url("/api/v1/escalations")))
                .await;
            assert_error(response, ErrorCode::Forbidden).await;
        }
        let anonymous = app
            .send(app.client.get(app.url("/api/v1/escalations")))
            .await;
        assert_error(anonymous, ErrorCode::Unauthorized).await;
        let list: EscalationList = app
            .get_json_as(&operator, "/api/v1/escalations?status=open")
            .await;
        assert_eq!(list.escalations.len(), 1, "{backend}");
        let escalation = &list.escalations[0];
        assert_eq!(escalation.id, id);
        assert_eq!(escalation.owner, "user:alice");
        assert_eq!(escalation.thread_id, thread.id);
        assert_eq!(escalation.run_id.as_deref(), Some(run_id.as_str()));
        assert_eq!(escalation.agent, "coach");
        assert_eq!(escalation.urgency, Urgency::High);
        assert_eq!(escalation.status, EscalationStatus::Open);
        assert!(escalation.reason.contains("refund"));

        // The operator reads the escalated conversation (Alice's, not theirs); nobody else can,
        // through this route or the thread's own.
        let transcript = |id: &str, query: &str| {
            app.client
                .get(app.url(&format!("/api/v1/escalations/{id}/messages{query}")))
        };
        let page: MessagePage = app
            .send_as(&operator, transcript(&id, ""))
            .await
            .json()
            .await
            .unwrap();
        let texts: Vec<&str> = page
            .messages
            .iter()
            .flat_map(|message| &message.parts)
            .filter(|part| part["type"] == "text")
            .filter_map(|part| part["text"].as_str())
            .collect();
        assert_eq!(
            texts,
            ["I want a human", "A colleague will contact you."],
            "{backend}"
        );
        let first: MessagePage = app
            .send_as(&operator, transcript(&id, "?limit=1"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(first.messages.len(), 1);
        let cursor = first.next_cursor.expect("a second page");
        let second: MessagePage = app
            .send_as(
                &operator,
                transcript(&id, &format!("?limit=1&cursor={cursor}")),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(second.messages[0].id, page.messages[1].id);
        for caller in [&alice, &Caller::user("mallory").with_scopes(&["admin"])] {
            assert_error(
                app.send_as(caller, transcript(&id, "")).await,
                ErrorCode::Forbidden,
            )
            .await;
        }
        let operator_thread = app
            .send_as(
                &operator,
                app.client
                    .get(app.url(&format!("/api/v1/threads/{}/messages", thread.id))),
            )
            .await;
        assert_error(operator_thread, ErrorCode::NotFound).await;
        for unknown in ["nope", "%C3%BC%F0%9F%99%82", "a%00b"] {
            let response = app.send_as(&operator, transcript(unknown, "")).await;
            assert!(
                matches!(response.status().as_u16(), 400 | 404),
                "{unknown}: {}",
                response.status()
            );
        }
        assert_error(
            app.send_as(&operator, transcript(&id, "?limit=0")).await,
            ErrorCode::InvalidQuery,
        )
        .await;

        let resolve = |id: String| {
            app.client
                .post(app.url(&format!("/api/v1/escalations/{id}/resolve")))
                .json(&json!({"resolution": "refunded by phone"}))
        };
        assert_error(
            app.send_as(&alice, resolve(id.clone())).await,
            ErrorCode::Forbidden,
        )
        .await;
        let resolved: Escalation = app
            .send_as(&operator, resolve(id.clone()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(resolved.status, EscalationStatus::Resolved);
        assert_eq!(resolved.resolved_by.as_deref(), Some("user:olga"));
        assert_eq!(resolved.resolution.as_deref(), Some("refunded by phone"));
        assert!(resolved.resolved_at_ms.is_some());
        assert_error(
            app.send_as(&operator, resolve(id.clone())).await,
            ErrorCode::Conflict,
        )
        .await;
        assert_error(
            app.send_as(&operator, resolve("nope".into())).await,
            ErrorCode::NotFound,
        )
        .await;
        let open: EscalationList = app
            .get_json_as(&operator, "/api/v1/escalations?status=open")
            .await;
        assert!(open.escalations.is_empty());
        let all: EscalationList = app.get_json_as(&operator, "/api/v1/escalations").await;
        assert_eq!(all.escalations.len(), 1);
        let bad = app
            .send_as(
                &operator,
                app.client.get(app.url("/api/v1/escalations?status=maybe")),
            )
            .await;
        assert_error(bad, ErrorCode::InvalidQuery).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn agents_are_listed_and_chosen_per_thread() {
    let scripted = Scripted::start(vec![Reply::Text(vec!["hi"])]).await;
    let mut app = agent_app(Backend::Sqlite, &scripted, DATA_TOOLS).await;
    let alice = Caller::user("alice");

    let list: AgentList = app.get_json_as(&alice, "/api/v1/agents").await;
    assert_eq!(list.default_agent, "coach");
    let names: Vec<&str> = list.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["coach", "plain"]);
    assert_eq!(list.agents[0].tools.len(), 6);
    assert!(list.agents[0].default && !list.agents[1].default);

    let unknown = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/threads"))
                .json(&json!({"agent": "nope"})),
        )
        .await;
    assert_error(unknown, ErrorCode::BadRequest).await;

    let thread = new_thread(&app, &alice, Some("plain")).await;
    assert_eq!(thread.agent.as_deref(), Some("plain"));
    let (run_id, stream) = turn(&app, &alice, &thread.id, "Hello").await;
    assert_well_formed_success(&stream);
    let request = &scripted.requests()[0];
    assert!(request.get("tools").is_none(), "plain has no tools");
    assert_eq!(request["messages"][0]["content"], "You are plain.");
    assert_eq!(
        get_run(&app, &alice, &run_id).await.agent.as_deref(),
        Some("plain")
    );
    app.stop().await;

    // The built-in agents file: the retail coach is the default.
    let mut app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let list: AgentList = app.get_json_as(&alice, "/api/v1/agents").await;
    assert_eq!(list.default_agent, "retail-coach");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_agents_file_stops_the_brain_with_a_clear_error() {
    let scripted = Scripted::start(vec![]).await;
    for (agent_toml, expected) in [
        ("tools = [\"sql\", \"shell\"]", "unknown tool `shell`"),
        ("model = \"gpt-17\"", "unknown model `gpt-17`"),
        (
            "[agents.guardrails]\npii_patterns = [\"([a-z\"]",
            "is not a valid regex",
        ),
    ] {
        let files = config_files(&scripted, agent_toml);
        let database = TestDatabase::new(Backend::Sqlite).await;
        let mut config = database.config();
        config.chat.llm_config = Some(files.llm.clone());
        config.chat.agents_config = Some(files.agents.clone());
        let error = format!("{:#}", Application::build(config).await.unwrap_err());
        assert!(error.contains("invalid agents configuration"), "{error}");
        assert!(error.contains(expected), "{agent_toml}: {error}");
    }
}

#[tokio::test]
async fn the_agent_cannot_read_another_tenants_data_or_files() {
    for backend in BACKENDS {
        let scripted_calls = |data_dir: String, bob_id: String| {
            vec![
                ("sql", json!({"sql": "SELECT * FROM secrets"})),
                (
                    "sql",
                    json!({"sql": "SELECT s.* FROM sales JOIN secrets s ON true"}),
                ),
                (
                    "sql",
                    json!({"sql": format!("SELECT * FROM read_parquet('{data_dir}/datasets/{bob_id}.parquet')")}),
                ),
                (
                    "sql",
                    json!({"sql": "SELECT * FROM read_csv('/etc/passwd')"}),
                ),
                ("sql", json!({"sql": "SELECT * FROM '/etc/passwd'"})),
                (
                    "sql",
                    json!({"sql": format!("SELECT * FROM \"{data_dir}/brain.db\"")}),
                ),
                ("sql", json!({"sql": "SELECT * FROM main.secrets"})),
                (
                    "sql",
                    json!({"sql": "SELECT 1 AS x; SELECT * FROM secrets"}),
                ),
                ("describe_dataset", json!({"dataset": "secrets"})),
                ("describe_dataset", json!({"dataset": bob_id})),
                ("describe_dataset", json!({"dataset": "../../etc/passwd"})),
                (
                    "chart",
                    json!({"sql": "SELECT * FROM secrets", "mark": "bar", "x": "code", "y": "n"}),
                ),
                ("sql", json!({"sql": "SELECT * FROM sales"})),
            ]
        };
        let scripted = Scripted::start(vec![]).await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let (alice, bob) = (Caller::user("alice"), Caller::user("bob"));
        let secrets = upload_csv(&app, &bob, "secrets", "code,n\nTOPSECRET,1\n").await;
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let data_dir = app.database.data_dir.display().to_string();
        let calls = scripted_calls(data_dir, secrets.id.clone());
        let count = calls.len();
        scripted.set_script(vec![Reply::Tools(calls), Reply::Text(vec!["done"])]);
        let thread = new_thread(&app, &alice, None).await;

        let (_, stream) = turn(&app, &alice, &thread.id, "Read everything").await;

        let errors = of_type(&stream, "tool-output-error");
        let outputs = of_type(&stream, "tool-output-available");
        assert_eq!(errors.len(), count - 1, "{backend}: {:?}", types(&stream));
        assert_eq!(outputs.len(), 1, "only alice's own dataset answers");
        assert_eq!(outputs[0]["output"]["total_rows"], 4);
        let all = serde_json::to_string(&stream).unwrap();
        assert!(
            !all.contains("TOPSECRET"),
            "{backend}: another tenant's data leaked"
        );
        assert!(!all.contains("root:"), "{backend}: a server file leaked");
        let texts: Vec<&str> = errors
            .iter()
            .map(|e| e["errorText"].as_str().unwrap())
            .collect();
        assert!(texts[0].contains("no dataset named `secrets`"), "{texts:?}");
        assert!(texts[1].contains("no dataset named `secrets`"), "{texts:?}");
        // The model learns what it can query (only alice's names) and what to say otherwise.
        for text in [texts[0], texts[8]] {
            assert!(text.contains("the datasets are: sales."), "{text}");
            assert!(text.contains("the data cannot answer it"), "{text}");
        }
        assert!(texts[2].contains("table functions"), "{texts:?}");
        assert!(texts[3].contains("table functions"), "{texts:?}");
        assert!(texts[6].contains("not a plain dataset name"), "{texts:?}");
        assert!(texts[7].contains("exactly one SQL statement"), "{texts:?}");
        assert!(texts[8].contains("no dataset named `secrets`"), "{texts:?}");
        // Another tenant's dataset (by name or id) looks exactly like a missing one.
        assert_eq!(
            texts[8].replace("secrets", "X"),
            texts[9].replace(&secrets.id, "X")
        );
        assert_eq!(
            texts[8].replace("secrets", "X"),
            texts[10].replace("../../etc/passwd", "X")
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_local_tool_model_answers_a_data_question_with_a_real_sql_call() {
    let dir = std::env::temp_dir().join(format!("edgebrain-agent-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let agents = dir.join("agents.toml");
    // Steered for a 0.5B model: one tool, a system prompt that asks for it, a low cap.
    std::fs::write(
        &agents,
        "default_agent = \"sql-coach\"\n\n[[agents]]\nname = \"sql-coach\"\ntools = [\"sql\"]\nsystem_prompt = \"You are a data assistant. To answer, call the sql tool with a SQL SELECT over the table stores.\"\n[agents.limits]\nmax_steps = 2\nresult_token_budget = 200\n",
    )
    .unwrap();
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.chat.local_llm_url = tool_llm().base_url.clone();
        config.chat.local_llm_tools = true;
        config.chat.local_llm_max_output_tokens = 60;
        config.chat.agents_config = Some(agents);
        // The sample's stores and products (transactions kept tiny for a debug build).
        config.data.sample_transactions = 100;
    })
    .await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    // A 0.5B model on two busy cores may think longer than the suite's per-chunk timeout:
    // read the whole stream within a generous bound instead.
    let response = send(
        &app,
        &alice,
        &thread.id,
        json!({"content": "How many stores are there? Use the sql tool."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run_id = run_id_of(&response);
    let body = tokio::time::timeout(std::time::Duration::from_secs(240), response.text())
        .await
        .expect("the run ends within 240 s")
        .unwrap();
    let events: Vec<ReceivedEvent> = body
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| ReceivedEvent {
            event: None,
            id: block
                .lines()
                .find_map(|line| line.strip_prefix("id: "))
                .map(str::to_owned),
            data: block
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n"),
            received_at: std::time::Instant::now(),
        })
        .collect();
    let stream = chunks(&events);

    let kinds = types(&stream);
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["finish", STREAM_DONE],
        "{kinds:?}"
    );
    let inputs = of_type(&stream, "tool-input-available");
    assert!(!inputs.is_empty(), "no tool call: {stream:?}");
    assert_eq!(inputs[0]["toolName"], "sql");
    assert!(inputs[0]["input"]["sql"].is_string(), "{}", inputs[0]);
    // Its result (rows, or the allowlist's refusal of bad SQL) is in the stream.
    let call_id = &inputs[0]["toolCallId"];
    let result = stream
        .iter()
        .map(|(_, chunk)| chunk)
        .find(|chunk| {
            (chunk["type"] == "tool-output-available" || chunk["type"] == "tool-output-error")
                && chunk["toolCallId"] == *call_id
        })
        .unwrap_or_else(|| panic!("no result for the call: {kinds:?}"));
    if result["type"] == "tool-output-available" {
        assert!(result["output"]["rows"].is_array(), "{result}");
        assert!(result["output"]["total_rows"].is_u64(), "{result}");
    }
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.provider.as_deref(), Some("local"));
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
