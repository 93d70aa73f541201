//! `maintenance(#{ match: "db*", weekdays: "sun", hours: "2-4" })` and
//! one-off `maintenance(#{ match: "web1*", start: "...", end: "..." })`:
//! a silence the config declares. The window keys are `when`'s, parsed by
//! `when`'s own rules; `end` is read like `start`.

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use crate::alert::quiet::Maintenance;

use super::builder::Shared;
use super::value::describe;

const USAGE: &str = "maintenance(#{ match: \"db*\", weekdays: \"sun\", hours: \"2-4\" }) or maintenance(#{ match: \"web1*\", start: \"2026-12-01 22:00\", end: \"2026-12-02 01:00\" })";

pub fn register(engine: &mut Engine, shared: &Shared) {
    let s = shared.clone();
    engine.register_fn(
        "maintenance",
        move |ctx: NativeCallContext, opts: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let line = ctx.call_position().line().unwrap_or(0);
            let m = parse(&opts, line).map_err(super::options::err)?;
            s.with(|b| b.maintenance.push(m));
            Ok(())
        },
    );
}

/// Reads one `maintenance(...)` map.
pub fn parse(v: &Dynamic, line: usize) -> Result<Maintenance, String> {
    let Some(mut map) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return Err(format!(
            "maintenance wants a map, not {}: {USAGE}",
            describe(v)
        ));
    };
    let pattern = match map.remove("match") {
        Some(p) if p.is_string() && !p.to_string().is_empty() => p.to_string(),
        Some(p) => {
            return Err(format!(
                "maintenance.match must be a non-empty glob string like \"db*\", not {}",
                describe(&p)
            ))
        }
        None => {
            return Err(format!(
                "maintenance needs match: a glob on check name, identity or target: {USAGE}"
            ))
        }
    };
    let end = match map.remove("end") {
        None => None,
        Some(e) => {
            let mut only = Map::new();
            only.insert("start".into(), e);
            super::when::parse(&Dynamic::from_map(only))
                .map_err(|m| m.replace("option when.start", "maintenance.end"))?
                .start
        }
    };
    let window = super::when::parse(&Dynamic::from_map(map)).map_err(|m| {
        m.replace("option `when.", "key `maintenance.")
            .replace("`when.", "`maintenance.")
            .replace("option when", "maintenance")
    })?;
    if window == crate::model::When::default() && end.is_none() {
        return Err(format!(
            "maintenance for {pattern:?} has no window: it would silence forever; give hours, weekdays, days or start and end: {USAGE}"
        ));
    }
    if let (Some(s), Some(e)) = (window.start, end) {
        if e <= s {
            return Err(format!(
                "maintenance for {pattern:?}: end is not after start"
            ));
        }
    }
    Ok(Maintenance {
        pattern,
        window,
        end,
        line,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn load(script: &str) -> Result<crate::config::Config, String> {
        crate::config::load_str(Path::new("t.rhai"), script).map_err(|e| e.to_string())
    }

    #[test]
    fn weekly_and_one_off_windows_are_read() {
        let cfg = load(
            "maintenance(#{ match: \"db*\", weekdays: \"sun\", hours: \"2-4\" });\n\
             maintenance(#{ match: \"web1*\", start: \"2026-12-01 22:00\", end: \"2026-12-02 01:00\" });",
        )
        .unwrap();
        let m = &cfg.maintenance;
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].pattern, "db*");
        assert_eq!(m[0].window.weekdays, vec![6]);
        assert_eq!(m[0].window.hours, vec![2, 3, 4]);
        assert_eq!(m[0].line, 1);
        assert_eq!(m[1].end.unwrap() - m[1].window.start.unwrap(), 3 * 3600);
        assert_eq!(m[1].line, 2);
    }

    #[test]
    fn mistakes_name_the_key_and_the_line() {
        for (script, want) in [
            ("maintenance(#{ hours: \"2-4\" });", "needs match"),
            ("maintenance(#{ match: \"db*\" });", "no window"),
            (
                "maintenance(#{ match: \"db*\", hour: \"2\" });",
                "maintenance.hour",
            ),
            (
                "maintenance(#{ match: \"db*\", start: \"2026-12-02\", end: \"2026-12-01\" });",
                "end is not after start",
            ),
            (
                "maintenance(#{ match: \"db*\", start: \"2026-12-02\", end: \"soon\" });",
                "maintenance.end",
            ),
        ] {
            let err = load(script).unwrap_err();
            assert!(err.contains(want), "{script}: {err}");
            assert!(err.starts_with("t.rhai:1:"), "{err}");
        }
    }
}
