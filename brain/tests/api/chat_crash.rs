//! Kill -9 of the real brain binary during a run, then a restart on the same database: every
//! committed message is there and the run's state is honest (`failed`, "interrupted"). Runs of
//! a brain that never comes back are failed by the other brains' reapers (`fleet.rs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::chat::{MessagePage, RUN_ID_HEADER, Role, Run, RunState, STREAM_DONE, Thread};

use crate::helpers::{BACKENDS, Caller, EventReader, TEST_EDGE_SECRET, TestDatabase, send_as_with};
use crate::llm_server::{chat_llm, free_port};

struct BrainProcess {
    child: Child,
    address: String,
}

impl Drop for BrainProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_brain(database: &TestDatabase) -> BrainProcess {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_brain"));
    command
        .env("BRAIN_BIND", format!("127.0.0.1:{port}"))
        .env("BRAIN_DATA_DIR", &database.data_dir)
        .env("BRAIN_LOCAL_LLM_URL", &chat_llm().base_url)
        .env("BRAIN_LOCAL_LLM_MAX_OUTPUT_TOKENS", "200")
        .env("BRAIN_EDGE_SECRETS", TEST_EDGE_SECRET)
        // The restarted brain takes the id of the one killed: it fails that brain's unfinished
        // runs at once, without waiting for their lease (on SQLite, a fleet of one, it would
        // anyway).
        .env("BRAIN_ID", "crash-test-brain")
        .env_remove("BRAIN_INSECURE_LOCAL")
        // No 1e6-row sample dataset in a debug build.
        .env("BRAIN_SAMPLE_TRANSACTIONS", "0")
        .env_remove("BRAIN_LLM_CONFIG")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = &database.url {
        command.env("DATABASE_URL", url.expose());
    }
    let mut child = command.spawn().expect("start the brain binary");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{address}/ready")).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the brain exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the brain was not ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval, bounded above
    }
    BrainProcess { child, address }
}

#[tokio::test]
async fn kill_9_during_a_run_then_restart_keeps_messages_and_fails_the_run_honestly() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;
        let client = reqwest::Client::new();
        let alice = Caller::user("alice");
        let brain = start_brain(&database).await;
        let url = |path: &str| format!("{}{path}", brain.address);

        let thread: Thread = send_as_with(
            &client,
            &alice,
            client.post(url("/api/v1/threads")).json(&json!({})),
        )
        .await
        .json()
        .await
        .unwrap();
        let messages_path = format!("/api/v1/threads/{}/messages", thread.id);
        let response = send_as_with(
            &client,
            &alice,
            client
                .post(url(&messages_path))
                .json(&json!({"content": "Write a long story about a ship."})),
        )
        .await;
        let run_id = response.headers()[RUN_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let mut reader = EventReader::new(response);
        let mut last_seen = 0_u64;
        while let Some(event) = reader.next().await {
            last_seen = event.id.as_deref().unwrap().parse().unwrap();
            if event.data.contains("\"text-delta\"") {
                break;
            }
        }

        // SIGKILL: no shutdown code runs.
        let mut brain = brain;
        brain.child.kill().unwrap();
        brain.child.wait().unwrap();
        drop(reader);
        drop(brain);

        let brain = start_brain(&database).await;
        let url = |path: &str| format!("{}{path}", brain.address);
        let run: Run = send_as_with(
            &client,
            &alice,
            client.get(url(&format!("/api/v1/runs/{run_id}"))),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(run.state, RunState::Failed, "{backend}");
        assert!(
            run.error.as_deref().unwrap().contains("interrupted"),
            "{run:?}"
        );
        assert!(run.finished_at_ms.is_some());

        let page: MessagePage = send_as_with(&client, &alice, client.get(url(&messages_path)))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            page.messages.len(),
            1,
            "the committed user message, nothing half-written"
        );
        assert_eq!(page.messages[0].role, Role::User);

        // A client reconnecting after the crash gets what the killed brain had stored after its
        // last id (events are stored as they happen), then learns the run's fate: numbered on
        // from its last id, one error, one finish.
        let resumed = send_as_with(
            &client,
            &alice,
            client
                .get(url(&format!("/api/v1/runs/{run_id}/events")))
                .header("last-event-id", last_seen.to_string()),
        )
        .await;
        let events = EventReader::new(resumed).collect().await;
        let data: Vec<&str> = events.iter().map(|event| event.data.as_str()).collect();
        assert!(data.len() >= 3, "{data:?}");
        let kinds: Vec<String> = data[..data.len() - 1]
            .iter()
            .map(|data| {
                let chunk: Value = serde_json::from_str(data).unwrap();
                chunk["type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(&kinds[kinds.len() - 2..], ["error", "finish"], "{kinds:?}");
        assert_eq!(kinds.iter().filter(|kind| *kind == "error").count(), 1);
        let ids: Vec<u64> = events
            .iter()
            .filter_map(|event| event.id.as_deref().map(|id| id.parse().unwrap()))
            .collect();
        assert_eq!(
            ids,
            (last_seen + 1..=last_seen + ids.len() as u64).collect::<Vec<_>>()
        );
        assert_eq!(data[data.len() - 1], STREAM_DONE);

        // The thread is usable again.
        let response = send_as_with(
            &client,
            &alice,
            client
                .post(url(&messages_path))
                .json(&json!({"content": "Hi", "max_output_tokens": 8})),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let events = EventReader::new(response).collect().await;
        assert_eq!(events.last().unwrap().data, STREAM_DONE);
        assert!(events.iter().any(|event| event.data.contains("\"finish\"")));
    }
}
