//! The dataset lifecycle ([`Datasets`]): create, import, list, describe, rename, replace,
//! append, delete, pin, and the memory overview. Writes go to a fresh object and are
//! published by a compare-and-set on the dataset's version (see the module docs of
//! [`crate::data`]).

use super::*;

/// The dataset lifecycle half of the [`DataPlane`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Datasets {
    pub(super) frames: Arc<Frames>,
    pub(super) uploads_dir: PathBuf,
    /// One writer at a time per dataset (replace, append, delete); readers never wait on it.
    pub(super) writers: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The application's clock (creation and update times).
    pub(super) clock: Clock,
}

impl Datasets {
    /// A fresh, not yet created file in the uploads directory.
    pub fn stage_upload(&self) -> StagedUpload {
        StagedUpload {
            path: self
                .uploads_dir
                .join(format!("{}.part", uuid::Uuid::new_v4().simple())),
        }
    }

    /// Writes `frame` as a Parquet object under `key`; returns the frame, the object's size and
    /// the frame's in-memory size. A store that fails is a 503 naming the cause (nothing is
    /// recorded then).
    async fn write_object(&self, key: &str, frame: DataFrame) -> Result<(DataFrame, u64, u64)> {
        let (frame, parquet, frame_bytes) = blocking(move || {
            let mut frame = frame;
            let parquet = ingest::parquet_bytes(&mut frame)?;
            let frame_bytes = frame.estimated_size() as u64;
            Ok((frame, parquet, frame_bytes))
        })
        .await?;
        let objects = &self.frames.objects;
        let bytes = objects.put(key, parquet).await.map_err(|error| {
            tracing::error!(key, store = %objects.url(), error = %error, "cannot write a dataset object");
            DataError::Unavailable(format!(
                "the dataset could not be stored: {}; nothing was changed, retry later",
                objects::describe(&error)
            ))
        })?;
        Ok((frame, bytes, frame_bytes))
    }

    /// Deletes an object nothing names (a write that did not commit).
    async fn discard_object(&self, key: &str) {
        if let Err(error) = self.frames.objects.delete(key).await {
            tracing::warn!(key, %error, "cannot delete an uncommitted dataset object (orphaned)");
        }
    }

    fn writer_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut writers = self.writers.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget locks nobody holds any more, so the map does not grow with every dataset ever
        // written.
        writers.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(writers.entry(id.to_owned()).or_default())
    }

    pub async fn list(&self, owner: &str) -> Result<Vec<DatasetInfo>> {
        let records = self.frames.store.visible_datasets(owner).await?;
        records.iter().map(|record| info(record, owner)).collect()
    }

    /// Creates a dataset from a received upload.
    pub async fn create(
        &self,
        owner: &str,
        name: &str,
        scope: Scope,
        upload: StagedUpload,
        options: IngestOptions,
    ) -> Result<DatasetInfo> {
        check_name(name)?;
        let frame = blocking(move || {
            let frame = ingest::read_file(upload.path(), &options);
            drop(upload);
            frame
        })
        .await?;
        self.insert(owner, name, stored_scope(scope), frame).await
    }

    /// Creates a dataset from a file in the import directory.
    pub async fn import(&self, owner: &str, request: ImportDataset) -> Result<DatasetInfo> {
        check_name(&request.name)?;
        let Some(import_dir) = self.frames.limits.import_dir.clone() else {
            return Err(DataError::Forbidden(
                "server-side imports are disabled (no import directory is configured)".to_owned(),
            ));
        };
        let format = match request.format {
            Some(format) => format,
            None => ingest::format_from_file_name(&request.path).ok_or_else(|| {
                DataError::UnsupportedFormat(format!(
                    "cannot tell the format of `{}` from its extension; give `format`",
                    request.path
                ))
            })?,
        };
        let options = self
            .frames
            .limits
            .ingest_options(format, request.schema.clone());
        let relative = request.path.clone();
        let frame = blocking(move || {
            let path = resolve_import(&import_dir, &relative)?;
            ingest::read_file(&path, &options)
        })
        .await?;
        let scope = stored_scope(request.scope.unwrap_or(Scope::Private));
        self.insert(owner, &request.name, scope, frame).await
    }

    /// Writes the Parquet file, then records the dataset; a failed insert removes the file.
    async fn insert(
        &self,
        owner: &str,
        name: &str,
        scope: &str,
        frame: DataFrame,
    ) -> Result<DatasetInfo> {
        let id = uuid::Uuid::new_v4().to_string();
        let key = objects::dataset_key(&id, 1);
        let (frame, bytes, frame_bytes) = self.write_object(&key, frame).await?;
        let now = self.clock.now_ms();
        let record = DatasetRecord {
            id: id.clone(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            scope: scope.to_owned(),
            columns_json: columns_json(&ingest::column_infos(&frame))?,
            row_count: i64::try_from(frame.height()).unwrap_or(i64::MAX),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            frame_bytes: Some(i64::try_from(frame_bytes).unwrap_or(i64::MAX)),
            pinned: false,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            object_key: key.clone(),
        };
        if let Err(error) = self.frames.store.insert_dataset(&record).await {
            // Remove the object unless the row may have been committed after all (a connection
            // lost after the commit): an orphan is harmless, a row without its object is not.
            if matches!(error, StoreError::Conflict(_))
                || matches!(self.frames.store.dataset_object(&id).await, Ok(None))
            {
                self.discard_object(&key).await;
            }
            return Err(match error {
                StoreError::Conflict(_) => name_taken(name, scope == SCOPE_PUBLIC),
                other => other.into(),
            });
        }
        // Fresh data is likely to be queried next: keep it (subject to the budget), unless it is
        // larger than the whole budget (queries scan it; keeping it would evict everything).
        if !self.frames.larger_than_memory(&record) {
            self.frames
                .registry
                .install(&id, &contents(&record), Arc::new(frame), Origin::Written);
            self.frames.plans.sweep();
        }
        info(&record, owner)
    }

    /// The dataset `id` if the caller may read it; 404 otherwise (never 403: that would tell
    /// that another tenant's dataset exists).
    async fn visible(&self, owner: &str, id: &str) -> Result<DatasetRecord> {
        self.frames
            .store
            .visible_dataset(owner, id)
            .await?
            .ok_or_else(|| DataError::NotFound(format!("no dataset with id `{id}`")))
    }

    /// Whether the caller may change dataset `id` (404 if not visible, 403 if only shared):
    /// checked before an upload is received, so nobody streams data into a dataset they cannot
    /// change.
    pub async fn check_writable(&self, owner: &str, id: &str) -> Result<()> {
        self.owned(owner, id).await.map(|_| ())
    }

    /// Like [`Datasets::visible`], but the caller must own it.
    async fn owned(&self, owner: &str, id: &str) -> Result<DatasetRecord> {
        let record = self.visible(owner, id).await?;
        if record.owner != owner {
            return Err(DataError::Forbidden(format!(
                "dataset `{}` is shared with you read-only",
                record.name
            )));
        }
        Ok(record)
    }

    pub async fn describe(&self, owner: &str, id: &str) -> Result<DatasetDescription> {
        let record = self.visible(owner, id).await?;
        let source = self.frames.source(&record).await?;
        let (stats, sample_rows) = blocking(move || match source {
            TableSource::Frame(frame) => {
                let stats = output::stats(&frame)?;
                let sample = output::rows(&frame.head(Some(DESCRIBE_SAMPLE_ROWS)))?;
                Ok((stats, sample))
            }
            TableSource::Scan { .. } => {
                let (scan, schema) = source.plan_input()?;
                let stats = output::scanned_stats(scan.clone(), &schema)?;
                let head = scan
                    .limit(IdxSize::try_from(DESCRIBE_SAMPLE_ROWS).unwrap_or(IdxSize::MAX))
                    .collect_with_engine(Engine::Streaming)
                    .map(|result| result.unwrap_single())
                    .map_err(DataError::polars)?;
                Ok((stats, output::rows(&head)?))
            }
        })
        .await?;
        Ok(DatasetDescription {
            dataset: info(&record, owner)?,
            stats,
            sample_rows,
        })
    }

    pub async fn rename(&self, owner: &str, id: &str, name: &str) -> Result<DatasetInfo> {
        check_name(name)?;
        let public = self.owned(owner, id).await?.scope == SCOPE_PUBLIC;
        match self
            .frames
            .store
            .rename_dataset(owner, id, name, self.clock.now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(DataError::NotFound(format!("no dataset with id `{id}`"))),
            Err(StoreError::Conflict(_)) => return Err(name_taken(name, public)),
            Err(other) => return Err(other.into()),
        }
        info(&self.visible(owner, id).await?, owner)
    }

    /// Writes an upload into dataset `id`, replacing its rows or appending to them.
    pub async fn upload_into(
        &self,
        owner: &str,
        id: &str,
        upload: StagedUpload,
        options: IngestOptions,
        mode: UploadMode,
    ) -> Result<DatasetInfo> {
        self.owned(owner, id).await?;
        let writer = self.writer_lock(id);
        let _writing = writer.lock().await;
        // Read again under the lock: the version this upload replaces or is appended to.
        let record = self.owned(owner, id).await?;
        let existing = match mode {
            UploadMode::Replace => None,
            // A dataset larger than memory is read whole once, for the new contents, not kept.
            UploadMode::Append if self.frames.larger_than_memory(&record) => {
                Some(Arc::new(self.frames.load(&record).await?))
            }
            UploadMode::Append => Some(self.frames.frame(&record).await?),
        };
        let frame = blocking(move || {
            let rows = ingest::read_file(upload.path(), &options);
            drop(upload);
            let Some(existing) = existing else {
                return rows;
            };
            let rows = ingest::conform_for_append(&existing, rows?)?;
            existing
                .vstack(&rows)
                .map_err(DataError::polars)
                .map(|mut frame| {
                    frame.rechunk_mut();
                    frame
                })
        })
        .await?;
        self.store_contents(owner, &record, frame).await
    }

    /// Writes the new contents as a new object, commits it as the next version if `previous`
    /// is still the current one, swaps the frame in, then deletes the replaced object.
    async fn store_contents(
        &self,
        owner: &str,
        previous: &DatasetRecord,
        frame: DataFrame,
    ) -> Result<DatasetInfo> {
        let id = previous.id.as_str();
        let key = objects::dataset_key(id, previous.version + 1);
        let (frame, bytes, frame_bytes) = self.write_object(&key, frame).await?;
        let update = ContentsUpdate {
            columns_json: columns_json(&ingest::column_infos(&frame))?,
            row_count: i64::try_from(frame.height()).unwrap_or(i64::MAX),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            frame_bytes: i64::try_from(frame_bytes).unwrap_or(i64::MAX),
            updated_at_ms: self.clock.now_ms(),
            object_key: key.clone(),
            expected_version: previous.version,
        };
        match self
            .frames
            .store
            .update_dataset_contents(owner, id, &update)
            .await
        {
            Ok(ContentsUpdated::Done) => {}
            Ok(ContentsUpdated::Missing) => {
                self.discard_object(&key).await;
                return Err(DataError::NotFound(format!("no dataset with id `{id}`")));
            }
            Ok(ContentsUpdated::Conflict) => {
                self.discard_object(&key).await;
                return Err(DataError::Conflict(format!(
                    "dataset `{}` was changed by another request while this one was being \
                     stored; nothing was changed by this one, retry it",
                    previous.name
                )));
            }
            Err(error) => {
                // Unknown outcome (e.g. the connection broke after the commit): keep the object
                // unless the row surely does not name it.
                match self.frames.store.dataset_object(id).await {
                    Ok(Some((_, current))) if current == key => {}
                    Err(_) => {}
                    Ok(_) => self.discard_object(&key).await,
                }
                return Err(error.into());
            }
        }
        let current = Contents {
            version: previous.version + 1,
            key,
        };
        if self.frames.exceeds_budget(frame_bytes) {
            // Larger than the budget: queries scan it; the old frame (if any) is stale.
            self.frames.registry.remove(id);
        } else {
            self.frames
                .registry
                .install(id, &current, Arc::new(frame), Origin::Written);
        }
        self.frames.plans.sweep();
        if previous.object_key != current.key {
            self.frames
                .objects
                .delete_replaced(&previous.object_key)
                .await;
        }
        info(&self.visible(owner, id).await?, owner)
    }

    pub async fn delete(&self, owner: &str, id: &str) -> Result<()> {
        self.owned(owner, id).await?;
        let writer = self.writer_lock(id);
        let _writing = writer.lock().await;
        let Some(key) = self.frames.store.delete_dataset(owner, id).await? else {
            return Err(DataError::NotFound(format!("no dataset with id `{id}`")));
        };
        self.frames.registry.remove(id);
        self.frames.plans.sweep();
        self.frames.objects.delete_replaced(&key).await;
        Ok(())
    }

    /// Pins (loads and keeps in memory regardless of the budget) or unpins a dataset.
    pub async fn set_pinned(&self, owner: &str, id: &str, pinned: bool) -> Result<DatasetInfo> {
        let mut record = self.owned(owner, id).await?;
        self.frames
            .store
            .set_dataset_pinned(owner, id, pinned)
            .await?;
        record.pinned = pinned;
        // (A dataset larger than the whole budget is never loaded, pinned or not.)
        if pinned && !self.frames.larger_than_memory(&record) {
            self.frames.frame(&record).await?;
        }
        self.frames.registry.set_pinned(id, pinned);
        self.frames.plans.sweep();
        info(&record, owner)
    }

    /// Memory totals, and the caller's (and public) frames in memory.
    pub async fn memory(&self, shown: FramesShown) -> Result<MemoryStats> {
        let visible: Option<HashSet<String>> = match shown {
            FramesShown::All => None,
            FramesShown::VisibleTo(owner) => Some(
                self.frames
                    .store
                    .visible_datasets(&owner)
                    .await?
                    .into_iter()
                    .map(|record| record.id)
                    .collect(),
            ),
        };
        let snapshot = self.frames.registry.snapshot();
        Ok(MemoryStats {
            budget_bytes: snapshot.budget_bytes,
            used_bytes: snapshot.used_bytes,
            loaded_frames: snapshot.frames.len() as u64,
            loads: snapshot.loads,
            evictions: snapshot.evictions,
            frames: snapshot
                .frames
                .into_iter()
                .filter(|frame| visible.as_ref().is_none_or(|ids| ids.contains(&frame.id)))
                .map(|frame| LoadedFrame {
                    id: frame.id,
                    bytes: frame.bytes,
                    pinned: frame.pinned,
                })
                .collect(),
        })
    }

    /// Stores the sample datasets, unless another brain of the fleet did already.
    pub(super) async fn create_sample(&self, transactions: u64) -> anyhow::Result<()> {
        if !self
            .frames
            .store
            .datasets_of(SAMPLE_OWNER)
            .await?
            .is_empty()
        {
            return Ok(());
        }
        let started = Instant::now();
        let rows = usize::try_from(transactions).context("sample size")?;
        let tables = blocking(move || sample::generate(rows)).await?;
        for (name, frame) in [
            ("stores", tables.stores),
            ("products", tables.products),
            ("transactions", tables.transactions),
        ] {
            match self.insert(SAMPLE_OWNER, name, SCOPE_PUBLIC, frame).await {
                Ok(_) => {}
                // Another brain of the fleet, starting at the same time, stored it first.
                Err(DataError::Conflict(_)) => {
                    tracing::info!(dataset = name, "the sample dataset exists already");
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error))
                        .with_context(|| format!("cannot store the sample dataset `{name}`"));
                }
            }
        }
        tracing::info!(
            transactions,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "generated the sample datasets stores, products, transactions"
        );
        Ok(())
    }
}
