//! Built-in native probes (SPEC §10).

/// Registers the probe constructors (`ping4(h)`, `tcp(h, port)`, ...) with
/// the config engine. Each returns a [`crate::check::CheckDef`].
pub fn register(_engine: &mut rhai::Engine) {}
