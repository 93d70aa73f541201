//! The persisted state file (`state_dir/state`).
