//! Does nothing: the guest used to measure the host's per-call overhead.

use sluice_guest::{ActivityError, Context};

fn noop(_ctx: &Context, _input: ()) -> Result<(), ActivityError> {
    Ok(())
}

sluice_guest::export_activity!(noop);
