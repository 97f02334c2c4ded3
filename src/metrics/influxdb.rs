//! The influxdb provider (not implemented yet: building one is refused).

use tokio::time::Instant;

use super::provider::{Config, Provider, QueryError, QueryFuture};

pub struct InfluxDb;

impl InfluxDb {
    pub fn new(_config: &Config<'_>) -> Result<InfluxDb, String> {
        Err("provider influxdb is not supported by Serin yet".to_owned())
    }
}

impl Provider for InfluxDb {
    fn run_query<'a>(&'a self, _query: &'a str, _deadline: Instant) -> QueryFuture<'a, f64> {
        Box::pin(async { Err(QueryError::Failed("not supported".to_owned())) })
    }

    fn is_online(&self, _deadline: Instant) -> QueryFuture<'_, ()> {
        Box::pin(async { Err(QueryError::Failed("not supported".to_owned())) })
    }
}
