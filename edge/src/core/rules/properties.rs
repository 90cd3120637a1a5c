//! Property tests of the rules engine.
