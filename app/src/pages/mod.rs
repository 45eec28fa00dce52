//! One module per page, each with the server functions it calls.

mod about;
mod admin;
mod home;
mod not_found;
mod search;

pub use about::AboutPage;
pub use admin::AdminPage;
pub use home::HomePage;
pub use not_found::NotFoundPage;
pub use search::SearchPage;
