//! The nodeless host agent (being written).

pub mod config;
pub mod server;
pub mod status;
pub mod translate;
