//! Brains of one fleet on one PostgreSQL database (issue 18): run leases, the reaper that fails
//! a run whose brain stopped exactly once, following a run through a brain other than the one
//! running it, and draining at shutdown. Runs are held mid-stream by the scripted model's gate
//! ([`Reply::Held`]), never by sleeping; lease expiry is simulated by moving the injected clock.

use std::time::{Duration, Instant};

use brain::clock::Clock;
use brain::store::admin::{count_run_event_listeners, terminate_run_event_listeners};
use brain::store::feed::RunSignal;
use brain::{Application, Config, Extras};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::chat::{Run, RunState, STREAM_DONE};
use shared_types::error::ErrorCode;
use shared_types::headers::DRAINING;

use crate::agent::{config_files, new_thread};
use crate::chat::{chunks, get_run, replay, run_events, run_id_of, send, types};
use crate::helpers::{
    Backend, Caller, EventReader, ReceivedEvent, TEST_TIMEOUT, TestApp, TestDatabase, assert_error,
    postgres_server_url,
};
use crate::scripted_llm::{Gate, Reply, Scripted};

/// A brain answering with `scripted`, on `database`.
async fn brain_on(
    database: TestDatabase,
    scripted: &Scripted,
    clock: Clock,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let files = config_files(scripted, "");
    let mut config = database.config();
    config.chat.llm_config = Some(files.llm.clone());
    config.chat.agents_config = Some(files.agents.clone());
    adjust(&mut config);
    let extras = Extras {
        clock,
        ..Extras::default()
    };
    let application = Application::build_with(config, extras)
        .await
        .unwrap_or_else(|error| panic!("the brain failed to build: {error:#}"));
    TestApp::run(application, database)
}

/// The first brain of a fleet, on a fresh database.
async fn first_brain(backend: Backend, scripted: &Scripted) -> TestApp {
    brain_on(
        TestDatabase::new(backend).await,
        scripted,
        Clock::system(),
        |_| {},
    )
    .await
}

/// Another brain (a brain id of its own) on `first`'s database.
async fn peer(
    first: &TestApp,
    scripted: &Scripted,
    clock: Clock,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    brain_on(first.database.sharing(), scripted, clock, adjust).await
}

/// A scripted model that holds its reply mid-sentence until the gate opens. What comes before
/// is longer than what the output guardrail holds back (32 chars), so some text streams.
async fn held_model() -> (Scripted, Gate) {
    let gate = Gate::new();
    let scripted = Scripted::start(vec![Reply::Held {
        before: vec![
            "Counting slowly and carefully from one: ",
            "one, two, three, four, five, six, seven, ",
            "eight, nine, ten, eleven, twelve, ",
        ],
        after: vec!["thirteen, fourteen, ", "and that is all."],
        gate: gate.clone(),
    }])
    .await;
    (scripted, gate)
}

/// Starts a reply on `app` and reads its stream up to its first text delta (the model is held
/// at its gate): returns the run id, the events read and the rest of the stream.
async fn held_run(app: &TestApp, caller: &Caller) -> (String, Vec<ReceivedEvent>, EventReader) {
    let thread = new_thread(app, caller, None).await;
    let response = send(
        app,
        caller,
        &thread.id,
        json!({"content": "Count to four."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let run_id = run_id_of(&response);
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();
    while let Some(event) = reader.next().await {
        let text = event.data.contains("\"text-delta\"");
        seen.push(event);
        if text {
            break;
        }
    }
    (run_id, seen, reader)
}

fn count(stream: &[(Option<u64>, Value)], kind: &str) -> usize {
    types(stream).iter().filter(|t| *t == kind).count()
}

/// The whole stream of a [`held_run`]: the events seen while it was held, then the rest.
async fn whole_stream(seen: &[ReceivedEvent], rest: EventReader) -> Vec<(Option<u64>, Value)> {
    let mut stream = chunks(seen);
    stream.extend(chunks(&rest.collect().await));
    stream
}

/// `stream` ends with a finish and `[DONE]`, with no error on the way.
fn assert_finished_cleanly(stream: &[(Option<u64>, Value)]) {
    let kinds = types(stream);
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["finish", STREAM_DONE],
        "{kinds:?}"
    );
    assert_eq!(count(stream, "error"), 0, "{kinds:?}");
}

#[tokio::test]
async fn a_second_brain_starting_leaves_the_first_brains_live_run_alone() {
    let (scripted, gate) = held_model().await;
    let mut a = first_brain(Backend::Postgres, &scripted).await;
    let alice = Caller::user("alice");
    let (run_id, seen, rest) = held_run(&a, &alice).await;

    // B starts on the same database while A's run is live (A's lease is).
    let mut b = peer(&a, &scripted, Clock::system(), |_| {}).await;
    let run: Run = get_run(&b, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Running, "{run:?}");

    gate.open();
    assert_finished_cleanly(&whole_stream(&seen, rest).await);
    assert_eq!(
        get_run(&b, &alice, &run_id).await.state,
        RunState::Succeeded
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_run_on_one_brain_is_followed_through_another_every_event_once_in_order() {
    let (scripted, gate) = held_model().await;
    let mut a = first_brain(Backend::Postgres, &scripted).await;
    let mut b = peer(&a, &scripted, Clock::system(), |_| {}).await;
    let alice = Caller::user("alice");
    let (run_id, seen, rest) = held_run(&a, &alice).await;
    assert!(seen.len() > 2, "{seen:?}");

    // A client that saw two events reconnects through B while the run is held on A.
    let after = 2;
    let mut on_b = run_events(&b, &alice, &run_id, after).await;
    let first = on_b.next().await.expect("the stored events through B");
    assert_eq!(first.id.as_deref(), Some("3"));
    // Only the brain running it can cancel it (for now); B says so instead of "finished".
    let cancel = b
        .send_as(
            &alice,
            b.client
                .post(b.url(&format!("/api/v1/runs/{run_id}/cancel"))),
        )
        .await;
    let body = assert_error(cancel, ErrorCode::Conflict).await;
    assert!(body.error.message.contains("another brain"), "{body:?}");
    gate.open();
    let mut through_b = vec![first];
    through_b.extend(on_b.collect().await);

    let on_a = whole_stream(&seen, rest).await;
    let through_b = chunks(&through_b);
    assert_eq!(
        through_b,
        on_a.iter()
            .filter(|(id, _)| id.is_none_or(|id| id > after))
            .cloned()
            .collect::<Vec<_>>(),
        "B relays exactly A's events after the cursor, in order, then the end"
    );
    let ids: Vec<u64> = through_b.iter().filter_map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (after + 1..after + 1 + ids.len() as u64).collect::<Vec<_>>()
    );
    let kinds = types(&through_b);
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["finish", STREAM_DONE],
        "{kinds:?}"
    );

    // After the end, a full replay through B equals what A streamed.
    assert_eq!(replay(&b, &alice, &run_id).await, on_a);
    b.stop().await;
    a.stop().await;
}

/// Waits (bounded) until `count` run event listeners are connected to `database`.
async fn listeners_connected(database: &TestDatabase, count: u64) {
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        let connected = count_run_event_listeners(&postgres_server_url(), database.postgres_name())
            .await
            .unwrap();
        if connected == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{connected} of {count} listeners connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval, bounded above
    }
}

#[tokio::test]
async fn a_follower_survives_the_loss_of_its_brains_listening_connection() {
    let (scripted, gate) = held_model().await;
    let mut a = first_brain(Backend::Postgres, &scripted).await;
    let mut b = peer(&a, &scripted, Clock::system(), |_| {}).await;
    listeners_connected(&a.database, 2).await;

    // Both listening connections die; each brain reconnects, then tells its followers to
    // read again (notifications sent meanwhile are lost).
    let mut signals = b.store.run_signals();
    let killed = terminate_run_event_listeners(&postgres_server_url(), a.database.postgres_name())
        .await
        .unwrap();
    assert_eq!(killed, 2);
    let resync = tokio::time::timeout(TEST_TIMEOUT, async {
        loop {
            if signals.next().await == RunSignal::Resync {
                return;
            }
        }
    })
    .await;
    assert!(resync.is_ok(), "no resync after the reconnect");
    listeners_connected(&a.database, 2).await;

    // And the notifications flow again: a run on A followed through B, every event once.
    let alice = Caller::user("alice");
    let (run_id, seen, rest) = held_run(&a, &alice).await;
    let on_b = run_events(&b, &alice, &run_id, 0).await;
    gate.open();
    let on_a = whole_stream(&seen, rest).await;
    assert_eq!(chunks(&on_b.collect().await), on_a);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_run_whose_brain_stopped_renewing_is_failed_once_by_racing_reapers() {
    let (scripted, gate) = held_model().await;
    // A renews often, so it notices quickly that it lost the lease.
    let mut a = brain_on(
        TestDatabase::new(Backend::Postgres).await,
        &scripted,
        Clock::system(),
        |config| {
            config.chat.run_lease_ms = 3_000;
            config.chat.run_lease_renew_ms = 500;
        },
    )
    .await;
    // B and C reap only when told to (their periodic reaper's first turn is minutes away).
    let quiet = |config: &mut Config| {
        config.chat.run_lease_ms = 600_000;
        config.chat.run_lease_renew_ms = 300_000;
    };
    let (b_clock, c_clock) = (Clock::system(), Clock::system());
    let mut b = peer(&a, &scripted, b_clock.clone(), quiet).await;
    let mut c = peer(&a, &scripted, c_clock.clone(), quiet).await;
    let alice = Caller::user("alice");
    let (run_id, seen, rest) = held_run(&a, &alice).await;
    // Wait (through B) until A has stored what it streamed so far.
    let mut stored = run_events(&b, &alice, &run_id, 0).await;
    while let Some(event) = stored.next().await {
        if event.data.contains("\"text-delta\"") {
            break;
        }
    }
    drop(stored);

    // Nothing expired yet: neither reaper touches the run.
    assert_eq!(b.chat.reap_expired_runs().await.unwrap(), 0);
    // For B and C, A has not renewed its lease for an hour: A stopped.
    b_clock.advance(Duration::from_secs(3600));
    c_clock.advance(Duration::from_secs(3600));
    let (by_b, by_c) = tokio::join!(b.chat.reap_expired_runs(), c.chat.reap_expired_runs());
    assert_eq!(
        by_b.unwrap() + by_c.unwrap(),
        1,
        "exactly one reaper fails the run"
    );

    let run = get_run(&c, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.error.as_deref(), Some(brain::chat::LEASE_EXPIRED));
    assert!(run.finished_at_ms.is_some());

    // The stored log: what A had stored, then exactly one error and one finish.
    let log = replay(&b, &alice, &run_id).await;
    assert_eq!(count(&log, "error"), 1, "{:?}", types(&log));
    assert_eq!(count(&log, "finish"), 1, "{:?}", types(&log));
    assert_eq!(types(&log)[0], "start");
    let kinds = types(&log);
    assert_eq!(&kinds[kinds.len() - 3..], ["error", "finish", STREAM_DONE]);
    let ids: Vec<u64> = log.iter().filter_map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());

    // A client of A that saw more than A stored still learns how the run ended.
    let beyond = seen.len() as u64 + 50;
    let ending = chunks(
        &run_events(&c, &alice, &run_id, beyond)
            .await
            .collect()
            .await,
    );
    assert_eq!(types(&ending), ["error", "finish", STREAM_DONE]);
    assert_eq!(ending[0].0, Some(beyond + 1));

    // A notices at its next renewal that the run is not its own any more and stops it; its
    // outcome does not overwrite the reaper's.
    let on_a = chunks(&rest.collect().await);
    assert_eq!(types(&on_a).last().map(String::as_str), Some(STREAM_DONE));
    assert!(
        on_a.iter()
            .any(|(_, chunk)| chunk["errorText"].as_str() == Some(brain::chat::LEASE_LOST)),
        "{on_a:?}"
    );
    let again = get_run(&a, &alice, &run_id).await;
    assert_eq!(again.error.as_deref(), Some(brain::chat::LEASE_EXPIRED));
    let log_again = chunks(&run_events(&b, &alice, &run_id, 0).await.collect().await);
    assert_eq!(log_again, log);
    // Once failed, reapers find nothing more.
    assert_eq!(b.chat.reap_expired_runs().await.unwrap(), 0);

    gate.open();
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn draining_refuses_new_work_and_lets_the_run_in_progress_finish() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (scripted, gate) = held_model().await;
        let mut app = brain_on(
            TestDatabase::new(backend).await,
            &scripted,
            Clock::system(),
            |config| config.server.shutdown_grace_secs = 10,
        )
        .await;
        let alice = Caller::user("alice");
        let (run_id, seen, rest) = held_run(&app, &alice).await;
        let other = new_thread(&app, &alice, None).await;

        app.request_shutdown();
        let deadline = Instant::now() + TEST_TIMEOUT;
        loop {
            let ready = app.get("/ready").await;
            if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
                let report: Value = ready.json().await.unwrap();
                assert_eq!(report["status"], "unavailable", "{report}");
                break;
            }
            assert!(Instant::now() < deadline, "/ready never turned 503");
            tokio::task::yield_now().await;
        }
        assert_eq!(app.get("/health").await.status(), StatusCode::OK);

        // New work: a new run, a query.
        let refused = send(&app, &alice, &other.id, json!({"content": "Hi"})).await;
        assert_eq!(refused.headers()[DRAINING], "1");
        assert_error(refused, ErrorCode::Unavailable).await;
        let query = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/queries/sql"))
                    .json(&json!({"sql": "SELECT 1 AS one"})),
            )
            .await;
        assert_eq!(query.headers()[DRAINING], "1");
        assert_error(query, ErrorCode::Unavailable).await;
        // Reads go on, marked as answered by a draining brain (the edge passes it over).
        let threads = app
            .send_as(&alice, app.client.get(app.url("/api/v1/threads")))
            .await;
        assert_eq!(threads.status(), StatusCode::OK);
        assert_eq!(threads.headers()[DRAINING], "1");

        // The run in progress finishes, and then the brain stops.
        gate.open();
        assert_finished_cleanly(&whole_stream(&seen, rest).await);
        app.stopped(TEST_TIMEOUT).await.unwrap();

        let store = brain::store::Store::connect(&app.database.config().database().unwrap())
            .await
            .unwrap();
        let stored = store.get_run("user:alice", &run_id).await.unwrap().unwrap();
        assert_eq!(stored.run.state, RunState::Succeeded, "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn a_draining_member_of_a_fleet_keeps_its_port_open_to_say_so() {
    let (scripted, _gate) = held_model().await;
    let mut app = brain_on(
        TestDatabase::new(Backend::Sqlite).await,
        &scripted,
        Clock::system(),
        |config| {
            config.chat.brain_id = Some("brain-announcing".to_owned());
            config.server.drain_announce_ms = Some(2_000);
        },
    )
    .await;
    let alice = Caller::user("alice");
    let thread = new_thread(&app, &alice, None).await;

    // Nothing is running, yet for the announce period the port stays open and new work is
    // answered "draining" (an edge then sends it elsewhere), reads are served marked.
    app.request_shutdown();
    let deadline = Instant::now() + TEST_TIMEOUT;
    while app.get("/ready").await.status() != StatusCode::SERVICE_UNAVAILABLE {
        assert!(Instant::now() < deadline, "/ready never turned 503");
        tokio::task::yield_now().await;
    }
    let refused = send(&app, &alice, &thread.id, json!({"content": "Hi"})).await;
    assert_eq!(refused.headers()[DRAINING], "1");
    assert_error(refused, ErrorCode::Unavailable).await;
    let threads = app
        .send_as(&alice, app.client.get(app.url("/api/v1/threads")))
        .await;
    assert_eq!(threads.status(), StatusCode::OK);
    assert_eq!(threads.headers()[DRAINING], "1");
    app.stopped(TEST_TIMEOUT).await.unwrap();
}
