//! The built-in media pipeline.
