//! The sign-in steps, each a pure function the adapter calls between its fetches:
//!
//! ```text
//! GET /auth/login?return_to=/x     login()            → 302 to the provider, login cookie set
//! GET /auth/callback?code&state    callback_request() → the token request to make
//!                                  read_id_token()    → the user (after the adapter's POST)
//!                                  new_sign_in()      → the brain's refresh family to start
//!                                  signed_in()        → 302 to return_to, access + refresh cookies
//! any request                      cookie_auth()      → valid access | needs a refresh | none
//!                                  rotation()         → the brain's rotation to ask for
//!                                  refreshed()        → the new access (and refresh) cookies
//! POST /auth/logout                revocation()       → the brain's revocation; signed_out()
//! GET /auth/me                     me()
//! ```
//!
//! Cookies (all `__Host-`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`): the login state
//! (state, nonce, PKCE verifier, where to return; sealed, 10 minutes), the access credential
//! (the user, scopes, name, refresh family; sealed; `SIGNIN_ACCESS_TTL_SECS`) and the refresh
//! token (256 random bits; the brain stores only its SHA-256).

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{CACHE_CONTROL, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_types::account::{
    RefreshGrant, RevokeRefreshToken, RotateRefreshToken, SignedInUser, StartRefreshFamily,
};
use shared_types::error::ErrorCode;
use shared_types::signature::{body_digest, hex};

use super::config::SigninConfig;
use super::discovery::ProviderMetadata;
use super::sealed::{equal_text, open, seal};
use crate::core::auth::jwt::{ROLE_PREFIX, verified_claims};
use crate::core::auth::{AuthConfig, KeyStore, Principal, TokenError, verify_token};
use crate::core::request_id::RequestId;
use crate::core::response::{EdgeResponse, set_request_id};
use crate::core::session::{
    COOKIE_NAME as SESSION_COOKIE, SessionConfig, cookie_value, without_cookie,
};

pub const LOGIN_PATH: &str = "/auth/login";
pub const CALLBACK_PATH: &str = "/auth/callback";
pub const LOGOUT_PATH: &str = "/auth/logout";
pub const ME_PATH: &str = "/auth/me";

pub const LOGIN_COOKIE: &str = "__Host-eb_login";
pub const ACCESS_COOKIE: &str = "__Host-eb_access";
pub const REFRESH_COOKIE: &str = "__Host-eb_refresh";

/// How long a started sign-in may take at the provider.
pub const LOGIN_TTL_SECS: u64 = 600;
/// Longest `return_to` kept.
pub const MAX_RETURN_TO_BYTES: usize = 1024;
/// Longest authorization `code` or `state` accepted.
const MAX_PARAM_BYTES: usize = 2048;
/// Largest token response read.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

const LOGIN_PURPOSE: &str = "eb-login";
const ACCESS_PURPOSE: &str = "eb-access";

/// What the login and callback steps work with.
#[derive(Debug, Clone, Copy)]
pub struct Provider<'a> {
    pub config: &'a SigninConfig,
    pub metadata: &'a ProviderMetadata,
    pub sessions: &'a SessionConfig,
    /// This edge's origin (`https://host[:port]`), where the provider sends the user back.
    pub origin: &'a str,
}

/// Fresh randomness for one login.
#[derive(Debug, Clone, Copy)]
pub struct LoginRandom {
    pub state: [u8; 16],
    pub nonce: [u8; 16],
    pub verifier: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LoginState {
    st: String,
    nc: String,
    cv: String,
    rt: String,
    exp: u64,
}

/// The edge's access credential, as sealed in its cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    pub sub: String,
    /// Scopes, and roles as `role:<name>`.
    pub sc: Vec<String>,
    #[serde(default)]
    pub nm: Option<String>,
    /// The refresh family (the sign-in) it belongs to.
    pub fam: String,
    /// Seconds since the epoch.
    pub exp: u64,
}

impl AccessGrant {
    /// The caller this credential identifies, as the route pipeline knows callers.
    pub fn principal(&self) -> Principal {
        principal_of(&self.sub, &self.sc, self.exp)
    }
}

/// A signed-in user as the route pipeline knows callers (roles are the `role:`-prefixed
/// scopes).
pub fn principal_of(subject: &str, scopes_and_roles: &[String], expires_secs: u64) -> Principal {
    let mut scopes = BTreeSet::new();
    let mut roles = BTreeSet::new();
    for item in scopes_and_roles {
        match item.strip_prefix(ROLE_PREFIX) {
            Some(role) => roles.insert(role.to_owned()),
            None => scopes.insert(item.clone()),
        };
    }
    Principal {
        subject: subject.to_owned(),
        scopes,
        roles,
        expires_at: i64::try_from(expires_secs).unwrap_or(i64::MAX),
    }
}

/// A refused sign-in step: the error shape's code and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: &'static str,
}

impl Refusal {
    const fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, message }
    }

    /// The answer, clearing the login cookie (a failed sign-in starts over).
    pub fn response(&self, request_id: &RequestId) -> EdgeResponse {
        let mut response = EdgeResponse::error(self.code, self.message, request_id);
        push_cookie(&mut response.headers, &clear_cookie(LOGIN_COOKIE));
        response
    }
}

// ---- cookies and query strings ------------------------------------------------------------

fn set_cookie(name: &str, value: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age_secs}; Secure; HttpOnly; SameSite=Lax")
}

fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
}

fn push_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(SET_COOKIE, value);
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex(&[byte]).to_ascii_uppercase());
        }
    }
    out
}

/// The value of `name` in a query string (`+` is a space, percent-escapes decoded, UTF-8);
/// `None` when absent, given twice, or not decodable.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == name {
            if found.is_some() {
                return None;
            }
            found = Some(decode(value)?);
        }
    }
    found
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let high = char::from(*bytes.get(index + 1)?).to_digit(16)?;
                let low = char::from(*bytes.get(index + 2)?).to_digit(16)?;
                out.push(u8::try_from(high * 16 + low).ok()?);
                index += 2;
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8(out).ok()
}

/// Where to go after signing in: a path on this origin (`/…`, not `//…` or `/\…`, no control
/// characters, bounded), else `/`. Anything pointing elsewhere becomes `/` (no open redirect).
pub fn safe_return_to(requested: Option<&str>) -> String {
    match requested {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= MAX_RETURN_TO_BYTES
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn redirect(location: &str, request_id: &RequestId) -> EdgeResponse {
    let mut response = EdgeResponse {
        status: StatusCode::FOUND,
        headers: HeaderMap::new(),
        body: Vec::new(),
    };
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers.insert(LOCATION, value);
    }
    response
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_request_id(&mut response.headers, request_id);
    response
}

/// The redirect URI registered at the provider: this edge's origin plus the callback path.
pub fn redirect_uri(origin: &str) -> String {
    format!("{}{CALLBACK_PATH}", origin.trim_end_matches('/'))
}

// ---- login ----------------------------------------------------------------------------------

/// `GET /auth/login[?return_to=/path]`: a 302 to the provider's authorization endpoint
/// (authorization code, PKCE S256, `state`, `nonce`), with the sealed login state in a cookie.
pub fn login(
    query: &str,
    provider: &Provider<'_>,
    random: &LoginRandom,
    now_secs: u64,
    request_id: &RequestId,
) -> EdgeResponse {
    let Provider {
        config, metadata, ..
    } = *provider;
    let state = LoginState {
        st: URL_SAFE_NO_PAD.encode(random.state),
        nc: URL_SAFE_NO_PAD.encode(random.nonce),
        cv: URL_SAFE_NO_PAD.encode(random.verifier),
        rt: safe_return_to(query_param(query, "return_to").as_deref()),
        exp: now_secs.saturating_add(LOGIN_TTL_SECS),
    };
    let Some(sealed) = seal(LOGIN_PURPOSE, &state, provider.sessions) else {
        return EdgeResponse::error(
            ErrorCode::Internal,
            "the sign-in state could not be sealed",
            request_id,
        );
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(state.cv.as_bytes()));
    let separator = if metadata.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}\
         &code_challenge={challenge}&code_challenge_method=S256",
        metadata.authorization_endpoint,
        encode(&config.client_id),
        encode(&redirect_uri(provider.origin)),
        encode(&config.scopes.join(" ")),
        state.st,
        state.nc,
    );
    let mut response = redirect(&location, request_id);
    push_cookie(
        &mut response.headers,
        &set_cookie(LOGIN_COOKIE, &sealed, LOGIN_TTL_SECS),
    );
    response
}

// ---- callback -------------------------------------------------------------------------------

/// The token request of a callback, for the adapter to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub url: String,
    /// `application/x-www-form-urlencoded`.
    pub body: String,
    /// `Basic …` for `client_secret_basic`.
    pub authorization: Option<String>,
    /// What the ID token's `nonce` must be.
    pub nonce: String,
    pub return_to: String,
}

/// `GET /auth/callback?code=…&state=…`: checks the provider's answer against the login cookie
/// and builds the code exchange.
pub fn callback_request(
    query: &str,
    headers: &HeaderMap,
    provider: &Provider<'_>,
    now_secs: u64,
) -> Result<TokenRequest, Refusal> {
    let Provider {
        config,
        metadata,
        sessions,
        origin,
    } = *provider;
    if query_param(query, "error").is_some() {
        return Err(Refusal::new(
            ErrorCode::Unauthorized,
            "the identity provider did not sign you in",
        ));
    }
    let state: LoginState = cookie_value(headers, LOGIN_COOKIE)
        .and_then(|sealed| open(LOGIN_PURPOSE, &sealed, sessions))
        .filter(|state: &LoginState| state.exp > now_secs)
        .ok_or(Refusal::new(
            ErrorCode::BadRequest,
            "this sign-in has expired or was started in another browser: start again",
        ))?;
    let returned = query_param(query, "state").unwrap_or_default();
    if returned.len() > MAX_PARAM_BYTES || !equal_text(&returned, &state.st) {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            "the sign-in answer does not belong to this sign-in (state mismatch)",
        ));
    }
    let code = query_param(query, "code")
        .filter(|code| !code.is_empty() && code.len() <= MAX_PARAM_BYTES)
        .ok_or(Refusal::new(
            ErrorCode::BadRequest,
            "the sign-in answer carries no authorization code",
        ))?;
    let mut body = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        encode(&code),
        encode(&redirect_uri(origin)),
        state.cv,
    );
    let authorization = match &config.client_secret {
        Some(secret) if !metadata.secret_in_body => Some(format!(
            "Basic {}",
            // RFC 6749 §2.3.1: both parts form-encoded before base64.
            STANDARD.encode(format!("{}:{}", encode(&config.client_id), encode(secret)))
        )),
        Some(secret) => {
            body.push_str(&format!(
                "&client_id={}&client_secret={}",
                encode(&config.client_id),
                encode(secret)
            ));
            None
        }
        None => {
            body.push_str(&format!("&client_id={}", encode(&config.client_id)));
            None
        }
    };
    Ok(TokenRequest {
        url: metadata.token_endpoint.clone(),
        body,
        authorization,
        nonce: state.nc,
        return_to: state.rt,
    })
}

/// The provider's ID-token verifier: its issuer, this client as the audience, its JWKS.
pub fn id_token_verifier(
    config: &SigninConfig,
    metadata: &ProviderMetadata,
) -> Result<AuthConfig, String> {
    let document = serde_json::json!({
        "issuer": metadata.issuer,
        "audiences": [config.client_id],
        "algorithms": ["RS256", "ES256", "EdDSA"],
        "scope_claims": config.scope_claims,
        "role_claims": config.role_claims,
        "jwks_url": {"url": metadata.jwks_uri},
    });
    AuthConfig::from_json(&document.to_string(), None).map_err(|error| error.to_string())
}

/// What the token response said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdToken {
    User(SignedInUser),
    /// Signed by a key the verifier lacks: refresh the provider's JWKS and read again.
    UnknownKey,
    Refused(Refusal),
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// Reads the provider's token response: the ID token must verify (signature, `iss`, `aud`,
/// `exp`), carry the login's `nonce` and, with several audiences, name this client in `azp`.
pub fn read_id_token(
    status: u16,
    body: &[u8],
    request: &TokenRequest,
    config: &SigninConfig,
    verifier: &AuthConfig,
    keys: &KeyStore,
    now_secs: u64,
) -> IdToken {
    let refused = |message| IdToken::Refused(Refusal::new(ErrorCode::Unauthorized, message));
    if status != 200 {
        return refused("the identity provider refused the sign-in code");
    }
    if body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return refused("the identity provider's answer is too large");
    }
    let Ok(response) = serde_json::from_slice::<TokenResponse>(body) else {
        return refused("the identity provider's answer carries no ID token");
    };
    let principal = match verify_token(&response.id_token, verifier, keys, now_secs) {
        Ok(principal) => principal,
        Err(TokenError::UnknownKey) => return IdToken::UnknownKey,
        Err(_) => return refused("the identity provider's ID token is not valid"),
    };
    let claims = verified_claims(&response.id_token).unwrap_or_default();
    let nonce = claims.get("nonce").and_then(|n| n.as_str()).unwrap_or("");
    if !equal_text(nonce, &request.nonce) {
        return refused("the ID token belongs to another sign-in (nonce mismatch)");
    }
    let several_audiences = claims
        .get("aud")
        .and_then(|aud| aud.as_array())
        .is_some_and(|auds| auds.len() > 1);
    if several_audiences
        && claims.get("azp").and_then(|azp| azp.as_str()) != Some(config.client_id.as_str())
    {
        return refused("the ID token was issued to another client");
    }
    let name = ["name", "preferred_username", "email"]
        .iter()
        .find_map(|claim| claims.get(*claim).and_then(|v| v.as_str()))
        .filter(|name| !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control))
        .map(str::to_owned);
    let mut scopes: Vec<String> = principal.scopes.into_iter().collect();
    scopes.extend(
        principal
            .roles
            .iter()
            .map(|role| format!("{ROLE_PREFIX}{role}")),
    );
    IdToken::User(SignedInUser {
        user_id: principal.subject,
        scopes,
        name,
    })
}

/// A sign-in to store: the brain's family request and the refresh token for the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignIn {
    pub start: StartRefreshFamily,
    pub refresh_token: String,
}

fn refresh_token(random: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// The SHA-256 (hex) the brain knows a refresh token by.
pub fn token_hash(token: &str) -> String {
    body_digest(token.as_bytes())
}

pub fn new_sign_in(
    user: SignedInUser,
    config: &SigninConfig,
    random: &[u8; 32],
    now_ms: u64,
) -> NewSignIn {
    let token = refresh_token(random);
    let at = |secs: u64| {
        i64::try_from(now_ms.saturating_add(secs.saturating_mul(1000))).unwrap_or(i64::MAX)
    };
    NewSignIn {
        start: StartRefreshFamily {
            user,
            token_hash: token_hash(&token),
            token_expires_at_ms: at(config.refresh_ttl_secs),
            family_expires_at_ms: at(config.max_age_secs),
        },
        refresh_token: token,
    }
}

/// The access credential for a grant, never outliving the sign-in.
fn access_grant(grant: &RefreshGrant, config: &SigninConfig, now_secs: u64) -> AccessGrant {
    let family_end = u64::try_from(grant.family_expires_at_ms / 1000).unwrap_or(0);
    AccessGrant {
        sub: grant.user.user_id.clone(),
        sc: grant.user.scopes.clone(),
        nm: grant.user.name.clone(),
        fam: grant.family_id.clone(),
        exp: now_secs
            .saturating_add(config.access_ttl_secs)
            .min(family_end),
    }
}

/// The cookies of a (re)issued sign-in: the access credential and, when given, the refresh
/// token (its cookie lives as long as the token may).
fn sign_in_cookies(
    grant: &RefreshGrant,
    refresh: Option<&str>,
    config: &SigninConfig,
    sessions: &SessionConfig,
    now_secs: u64,
) -> Option<(AccessGrant, Vec<String>)> {
    let access = access_grant(grant, config, now_secs);
    let sealed = seal(ACCESS_PURPOSE, &access, sessions)?;
    let mut cookies = vec![set_cookie(
        ACCESS_COOKIE,
        &sealed,
        access.exp.saturating_sub(now_secs),
    )];
    if let Some(token) = refresh {
        let family_end = u64::try_from(grant.family_expires_at_ms / 1000).unwrap_or(0);
        let lifetime = config
            .refresh_ttl_secs
            .min(family_end.saturating_sub(now_secs));
        cookies.push(set_cookie(REFRESH_COOKIE, token, lifetime));
    }
    Some((access, cookies))
}

/// After the brain stored the family: 302 to where the user was going, signed in.
pub fn signed_in(
    grant: &RefreshGrant,
    sign_in: &NewSignIn,
    return_to: &str,
    config: &SigninConfig,
    sessions: &SessionConfig,
    now_secs: u64,
    request_id: &RequestId,
) -> EdgeResponse {
    let Some((_, cookies)) = sign_in_cookies(
        grant,
        Some(&sign_in.refresh_token),
        config,
        sessions,
        now_secs,
    ) else {
        return EdgeResponse::error(
            ErrorCode::Internal,
            "the sign-in could not be sealed",
            request_id,
        );
    };
    let mut response = redirect(&safe_return_to(Some(return_to)), request_id);
    push_cookie(&mut response.headers, &clear_cookie(LOGIN_COOKIE));
    for cookie in cookies {
        push_cookie(&mut response.headers, &cookie);
    }
    response
}

// ---- requests signed in by cookie -----------------------------------------------------------

/// What a request's sign-in cookies say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieAuth {
    /// No sign-in cookies (or only unusable ones).
    Absent,
    Valid(AccessGrant),
    /// The access credential is missing or expired; this refresh token may renew it.
    NeedsRefresh {
        refresh_token: String,
    },
}

/// Reads the access cookie (sealed, unexpired) or, failing that, the refresh cookie.
pub fn cookie_auth(headers: &HeaderMap, sessions: &SessionConfig, now_secs: u64) -> CookieAuth {
    let access = cookie_value(headers, ACCESS_COOKIE)
        .and_then(|sealed| open::<AccessGrant>(ACCESS_PURPOSE, &sealed, sessions))
        .filter(|grant| grant.exp > now_secs);
    if let Some(grant) = access {
        return CookieAuth::Valid(grant);
    }
    match cookie_value(headers, REFRESH_COOKIE) {
        Some(token) if is_refresh_token(&token) => CookieAuth::NeedsRefresh {
            refresh_token: token,
        },
        _ => CookieAuth::Absent,
    }
}

/// 43 base64url characters: 256 bits, as [`new_sign_in`] mints them.
fn is_refresh_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The brain request that rotates `refresh_token`, and its successor.
pub fn rotation(
    refresh_token: &str,
    config: &SigninConfig,
    random: &[u8; 32],
    now_ms: u64,
) -> (RotateRefreshToken, String) {
    let successor = self::refresh_token(random);
    let expires = now_ms.saturating_add(config.refresh_ttl_secs.saturating_mul(1000));
    (
        RotateRefreshToken {
            token_hash: token_hash(refresh_token),
            new_token_hash: token_hash(&successor),
            new_token_expires_at_ms: i64::try_from(expires).unwrap_or(i64::MAX),
        },
        successor,
    )
}

/// After the brain rotated (or, within its leeway, confirmed) the token: the caller's new
/// access credential and the cookies to set (the refresh cookie only if the successor was
/// stored — otherwise the concurrent request that did rotate sets it).
pub fn refreshed(
    grant: &RefreshGrant,
    successor: &str,
    config: &SigninConfig,
    sessions: &SessionConfig,
    now_secs: u64,
) -> Option<(AccessGrant, Vec<String>)> {
    let refresh = grant.rotated.then_some(successor);
    sign_in_cookies(grant, refresh, config, sessions, now_secs)
}

/// Cookies that end a sign-in the brain refused to refresh (revoked, reused, expired).
pub fn sign_in_ended() -> Vec<String> {
    vec![clear_cookie(ACCESS_COOKIE), clear_cookie(REFRESH_COOKIE)]
}

/// The request's headers with its sign-in cookies replaced: by the renewed access credential
/// (`Some`, so the request is decided again as that user), or by nothing (`None`: the
/// refresh was refused, the request goes on as anonymous).
pub fn with_access_cookie(
    headers: &HeaderMap,
    access: Option<&AccessGrant>,
    sessions: &SessionConfig,
) -> HeaderMap {
    let mut out = headers.clone();
    let cookies: Vec<HeaderValue> = out.get_all(COOKIE).iter().cloned().collect();
    out.remove(COOKIE);
    for cookie in cookies {
        let kept = [ACCESS_COOKIE, REFRESH_COOKIE]
            .iter()
            .try_fold(cookie, |value, name| without_cookie(&value, name));
        if let Some(kept) = kept {
            out.append(COOKIE, kept);
        }
    }
    if let Some(sealed) = access.and_then(|grant| seal(ACCESS_PURPOSE, grant, sessions))
        && let Ok(value) = HeaderValue::from_str(&format!("{ACCESS_COOKIE}={sealed}"))
    {
        out.append(COOKIE, value);
    }
    out
}

/// A state-changing request authenticated by cookie must come from this origin: `Sec-Fetch-Site`
/// `same-origin` (or `none`: typed by the user), or without that header an `Origin` equal to
/// `origin`. `GET`, `HEAD` and `OPTIONS` pass.
pub fn same_origin(method: &Method, headers: &HeaderMap, origin: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    headers
        .get(ORIGIN)
        .is_some_and(|value| value.as_bytes() == origin.trim_end_matches('/').as_bytes())
}

// ---- sign-out and who am I ------------------------------------------------------------------

/// `POST /auth/logout`: the brain's revocation of the presented refresh token, if any.
pub fn revocation(headers: &HeaderMap) -> Option<RevokeRefreshToken> {
    cookie_value(headers, REFRESH_COOKIE)
        .filter(|token| is_refresh_token(token))
        .map(|token| RevokeRefreshToken {
            token_hash: token_hash(&token),
        })
}

/// 204 clearing the sign-in cookies and the session cookie: the next request starts a new
/// session, so nothing made after signing out joins the account's session.
pub fn signed_out(request_id: &RequestId) -> EdgeResponse {
    let mut response = EdgeResponse {
        status: StatusCode::NO_CONTENT,
        headers: HeaderMap::new(),
        body: Vec::new(),
    };
    for name in [ACCESS_COOKIE, REFRESH_COOKIE, LOGIN_COOKIE, SESSION_COOKIE] {
        push_cookie(&mut response.headers, &clear_cookie(name));
    }
    response
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set_request_id(&mut response.headers, request_id);
    response
}

/// `GET /auth/me`: whether sign-in is available and who is signed in.
pub fn me(available: bool, grant: Option<&AccessGrant>, request_id: &RequestId) -> EdgeResponse {
    let body = shared_types::account::AuthMe {
        signin_available: available,
        user: grant.map(|grant| SignedInUser {
            user_id: grant.sub.clone(),
            scopes: grant.sc.clone(),
            name: grant.nm.clone(),
        }),
    };
    let mut response = EdgeResponse::json_ok(&body, request_id);
    response
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
