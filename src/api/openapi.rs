//! The OpenAPI 3.1 document of every route, generated from the handlers'
//! annotations and the response types, and the interactive docs page.

use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::{aivideogen, moneyprinter, openreels, v1};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Reelay",
        description = "Self-hosted video-generation jobs, speaking the APIs of MoneyPrinter, \
                       OpenReels, AI-Video-Gen and Clipzy."
    ),
    paths(
        moneyprinter::generate,
        moneyprinter::job,
        moneyprinter::events,
        moneyprinter::cancel_job,
        moneyprinter::cancel_active,
        moneyprinter::models::models,
        moneyprinter::songs::upload,
        openreels::events,
        aivideogen::progress,
        aivideogen::status_of,
        aivideogen::video,
        v1::create,
        v1::list,
        v1::status,
        v1::result,
        v1::video,
        v1::cancel,
        super::health,
    ),
    tags(
        (name = "moneyprinter", description = "MoneyPrinter's job API (seeds 000 and 003)"),
        (name = "openreels", description = "OpenReels' event stream (seed 001)"),
        (name = "aivideogen", description = "AI-Video-Gen's progress stream and routes (seed 002)"),
        (name = "v1", description = "Clipzy's v1 job API (seed 004)"),
        (name = "server", description = "Operations"),
    )
)]
pub struct ApiDoc;

/// `/api/openapi.json` and the Swagger UI at `/docs`.
pub fn router() -> Router<AppState> {
    SwaggerUi::new("/docs")
        .url("/api/openapi.json", ApiDoc::openapi())
        .into()
}
