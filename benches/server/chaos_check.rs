//! What the chaos run knows and checks: every job it was given an id for,
//! the events a client saw before each kill, and how many times each job
//! was interrupted.

use std::collections::BTreeMap;

use serde_json::Value;

/// An event as a client sees it: id, kind and message.
type Seen = (i64, String, String);

/// One job, as far as the run knows.
#[derive(Default)]
pub struct JobRecord {
    state: String,
    /// Kills that found it running.
    interruptions: u8,
}

/// Every job submitted during the run.
#[derive(Default)]
pub struct Ledger {
    pub jobs: BTreeMap<String, JobRecord>,
    events_checked: usize,
}

/// What the jobs looked like just before a kill.
pub struct Snapshot {
    jobs: BTreeMap<String, (String, Option<String>, Vec<Seen>)>,
    max_id: i64,
}

/// How the run ended.
pub struct Summary {
    pub completed: usize,
    pub failed_twice: usize,
    pub requeued: usize,
    pub events: usize,
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let res = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

async fn events(client: &reqwest::Client, base: &str, id: &str) -> Vec<Seen> {
    let (status, body) = get(
        client,
        format!("{base}/api/jobs/{id}/events?after=0&limit=1000"),
    )
    .await;
    assert_eq!(status, 200, "events of job {id}: {body}");
    body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (
                e["id"].as_i64().expect("event id"),
                text("kind"),
                text("message"),
            )
        })
        .collect()
}

fn is_crash_requeue(event: &Seen) -> bool {
    event.1 == "requeued" && event.2.contains("stopped while")
}

fn is_crash_failure(event: &Seen) -> bool {
    event.1 == "failed" && event.2.contains("stopped twice")
}

fn is_end(event: &Seen) -> bool {
    ["completed", "failed", "cancelled"].contains(&event.1.as_str())
}

impl Ledger {
    pub fn submitted(&mut self, id: &str) {
        let record = JobRecord {
            state: "queued".into(),
            ..JobRecord::default()
        };
        self.jobs.insert(id.to_string(), record);
    }

    pub fn active_ids(&self) -> Vec<String> {
        let active = |r: &&JobRecord| r.state == "queued" || r.state == "running";
        self.jobs
            .iter()
            .filter(|(_, r)| active(r))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn active(&self) -> usize {
        self.active_ids().len()
    }

    pub fn observe_state(&mut self, id: &str, job: &Value) {
        if let (Some(record), Some(state)) = (self.jobs.get_mut(id), job["state"].as_str()) {
            record.state = state.to_string();
        }
    }

    /// After a restart: nothing a client saw is gone or changed, ids still
    /// increase, and each job the kill interrupted was requeued (first
    /// time) or failed (second time).
    pub async fn verify_after_restart(
        &mut self,
        client: &reqwest::Client,
        base: &str,
        before: &Snapshot,
    ) {
        for (id, (state, _, seen)) in &before.jobs {
            let (status, job) = get(client, format!("{base}/api/jobs/{id}")).await;
            assert_eq!(status, 200, "job {id} was lost: {job}");
            let now = events(client, base, id).await;
            assert!(
                now.windows(2).all(|w| w[0].0 < w[1].0),
                "job {id}: ids do not increase: {now:?}"
            );
            assert!(
                now.len() >= seen.len() && now[..seen.len()] == seen[..],
                "job {id}: a seen event was lost or changed"
            );
            let new = &now[seen.len()..];
            assert!(
                new.iter().all(|e| e.0 > before.max_id),
                "job {id}: a new event has an old id"
            );
            self.events_checked += now.len();
            let record = self.jobs.get_mut(id).expect("known job");
            let recovery: Vec<&Seen> = new
                .iter()
                .filter(|e| is_crash_requeue(e) || is_crash_failure(e))
                .collect();
            // A job may have ended between the snapshot and the kill.
            let ended_before_kill = recovery.is_empty() && new.iter().any(is_end);
            if state == "running" && !ended_before_kill {
                assert_eq!(
                    recovery.len(),
                    1,
                    "job {id} was running at the kill: {new:?}"
                );
            }
            assert!(
                recovery.len() <= 1,
                "job {id}: more than one recovery for one kill: {new:?}"
            );
            if let Some(event) = recovery.first() {
                record.interruptions += 1;
                match record.interruptions {
                    1 => assert!(
                        is_crash_requeue(event),
                        "job {id}: first interruption not requeued: {event:?}"
                    ),
                    _ => assert!(
                        is_crash_failure(event),
                        "job {id}: second interruption not failed: {event:?}"
                    ),
                }
            }
            record.state = job["job"]["state"].as_str().unwrap_or_default().to_string();
        }
    }

    /// After the last kill: every job ended, as the requeue-once rule says.
    pub async fn verify_end(&self, client: &reqwest::Client, base: &str) -> Summary {
        let mut summary = Summary {
            completed: 0,
            failed_twice: 0,
            requeued: 0,
            events: self.events_checked,
        };
        for (id, record) in &self.jobs {
            let (_, job) = get(client, format!("{base}/api/jobs/{id}")).await;
            let log = events(client, base, id).await;
            let requeues = log.iter().filter(|e| is_crash_requeue(e)).count();
            assert_eq!(
                requeues,
                usize::from(record.interruptions.min(1)),
                "job {id}: {log:?}"
            );
            summary.requeued += requeues;
            match (record.interruptions, job["job"]["state"].as_str()) {
                (0 | 1, Some("completed")) => {
                    let (status, result) =
                        get(client, format!("{base}/api/v1/jobs/{id}/result")).await;
                    assert_eq!(status, 200, "job {id} completed without a video: {result}");
                    summary.completed += 1;
                }
                (2, Some("failed")) => {
                    assert!(log.iter().any(is_crash_failure), "job {id}: {log:?}");
                    summary.failed_twice += 1;
                }
                (n, state) => panic!("job {id}: interrupted {n} times, ended {state:?}: {job}"),
            }
        }
        summary
    }
}

impl Snapshot {
    /// The state, stage and events of every job, as a client sees them now.
    pub async fn take(client: &reqwest::Client, base: &str, ledger: &Ledger) -> Snapshot {
        let mut jobs = BTreeMap::new();
        let mut max_id = 0;
        for id in ledger.jobs.keys() {
            let (_, job) = get(client, format!("{base}/api/jobs/{id}")).await;
            let seen = events(client, base, id).await;
            max_id = max_id.max(seen.last().map_or(0, |e| e.0));
            let state = job["job"]["state"].as_str().unwrap_or_default().to_string();
            let stage = job["job"]["currentStage"].as_str().map(str::to_string);
            jobs.insert(id.clone(), (state, stage, seen));
        }
        Snapshot { jobs, max_id }
    }

    /// The stage of each job running at the snapshot.
    pub fn running_stages(&self) -> Vec<String> {
        self.jobs
            .values()
            .filter(|(state, _, _)| state == "running")
            .map(|(_, stage, _)| stage.clone().unwrap_or_else(|| "(starting)".into()))
            .collect()
    }
}
