//! Pieces of UI shared by several pages: the site chrome and the video cards.

mod header;
mod nav;
mod notice;
mod video_card;

pub use header::SiteHeader;
pub use nav::SiteNav;
pub use notice::{EmptyState, ErrorNotice};
pub use video_card::{VideoCard, VideoGrid};
