//! Liveness (`GET /health`) and readiness (`GET /ready`) reports.

use serde::{Deserialize, Serialize};

/// Which edgebrain service produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Edge,
    Brain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Unavailable,
}

/// Liveness: the process is up and serving HTTP. Says nothing about dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthReport {
    pub status: Status,
    pub service: Service,
    /// The crate version of the answering service.
    pub version: String,
}

/// Readiness: the service can do useful work (its dependencies answer).
/// Sent with 200 when `status` is `ok`, 503 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadinessReport {
    pub status: Status,
    pub service: Service,
    pub version: String,
    pub checks: Vec<DependencyCheck>,
}

/// One dependency probed by a readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DependencyCheck {
    /// e.g. `database`.
    pub name: String,
    pub status: Status,
    /// Wall time the probe took, in milliseconds.
    pub latency_ms: u64,
    /// Backend detail such as `sqlite` or `postgres`; never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why the dependency is unavailable (only when `status` is `unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_report_wire_shape() {
        let report = ReadinessReport {
            status: Status::Ok,
            service: Service::Brain,
            version: "0.1.0".into(),
            checks: vec![DependencyCheck {
                name: "database".into(),
                status: Status::Ok,
                latency_ms: 2,
                detail: Some("sqlite".into()),
                error: None,
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "ok", "service": "brain", "version": "0.1.0",
                "checks": [{"name": "database", "status": "ok", "latency_ms": 2, "detail": "sqlite"}]
            })
        );
        assert_eq!(
            serde_json::from_value::<ReadinessReport>(json).unwrap(),
            report
        );
    }
}
