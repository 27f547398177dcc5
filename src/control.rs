//! Pure parsers for control-file writes (being written).
