//! `/api/v1/webhooks`: global webhook subscriptions, their secrets and
//! their delivery history, in the v1 envelope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::clipzy::DIALECT;
use super::clipzy::views::{Envelope, ok};
use super::dialect::{V1ErrorBody, with_dialect};
use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use crate::AppState;
use crate::model::{Field, Invalid, WebhookEvent, limits, non_blank};
use crate::store::Endpoint;
use crate::webhooks::{Refused, WebhookError};

pub mod history;

pub use history::MAX_HISTORY;
use history::{deliveries, resend};

/// Longest description, in characters.
pub const DESCRIPTION_CHARS: usize = 500;

/// The routes, in the v1 envelope.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/api/v1/webhooks", post(create).get(list))
        .route("/api/v1/webhooks/default/secret", get(default_secret))
        .route("/api/v1/webhooks/{id}", get(one).delete(delete))
        .route("/api/v1/webhooks/{id}/rotate-secret", post(rotate))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery}/resend",
            post(resend),
        );
    with_dialect(routes, DIALECT)
}

/// `POST /api/v1/webhooks`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct CreateWebhook {
    /// An http or https URL. Loopback, private, link-local and metadata
    /// addresses are refused unless `WEBHOOK_ALLOW_PRIVATE=true`.
    pub url: String,
    /// Any of `start`, `stage`, `logs` and `completed`; default `start` and
    /// `completed`.
    #[schema(value_type = Option<Vec<WebhookEvent>>)]
    pub events: Option<serde_json::Value>,
    /// A note of the subscriber's.
    pub description: Option<String>,
}

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// `wh_...`, or `job_<job id>` for a job's own webhook.
    pub id: String,
    /// Where messages go.
    pub url: String,
    /// The classes of events it gets.
    pub events: Vec<WebhookEvent>,
    /// The job, for a job's own webhook.
    pub job_id: Option<String>,
    /// The subscriber's note.
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; set once it had failed for `WEBHOOK_DISABLE_AFTER`.
    pub disabled_at: Option<String>,
    /// Failing since this Unix time, if its last attempt failed.
    pub failing_since: Option<f64>,
    /// The signing secret: shown only when it is made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<Endpoint> for WebhookView {
    fn from(e: Endpoint) -> Self {
        WebhookView {
            id: e.id,
            url: e.url,
            events: e.events,
            job_id: e.job_id.map(|id| id.to_string()),
            description: e.description,
            created_at: e.created_at,
            disabled_at: e.disabled_at,
            failing_since: e.failing_since,
            secret: None,
        }
    }
}

/// A refused URL, named as this route names it.
fn refused(refused: Refused) -> ApiError {
    ApiError::Validation(Invalid::new(Field::Webhook, refused.problem()).message(|_| "url"))
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "webhook_create",
    request_body(content = CreateWebhook, example = json!({
        "url": "https://example.com/hooks/reelay", "events": ["start", "completed"]
    })),
    responses(
        (status = 201, description = "Subscribed; `secret` is shown this once", body = Envelope<WebhookView>, links(
            ("get" = (operation_id = "webhook_get", parameters(("id" = "$response.body#/data/id")))),
            ("deliveries" = (operation_id = "webhook_deliveries", parameters(("id" = "$response.body#/data/id")))),
            ("rotate" = (operation_id = "webhook_rotate_secret", parameters(("id" = "$response.body#/data/id")))),
            ("delete" = (operation_id = "webhook_delete", parameters(("id" = "$response.body#/data/id")))),
        )),
        (status = 400, description = "Malformed JSON", body = V1ErrorBody),
        (status = 422, description = "A URL that is not http(s) or reaches a private address, or unknown event classes", body = V1ErrorBody),
    ))]
/// Subscribes a URL to every job's events.
pub async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Envelope<WebhookView>>)> {
    let url = body.url;
    if url.chars().count() > limits::URL_CHARS {
        return Err(refused(Refused::NotHttp));
    }
    let hook = super::fields::webhook(Some(url.clone()), body.events)
        .map_err(|invalid| ApiError::Validation(invalid.message(|_| "events")))?
        .ok_or(refused(Refused::NotHttp))?;
    // Counted as sent, then trimmed.
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > DESCRIPTION_CHARS)
    {
        return Err(ApiError::Validation(format!(
            "description is too long: at most {DESCRIPTION_CHARS} characters."
        )));
    }
    let description = non_blank(body.description);
    let endpoint = state
        .engine
        .webhooks()
        .create(url, Some(hook.events), description)
        .await
        .map_err(|err| match err {
            WebhookError::Url(why) => refused(why),
            WebhookError::Store(err) => crate::engine::EngineError::from(err).into(),
        })?;
    let secret = endpoint.secret.clone();
    let mut view = WebhookView::from(endpoint);
    view.secret = secret;
    Ok((StatusCode::CREATED, ok(Some("Webhook created"), view)))
}

pub(super) fn store_error(err: crate::store::StoreError) -> ApiError {
    crate::engine::EngineError::from(err).into()
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "webhook_list",
    responses((status = 200, description = "Every global subscription, oldest first", body = Envelope<Vec<WebhookView>>)))]
/// Every global subscription.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Envelope<Vec<WebhookView>>>> {
    let all = state.engine.webhooks().list().await.map_err(store_error)?;
    Ok(ok(None, all.into_iter().map(WebhookView::from).collect()))
}

pub(super) async fn found(state: &AppState, id: &str) -> ApiResult<Endpoint> {
    state
        .engine
        .webhooks()
        .get(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound("Webhook not found.".into()))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "webhook_get",
    params(("id" = String, Path, description = "Subscription id: `wh_...`, or `job_<job id without dashes>`")),
    responses(
        (status = 200, description = "The subscription", body = Envelope<WebhookView>),
        (status = 404, description = "No such subscription", body = V1ErrorBody),
    ))]
/// One subscription, global or a job's own.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Envelope<WebhookView>>> {
    Ok(ok(None, found(&state, &id).await?.into()))
}

/// `{"deleted": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// Always true.
    pub deleted: bool,
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "webhook_delete",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "Unsubscribed; its pending deliveries are dropped", body = Envelope<Deleted>),
        (status = 404, description = "No such global subscription", body = V1ErrorBody),
    ))]
/// Removes a global subscription and its deliveries.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Envelope<Deleted>>> {
    if state
        .engine
        .webhooks()
        .delete(&id)
        .await
        .map_err(store_error)?
    {
        Ok(ok(Some("Webhook deleted"), Deleted { deleted: true }))
    } else {
        Err(ApiError::NotFound("Webhook not found.".into()))
    }
}

/// A signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Secret {
    /// `whsec_` and base64.
    pub key: String,
}

#[utoipa::path(get, path = "/api/v1/webhooks/default/secret", tag = "webhooks", operation_id = "webhook_default_secret",
    responses((status = 200, description = "The secret that signs every job's own webhook", body = Envelope<Secret>)))]
/// The default secret, which signs the webhooks that jobs name.
pub async fn default_secret(State(state): State<AppState>) -> ApiResult<Json<Envelope<Secret>>> {
    let secret = state
        .engine
        .webhooks()
        .default_secret()
        .await
        .map_err(store_error)?;
    Ok(ok(None, Secret { key: secret.secret }))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "webhook_rotate_secret",
    params(("id" = String, Path, description = "Subscription id, or `default` for the secret of jobs' own webhooks")),
    responses(
        (status = 200, description = "The new secret; for 24 hours messages carry signatures with both", body = Envelope<Secret>),
        (status = 404, description = "No such global subscription", body = V1ErrorBody),
    ))]
/// Gives a subscription a new secret.
pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Envelope<Secret>>> {
    match state
        .engine
        .webhooks()
        .rotate(&id)
        .await
        .map_err(store_error)?
    {
        Some(key) => Ok(ok(Some("Secret rotated"), Secret { key })),
        None => Err(ApiError::NotFound("Webhook not found.".into())),
    }
}
