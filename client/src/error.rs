//! What can go wrong talking to edgebrain.

use shared_types::error::ErrorBody;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service answered with an error in the shared shape (`{"error":{"code",…}}`).
    #[error("{} ({status}): {} [request {}]", body.error.code, body.error.message, body.error.request_id)]
    Api { status: u16, body: ErrorBody },
    /// A non-2xx answer that is not in the error shape (a proxy in front of the edge, say).
    #[error("HTTP {status}: {body}")]
    UnexpectedStatus {
        status: u16,
        /// The start of the body ([`crate::Limits::error_body_bytes`] at most).
        body: String,
    },
    /// The request could not be sent or the response not read (connection, TLS, timeout).
    #[error("transport: {0}")]
    Transport(#[from] reqwest::Error),
    /// A 2xx body that is not what the contract says.
    #[error("unexpected response body: {0}")]
    Decode(String),
    /// A stream that broke off or carried something unreadable.
    #[error("stream: {0}")]
    Stream(String),
    /// A response over the client's limit for its kind.
    #[error("the response exceeds the client's limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// Bad input, caught before anything was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Reading a local file (uploads).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The shared error body, when the service sent one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Api { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::UnexpectedStatus { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}
