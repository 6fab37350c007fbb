//! What request metrics add to one poll, measured in process: the same
//! engine behind two routers, one with request metrics and one without,
//! driven in turns through tower with no network in between.
//!
//!     cargo bench --bench server -- router-cost [BLOCKS] [REQUESTS_PER_BLOCK]
//!
//! The two routers take turns in short blocks (the order flips every
//! block), so that drift on a shared host falls on both alike; the figure
//! is the median time per request of each, and their ratio. Run it pinned
//! to one core (`benches/run.sh metrics` does).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{burst_job, bursting, config_in, log_of, state_with_metrics};

pub async fn run(blocks: usize, per_block: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(dir.path());
    config.metrics_enabled = true;
    let reelay = bursting(config).await;
    let job = burst_job(&reelay, "polling").await;
    let last = log_of(&reelay, job).await.last().map_or(0, |e| e.id);
    let uri = format!("/api/jobs/{job}/events?after={}", last - 10);

    let with = reelay::app(state_with_metrics(&reelay, true));
    let without = reelay::app(state_with_metrics(&reelay, false));

    // Warm both: caches, allocator, metric handles.
    block(&with, &uri, per_block).await;
    block(&without, &uri, per_block).await;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for i in 0..blocks {
        if i % 2 == 0 {
            on.push(block(&with, &uri, per_block).await);
            off.push(block(&without, &uri, per_block).await);
        } else {
            off.push(block(&without, &uri, per_block).await);
            on.push(block(&with, &uri, per_block).await);
        }
    }
    let (on, off) = (median(&mut on), median(&mut off));
    println!(
        "router, in process ({blocks} blocks of {per_block} polls each): \
         metrics on {on:.2} us/request, off {off:.2} us/request, cost {:.1} %",
        100.0 * (on / off - 1.0)
    );
}

/// Microseconds per request over `n` polls of `uri`.
async fn block(router: &Router, uri: &str, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let request = Request::get(uri).body(Body::empty()).expect("request");
        let response = router.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK);
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
