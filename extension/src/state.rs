//! The extension data the listeners use, and the thread that keeps it current
//! (the schedule is the core's, `extension::refresh`).

use crate::log;
use crate::mesh::{self, Material, OnUnknownCa};
use crate::ssm;
use consul_lambda_sync::extension::refresh;
use consul_lambda_sync::extension::upstreams::ExtensionSettings;
use consul_lambda_sync::sigv4;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// State shared by the listeners and the refresh thread.
pub struct Shared {
    /// The settings.
    pub settings: ExtensionSettings,
    material: Mutex<Option<Arc<Material>>>,
    material_changed: Condvar,
    triggered: Mutex<bool>,
    trigger_cv: Condvar,
    last_trigger_ms: AtomicU64,
    /// Wall-clock time of the next scheduled read (a frozen sandbox's timers may be late).
    next_due_ms: AtomicU64,
    last_digest: Mutex<Option<Vec<u8>>>,
    /// When the last good data was read.
    pub last_ok_ms: AtomicU64,
}

impl Shared {
    /// New state without data.
    pub fn new(settings: ExtensionSettings) -> Arc<Shared> {
        Arc::new(Shared {
            settings,
            material: Mutex::new(None),
            material_changed: Condvar::new(),
            triggered: Mutex::new(false),
            trigger_cv: Condvar::new(),
            last_trigger_ms: AtomicU64::new(0),
            next_due_ms: AtomicU64::new(0),
            last_digest: Mutex::new(None),
            last_ok_ms: AtomicU64::new(0),
        })
    }

    /// The current material, waiting up to `wait` for the first.
    pub fn material(&self, wait: Duration) -> Option<Arc<Material>> {
        let guard = self.material.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .material_changed
            .wait_timeout_while(guard, wait, |m| m.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }

    /// Asks the refresh thread to read now (at most every few seconds).
    pub fn trigger(&self, why: &str) {
        let now = log::now_ms();
        let last = self.last_trigger_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < refresh::MIN_TRIGGERED_INTERVAL_MS {
            return;
        }
        self.last_trigger_ms.store(now, Ordering::Relaxed);
        log::info(
            "reading the extension data again",
            &[("reason", json!(why))],
        );
        *self
            .triggered
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.trigger_cv.notify_all();
    }

    /// Called on every accepted connection: a read that is due (the sandbox was
    /// frozen past it) or a certificate about to expire triggers one.
    pub fn check_due(&self) {
        let now = log::now_ms();
        if now >= self.next_due_ms.load(Ordering::Relaxed)
            && self.next_due_ms.load(Ordering::Relaxed) > 0
        {
            self.trigger("a scheduled read is overdue");
        }
    }

    fn on_unknown_ca(self: &Arc<Self>) -> OnUnknownCa {
        let weak = Arc::downgrade(self);
        Arc::new(move || {
            if let Some(s) = weak.upgrade() {
                s.trigger("a server's certificate chains to no root we know (CA rotation?)");
            }
        })
    }

    /// One read of Parameter Store; on success the listeners use the new data.
    /// Returns the certificate's expiry.
    pub fn read_once(self: &Arc<Self>, client: &ssm::Client) -> Result<Option<u64>, String> {
        let timeout = Duration::from_millis(self.settings.proxy_timeout_ms.max(2_000));
        let started = log::now_ms();
        let value = client
            .get_parameter(&self.settings.parameter_name, started / 1000, timeout)
            .map_err(|e| e.to_string())?;
        let answered = log::now_ms();
        let digest = sigv4::sha256_hex(value.as_bytes()).into_bytes();
        let mut last = self
            .last_digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.as_deref() == Some(digest.as_slice()) {
            self.last_ok_ms.store(answered, Ordering::Relaxed);
            return Ok(self.material(Duration::ZERO).and_then(|m| m.not_after_ms));
        }
        let material = mesh::build(&self.settings, &value, &self.on_unknown_ca())?;
        let built = log::now_ms();
        for (port, t) in &material.targets {
            match t {
                Ok(t) => log::debug(
                    "upstream",
                    &[
                        ("port", json!(port)),
                        ("sni", json!(t.dial.sni)),
                        ("spiffeIds", json!(t.dial.spiffe_ids)),
                        ("datacenterSource", json!(t.dial.datacenter_source)),
                    ],
                ),
                Err(e) => log::warn(
                    "upstream cannot be dialled",
                    &[("port", json!(port)), ("error", json!(e))],
                ),
            }
        }
        let not_after = material.not_after_ms;
        log::info(
            "extension data loaded",
            &[
                ("parameter", json!(self.settings.parameter_name)),
                ("certificateExpiresMs", json!(not_after)),
                ("leafDatacenter", json!(material.leaf_datacenter)),
                ("readMs", json!(answered - started)),
                ("buildMs", json!(built - answered)),
            ],
        );
        *self.material.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(material));
        self.material_changed.notify_all();
        *last = Some(digest);
        self.last_ok_ms.store(answered, Ordering::Relaxed);
        Ok(not_after)
    }

    /// The refresh loop (its own thread): reads on the schedule, after a failure
    /// with backoff, and when triggered. A failed read keeps the last good data.
    pub fn refresh_loop(self: Arc<Self>, client: ssm::Client, first: Result<Option<u64>, String>) {
        let freq = self.settings.refresh_frequency_ms;
        let mut failures: u32 = 0;
        let mut outcome = first;
        loop {
            let now = log::now_ms();
            let wait = match &outcome {
                Ok(not_after) => {
                    failures = 0;
                    refresh::after_success(now, freq, *not_after)
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = refresh::after_failure(failures, freq);
                    let have = self.material(Duration::ZERO).is_some();
                    log::warn(
                        if have {
                            "reading the extension data failed; the last good certificate stays in use"
                        } else {
                            "reading the extension data failed; connections wait for it"
                        },
                        &[
                            ("error", json!(e)),
                            ("failures", json!(failures)),
                            ("retryInMs", json!(wait)),
                        ],
                    );
                    wait
                }
            };
            self.next_due_ms.store(now + wait, Ordering::Relaxed);
            let guard = self
                .triggered
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let (mut guard, _) = self
                .trigger_cv
                .wait_timeout_while(guard, Duration::from_millis(wait), |t| !*t)
                .unwrap_or_else(PoisonError::into_inner);
            *guard = false;
            drop(guard);
            outcome = self.read_once(&client);
        }
    }
}
