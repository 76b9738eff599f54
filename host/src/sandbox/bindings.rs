//! Host-side bindings of the WIT world `sluice:activity/activity-component`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "activity-component",
    // Host imports may trap the guest (e.g. heartbeat details over the cap).
    imports: { default: trappable },
    exports: { default: async },
});

pub use self::exports::sluice::activity::activity::Outcome;
pub use self::sluice::activity::types::{ActivityInfo, HeartbeatResponse, LogLevel, Payload};

impl From<Payload> for crate::payload::Payload {
    fn from(p: Payload) -> Self {
        crate::payload::Payload { encoding: p.encoding, data: p.data }
    }
}

impl From<crate::payload::Payload> for Payload {
    fn from(p: crate::payload::Payload) -> Self {
        Payload { encoding: p.encoding, data: p.data }
    }
}
