//! Where datasets' Parquet files live: an object store chosen by URL (`--object-store-url`).
//!
//! - no URL (the default) or `file:///path`: a local folder — `<data-dir>` by default, so a
//!   dataset's object `datasets/<id>/v<version>-<nonce>.parquet` is a file under
//!   `<data-dir>/datasets/`, embedded as before. A folder shared by several brains (NFS) works
//!   the same way.
//! - `s3://bucket[/prefix]`: any S3-compatible service (AWS S3, Cloudflare R2, MinIO), set up
//!   by the usual `AWS_*` environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, …,
//!   read by the `object_store` crate) and then by [`ObjectStoreSettings::options`].
//!
//! Objects are written once under a fresh key and never overwritten, and a dataset's database
//! row is what publishes one (`store::datasets`, `object_key`): an object no row names yet is
//! invisible to every reader. A single S3 PUT and a completed multipart upload are atomic; the
//! local store writes a staged file (`<key>#<n>`) and renames it into place (then this module
//! syncs it to disk). So no reader ever sees a half-written object.
//!
//! Reads are bounded: the object's size must be the one its row recorded, checked from the
//! object's metadata before its body is fetched, so a foreign or damaged object is an error,
//! never an unbounded download.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, GetResult, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};

/// The folder (key prefix) of the datasets' objects.
const DATASETS: &str = "datasets";
/// Objects larger than this are uploaded in parts (S3 multipart; each part retried alone).
const MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;
/// Size of one multipart part.
const PART_BYTES: usize = 16 * 1024 * 1024;
/// How long the startup probe (write, read, delete a small object) may take in all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why reading an object failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("object `{0}` does not exist")]
    Missing(String),
    #[error("object `{key}` has {found} bytes, its dataset recorded {expected}")]
    WrongSize {
        key: String,
        found: u64,
        expected: u64,
    },
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// Writing the local copy of a download failed.
    #[error("cannot write the local copy: {0}")]
    Local(#[from] std::io::Error),
}

/// The object store of datasets' Parquet files. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    /// What the store is, for messages and logs (a URL without secrets).
    url: String,
    /// The folder of a local store: objects written there are synced to disk.
    local_root: Option<PathBuf>,
}

impl Objects {
    /// Opens the store `url` names (`--object-store-url`; `None`: the folder `data_dir`), with
    /// `options` (`object_store` S3 settings such as `aws_endpoint`, applied over the
    /// environment's `AWS_*` variables). Fails on a URL it cannot use (scheme, bucket,
    /// settings); it does not touch the network: see [`Objects::probe`].
    pub fn open(
        url: Option<&str>,
        options: &[(String, String)],
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let Some(url) = url.filter(|url| !url.trim().is_empty()) else {
            return Self::local(data_dir.to_path_buf());
        };
        let parsed = url::Url::parse(url)
            .with_context(|| format!("--object-store-url `{url}` is not a URL"))?;
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|()| {
                    anyhow::anyhow!("--object-store-url `{url}` is not a local absolute path")
                })?;
                Self::local(path)
            }
            "s3" | "s3a" => Self::s3(url, &parsed, options),
            other => anyhow::bail!(
                "--object-store-url `{url}`: unsupported scheme `{other}` (use file:///path or \
                 s3://bucket/prefix)"
            ),
        }
    }

    fn local(root: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create the object folder {}", root.display()))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .with_context(|| format!("cannot open the object folder {}", root.display()))?;
        Ok(Self {
            store: Arc::new(store),
            url: format!("file://{}", root.display()),
            local_root: Some(root),
        })
    }

    fn s3(url: &str, parsed: &url::Url, options: &[(String, String)]) -> anyhow::Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_url(url)
            // Fail within seconds, not the crate's default of minutes: requests are retried a
            // few times, then the caller is answered 503.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(10),
            });
        // Connections fail fast; a whole transfer (large objects) may take minutes. Set as
        // settings, not `ClientOptions`, so the environment's client settings (`AWS_ALLOW_HTTP`,
        // proxies) stay as `from_env` read them.
        for (key, value) in [("connect_timeout", "5s"), ("timeout", "300s")] {
            builder = builder.with_config(key.parse()?, value);
        }
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key
                .parse()
                .with_context(|| format!("unknown object store setting `{key}`"))?;
            builder = builder.with_config(key, value);
        }
        let store = builder
            .build()
            .with_context(|| format!("cannot set up the object store {url}"))?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Self {
            store,
            url: url.to_owned(),
            local_root: None,
        })
    }

    /// The store's URL (`file:///…` or `s3://bucket/prefix`), for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The file behind `key` when the store is a local folder (`None` for remote stores).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.local_root.as_ref().map(|root| root.join(key))
    }

    /// Writes, reads back and deletes a small object, so a store that is unreachable, refuses
    /// the credentials, lacks the bucket or the permissions fails the start with its URL and
    /// the cause, instead of failing the first upload.
    pub async fn probe(&self, instance: &str) -> anyhow::Result<()> {
        let key = format!("_probe/{instance}");
        let body = format!("edgebrain start probe {instance}");
        let checked = async {
            self.put(&key, body.clone().into_bytes())
                .await
                .context("writing a probe object failed")?;
            let read = self
                .get(&key, body.len() as u64)
                .await
                .context("reading the probe object back failed")?;
            anyhow::ensure!(
                read.as_ref() == body.as_bytes(),
                "the probe object read back differs from what was written"
            );
            self.delete(&key)
                .await
                .context("deleting the probe object failed")
        };
        let result = match tokio::time::timeout(PROBE_TIMEOUT, checked).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "no answer within {} s (unreachable?)",
                PROBE_TIMEOUT.as_secs()
            )),
        };
        result.with_context(|| format!("the object store {} is not usable", self.url))
    }

    /// Stores `bytes` under `key` (a fresh key: objects are never overwritten), atomically, and
    /// returns the size.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<u64, object_store::Error> {
        let location = ObjectPath::from(key);
        let size = bytes.len() as u64;
        if bytes.len() <= MULTIPART_THRESHOLD {
            self.store.put(&location, PutPayload::from(bytes)).await?;
        } else {
            let upload = self.store.put_multipart(&location).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            writer.put(Bytes::from(bytes));
            writer.finish().await?;
        }
        if let Some(path) = self.local_path(key) {
            // The rename is in place; make the contents durable before the row names them.
            tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
                .await
                .map_err(|error| object_store::Error::JoinError { source: error })?
                .map_err(|source| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(source),
                })?;
        }
        Ok(size)
    }

    /// The object `key`, which must have `expected` bytes (checked before its body is read).
    pub async fn get(&self, key: &str, expected: u64) -> Result<Bytes, ReadError> {
        Ok(self.get_checked(key, expected).await?.bytes().await?)
    }

    /// The object `key`, its size checked against `expected` before any of its body is read.
    async fn get_checked(&self, key: &str, expected: u64) -> Result<GetResult, ReadError> {
        let result = match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ReadError::Missing(key.to_owned()));
            }
            Err(other) => return Err(other.into()),
        };
        if result.meta.size != expected {
            return Err(ReadError::WrongSize {
                key: key.to_owned(),
                found: result.meta.size,
                expected,
            });
        }
        Ok(result)
    }

    /// Copies the object `key`, which must have `expected` bytes, into the file `dest` chunk by
    /// chunk (never the whole object in memory): written under a name of its own and renamed
    /// into place once complete, so a reader of `dest` never sees part of it.
    pub async fn download(&self, key: &str, expected: u64, dest: &Path) -> Result<(), ReadError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let result = self.get_checked(key, expected).await?;
        let wrong_size = |found| ReadError::WrongSize {
            key: key.to_owned(),
            found,
            expected,
        };
        let partial = dest.with_extension(format!("{}.partial", uuid::Uuid::new_v4().simple()));
        let copied = async {
            let mut file = tokio::fs::File::create(&partial).await?;
            let mut stream = result.into_stream();
            let mut written = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                written += chunk.len() as u64;
                if written > expected {
                    return Err(wrong_size(written));
                }
                file.write_all(&chunk).await?;
            }
            if written != expected {
                return Err(wrong_size(written));
            }
            file.flush().await?;
            tokio::fs::rename(&partial, dest).await?;
            Ok(())
        }
        .await;
        if copied.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        copied
    }

    /// Deletes `key`; an object already gone is fine. In a local store the key's folder goes
    /// too once empty (`datasets/<id>/`; never a folder above it).
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        let folder = key.rsplit_once('/').map(|(folder, _)| folder);
        if let Some(folder) = folder.filter(|folder| *folder != DATASETS)
            && let Some(folder) = self.local_path(folder)
        {
            // Fails while the folder holds another object: then it stays, as it should.
            let _ = tokio::fs::remove_dir(folder).await;
        }
        Ok(())
    }

    /// Deletes `key` after its dataset stopped naming it; a failure only leaves an orphan
    /// behind (logged), never breaks the operation that replaced it.
    pub async fn delete_replaced(&self, key: &str) {
        if let Err(error) = self.delete(key).await {
            tracing::warn!(key, store = %self.url, %error, "cannot delete a replaced dataset object (orphaned)");
        }
    }
}

/// The key of a dataset's contents written at `version`: under the dataset's own prefix, with
/// the version for operators and a nonce so that two brains writing the same version at once
/// (one of them will lose the compare-and-set) never write the same object.
pub fn dataset_key(id: &str, version: i64) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{DATASETS}/{id}/v{version}-{}.parquet", &nonce[..12])
}

/// A short, client-safe description of a store failure (the full error goes to the log).
pub fn describe(error: &object_store::Error) -> &'static str {
    match error {
        object_store::Error::NotFound { .. } => "the object or its bucket does not exist",
        object_store::Error::PermissionDenied { .. } => "access to the object store was denied",
        object_store::Error::Unauthenticated { .. } => "the object store refused the credentials",
        _ => "the object store did not answer or failed",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_store_or_are_refused_with_their_name() {
        let dir = std::env::temp_dir().join(format!("edgebrain-objects-{}", uuid::Uuid::new_v4()));
        let default = Objects::open(None, &[], &dir).unwrap();
        assert_eq!(default.local_path("a/b"), Some(dir.join("a/b")));
        let s3 = Objects::open(Some("s3://bucket/some/prefix"), &[], &dir).unwrap();
        assert_eq!(s3.url(), "s3://bucket/some/prefix");
        assert_eq!(s3.local_path("a"), None);
        for bad in ["gs://bucket", "not a url", "ftp://host/x"] {
            let error = format!("{:#}", Objects::open(Some(bad), &[], &dir).unwrap_err());
            assert!(error.contains(bad), "{error}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn dataset_keys_carry_the_version_and_never_repeat() {
        let a = dataset_key("id", 3);
        let b = dataset_key("id", 3);
        assert!(
            a.starts_with("datasets/id/v3-") && a.ends_with(".parquet"),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn the_local_store_round_trips_and_checks_sizes() {
        let dir = std::env::temp_dir().join(format!("edgebrain-objects-{}", uuid::Uuid::new_v4()));
        let objects = Objects::open(None, &[], &dir).unwrap();
        objects.probe("test").await.unwrap();
        objects
            .put("datasets/x/v1.parquet", b"abc".to_vec())
            .await
            .unwrap();
        assert_eq!(
            &objects.get("datasets/x/v1.parquet", 3).await.unwrap()[..],
            b"abc"
        );
        assert!(matches!(
            objects.get("datasets/x/v1.parquet", 4).await,
            Err(ReadError::WrongSize {
                found: 3,
                expected: 4,
                ..
            })
        ));
        objects.delete("datasets/x/v1.parquet").await.unwrap();
        objects.delete("datasets/x/v1.parquet").await.unwrap();
        assert!(matches!(
            objects.get("datasets/x/v1.parquet", 3).await,
            Err(ReadError::Missing(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
