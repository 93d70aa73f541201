//! The man pages: picomon(1) and picomon-watchdog(1) from the clap
//! definitions (clap_mangen), plus the sections clap does not know (exit
//! status, files, environment); picomon.rhai(5) with its key table from
//! [`picomon::config::key_docs`], the one declaration of the config keys.

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use crate::watchdog_cli;
use crate::Output;

/// The package version, without the commit `--version` adds: a page must
/// not change with every commit.
fn version() -> &'static str {
    picomon::cli::VERSION
        .split(' ')
        .next()
        .expect("a version number")
}

pub fn pages() -> Vec<Output> {
    vec![
        Output {
            path: "man/picomon.1",
            text: picomon_page(),
        },
        Output {
            path: "man/picomon-watchdog.1",
            text: watchdog_page(),
        },
        Output {
            path: "man/picomon.rhai.5",
            text: config_page(),
        },
    ]
}

fn manual(cmd: clap::Command, section: &str) -> Man {
    Man::new(cmd.version(version()))
        .section(section)
        .source(format!("picomon {}", version()))
        .manual("picomon manual")
}

fn render(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    write(&mut out).expect("rendering into memory cannot fail");
    String::from_utf8(out).expect("roff from UTF-8 text is UTF-8")
}

/// The start of a page as clap_mangen writes it: title, name, synopsis,
/// description and options.
fn head(man: &Man) -> String {
    render(|w| {
        man.render_title(w)?;
        man.render_name_section(w)?;
        man.render_synopsis_section(w)?;
        man.render_description_section(w)?;
        man.render_options_section(w)
    })
}

fn section(r: &mut Roff, name: &str) {
    r.control("SH", [name]);
}

fn para(r: &mut Roff, text: &str) {
    r.control("PP", []);
    r.text([roman(text)]);
}

/// A tagged paragraph: `term` on its own line, `text` indented below.
fn item(r: &mut Roff, term: impl Into<Vec<Inline>>, text: &str) {
    r.control("TP", []);
    r.text(term);
    r.text([roman(text)]);
}

/// A block shown as typed (a command or a config example).
fn example(r: &mut Roff, lines: &str) {
    r.control("PP", []);
    r.control("nf", []);
    r.control("RS", ["4"]);
    for line in lines.lines() {
        r.text([roman(line)]);
    }
    r.control("RE", []);
    r.control("fi", []);
}

fn picomon_page() -> String {
    let cmd = picomon::cli::Cli::command();
    let mut page = head(&manual(cmd.clone(), "1"));
    let mut r = Roff::new();
    section(&mut r, "COMMANDS");
    para(
        &mut r,
        "Without a command picomon runs as the daemon (or once, with -1). The commands are \
         clients of a running daemon's control socket, state_dir/control.sock, found through \
         --state-dir DIR or the config's state_dir.",
    );
    para(
        &mut r,
        "Without -c, picomon (the daemon, -1, --check-config and every command) uses \
         $PICOMON_CONFIG, else config.rhai in the working directory if it exists, else the only \
         *.rhai in /etc/picomon other than example.rhai; with none or several it exits 1 \
         listing what it found.",
    );
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut term = vec![bold(format!("picomon {}", sub.get_name()))];
        for arg in sub.get_positionals() {
            let name = arg
                .get_value_names()
                .and_then(|n| n.first())
                .map(|n| n.to_string())
                .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
            term.push(roman(" "));
            term.push(italic(if arg.is_required_set() {
                name
            } else {
                format!("[{name}]")
            }));
        }
        item(
            &mut r,
            term,
            &sub.get_about().map(|a| a.to_string()).unwrap_or_default(),
        );
        let args: Vec<_> = sub.get_positionals().chain(sub.get_opts()).collect();
        if !args.is_empty() {
            r.control("RS", []);
            for arg in args {
                option_item(&mut r, arg);
            }
            r.control("RE", []);
        }
    }
    section(&mut r, "EXIT STATUS");
    para(
        &mut r,
        "The daemon exits 0 after a clean stop (SIGTERM or SIGINT) and 1 for a bad config or a \
         start-up failure, with a message on stderr that says what and where. With -1 picomon \
         exits with the worst status it saw: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; stopped by \
         SIGINT or SIGTERM it exits 130 or 143. --check-config exits 0 for a valid config and 1 \
         with FILE:LINE:COL: message otherwise. picomon status exits 0 when no check is in \
         PROBLEM, 1 when one is, and 3 when no daemon answers; run exits with the check's \
         status code; the other commands exit 0, 1 when the daemon refused, 3 without a daemon.",
    );
    section(&mut r, "SIGNALS");
    item(
        &mut r,
        [bold("SIGHUP")],
        "Re-read the config (as picomon reload); a broken config is logged with \
         FILE:LINE:COL and the old one keeps running; checks whose identity is unchanged keep \
         their state.",
    );
    item(
        &mut r,
        [bold("SIGUSR1")],
        "Print the state of every check, the mail outbox, the spools and the overload counts \
         to stdout, and start the next tick at once. Signals that come while such a tick is \
         pending or running are merged into it.",
    );
    item(
        &mut r,
        [bold("SIGTERM"), roman(", "), bold("SIGINT")],
        "Stop cleanly: kill the running plugins' process groups (TERM, then KILL after 1 s), \
         save the state, try the outbox once more, exit 0. With -1: kill the runs, print what \
         was found and exit 143 or 130.",
    );
    section(&mut r, "ENVIRONMENT");
    item(
        &mut r,
        [bold("RUST_LOG")],
        "The log level, overriding -D and config.verb_level where set.",
    );
    item(
        &mut r,
        [bold("PICOMON_CONFIG")],
        "The config file when -c is not given.",
    );
    item(
        &mut r,
        [bold("PICOMON_ETC")],
        "The folder searched for the only *.rhai when neither -c, PICOMON_CONFIG nor \
         ./config.rhai names the config (default /etc/picomon).",
    );
    item(
        &mut r,
        [bold("NO_COLOR")],
        "Set to anything: no colours in status and -1, even on a terminal.",
    );
    section(&mut r, "FILES");
    item(
        &mut r,
        [italic("/etc/picomon/NAME.rhai")],
        "A config, run by the systemd unit picomon@NAME (the Debian package). See picomon.rhai(5).",
    );
    item(
        &mut r,
        [italic("/var/lib/picomon/NAME/")],
        "Its state directory (config.state_dir): check state, mail outbox, spool, heartbeat, \
         lock and control.sock, private to picomon's user.",
    );
    section(&mut r, "EXAMPLES");
    example(
        &mut r,
        "picomon -c /etc/picomon/example.rhai -1\n\
         picomon -c /etc/picomon/web.rhai --check-config\n\
         systemctl enable --now picomon@web\n\
         picomon status --problems        # with /etc/picomon/web.rhai the only config\n\
         picomon status disk\n\
         picomon ack disk -m \"on it\" --for 2h",
    );
    see_also(&mut r, &[("picomon-watchdog", "1"), ("picomon.rhai", "5")]);
    page.push_str(&r.render());
    page
}

fn watchdog_page() -> String {
    let cmd = watchdog_cli::Cli::command();
    let mut page = head(&manual(cmd, "1"));
    let mut r = Roff::new();
    para(
        &mut r,
        "Arguments after -- are passed to picomon after its -c CONFIG, for example \
         -- --state-dir /var/lib/picomon/web.",
    );
    section(&mut r, "DESCRIPTION OF THE WATCH");
    para(
        &mut r,
        "picomon-watchdog starts picomon as its child and mails (through the config's mail \
         settings, with config.emails.watchdog_subject) when it exits or when its heartbeat in \
         the state directory stops moving. With --restart it starts picomon again, waiting 1 s \
         doubling up to 5 min.",
    );
    section(&mut r, "SIGNALS");
    item(
        &mut r,
        [bold("SIGHUP"), roman(", "), bold("SIGUSR1")],
        "Passed on to picomon: it re-reads its config (SIGHUP) or prints the state of every \
         check and starts the next tick at once (SIGUSR1). The watchdog itself reads nothing.",
    );
    item(
        &mut r,
        [bold("SIGTERM"), roman(", "), bold("SIGINT")],
        "Passed on to picomon, which stops cleanly; the watchdog waits for it (SIGKILL after \
         15 s), mails nothing and exits 0. Killed even by SIGKILL, the watchdog takes picomon \
         with it (picomon gets SIGTERM, its parent-death signal).",
    );
    see_also(&mut r, &[("picomon", "1"), ("picomon.rhai", "5")]);
    page.push_str(&r.render());
    page
}

/// One flag of a subcommand: `-m, --message TEXT`, its help and default;
/// or a positional argument: `CHECK` and its help.
fn option_item(r: &mut Roff, arg: &clap::Arg) {
    let takes_values = arg.get_action().takes_values();
    let mut term = Vec::new();
    if arg.is_positional() {
        let names = arg.get_value_names().unwrap_or_default();
        let name = names
            .first()
            .map(|n| n.to_string())
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
        term.push(italic(name));
        item(
            r,
            term,
            &arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
        );
        return;
    }
    if let Some(short) = arg.get_short() {
        term.push(bold(format!("-{short}")));
        term.push(roman(", "));
    }
    let long = arg.get_long().unwrap_or(arg.get_id().as_str());
    term.push(bold(format!("--{long}")));
    let names = arg.get_value_names().unwrap_or_default();
    for name in names.iter().filter(|_| takes_values) {
        term.push(roman(" "));
        term.push(italic(name.as_str()));
    }
    let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    if let Some(default) = arg.get_default_values().first() {
        let default = default.to_string_lossy();
        if !default.is_empty() && takes_values {
            help.push_str(&format!(" [default: {default}]"));
        }
    }
    item(r, term, &help);
}

fn see_also(r: &mut Roff, pages: &[(&str, &str)]) {
    section(r, "SEE ALSO");
    let mut line = Vec::new();
    for (name, sec) in pages {
        if !line.is_empty() {
            line.push(roman(", "));
        }
        line.push(bold(*name));
        line.push(roman(format!("({sec})")));
    }
    line.push(roman(
        ", /usr/share/doc/picomon/README.md and doc/guide.md beside it",
    ));
    r.text(line);
}

fn config_page() -> String {
    let mut r = Roff::new();
    let source = format!("picomon {}", version());
    r.control(
        "TH",
        ["picomon.rhai", "5", "", source.as_str(), "picomon manual"],
    );
    section(&mut r, "NAME");
    r.text([roman(
        "picomon.rhai - the config file of picomon, a Rhai script",
    )]);
    section(&mut r, "SYNOPSIS");
    r.text([italic("/etc/picomon/NAME.rhai")]);
    section(&mut r, "DESCRIPTION");
    para(
        &mut r,
        "A picomon config is a Rhai script (picomon -c FILE). It runs once at start and again \
         on SIGHUP, in a sandboxed engine: at most 50 M operations, call depth 32, strings of \
         1 MiB, 100,000 array items, no import or eval, and one second of wall time, so an \
         endless loop fails with its position instead of hanging the daemon. print() goes to \
         the log. picomon -c FILE --check-config validates a file.",
    );
    para(
        &mut r,
        "The script sets keys of the config object and declares hosts and checks. A typo in a \
         key or option name is an error that names the line and column and the known names.",
    );
    section(&mut r, "KEYS");
    para(
        &mut r,
        "Each key with its default. Defaults set after an add() still apply to it: they are \
         resolved when the script has run. NAME is the config file's name without .rhai, \
         HOSTNAME this machine's name.",
    );
    for key in picomon::config::key_docs() {
        let mut term = vec![bold(key.name.as_str())];
        if let Some(default) = &key.default {
            term.push(roman(" = "));
            term.push(italic(default.as_str()));
        }
        // The docs are written for Markdown; a man page has no code spans.
        item(&mut r, term, &key.doc.replace('`', ""));
    }
    section(&mut r, "HOSTS AND CHECKS");
    para(
        &mut r,
        "host(name), host(name, #{ ipv4, ipv6 }) or host(#{ name, ipv4, ipv6 }) declares a \
         host for probes; checks of this machine (plugins, shell(), disk(), load(), ...) name \
         it by its host name. A constructor \
         makes a check: plugin(name_or_path, [args]) runs a Nagios plugin (a bare name is looked \
         up in config.plugin_dirs, then PATH), shell(\"command\") runs a shell command, and the \
         built-in probes (ping, tcp, http, dns, smtp, tls_cert, disk, load, pressure, ...; see \
         doc/guide.md, \"Built-in probes\") need no plugin; heartbeat(#{ period, grace }) runs nothing and is OK \
         while pings (picomon ping, /ping/KEY/CHECK, passive results) come in time. add(check), add(check, #{ options }) or \
         add([checks], #{ options }) schedules it.",
    );
    let options = picomon::config::CHECK_OPTIONS.join(", ");
    para(&mut r, &format!("The options of add(): {options}."));
    let when = picomon::config::WHEN_KEYS.join(", ");
    para(
        &mut r,
        &format!(
            "when is a map of {when}: the check is only scheduled inside that window \
             (local time; ranges may wrap, e.g. \"22-2\")."
        ),
    );
    let contact_keys = picomon::config::CONTACT_KEYS.join(", ");
    para(
        &mut r,
        &format!(
            "contact(\"NAME\", #{{ {contact_keys} }}) declares who else is told: checks and \
             hosts pick contacts with contacts: [\"NAME\", ...] (a check's own replace its \
             host's), and escalate steps may name them. config.emails.to still gets every \
             mail of every check. Outside a contact's hours and weekdays (local time, \
             e.g. \"08:00-20:00\" and \"mon-fri\") its Problems wait and go out once when \
             they begin. A contact is declared above the lines that name it."
        ),
    );
    para(
        &mut r,
        "Every check has an identity: its kind, target and arguments, or its name where given. \
         Two checks with one identity are an error; on SIGHUP a check whose identity is \
         unchanged keeps its state.",
    );
    section(&mut r, "EXAMPLE");
    example(
        &mut r,
        "config.base_tick = 60;\n\
         config.emails.to = [\"ops@example.org\"];\n\
         let web = host(\"web1\", #{ ipv4: \"192.0.2.10\" });\n\
         add(plugin(\"check_disk\", [\"-w\", \"10%\", \"-c\", \"5%\", \"-p\", \"/\"]));\n\
         add(tcp(web, 443), #{ retry: 2 });",
    );
    section(&mut r, "FILES");
    item(
        &mut r,
        [italic("/etc/picomon/example.rhai")],
        "The sample config of the Debian package: every key once, checks of this machine.",
    );
    see_also(&mut r, &[("picomon", "1"), ("picomon-watchdog", "1")]);
    r.render()
}
