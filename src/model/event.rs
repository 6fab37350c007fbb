//! Events: what happened to a job, in order. Each one is committed once and
//! never changes, so its JSON and SSE frames are rendered once and shared.

use std::sync::OnceLock;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::EventKind;
use super::payload::Payload;

/// Severity of an event, as seed 000 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Progress a user may want to read.
    Info,
    /// Something finished well.
    Success,
    /// Something went less well than asked; the job goes on.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    /// Every level, mildest first.
    pub const ALL: [Level; 4] = [Level::Info, Level::Success, Level::Warning, Level::Error];

    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The level a word names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Level::Info,
            "success" => Level::Success,
            "warning" => Level::Warning,
            "error" => Level::Error,
            _ => return None,
        })
    }
}

/// Seed 000's `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// A progress message.
    Log,
    /// A new progress figure, `{"progress": 0.42}`.
    Progress,
    /// A failure.
    Error,
}

impl EventType {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Log => "log",
            EventType::Progress => "progress",
            EventType::Error => "error",
        }
    }

    /// The type a stored word names; anything unknown reads as a log line.
    pub fn parse(s: &str) -> Self {
        match s {
            "progress" => EventType::Progress,
            "error" => EventType::Error,
            _ => EventType::Log,
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Seed 000's type.
    pub ty: EventType,
    /// Severity.
    pub level: Level,
    /// Human text; every event has one.
    pub message: String,
    /// The stage it belongs to, if any.
    pub stage: Option<String>,
    /// What it means, for the dialects that project the log.
    pub kind: Option<EventKind>,
    /// Structured data.
    pub payload: Option<Value>,
}

impl NewEvent {
    /// A plain `log` event.
    pub fn log(level: Level, message: impl Into<String>) -> Self {
        NewEvent {
            ty: EventType::Log,
            level,
            message: message.into(),
            stage: None,
            kind: None,
            payload: None,
        }
    }

    /// An event carrying `payload`, with the kind its type belongs to.
    pub fn typed<P: Payload>(level: Level, message: impl Into<String>, payload: &P) -> Self {
        NewEvent::log(level, message)
            .with_kind(P::KIND)
            .with_payload(serde_json::to_value(payload).unwrap_or(Value::Null))
    }

    /// Ties the event to a stage.
    pub fn with_stage(mut self, stage: impl Into<String>) -> Self {
        self.stage = Some(stage.into());
        self
    }

    /// Gives the event a kind.
    pub fn with_kind(mut self, kind: EventKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Attaches structured data.
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Changes seed 000's type.
    pub fn with_type(mut self, ty: EventType) -> Self {
        self.ty = ty;
        self
    }
}

/// An event as the API shows it (seeds 000 and 003), with the stage it
/// belongs to and its kind when it has them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventJson<'a> {
    /// Global, strictly increasing; the `after` cursor and the SSE `id`.
    pub id: i64,
    /// `log`, `progress` or `error`.
    #[serde(rename = "type")]
    pub ty: EventType,
    /// Severity.
    pub level: Level,
    /// Human text.
    pub message: &'a str,
    /// Structured data; `{"progress": 0.42}` for `progress` events.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<&'a Value>,
    /// Unix seconds.
    pub timestamp: f64,
    /// The stage the event belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'a str>,
    /// `queued`, `started`, `start`, `complete`, `results`, `completed`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub kind: Option<EventKind>,
}

/// Which pre-rendered SSE frame of an event is wanted.
#[derive(Debug, Clone, Copy)]
pub enum FrameKind {
    /// Seed 000 as SSE: `id` + `data` of the event object.
    Log = 0,
    /// Seed 001: `id` + `event: stage:<name>` + the stage data.
    Stage = 1,
}

/// A committed event. Immutable once created; its JSON form is rendered once
/// and shared by every poll and stream that sends it.
#[derive(Debug)]
pub struct Event {
    /// Global, strictly increasing.
    pub id: i64,
    /// The job it belongs to.
    pub job_id: Uuid,
    /// Seed 000's type.
    pub ty: EventType,
    /// Severity.
    pub level: Level,
    /// Human text.
    pub message: String,
    /// The stage it belongs to, if any.
    pub stage: Option<String>,
    /// What it means.
    pub kind: Option<EventKind>,
    /// Structured data.
    pub payload: Option<Value>,
    /// Unix seconds, with microseconds.
    pub timestamp: f64,
    json: OnceLock<Bytes>,
    frames: [OnceLock<Bytes>; 2],
}

impl Event {
    /// The committed form of `new`, under the id and time the store gave it.
    pub fn committed(id: i64, job_id: Uuid, new: NewEvent, timestamp: f64) -> Self {
        Event {
            id,
            job_id,
            ty: new.ty,
            level: new.level,
            message: new.message,
            stage: new.stage,
            kind: new.kind,
            payload: new.payload,
            timestamp,
            json: OnceLock::new(),
            frames: Default::default(),
        }
    }

    /// The seed 000 event object as JSON bytes, rendered once.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            let view = EventJson {
                id: self.id,
                ty: self.ty,
                level: self.level,
                message: &self.message,
                payload: self.payload.as_ref(),
                timestamp: self.timestamp,
                stage: self.stage.as_deref(),
                kind: self.kind,
            };
            Bytes::from(serde_json::to_vec(&view).unwrap_or_default())
        })
    }

    /// A cached SSE frame, built by `build` the first time it is asked for.
    /// Every subscriber of a job shares the same bytes.
    pub fn frame(&self, which: FrameKind, build: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.frames[which as usize]
            .get_or_init(|| build(self))
            .clone()
    }

    /// Roughly how many bytes the event holds in memory, for bounding the
    /// log cache.
    pub fn approx_size(&self) -> usize {
        fn value_size(value: &Value) -> usize {
            16 + match value {
                Value::String(s) => s.len(),
                Value::Array(items) => items.iter().map(value_size).sum(),
                Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_size(v)).sum(),
                _ => 0,
            }
        }
        std::mem::size_of::<Event>()
            + self.message.len()
            + self.stage.as_ref().map_or(0, String::len)
            + self.payload.as_ref().map_or(0, value_size)
    }

    /// True for the event that ends a job's log.
    pub fn is_terminal(&self) -> bool {
        self.stage.is_none() && self.kind.is_some_and(EventKind::is_terminal)
    }

    /// The payload as `P`, when this event is of `P`'s kind and its data
    /// reads as one.
    pub fn decode<P: Payload>(&self) -> Option<P> {
        if self.kind != Some(P::KIND) {
            return None;
        }
        P::deserialize(self.payload.as_ref()?).ok()
    }

    /// The figure of a `progress` event, from 0 to 1.
    pub fn progress(&self) -> Option<f64> {
        if self.ty != EventType::Progress {
            return None;
        }
        self.payload.as_ref()?.get("progress")?.as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_has_the_seed_fields() {
        let ev = Event::committed(
            7,
            Uuid::nil(),
            NewEvent::log(Level::Info, "hello"),
            1710499805.1234,
        );
        let v: Value = serde_json::from_slice(ev.json()).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["type"], "log");
        assert_eq!(v["payload"], Value::Null);
        assert_eq!(v["timestamp"], 1710499805.1234);
        assert!(v.get("kind").is_none());
    }
}
