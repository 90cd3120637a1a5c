//! Grounded answers (issue 16) over real HTTP, against the scripted model server: provenance of
//! data answers, the grounding check, finish reasons, and the notice for models without tools.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use shared_types::agent::GroundingStatus;
use shared_types::chat::{ChatReply, FinishReason, RunState};
use shared_types::data::DatasetInfo;

use crate::agent::{DATA_TOOLS, SALES_CSV, agent_app, new_thread, of_type, turn, turn_with};
use crate::chat::{assert_well_formed_success, get_run, messages, send, text_of, types, usage};
use crate::datasets::upload_csv;
use crate::helpers::{BACKENDS, Backend, Caller, TestApp};
use crate::scripted_llm::{Reply, Scripted};
use brain::agent::driver::{WITHHELD_ANSWER, cannot_answer_text};

const GROUP: &str = "SELECT store, SUM(units) AS units FROM sales GROUP BY store ORDER BY store";
/// `GROUP`'s result over `SALES_CSV` as the brain states it after an answer that left its
/// numbers out.
const GROUP_TABLE: &str =
    "The query's result:\n\n| store | units |\n| --- | --- |\n| A | 7 |\n| B | 5 |\n| C | 1 |\n";

/// The assistant message of `run_id` as stored.
async fn stored_reply(app: &TestApp, caller: &Caller, thread: &str, run_id: &str) -> Value {
    let page = messages(app, caller, thread).await;
    let message = page
        .messages
        .into_iter()
        .find(|m| {
            m.run_id.as_deref() == Some(run_id) && m.role == shared_types::chat::Role::Assistant
        })
        .expect("the reply is stored");
    serde_json::to_value(message).unwrap()
}

fn parts_of_type<'a>(message: &'a Value, kind: &str) -> Vec<&'a Value> {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|part| part["type"] == kind)
        .collect()
}

fn position(stream: &[(Option<u64>, Value)], found: impl Fn(&Value) -> bool) -> usize {
    stream
        .iter()
        .position(|(_, chunk)| found(chunk))
        .expect("the chunk is in the stream")
}

#[tokio::test]
async fn a_data_answer_carries_its_provenance_and_a_verified_grounding_in_stream_and_store() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Tools(vec![(
                "chart",
                json!({"sql": GROUP, "mark": "bar", "x": "store", "y": "units"}),
            )]),
            Reply::Text(vec![
                "Store A sold 7 of all ",
                "13 units (54%), ",
                "2 more than B.",
            ]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        let sales = upload_csv(&app, &alice, "sales", SALES_CSV).await;
        assert_eq!(sales.version, 1);
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "Which store sold the most?").await;

        assert_well_formed_success(&stream);
        let inputs = of_type(&stream, "tool-input-available");
        let provenance = of_type(&stream, "data-provenance");
        assert_eq!(provenance.len(), 2, "{:?}", types(&stream));
        let dataset = json!([{"id": sales.id, "name": "sales", "version": 1}]);
        for ((part, input), tool) in provenance.iter().zip(&inputs).zip(["sql", "chart"]) {
            assert_eq!(part["id"], input["toolCallId"]);
            assert_eq!(
                part["data"],
                json!({"toolCallId": input["toolCallId"], "tool": tool, "sql": GROUP,
                       "datasets": dataset, "rowCount": 3, "rowCountExact": true, "shownRows": 3,
                       "truncated": false})
            );
            // Reported right after the tool's output, within its step.
            let output = position(&stream, |c| {
                c["type"] == "tool-output-available" && c["toolCallId"] == input["toolCallId"]
            });
            assert_eq!(stream[output + 1].1, **part);
        }
        let grounding = of_type(&stream, "data-grounding");
        assert_eq!(grounding.len(), 1);
        assert_eq!(grounding[0]["id"], "grounding");
        assert_eq!(grounding[0]["data"]["status"], "verified");
        assert_eq!(grounding[0]["data"]["toolCalls"], 2);
        let claims: Vec<(&str, &str)> = grounding[0]["data"]["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["text"].as_str().unwrap(), c["basis"].as_str().unwrap()))
            .collect();
        assert_eq!(
            claims,
            [
                ("7", "tool-output"),
                ("13", "total"),
                ("54%", "percentage"),
                ("2", "difference")
            ]
        );
        let finish = of_type(&stream, "finish")[0];
        assert_eq!(finish["finishReason"], "stop");
        assert_eq!(finish["messageMetadata"]["finishReason"], "stop");

        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(
            (run.state, run.finish_reason, run.grounding),
            (
                RunState::Succeeded,
                Some(FinishReason::Stop),
                Some(GroundingStatus::Verified)
            )
        );
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        assert_eq!(
            parts_of_type(&stored, "data-provenance"),
            provenance,
            "{backend}: stored as streamed"
        );
        assert_eq!(parts_of_type(&stored, "data-grounding"), grounding);
        assert_eq!(stored["metadata"]["finishReason"], "stop");
        assert_eq!(stored["metadata"]["runId"], run_id.as_str());
        assert_eq!(usage(&app, &alice).await.grounding.verified, 1);
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"brain_chat_grounding_total{status="verified"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"brain_chat_finish_reasons_total{reason="stop"} 1"#),
            "{metrics}"
        );

        // A new version of the dataset: the next answer names it.
        let replaced = app
            .send_as(
                &alice,
                app.client
                    .put(app.url(&format!("/api/v1/datasets/{}", sales.id)))
                    .header(CONTENT_TYPE, "text/csv")
                    .body("store,units\nA,1\n"),
            )
            .await;
        assert_eq!(replaced.status(), StatusCode::OK);
        let replaced: DatasetInfo = replaced.json().await.unwrap();
        assert_eq!(replaced.version, 2);
        scripted.set_script(vec![
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["Only store A is left, with 1 unit."]),
        ]);
        let (_, stream) = turn(&app, &alice, &thread.id, "And now?").await;
        let provenance = of_type(&stream, "data-provenance");
        assert_eq!(
            provenance[0]["data"]["datasets"],
            json!([{"id": sales.id, "name": "sales", "version": 2}])
        );
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "verified"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn numbers_no_tool_produced_are_flagged_and_counted() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["Store A sold ", "470.71 units."]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "How many units did A sell?").await;
        let grounding = &of_type(&stream, "data-grounding")[0]["data"];
        assert_eq!(
            *grounding,
            json!({"status": "unverified", "toolCalls": 1,
                   "claims": [{"text": "470.71", "value": 470.71}]})
        );
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.grounding, Some(GroundingStatus::Unverified));
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        assert_eq!(
            parts_of_type(&stored, "data-grounding")[0]["data"],
            *grounding
        );

        // No tool called at all: nothing can back the number (and the answer is withheld).
        scripted.set_script(vec![Reply::Text(vec!["There are 25 stores."])]);
        let (_, stream) = turn(&app, &alice, &thread.id, "How many stores are there?").await;
        assert_eq!(text_of(&stream), WITHHELD_ANSWER);
        let grounding = &of_type(&stream, "data-grounding")[0]["data"];
        assert_eq!(
            (&grounding["status"], &grounding["toolCalls"]),
            (&json!("unverified"), &json!(0))
        );
        // Numbers of the question itself are not claims to verify; no numbers, no verdict.
        scripted.set_script(vec![Reply::Text(vec!["The top 3 are in the table."])]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Show the top 3 stores.").await;
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "verified"
        );
        scripted.set_script(vec![Reply::Text(vec!["Hello! Ask me about your data."])]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Hi").await;
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"],
            json!({"status": "no-claims", "claims": [], "toolCalls": 0})
        );

        let counts = usage(&app, &alice).await.grounding;
        assert_eq!(
            (counts.verified, counts.unverified, counts.no_claims),
            (1, 2, 1)
        );
        // Another caller's runs are not counted.
        assert_eq!(
            usage(&app, &Caller::user("bob")).await.grounding,
            Default::default()
        );
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"brain_chat_grounding_total{status="unverified"} 2"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"brain_chat_grounding_total{status="no-claims"} 1"#),
            "{metrics}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn invented_numbers_after_queries_that_found_nothing_are_withheld() {
    for backend in BACKENDS {
        let weather = json!({"sql": "SELECT * FROM weather WHERE city = 'Berlin'"});
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("sql", weather.clone())]),
            Reply::Text(vec![
                "It was sunny in Berlin, ",
                "15 degrees and 60% humidity.",
            ]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;

        let question = "What was the weather in Berlin on 1 March?";
        let (run_id, stream) = turn(&app, &alice, &thread.id, question).await;
        assert_well_formed_success(&stream);
        // Not one character of the invented answer reached the client.
        let all = serde_json::to_string(&stream).unwrap();
        assert!(
            !all.contains("sunny") && !all.contains("15 degrees"),
            "{all}"
        );
        let no_weather = cannot_answer_text("no dataset named `weather`", "sales");
        assert_eq!(text_of(&stream), no_weather);
        let notice = &of_type(&stream, "data-notice")[0];
        assert_eq!(notice["data"]["kind"], "answer-withheld");
        // The verdict is the withheld answer's: which numbers nothing produced.
        let grounding = &of_type(&stream, "data-grounding")[0]["data"];
        assert_eq!(grounding["status"], "unverified");
        assert_eq!(grounding["claims"].as_array().unwrap().len(), 2);
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.grounding, Some(GroundingStatus::Unverified));
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        let texts: Vec<&Value> = parts_of_type(&stored, "text")
            .into_iter()
            .map(|part| &part["text"])
            .collect();
        assert_eq!(texts, [no_weather.as_str()]);
        assert_eq!(
            parts_of_type(&stored, "data-notice")[0]["data"],
            notice["data"]
        );

        // Words invented after a query of a missing dataset carry no number to check: they are
        // replaced all the same, and so is an honest reply (the brain's says what is missing).
        for invented in [
            vec!["It was sunny ", "in Berlin."],
            vec![
                "The data cannot answer it: ",
                "there is no weather dataset.",
            ],
        ] {
            scripted.set_script(vec![
                Reply::Tools(vec![("sql", weather.clone())]),
                Reply::Text(invented.clone()),
            ]);
            let (_, stream) = turn(&app, &alice, &thread.id, question).await;
            assert_well_formed_success(&stream);
            assert_eq!(text_of(&stream), no_weather, "{invented:?}");
            assert_eq!(
                of_type(&stream, "data-notice")[0]["data"]["kind"],
                "answer-withheld"
            );
            assert_ne!(
                of_type(&stream, "data-grounding")[0]["data"]["status"],
                "unverified",
                "no numbers, so nothing unverified"
            );
        }
        // A guess written before the query (the default model wrote the weather, then a
        // made-up table, then queried `weather`) never reaches the client either.
        scripted.set_script(vec![
            Reply::TextThenTools(
                vec!["The weather was sunny. ", "| city | weather |"],
                vec![("sql", weather.clone())],
            ),
            Reply::Text(vec!["The data cannot answer it."]),
        ]);
        let (_, stream) = turn(&app, &alice, &thread.id, question).await;
        assert_well_formed_success(&stream);
        let all = serde_json::to_string(&stream).unwrap();
        assert!(!all.contains("sunny") && !all.contains("| city"), "{all}");
        assert_eq!(text_of(&stream), no_weather);
        // A preamble before a query that returns data goes the same way; the answer streams.
        scripted.set_script(vec![
            Reply::TextThenTools(vec!["Let me look. "], vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["A sold 7 units, B 5 and C 1."]),
        ]);
        let (run_id, stream) = turn(&app, &alice, &thread.id, "Units per store?").await;
        assert_eq!(text_of(&stream), "A sold 7 units, B 5 and C 1.");
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "verified"
        );
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        let texts: Vec<&Value> = parts_of_type(&stored, "text")
            .into_iter()
            .map(|part| &part["text"])
            .collect();
        assert_eq!(texts, ["A sold 7 units, B 5 and C 1."]);
        // A query of an existing dataset that fails otherwise leaves a reply without numbers
        // as written.
        scripted.set_script(vec![
            Reply::Tools(vec![("sql", json!({"sql": "SELECT nope FROM sales"}))]),
            Reply::Text(vec!["That column does not exist."]),
        ]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Show nope.").await;
        assert_eq!(text_of(&stream), "That column does not exist.");
        assert!(of_type(&stream, "data-notice").is_empty());
        // Numbers backed by a query that returned data stream as written, even when an
        // earlier query of the turn failed.
        scripted.set_script(vec![
            Reply::Tools(vec![("sql", weather)]),
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["Store A sold ", "470.71 units."]),
        ]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Units of store A?").await;
        assert_eq!(
            text_of(&stream),
            format!("Store A sold 470.71 units.{GROUP_TABLE}")
        );
        assert!(of_type(&stream, "data-notice").is_empty());
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "unverified"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn a_reply_cut_at_the_output_limit_ends_with_finish_reason_length() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![Reply::CutOff(vec!["Store A sold ", "the mo"])]).await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "Tell me everything.").await;
        assert_well_formed_success(&stream);
        assert_eq!(text_of(&stream), "Store A sold the mo");
        let finish = of_type(&stream, "finish")[0];
        assert_eq!(finish["finishReason"], "length");
        assert_eq!(finish["messageMetadata"]["finishReason"], "length");
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(
            (run.state, run.finish_reason),
            (RunState::Succeeded, Some(FinishReason::Length))
        );
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        assert_eq!(stored["metadata"]["finishReason"], "length");
        // The stored event log replays the same ending.
        let replay = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("/api/v1/runs/{run_id}/events"))),
            )
            .await;
        let replayed =
            crate::chat::chunks(&crate::helpers::EventReader::new(replay).collect().await);
        assert_eq!(of_type(&replayed, "finish")[0]["finishReason"], "length");

        // The JSON answer says the same.
        let response = send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "Go on.", "stream": false}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let reply: ChatReply = response.json().await.unwrap();
        assert_eq!(reply.run.finish_reason, Some(FinishReason::Length));
        assert_eq!(
            reply.message.unwrap().metadata.unwrap().finish_reason,
            Some(FinishReason::Length)
        );
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert!(
            metrics.contains(r#"brain_chat_finish_reasons_total{reason="length"} 2"#),
            "{metrics}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn step_limits_refusals_and_failures_have_their_finish_reasons() {
    let scripted = Scripted::start(vec![Reply::Tools(vec![("list_datasets", json!({}))])]).await;
    let agent = format!(
        "{DATA_TOOLS}\n[agents.limits]\nmax_steps = 2\n[agents.guardrails]\nblocked_phrases = [\"launch codes\"]\n"
    );
    let mut app = agent_app(Backend::Sqlite, &scripted, &agent).await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    let (run_id, stream) = turn(&app, &alice, &thread.id, "List them forever.").await;
    assert_eq!(of_type(&stream, "finish")[0]["finishReason"], "tool-calls");
    assert_eq!(
        get_run(&app, &alice, &run_id).await.finish_reason,
        Some(FinishReason::ToolCalls)
    );

    let (run_id, stream) = turn(&app, &alice, &thread.id, "Tell me the launch codes.").await;
    assert_eq!(
        of_type(&stream, "finish")[0]["finishReason"],
        "content-filter"
    );
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(
        (run.finish_reason, run.grounding),
        (Some(FinishReason::ContentFilter), None),
        "a refusal is not checked"
    );

    // The provider breaks off mid-reply: the run fails with finish reason `error`.
    scripted.set_script(vec![Reply::BrokenOff(vec!["Store A"])]);
    let (run_id, stream) = turn(&app, &alice, &thread.id, "Which store?").await;
    assert_eq!(of_type(&stream, "finish")[0]["finishReason"], "error");
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(
        (run.state, run.finish_reason, run.grounding),
        (RunState::Failed, Some(FinishReason::Error), None)
    );
    app.stop().await;
}

#[tokio::test]
async fn an_agent_that_needs_tools_says_so_on_a_model_without_them() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![Reply::Text(vec!["Probably store 7."])]).await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn_with(
            &app,
            &alice,
            &thread.id,
            json!({"content": "Which store sold the most?", "model": "no-tools"}),
        )
        .await;
        assert_well_formed_success(&stream);
        let notice = &stream[2].1;
        assert_eq!(notice["type"], "data-notice", "{:?}", types(&stream));
        assert_eq!(notice["id"], "tools-unavailable");
        assert_eq!(notice["data"]["kind"], "tools-unavailable");
        let message = notice["data"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("The model `no-tools` cannot call tools")
                && message.contains("`coach`")
                && message.contains("sql"),
            "{message}"
        );
        // No tools were offered, and the answer's number is not verified.
        let request = scripted.requests().pop().unwrap();
        assert!(request.get("tools").is_none(), "{request}");
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "unverified"
        );
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        assert_eq!(parts_of_type(&stored, "data-notice"), [notice]);

        // The same agent on its tool model says nothing of the kind; an agent without tools
        // neither.
        scripted.set_script(vec![Reply::Text(vec!["Ask me."])]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Hello").await;
        assert!(of_type(&stream, "data-notice").is_empty());
        let plain = new_thread(&app, &alice, Some("plain")).await;
        let (_, stream) = turn_with(
            &app,
            &alice,
            &plain.id,
            json!({"content": "Hello", "model": "no-tools"}),
        )
        .await;
        assert!(of_type(&stream, "data-notice").is_empty());
        assert!(of_type(&stream, "data-grounding").is_empty());
        app.stop().await;
    }
}

#[tokio::test]
async fn a_chart_asked_for_is_drawn_after_the_answer_and_the_answer_keeps_its_numbers() {
    for backend in BACKENDS {
        let chart = json!({"sql": GROUP, "mark": "bar", "x": "store", "y": "units"});
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["Store A sold 7 units, ", "B 5 and C 1."]),
            Reply::Tools(vec![("chart", chart.clone())]),
            // A model call after the owed chart would take this text: none may happen.
            Reply::Text(vec!["Here is the chart."]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) =
            turn(&app, &alice, &thread.id, "Units by store? Show a chart.").await;

        assert_well_formed_success(&stream);
        let requests = scripted.requests();
        assert_eq!(
            requests.len(),
            3,
            "{backend}: no model call after the chart"
        );
        let offered = |request: &Value| -> Vec<String> {
            request["tools"]
                .as_array()
                .map(|tools| {
                    tools
                        .iter()
                        .map(|tool| tool["function"]["name"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            offered(&requests[1]).len() > 1,
            "the answer's call offers every tool"
        );
        assert_eq!(offered(&requests[2]), ["chart"]);
        assert_eq!(requests[2]["tool_choice"], "required");
        // The model sees its own answer before drawing.
        let context = requests[2]["messages"].to_string();
        assert!(
            context.contains("Store A sold 7 units, B 5 and C 1."),
            "{context}"
        );

        assert_eq!(text_of(&stream), "Store A sold 7 units, B 5 and C 1.");
        let kinds = types(&stream);
        for kind in ["start-step", "finish-step"] {
            assert_eq!(
                kinds.iter().filter(|t| *t == kind).count(),
                3,
                "{backend}: three steps (sql, answer, chart): {kinds:?}"
            );
        }
        let names: Vec<&str> = of_type(&stream, "tool-input-available")
            .iter()
            .map(|c| c["toolName"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sql", "chart"]);
        let grounding = of_type(&stream, "data-grounding");
        assert_eq!(grounding[0]["data"]["status"], "verified");
        let finish = of_type(&stream, "finish")[0];
        assert_eq!(
            finish["finishReason"], "stop",
            "the answer's reason, not the chart call's"
        );
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(
            (run.state, run.finish_reason),
            (RunState::Succeeded, Some(FinishReason::Stop))
        );
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        let kinds: Vec<&str> = stored["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|part| part["type"].as_str().unwrap())
            .collect();
        let text = kinds.iter().position(|k| *k == "text").unwrap();
        let drawn = kinds.iter().rposition(|k| *k == "dynamic-tool").unwrap();
        assert!(
            text < drawn,
            "{backend}: the answer, then its chart: {kinds:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_answer_that_leaves_out_numbers_of_a_small_result_is_followed_by_the_result() {
    for backend in BACKENDS {
        let scripted = Scripted::start(vec![
            Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
            Reply::Text(vec!["The top stores are A, ", "B and C."]),
        ])
        .await;
        let mut app = agent_app(backend, &scripted, DATA_TOOLS).await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "Top stores by units?").await;
        assert_well_formed_success(&stream);
        assert_eq!(
            text_of(&stream),
            format!("The top stores are A, B and C.{GROUP_TABLE}")
        );
        // Its own text part, after the answer and before the verdict, which reads the model's
        // words only (no numbers: nothing to verify).
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        let texts: Vec<&str> = parts_of_type(&stored, "text")
            .iter()
            .map(|part| part["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["The top stores are A, B and C.", GROUP_TABLE]);
        let grounding = &of_type(&stream, "data-grounding")[0]["data"];
        assert_eq!(grounding["status"], "no-claims");

        // An answer stating every number of the result is left alone; so is one whose rounding
        // covers them.
        for answer in ["A sold 7 units, B 5 and C 1.", "A: 7.0, B: 5.0, C: 1.0."] {
            scripted.set_script(vec![
                Reply::Tools(vec![("sql", json!({"sql": GROUP}))]),
                Reply::Text(vec![answer]),
            ]);
            let (_, stream) = turn(&app, &alice, &thread.id, "Units per store?").await;
            assert_eq!(text_of(&stream), answer);
        }
        // Later turns show the model the answer, not the brain's table (small models copied
        // its pattern into invented answers).
        let later = scripted.requests().last().unwrap()["messages"].to_string();
        assert!(later.contains("The top stores are A, B and C."), "{later}");
        assert!(!later.contains("The query's result"), "{later}");

        // The model reads floats rounded to what an answer states; the stream keeps them exact.
        upload_csv(&app, &alice, "prices", "item,price\nx,24686.030869999996\n").await;
        let exact = "SELECT item, price * 1.0 AS price FROM prices";
        scripted.set_script(vec![
            Reply::Tools(vec![("sql", json!({"sql": exact}))]),
            Reply::Text(vec!["Item x costs 24,686.03."]),
        ]);
        let (_, stream) = turn(&app, &alice, &thread.id, "Price of x?").await;
        assert_eq!(text_of(&stream), "Item x costs 24,686.03.");
        let output = &of_type(&stream, "tool-output-available")[0]["output"];
        assert_eq!(output["rows"][0]["price"], 24_686.030_869_999_996);
        let requests = scripted.requests();
        let seen = requests.last().unwrap()["messages"].to_string();
        assert!(seen.contains(r#"\"price\":24686.03}"#), "{seen}");
        assert!(!seen.contains("24686.0308"), "{seen}");
        assert_eq!(
            of_type(&stream, "data-grounding")[0]["data"]["status"],
            "verified"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn text_written_instead_of_a_required_tool_call_is_dropped_and_the_call_made_again() {
    for backend in BACKENDS {
        let weather = json!({"sql": "SELECT * FROM weather WHERE city = 'Berlin'"});
        let scripted = Scripted::start(vec![
            // llama.cpp's grammar binds only once a call opens: the default model answered the
            // weather question from memory although a tool was required.
            Reply::Text(vec!["The weather in Berlin was sunny ", "all day."]),
            Reply::Tools(vec![("sql", weather)]),
            Reply::Text(vec!["It was sunny."]),
        ])
        .await;
        let mut app = agent_app(
            backend,
            &scripted,
            &format!("{DATA_TOOLS}\ntool_choice = \"required-first\""),
        )
        .await;
        let alice = Caller::user("alice");
        upload_csv(&app, &alice, "sales", SALES_CSV).await;
        let thread = new_thread(&app, &alice, None).await;

        let (run_id, stream) = turn(&app, &alice, &thread.id, "Weather in Berlin?").await;
        assert_well_formed_success(&stream);
        let all = serde_json::to_string(&stream).unwrap();
        assert!(!all.contains("sunny"), "{backend}: {all}");
        assert_eq!(
            text_of(&stream),
            cannot_answer_text("no dataset named `weather`", "sales")
        );
        let requests = scripted.requests();
        assert_eq!(requests.len(), 3, "{backend}");
        // The second call requires a tool again, without the ignored text, with a reminder.
        assert_eq!(requests[1]["tool_choice"], "required");
        let second = requests[1]["messages"].as_array().unwrap();
        assert_eq!(second.last().unwrap()["role"], "user");
        assert!(
            second.last().unwrap()["content"]
                .as_str()
                .unwrap()
                .starts_with("Call a tool first"),
            "{second:?}"
        );
        assert!(!requests[1]["messages"].to_string().contains("sunny"));
        assert_ne!(requests[2]["tool_choice"], "required");
        // The reminder is not part of the thread.
        let page = messages(&app, &alice, &thread.id).await;
        assert_eq!(page.messages.len(), 2);
        let stored = stored_reply(&app, &alice, &thread.id, &run_id).await;
        assert!(!stored.to_string().contains("sunny"));
        app.stop().await;
    }
}

#[tokio::test]
async fn a_bar_chart_gives_each_number_on_x_its_own_bar_and_a_line_keeps_the_axis() {
    let by_units = "SELECT units, COUNT(*) AS n FROM sales GROUP BY units ORDER BY units";
    let chart = |mark: &str| json!({"sql": by_units, "mark": mark, "x": "units", "y": "n"});
    let scripted = Scripted::start(vec![
        Reply::Tools(vec![("chart", chart("bar")), ("chart", chart("line"))]),
        Reply::Text(vec!["Done."]),
    ])
    .await;
    let mut app = agent_app(Backend::Sqlite, &scripted, DATA_TOOLS).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", SALES_CSV).await;
    let thread = new_thread(&app, &alice, None).await;

    let (_, stream) = turn(&app, &alice, &thread.id, "Chart sales by units").await;
    let outputs = of_type(&stream, "tool-output-available");
    let x_types: Vec<&Value> = outputs
        .iter()
        .map(|output| &output["output"]["spec"]["encoding"]["x"]["type"])
        .collect();
    assert_eq!(x_types, [&json!("nominal"), &json!("quantitative")]);
    app.stop().await;
}
