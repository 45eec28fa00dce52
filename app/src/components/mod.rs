//! Pieces of UI shared by several pages: the site chrome, video cards, avatars, the
//! player, rich text.

mod avatar;
mod header;
mod nav;
mod notice;
mod player;
mod rich_text;
mod video_card;

pub use avatar::Avatar;
pub use header::{NavToggle, SiteHeader};
pub use nav::SiteNav;
pub use notice::{EmptyState, ErrorNotice, NotFoundNotice};
pub use player::Player;
pub use rich_text::RichText;
pub use video_card::{VideoCard, VideoGrid};
