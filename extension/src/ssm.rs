//! Parameter Store's `GetParameter` (with decryption), signed with SigV4: the
//! extension's only AWS call.

use crate::http::{self, Url};
use consul_lambda_sync::sigv4::{self, Credentials, Scope};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where and as whom to call Parameter Store.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Url,
    region: String,
    creds: Credentials,
}

/// Why a read failed. Never holds the parameter's value.
#[derive(Debug)]
pub enum Error {
    /// No answer (connect, TLS, timeout).
    Transport(std::io::Error),
    /// An error answer: the HTTP status and AWS's error type (`__type`).
    Aws(u16, String),
    /// An answer without `Parameter.Value`.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "Parameter Store did not answer: {e}"),
            Error::Aws(status, kind) => write!(f, "Parameter Store answered {status} {kind}"),
            Error::Malformed => f.write_str("Parameter Store's answer has no Parameter.Value"),
        }
    }
}

impl Client {
    /// From the environment Lambda gives an extension: `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), the role's `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and the SDKs' endpoint
    /// override (`AWS_ENDPOINT_URL_SSM`, then `AWS_ENDPOINT_URL`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Client, String> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or("AWS_REGION is not set")?;
        let creds = Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")
                .ok_or("AWS_SECRET_ACCESS_KEY is not set")?,
            session_token: get("AWS_SESSION_TOKEN"),
        };
        let endpoint_text = get("AWS_ENDPOINT_URL_SSM")
            .or_else(|| get("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://ssm.{region}.amazonaws.com"));
        let mut endpoint = Url::parse(&endpoint_text)
            .ok_or("the Parameter Store endpoint is not an http(s) URL")?;
        endpoint.path = "/".into();
        Ok(Client {
            endpoint,
            region,
            creds,
        })
    }

    /// `GetParameter` with decryption: the parameter's value.
    pub fn get_parameter(
        &self,
        name: &str,
        now_secs: u64,
        timeout: Duration,
    ) -> Result<String, Error> {
        let body = serde_json::json!({"Name": name, "WithDecryption": true}).to_string();
        let date = sigv4::amz_date(now_secs);
        let host = self.endpoint.authority();
        let mut signed: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-amz-json-1.1"),
            ("host", &host),
            ("x-amz-date", &date),
            ("x-amz-target", "AmazonSSM.GetParameter"),
        ];
        if let Some(token) = &self.creds.session_token {
            signed.push(("x-amz-security-token", token));
        }
        let scope = Scope {
            amz_date: &date,
            region: &self.region,
            service: "ssm",
        };
        let auth = sigv4::sign(
            self.creds.key(),
            &scope,
            "POST",
            "/",
            "",
            &signed,
            body.as_bytes(),
        );
        let mut headers: Vec<(String, String)> = signed
            .iter()
            .filter(|(k, _)| *k != "host")
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        headers.push(("authorization".into(), auth));
        let resp = http::request(
            "POST",
            &self.endpoint,
            &headers,
            body.as_bytes(),
            Some(timeout),
        )
        .map_err(Error::Transport)?;
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        if resp.status != 200 {
            let kind = json
                .get("__type")
                .and_then(|t| t.as_str())
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
                .unwrap_or_else(|| "unknown error".to_owned());
            return Err(Error::Aws(resp.status, kind));
        }
        json.get("Parameter")
            .and_then(|p| p.get("Value"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or(Error::Malformed)
    }
}
