//! `GET /v1/tenants/{tenant}/calls/{call_id}`: one call's whole life, as `switchboard explain
//! --json` shows it (the inbound event, the decision with its reasons rendered, the settings
//! in force with their SETTINGS sequences, the replay check, every dial step and status),
//! found through the call index without scanning CALLS.

use super::{Failure, Flavor, JSON, Shared, authorized};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use switchboard_audit::{AuditError, NoProgress};
use switchboard_contracts::TenantId;

/// The path of one call.
pub(super) const ROUTE: &str = "/v1/tenants/{tenant}/calls/{call_id}";

/// `GET`: the call's life (200), or 404 when no event of the call is stored for the tenant.
pub(super) async fn get_call(
    State(app): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let Path((tenant, call_id)) =
            path.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
        let tenant = TenantId::new(tenant).map_err(|e| Failure::bad_request(&e))?;
        let tenant = authorized(&app, tenant, &headers)?;
        let life = switchboard_audit::explain(&app.js, &call_id, Some(&tenant), &NoProgress)
            .await
            .map_err(|e| match e {
                AuditError::BadInput(reason) => {
                    Failure::new(StatusCode::BAD_REQUEST, "invalid_call_id", reason)
                }
                AuditError::Unavailable { .. } => {
                    tracing::warn!(error = %e, "cannot look a call up");
                    Failure::unavailable("the call history cannot be read now; retry later")
                }
            })?;
        let Some(life) = life else {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "call_not_found",
                format!("no event of call {call_id:?} is stored for tenant {tenant}"),
            ));
        };
        let body = serde_json::to_string(&life).map_err(|e| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot encode the call: {e}"),
            )
        })?;
        Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON)], body).into_response())
    }
    .await;
    result.unwrap_or_else(|failure: Failure| failure.render(Flavor::Json))
}
