//! Results and renderers.
