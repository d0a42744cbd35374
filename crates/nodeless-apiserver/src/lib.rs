//! nodeless-apiserver
