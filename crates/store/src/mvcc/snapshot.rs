//! The state machine as one byte stream (a snapshot) and back.
