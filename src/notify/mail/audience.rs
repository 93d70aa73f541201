//! Which mails one tick's notices become: each notice goes to
//! `config.emails.to` and to the contacts the loop chose for it; a group of
//! recipients with more notices in the tick than its digest threshold gets
//! them as one digest (one per contact per tick), and every notice left
//! is one mail to all of its remaining groups at once (so one Problem is
//! one mail, whoever gets it). Pure: positions in, positions out.

/// Who a mail is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// `config.emails.to`.
    Everyone,
    /// The contact at this position of the config's contacts.
    Contact(u16),
}

/// The mails of one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One digest per group: the group and the positions of its notices.
    pub digests: Vec<(Group, Vec<usize>)>,
    /// One mail per notice: its position and the groups it goes to.
    pub mails: Vec<(usize, Vec<Group>)>,
}

/// The plan for notices whose groups are `groups_of` (by position);
/// `digest_over(g)`: more notices than this for `g` make one digest.
pub fn plan(groups_of: &[Vec<Group>], digest_over: impl Fn(Group) -> usize) -> Plan {
    let mut all: Vec<Group> = groups_of.iter().flatten().copied().collect();
    crate::sort::ascending(&mut all);
    all.dedup();
    let mut out = Plan::default();
    let mut digested = Vec::new();
    for g in all {
        let mine: Vec<usize> = (0..groups_of.len())
            .filter(|&i| groups_of[i].contains(&g))
            .collect();
        if mine.len() > digest_over(g) {
            out.digests.push((g, mine));
            digested.push(g);
        }
    }
    for (i, groups) in groups_of.iter().enumerate() {
        let rest: Vec<Group> = groups
            .iter()
            .filter(|g| !digested.contains(g))
            .copied()
            .collect();
        if !rest.is_empty() {
            out.mails.push((i, rest));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Group::*;

    #[test]
    fn one_mail_per_notice_to_all_its_groups() {
        let p = plan(
            &[vec![Everyone, Contact(0)], vec![Everyone, Contact(1)]],
            |_| 5,
        );
        assert!(p.digests.is_empty());
        assert_eq!(
            p.mails,
            [
                (0, vec![Everyone, Contact(0)]),
                (1, vec![Everyone, Contact(1)])
            ]
        );
    }

    #[test]
    fn a_busy_group_gets_one_digest_the_others_their_mails() {
        // Everyone has 3 notices (over 2): a digest; contact 0 has one: a
        // mail; contact 1 wants a digest of anything over 1.
        let groups = [
            vec![Everyone, Contact(0)],
            vec![Everyone, Contact(1)],
            vec![Everyone, Contact(1)],
        ];
        let p = plan(&groups, |g| if g == Contact(1) { 1 } else { 2 });
        assert_eq!(
            p.digests,
            [(Everyone, vec![0, 1, 2]), (Contact(1), vec![1, 2])]
        );
        assert_eq!(p.mails, [(0, vec![Contact(0)])]);
    }

    #[test]
    fn a_late_problem_goes_to_its_contact_only() {
        let p = plan(&[vec![Contact(2)]], |_| 5);
        assert_eq!(p.mails, [(0, vec![Contact(2)])]);
        assert_eq!(plan(&[vec![]], |_| 5), Plan::default());
    }
}
