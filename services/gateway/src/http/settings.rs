//! Settings over HTTP (issue 16): `PUT /v1/tenants/{tenant}/settings/{kind}/{id}` publishes the
//! settings event a NATS producer would (same type, subject and deterministic event id) and
//! answers after JetStream stored it; `GET` on the same path returns what is stored. The body
//! is read strictly (an unknown field is refused by name; see `switchboard_contracts::strict`).
//! A version that is not newer than the one in force is 409 `stale_version`; a version spent by a refused event (its id still remembered by JetStream) is 409 `version_spent`; two writers
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
use switchboard_audit::settings::{EntityInForce, duplicate_is_same, entity_in_force};
use switchboard_contracts::events::entity;
use switchboard_contracts::{
    CompanySettings, ContactSettings, ContractError, Envelope, EventData, NumberSettings,
    SettingsChange, TenantId, UserSettings, strict, subjects,
};
use time::OffsetDateTime;

/// The path of one settings entity.
pub(super) const ROUTE: &str = "/v1/tenants/{tenant}/settings/{kind}/{id}";

/// The settings event types, by the `kind` of the path.
trait Kind: EventData + DeserializeOwned + Serialize + PartialEq + Clone {
    /// `company`, `number`, `user` or `contact`.
    const KIND: &'static str;
    /// The entity id field the path's id fills when the body leaves it out.
    const ID_FIELD: Option<&'static str>;
    fn version(&self) -> u64;
    /// As a settings change of any kind.
    fn into_change(self) -> SettingsChange;
    /// This kind's settings, if `change` is of this kind.
    fn from_change(change: SettingsChange) -> Option<Self>;
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
    fn into_change(self) -> SettingsChange {
        SettingsChange::Company(self)
    }
    fn from_change(change: SettingsChange) -> Option<Self> {
        match change {
            SettingsChange::Company(s) => Some(s),
            _ => None,
        }
    }
}
impl Kind for NumberSettings {
    const KIND: &'static str = entity::NUMBER;
    const ID_FIELD: Option<&'static str> = Some("number");
    fn version(&self) -> u64 {
        self.version
    }
    fn into_change(self) -> SettingsChange {
        SettingsChange::Number(self)
    }
    fn from_change(change: SettingsChange) -> Option<Self> {
        match change {
            SettingsChange::Number(s) => Some(s),
            _ => None,
        }
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
    fn into_change(self) -> SettingsChange {
        SettingsChange::User(self)
    }
    fn from_change(change: SettingsChange) -> Option<Self> {
        match change {
            SettingsChange::User(s) => Some(s),
            _ => None,
        }
    }
}
impl Kind for ContactSettings {
    const KIND: &'static str = entity::CONTACT;
    const ID_FIELD: Option<&'static str> = Some("contact_id");
    fn version(&self) -> u64 {
        self.version
    }
    fn into_change(self) -> SettingsChange {
        SettingsChange::Contact(self)
    }
    fn from_change(change: SettingsChange) -> Option<Self> {
        match change {
            SettingsChange::Contact(s) => Some(s),
            _ => None,
        }
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

/// The entity's settings in force (its SETTINGS history as the router applies it, read by
/// direct gets on its subject: a refused event is not in force) and its last stored sequence.
async fn in_force(app: &App, subject: &str) -> Result<EntityInForce, Failure> {
    entity_in_force(&app.js, subject).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read SETTINGS");
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the settings store cannot be read now; retry later",
        )
    })
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
    let before = in_force(app, &subject).await?;
    let change = data.clone().into_change();
    match before.check(&change) {
        // A retried PUT of what is in force: answered as it was, nothing published.
        Ok(true) => {
            let seq = before.applied.as_ref().map_or(0, |(seq, _)| *seq);
            return Ok(answer(StatusCode::OK, &data, seq, true));
        }
        Ok(false) => {}
        Err(why) => return Err(Failure::new(StatusCode::CONFLICT, "stale_version", why)),
    }
    let event = Envelope::new(data, SOURCE, OffsetDateTime::now_utc());
    let last = before.last_seq.unwrap_or(0);
    match app
        .publisher
        .publish_if_last(&event, &trace_context(headers), last)
        .await
    {
        Ok(Some(published)) if published.duplicate => {
            // The event id was stored already: a retry racing this one, or a refused event
            // of the same version, whose id JetStream still remembers (the version is spent).
            match duplicate_is_same(&app.js, published.sequence, &change).await {
                Ok(Ok(())) => Ok(answer(
                    StatusCode::OK,
                    &event.data,
                    published.sequence,
                    true,
                )),
                Ok(Err(spent)) => Err(Failure::new(StatusCode::CONFLICT, "version_spent", spent)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read SETTINGS");
                    Err(Failure::unavailable(
                        "the settings store cannot be read now; retry later",
                    ))
                }
            }
        }
        Ok(Some(published)) => {
            let status = if before.last_seq.is_some() {
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
    let found = in_force(app, &subject).await?;
    match (found.applied, found.last_seq) {
        (Some((sequence, change)), _) => {
            let data = T::from_change(change).ok_or_else(|| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the entity's subject holds settings of another kind",
                )
            })?;
            Ok(Json(json!({
                "version": data.version(),
                "sequence": sequence,
                "data": data,
            }))
            .into_response())
        }
        (None, Some(sequence)) => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no settings of {}/{id} are in force: every event stored for it was refused (the last at SETTINGS #{sequence}); see its settings.rejected",
                T::KIND
            ),
        )),
        (None, None) => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no settings of {}/{id} are stored", T::KIND),
        )),
    }
}
