//! Edge trust: only requests signed by the edge reach the API, and only the identity the edge
//! signed reaches handlers.
//!
//! Every request outside the health probes must carry `x-edgebrain-signature` (see
//! [`shared_types::signature`]). The middleware [`verify_edge`]:
//! 1. parses the header and checks the HMAC under any configured secret, within the timestamp
//!    tolerance (401 `unauthorized` otherwise);
//! 2. for a hashed body, reads it (bounded by the body limit) and checks its SHA-256 against
//!    the signed digest, then hands the same bytes on; `UNSIGNED-PAYLOAD` bodies stream through;
//! 3. with `--edge-authority`, refuses a signature bound to any other brain, or to none (an
//!    edge older than the binding);
//! 4. records the nonce, refusing one already seen within the window (replay);
//! 5. puts the signed identity into the request as an [`Identity`] extension.
//!
//! Why the binding (step 3): each brain of a fleet remembers only the nonces it saw, so a
//! request captured on its way to brain A would pass brain B's replay check. Rather than share
//! one replay cache among all brains (a database write on every request's path, and a store
//! every brain depends on to serve anything), the edge signs the target brain's authority and
//! each brain accepts only its own: a nonce then only ever needs to be unique per brain, which
//! the local cache already guarantees. Without `--edge-authority` any binding is accepted
//! (a fleet of one, where it makes no difference; the brain warns at start).
//!
//! The identity headers are part of the signed string (empty when absent), so a header the
//! edge did not sign never verifies. Health probes (`/health`, `/ready`) need no signature, and
//! any identity header on them is dropped. With `--insecure-local` nothing is verified and the
//! identity headers are taken as sent.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared_types::headers::{EDGE_SIGNATURE, IDENTITY_HEADERS};
use shared_types::signature::{
    IDENTITY_VALUES, SignatureError, SignatureHeader, UNSIGNED_PAYLOAD, body_digest,
};

use super::Error;
use super::identity::Identity;
use crate::clock::unix_millis;
use crate::config::{EdgeAuthorities, EdgeSecrets, EdgeTrustMode};

/// Paths answered without a signature: liveness and readiness probes of load balancers and
/// supervisors, and the Prometheus scrape endpoint, none of which carry an identity (and none of
/// which the edge proxies: it only forwards `/api/*`).
const UNSIGNED_PATHS: [&str; 3] = ["/health", "/ready", "/metrics"];

/// The edge-trust settings and the replay cache, shared by all requests.
#[derive(Debug)]
pub struct EdgeTrust {
    mode: EdgeTrustMode,
    tolerance: Duration,
    /// Most bytes read to check a body digest.
    signed_body_max_bytes: usize,
    nonces: Mutex<NonceCache>,
    /// Unix second this process started trusting signatures (a signature dated earlier was
    /// made for an earlier process: refused as a replay across a restart).
    started_secs: u64,
    /// The authorities signatures must be bound to (step 3); `None` accepts any.
    authorities: Option<EdgeAuthorities>,
}

impl EdgeTrust {
    pub fn new(
        mode: EdgeTrustMode,
        tolerance: Duration,
        replay_cache_entries: usize,
        signed_body_max_bytes: usize,
    ) -> Self {
        Self {
            mode,
            tolerance,
            signed_body_max_bytes,
            nonces: Mutex::new(NonceCache::new(replay_cache_entries)),
            started_secs: unix_millis() / 1000,
            authorities: None,
        }
    }

    /// Accept only signatures bound to one of `authorities` (`--edge-authority`); `None`
    /// accepts any binding, and none.
    pub fn bound_to(mut self, authorities: Option<EdgeAuthorities>) -> Self {
        self.authorities = authorities;
        self
    }

    pub fn is_insecure(&self) -> bool {
        matches!(self.mode, EdgeTrustMode::InsecureLocal)
    }
}

/// The middleware (see the module docs).
pub(crate) async fn verify_edge(
    State(trust): State<Arc<EdgeTrust>>,
    request: Request,
    next: Next,
) -> Response {
    if UNSIGNED_PATHS.contains(&request.uri().path()) {
        let mut request = request;
        for name in IDENTITY_HEADERS {
            request.headers_mut().remove(name);
        }
        return next.run(request).await;
    }
    let secrets = match &trust.mode {
        EdgeTrustMode::InsecureLocal => {
            let mut request = request;
            match Identity::from_headers(request.headers()) {
                Ok(Some(identity)) => {
                    request.extensions_mut().insert(identity);
                }
                Ok(None) => {}
                Err(error) => return error.into_response(),
            }
            return next.run(request).await;
        }
        EdgeTrustMode::Signed(secrets) => secrets,
    };
    match verified(&trust, secrets, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => {
            tracing::warn!(reason = %error, "refused a request without a valid edge signature");
            error.into_response()
        }
    }
}

async fn verified(
    trust: &EdgeTrust,
    secrets: &EdgeSecrets,
    request: Request,
) -> Result<Request, Error> {
    let refuse = |error: SignatureError| Error::Unauthorized(error.to_string());
    let header = request
        .headers()
        .get(EDGE_SIGNATURE)
        .ok_or_else(|| {
            Error::Unauthorized(
                "missing edge signature: the brain only accepts requests through the edge"
                    .to_owned(),
            )
        })?
        .to_str()
        .map_err(|_| refuse(SignatureError::Malformed("not visible ASCII")))
        .and_then(|value| SignatureHeader::parse(value).map_err(refuse))?;

    let now_secs = unix_millis() / 1000;
    {
        let method = request.method().as_str();
        let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let identity = identity_values(request.headers());
        let parts = header.parts(method, path_and_query, identity);
        header
            .verify(
                &parts,
                secrets.as_slices(),
                now_secs,
                trust.tolerance.as_secs(),
            )
            .map_err(refuse)?;
    }
    // Checked once the signature is known to be the edge's: then a mismatch is a request sent
    // to the wrong brain (or replayed to it), and saying which brain it was for helps.
    if let Some(accepted) = &trust.authorities {
        match header.authority.as_deref() {
            Some(authority) if accepted.contains(authority) => {}
            Some(authority) => {
                return Err(Error::Unauthorized(format!(
                    "edge signature is bound to the brain {authority}, not this one ({accepted}): \
                     a request signed for another brain"
                )));
            }
            None => {
                return Err(Error::Unauthorized(format!(
                    "edge signature is bound to no brain (an edge older than the binding); this \
                     brain ({accepted}) accepts only signatures bound to it"
                )));
            }
        }
    }
    if header.timestamp_secs < trust.started_secs {
        return Err(Error::Unauthorized(format!(
            "edge signature is dated {} s before this brain started: a request signed for an \
             earlier process (replayed across a restart); the edge signs each request afresh",
            trust.started_secs - header.timestamp_secs
        )));
    }

    let request = if header.body_digest == UNSIGNED_PAYLOAD {
        request
    } else {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, trust.signed_body_max_bytes)
            .await
            .map_err(|_| Error::body_over(trust.signed_body_max_bytes as u64))?;
        if body_digest(&bytes) != header.body_digest {
            return Err(refuse(SignatureError::BodyMismatch));
        }
        Request::from_parts(parts, Body::from(bytes))
    };

    // Recorded only once everything verified, so nobody can burn a legitimate nonce.
    let now_ms = unix_millis();
    let remember_until = now_ms.saturating_add(2 * trust.tolerance.as_millis() as u64);
    let fresh = match trust.nonces.lock() {
        Ok(mut nonces) => nonces.insert(&header.nonce, now_ms, remember_until),
        Err(poisoned) => poisoned
            .into_inner()
            .insert(&header.nonce, now_ms, remember_until),
    };
    match fresh {
        NonceVerdict::Fresh => {}
        NonceVerdict::Replayed => return Err(refuse(SignatureError::Replayed)),
        NonceVerdict::Full => {
            return Err(Error::Unavailable(
                "too many signed requests in the replay window; retry shortly".to_owned(),
            ));
        }
    }

    let mut request = request;
    if let Some(identity) = Identity::from_headers(request.headers())? {
        request.extensions_mut().insert(identity);
    }
    Ok(request)
}

/// The identity header values in signing order, `""` when absent (or not text, which then
/// cannot match what the edge signed).
fn identity_values(headers: &HeaderMap) -> [&str; IDENTITY_VALUES] {
    IDENTITY_HEADERS.map(|name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    })
}

/// Nonces seen within the replay window, in arrival order so expiry is a pop from the front.
#[derive(Debug)]
struct NonceCache {
    seen: HashSet<String>,
    expiry: VecDeque<(u64, String)>,
    capacity: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum NonceVerdict {
    Fresh,
    Replayed,
    Full,
}

impl NonceCache {
    fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            expiry: VecDeque::new(),
            capacity,
        }
    }

    fn insert(&mut self, nonce: &str, now_ms: u64, remember_until_ms: u64) -> NonceVerdict {
        while let Some((until, _)) = self.expiry.front() {
            if *until > now_ms {
                break;
            }
            if let Some((_, expired)) = self.expiry.pop_front() {
                self.seen.remove(&expired);
            }
        }
        if self.seen.contains(nonce) {
            return NonceVerdict::Replayed;
        }
        if self.seen.len() >= self.capacity {
            return NonceVerdict::Full;
        }
        self.seen.insert(nonce.to_owned());
        self.expiry.push_back((remember_until_ms, nonce.to_owned()));
        NonceVerdict::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_refused_until_they_expire_and_the_cache_is_bounded() {
        let mut cache = NonceCache::new(2);
        assert_eq!(cache.insert("a", 0, 100), NonceVerdict::Fresh);
        assert_eq!(cache.insert("a", 50, 150), NonceVerdict::Replayed);
        assert_eq!(cache.insert("b", 60, 160), NonceVerdict::Fresh);
        assert_eq!(cache.insert("c", 70, 170), NonceVerdict::Full);
        // "a" expires at 100: room again, and "a" is forgotten.
        assert_eq!(cache.insert("c", 100, 200), NonceVerdict::Fresh);
        assert_eq!(cache.insert("a", 101, 201), NonceVerdict::Full);
        assert_eq!(cache.insert("a", 160, 260), NonceVerdict::Fresh);
    }
}
