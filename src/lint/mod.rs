//! `serin lint`: offline validation of Flagger manifests with the rules the
//! operator applies. This part reads the inputs, indexes the line of every
//! field, and validates objects against a CRD's schema as the API server
//! does.

pub mod input;
pub mod lines;
pub mod schema;
mod structural;

pub use input::{Input, InputError, STDIN_NAME};
pub use schema::{Schemas, Violation};
