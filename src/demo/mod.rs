//! The embedded demo: Flagger's NGINX walkthrough replayed on the in-memory
//! simulated cluster.

pub mod render;
