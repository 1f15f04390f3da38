//! When the extension reads its data again (`docs/contract.md` §12.4). Times are
//! milliseconds; the binary passes the clock in.
//!
//! **Fix** Upstream's extension read its data every `CONSUL_REFRESH_FREQUENCY` and
//! exited on the first failed read, leaving the function without mesh access until
//! its next cold start; it also kept a certificate past its expiry when the refresh
//! frequency was longer than the time left. Ours keeps the last good data through a
//! Parameter Store outage and retries with backoff, reads again before the
//! certificate expires, and reads at once (at most every
//! [`MIN_TRIGGERED_INTERVAL_MS`]) when a handshake fails on a certificate the
//! server's CA does not know, which is what a CA rotation looks like.

/// Read again this long before the certificate expires.
pub const RENEW_BEFORE_EXPIRY_MS: u64 = 10 * 60 * 1000;
/// The first retry after a failed read; each failure doubles it.
pub const FIRST_RETRY_MS: u64 = 1_000;
/// The longest wait between retries (or the refresh frequency, if shorter).
pub const MAX_RETRY_MS: u64 = 60_000;
/// Reads triggered by failed handshakes are at least this far apart.
pub const MIN_TRIGGERED_INTERVAL_MS: u64 = 5_000;

/// The wait before the next read after a successful one at `now_ms`, for a
/// certificate valid until `not_after_ms` (when known).
pub fn after_success(now_ms: u64, refresh_frequency_ms: u64, not_after_ms: Option<u64>) -> u64 {
    let Some(not_after) = not_after_ms else {
        return refresh_frequency_ms;
    };
    let renew_at = not_after.saturating_sub(RENEW_BEFORE_EXPIRY_MS);
    if renew_at <= now_ms {
        // The registrator has not written a newer certificate yet: ask again
        // soon, as after a failure, but never busily.
        return refresh_frequency_ms.min(30_000);
    }
    refresh_frequency_ms.min(renew_at - now_ms)
}

/// The wait before the next read after `failures` failed reads in a row (1 for the first).
pub fn after_failure(failures: u32, refresh_frequency_ms: u64) -> u64 {
    let cap = MAX_RETRY_MS.min(refresh_frequency_ms).max(FIRST_RETRY_MS);
    let shift = failures.saturating_sub(1).min(16);
    FIRST_RETRY_MS.saturating_mul(1 << shift).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let h = 3_600_000;
        // Far from expiry: the refresh frequency.
        assert_eq!(after_success(0, 300_000, Some(72 * h)), 300_000);
        assert_eq!(after_success(0, 300_000, None), 300_000);
        // A frequency longer than the certificate's life: read before it expires.
        assert_eq!(
            after_success(0, 100 * h, Some(h)),
            h - RENEW_BEFORE_EXPIRY_MS
        );
        // Inside the renewal window: soon.
        assert_eq!(after_success(h, 300_000, Some(h + 60_000)), 30_000);
        assert_eq!(after_success(h, 2_000, Some(h + 60_000)), 2_000);
        // Backoff: 1, 2, 4 … seconds, capped at a minute or the frequency.
        let waits: Vec<u64> = (1..=8).map(|n| after_failure(n, 300_000)).collect();
        assert_eq!(
            waits,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        );
        assert_eq!(after_failure(5, 5_000), 5_000);
        assert_eq!(after_failure(u32::MAX, 300_000), 60_000);
        assert_eq!(after_failure(1, 10), 1_000);
    }
}
