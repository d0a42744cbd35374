//! The Deployment controller (being written).

use crate::{Context, ControllerError};

pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    ctx.shutdown.cancelled().await;
    Ok(())
}
