//! The session file: the edge's session token per deployment URL, so consecutive commands act
//! as the same caller (and see the datasets and threads they made).
//!
//! Format: JSON `{"sessions": {"<base url>": "<token>"}}`, written atomically (temporary file +
//! rename) with mode 600 on Unix. Default location: `<config dir>/edgebrain/session.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Largest session file read (it holds a few tokens; anything bigger is not ours).
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug)]
pub(crate) struct SessionFile {
    path: PathBuf,
    sessions: BTreeMap<String, String>,
}

impl SessionFile {
    /// The default path, if the platform has a config directory.
    pub(crate) fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|dir| dir.join("edgebrain").join("session.json"))
    }

    /// Loads `path`; a missing file is an empty one.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let mut sessions = BTreeMap::new();
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                anyhow::bail!(
                    "session file {} is over {MAX_FILE_BYTES} bytes",
                    path.display()
                )
            }
            Ok(_) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading session file {}", path.display()))?;
                let value: Value = serde_json::from_str(&text)
                    .with_context(|| format!("session file {} is not JSON", path.display()))?;
                if let Some(map) = value.get("sessions").and_then(Value::as_object) {
                    for (url, token) in map {
                        if let Some(token) = token.as_str() {
                            sessions.insert(url.clone(), token.to_owned());
                        }
                    }
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("reading session file {}", path.display()));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            sessions,
        })
    }

    pub(crate) fn get(&self, url: &str) -> Option<&str> {
        self.sessions.get(url).map(String::as_str)
    }

    /// Stores `token` for `url` and writes the file if it changed.
    pub(crate) fn save(&mut self, url: &str, token: &str) -> Result<()> {
        if self.get(url) == Some(token) {
            return Ok(());
        }
        self.sessions.insert(url.to_owned(), token.to_owned());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&json!({ "sessions": self.sessions }))?;
        let temporary = self.path.with_extension("json.tmp");
        write_private(&temporary, text.as_bytes())
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sessions_persist_per_url() {
        let dir = std::env::temp_dir().join(format!("edgebrain-cli-test-{}", std::process::id()));
        let path = dir.join("nested/session.json");
        let mut file = SessionFile::load(&path).unwrap();
        assert_eq!(file.get("http://a"), None);
        file.save("http://a", "v1.k.1").unwrap();
        file.save("http://b", "v1.k.2").unwrap();
        let again = SessionFile::load(&path).unwrap();
        assert_eq!(again.get("http://a"), Some("v1.k.1"));
        assert_eq!(again.get("http://b"), Some("v1.k.2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not json").unwrap();
        assert!(SessionFile::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
