//! A `multipart/form-data` upload read field by field, shared by the dataset and document
//! uploads: a body past the endpoint's limit is refused with the endpoint's own 413, any other
//! framing problem is a 400 naming it.

use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use futures_util::{Stream, StreamExt};

use super::{Error, Result};

/// A multipart form being read.
pub(crate) struct UploadForm {
    multipart: Multipart,
    fields: FieldReader,
}

/// Reads one field's content, mapping failures like the form does. `Copy`, so that it can be
/// used while a field borrows the form.
#[derive(Clone, Copy)]
pub(crate) struct FieldReader {
    limit: u64,
    too_large: fn(u64) -> Error,
}

impl UploadForm {
    /// Starts reading `request`'s form; `too_large(limit)` is the endpoint's 413.
    pub(crate) async fn from_request<S: Send + Sync>(
        request: Request,
        state: &S,
        limit: u64,
        too_large: fn(u64) -> Error,
    ) -> Result<Self> {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
        Ok(Self {
            multipart,
            fields: FieldReader { limit, too_large },
        })
    }

    /// How to read the fields [`Self::next_field`] returns.
    pub(crate) fn fields(&self) -> FieldReader {
        self.fields
    }

    /// The next field, or `None` after the last.
    pub(crate) async fn next_field(&mut self) -> Result<Option<Field<'_>>> {
        let fields = self.fields;
        self.multipart
            .next_field()
            .await
            .map_err(|error| fields.error(error))
    }
}

impl FieldReader {
    /// The whole field as text (form values such as `name`).
    pub(crate) async fn text(self, field: Field<'_>) -> Result<String> {
        let text = field.text().await.map_err(|error| self.error(error))?;
        if text.contains('\0') {
            return Err(Error::BadRequest(
                "a form field holds a NUL character, which no name or text may contain".to_owned(),
            ));
        }
        Ok(text)
    }

    /// The field's content as it arrives (the `file` field), never held whole in memory.
    pub(crate) fn chunks(self, field: Field<'_>) -> impl Stream<Item = Result<Bytes>> + '_ {
        field.map(move |chunk| chunk.map_err(|error| self.error(error)))
    }

    fn error(self, error: MultipartError) -> Error {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (self.too_large)(self.limit)
        } else {
            Error::BadRequest(format!("malformed multipart body: {}", error.body_text()))
        }
    }
}
