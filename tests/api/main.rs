//! Black-box tests over HTTP against a server on port 0.

mod helpers;
mod stages;

mod backpressure;
mod browser;
mod cancel;
mod cli;
mod cluster;
mod concurrency;
mod connections;
mod crash;
mod dashboard_api;
mod disk;
mod errors;
mod fakes;
mod faults;
mod first_run;
mod frontends;
mod idempotency;
mod job_events;
mod keys;
mod lifecycle;
mod limits;
mod media;
mod metrics;
mod openapi;
mod polling;
mod projections;
mod quality;
mod request_ids;
mod sse;
mod streams;
mod v1;
mod webhooks;
