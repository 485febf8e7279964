//! A linearizability checker for key-value histories.
