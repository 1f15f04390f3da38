//! The Lambda Extensions API: register for `SHUTDOWN`, then wait for events.

use crate::http::{self, Url};

/// A registered extension.
#[derive(Debug)]
pub struct Extensions {
    base: String,
    id: String,
}

/// An event of `/event/next`.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// `INVOKE` (only if registered for it; we are not).
    Invoke,
    /// `SHUTDOWN`, with its reason.
    Shutdown(String),
}

impl Extensions {
    /// `POST /2020-01-01/extension/register` with `Lambda-Extension-Name: name`.
    pub fn register(runtime_api: &str, name: &str) -> Result<Extensions, String> {
        let base = format!("http://{runtime_api}/2020-01-01/extension");
        let url = Url::parse(&format!("{base}/register"))
            .ok_or("AWS_LAMBDA_RUNTIME_API is not host:port")?;
        let body = br#"{"events":["SHUTDOWN"]}"#;
        let headers = vec![
            ("Lambda-Extension-Name".to_owned(), name.to_owned()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let resp = http::request("POST", &url, &headers, body, None)
            .map_err(|e| format!("register: {e}"))?;
        if resp.status != 200 {
            return Err(format!("register: status {}", resp.status));
        }
        let id = resp
            .header("lambda-extension-identifier")
            .ok_or("register: no Lambda-Extension-Identifier")?
            .to_owned();
        Ok(Extensions { base, id })
    }

    /// `GET /event/next`: blocks until the next event. Calling it the first time
    /// tells Lambda that the extension's initialisation is done.
    pub fn next(&self) -> Result<Event, String> {
        let url = Url::parse(&format!("{}/event/next", self.base)).ok_or("bad URL")?;
        let headers = vec![("Lambda-Extension-Identifier".to_owned(), self.id.clone())];
        let resp = http::request("GET", &url, &headers, b"", None)
            .map_err(|e| format!("event/next: {e}"))?;
        if resp.status != 200 {
            return Err(format!("event/next: status {}", resp.status));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        match v.get("eventType").and_then(|t| t.as_str()) {
            Some("SHUTDOWN") => Ok(Event::Shutdown(
                v.get("shutdownReason")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )),
            _ => Ok(Event::Invoke),
        }
    }

    /// `POST /init/error`: tells Lambda the extension cannot start (the function's
    /// init fails with this error type).
    pub fn init_error(&self, kind: &str, message: &str) {
        if let Some(url) = Url::parse(&format!("{}/init/error", self.base)) {
            let headers = vec![
                ("Lambda-Extension-Identifier".to_owned(), self.id.clone()),
                (
                    "Lambda-Extension-Function-Error-Type".to_owned(),
                    kind.to_owned(),
                ),
            ];
            let body = serde_json::json!({"errorMessage": message, "errorType": kind}).to_string();
            let _ = http::request("POST", &url, &headers, body.as_bytes(), None);
        }
    }
}
