//! A guest of either contract version: `sluice:activity@0.2.0` (current) or
//! `@0.1.0` (still loaded). Each is instantiated and called through its own
//! bindings; the outcome comes back as the current type.

use wasmtime::Store;

use super::bindings::{self, Outcome, Payload, v1};
use super::compat;
use super::state::StoreState;

/// The export of each version, newest first.
pub const ACTIVITY_EXPORTS: [&str; 2] = ["sluice:activity/activity@0.2.0", "sluice:activity/activity@0.1.0"];

/// A component ready to instantiate.
pub(crate) enum GuestPre {
    V2(bindings::ActivityComponentPre<StoreState>),
    V1(v1::ActivityComponentPre<StoreState>),
}

/// An instance.
pub(crate) enum Guest {
    V2(bindings::ActivityComponent),
    V1(v1::ActivityComponent),
}

impl GuestPre {
    pub async fn instantiate_async(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Guest> {
        Ok(match self {
            GuestPre::V2(pre) => Guest::V2(pre.instantiate_async(store).await?),
            GuestPre::V1(pre) => Guest::V1(pre.instantiate_async(store).await?),
        })
    }

    /// The contract version it was built against.
    pub fn version(&self) -> &'static str {
        match self {
            GuestPre::V2(_) => "0.2.0",
            GuestPre::V1(_) => "0.1.0",
        }
    }
}

impl Guest {
    pub async fn call_run(&self, store: &mut Store<StoreState>, input: &Payload) -> wasmtime::Result<Outcome> {
        match self {
            Guest::V2(g) => g.sluice_activity_activity().call_run(store, input).await,
            Guest::V1(g) => {
                let outcome = g.sluice_activity_activity().call_run(store, &compat::payload_to_v1(input)).await?;
                Ok(compat::outcome_in(outcome))
            }
        }
    }
}
