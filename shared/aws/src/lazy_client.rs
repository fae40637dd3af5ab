//! SDK clients made when first used.

use std::sync::OnceLock;

use aws_config::SdkConfig;

/// An SDK client made the first time it is used. Building one costs a
/// cold start ~0.2 ms (each parses its service's endpoint rules), and most
/// invocations of a function never call some of the services it may call:
/// an ingest request that reaches no milestone publishes nothing.
pub struct LazyClient<C> {
    client: OnceLock<C>,
    make: Option<Maker<C>>,
}

/// The configuration and the SDK's `Client::new` that build a client.
type Maker<C> = (SdkConfig, fn(&SdkConfig) -> C);

impl<C> LazyClient<C> {
    /// A client `make(config)` will build on first use (`make` is the SDK's `Client::new`).
    pub fn new(config: &SdkConfig, make: fn(&SdkConfig) -> C) -> Self {
        LazyClient {
            client: OnceLock::new(),
            make: Some((config.clone(), make)),
        }
    }

    pub fn get(&self) -> &C {
        self.client.get_or_init(|| {
            let (config, make) = self.make.as_ref().expect("a client that is not built has a maker");
            make(config)
        })
    }
}

/// A client built already.
impl<C> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        LazyClient {
            client: OnceLock::from(client),
            make: None,
        }
    }
}
