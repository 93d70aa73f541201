//! Check dependencies: `depends_on: ["router ping"]`. Pure: names resolve
//! to positions once, at config load; who is unreachable is a function of
//! the parents' phases.
//!
//! ```text
//!  config: names -> positions (unknown: error + "did you mean"; cycle: error naming it)
//!  loop:   dependent fails while a parent is RETRYING or PROBLEM
//!            -> UNREACHABLE: runs, feeds outputs, no mail of its own;
//!               the parent's mail lists it
//!          parent OK again -> at the dependent's next run:
//!               still failing -> its own Problem (outage from its first failure)
//!               recovered     -> nothing
//! ```

/// A dependency that cannot be resolved, with the position (index of the
/// check) whose `depends_on` is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepError {
    pub check: usize,
    pub message: String,
}

/// What a check is known by, for resolving names.
pub use crate::model::identity::Known as Named;
use crate::model::identity::NotFound;

/// Resolves one check's `depends_on` names as `picomon ack` finds a check
/// ([`crate::model::identity::find`]); a name several checks share means
/// the one on the dependent's own target when there is one (`depends_on:
/// ["router ping"]` in a loop over hosts). Duplicates are dropped.
pub fn resolve(
    checks: &[Named],
    me: usize,
    wanted: &[String],
    suggest: impl Fn(&str, &[&str]) -> Option<String>,
) -> Result<Box<[u32]>, DepError> {
    let err = |message| DepError { check: me, message };
    let mut out: Vec<u32> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let i = match crate::model::identity::find(checks, w) {
            Ok(i) => i,
            Err(NotFound::None) => {
                let known: Vec<&str> = checks.iter().map(|c| c.id).collect();
                let hint = suggest(w, &known)
                    .map(|s| format!("did you mean {s:?}? "))
                    .unwrap_or_default();
                return Err(err(format!(
                    "depends_on: no check is named {w:?}; {hint}give the name or identity of \
                     a check this config adds (`picomon --check-config` lists them)"
                )));
            }
            Err(e @ NotFound::Many(_)) => {
                let near: Vec<usize> = (0..checks.len())
                    .filter(|&i| checks[i].name == w && checks[i].dest == checks[me].dest)
                    .collect();
                match near.as_slice() {
                    [i] => *i,
                    _ => return Err(err(format!("depends_on: {}", e.message(w, "")))),
                }
            }
        };
        if !out.contains(&(i as u32)) {
            out.push(i as u32);
        }
    }
    Ok(out.into_boxed_slice())
}

/// A cycle in the dependency graph, as positions from the check where it
/// was found back to it (`[a, b, a]`), or `None`.
pub fn find_cycle(deps: &[&[u32]]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for start in 0..deps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next edge to follow).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut edge)) = path.last_mut() {
            if let Some(&next) = deps[node].get(*edge) {
                *edge += 1;
                let next = next as usize;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::OnPath;
                        path.push((next, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|&(n, _)| n == next).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|&(n, _)| n).collect();
                        cycle.push(next);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}

/// The first parent (in `depends_on` order) that is failing: while there is
/// one, a failing dependent is UNREACHABLE.
pub fn failing_parent(parents: &[u32], failing: impl Fn(usize) -> bool) -> Option<usize> {
    parents.iter().map(|&p| p as usize).find(|&p| failing(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(list: &[(&'static str, &'static str)]) -> Vec<Named<'static>> {
        list.iter()
            .map(|&(id, name)| Named { id, name, dest: "" })
            .collect()
    }

    fn no_hint(_: &str, _: &[&str]) -> Option<String> {
        None
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_and_identities_resolve_to_positions() {
        let c = named(&[
            ("router ping", "router ping"),
            ("tcp:web1:80", "tcp"),
            ("tcp:web2:80", "tcp"),
            ("plugin:check_x", "check_x"),
        ]);
        let got = resolve(
            &c,
            1,
            &strings(&["router ping", "check_x", "router ping"]),
            no_hint,
        );
        assert_eq!(got.unwrap().as_ref(), &[0, 3]);
        let got = resolve(&c, 0, &strings(&["tcp:web2:80"]), no_hint);
        assert_eq!(got.unwrap().as_ref(), &[2]);
    }

    #[test]
    fn unknown_and_ambiguous_names_are_errors_with_help() {
        let c = named(&[("router ping", "router ping"), ("a", "tcp"), ("b", "tcp")]);
        let e = resolve(&c, 1, &strings(&["ruter ping"]), |_, _| {
            Some("router ping".into())
        })
        .unwrap_err();
        assert_eq!(e.check, 1);
        assert!(e.message.contains("\"ruter ping\""), "{}", e.message);
        assert!(
            e.message.contains("did you mean \"router ping\"?"),
            "{}",
            e.message
        );
        let e = resolve(&c, 0, &strings(&["tcp"]), no_hint).unwrap_err();
        assert!(
            e.message.contains("2 checks are named \"tcp\""),
            "{}",
            e.message
        );
        assert!(e.message.contains("\"a\", \"b\""), "{}", e.message);
    }

    #[test]
    fn cycles_are_found_and_named_in_order() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 0 (not part of it).
        let deps: Vec<&[u32]> = vec![&[1], &[2], &[0], &[0]];
        assert_eq!(find_cycle(&deps), Some(vec![0, 1, 2, 0]));
        // A check depending on itself.
        let deps: Vec<&[u32]> = vec![&[], &[1]];
        assert_eq!(find_cycle(&deps), Some(vec![1, 1]));
        // A diamond is no cycle.
        let deps: Vec<&[u32]> = vec![&[1, 2], &[3], &[3], &[]];
        assert_eq!(find_cycle(&deps), None);
        assert_eq!(find_cycle(&[]), None);
    }

    #[test]
    fn the_first_failing_parent_holds() {
        let failing = [false, true, true];
        assert_eq!(failing_parent(&[0, 2, 1], |p| failing[p]), Some(2));
        assert_eq!(failing_parent(&[0], |p| failing[p]), None);
        assert_eq!(failing_parent(&[], |p| failing[p]), None);
    }
}
