//! The nodeless host agent (being written).

pub mod server;
