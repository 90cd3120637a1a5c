//! The one streaming HTTP call both providers make: post the request as JSON with the key in a
//! header, wait (bounded) for the response head, decode the SSE body and fail it when the
//! provider goes silent. What differs between providers is their [`WireFormat`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderName;
use serde_json::Value;

use super::sse::{FrameParser, decode_events};
use super::{ApiKey, ChatProvider, ChatRequest, EventStream, ProviderError, with_idle_timeout};

/// Timeouts of one provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderTimeouts {
    /// Until the response head.
    pub connect: Duration,
    /// Between two stream chunks.
    pub idle: Duration,
}

/// One provider protocol: where a call goes, how the key is sent, the JSON body it takes and
/// the parser of the stream it answers with.
pub trait WireFormat: fmt::Debug + Send + Sync + 'static {
    /// Appended to the configured base URL.
    const PATH: &'static str;
    /// The header that carries the API key, and the text before the key in it.
    const KEY_HEADER: (HeaderName, &'static str);
    /// Further headers every call sends.
    const HEADERS: &'static [(&'static str, &'static str)];
    type Parser: FrameParser + Default;

    /// The JSON body of a streaming call.
    fn request_body(request: &ChatRequest) -> Value;
}

/// A provider reached over HTTP that speaks `W`.
#[derive(Debug)]
pub struct HttpProvider<W> {
    name: String,
    endpoint: String,
    api_key: Option<ApiKey>,
    client: reqwest::Client,
    timeouts: ProviderTimeouts,
    wire: PhantomData<W>,
}

impl<W: WireFormat> HttpProvider<W> {
    pub fn new(
        name: String,
        base_url: &str,
        api_key: Option<ApiKey>,
        client: reqwest::Client,
        timeouts: ProviderTimeouts,
    ) -> Self {
        Self {
            name,
            endpoint: format!("{}{}", base_url.trim_end_matches('/'), W::PATH),
            api_key,
            client,
            timeouts,
            wire: PhantomData,
        }
    }
}

impl<W: WireFormat> ChatProvider for HttpProvider<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn stream_chat(
        &self,
        request: ChatRequest,
    ) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        async move {
            let mut http = self
                .client
                .post(&self.endpoint)
                .json(&W::request_body(&request));
            for &(name, value) in W::HEADERS {
                http = http.header(name, value);
            }
            if let Some(key) = &self.api_key {
                let (header, prefix) = W::KEY_HEADER;
                http = http.header(header, super::key_header(&self.name, key, prefix)?);
            }
            let response = super::send_provider_request(
                &self.name,
                http,
                self.timeouts.connect,
                self.api_key.as_ref(),
            )
            .await?;
            let events = decode_events(self.name.clone(), response, W::Parser::default());
            Ok(with_idle_timeout(
                self.name.clone(),
                events,
                self.timeouts.idle,
            ))
        }
        .boxed()
    }
}
