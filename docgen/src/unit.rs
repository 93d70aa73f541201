//! The Debian package's systemd template, made from
//! `contrib/picomon@.service` (the one a source install copies) so that the
//! two cannot drift: same hardening, same reload and stop behaviour; only the
//! paths (`/usr/bin`, `/etc/picomon`) and the user (`picomon`, created by
//! the package) differ.

use crate::Output;

const CONTRIB: &str = include_str!("../../contrib/picomon@.service");

/// What changes, as (in contrib, in the package). Each must be found, so a
/// change to contrib that dodges one fails here instead of shipping a
/// unit with `/usr/local` paths.
const CHANGES: &[(&str, &str)] = &[
    (
        "/usr/local/etc/picomon/NAME.rhai under picomon-watchdog as `nobody`.",
        "/etc/picomon/NAME.rhai under picomon-watchdog as the `picomon` user.",
    ),
    (
        "Documentation=file:///usr/local/share/doc/picomon/README.md",
        "Documentation=man:picomon(1) man:picomon.rhai(5) file:///usr/share/doc/picomon/README.md",
    ),
    (
        "# systemd remarks that `nobody` is shared by other services; DynamicUser=yes\n\
         # (instead of User/Group) gives each instance its own throw-away user.\n\
         User=nobody\nGroup=nogroup\n",
        "# The package's system user (postinst), not DynamicUser=yes: a fixed user\n\
         # can be given a password file and reproduces the daemon's view with\n\
         # `runuser -u picomon -- picomon -c FILE -1`; see doc/guide.md.\n\
         User=picomon\nGroup=picomon\n",
    ),
    (
        "/usr/local/bin/picomon-watchdog",
        "/usr/bin/picomon-watchdog",
    ),
    (
        "-c /usr/local/etc/picomon/%i.rhai",
        "-c /etc/picomon/%i.rhai",
    ),
];

pub fn packaged() -> Output {
    let mut unit = format!(
        "# Made by picomon-docgen from contrib/picomon@.service: edit that one.\n{CONTRIB}"
    );
    for (from, to) in CHANGES {
        assert!(
            unit.contains(from),
            "contrib/picomon@.service no longer has {from:?}: update docgen/src/unit.rs"
        );
        unit = unit.replace(from, to);
    }
    assert!(
        !unit.contains("/usr/local"),
        "the packaged unit still names /usr/local:\n{unit}"
    );
    Output {
        path: "debian/picomon@.service",
        text: unit,
    }
}
