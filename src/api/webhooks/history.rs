//! A subscription's delivery history, and sending a delivery again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{found, store_error};
use crate::AppState;
use crate::api::clipzy::views::{Envelope, ok};
use crate::api::dialect::V1ErrorBody;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::QueryParams;
use crate::api::fields::whole_number;
use crate::store::{Attempt, Delivery};

/// Most deliveries one history answer lists.
pub const MAX_HISTORY: i64 = 1000;

/// Query of the delivery history; values arrive as text so that a bad one
/// gets a message naming it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct HistoryQuery {
    /// Newest deliveries returned, 1 to 1000; default 100.
    pub limit: Option<String>,
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id`, the same on every attempt.
    pub id: String,
    /// The job.
    pub job_id: String,
    /// The event.
    pub event_id: i64,
    /// `job.started`, `job.stage`, `job.log`, `job.completed`, `job.failed`
    /// or `job.cancelled`.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// When a pending delivery is tried next, Unix seconds.
    pub next_attempt_at: Option<f64>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// RFC 3339.
    pub attempted_at: String,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Milliseconds.
    pub latency_ms: f64,
    /// What went wrong.
    pub error: Option<String>,
}

impl DeliveryView {
    fn of(delivery: Delivery, attempts: Vec<Attempt>) -> Self {
        DeliveryView {
            next_attempt_at: (delivery.status == "pending").then_some(delivery.next_attempt_at),
            id: delivery.id,
            job_id: delivery.job_id.to_string(),
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            created_at: delivery.created_at,
            attempts: attempts
                .into_iter()
                .map(|a| AttemptView {
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "webhook_deliveries",
    params(("id" = String, Path, description = "Subscription id"), HistoryQuery),
    responses(
        (status = 200, description = "Newest deliveries first, each with its attempts", body = Envelope<Vec<DeliveryView>>),
        (status = 404, description = "No such subscription", body = V1ErrorBody),
        (status = 422, description = "`limit` is not a whole number from 1 to 1000", body = V1ErrorBody),
    ))]
/// A subscription's delivery history.
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> ApiResult<Json<Envelope<Vec<DeliveryView>>>> {
    let limit = whole_number(query.limit.as_deref(), 1..=MAX_HISTORY)
        .map_err(|_| {
            ApiError::Validation(format!(
                "limit must be a whole number from 1 to {MAX_HISTORY}."
            ))
        })?
        .unwrap_or(100);
    found(&state, &id).await?;
    let history = state
        .engine
        .webhooks()
        .deliveries(&id, limit)
        .await
        .map_err(store_error)?;
    Ok(ok(
        None,
        history
            .into_iter()
            .map(|(d, a)| DeliveryView::of(d, a))
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/resend", tag = "webhooks", operation_id = "webhook_resend",
    params(("id" = String, Path, description = "Subscription id"), ("delivery" = String, Path, description = "Delivery id (`msg_...`)")),
    responses(
        (status = 202, description = "Queued to be sent again now, under the same id", body = Envelope<Resent>),
        (status = 404, description = "No such delivery", body = V1ErrorBody),
        (status = 409, description = "The delivery is still pending", body = V1ErrorBody),
    ))]
/// Sends a delivered or failed delivery again; a subscription disabled for
/// failing is enabled again.
pub async fn resend(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Envelope<Resent>>)> {
    match state
        .engine
        .webhooks()
        .resend(&id, &delivery)
        .await
        .map_err(store_error)?
    {
        Some(true) => Ok((
            StatusCode::ACCEPTED,
            ok(Some("Delivery queued"), Resent { queued: true }),
        )),
        Some(false) => Err(ApiError::Conflict {
            message: "The delivery is still pending; it will be tried again on its own.".into(),
            code: "DELIVERY_PENDING",
        }),
        None => Err(ApiError::NotFound("Delivery not found.".into())),
    }
}

/// `{"queued": true}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resent {
    /// Always true.
    pub queued: bool,
}
