//! Plugin output: summary, long output and performance data (SPEC §5).

use std::fmt;

/// One performance-data item. An item that does not parse is kept as text.
#[derive(Clone, Debug, PartialEq)]
pub enum Perf {
    Item {
        label: String,
        value: f64,
        uom: String,
        warn: String,
        crit: String,
        min: String,
        max: String,
    },
    Text(String),
}

impl fmt::Display for Perf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!("{f:p}")
    }
}

/// Splits plugin output into (summary, long output, perfdata).
pub fn parse_plugin_output(text: &str) -> (String, String, Vec<Perf>) {
    todo!("{text}")
}
