//! `--metrics-auth kubernetes`: who may read `/metrics`, decided by the Kubernetes API the
//! way kube-rbac-proxy and controller-runtime's `WithAuthenticationAndAuthorization` filter
//! do it:
//!
//! 1. the request's `Authorization: Bearer <token>` is checked with a `TokenReview`
//!    (authentication.k8s.io/v1, the API server's default audience);
//! 2. the user it names (username, uid, groups, extra) is checked with a
//!    `SubjectAccessReview` (authorization.k8s.io/v1) for verb `get` on the non-resource
//!    URL `/metrics` — what a ClusterRole rule `nonResourceURLs: ["/metrics"], verbs:
//!    ["get"]` grants.
//!
//! Outcomes: no or malformed header, or a token the API does not authenticate → **401**
//! with `WWW-Authenticate: Bearer`; authenticated but not allowed → **403**; the API
//! failing, timing out or too busy while reviewing → **503** with `Retry-After` (the
//! agent cannot tell yes from no, and the cause is a dependency that is usually back
//! soon; never a 200). Allowed and refused outcomes are cached for [`CACHE_TTL`], keyed
//! by the SHA-256 of the token (raw tokens are never stored or logged), at most
//! [`CACHE_MAX_ENTRIES`] entries; errors are not cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::Api;

/// How long an allowed or refused outcome is reused for the same token.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Bound on the cache (one entry per distinct token seen within the TTL).
pub const CACHE_MAX_ENTRIES: usize = 1024;
/// Default bound on each review call (`--metrics-auth-timeout`).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on reviews in flight at once: a flood of made-up tokens must not turn into a
/// flood of API requests. Beyond it a scrape gets 503.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 16;
/// The path and verb authorised.
pub const METRICS_PATH: &str = "/metrics";
/// The verb the SubjectAccessReview asks for on [`METRICS_PATH`].
pub const METRICS_VERB: &str = "get";
/// Bound on tokens accepted from a header (a service account token is ~1 KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a review decided (cached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Authenticated and allowed `get /metrics`.
    Allowed {
        /// The username the TokenReview returned (for the logs).
        user: String,
    },
    /// No valid token.
    Unauthenticated,
    /// Authenticated, not allowed.
    Forbidden {
        /// The username the TokenReview returned (for the logs).
        user: String,
    },
}

/// The outcome of one request's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The API answered: allowed, unauthenticated (401) or forbidden (403).
    Decided(Decision),
    /// The API could not answer (error, timeout, too many reviews in flight); not cached.
    Error(String),
}

/// SHA-256 of a token: the cache key (the token itself is never kept).
pub type TokenHash = [u8; 32];

/// The SHA-256 of `token`, the key it is cached under.
pub fn token_hash(token: &str) -> TokenHash {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A bounded cache of decisions by token hash, each valid for `ttl`.
#[derive(Debug)]
pub struct DecisionCache {
    ttl: Duration,
    max: usize,
    entries: HashMap<TokenHash, (Instant, Decision)>,
}

impl DecisionCache {
    /// An empty cache whose entries live `ttl`, holding at most `max` (at least 1).
    pub fn new(ttl: Duration, max: usize) -> DecisionCache {
        DecisionCache {
            ttl,
            max: max.max(1),
            entries: HashMap::new(),
        }
    }

    /// The decision for `key` if it is younger than the TTL (at `now`).
    pub fn get(&mut self, key: &TokenHash, now: Instant) -> Option<Decision> {
        match self.entries.get(key) {
            Some((at, d)) if now.saturating_duration_since(*at) < self.ttl => Some(d.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remember `decision` for `key` from `now`. When full: expired entries go first, then
    /// the oldest.
    pub fn insert(&mut self, key: TokenHash, decision: Decision, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if self.entries.len() >= self.max {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (now, decision));
    }

    /// How many decisions are held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any key is `key` (tests: only hashes are stored).
    pub fn contains(&self, key: &TokenHash) -> bool {
        self.entries.contains_key(key)
    }
}

/// The bearer token of an `Authorization` header value: `Bearer <token>` (scheme
/// case-insensitive, one space or more), non-empty, at most [`MAX_TOKEN_BYTES`].
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= MAX_TOKEN_BYTES && !token.contains(' ')).then_some(token)
}

/// Logs API errors at warn at most once a minute (with how many were not logged).
#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The `/metrics` gate: reviews tokens against the API with the agent's client.
pub struct Authenticator {
    client: kube::Client,
    timeout: Duration,
    cache: Mutex<DecisionCache>,
    in_flight: Arc<tokio::sync::Semaphore>,
    errors: Mutex<ErrorLog>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Authenticator {
    /// A gate that reviews with `client`, bounding each review by `timeout`
    /// (`--metrics-auth-timeout`), with a [`CACHE_TTL`] cache and at most
    /// [`MAX_REVIEWS_IN_FLIGHT`] reviews at once.
    pub fn new(client: kube::Client, timeout: Duration) -> Authenticator {
        Authenticator {
            client,
            timeout,
            cache: Mutex::new(DecisionCache::new(CACHE_TTL, CACHE_MAX_ENTRIES)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_REVIEWS_IN_FLIGHT)),
            errors: Mutex::new(ErrorLog::default()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, DecisionCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decide a request from its `Authorization` header value.
    pub async fn check(&self, authorization: Option<&str>) -> Outcome {
        let Some(token) = bearer_token(authorization) else {
            tracing::debug!("metrics: no bearer token");
            return Outcome::Decided(Decision::Unauthenticated);
        };
        let key = token_hash(token);
        if let Some(d) = self.cache().get(&key, Instant::now()) {
            return Outcome::Decided(d);
        }
        let Ok(_permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            return self.error("too many token reviews in flight".to_string());
        };
        let decision = match self.review(token).await {
            Ok(d) => d,
            Err(e) => return self.error(e),
        };
        match &decision {
            Decision::Allowed { user } => tracing::debug!(%user, "metrics: allowed"),
            Decision::Forbidden { user } => {
                tracing::debug!(%user, "metrics: refused: not allowed to get /metrics");
            }
            Decision::Unauthenticated => {
                tracing::debug!("metrics: refused: the token does not authenticate");
            }
        }
        self.cache().insert(key, decision.clone(), Instant::now());
        Outcome::Decided(decision)
    }

    fn error(&self, why: String) -> Outcome {
        let mut log = self
            .errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = log.last.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL);
        if due {
            tracing::warn!(
                error = %why,
                not_logged_since_last = log.suppressed,
                "metrics: cannot review a scrape's token; answering 503"
            );
            log.last = Some(Instant::now());
            log.suppressed = 0;
        } else {
            log.suppressed += 1;
        }
        Outcome::Error(why)
    }

    async fn review(&self, token: &str) -> Result<Decision, String> {
        let tr = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api = Api::<TokenReview>::all(self.client.clone());
        let done = crate::io::kube::create(&api, &tr, self.timeout, "TokenReview").await?;
        let Some(status) = done.status else {
            return Err("TokenReview: the answer has no status".to_string());
        };
        if status.authenticated != Some(true) {
            return Ok(Decision::Unauthenticated);
        }
        let Some(user) = status.user else {
            return Err("TokenReview: authenticated without a user".to_string());
        };
        let name = user.username.clone().unwrap_or_default();
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                uid: user.uid,
                groups: user.groups,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(METRICS_PATH.to_string()),
                    verb: Some(METRICS_VERB.to_string()),
                }),
                resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let api = Api::<SubjectAccessReview>::all(self.client.clone());
        let done = crate::io::kube::create(&api, &sar, self.timeout, "SubjectAccessReview").await?;
        let Some(status) = done.status else {
            return Err("SubjectAccessReview: the answer has no status".to_string());
        };
        if crate::io::kube::allows(Some(&status)) {
            Ok(Decision::Allowed { user: name })
        } else {
            Ok(Decision::Forbidden { user: name })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("BEARER abc")), Some("abc"));
        assert_eq!(bearer_token(None), None);
        assert_eq!(bearer_token(Some("")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(Some("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer_token(Some("Bearer a b")), None);
        let long = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(Some(&long)), None);
    }

    #[test]
    fn the_cache_expires_entries() {
        let mut c = DecisionCache::new(Duration::from_secs(30), 8);
        let t0 = Instant::now();
        let k = token_hash("secret-token");
        c.insert(k, Decision::Unauthenticated, t0);
        assert_eq!(
            c.get(&k, t0 + Duration::from_secs(29)),
            Some(Decision::Unauthenticated)
        );
        assert_eq!(c.get(&k, t0 + Duration::from_secs(30)), None);
        assert!(c.is_empty(), "an expired entry is dropped when seen");
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_expired_then_oldest() {
        let mut c = DecisionCache::new(Duration::from_secs(30), 3);
        let t0 = Instant::now();
        let k = |i: u32| token_hash(&format!("t{i}"));
        c.insert(k(0), Decision::Unauthenticated, t0);
        c.insert(
            k(1),
            Decision::Unauthenticated,
            t0 + Duration::from_secs(10),
        );
        c.insert(
            k(2),
            Decision::Unauthenticated,
            t0 + Duration::from_secs(20),
        );
        // Full: the oldest goes.
        c.insert(
            k(3),
            Decision::Unauthenticated,
            t0 + Duration::from_secs(21),
        );
        assert_eq!(c.len(), 3);
        assert!(!c.contains(&k(0)) && c.contains(&k(1)) && c.contains(&k(3)));
        // Later: the expired go first (1 and 2, 30 s and more old), so 3 stays.
        c.insert(
            k(4),
            Decision::Unauthenticated,
            t0 + Duration::from_secs(50),
        );
        assert_eq!(c.len(), 2);
        assert!(c.contains(&k(3)) && c.contains(&k(4)));
        // Replacing a key does not evict another.
        for i in 0..10 {
            c.insert(
                k(4),
                Decision::Forbidden {
                    user: format!("u{i}"),
                },
                t0 + Duration::from_secs(51),
            );
        }
        assert_eq!(c.len(), 2);
        // Many distinct tokens: never more than the bound.
        for i in 100..200 {
            c.insert(
                k(i),
                Decision::Unauthenticated,
                t0 + Duration::from_secs(52),
            );
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn the_cache_keys_are_hashes_not_tokens() {
        let h = token_hash("eyJhbGciOi.secret");
        assert_eq!(h.len(), 32);
        assert_ne!(&h[..], "eyJhbGciOi.secret".as_bytes());
        assert_ne!(h, token_hash("eyJhbGciOi.secreT"));
        // The cache's debug form (what a log line could show) has no token in it.
        let mut c = DecisionCache::new(Duration::from_secs(1), 2);
        c.insert(h, Decision::Unauthenticated, Instant::now());
        assert!(!format!("{c:?}").contains("secret"));
    }
}
