//! The edge's variable names agree wherever they are written down. The source of truth is what
//! the config parser reads: [`EdgeConfig::from_vars`] is called with a complete, valid
//! configuration and every name it asks for is recorded (the Workers adapter reads variables
//! only through it). Then:
//! - `api/edge.js` (the Vercel entry) passes exactly those names on: the ones it copies from
//!   `process.env` (its `VARS`) and the ones it sets itself (`values.NAME = …` / `??=`);
//! - every name `wrangler.toml` sets in a `[vars]` table (also `[env.*.vars]`) is one of them;
//! - every one of them is documented in the README's edge configuration table, the one place
//!   that explains them (`wrangler.toml` sets only what a deployment changes).
//!
//! A variable added to the parser but not to the Vercel entry or the README, or renamed in one of
//! them, fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use edge::core::EdgeConfig;

const SECRET: &str = "a-signing-secret-of-at-least-32-bytes!!";

/// A valid value for each variable the parser is known to read; `None` (unset) for any other.
/// A new variable the parser requires needs its value here.
fn valid_value(name: &str) -> Option<String> {
    let value = match name {
        // BRAIN_URLS stays unset: it excludes BRAIN_URL (both set is an error), and the parser
        // asks for both either way.
        "BRAIN_URL" => "http://127.0.0.1:8080".to_owned(),
        "EDGE_SIGNING_SECRETS" => SECRET.to_owned(),
        "SESSION_KEYS" => format!("k1:{SECRET}"),
        "AUTH_CONFIG" => r#"{"issuer":"https://idp.example/","audiences":["edgebrain"],"algorithms":["HS256"]}"#.to_owned(),
        "AUTH_HS256_SECRETS" => format!(r#"[{{"kid":"k1","secret":"{SECRET}"}}]"#),
        "RATE_LIMITS" => r#"[{"name":"default","limit":10,"window_secs":60}]"#.to_owned(),
        "ROUTES" => r#"[{"path":"/api/v1/threads/*","auth":{"mode":"required"},"rate_limit":"default","cache":{"ttl_secs":60}}]"#.to_owned(),
        "CORS" => r#"{"allowed_origins":["https://app.example"]}"#.to_owned(),
        "UPSTREAM_TIMEOUT_MS" | "MAX_BODY_BYTES" | "MAX_HEADER_BYTES" | "MAX_URL_BYTES"
        | "SIGN_BODY_MAX_BYTES" | "SESSION_TTL_SECS" => "4096".to_owned(),
        // At most 90: the brain's own limit is 100 fields (EdgeConfig::MAX_MAX_HEADER_COUNT).
        "MAX_HEADER_COUNT" => "64".to_owned(),
        "CACHE_VERSION" => "2".to_owned(),
        "OIDC_ISSUER" => "https://idp.example".to_owned(),
        "OIDC_CLIENT_ID" => "edgebrain".to_owned(),
        "OIDC_CLIENT_SECRET" => SECRET.to_owned(),
        "OIDC_SCOPES" => "openid profile".to_owned(),
        "OIDC_SCOPE_CLAIMS" | "OIDC_ROLE_CLAIMS" => "roles".to_owned(),
        "OIDC_DISCOVERY_TTL_SECS" | "SIGNIN_ACCESS_TTL_SECS" | "SIGNIN_REFRESH_TTL_SECS"
        | "SIGNIN_MAX_AGE_SECS" => "600".to_owned(),
        _ => return None,
    };
    Some(value)
}

/// The names the config parser reads.
fn parser_names() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let config = EdgeConfig::from_vars(|name| {
        asked.borrow_mut().insert(name.to_owned());
        valid_value(name)
    });
    if let Err(error) = config {
        panic!(
            "the complete configuration must parse ({error:?}): give a new variable a valid value in valid_value"
        );
    }
    asked.into_inner()
}

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The names `api/edge.js` passes to the edge: the strings of `const VARS = [ … ];` and every
/// `values.NAME` it assigns itself.
fn vercel_entry_names(source: &str) -> BTreeSet<String> {
    let start = source
        .find("const VARS = [")
        .expect("api/edge.js declares the edge's variables as `const VARS = [ … ];`");
    let list = &source[start + "const VARS = [".len()..];
    let list = &list[..list.find("];").expect("`const VARS = [` ends with `];`")];
    let mut names: BTreeSet<String> = list
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    for (at, _) in source.match_indices("values.") {
        let after = &source[at + "values.".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let rest = after[name.len()..].trim_start();
        if !name.is_empty() && (rest.starts_with("??=") || rest.starts_with("= ")) {
            names.insert(name);
        }
    }
    names
}

/// The keys set in `[vars]` and `[env.<name>.vars]` tables.
fn wrangler_var_keys(toml: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut in_vars = false;
    for line in toml.lines() {
        let line = line.trim_end();
        if line.starts_with('[') {
            in_vars = line == "[vars]" || (line.starts_with("[env.") && line.ends_with(".vars]"));
            continue;
        }
        if !in_vars {
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        // Top-level keys only: entries of inline tables and arrays start indented or with `{`.
        if !line.starts_with(char::is_whitespace)
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            keys.insert(key.to_owned());
        }
    }
    keys
}

/// The README's section on the edge's variables, up to the next heading of any level.
fn readme_edge_section(readme: &str) -> &str {
    let heading = "### Edge (wrangler `[vars]` or secrets)";
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("the README has a section `{heading}`"));
    let body = &readme[start + heading.len()..];
    &body[..body.find("\n#").unwrap_or(body.len())]
}

#[test]
fn the_parser_reads_the_variables_this_test_knows() {
    let names = parser_names();
    // Guards the recording itself: a parser that stopped early would read fewer.
    for name in [
        "BRAIN_URL",
        "EDGE_SIGNING_SECRETS",
        "AUTH_HS256_SECRETS",
        "CACHE_VERSION",
    ] {
        assert!(names.contains(name), "{name} not read: {names:?}");
    }
}

#[test]
fn the_vercel_entry_passes_exactly_the_variables_the_parser_reads() {
    let read = parser_names();
    let passed = vercel_entry_names(&repo_file("api/edge.js"));
    let not_passed: Vec<_> = read.difference(&passed).collect();
    let not_read: Vec<_> = passed.difference(&read).collect();
    assert!(
        not_passed.is_empty() && not_read.is_empty(),
        "api/edge.js (VARS and the values it sets) and EdgeConfig::from_vars disagree: read but \
         not passed on Vercel {not_passed:?}; passed but never read {not_read:?}"
    );
}

#[test]
fn wrangler_sets_only_variables_the_parser_reads() {
    let read = parser_names();
    let toml = repo_file("wrangler.toml");
    let set = wrangler_var_keys(&toml);
    assert!(
        set.contains("BRAIN_URL"),
        "no [vars] found in wrangler.toml: {set:?}"
    );
    let unknown: Vec<_> = set.difference(&read).collect();
    assert!(
        unknown.is_empty(),
        "wrangler.toml sets variables the edge never reads: {unknown:?}"
    );
}

#[test]
fn the_readme_documents_every_variable() {
    let readme = repo_file("README.md");
    let section = readme_edge_section(&readme);
    let undocumented: Vec<_> = parser_names()
        .into_iter()
        .filter(|name| !section.contains(&format!("`{name}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "README.md, section \"Edge (wrangler `[vars]` or secrets)\", has no row for {undocumented:?}"
    );
}

#[test]
fn the_source_readers_find_what_they_look_for() {
    let js = "const A = 1;\nconst VARS = [\n  \"BRAIN_URL\", \"ROUTES\",\n  \"CORS\",\n];\n\
              values.MAX_URL_BYTES ??= \"1\";\nvalues.CACHE_VERSION = \"2\";\n\
              if (values.RATE_LIMITS !== undefined) {}\n";
    assert_eq!(
        vercel_entry_names(js),
        BTreeSet::from(
            [
                "BRAIN_URL",
                "ROUTES",
                "CORS",
                "MAX_URL_BYTES",
                "CACHE_VERSION"
            ]
            .map(String::from)
        )
    );
    let toml = "name = \"x\"\n[vars]\nBRAIN_URL = \"u\"\nRATE_LIMITS = [\n  { name = \"d\", limit = 1 },\n]\n\
                # SESSION_KEYS is a secret\n[env.production.vars]\nCORS = { a = 1 }\n[[migrations]]\ntag = \"v1\"\n";
    assert_eq!(
        wrangler_var_keys(toml),
        BTreeSet::from([
            "BRAIN_URL".to_owned(),
            "RATE_LIMITS".to_owned(),
            "CORS".to_owned()
        ])
    );
}
