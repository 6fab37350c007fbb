//! The HTTP side of the terminal client: the server's base URL, the key,
//! JSON requests, and errors worded for a person at a terminal.

use std::fmt;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::{EXIT_ERROR, Server};

/// A client of one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// Why a request did not give an answer to work with.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached.
    Unreachable(String),
    /// It answered with an error status; the message is its own.
    Answer(StatusCode, String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(why) => write!(f, "{why}"),
            ClientError::Answer(StatusCode::UNAUTHORIZED, message) => write!(
                f,
                "{message} (401: give a key with --api-key or REELAY_API_KEY)"
            ),
            ClientError::Answer(status, message) => {
                write!(f, "{message} ({})", status.as_u16())
            }
        }
    }
}

impl ClientError {
    /// Prints the error and returns the exit code of a command that could
    /// not do its work.
    pub fn report(&self) -> u8 {
        eprintln!("error: {self}");
        EXIT_ERROR
    }
}

impl Client {
    /// A client of the server `server` names.
    pub fn new(server: &Server) -> Self {
        Client {
            // No overall timeout: event streams stay open for as long as
            // the job runs.
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            base: server.url.trim_end_matches('/').to_string(),
            key: server.api_key.clone().filter(|k| !k.is_empty()),
        }
    }

    /// The dashboard's page of a job.
    pub fn dashboard_url(&self, id: &str) -> String {
        format!("{}/#/jobs/{id}", self.base)
    }

    /// `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path`, with the key when there is one.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// `GET path`, as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body (or none), as JSON.
    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, ClientError> {
        let request = self.request(Method::POST, path);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        self.send(request).await
    }

    async fn send(&self, request: RequestBuilder) -> Result<Value, ClientError> {
        let answer = request.send().await.map_err(|err| self.unreachable(&err))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        Err(ClientError::Answer(status, error_message(&body, status)))
    }

    /// The error of a request that got no answer.
    pub fn unreachable(&self, err: &reqwest::Error) -> ClientError {
        let why = if err.is_connect() {
            "nothing answers there; start it with `reelay serve` or pass --server"
        } else if err.is_timeout() {
            "it did not answer in time"
        } else {
            "the request failed"
        };
        ClientError::Unreachable(format!("{}: {why} ({err})", self.base))
    }
}

/// The message of an error body in any of the server's envelopes.
pub fn error_message(body: &Value, status: StatusCode) -> String {
    ["message", "detail", "error"]
        .iter()
        .find_map(|key| body.get(key).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string())
}
