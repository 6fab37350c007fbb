//! Stages defined by the tests, to drive the engine without media tools.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reelay::model::{Research, Review, VideoMeta};
use reelay::pipeline::{Pipeline, Stage, StageContext, StageError, StageOutcome, StageResult};
use serde_json::json;
use tokio::sync::Semaphore;

/// Emits `count` log events, reporting progress as it goes.
pub struct Emit {
    pub name: &'static str,
    pub count: usize,
}

#[async_trait]
impl Stage for Emit {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        for i in 0..self.count {
            ctx.checkpoint()?;
            ctx.info(format!("{} step {}/{}", self.name, i + 1, self.count))
                .await?;
            ctx.progress((i + 1) as f64 / self.count as f64, "working")
                .await?;
        }
        Ok(StageOutcome::done(format!("{} steps", self.count)))
    }
}

/// Emits `count` events carrying `pad` bytes each, as fast as it can.
pub struct Bulk {
    pub name: &'static str,
    pub count: usize,
    pub pad: usize,
}

#[async_trait]
impl Stage for Bulk {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let pad = "x".repeat(self.pad);
        for i in 0..self.count {
            ctx.log(
                reelay::model::Level::Info,
                format!("bulk {i}"),
                Some(json!({ "pad": pad })),
            )
            .await?;
        }
        Ok(StageOutcome::done(format!("{} events", self.count)))
    }
}

/// Emits one piece of rich stage data that the job row keeps, then
/// finishes: research results from a `research` stage, or a review from a
/// `critic` stage.
pub enum Rich {
    Research,
    Review,
}

#[async_trait]
impl Stage for Rich {
    fn name(&self) -> &str {
        match self {
            Rich::Research => "research",
            Rich::Review => "critic",
        }
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        match self {
            Rich::Research => {
                let research = Research {
                    summary: "test data".into(),
                    ..Research::default()
                };
                ctx.emit("rich data", &research).await?;
            }
            Rich::Review => {
                let review = Review {
                    strengths: vec!["test data".into()],
                    ..Review::default()
                };
                ctx.emit("rich data", &review).await?;
            }
        }
        Ok(StageOutcome::done("rich"))
    }
}

/// Waits for a permit from `gate` (or cancellation), counting how many
/// jobs wait at once.
pub struct Gate {
    pub name: &'static str,
    pub gate: Arc<Semaphore>,
    pub inside: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
}

impl Gate {
    pub fn new(name: &'static str) -> Self {
        Gate {
            name,
            gate: Arc::new(Semaphore::new(0)),
            inside: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[async_trait]
impl Stage for Gate {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let result = tokio::select! {
            permit = self.gate.acquire() => {
                permit.map_err(|_| StageError::failed("gate closed"))?.forget();
                Ok(StageOutcome::done("released"))
            }
            _ = ctx.cancelled() => Err(StageError::Cancelled),
        };
        self.inside.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

/// Awaits something long and ignores cancellation: the worker has to stop
/// waiting for it on its own.
pub struct Stubborn {
    pub name: &'static str,
}

#[async_trait]
impl Stage for Stubborn {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        ctx.info("waiting on something slow").await?;
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(StageOutcome::done("finally"))
    }
}

/// Fails with `message`.
pub struct Fail {
    pub name: &'static str,
    pub message: &'static str,
}

#[async_trait]
impl Stage for Fail {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        ctx.warn("about to fail").await?;
        Err(StageError::failed(self.message))
    }
}

/// Skips itself.
pub struct Skip {
    pub name: &'static str,
}

#[async_trait]
impl Stage for Skip {
    fn name(&self) -> &str {
        self.name
    }

    async fn run(&self, _ctx: &mut StageContext) -> StageResult {
        Ok(StageOutcome::skipped("not needed"))
    }
}

pub fn pipeline(stages: Vec<Arc<dyn Stage>>) -> Pipeline {
    Pipeline::new(stages)
}

/// research → director, each emitting a few events.
pub fn quick() -> Pipeline {
    pipeline(vec![
        Arc::new(Emit {
            name: "research",
            count: 3,
        }),
        Arc::new(Emit {
            name: "director",
            count: 3,
        }),
    ])
}

/// Writes a fake `output.mp4` of `size` bytes and records it as the result.
pub struct FileResult {
    pub size: usize,
}

#[async_trait]
impl Stage for FileResult {
    fn name(&self) -> &str {
        "assembly"
    }

    async fn run(&self, ctx: &mut StageContext) -> StageResult {
        let path = ctx.work_dir().join("output.mp4");
        let bytes: Vec<u8> = (0..self.size).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| StageError::failed(e.to_string()))?;
        ctx.set_result(
            "written",
            path.display().to_string(),
            VideoMeta {
                duration: Some(2.5),
                width: Some(360),
                height: Some(640),
                fps: Some(30.0),
                size: Some(self.size as u64),
                ..VideoMeta::default()
            },
        )
        .await?;
        Ok(StageOutcome::done("file written"))
    }
}

/// Panics, as a buggy stage might.
pub struct Panics;

#[async_trait]
impl Stage for Panics {
    fn name(&self) -> &str {
        "visuals"
    }

    async fn run(&self, _ctx: &mut StageContext) -> StageResult {
        panic!("a bug in a stage");
    }
}
