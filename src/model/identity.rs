//! Finding a check by what a person typed: `picomon ack`, `run`, `status
//! CHECK`, `ping`, `-1 --only` and `depends_on` all take the same forms.
//!
//! In order: the identity; `NAME on TARGET` as mails, logs and `status`
//! show a check (or `NAME:TARGET`); else a name, which must then be one
//! check's. A name several checks share is an error listing their
//! identities, so the user can copy one.

/// What a check is known by.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub dest: &'a str,
}

impl<'a> From<&'a super::CheckSpec> for Known<'a> {
    fn from(c: &'a super::CheckSpec) -> Self {
        Known {
            id: &c.id,
            name: &c.name,
            dest: &c.dest,
        }
    }
}

impl Known<'_> {
    /// `what` is `NAME on TARGET` or `NAME:TARGET` of this check.
    fn is_titled(&self, what: &str) -> bool {
        [" on ", ":"].iter().any(|sep| {
            what.strip_prefix(self.name)
                .and_then(|r| r.strip_prefix(sep))
                .is_some_and(|t| t == self.dest)
        })
    }
}

/// Why `what` names no single check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotFound {
    /// No check has that identity, title or name.
    None,
    /// These checks (their identities) all answer to it.
    Many(Vec<String>),
}

impl NotFound {
    /// The message: `hint` says where to look up names (`picomon status`
    /// for a running daemon, `--check-config` for a config).
    pub fn message(&self, what: &str, hint: &str) -> String {
        match self {
            NotFound::None => format!("no check named {what:?}; {hint}"),
            NotFound::Many(ids) => format!(
                "{} checks are named {what:?}; give one of them: {}",
                ids.len(),
                ids.iter()
                    .map(|i| format!("{i:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The position of the check `what` names among `checks`.
pub fn find<'a>(checks: &[Known<'a>], what: &str) -> Result<usize, NotFound> {
    if let Some(i) = checks.iter().position(|c| c.id == what) {
        return Ok(i);
    }
    let pick = |keep: &dyn Fn(&Known) -> bool| -> Vec<usize> {
        (0..checks.len()).filter(|&i| keep(&checks[i])).collect()
    };
    let mut found = pick(&|c| c.is_titled(what));
    if found.is_empty() {
        found = pick(&|c| c.name == what);
    }
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(NotFound::None),
        many => Err(NotFound::Many(
            many.iter().map(|&i| checks[i].id.to_string()).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k<'a>(id: &'a str, name: &'a str, dest: &'a str) -> Known<'a> {
        Known { id, name, dest }
    }

    #[test]
    fn identity_title_and_unique_name_find_a_check() {
        let checks = [
            k("web port on a", "web port", "a"),
            k("web port on b", "web port", "b"),
            k("disk", "disk", "a"),
        ];
        assert_eq!(find(&checks, "web port on b"), Ok(1));
        assert_eq!(find(&checks, "web port:a"), Ok(0));
        assert_eq!(find(&checks, "disk"), Ok(2));
        assert_eq!(find(&checks, "disk on a"), Ok(2));
        assert_eq!(find(&checks, "disk:a"), Ok(2));
        assert_eq!(
            find(&checks, "web port"),
            Err(NotFound::Many(vec![
                "web port on a".into(),
                "web port on b".into()
            ]))
        );
        assert_eq!(find(&checks, "disk on b"), Err(NotFound::None));
        let m = find(&checks, "web port")
            .unwrap_err()
            .message("web port", "");
        assert!(m.contains("\"web port on a\", \"web port on b\""), "{m}");
    }
}
