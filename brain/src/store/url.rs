//! Which database: its URL (secret-bearing: `Debug` and logs show it redacted) and the
//! connection settings [`super::Store::connect`] takes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Backend;

/// Why a text is not a database URL the brain can use.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error(
        "unsupported database URL scheme `{0}` (expected `postgres://`, `postgresql://` or `sqlite:`)"
    )]
    UnsupportedScheme(String),
    #[error(
        "the database URL has no scheme (expected `postgres://…`, `postgresql://…` or `sqlite:…`)"
    )]
    NotAUrl,
    #[error("path {0:?} is not valid UTF-8 and cannot be used in a SQLite URL")]
    NonUtf8Path(PathBuf),
}

/// Everything [`Store::connect`](super::Store::connect) needs.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub backend: Backend,
    pub max_connections: u32,
    /// Connections kept open while idle (opened in the background after connecting).
    pub min_connections: u32,
    pub acquire_timeout: Duration,
}

/// A database URL. It may contain a password, so `Debug` and [`DatabaseUrl::redacted`] hide it;
/// only [`DatabaseUrl::expose`] returns the real text.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL of a SQLite file, created if missing (`mode=rwc`). Relative paths are made
    /// absolute against the working directory so the log shows exactly which file is used.
    pub fn sqlite_file(path: &Path) -> Result<Self, DatabaseUrlError> {
        let absolute = std::path::absolute(path)
            .map_err(|_| DatabaseUrlError::NonUtf8Path(path.to_path_buf()))?;
        let text = absolute
            .to_str()
            .ok_or_else(|| DatabaseUrlError::NonUtf8Path(path.to_path_buf()))?;
        // sqlx percent-decodes the file name; escape the characters a URL would otherwise read
        // as escapes, query or fragment.
        let mut encoded = String::with_capacity(text.len());
        for ch in text.chars() {
            match ch {
                '%' => encoded.push_str("%25"),
                '?' => encoded.push_str("%3F"),
                '#' => encoded.push_str("%23"),
                _ => encoded.push(ch),
            }
        }
        Ok(Self(format!("sqlite://{encoded}?mode=rwc")))
    }

    /// The URL scheme (text before the first `:`), lower-cased.
    pub fn scheme(&self) -> Option<String> {
        self.0
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// Which backend the URL selects.
    pub fn backend(&self) -> Result<Backend, DatabaseUrlError> {
        match self.scheme().as_deref() {
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            Some("sqlite") => Ok(Backend::Sqlite),
            Some(scheme) => Err(DatabaseUrlError::UnsupportedScheme(scheme.to_owned())),
            None => Err(DatabaseUrlError::NotAUrl),
        }
    }

    /// The URL with any password (user-info or `password=` query parameter) replaced, for logs.
    pub fn redacted(&self) -> String {
        const MASK: &str = "redacted";
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return "<unparseable database URL>".to_owned();
        };
        if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
            return "<unparseable database URL>".to_owned();
        }
        if url.query_pairs().any(|(key, _)| key == "password") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" {
                        MASK.into()
                    } else {
                        value
                    };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.into()
    }

    /// The real URL, password included. Only the store should need this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        let backend = |url: &str| DatabaseUrl::from(url.to_owned()).backend();
        assert_eq!(backend("postgres://h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("PostgreSQL://h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("sqlite::memory:").unwrap(), Backend::Sqlite);
        let error = backend("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`mysql`"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(matches!(
            backend("no-scheme"),
            Err(DatabaseUrlError::NotAUrl)
        ));
    }

    #[test]
    fn redaction_hides_passwords() {
        let url =
            DatabaseUrl::from("postgres://app:hunter2@db:5432/brain?sslmode=require".to_owned());
        assert_eq!(
            url.redacted(),
            "postgres://app:redacted@db:5432/brain?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let url = DatabaseUrl::from("postgres://db/brain?user=app&password=hunter2".to_owned());
        assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
        let url = DatabaseUrl::from("postgres://db/brain".to_owned());
        assert_eq!(url.redacted(), "postgres://db/brain");
    }
}
