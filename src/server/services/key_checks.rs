//! How often one caller may ask the server to check a key (Validate): each
//! check is a request from this server to an address the caller may have
//! chosen, so a burst is refused with `429` + `Retry-After` before any
//! request leaves.

use crate::error::AppError;
use crate::server::error::Result;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

/// Key checks one caller may make per minute (a burst of as many, refilled
/// evenly).
pub const CHECKS_PER_MINUTE: u32 = 10;

/// Per-caller limit on key checks, on this server.
pub struct KeyCheckLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Default for KeyCheckLimiter {
    fn default() -> Self {
        let per_minute = NonZeroU32::new(CHECKS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        KeyCheckLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }
}

impl KeyCheckLimiter {
    /// Takes one check for the caller named `caller_key` (see
    /// `Caller::limit_key`), or `429` with the seconds until the next.
    pub fn admit(&self, caller_key: String) -> Result<()> {
        self.limiter.check_key(&caller_key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManyRequests {
                message: format!(
                    "at most {CHECKS_PER_MINUTE} key checks a minute; try again in {} s",
                    wait.as_secs().max(1)
                ),
                retry_after_secs: wait.as_secs().max(1),
            }
            .into()
        })
    }
}
