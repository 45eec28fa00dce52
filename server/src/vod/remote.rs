//! `listVideos` from a remote AppView (`APPVIEW_URL`), passed on as it answers.

use serde_json::Value;
use url::Url;

use super::{Vod, VodError};

impl Vod {
    /// `listVideos` from the remote AppView at `APPVIEW_URL`, passing `query` on.
    pub async fn remote_videos(&self, base: &Url, query: &str) -> Result<Value, VodError> {
        let mut url = Url::parse(&format!(
            "{}/listVideos",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| VodError::Unavailable("APPVIEW_URL is not a usable URL".into()))?;
        url.set_query(Some(query).filter(|q| !q.is_empty()));
        let (status, _, body) = self.get(url).await?;
        if !status.is_success() {
            return Err(VodError::Upstream(format!(
                "the AppView at APPVIEW_URL answered {status}"
            )));
        }
        serde_json::from_slice(&body).map_err(|_| {
            VodError::Upstream("the AppView at APPVIEW_URL did not answer JSON".into())
        })
    }
}
