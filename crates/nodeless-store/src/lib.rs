//! nodeless-store
