use reqwest::StatusCode;
use shared_types::health::{HealthReport, ReadinessReport, Service, Status};

use crate::helpers::{BACKENDS, Backend, spawn_app};

#[tokio::test]
async fn health_reports_ok_with_the_crate_version() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app.get("/health").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let report: HealthReport = response.json().await.unwrap();
    assert_eq!(
        report,
        HealthReport {
            status: Status::Ok,
            service: Service::Brain,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    );
    app.stop().await;
}

#[tokio::test]
async fn ready_reports_the_database_on_both_backends() {
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;

        let response = app.get("/ready").await;

        assert_eq!(response.status(), StatusCode::OK, "{backend}");
        let report: ReadinessReport = response.json().await.unwrap();
        assert_eq!(report.status, Status::Ok);
        assert_eq!(report.service, Service::Brain);
        assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
        let [check] = report.checks.as_slice() else {
            panic!("one check expected: {:?}", report.checks);
        };
        assert_eq!(check.name, "database");
        assert_eq!(check.status, Status::Ok);
        assert_eq!(check.detail.as_deref(), Some(backend.as_str()));
        assert_eq!(check.error, None);
        app.stop().await;
    }
}

#[tokio::test]
async fn ready_is_503_when_the_postgres_database_disappears() {
    let mut app = spawn_app(Backend::Postgres).await;
    assert_eq!(app.get("/ready").await.status(), StatusCode::OK);

    app.database.drop_postgres_now().await;
    let response = app.get("/ready").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "application/json");
    let report: ReadinessReport = response.json().await.unwrap();
    assert_eq!(report.status, Status::Unavailable);
    let check = &report.checks[0];
    assert_eq!(check.status, Status::Unavailable);
    assert_eq!(check.detail.as_deref(), Some("postgres"));
    let error = check.error.as_deref().expect("an error text");
    assert!(
        !error.is_empty() && error.len() < 100,
        "short error text: {error}"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    app.stop().await;
}
