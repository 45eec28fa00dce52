//! One module per page, each with the server functions it calls.

mod about;
mod home;
mod not_found;
mod search;

pub use about::AboutPage;
pub use home::HomePage;
pub use not_found::NotFoundPage;
pub use search::SearchPage;
