//! Waits between retries: exponential backoff with full jitter, or the provider's
//! Retry-After plus a little jitter (so clients told the same wait do not return together).

use std::time::Duration;

use rand::Rng;

/// Largest jitter added to a provider-advised wait.
const MAX_ADVISED_JITTER: Duration = Duration::from_millis(100);

/// Upper bound of the wait before retry `retry` (1-based): `base·2^(retry−1)`, at most `cap`.
pub fn backoff_ceiling(base: Duration, cap: Duration, retry: u32) -> Duration {
    let factor = 2u32
        .checked_pow(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).map_or(cap, |d| d.min(cap))
}

/// Full jitter: a uniformly random wait in `0..=ceiling`.
pub fn full_jitter(ceiling: Duration, rng: &mut impl Rng) -> Duration {
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.gen_range(0..=nanos))
}

/// The provider's advised wait plus up to a tenth of it (at most 100 ms) of jitter.
pub fn advised_wait(retry_after: Duration, rng: &mut impl Rng) -> Duration {
    retry_after + full_jitter((retry_after / 10).min(MAX_ADVISED_JITTER), rng)
}
