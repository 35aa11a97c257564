//! Who is asking, and what they may do: one policy for every request.
//!
//! Every route declares its policy in its OpenAPI operation (`x-bydata-policy`: `public`, `viewer`, `editor`,
//! `admin`, `platform`, or `device` — a device's own credentials, see [`device`]); [`policy::authorize`], a middleware in front of every route, looks the matched route
//! up in the generated document, authenticates the request (an API key in `Authorization`, or a login
//! session's cookie), checks the principal holds the route's least role somewhere, and hands the handler a
//! [`Principal`]. A route without a policy answers 500 and fails the policy test. What the route's objects
//! belong to is checked by the handler against the same principal ([`Principal::require`]), which answers
//! 404 for another organisation's objects, so their existence does not leak.
pub(crate) mod device;
pub(crate) mod keys;
pub(crate) mod policy;
mod principal;

pub use keys::AuthCache;
pub(crate) use principal::{Actor, Principal};
