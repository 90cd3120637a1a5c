//! [`AuthConfig`]: parsed and validated once per isolate, so bad configuration fails at load.

use core::fmt;

use serde::Deserialize;

use super::keys::{Algorithm, KeyError, VerificationKey, parse_jwk};

/// Validated JWT verification settings. Built by [`AuthConfig::from_json`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The only accepted `iss` (exact string match).
    pub issuer: String,
    /// A token is accepted if its `aud` (string or array) contains at least one of these.
    pub audiences: Vec<String>,
    /// Algorithms any key may have. Keys of other algorithms are refused at load (static keys)
    /// or skipped (JWKS).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Longer bearer tokens are refused before any decoding.
    pub max_token_bytes: usize,
    /// When set, the token's `typ` header must equal this (case-insensitively, with or without
    /// the `application/` prefix, RFC 7515 §4.1.9), e.g. `at+jwt` (RFC 9068).
    pub typ: Option<String>,
    /// Claims holding scopes: a space-separated string (OAuth `scope`) or an array of strings.
    pub scope_claims: Vec<String>,
    /// Claims holding roles, same formats.
    pub role_claims: Vec<String>,
    /// A token without `kid` is tried against at most this many keys of its algorithm.
    pub max_keys_without_kid: usize,
    /// `realm` of the `WWW-Authenticate` challenge.
    pub realm: String,
    /// Where to fetch the identity provider's JWKS, if anywhere.
    pub jwks_url: Option<JwksUrlConfig>,
    /// Keys from configuration: the inline `jwks` plus the HS256 secrets.
    pub(crate) static_keys: Vec<VerificationKey>,
}

/// Fetching and caching the identity provider's JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksUrlConfig {
    /// `https://…`; plain `http://` only for loopback hosts (local development and tests).
    pub url: String,
    /// Refetch when the set is older than this.
    #[serde(default = "defaults::jwks_ttl_secs")]
    pub ttl_secs: u64,
    /// At most one fetch per this many seconds, whatever triggers it (TTL or unknown `kid`).
    #[serde(default = "defaults::jwks_min_refresh_interval_secs")]
    pub min_refresh_interval_secs: u64,
    /// Larger documents are refused.
    #[serde(default = "defaults::jwks_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Documents with more keys are refused.
    #[serde(default = "defaults::jwks_max_keys")]
    pub max_keys: usize,
    /// A fetch that has not delivered the whole document by then is abandoned (the last good
    /// set stays); requests waiting for it stop waiting then too.
    #[serde(default = "defaults::jwks_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
}

/// The JSON document [`AuthConfig::from_json`] reads (a wrangler `[vars]` table or variable).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfigFile {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    #[serde(default = "defaults::leeway_secs")]
    pub leeway_secs: u64,
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default = "defaults::scope_claims")]
    pub scope_claims: Vec<String>,
    #[serde(default = "defaults::role_claims")]
    pub role_claims: Vec<String>,
    #[serde(default = "defaults::max_keys_without_kid")]
    pub max_keys_without_kid: usize,
    #[serde(default = "defaults::realm")]
    pub realm: String,
    /// An inline JWK set, `{"keys": [...]}` (public keys only).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub jwks_url: Option<JwksUrlConfig>,
}

/// One HS256 secret, from the secrets document (a wrangler secret, never `[vars]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hs256Secret {
    #[serde(default)]
    pub kid: Option<String>,
    /// The key is the UTF-8 bytes of this string (what Node's `createHmac('sha256', secret)` uses).
    pub secret: String,
}

impl fmt::Debug for Hs256Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Secret")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Defaults and bounds of every limit, in one place.
pub mod defaults {
    pub const LEEWAY_SECS: u64 = 30;
    pub const MAX_LEEWAY_SECS: u64 = 300;
    pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
    pub const MAX_TOKEN_BYTES_RANGE: core::ops::RangeInclusive<usize> = 64..=64 * 1024;
    pub const MAX_KEYS_WITHOUT_KID: usize = 4;
    pub const MAX_KEYS_WITHOUT_KID_LIMIT: usize = 16;
    pub const JWKS_TTL_SECS: u64 = 3600;
    pub const JWKS_MIN_REFRESH_INTERVAL_SECS: u64 = 60;
    pub const JWKS_MAX_BODY_BYTES: usize = 64 * 1024;
    pub const JWKS_MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024;
    pub const JWKS_MAX_KEYS: usize = 32;
    pub const JWKS_MAX_KEYS_LIMIT: usize = 256;
    pub const JWKS_FETCH_TIMEOUT_MS: u64 = 5_000;
    pub const JWKS_FETCH_TIMEOUT_MS_RANGE: core::ops::RangeInclusive<u64> = 100..=60_000;

    pub(super) fn leeway_secs() -> u64 {
        LEEWAY_SECS
    }
    pub(super) fn max_token_bytes() -> usize {
        MAX_TOKEN_BYTES
    }
    pub(super) fn scope_claims() -> Vec<String> {
        vec!["scope".to_owned(), "scp".to_owned()]
    }
    pub(super) fn role_claims() -> Vec<String> {
        vec!["roles".to_owned()]
    }
    pub(super) fn max_keys_without_kid() -> usize {
        MAX_KEYS_WITHOUT_KID
    }
    pub(super) fn realm() -> String {
        "edgebrain".to_owned()
    }
    pub(super) fn jwks_ttl_secs() -> u64 {
        JWKS_TTL_SECS
    }
    pub(super) fn jwks_min_refresh_interval_secs() -> u64 {
        JWKS_MIN_REFRESH_INTERVAL_SECS
    }
    pub(super) fn jwks_max_body_bytes() -> usize {
        JWKS_MAX_BODY_BYTES
    }
    pub(super) fn jwks_max_keys() -> usize {
        JWKS_MAX_KEYS
    }
    pub(super) fn jwks_fetch_timeout_ms() -> u64 {
        JWKS_FETCH_TIMEOUT_MS
    }
}

/// Unusable auth configuration, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfigError {
    /// Dotted path of the field, e.g. `jwks_url.ttl_secs`, `jwks.keys[2]`, `hs256_secrets[0]`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for AuthConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "auth config `{}` is invalid: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for AuthConfigError {}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> AuthConfigError {
    AuthConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Characters allowed inside a quoted `WWW-Authenticate` parameter without escaping, and in
/// header values generally: visible ASCII and space, minus `"` and `\`.
pub(crate) fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (b == b' ' || b.is_ascii_graphic()) && b != b'"' && b != b'\\')
}

/// Names of the platform variables [`AuthConfig::from_vars`] reads.
pub mod vars {
    /// A wrangler `[vars]` entry (or any variable) holding the [`AuthConfigFile`](super::AuthConfigFile) JSON.
    pub const AUTH_CONFIG: &str = "AUTH_CONFIG";
    /// A wrangler *secret* holding the JSON array of [`Hs256Secret`](super::Hs256Secret)s.
    pub const AUTH_HS256_SECRETS: &str = "AUTH_HS256_SECRETS";
}

impl AuthConfig {
    /// Reads [`vars::AUTH_CONFIG`] and [`vars::AUTH_HS256_SECRETS`] through `lookup` (as
    /// `EdgeConfig::from_vars` does). `Ok(None)` when `AUTH_CONFIG` is not set: no JWT
    /// authentication is configured, and the caller decides whether routes may still demand it.
    pub fn from_vars(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, AuthConfigError> {
        let Some(config_json) = lookup(vars::AUTH_CONFIG) else {
            if lookup(vars::AUTH_HS256_SECRETS).is_some() {
                return Err(invalid(
                    vars::AUTH_HS256_SECRETS,
                    "is set but AUTH_CONFIG is not",
                ));
            }
            return Ok(None);
        };
        let secrets = lookup(vars::AUTH_HS256_SECRETS);
        Self::from_json(&config_json, secrets.as_deref()).map(Some)
    }

    /// Parses and validates everything: `config_json` is an [`AuthConfigFile`];
    /// `hs256_secrets_json`, when given, is a JSON array of [`Hs256Secret`] (kept in a secret,
    /// not in `[vars]`).
    pub fn from_json(
        config_json: &str,
        hs256_secrets_json: Option<&str>,
    ) -> Result<Self, AuthConfigError> {
        let file: AuthConfigFile =
            serde_json::from_str(config_json).map_err(|e| invalid("(document)", e.to_string()))?;
        let secrets: Vec<Hs256Secret> = match hs256_secrets_json {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| invalid("hs256_secrets", e.to_string()))?
            }
            None => Vec::new(),
        };
        Self::from_file(file, secrets)
    }

    /// Validates an already deserialized document (see [`AuthConfig::from_json`]).
    pub fn from_file(
        file: AuthConfigFile,
        hs256_secrets: Vec<Hs256Secret>,
    ) -> Result<Self, AuthConfigError> {
        if file.issuer.is_empty() {
            return Err(invalid("issuer", "must not be empty"));
        }
        if file.audiences.is_empty() || file.audiences.iter().any(String::is_empty) {
            return Err(invalid(
                "audiences",
                "must list at least one non-empty audience",
            ));
        }
        let mut algorithms = Vec::new();
        for (i, name) in file.algorithms.iter().enumerate() {
            let alg = Algorithm::from_jws_name(name).ok_or_else(|| {
                invalid(
                    format!("algorithms[{i}]"),
                    format!("{name:?} is not one of HS256, RS256, ES256, EdDSA"),
                )
            })?;
            if algorithms.contains(&alg) {
                return Err(invalid(format!("algorithms[{i}]"), "listed twice"));
            }
            algorithms.push(alg);
        }
        if algorithms.is_empty() {
            return Err(invalid("algorithms", "must list at least one algorithm"));
        }
        if file.leeway_secs > defaults::MAX_LEEWAY_SECS {
            return Err(invalid(
                "leeway_secs",
                format!("must be at most {}", defaults::MAX_LEEWAY_SECS),
            ));
        }
        if !defaults::MAX_TOKEN_BYTES_RANGE.contains(&file.max_token_bytes) {
            return Err(invalid(
                "max_token_bytes",
                format!("must be within {:?}", defaults::MAX_TOKEN_BYTES_RANGE),
            ));
        }
        if let Some(typ) = &file.typ
            && (typ.is_empty() || !is_quotable(typ) || typ.contains(' '))
        {
            return Err(invalid(
                "typ",
                "must be a non-empty media type such as at+jwt",
            ));
        }
        for (field, names) in [
            ("scope_claims", &file.scope_claims),
            ("role_claims", &file.role_claims),
        ] {
            if let Some(i) = names.iter().position(String::is_empty) {
                return Err(invalid(format!("{field}[{i}]"), "must not be empty"));
            }
        }
        if file.max_keys_without_kid == 0
            || file.max_keys_without_kid > defaults::MAX_KEYS_WITHOUT_KID_LIMIT
        {
            return Err(invalid(
                "max_keys_without_kid",
                format!(
                    "must be within 1..={}",
                    defaults::MAX_KEYS_WITHOUT_KID_LIMIT
                ),
            ));
        }
        if file.realm.is_empty() || !is_quotable(&file.realm) {
            return Err(invalid(
                "realm",
                "must be non-empty printable ASCII without quotes or backslashes",
            ));
        }
        if let Some(jwks_url) = &file.jwks_url {
            validate_jwks_url(jwks_url)?;
        }

        let mut static_keys = Vec::new();
        if let Some(jwks) = &file.jwks {
            let keys = jwks
                .get("keys")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| invalid("jwks", "must be an object {\"keys\": [...]}"))?;
            for (i, value) in keys.iter().enumerate() {
                let key = parse_jwk(value, &algorithms)
                    .map_err(|e| invalid(format!("jwks.keys[{i}]"), e.to_string()))?;
                static_keys.push(key);
            }
        }
        if !hs256_secrets.is_empty() && !algorithms.contains(&Algorithm::HS256) {
            return Err(invalid(
                "hs256_secrets",
                "HS256 secrets are configured but HS256 is not in algorithms",
            ));
        }
        for (i, secret) in hs256_secrets.iter().enumerate() {
            let key = VerificationKey::hs256(secret.kid.clone(), secret.secret.as_bytes())
                .map_err(|e: KeyError| invalid(format!("hs256_secrets[{i}]"), e.to_string()))?;
            static_keys.push(key);
        }
        // Two static keys sharing a kid would make `kid` ambiguous.
        for (i, key) in static_keys.iter().enumerate() {
            if let Some(kid) = key.kid()
                && static_keys
                    .iter()
                    .take(i)
                    .any(|other| other.kid() == Some(kid))
            {
                return Err(invalid("jwks", format!("kid {kid:?} is used by two keys")));
            }
        }
        if static_keys.is_empty() && file.jwks_url.is_none() {
            return Err(invalid(
                "jwks",
                "no keys: configure jwks, jwks_url or HS256 secrets",
            ));
        }

        Ok(Self {
            issuer: file.issuer,
            audiences: file.audiences,
            algorithms,
            leeway_secs: file.leeway_secs,
            max_token_bytes: file.max_token_bytes,
            typ: file.typ,
            scope_claims: file.scope_claims,
            role_claims: file.role_claims,
            max_keys_without_kid: file.max_keys_without_kid,
            realm: file.realm,
            jwks_url: file.jwks_url,
            static_keys,
        })
    }
}

/// Why a URL the edge fetches is not `https://`, or `http://` to a loopback host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotHttps {
    PlainHttpElsewhere,
    OtherScheme,
}

/// The part after `scheme://` of a URL the edge may fetch: `https://…`, or plain `http://` to
/// 127.0.0.1, localhost or [::1] (local development and tests). One rule for the JWKS, the
/// OpenID provider's issuer and its endpoints.
pub(crate) fn https_or_loopback(url: &str) -> Result<&str, NotHttps> {
    if let Some(rest) = url.strip_prefix("https://") {
        return Ok(rest);
    }
    let rest = url.strip_prefix("http://").ok_or(NotHttps::OtherScheme)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        Ok(rest)
    } else {
        Err(NotHttps::PlainHttpElsewhere)
    }
}

fn validate_jwks_url(config: &JwksUrlConfig) -> Result<(), AuthConfigError> {
    let url = config.url.as_str();
    let authority = match https_or_loopback(url) {
        Ok(rest) => rest,
        Err(NotHttps::PlainHttpElsewhere) => {
            return Err(invalid(
                "jwks_url.url",
                "must be https:// (http:// only for 127.0.0.1, localhost or [::1])",
            ));
        }
        Err(NotHttps::OtherScheme) => {
            return Err(invalid("jwks_url.url", "must start with https://"));
        }
    };
    if authority.is_empty()
        || authority.starts_with('/')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "jwks_url.url",
            "must be an absolute URL with a host",
        ));
    }
    if config.ttl_secs == 0 {
        return Err(invalid("jwks_url.ttl_secs", "must be positive"));
    }
    if config.min_refresh_interval_secs == 0 || config.min_refresh_interval_secs > config.ttl_secs {
        return Err(invalid(
            "jwks_url.min_refresh_interval_secs",
            "must be positive and at most ttl_secs",
        ));
    }
    if config.max_body_bytes == 0 || config.max_body_bytes > defaults::JWKS_MAX_BODY_BYTES_LIMIT {
        return Err(invalid(
            "jwks_url.max_body_bytes",
            format!("must be within 1..={}", defaults::JWKS_MAX_BODY_BYTES_LIMIT),
        ));
    }
    if !defaults::JWKS_FETCH_TIMEOUT_MS_RANGE.contains(&config.fetch_timeout_ms) {
        return Err(invalid(
            "jwks_url.fetch_timeout_ms",
            format!(
                "must be within {}..={}",
                defaults::JWKS_FETCH_TIMEOUT_MS_RANGE.start(),
                defaults::JWKS_FETCH_TIMEOUT_MS_RANGE.end()
            ),
        ));
    }
    if config.max_keys == 0 || config.max_keys > defaults::JWKS_MAX_KEYS_LIMIT {
        return Err(invalid(
            "jwks_url.max_keys",
            format!("must be within 1..={}", defaults::JWKS_MAX_KEYS_LIMIT),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::super::test_support::*;
    use super::*;

    fn error(config: &Value, secrets: Option<&str>) -> AuthConfigError {
        AuthConfig::from_json(&config.to_string(), secrets).unwrap_err()
    }

    fn with(mut value: Value, key: &str, member: Value) -> Value {
        value[key] = member;
        value
    }

    #[test]
    fn the_test_configuration_is_valid_with_defaults_filled_in() {
        let config = AuthConfig::from_json(
            &json!({"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
                    "jwks": {"keys": [es_jwk()]}})
            .to_string(),
            None,
        )
        .unwrap();
        assert_eq!(config.leeway_secs, defaults::LEEWAY_SECS);
        assert_eq!(config.max_token_bytes, defaults::MAX_TOKEN_BYTES);
        assert_eq!(config.scope_claims, ["scope", "scp"]);
        assert_eq!(config.role_claims, ["roles"]);
        assert_eq!(config.realm, "edgebrain");
        assert_eq!(config.typ, None);
        assert_eq!(config.static_keys.len(), 1);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = config_json();
        let secrets = secrets_json();
        let cases: Vec<(Value, Option<&str>, &str)> = vec![
            (with(base.clone(), "surprise", json!(1)), None, "(document)"),
            (with(base.clone(), "issuer", json!("")), None, "issuer"),
            (
                with(base.clone(), "audiences", json!([])),
                None,
                "audiences",
            ),
            (
                with(base.clone(), "algorithms", json!(["RS256", "none"])),
                None,
                "algorithms[1]",
            ),
            (
                with(base.clone(), "algorithms", json!(["RS256", "RS256"])),
                None,
                "algorithms[1]",
            ),
            (
                with(base.clone(), "algorithms", json!([])),
                None,
                "algorithms",
            ),
            (
                with(base.clone(), "leeway_secs", json!(301)),
                None,
                "leeway_secs",
            ),
            (
                with(base.clone(), "max_token_bytes", json!(10)),
                None,
                "max_token_bytes",
            ),
            (with(base.clone(), "typ", json!("at jwt")), None, "typ"),
            (
                with(base.clone(), "scope_claims", json!(["scope", ""])),
                None,
                "scope_claims[1]",
            ),
            (
                with(base.clone(), "max_keys_without_kid", json!(0)),
                None,
                "max_keys_without_kid",
            ),
            (with(base.clone(), "realm", json!("a\"b")), None, "realm"),
            (with(base.clone(), "jwks", json!([es_jwk()])), None, "jwks"),
            (
                with(
                    base.clone(),
                    "jwks",
                    json!({"keys": [es_jwk(), {"kty": "oct", "k": "AA"}]}),
                ),
                None,
                "jwks.keys[1]",
            ),
            (
                with(base.clone(), "jwks", json!({"keys": [es_jwk(), es_jwk()]})),
                None,
                "jwks",
            ),
            (
                with(base.clone(), "algorithms", json!(["RS256"])),
                None,
                "jwks.keys[1]", // the ES256 key is not allowed
            ),
            (base.clone(), Some("{\"kid\": \"x\"}"), "hs256_secrets"),
            (
                base.clone(),
                Some("[{\"secret\": \"short\"}]"),
                "hs256_secrets[0]",
            ),
            (
                with(
                    base.clone(),
                    "algorithms",
                    json!(["RS256", "ES256", "EdDSA"]),
                ),
                Some(&secrets),
                "hs256_secrets",
            ),
            (
                json!({"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"]}),
                None,
                "jwks",
            ),
        ];
        for (config, secrets, field) in cases {
            let error = error(&config, secrets);
            assert_eq!(error.field, field, "{error}");
            assert!(error.to_string().contains(field));
        }
    }

    #[test]
    fn jwks_url_settings_are_validated() {
        let base = json!({"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"]});
        let url = |jwks_url: Value| with(base.clone(), "jwks_url", jwks_url);
        let cases = [
            (json!({"url": "http://idp.example/jwks"}), "jwks_url.url"),
            (json!({"url": "ftp://idp.example/jwks"}), "jwks_url.url"),
            (json!({"url": "https:///jwks"}), "jwks_url.url"),
            (
                json!({"url": "https://idp.example/jwks", "ttl_secs": 0}),
                "jwks_url.ttl_secs",
            ),
            (
                json!({"url": "https://idp.example/jwks", "ttl_secs": 60, "min_refresh_interval_secs": 61}),
                "jwks_url.min_refresh_interval_secs",
            ),
            (
                json!({"url": "https://idp.example/jwks", "max_body_bytes": 2_000_000}),
                "jwks_url.max_body_bytes",
            ),
            (
                json!({"url": "https://idp.example/jwks", "fetch_timeout_ms": 0}),
                "jwks_url.fetch_timeout_ms",
            ),
            (
                json!({"url": "https://idp.example/jwks", "max_keys": 0}),
                "jwks_url.max_keys",
            ),
        ];
        for (jwks_url, field) in cases {
            assert_eq!(error(&url(jwks_url), None).field, field);
        }
        // Unknown members inside jwks_url are refused too.
        let error = error(
            &url(json!({"url": "https://idp.example/jwks", "ttl": 5})),
            None,
        );
        assert!(error.reason.contains("unknown field"), "{error}");
        // Loopback http is fine for local development and the e2e suite.
        for ok in [
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "https://idp.example/jwks",
        ] {
            assert!(AuthConfig::from_json(&url(json!({"url": ok})).to_string(), None).is_ok());
        }
    }

    #[test]
    fn from_vars_reads_the_config_and_the_secret() {
        let config = config_json().to_string();
        let secrets = secrets_json();
        let lookup = |name: &str| match name {
            vars::AUTH_CONFIG => Some(config.clone()),
            vars::AUTH_HS256_SECRETS => Some(secrets.clone()),
            _ => None,
        };
        let parsed = AuthConfig::from_vars(lookup).unwrap().unwrap();
        assert_eq!(parsed.static_keys.len(), 4);
        assert!(AuthConfig::from_vars(|_| None).unwrap().is_none());
        let secret_only = |name: &str| (name == vars::AUTH_HS256_SECRETS).then(|| secrets.clone());
        assert_eq!(
            AuthConfig::from_vars(secret_only).unwrap_err().field,
            vars::AUTH_HS256_SECRETS
        );
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let secrets: Vec<Hs256Secret> = serde_json::from_str(&secrets_json()).unwrap();
        assert!(!format!("{secrets:?}").contains(HS_SECRET));
        assert!(!format!("{:?}", config()).contains(HS_SECRET));
    }
}
