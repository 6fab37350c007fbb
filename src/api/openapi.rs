//! The OpenAPI 3.1 document of every route, generated from the handlers'
//! annotations and the response types, and the interactive docs page.

use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use super::{aivideogen, clipzy, generate, moneyprinter, openreels};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Reelay",
        description = "Self-hosted video-generation jobs, speaking the APIs of MoneyPrinter, \
                       OpenReels, AI-Video-Gen and Clipzy."
    ),
    paths(
        generate::generate,
        moneyprinter::jobs::job,
        moneyprinter::events::events,
        moneyprinter::jobs::cancel_job,
        moneyprinter::jobs::cancel_active,
        moneyprinter::llm_models::models,
        moneyprinter::songs::upload,
        openreels::events,
        aivideogen::progress::progress,
        aivideogen::status_of,
        aivideogen::video_file,
        clipzy::create,
        clipzy::list,
        clipzy::status,
        clipzy::result,
        clipzy::video_file,
        clipzy::cancel,
        clipzy::delete,
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
