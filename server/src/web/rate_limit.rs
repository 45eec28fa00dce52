//! Per-client rate limits: a token bucket per client, where a client is an IPv4 address
//! or an IPv6 /64 (one subscriber's allocation: a host can pick any of its 2^64
//! addresses, so counting addresses would give it a fresh bucket per request).
//!
//! The buckets are bounded: at most [`MAX_CLIENTS`] per limiter. A full bucket is the
//! same as no bucket, so those are dropped first when room is needed; if every bucket is
//! in use, newcomers share one overflow bucket until room is made. Clients already known
//! keep their own bucket, so a flood of new addresses cannot evict anyone's limit, nor
//! grow memory.
//!
//! Our own rather than `tower_governor`'s keyed store: that store only grows (its
//! `retain_recent` must be called from outside) and cannot say whether a client is known
//! without adding it, which the overflow rule needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::XrpcError;
use super::client_ip::ClientIp;

/// Most clients one limiter keeps a bucket for.
pub const MAX_CLIENTS: usize = 100_000;
/// Least time between two sweeps of full buckets.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Who a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl Client {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut prefix = [0; 8];
                prefix.copy_from_slice(&v6.octets()[..8]);
                Self::V6(prefix)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    map: HashMap<Client, Bucket>,
    /// Everyone who came while every bucket was taken.
    overflow: Bucket,
    swept: Instant,
}

/// A per-client limit of `per_minute` requests, in bursts of up to a tenth of that.
/// Cheap to clone.
#[derive(Clone)]
pub struct RateLimit {
    inner: Arc<Inner>,
}

struct Inner {
    per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<Buckets>,
}

impl RateLimit {
    /// `per_minute` requests per client (more than 0), at most `max_clients` buckets.
    pub fn new(per_minute: u32, max_clients: usize) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            inner: Arc::new(Inner {
                per_second: f64::from(per_minute) / 60.0,
                burst: f64::from((per_minute / 10).max(1)),
                max_clients: max_clients.max(1),
                buckets: Mutex::new(Buckets {
                    map: HashMap::new(),
                    overflow: Bucket {
                        tokens: f64::from((per_minute / 10).max(1)),
                        at: Instant::now(),
                    },
                    swept: Instant::now(),
                }),
            }),
        }
    }

    /// Takes a token for `ip` at `now`; when there is none, how long until there is.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let inner = &self.inner;
        let mut buckets = inner
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let client = Client::of(ip);
        if !buckets.map.contains_key(&client)
            && buckets.map.len() >= inner.max_clients
            && now.saturating_duration_since(buckets.swept) >= SWEEP_INTERVAL
        {
            buckets.swept = now;
            buckets
                .map
                .retain(|_, bucket| inner.refilled(*bucket, now) < inner.burst);
        }
        let buckets = &mut *buckets;
        let bucket = if buckets.map.contains_key(&client) || buckets.map.len() < inner.max_clients {
            buckets.map.entry(client).or_insert(Bucket {
                tokens: inner.burst,
                at: now,
            })
        } else {
            &mut buckets.overflow
        };
        let tokens = inner.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / inner.per_second))
        }
    }

    /// Clients with a bucket now.
    pub fn clients(&self) -> usize {
        self.inner
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .map
            .len()
    }
}

impl Inner {
    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

/// Middleware: refuses a client over its limit with 429 `RateLimitExceeded` and
/// `Retry-After`. Requests without a [`ClientIp`] (which the router always adds) pass.
pub async fn enforce(State(limit): State<RateLimit>, request: Request, next: Next) -> Response {
    let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>().copied() else {
        return next.run(request).await;
    };
    match limit.check(ip, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => XrpcError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitExceeded",
            "too many requests; slow down",
        )
        .retry_after(u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let limit = RateLimit::new(60, 100);
        let now = Instant::now();
        for _ in 0..6 {
            assert!(limit.check(ip("192.0.2.1"), now).is_ok());
        }
        let wait = limit.check(ip("192.0.2.1"), now).expect_err("over");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(
            limit.check(ip("192.0.2.2"), now).is_ok(),
            "others unaffected"
        );
        assert!(
            limit
                .check(ip("192.0.2.1"), now + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limit = RateLimit::new(10, 100);
        let now = Instant::now();
        assert!(limit.check(ip("2001:db8:1:2::1"), now).is_ok());
        assert!(
            limit.check(ip("2001:db8:1:2:ffff::9"), now).is_err(),
            "another address of the same /64 shares the bucket"
        );
        assert!(limit.check(ip("2001:db8:1:3::1"), now).is_ok());
        assert!(
            limit.check(ip("::ffff:192.0.2.7"), now).is_ok()
                && limit.check(ip("192.0.2.7"), now).is_err(),
            "a mapped IPv4 address is that address"
        );
    }

    #[test]
    fn state_stays_bounded_and_known_clients_keep_their_limit() {
        let limit = RateLimit::new(600, 1000);
        let now = Instant::now();
        // A known client spends its burst.
        for _ in 0..60 {
            assert!(limit.check(ip("198.51.100.1"), now).is_ok());
        }
        assert!(limit.check(ip("198.51.100.1"), now).is_err());
        // A flood of fresh /64s.
        let mut refused = 0;
        for n in 0..100_000u32 {
            let flood = IpAddr::V6(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                (n >> 16) as u16,
                n as u16,
                0,
                0,
                0,
                1,
            ));
            if limit.check(flood, now).is_err() {
                refused += 1;
            }
        }
        assert!(limit.clients() <= 1000, "{}", limit.clients());
        assert!(
            refused > 90_000,
            "newcomers beyond the cap share one bucket: {refused}"
        );
        assert!(
            limit.check(ip("198.51.100.1"), now).is_err(),
            "the flood did not reset a known client's bucket"
        );
        // Once buckets refill, room is made again.
        let later = now + Duration::from_secs(60);
        assert!(limit.check(ip("203.0.113.9"), later).is_ok());
        assert!(limit.clients() < 1000);
    }
}
