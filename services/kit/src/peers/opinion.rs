//! The opinion service as other services see it: the sentiment analyser for free text.

use crate::ApiError;
use crate::auth::{Authenticator, Role};
use crate::client::{Caller, lazy_channel};
use hcrm_proto::opinion::mention_service_client::MentionServiceClient;
use hcrm_proto::opinion::{AnalyzeTextRequest, TextAnalysis};
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Opinion {
    client: MentionServiceClient<Channel>,
    caller: Caller,
}

impl Opinion {
    /// A client at `url` calling as `service:{service}`.
    pub fn new(service: &str, url: &str, authenticator: Arc<Authenticator>) -> anyhow::Result<Self> {
        Ok(Self {
            client: MentionServiceClient::new(lazy_channel(url)?),
            caller: Caller::new(service, &[Role::Integration], authenticator),
        })
    }

    /// Sentiment, topics and watched entities of `text`.
    pub async fn analyze(&self, text: &str) -> Result<TextAnalysis, ApiError> {
        let request = self
            .caller
            .request(AnalyzeTextRequest { text: text.to_string() }, CALL_TIMEOUT)?;
        match self.client.clone().analyze_text(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(match status.code() {
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
                    ApiError::Unavailable(format!("opinion service: {}", status.message()))
                }
                code => ApiError::internal(anyhow::anyhow!(
                    "opinion service answered {code:?}: {}",
                    status.message()
                )),
            }),
        }
    }
}
