//! Black-box tests over HTTP against a server on port 0.

mod helpers;
mod stages;

mod cancel;
mod concurrency;
mod connections;
mod crash;
mod disk;
mod errors;
mod fakes;
mod faults;
mod first_run;
mod frontends;
mod lifecycle;
mod limits;
mod media;
mod metrics;
mod openapi;
mod polling;
mod projections;
mod sse;
mod streams;
mod v1;
