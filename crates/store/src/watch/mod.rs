//! The watch hub.
