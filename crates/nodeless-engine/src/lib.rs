//! nodeless-engine
