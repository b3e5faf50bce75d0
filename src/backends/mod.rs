//! Backends, registered in one table.
