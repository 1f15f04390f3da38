//! The extension's settings: upstream's environment variables, read with
//! upstream's meaning (`docs/contract.md` §12.1), every problem reported at once.
//!
//! `CONSUL_SERVICE_UPSTREAMS` is a comma-separated list. Each entry is upstream's
//! form `name[.namespace[.partition]]:port[:datacenter]`, or the labelled form of
//! Consul on Kubernetes' upstream annotation,
//! `name.svc[.NS.ns][.AP.ap | .PEER.peer][.DC.dc]:port` — the only way to name a
//! peered upstream. An entry is labelled when its second label is `svc` and it has
//! at least four labels (upstream read such an entry as a namespace called `svc`
//! and dropped the labels after the third, which no Consul name fits).

use crate::config::{validate_consul_name, LogLevel};
use crate::error::{clip, Code, Diagnostic, Failure};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Upstream's default `CONSUL_REFRESH_FREQUENCY` (5 minutes), in milliseconds.
pub const DEFAULT_REFRESH_FREQUENCY_MS: u64 = 300_000;
/// Upstream's default `CONSUL_EXTENSION_PROXY_TIMEOUT` (3 seconds), in milliseconds.
pub const DEFAULT_PROXY_TIMEOUT_MS: u64 = 3_000;
/// The extension's name in the Extensions API and in the layer (`extensions/<name>`),
/// as upstream's.
pub const EXTENSION_NAME: &str = "consul-lambda-extension";

/// One upstream the function calls through a local listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upstream {
    /// The Consul service name.
    pub service: String,
    /// Its namespace (Enterprise; absent: `default`). For a peered upstream, the
    /// namespace in the exporting cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its admin partition (Enterprise; absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Its datacenter (absent: the registrator's, from the extension data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The cluster peer that exports it (absent: not peered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The local port the function connects to (`127.0.0.1:<port>`).
    pub port: u16,
}

/// The extension's validated settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExtensionSettings {
    /// The function's Consul service (`AWS_LAMBDA_FUNCTION_NAME`).
    pub service: String,
    /// `CONSUL_SERVICE_NAMESPACE` (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `CONSUL_SERVICE_PARTITION` (absent: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `CONSUL_MESH_GATEWAY_URI`'s host (a name or an IP address, without brackets).
    pub mesh_gateway_host: String,
    /// `CONSUL_MESH_GATEWAY_URI`'s port.
    pub mesh_gateway_port: u16,
    /// `CONSUL_SERVICE_UPSTREAMS`, in the order given.
    pub upstreams: Vec<Upstream>,
    /// `CONSUL_EXTENSION_DATA_PREFIX`.
    pub data_prefix: String,
    /// The parameter the extension reads: `<prefix>/<partition>/<namespace>/<service>`.
    pub parameter_name: String,
    /// `CONSUL_REFRESH_FREQUENCY` in milliseconds (default 5 minutes).
    pub refresh_frequency_ms: u64,
    /// `CONSUL_EXTENSION_PROXY_TIMEOUT` in milliseconds (default 3 seconds).
    pub proxy_timeout_ms: u64,
    /// `LOG_LEVEL` (default `info`).
    pub log_level: LogLevel,
    /// `TRACE_ENABLED` (upstream: only `true`, in any case, enables it).
    pub trace_enabled: bool,
}

fn invalid(value: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::InvalidUpstream,
        format!("upstream `{}` {why}", clip(value)),
        "write name[.namespace[.partition]]:port[:datacenter], or name.svc[.NS.ns][.PEER.peer]:port for a peered service",
    )
    .key("CONSUL_SERVICE_UPSTREAMS")
    .value(value)
}

/// Parses one `CONSUL_SERVICE_UPSTREAMS` entry (surrounding spaces ignored).
pub fn parse_upstream(entry: &str) -> Result<Upstream, Diagnostic> {
    let entry = entry.trim();
    let (name, port, datacenter) = split_entry(entry)?;
    let labels: Vec<&str> = name.split('.').collect();
    let mut up = Upstream {
        service: String::new(),
        namespace: None,
        partition: None,
        datacenter: None,
        peer: None,
        port,
    };
    match labels.as_slice() {
        [service, "svc", rest @ ..] if rest.len() >= 2 => {
            if datacenter.is_some() {
                return Err(invalid(
                    entry,
                    "gives a datacenter after the port in the labelled form (use `.DC.dc`)",
                ));
            }
            up.service = (*service).to_owned();
            read_labels(entry, rest, &mut up)?;
        }
        [service] => up.service = (*service).to_owned(),
        [service, ns] => {
            up.service = (*service).to_owned();
            up.namespace = Some((*ns).to_owned());
        }
        [service, ns, ap] => {
            up.service = (*service).to_owned();
            up.namespace = Some((*ns).to_owned());
            up.partition = Some((*ap).to_owned());
        }
        _ => {
            return Err(invalid(
                entry,
                "has more than three `.`-separated names (upstream ignored the rest)",
            ))
        }
    }
    if up.datacenter.is_none() {
        up.datacenter = datacenter.map(str::to_owned);
    }
    validate_upstream_names(entry, &up)?;
    Ok(up)
}

/// Splits an entry into its name, its port (1 to 65535) and its datacenter, if
/// any (`name:port[:datacenter]`).
fn split_entry(entry: &str) -> Result<(&str, u16, Option<&str>), Diagnostic> {
    let parts: Vec<&str> = entry.split(':').collect();
    let (name, port, datacenter) = match parts.as_slice() {
        [name, port] => (*name, *port, None),
        [name, port, dc] => (*name, *port, Some(*dc)),
        [_] => return Err(invalid(entry, "has no port")),
        _ => return Err(invalid(entry, "has more than three `:`-separated parts")),
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((name, p, datacenter)),
        _ => Err(invalid(
            entry,
            "has a port that is not a number from 1 to 65535",
        )),
    }
}

/// Reads the `value.label` pairs after `name.svc` in the labelled form into `up`:
/// each of `ns`, `ap`, `peer` and `dc` at most once, and a peer with neither a
/// partition nor a datacenter.
fn read_labels(entry: &str, rest: &[&str], up: &mut Upstream) -> Result<(), Diagnostic> {
    for pair in rest.chunks(2) {
        let (value, label) =
            match pair {
                [v, l] => (*v, *l),
                _ => return Err(invalid(
                    entry,
                    "has a label without a value (each value is followed by ns, ap, peer or dc)",
                )),
            };
        let slot = match label {
            "ns" => &mut up.namespace,
            "ap" => &mut up.partition,
            "peer" => &mut up.peer,
            "dc" => &mut up.datacenter,
            _ => return Err(invalid(entry, "has a label other than ns, ap, peer or dc")),
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(invalid(entry, "repeats a label"));
        }
    }
    if up.peer.is_some() && (up.partition.is_some() || up.datacenter.is_some()) {
        return Err(invalid(entry, "names a peer together with a partition or datacenter (a peer's partition and datacenter come from the peering)"));
    }
    Ok(())
}

/// Checks that every name of the upstream parsed from `entry` is one Consul allows.
fn validate_upstream_names(entry: &str, up: &Upstream) -> Result<(), Diagnostic> {
    for (what, value) in [
        ("service", Some(&up.service)),
        ("namespace", up.namespace.as_ref()),
        ("partition", up.partition.as_ref()),
        ("datacenter", up.datacenter.as_ref()),
        ("peer", up.peer.as_ref()),
    ] {
        if let Some(v) = value {
            if validate_consul_name("CONSUL_SERVICE_UPSTREAMS", v).is_err() {
                return Err(invalid(
                    entry,
                    &format!("has a {what} name that Consul does not allow"),
                ));
            }
        }
    }
    Ok(())
}

/// Parses a duration in Go's syntax (`time.ParseDuration`, which upstream's
/// configuration uses): a sequence of decimal numbers, each with a unit (`ns`,
/// `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `300ms`, `1.5h`, `2h45m`. Returns
/// milliseconds, rounded up; `None` when it is not that syntax, negative or zero.
pub fn parse_go_duration(text: &str) -> Option<u64> {
    const UNITS: &[(&str, u128)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        let scale = UNITS.iter().find(|(u, _)| *u == unit)?.1;
        let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        nanos = nanos.checked_add(whole.checked_mul(scale)?)?;
        let mut divisor: u128 = 1;
        let mut frac_value: u128 = 0;
        for d in frac.bytes().take(18) {
            frac_value = frac_value * 10 + u128::from(d - b'0');
            divisor *= 10;
        }
        nanos = nanos.checked_add(frac_value * scale / divisor)?;
        rest = next;
    }
    let ms = nanos.div_ceil(1_000_000);
    if ms == 0 || ms > u128::from(u64::MAX) {
        return None;
    }
    u64::try_from(ms).ok()
}

/// Splits `host:port` (`[v6]:port` for IPv6), as Go's `net.Dial` takes it.
fn parse_host_port(value: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = value.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        (host, rest.strip_prefix(':')?)
    } else {
        let (host, port) = value.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let ok_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    match port.parse::<u16>() {
        Ok(p) if p > 0 && ok_host => Some((host.to_owned(), p)),
        _ => None,
    }
}

/// Reads the extension's settings from its environment. Unknown variables are
/// ignored; empty values count as unset. Fails with `invalid_config` listing
/// every problem.
pub fn extension_settings_from_env(
    env: &BTreeMap<String, String>,
) -> Result<ExtensionSettings, Failure> {
    let mut reader = EnvReader {
        env,
        errors: Vec::new(),
    };
    // The problems are listed in this order.
    let service = reader.service();
    let namespace = reader.consul_name("CONSUL_SERVICE_NAMESPACE");
    let partition = reader.consul_name("CONSUL_SERVICE_PARTITION");
    let (mesh_gateway_host, mesh_gateway_port) = reader.mesh_gateway();
    let data_prefix = reader.data_prefix();
    let upstreams = reader.upstreams();
    let refresh_frequency_ms =
        reader.duration("CONSUL_REFRESH_FREQUENCY", DEFAULT_REFRESH_FREQUENCY_MS);
    let proxy_timeout_ms =
        reader.duration("CONSUL_EXTENSION_PROXY_TIMEOUT", DEFAULT_PROXY_TIMEOUT_MS);
    let log_level = reader.log_level();
    // Upstream: `strings.ToLower(TRACE_ENABLED) == "true"`; anything else is off.
    let trace_enabled = reader
        .get("TRACE_ENABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));

    if !reader.errors.is_empty() {
        return Err(Failure::many(
            Code::InvalidConfig,
            "invalid extension settings",
            reader.errors,
        ));
    }
    let parameter_name = format!(
        "{data_prefix}/{}/{}/{service}",
        partition.as_deref().unwrap_or("default"),
        namespace.as_deref().unwrap_or("default"),
    );
    Ok(ExtensionSettings {
        service,
        namespace,
        partition,
        mesh_gateway_host,
        mesh_gateway_port,
        upstreams,
        data_prefix,
        parameter_name,
        refresh_frequency_ms,
        proxy_timeout_ms,
        log_level,
        trace_enabled,
    })
}

/// `key is not set`.
fn missing(key: &str, hint: &str) -> Diagnostic {
    Diagnostic::new(Code::MissingSetting, format!("{key} is not set"), hint).key(key)
}

/// Reads the extension's environment one setting at a time, collecting every
/// problem in `errors`; a setting with a problem reads as its default.
struct EnvReader<'a> {
    env: &'a BTreeMap<String, String>,
    errors: Vec<Diagnostic>,
}

impl<'a> EnvReader<'a> {
    /// The trimmed value of `key`; `None` when unset or empty.
    fn get(&self, key: &str) -> Option<&'a str> {
        self.env
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `AWS_LAMBDA_FUNCTION_NAME` (required; empty when missing).
    fn service(&mut self) -> String {
        let service = self
            .get("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_default()
            .to_owned();
        if service.is_empty() {
            self.errors.push(missing(
                "AWS_LAMBDA_FUNCTION_NAME",
                "Lambda sets it; outside Lambda, set it to the function's name (its Consul service)",
            ));
        }
        service
    }

    /// An optional setting that must be a name Consul allows.
    fn consul_name(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        match validate_consul_name(key, v) {
            Ok(()) => Some(v.to_owned()),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// `CONSUL_MESH_GATEWAY_URI` (required): its host and port.
    fn mesh_gateway(&mut self) -> (String, u16) {
        let Some(v) = self.get("CONSUL_MESH_GATEWAY_URI") else {
            self.errors.push(missing(
                "CONSUL_MESH_GATEWAY_URI",
                "set it to the mesh gateway's address, e.g. mesh-gateway.internal:8443",
            ));
            return (String::new(), 0);
        };
        parse_host_port(v).unwrap_or_else(|| {
            self.errors.push(
                Diagnostic::new(
                    Code::InvalidUrl,
                    "CONSUL_MESH_GATEWAY_URI must be host:port (no scheme), as upstream dials it",
                    "e.g. mesh-gateway.internal:8443 or 10.0.1.5:8443",
                )
                .key("CONSUL_MESH_GATEWAY_URI")
                .value(v),
            );
            (String::new(), 0)
        })
    }

    /// `CONSUL_EXTENSION_DATA_PREFIX` (required).
    fn data_prefix(&mut self) -> String {
        let Some(p) = self.get("CONSUL_EXTENSION_DATA_PREFIX") else {
            self.errors.push(missing(
                "CONSUL_EXTENSION_DATA_PREFIX",
                "set it to the registrator's CONSUL_EXTENSION_DATA_PREFIX, e.g. /lambda_extension_data",
            ));
            return String::new();
        };
        if let Err(e) = validate_data_prefix(p) {
            self.errors.push(e);
        }
        p.to_owned()
    }

    /// `CONSUL_SERVICE_UPSTREAMS` (optional): the valid entries, in order, each
    /// with a port of its own.
    fn upstreams(&mut self) -> Vec<Upstream> {
        let mut upstreams = Vec::new();
        let Some(list) = self.get("CONSUL_SERVICE_UPSTREAMS") else {
            return upstreams;
        };
        let mut ports = BTreeSet::new();
        for entry in list.split(',') {
            if entry.trim().is_empty() {
                self.errors.push(invalid(list, "has an empty entry"));
                continue;
            }
            match parse_upstream(entry) {
                Ok(up) if !ports.insert(up.port) => {
                    self.errors.push(invalid(
                        entry.trim(),
                        "uses a port that another upstream uses",
                    ));
                }
                Ok(up) => upstreams.push(up),
                Err(e) => self.errors.push(e),
            }
        }
        upstreams
    }

    /// An optional Go duration, in milliseconds (`default` when unset).
    fn duration(&mut self, key: &str, default: u64) -> u64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        parse_go_duration(v).unwrap_or_else(|| {
            self.errors.push(
                Diagnostic::new(
                    Code::InvalidDuration,
                    format!("{key} must be a positive Go duration"),
                    "e.g. 30s, 5m or 1h30m (a number needs a unit)",
                )
                .key(key)
                .value(v),
            );
            default
        })
    }

    /// `LOG_LEVEL` (default `info`).
    fn log_level(&mut self) -> LogLevel {
        match self.get("LOG_LEVEL").map(parse_log_level) {
            None => LogLevel::Info,
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                self.errors.push(e);
                LogLevel::Info
            }
        }
    }
}

/// Reads `LOG_LEVEL` as the registrator does: any case, `warning` for `warn`.
// (The registrator's own check is inline in `config.rs`, which is being
// reshaped on another branch; the two can share one function after that.)
fn parse_log_level(value: &str) -> Result<LogLevel, Diagnostic> {
    let lower = value.to_ascii_lowercase();
    let known = if lower == "warning" {
        "warn"
    } else {
        lower.as_str()
    };
    serde_json::from_value::<LogLevel>(serde_json::Value::String(known.to_owned())).map_err(|_| {
        Diagnostic::new(
            Code::InvalidLogLevel,
            "LOG_LEVEL must be trace, debug, info, warn or error",
            "set LOG_LEVEL=info",
        )
        .key("LOG_LEVEL")
        .value(value)
    })
}

/// Checks `CONSUL_EXTENSION_DATA_PREFIX` with the registrator's rule: a Parameter
/// Store path of one or more non-empty segments of letters, digits and `. - _`,
/// each after a `/`, with no `/` at the end (both append
/// `/<partition>/<namespace>/<service>` to it).
fn validate_data_prefix(prefix: &str) -> Result<(), Diagnostic> {
    let mut segments = prefix.split('/');
    let rooted = segments.next() == Some("");
    let mut any = false;
    let segments_ok = segments.all(|seg| {
        any = true;
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    });
    if rooted && any && segments_ok {
        return Ok(());
    }
    Err(Diagnostic::new(
        Code::InvalidParameterPath,
        "CONSUL_EXTENSION_DATA_PREFIX must be a Parameter Store path: it starts with `/`, does not end with `/`, and uses letters, digits and . - _ /",
        "use the registrator's prefix, such as /lambda_extension_data",
    )
    .key("CONSUL_EXTENSION_DATA_PREFIX")
    .value(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, ms) in [
            ("5m", Some(300_000)),
            ("3s", Some(3_000)),
            ("1h30m", Some(5_400_000)),
            ("1.5h", Some(5_400_000)),
            ("300ms", Some(300)),
            ("1500us", Some(2)),
            ("1ns", Some(1)),
            (".5s", Some(500)),
            ("+2s", Some(2_000)),
            ("0s", None),
            ("0", None),
            ("-1s", None),
            ("5", None),
            ("5 m", None),
            ("m", None),
            ("", None),
            ("1d", None),
        ] {
            assert_eq!(parse_go_duration(text), ms, "{text}");
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(parse_host_port("gw:8443"), Some(("gw".into(), 8443)));
        assert_eq!(parse_host_port("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(parse_host_port("https://gw:8443"), None);
        assert_eq!(parse_host_port("::1:8443"), None);
        assert_eq!(parse_host_port("gw"), None);
        assert_eq!(parse_host_port("gw:0"), None);
    }

    #[test]
    fn data_prefix_follows_the_registrators_rule() {
        for ok in ["/a", "/lambda_extension_data", "/a.b-c_d/E9"] {
            assert!(validate_data_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/", "a", "a/b", "/a/", "//a", "/a//b", "/a b", "/a:b"] {
            let e = validate_data_prefix(bad).err();
            assert_eq!(
                e.map(|d| d.code),
                Some(Code::InvalidParameterPath),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn log_levels_as_the_registrator_reads_them() {
        for (text, level) in [
            ("trace", LogLevel::Trace),
            ("DEBUG", LogLevel::Debug),
            ("Info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("WARNING", LogLevel::Warn),
            ("error", LogLevel::Error),
        ] {
            assert_eq!(parse_log_level(text).ok(), Some(level), "{text}");
        }
        for bad in ["loud", "warnings", "\"info\"", "1"] {
            let e = parse_log_level(bad).err();
            assert_eq!(e.map(|d| d.code), Some(Code::InvalidLogLevel), "{bad}");
        }
    }
}
