//! One module per page, each with the server functions it calls.

mod about;
mod admin;
mod embed;
mod home;
mod not_found;
mod profile;
mod search;
mod tag;
mod watch;

pub use about::AboutPage;
pub use admin::{AdminPage, viewer_is_admin};
pub use embed::EmbedPage;
pub use home::HomePage;
pub use not_found::NotFoundPage;
pub use profile::ProfilePage;
pub use search::SearchPage;
pub use tag::TagPage;
pub use watch::{WatchData, WatchPage};
