//! The sign-in steps end to end, natively: login → callback → ID token → cookies → refresh →
//! sign-out, and each step's hostile inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared_types::account::{RefreshGrant, SignedInUser};
use shared_types::error::ErrorCode;

use super::flow::{
    self, ACCESS_COOKIE, CookieAuth, IdToken, LOGIN_COOKIE, LoginRandom, Provider, REFRESH_COOKIE,
    TokenRequest, query_param, safe_return_to,
};
use super::{Discovery, DiscoveryError, ProviderMetadata, SigninConfig};
use crate::core::auth::KeyStore;
use crate::core::auth::test_support::{NOW, RS_KID, Signer, header, mint, rsa_jwk};
use crate::core::request_id::RequestId;
use crate::core::session::{SessionConfig, SessionKey};

const ISSUER: &str = "https://idp.example";
const ORIGIN_URL: &str = "https://app.example";

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        owned
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn config() -> SigninConfig {
    SigninConfig::from_vars(&vars(&[
        ("OIDC_ISSUER", "https://idp.example/"),
        ("OIDC_CLIENT_ID", "edgebrain"),
        ("OIDC_CLIENT_SECRET", "s3cret:/+"),
    ]))
    .unwrap()
    .unwrap()
}

fn discovery_document() -> Value {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/jwks",
        "code_challenge_methods_supported": ["S256"],
    })
}

fn metadata() -> ProviderMetadata {
    ProviderMetadata::parse(discovery_document().to_string().as_bytes(), &config()).unwrap()
}

fn sessions() -> SessionConfig {
    SessionConfig {
        keys: vec![SessionKey {
            id: "k1".to_owned(),
            secret: b"session-key-0123456789abcdef0123456789".to_vec(),
        }],
        ttl_secs: 3600,
    }
}

fn request_id() -> RequestId {
    RequestId::from_random([7; 16])
}

const RANDOM: LoginRandom = LoginRandom {
    state: [1; 16],
    nonce: [2; 16],
    verifier: [3; 32],
};

/// The `name=value` of each `Set-Cookie`.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| {
            let text = value.to_str().unwrap().to_owned();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned(), text.clone())
        })
        .collect()
}

fn cookie_header(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let text: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    headers.insert(COOKIE, HeaderValue::from_str(&text.join("; ")).unwrap());
    headers
}

/// Runs `step` with the test provider.
fn with_provider<T>(step: impl FnOnce(&Provider<'_>) -> T) -> T {
    let (config, metadata, sessions) = (config(), metadata(), sessions());
    step(&Provider {
        config: &config,
        metadata: &metadata,
        sessions: &sessions,
        origin: ORIGIN_URL,
    })
}

/// Runs `/auth/login` and returns the authorization URL's query and the login cookie.
fn started(query: &str) -> (String, String) {
    let response =
        with_provider(|provider| flow::login(query, provider, &RANDOM, NOW, &request_id()));
    assert_eq!(response.status, StatusCode::FOUND);
    let location = response.headers[LOCATION].to_str().unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, "https://idp.example/authorize");
    let cookies = set_cookies(&response.headers);
    assert_eq!(cookies.len(), 1);
    let (name, value, full) = &cookies[0];
    assert_eq!(name, LOGIN_COOKIE);
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(full.contains(attribute), "{full}");
    }
    (query.to_owned(), value.clone())
}

fn callback(
    query: &str,
    login_cookie: Option<&str>,
    now: u64,
) -> Result<TokenRequest, flow::Refusal> {
    let headers = match login_cookie {
        Some(cookie) => cookie_header(&[(LOGIN_COOKIE, cookie)]),
        None => HeaderMap::new(),
    };
    with_provider(|provider| flow::callback_request(query, &headers, provider, now))
}

#[test]
fn configuration_defaults_and_refusals() {
    let config = config();
    assert_eq!(config.issuer, ISSUER);
    assert_eq!(config.scopes, ["openid", "profile", "email"]);
    assert_eq!(config.access_ttl_secs, 300);
    assert!(!format!("{config:?}").contains("s3cret"));
    assert_eq!(SigninConfig::from_vars(&vars(&[])).unwrap(), None);
    let error = |pairs: &[(&str, &str)]| SigninConfig::from_vars(&vars(pairs)).unwrap_err().var;
    assert_eq!(error(&[("OIDC_ISSUER", ISSUER)]), "OIDC_CLIENT_ID");
    assert_eq!(
        error(&[
            ("OIDC_ISSUER", "http://idp.example"),
            ("OIDC_CLIENT_ID", "c")
        ]),
        "OIDC_ISSUER"
    );
    assert_eq!(
        error(&[
            ("OIDC_ISSUER", "https://u:p@idp.example"),
            ("OIDC_CLIENT_ID", "c")
        ]),
        "OIDC_ISSUER"
    );
    assert_eq!(
        error(&[
            ("OIDC_ISSUER", ISSUER),
            ("OIDC_CLIENT_ID", "c"),
            ("SIGNIN_ACCESS_TTL_SECS", "0")
        ]),
        "SIGNIN_ACCESS_TTL_SECS"
    );
    // Loopback may be plain http (local development, the e2e provider).
    let local = SigninConfig::from_vars(&vars(&[
        ("OIDC_ISSUER", "http://127.0.0.1:4000"),
        ("OIDC_CLIENT_ID", "c"),
        ("OIDC_SCOPES", "profile"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(local.scopes, ["openid", "profile"]);
    // IPv6 loopback with a port too; a port does not make another host loopback.
    assert!(super::config::check_url("http://[::1]:4000/realm").is_ok());
    assert!(super::config::check_url("http://127.0.0.1.evil.example:80").is_err());
}

#[test]
fn a_discovery_document_must_name_the_issuer_and_allow_pkce() {
    let config = config();
    let parse = |document: Value| ProviderMetadata::parse(document.to_string().as_bytes(), &config);
    let mut wrong_issuer = discovery_document();
    wrong_issuer["issuer"] = json!("https://evil.example");
    assert_eq!(parse(wrong_issuer), Err(DiscoveryError::WrongIssuer));
    let mut no_pkce = discovery_document();
    no_pkce["code_challenge_methods_supported"] = json!(["plain"]);
    assert_eq!(parse(no_pkce), Err(DiscoveryError::NoPkce));
    let mut plain_http = discovery_document();
    plain_http["token_endpoint"] = json!("http://idp.example/token");
    assert!(matches!(
        parse(plain_http),
        Err(DiscoveryError::BadEndpoint(_))
    ));
    assert!(ProviderMetadata::parse(&vec![b' '; 70_000], &config).is_err());

    // The cache: one fetch per 30 s at most; a failure keeps the last good document.
    let mut discovery = Discovery::default();
    assert_eq!(
        discovery.hand_out_fetch(NOW, &config).as_deref(),
        Some("https://idp.example/.well-known/openid-configuration")
    );
    assert_eq!(discovery.hand_out_fetch(NOW + 1, &config), None);
    assert_eq!(
        discovery.apply(NOW, 503, b"", &config),
        Err(DiscoveryError::Status(503))
    );
    assert!(discovery.metadata().is_none());
    assert!(discovery.hand_out_fetch(NOW + 31, &config).is_some());
    discovery
        .apply(
            NOW + 31,
            200,
            discovery_document().to_string().as_bytes(),
            &config,
        )
        .unwrap();
    assert_eq!(discovery.hand_out_fetch(NOW + 100, &config), None);
    assert!(discovery.apply(NOW + 100, 200, b"{}", &config).is_err());
    assert_eq!(discovery.metadata(), Some(&metadata()));
    assert!(discovery.hand_out_fetch(NOW + 31 + 3600, &config).is_some());
}

#[test]
fn login_then_callback_builds_the_code_exchange_with_pkce() {
    let (query, cookie) = started("return_to=%2Freports%3Fq%3D1");
    let param = |name| query_param(&query, name).unwrap();
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), "edgebrain");
    assert_eq!(param("redirect_uri"), "https://app.example/auth/callback");
    assert_eq!(param("scope"), "openid profile email");
    assert_eq!(param("code_challenge_method"), "S256");
    let state = param("state");
    let nonce = param("nonce");
    assert_eq!(state, URL_SAFE_NO_PAD.encode([1u8; 16]));

    let request = callback(
        &format!("code=abc%2F1&state={state}"),
        Some(&cookie),
        NOW + 60,
    )
    .unwrap();
    assert_eq!(request.url, "https://idp.example/token");
    assert_eq!(request.nonce, nonce);
    assert_eq!(request.return_to, "/reports?q=1");
    let verifier = query_param(&request.body, "code_verifier").unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        param("code_challenge")
    );
    assert_eq!(query_param(&request.body, "code").unwrap(), "abc/1");
    assert_eq!(
        query_param(&request.body, "grant_type").unwrap(),
        "authorization_code"
    );
    // client_secret_basic, each part form-encoded first (RFC 6749 §2.3.1).
    let basic = request.authorization.unwrap();
    let decoded = String::from_utf8(
        STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded, "edgebrain:s3cret%3A%2F%2B");
    assert!(query_param(&request.body, "client_secret").is_none());
}

#[test]
fn a_callback_that_is_not_this_browsers_sign_in_is_refused() {
    let (query, cookie) = started("");
    let state = query_param(&query, "state").unwrap();
    let code = |result: Result<TokenRequest, flow::Refusal>| result.unwrap_err().code;
    let ok = format!("code=c&state={state}");
    assert_eq!(code(callback(&ok, None, NOW)), ErrorCode::BadRequest);
    assert_eq!(
        code(callback(&ok, Some(&cookie), NOW + 601)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(callback("code=c&state=other", Some(&cookie), NOW)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(callback(
            &format!("code=c&state={state}&state={state}"),
            Some(&cookie),
            NOW
        )),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(callback(&format!("state={state}"), Some(&cookie), NOW)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(callback(
            &format!("code=c&state={state}%00"),
            Some(&cookie),
            NOW
        )),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(callback(
            &format!("error=access_denied&state={state}"),
            Some(&cookie),
            NOW
        )),
        ErrorCode::Unauthorized
    );
    // A cookie sealed for another purpose (or tampered) is no login state.
    let mut tampered = cookie.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        code(callback(
            &ok,
            Some(&String::from_utf8(tampered).unwrap()),
            NOW
        )),
        ErrorCode::BadRequest
    );
    // Every refusal clears the login cookie.
    let refusal = callback(&ok, None, NOW)
        .unwrap_err()
        .response(&request_id());
    let cleared = set_cookies(&refusal.headers);
    assert_eq!(
        (cleared[0].0.as_str(), cleared[0].1.as_str()),
        (LOGIN_COOKIE, "")
    );
}

#[test]
fn return_to_stays_on_this_origin() {
    for (asked, kept) in [
        (Some("/threads/1?x=2"), "/threads/1?x=2"),
        (Some("//evil.example/x"), "/"),
        (Some("/\\evil.example"), "/"),
        (Some("https://evil.example"), "/"),
        (Some("/a b"), "/"),
        (Some("/\u{0}"), "/"),
        (Some("/é"), "/"),
        (None, "/"),
    ] {
        assert_eq!(safe_return_to(asked), kept, "{asked:?}");
    }
    assert_eq!(safe_return_to(Some(&format!("/{}", "a".repeat(2000)))), "/");
    // Encoded variants arrive decoded from the query, and are judged decoded.
    for query in [
        "return_to=%2F%2Fevil.example",
        "return_to=%2F%5Cevil.example",
        "return_to=https%3A%2F%2Fevil.example",
        "return_to=%2F%09%2Fevil.example",
        "return_to=%2F%0D%0ALocation:%20x",
        "return_to=/ok&return_to=//evil.example",
    ] {
        assert_eq!(
            safe_return_to(query_param(query, "return_to").as_deref()),
            "/",
            "{query}"
        );
    }
    // Percent-escapes that stay escaped in the path are harmless: still this origin's path.
    assert_eq!(
        safe_return_to(query_param("return_to=%2F%252F%252Fevil", "return_to").as_deref()),
        "/%2F%2Fevil"
    );
    assert_eq!(query_param("a=1&a=2", "a"), None);
    assert_eq!(query_param("a=%zz", "a"), None);
    assert_eq!(query_param("a=%C3", "a"), None);
    assert_eq!(query_param("b=1&a=x+y", "a").as_deref(), Some("x y"));
}

fn token_request(nonce: &str) -> TokenRequest {
    TokenRequest {
        url: "https://idp.example/token".to_owned(),
        body: String::new(),
        authorization: None,
        nonce: nonce.to_owned(),
        return_to: "/".to_owned(),
    }
}

fn id_token(claims: Value, kid: &str) -> Vec<u8> {
    let token = mint(&header("RS256", kid), &claims, Signer::Rs);
    json!({"id_token": token, "access_token": "opaque", "token_type": "Bearer"})
        .to_string()
        .into_bytes()
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "edgebrain", "sub": "olga", "exp": NOW + 300, "iat": NOW,
           "nonce": "n-1", "name": "Olga O.", "roles": ["edgebrain:operator"],
           "scope": "reports:read"})
}

fn read(status: u16, body: &[u8], nonce: &str) -> IdToken {
    let (config, metadata) = (config(), metadata());
    let verifier = flow::id_token_verifier(&config, &metadata).unwrap();
    let mut keys = KeyStore::new(&verifier);
    keys.apply_jwks(NOW, json!({"keys": [rsa_jwk()]}).to_string().as_bytes())
        .unwrap();
    flow::read_id_token(
        status,
        body,
        &token_request(nonce),
        &config,
        &verifier,
        &keys,
        NOW,
    )
}

#[test]
fn the_id_token_must_verify_and_carry_the_logins_nonce() {
    let IdToken::User(user) = read(200, &id_token(claims(), RS_KID), "n-1") else {
        panic!("a good ID token is a user");
    };
    assert_eq!(user.user_id, "olga");
    assert_eq!(user.name.as_deref(), Some("Olga O."));
    assert_eq!(user.scopes, ["reports:read", "role:edgebrain:operator"]);

    let refused = |outcome: IdToken| matches!(outcome, IdToken::Refused(r) if r.code == ErrorCode::Unauthorized);
    assert!(refused(read(200, &id_token(claims(), RS_KID), "n-2")));
    let mut other_audience = claims();
    other_audience["aud"] = json!("someone-else");
    assert!(refused(read(200, &id_token(other_audience, RS_KID), "n-1")));
    let mut expired = claims();
    expired["exp"] = json!(NOW - 3600);
    assert!(refused(read(200, &id_token(expired, RS_KID), "n-1")));
    let mut several = claims();
    several["aud"] = json!(["edgebrain", "other"]);
    assert!(refused(read(
        200,
        &id_token(several.clone(), RS_KID),
        "n-1"
    )));
    several["azp"] = json!("edgebrain");
    assert!(matches!(
        read(200, &id_token(several, RS_KID), "n-1"),
        IdToken::User(_)
    ));
    let mut other_issuer = claims();
    other_issuer["iss"] = json!("https://evil.example");
    assert!(refused(read(200, &id_token(other_issuer, RS_KID), "n-1")));
    assert!(refused(read(400, br#"{"error":"invalid_grant"}"#, "n-1")));
    assert!(refused(read(200, b"not json", "n-1")));
    assert!(refused(read(200, &vec![b' '; 70_000], "n-1")));
    assert_eq!(
        read(200, &id_token(claims(), "rotated-key"), "n-1"),
        IdToken::UnknownKey
    );
    // `alg: none` (no signature) and an HS256 token made with the public key as its secret.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": RS_KID}).to_string()),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let body = json!({ "id_token": unsigned }).to_string();
    assert!(refused(read(200, body.as_bytes(), "n-1")));
    let public_as_secret = rsa_jwk()["n"].as_str().unwrap().to_owned();
    let confused = mint(
        &header("HS256", RS_KID),
        &claims(),
        Signer::Hs(public_as_secret.as_bytes()),
    );
    let body = json!({ "id_token": confused }).to_string();
    assert!(refused(read(200, body.as_bytes(), "n-1")));
}

fn grant(rotated: bool) -> RefreshGrant {
    RefreshGrant {
        user: SignedInUser {
            user_id: "olga".to_owned(),
            scopes: vec!["edgebrain:operator".to_owned(), "role:admin".to_owned()],
            name: Some("Olga O.".to_owned()),
        },
        family_id: "fam-1".to_owned(),
        rotated,
        family_expires_at_ms: i64::try_from((NOW + 30 * 24 * 3600) * 1000).unwrap(),
    }
}

#[test]
fn a_sign_in_sets_its_cookies_and_they_authenticate_until_the_access_expires() {
    let (config, sessions) = (config(), sessions());
    let user = grant(true).user;
    let sign_in = flow::new_sign_in(user.clone(), &config, &[5; 32], NOW * 1000);
    assert_eq!(sign_in.refresh_token.len(), 43);
    assert_eq!(
        sign_in.start.token_hash,
        flow::token_hash(&sign_in.refresh_token)
    );
    assert!(shared_types::account::is_token_hash(
        &sign_in.start.token_hash
    ));

    let response = flow::signed_in(
        &grant(true),
        &sign_in,
        "//evil.example",
        &config,
        &sessions,
        NOW,
        &request_id(),
    );
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(response.headers[LOCATION], "/");
    let cookies = set_cookies(&response.headers);
    let names: Vec<&str> = cookies.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, [LOGIN_COOKIE, ACCESS_COOKIE, REFRESH_COOKIE]);
    assert!(cookies[1].2.contains("Max-Age=300"), "{}", cookies[1].2);
    assert!(
        cookies[2]
            .2
            .contains(&format!("Max-Age={}", 14 * 24 * 3600))
    );
    let (access, refresh) = (cookies[1].1.clone(), cookies[2].1.clone());
    assert_eq!(refresh, sign_in.refresh_token);

    let both = cookie_header(&[(ACCESS_COOKIE, &access), (REFRESH_COOKIE, &refresh)]);
    let CookieAuth::Valid(grant_now) = flow::cookie_auth(&both, &sessions, NOW + 10) else {
        panic!("the access cookie authenticates");
    };
    let principal = grant_now.principal();
    assert_eq!(principal.subject, "olga");
    assert!(principal.scopes.contains("edgebrain:operator"));
    assert!(principal.roles.contains("admin"));
    assert_eq!(
        flow::cookie_auth(&both, &sessions, NOW + 300),
        CookieAuth::NeedsRefresh {
            refresh_token: refresh.clone()
        }
    );
    // Without a refresh cookie an expired access is nobody; a malformed refresh token too.
    let only_access = cookie_header(&[(ACCESS_COOKIE, &access)]);
    assert_eq!(
        flow::cookie_auth(&only_access, &sessions, NOW + 300),
        CookieAuth::Absent
    );
    let junk = cookie_header(&[(REFRESH_COOKIE, "short")]);
    assert_eq!(flow::cookie_auth(&junk, &sessions, NOW), CookieAuth::Absent);
    // A login cookie's value is not an access credential.
    let (_, login) = started("");
    let swapped = cookie_header(&[(ACCESS_COOKIE, &login)]);
    assert_eq!(
        flow::cookie_auth(&swapped, &sessions, NOW),
        CookieAuth::Absent
    );
    // Two access cookies (one planted by a sibling subdomain, say): neither is trusted.
    let twice = cookie_header(&[(ACCESS_COOKIE, &access), (ACCESS_COOKIE, &access)]);
    assert_eq!(
        flow::cookie_auth(&twice, &sessions, NOW),
        CookieAuth::Absent
    );
}

#[test]
fn a_refresh_rotates_the_cookie_only_when_the_brain_stored_the_successor() {
    let (config, sessions) = (config(), sessions());
    let (rotate, successor) = flow::rotation(&"a".repeat(43), &config, &[6; 32], NOW * 1000);
    assert_eq!(rotate.token_hash, flow::token_hash(&"a".repeat(43)));
    assert_eq!(rotate.new_token_hash, flow::token_hash(&successor));
    assert_ne!(rotate.token_hash, rotate.new_token_hash);

    let (access, cookies) =
        flow::refreshed(&grant(true), &successor, &config, &sessions, NOW).unwrap();
    assert_eq!(access.exp, NOW + 300);
    let names: Vec<String> = cookies
        .iter()
        .map(|c| c.split('=').next().unwrap().to_owned())
        .collect();
    assert_eq!(names, [ACCESS_COOKIE, REFRESH_COOKIE]);
    let (_, cookies) = flow::refreshed(&grant(false), &successor, &config, &sessions, NOW).unwrap();
    assert_eq!(
        cookies.len(),
        1,
        "within the leeway the racing request's refresh cookie stands"
    );

    // The access credential never outlives the sign-in.
    let mut ending = grant(true);
    ending.family_expires_at_ms = i64::try_from((NOW + 60) * 1000).unwrap();
    let (access, cookies) = flow::refreshed(&ending, &successor, &config, &sessions, NOW).unwrap();
    assert_eq!(access.exp, NOW + 60);
    assert!(cookies[1].contains("Max-Age=60"), "{}", cookies[1]);
}

#[test]
fn state_changing_cookie_requests_must_come_from_this_origin() {
    let with = |pairs: &[(&'static str, &str)]| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    };
    assert!(flow::same_origin(
        &Method::GET,
        &with(&[("sec-fetch-site", "cross-site")]),
        ORIGIN_URL
    ));
    assert!(flow::same_origin(
        &Method::POST,
        &with(&[("sec-fetch-site", "same-origin")]),
        ORIGIN_URL
    ));
    assert!(!flow::same_origin(
        &Method::POST,
        &with(&[("sec-fetch-site", "same-site")]),
        ORIGIN_URL
    ));
    assert!(!flow::same_origin(
        &Method::DELETE,
        &with(&[("sec-fetch-site", "cross-site"), ("origin", ORIGIN_URL)]),
        ORIGIN_URL
    ));
    assert!(flow::same_origin(
        &Method::POST,
        &with(&[(ORIGIN.as_str(), ORIGIN_URL)]),
        ORIGIN_URL
    ));
    assert!(!flow::same_origin(
        &Method::POST,
        &with(&[(ORIGIN.as_str(), "https://app.example.evil")]),
        ORIGIN_URL
    ));
    assert!(!flow::same_origin(
        &Method::POST,
        &with(&[(ORIGIN.as_str(), "null")]),
        ORIGIN_URL
    ));
    assert!(!flow::same_origin(
        &Method::PUT,
        &HeaderMap::new(),
        ORIGIN_URL
    ));
}

#[test]
fn signing_out_revokes_the_refresh_token_and_clears_every_cookie() {
    let token = "b".repeat(43);
    let headers = cookie_header(&[(REFRESH_COOKIE, &token)]);
    assert_eq!(
        flow::revocation(&headers).unwrap().token_hash,
        flow::token_hash(&token)
    );
    assert_eq!(flow::revocation(&HeaderMap::new()), None);
    let response = flow::signed_out(&request_id());
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    let cleared: Vec<(String, String)> = set_cookies(&response.headers)
        .into_iter()
        .map(|(name, value, full)| {
            assert!(full.contains("Max-Age=0"));
            (name, value)
        })
        .collect();
    assert_eq!(cleared.len(), 4);
    assert!(cleared.iter().all(|(_, value)| value.is_empty()));
    assert!(cleared.iter().any(|(name, _)| name == "__Host-eb_session"));

    let me = flow::me(true, None, &request_id());
    let body: Value = serde_json::from_slice(&me.body).unwrap();
    assert_eq!(body, json!({"signin_available": true, "user": null}));
}

// ---- the pipeline with sign-in configured ---------------------------------------------------

mod pipeline {
    use super::*;
    use crate::core::config::EdgeConfig;
    use crate::core::pipeline::{Decision, Inputs, RequestHead, decide};
    use crate::core::signin::endpoint::{AuthDecision, decide_auth};
    use shared_types::headers::{IDENTITY_SCOPES, IDENTITY_USER};

    fn edge_config(extra: &[(&str, &str)]) -> EdgeConfig {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("BRAIN_URL", "http://brain.internal:8080"),
            (
                "EDGE_SIGNING_SECRETS",
                "edge-signing-secret-0123456789abcdef",
            ),
            ("SESSION_KEYS", "k1:session-key-0123456789abcdef0123456789"),
            ("OIDC_ISSUER", ISSUER),
            ("OIDC_CLIENT_ID", "edgebrain"),
        ];
        pairs.extend_from_slice(extra);
        EdgeConfig::from_vars_and_rules(vars(&pairs), "{}").unwrap()
    }

    fn inputs() -> Inputs {
        Inputs {
            now_ms: NOW * 1000,
            random: [1; 16],
            session_random: [2; 16],
            nonce: [3; 16],
            keys_refreshed: false,
        }
    }

    fn run(config: &EdgeConfig, method: Method, url: &str, headers: &HeaderMap) -> Decision {
        let head = RequestHead {
            method: &method,
            url,
            headers,
            client_ip: Some("203.0.113.9"),
        };
        decide(&head, config, None, inputs())
    }

    /// The access cookie of a fresh sign-in of `grant(true)`.
    fn access_cookie() -> String {
        let sign_in = flow::new_sign_in(grant(true).user, &config(), &[5; 32], NOW * 1000);
        let response = flow::signed_in(
            &grant(true),
            &sign_in,
            "/",
            &config(),
            &sessions(),
            NOW,
            &request_id(),
        );
        set_cookies(&response.headers)
            .into_iter()
            .find(|(name, _, _)| name == ACCESS_COOKIE)
            .unwrap()
            .1
    }

    #[test]
    fn the_access_cookie_signs_the_request_in_and_never_reaches_the_brain() {
        let config = edge_config(&[]);
        let access = access_cookie();
        let headers = cookie_header(&[(ACCESS_COOKIE, &access), ("theme", "dark")]);
        let Decision::Proxy(proxy) = run(
            &config,
            Method::GET,
            "https://app.example/api/v1/threads",
            &headers,
        ) else {
            panic!("a signed-in GET is proxied");
        };
        assert_eq!(proxy.headers[IDENTITY_USER], "olga");
        let scopes = proxy.headers[IDENTITY_SCOPES].to_str().unwrap();
        assert!(
            scopes.contains("edgebrain:operator") && scopes.contains("role:admin"),
            "{scopes}"
        );
        let forwarded: Vec<&str> = proxy
            .headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(forwarded, ["theme=dark"]);
    }

    #[test]
    fn a_cross_site_write_with_the_cookie_is_refused() {
        let config = edge_config(&[]);
        let access = access_cookie();
        let mut headers = cookie_header(&[(ACCESS_COOKIE, &access)]);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        let Decision::Respond(response) = run(
            &config,
            Method::POST,
            "https://app.example/api/v1/threads",
            &headers,
        ) else {
            panic!("refused at the edge");
        };
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(matches!(
            run(
                &config,
                Method::POST,
                "https://app.example/api/v1/threads",
                &headers
            ),
            Decision::Proxy(_)
        ));
    }

    #[test]
    fn an_expired_access_cookie_with_a_refresh_token_asks_for_a_renewal() {
        let config = edge_config(&[]);
        let refresh = "r".repeat(43);
        let headers = cookie_header(&[(REFRESH_COOKIE, &refresh)]);
        assert_eq!(
            run(
                &config,
                Method::GET,
                "https://app.example/api/v1/threads",
                &headers
            ),
            Decision::RefreshSignIn {
                refresh_token: refresh.clone()
            }
        );
        // After a refused renewal the request goes on without either cookie: anonymous.
        let without = flow::with_access_cookie(&headers, None, &sessions());
        let Decision::Proxy(proxy) = run(
            &config,
            Method::GET,
            "https://app.example/api/v1/threads",
            &without,
        ) else {
            panic!("anonymous requests are proxied");
        };
        assert!(proxy.headers.get(IDENTITY_USER).is_none());
        // A bearer token speaks for itself: no renewal (and no AUTH_CONFIG: not trusted).
        let mut bearer = headers.clone();
        bearer.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(matches!(
            run(
                &config,
                Method::GET,
                "https://app.example/api/v1/threads",
                &bearer
            ),
            Decision::Proxy(_)
        ));
    }

    #[test]
    fn auth_paths_are_the_sign_in_endpoints() {
        let config = edge_config(&[]);
        assert_eq!(
            run(
                &config,
                Method::GET,
                "https://app.example/auth/login",
                &HeaderMap::new()
            ),
            Decision::SignIn
        );
        let head =
            |method: &'static Method, url: &'static str, headers: &'static HeaderMap| RequestHead {
                method,
                url,
                headers,
                client_ip: None,
            };
        static EMPTY: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);
        static GET: Method = Method::GET;
        static POST: Method = Method::POST;
        let decided = |config: &EdgeConfig,
                       method: &'static Method,
                       url: &'static str,
                       discovery: &Discovery| {
            decide_auth(
                &head(method, url, &EMPTY),
                config,
                discovery,
                false,
                &RANDOM,
                NOW,
                &request_id(),
            )
        };
        // No provider document yet: fetch it first.
        let none = Discovery::default();
        assert_eq!(
            decided(&config, &GET, "https://app.example/auth/login", &none),
            AuthDecision::Discover
        );
        let mut discovery = Discovery::default();
        let signin = config.signin.as_ref().unwrap();
        let document = discovery_document().to_string();
        discovery
            .apply(NOW, 200, document.as_bytes(), signin)
            .unwrap();
        let AuthDecision::Respond(login) = decided(
            &config,
            &GET,
            "https://app.example/auth/login?return_to=/x",
            &discovery,
        ) else {
            panic!("login redirects");
        };
        assert_eq!(login.status, StatusCode::FOUND);
        let status = |decision: AuthDecision| match decision {
            AuthDecision::Respond(response) => response.status,
            other => panic!("expected a response, got {other:?}"),
        };
        assert_eq!(
            status(decided(
                &config,
                &POST,
                "https://app.example/auth/login",
                &discovery
            )),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(decided(
                &config,
                &GET,
                "https://app.example/auth/other",
                &discovery
            )),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(decided(
                &config,
                &GET,
                "https://app.example/auth/callback?code=x&state=y",
                &discovery
            )),
            StatusCode::BAD_REQUEST
        );
        // Signing out needs this site's origin (a cross-site form cannot sign anybody out).
        assert_eq!(
            status(decided(
                &config,
                &POST,
                "https://app.example/auth/logout",
                &discovery
            )),
            StatusCode::FORBIDDEN
        );
        let me =
            |config: &EdgeConfig| match decided(config, &GET, "https://app.example/auth/me", &none)
            {
                AuthDecision::Respond(response) => {
                    serde_json::from_slice::<Value>(&response.body).unwrap()
                }
                other => panic!("{other:?}"),
            };
        assert_eq!(me(&config), json!({"signin_available": true, "user": null}));

        // Without OIDC_ISSUER: /auth/me says so, the rest do not exist.
        let plain = EdgeConfig::from_vars_and_rules(
            vars(&[
                ("BRAIN_URL", "http://brain.internal:8080"),
                (
                    "EDGE_SIGNING_SECRETS",
                    "edge-signing-secret-0123456789abcdef",
                ),
                ("SESSION_KEYS", "k1:session-key-0123456789abcdef0123456789"),
            ]),
            "{}",
        )
        .unwrap();
        assert_eq!(me(&plain), json!({"signin_available": false, "user": null}));
        assert_eq!(
            status(decided(
                &plain,
                &GET,
                "https://app.example/auth/login",
                &none
            )),
            StatusCode::NOT_FOUND
        );
    }
}
