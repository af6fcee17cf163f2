//! Settings over HTTP (issue 16): `PUT /v1/tenants/{tenant}/settings/{kind}/{id}` publishes the
//! settings event a NATS producer would (same type, subject and deterministic event id) and
//! answers after JetStream stored it; `GET` on the same path returns what is stored. The body
//! is read strictly (an unknown field is refused by name; see `switchboard_contracts::strict`).
//! A version that is not newer than the stored one is 409 with the stored version; two writers
//! racing are kept apart by JetStream's expected-last-subject-sequence check.

use super::{App, Failure, Flavor, JSON, SOURCE, Shared, authorized, body, trace_context};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_contracts::events::entity;
use switchboard_contracts::{
    CompanySettings, ContactSettings, ContractError, Envelope, EventData, NumberSettings, TenantId,
    UserSettings, strict, subjects,
};
use time::OffsetDateTime;

/// The path of one settings entity.
pub(super) const ROUTE: &str = "/v1/tenants/{tenant}/settings/{kind}/{id}";

/// The settings event types, by the `kind` of the path.
trait Kind: EventData + DeserializeOwned + Serialize + PartialEq {
    /// `company`, `number`, `user` or `contact`.
    const KIND: &'static str;
    /// The entity id field the path's id fills when the body leaves it out.
    const ID_FIELD: Option<&'static str>;
    fn version(&self) -> u64;
    /// The path's id as the body's id field holds it.
    fn id_value(id: &str) -> String {
        id.to_string()
    }
}

impl Kind for CompanySettings {
    const KIND: &'static str = entity::COMPANY;
    const ID_FIELD: Option<&'static str> = None;
    fn version(&self) -> u64 {
        self.version
    }
}
impl Kind for NumberSettings {
    const KIND: &'static str = entity::NUMBER;
    const ID_FIELD: Option<&'static str> = Some("number");
    fn version(&self) -> u64 {
        self.version
    }
    /// The path names a number by its E.164 digits (`16502530000`), as its subject does.
    fn id_value(id: &str) -> String {
        format!("+{}", id.trim_start_matches('+'))
    }
}
impl Kind for UserSettings {
    const KIND: &'static str = entity::USER;
    const ID_FIELD: Option<&'static str> = Some("user_id");
    fn version(&self) -> u64 {
        self.version
    }
}
impl Kind for ContactSettings {
    const KIND: &'static str = entity::CONTACT;
    const ID_FIELD: Option<&'static str> = Some("contact_id");
    fn version(&self) -> u64 {
        self.version
    }
}

type SettingPath = Result<Path<(String, String, String)>, PathRejection>;

fn unknown_kind(kind: &str) -> Failure {
    Failure::new(
        StatusCode::NOT_FOUND,
        "unknown_kind",
        format!("no settings of kind {kind:?}: the kinds are company, number, user and contact"),
    )
}

/// The tenant (authorized), kind and id of the path.
fn parts(
    app: &App,
    path: SettingPath,
    headers: &HeaderMap,
) -> Result<(TenantId, String, String), Failure> {
    let Path((tenant, kind, id)) =
        path.map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let tenant = TenantId::new(tenant).map_err(|e| Failure::bad_request(&e))?;
    let tenant = authorized(app, tenant, headers)?;
    Ok((tenant, kind, id))
}

/// `PUT`: validate strictly, refuse a stale version, publish, answer after the ack.
pub(super) async fn put_setting(
    State(app): State<Shared>,
    path: SettingPath,
    headers: HeaderMap,
    raw: Body,
) -> Response {
    let result = async {
        let (tenant, kind, id) = parts(&app, path, &headers)?;
        let bytes = body(&app, &headers, raw, JSON).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::bad_request(&ContractError::Malformed(format!("not JSON: {e}")))
        })?;
        match kind.as_str() {
            entity::COMPANY => put::<CompanySettings>(&app, &headers, tenant, &id, value).await,
            entity::NUMBER => put::<NumberSettings>(&app, &headers, tenant, &id, value).await,
            entity::USER => put::<UserSettings>(&app, &headers, tenant, &id, value).await,
            entity::CONTACT => put::<ContactSettings>(&app, &headers, tenant, &id, value).await,
            other => Err(unknown_kind(other)),
        }
    }
    .await;
    result.unwrap_or_else(|failure| failure.render(Flavor::Json))
}

/// `GET`: the stored settings of the entity, with their version and SETTINGS sequence.
pub(super) async fn get_setting(
    State(app): State<Shared>,
    path: SettingPath,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let (tenant, kind, id) = parts(&app, path, &headers)?;
        match kind.as_str() {
            entity::COMPANY => get::<CompanySettings>(&app, &tenant, &id).await,
            entity::NUMBER => get::<NumberSettings>(&app, &tenant, &id).await,
            entity::USER => get::<UserSettings>(&app, &tenant, &id).await,
            entity::CONTACT => get::<ContactSettings>(&app, &tenant, &id).await,
            other => Err(unknown_kind(other)),
        }
    }
    .await;
    result.unwrap_or_else(|failure| failure.render(Flavor::Json))
}

/// The subject of the entity the path names.
fn subject_of<T: Kind>(tenant: &TenantId, id: &str) -> String {
    let id = match T::KIND {
        entity::NUMBER => id.trim_start_matches('+'),
        _ => id,
    };
    subjects::settings(tenant, T::KIND, id)
}

/// The last event stored on the entity's subject: its SETTINGS sequence and, when it is a
/// valid settings event, its data (a refused one was never in force).
async fn stored<T: Kind>(app: &App, subject: &str) -> Result<Option<(u64, Option<T>)>, Failure> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "cannot read SETTINGS");
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the settings store cannot be read now; retry later",
        )
    };
    match switchboard_bus::last_on_subject(&app.js, switchboard_bus::SETTINGS, subject).await {
        Ok(last) => Ok(last.map(|(seq, payload)| {
            let data = Envelope::<T>::decode(&payload, subject)
                .ok()
                .map(|e| e.data);
            (seq, data)
        })),
        Err(e) => Err(unavailable(&e)),
    }
}

async fn put<T: Kind>(
    app: &App,
    headers: &HeaderMap,
    tenant: TenantId,
    id: &str,
    mut value: Value,
) -> Result<Response, Failure> {
    // The path names the tenant and the entity; the body may leave them out, never contradict.
    if let Value::Object(fields) = &mut value {
        let mut fill = |field: &'static str, expected: String| match fields.get(field) {
            None => {
                fields.insert(field.into(), Value::String(expected));
                Ok(())
            }
            Some(Value::String(given)) if *given == expected => Ok(()),
            Some(given) => Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "path_mismatch",
                format!("`{field}` {given} is not the path's {expected:?}"),
            )),
        };
        fill("tenant_id", tenant.to_string())?;
        if let Some(field) = T::ID_FIELD {
            fill(field, T::id_value(id))?;
        }
    }
    let data: T = strict::from_value(value).map_err(|e| Failure::bad_request(&e))?;
    data.validate().map_err(|e| Failure::bad_request(&e))?;
    let subject = subject_of::<T>(&tenant, id);
    if data.nats_subject() != subject {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "path_mismatch",
            format!(
                "the body is the settings of {}, not of this path",
                data.ce_subject()
            ),
        ));
    }
    let before = stored::<T>(app, &subject).await?;
    let version = data.version();
    if let Some((seq, Some(current))) = &before
        && current.version() >= version
    {
        if *current == data {
            // A retried PUT of what is stored: answered as it was, nothing published.
            return Ok(answer(StatusCode::OK, &data, *seq, true));
        }
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "stale_version",
            format!(
                "version {version} is not newer than the stored version {} (SETTINGS #{seq}); send version {} or higher",
                current.version(),
                current.version() + 1
            ),
        ));
    }
    let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
    let last = before.as_ref().map_or(0, |(seq, _)| *seq);
    match app
        .publisher
        .publish_if_last(&event, &trace_context(headers), last)
        .await
    {
        Ok(Some(published)) => {
            let status = if before.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(answer(
                status,
                &event.data,
                published.sequence,
                published.duplicate,
            ))
        }
        Ok(None) => Err(Failure::new(
            StatusCode::CONFLICT,
            "concurrent_change",
            "the settings changed while this request was written; GET them and retry",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "settings not stored");
            Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event store did not acknowledge in time; retry later",
            ))
        }
    }
}

fn answer<T: Kind>(status: StatusCode, data: &T, sequence: u64, duplicate: bool) -> Response {
    (
        status,
        Json(json!({
            "id": data.event_id(),
            "stream": switchboard_bus::SETTINGS,
            "sequence": sequence,
            "version": data.version(),
            "duplicate": duplicate,
        })),
    )
        .into_response()
}

async fn get<T: Kind>(app: &App, tenant: &TenantId, id: &str) -> Result<Response, Failure> {
    let subject = subject_of::<T>(tenant, id);
    match stored::<T>(app, &subject).await? {
        Some((sequence, Some(data))) => Ok(Json(json!({
            "version": data.version(),
            "sequence": sequence,
            "data": data,
        }))
        .into_response()),
        Some((sequence, None)) => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "the last settings event of {}/{id} (SETTINGS #{sequence}) was refused; see its settings.rejected",
                T::KIND
            ),
        )),
        None => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no settings of {}/{id} are stored", T::KIND),
        )),
    }
}
