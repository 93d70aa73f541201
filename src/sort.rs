//! One sort routine for picomon's own lists.
//!
//! The standard library's sort is generic: every element type and every
//! comparison closure gets its own copy of driftsort, several KiB each,
//! about 100 KiB over picomon's lists. Here the standard sort runs once, on
//! indices, with the comparison behind a `dyn` call, and the list is put in
//! that order by swaps; what stays generic per call is a few lines. Stable,
//! like `sort_by`. The lists picomon sorts are small or sorted once per
//! request, so the indirect call costs nothing that shows.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (as `slice::sort_by`).
pub fn by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let order = {
        let items: &[T] = v;
        order(items.len(), &mut |a, b| cmp(&items[a], &items[b]))
    };
    permute(v, order);
}

/// Sorts `v` by the key `key` gives, stably (as `slice::sort_by_key`).
pub fn by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    by(v, |a, b| key(a).cmp(&key(b)))
}

/// Sorts `v` in ascending order (as `slice::sort`).
pub fn ascending<T: Ord>(v: &mut [T]) {
    by(v, T::cmp)
}

/// The indices `0..n` in the stable order `cmp` gives them: the one copy
/// of the standard sort.
fn order(n: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| cmp(a, b));
    idx
}

/// Puts the element that was at `order[i]` at `i`, following each cycle of
/// the permutation once.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut cur = start;
        loop {
            let src = order[cur];
            order[cur] = cur;
            if src == start || src == cur {
                break;
            }
            v.swap(cur, src);
            cur = src;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permutation_of_five_sorts() {
        // All 120 orders of 0..5, by Heap's algorithm.
        fn heap(k: usize, a: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
            if k == 1 {
                out.push(a.clone());
                return;
            }
            for i in 0..k {
                heap(k - 1, a, out);
                let j = if k.is_multiple_of(2) { i } else { 0 };
                a.swap(j, k - 1);
            }
        }
        let mut all = Vec::new();
        heap(5, &mut vec![0, 1, 2, 3, 4], &mut all);
        assert_eq!(all.len(), 120);
        for mut p in all {
            ascending(&mut p);
            assert_eq!(p, [0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn equal_keys_keep_their_order() {
        let mut v = vec![(2, "a"), (1, "b"), (2, "c"), (1, "d"), (0, "e")];
        by_key(&mut v, |e| e.0);
        assert_eq!(v, [(0, "e"), (1, "b"), (1, "d"), (2, "a"), (2, "c")]);
        by(&mut v, |a, b| b.0.cmp(&a.0));
        assert_eq!(v, [(2, "a"), (2, "c"), (1, "b"), (1, "d"), (0, "e")]);
    }

    /// Each call of the standard sort outside this file is one more copy
    /// of it in the executable: picomon's code (its tests aside) sorts
    /// here.
    #[test]
    fn picomon_sorts_only_here() {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let calls = [
            ".sort()",
            ".sort_by(",
            ".sort_by_key(",
            ".sort_unstable",
            ".sort_by_cached_key(",
        ];
        for f in files.iter().filter(|f| !f.ends_with("src/sort.rs")) {
            let text = std::fs::read_to_string(f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                assert!(
                    !calls.iter().any(|c| line.contains(c)),
                    "{}:{}: the standard sort; use crate::sort",
                    f.display(),
                    n + 1
                );
            }
        }
    }

    #[test]
    fn owned_values_move_without_copies() {
        let mut v: Vec<String> = ["pear", "apple", "fig", "apple"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        ascending(&mut v);
        assert_eq!(v, ["apple", "apple", "fig", "pear"]);
        let mut empty: Vec<String> = Vec::new();
        ascending(&mut empty);
        assert!(empty.is_empty());
    }
}
