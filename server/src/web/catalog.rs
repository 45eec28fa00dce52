//! What the pages read, in-process: the `app` crate's [`Catalog`] trait over the video
//! index. Database failures reach pages only as [`AppError::Unavailable`], after being
//! logged with their cause.

use std::sync::Arc;

use app::catalog::ssr::Catalog;
use app::catalog::{
    CreatorProfile, Licence, TextLink, VideoDetails, VideoPage, VideoSummary, tag_path,
};
use app::error::AppError;

use crate::appview::metadata::{Feature, VideoMeta, warning_label};
use crate::appview::query::{CreatorRow, VideoQuery, VideoView};
use crate::appview::{AppView, AppViewError, VideoUri};
use crate::atproto::syntax::{self, AtIdentifier};

/// The catalog the pages read.
pub struct SiteCatalog {
    appview: Arc<AppView>,
    public_url: String,
}

impl SiteCatalog {
    /// The catalog over `appview`, linking absolutely to `public_url`.
    pub fn new(appview: Arc<AppView>, public_url: String) -> Self {
        Self {
            appview,
            public_url,
        }
    }

    async fn page(&self, query: VideoQuery) -> Result<VideoPage, AppError> {
        let page = self
            .appview
            .index()
            .list(&query)
            .await
            .map_err(unavailable)?;
        Ok(VideoPage {
            videos: page.videos.into_iter().map(summary).collect(),
            cursor: page.cursor,
        })
    }

    /// The video `rkey` of `actor` (handle or DID), when both are registered and indexed;
    /// [`AppError::Gone`] when it is withheld (taken down, or the account is inactive).
    async fn find(&self, actor: &str, rkey: &str) -> Result<Option<VideoView>, AppError> {
        let Some(key) = Self::key(actor) else {
            return Ok(None);
        };
        let index = self.appview.index();
        if let Some(video) = index.video_of(&key, rkey).await.map_err(unavailable)? {
            return Ok(Some(video));
        }
        // Not shown: a withheld video of a registered creator is gone, not unknown.
        let did = match self.appview.registered(&key).await {
            Ok(creator) => creator.did,
            Err(AppViewError::NotRegistered(_)) => return Ok(None),
            Err(err) => return Err(unavailable(err)),
        };
        let Ok(uri) = VideoUri::new(did, rkey) else {
            return Ok(None);
        };
        if index.withheld(&uri).await.map_err(unavailable)?.is_some() {
            return Err(AppError::Gone);
        }
        Ok(None)
    }

    /// What only the watch page shows: facets as links (a mentioned creator we index to
    /// their page here, anyone else to Bluesky), tags, licence, credit, activity and
    /// the transcript.
    async fn details(&self, uri: &VideoUri, meta: VideoMeta) -> Result<VideoDetails, AppError> {
        let mut here: Vec<(String, bool)> = Vec::new();
        let mut links = Vec::with_capacity(meta.facets.len());
        for facet in meta.facets {
            let (href, external) = match facet.feature {
                Feature::Link { uri } => (uri, true),
                Feature::Tag { tag } => (tag_path(&tag), false),
                Feature::Mention { did } => {
                    let indexed = match here.iter().find(|(known, _)| *known == did) {
                        Some((_, indexed)) => *indexed,
                        None if here.len() < MAX_MENTION_LOOKUPS => {
                            let indexed = self
                                .appview
                                .index()
                                .creator(&did)
                                .await
                                .map_err(unavailable)?
                                .is_some();
                            here.push((did.clone(), indexed));
                            indexed
                        }
                        None => false,
                    };
                    if indexed {
                        (format!("/profile/{did}"), false)
                    } else {
                        (format!("https://bsky.app/profile/{did}"), true)
                    }
                }
            };
            links.push(TextLink {
                start: facet.start,
                end: facet.end,
                href,
                external,
            });
        }
        let transcript = self
            .appview
            .index()
            .transcript(uri)
            .await
            .map_err(unavailable)?;
        Ok(VideoDetails {
            links,
            tags: meta.tags,
            licence: meta
                .content_rights
                .as_ref()
                .and_then(|rights| rights.licence())
                .map(|(name, url)| Licence { name, url }),
            credit: meta.content_rights.as_ref().and_then(|r| r.credit()),
            activity: meta.activity.as_ref().map(|a| a.label()),
            transcript,
        })
    }

    /// The stored form of `actor`: a DID as it is, a handle normalised.
    fn key(actor: &str) -> Option<String> {
        match syntax::actor(actor).ok()? {
            AtIdentifier::Did(did) => Some(did.to_string()),
            AtIdentifier::Handle(handle) => Some(handle.to_string()),
        }
    }
}

fn unavailable(err: impl Into<AppViewError>) -> AppError {
    match err.into() {
        AppViewError::InvalidRequest(message) => AppError::BadRequest(message),
        err => {
            tracing::error!(error = %err, "reading the video index failed");
            AppError::Unavailable
        }
    }
}

fn summary(video: VideoView) -> VideoSummary {
    VideoSummary {
        uri: video.uri.to_string(),
        did: video.did.to_string(),
        rkey: video.rkey,
        handle: video.handle,
        creator_name: video.creator_name,
        avatar_cid: video.avatar_cid.map(|cid| cid.to_string()),
        title: video.title,
        description: video.description,
        duration_ms: video.duration_ms.and_then(|ms| u64::try_from(ms).ok()),
        created_at: video.created_at,
        warnings: video
            .meta
            .content_warnings
            .iter()
            .map(|name| warning_label(name))
            .collect(),
    }
}

/// Mentions of accounts beyond this many link to Bluesky without a lookup.
const MAX_MENTION_LOOKUPS: usize = 20;

fn profile(row: CreatorRow) -> CreatorProfile {
    CreatorProfile {
        did: row.did.to_string(),
        handle: row.handle,
        display_name: row.display_name,
        description: row.description,
        avatar_cid: row.avatar_cid.map(|cid| cid.to_string()),
    }
}

#[async_trait::async_trait]
impl Catalog for SiteCatalog {
    async fn recent_videos(
        &self,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<VideoPage, AppError> {
        self.page(VideoQuery {
            limit,
            cursor,
            ..VideoQuery::default()
        })
        .await
    }

    async fn search_videos(
        &self,
        query: &str,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<VideoPage, AppError> {
        self.page(VideoQuery {
            limit,
            cursor,
            q: Some(query.to_string()),
            ..VideoQuery::default()
        })
        .await
    }

    async fn tagged_videos(
        &self,
        tag: &str,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<VideoPage, AppError> {
        self.page(VideoQuery {
            limit,
            cursor,
            tag: Some(tag.to_string()),
            ..VideoQuery::default()
        })
        .await
    }

    async fn video(&self, actor: &str, rkey: &str) -> Result<Option<VideoSummary>, AppError> {
        Ok(self.find(actor, rkey).await?.map(summary))
    }

    async fn watched_video(
        &self,
        actor: &str,
        rkey: &str,
    ) -> Result<Option<(VideoSummary, VideoDetails)>, AppError> {
        let Some(video) = self.find(actor, rkey).await? else {
            return Ok(None);
        };
        let details = self.details(&video.uri, video.meta.clone()).await?;
        Ok(Some((summary(video), details)))
    }

    async fn related(
        &self,
        video: &VideoSummary,
        limit: u32,
    ) -> Result<Vec<VideoSummary>, AppError> {
        let Ok(uri) = video.uri.parse::<VideoUri>() else {
            return Ok(Vec::new());
        };
        Ok(self
            .appview
            .index()
            .related(&uri, limit)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(summary)
            .collect())
    }

    async fn creator(&self, actor: &str) -> Result<Option<CreatorProfile>, AppError> {
        let Some(key) = Self::key(actor) else {
            return Ok(None);
        };
        let row = self
            .appview
            .index()
            .creator(&key)
            .await
            .map_err(unavailable)?;
        Ok(row.map(profile))
    }

    async fn creator_videos(
        &self,
        did: &str,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<VideoPage, AppError> {
        let did = syntax::did(did).map_err(|err| AppError::BadRequest(err.to_string()))?;
        self.page(VideoQuery {
            limit,
            cursor,
            creator: Some(did),
            ..VideoQuery::default()
        })
        .await
    }

    fn public_url(&self) -> String {
        self.public_url.clone()
    }

    fn now(&self) -> String {
        syntax::now()
    }
}
