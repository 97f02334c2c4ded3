//! Kubernetes plumbing shared by the adapters: the rate-limited clients,
//! the watch caches, the status subresource, events and leader election.

pub mod cache;
pub mod client;
pub mod events;
pub mod interest;
pub mod leader;
pub mod limiter;
pub mod status;
pub mod status_ext;
pub mod write;

pub use cache::Caches;
pub use client::KubeClients;
