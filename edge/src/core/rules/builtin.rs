//! The redirects Vercel derives from `cleanUrls` and `trailingSlash` (routing-utils'
//! `convertCleanUrls` and `convertTrailingSlash`, the same regexes and locations), evaluated
//! before the file's own redirects, as on Vercel.

use http::StatusCode;

use super::destination::Template;
use super::pattern::SourcePattern;
use super::{Matcher, RedirectRule, RulesLimits};

/// `(regex, location)` of the redirects for the two settings.
fn routes(clean_urls: bool, trailing_slash: Option<bool>) -> Vec<(&'static str, &'static str)> {
    let mut routes = Vec::new();
    if clean_urls {
        let location = if trailing_slash == Some(true) {
            "/$1/"
        } else {
            "/$1"
        };
        routes.push(("^/(?:(.+)/)?index(?:\\.html)?/?$", location));
        routes.push(("^/(.*)\\.html/?$", location));
    }
    match trailing_slash {
        Some(true) => {
            routes.push(("^/((?:[^/]+/)*[^/\\.]+)$", "/$1/"));
            routes.push(("^/((?:[^/]+/)*[^/]+\\.\\w+)/$", "/$1"));
        }
        Some(false) => routes.push(("^/(.*)\\/$", "/$1")),
        None => {}
    }
    routes
}

pub(super) fn redirects(
    clean_urls: bool,
    trailing_slash: Option<bool>,
    limits: &RulesLimits,
) -> Result<Vec<RedirectRule>, String> {
    routes(clean_urls, trailing_slash)
        .into_iter()
        .map(|(regex, location)| {
            let source = SourcePattern::from_route_regex(regex, limits)?;
            let destination = Template::from_route(location, source.key_count());
            Ok(RedirectRule {
                matcher: Matcher {
                    source,
                    has: Vec::new(),
                    missing: Vec::new(),
                },
                destination,
                status: StatusCode::PERMANENT_REDIRECT,
            })
        })
        .collect()
}
