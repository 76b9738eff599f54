//! Host-side bindings of the WIT world `sluice:activity/activity-component`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "activity-component",
    // Host imports may trap the guest (e.g. heartbeat details over the cap).
    imports: { default: trappable },
    exports: { default: async },
});

pub use self::exports::sluice::activity::activity::Outcome;
pub use self::sluice::activity::types::{ActivityInfo, ApplicationError, HeartbeatResponse, LogLevel, Payload};

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

/// The bindings of `sluice:activity@0.1.0`, whose components still load:
/// its heartbeat answer has no `paused`. Converted to and from the current
/// types at the boundary (`compat`).
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "wit/activity-0.1.0.wit",
        world: "activity-component",
        imports: { default: trappable },
        exports: { default: async },
    });
}
