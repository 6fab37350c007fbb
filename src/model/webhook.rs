//! Webhooks in the model: the event classes a subscription can choose, and
//! a job's own webhook as its request carries it.

use serde::{Deserialize, Serialize};

use super::EventKind;

/// The classes of events a webhook can ask for (`webhook_events_filter`),
/// as Replicate names them. Each event is in exactly one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookEvent {
    /// A worker started the job.
    Start,
    /// A stage started, finished, was skipped or failed.
    Stage,
    /// Every other event of the log.
    Logs,
    /// The job ended: completed, failed or cancelled.
    Completed,
}

impl WebhookEvent {
    /// Every class.
    pub const ALL: [WebhookEvent; 4] = [
        WebhookEvent::Start,
        WebhookEvent::Stage,
        WebhookEvent::Logs,
        WebhookEvent::Completed,
    ];

    /// What a webhook gets when it does not choose: `start` and
    /// `completed`.
    pub const DEFAULT: [WebhookEvent; 2] = [WebhookEvent::Start, WebhookEvent::Completed];

    /// The class of an event of this kind.
    pub fn of(kind: Option<EventKind>) -> WebhookEvent {
        match kind {
            Some(EventKind::Started) => WebhookEvent::Start,
            Some(
                EventKind::Start | EventKind::Complete | EventKind::Skipped | EventKind::Error,
            ) => WebhookEvent::Stage,
            Some(EventKind::Completed | EventKind::Failed | EventKind::Cancelled) => {
                WebhookEvent::Completed
            }
            _ => WebhookEvent::Logs,
        }
    }

    /// Its name in a filter.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Start => "start",
            WebhookEvent::Stage => "stage",
            WebhookEvent::Logs => "logs",
            WebhookEvent::Completed => "completed",
        }
    }

    /// The class named `name`.
    pub fn parse(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The `type` of a webhook message for an event of this kind:
    /// `job.started`, `job.stage`, `job.log`, `job.completed`,
    /// `job.failed` or `job.cancelled`.
    pub fn message_type(kind: Option<EventKind>) -> &'static str {
        match kind {
            Some(EventKind::Started) => "job.started",
            Some(EventKind::Completed) => "job.completed",
            Some(EventKind::Failed) => "job.failed",
            Some(EventKind::Cancelled) => "job.cancelled",
            _ => match WebhookEvent::of(kind) {
                WebhookEvent::Stage => "job.stage",
                _ => "job.log",
            },
        }
    }
}

/// A job's own webhook: where to send it, and for which classes of
/// events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobWebhook {
    /// An http or https URL.
    pub url: String,
    /// The classes of events sent.
    pub events: Vec<WebhookEvent>,
}

impl JobWebhook {
    /// A webhook to `url` for `events`, or for the default classes when
    /// none are given. Repeats are dropped.
    pub fn new(url: String, events: Option<Vec<WebhookEvent>>) -> Self {
        let mut chosen = Vec::new();
        for event in events.unwrap_or_else(|| WebhookEvent::DEFAULT.to_vec()) {
            if !chosen.contains(&event) {
                chosen.push(event);
            }
        }
        JobWebhook {
            url,
            events: chosen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_in_one_class_and_terminal_kinds_are_completed() {
        for kind in EventKind::ALL {
            let class = WebhookEvent::of(Some(kind));
            assert_eq!(
                class == WebhookEvent::Completed,
                matches!(
                    kind,
                    EventKind::Completed | EventKind::Failed | EventKind::Cancelled
                ),
                "{kind:?}"
            );
        }
        assert_eq!(WebhookEvent::of(None), WebhookEvent::Logs);
        assert_eq!(
            WebhookEvent::message_type(Some(EventKind::Asset)),
            "job.log"
        );
        assert_eq!(
            WebhookEvent::message_type(Some(EventKind::Start)),
            "job.stage"
        );
    }
}
