//! The daemon: the entry point behind `main`, `-1` mode, the tick loop,
//! signals, the state dump and process housekeeping.

mod allocator;
mod beat;
mod dump;
pub mod event_loop;
pub mod executor;
mod handoff;
pub mod inbox;
mod notifiers;
mod once;
mod runner;
pub mod selfcheck;
pub mod simulate;
mod startup;

use anyhow::Context;

use crate::cli::Cli;
use crate::config::{self, Config};

pub use dump::render_dump;
pub use startup::{heartbeat, prepare_user, private_umask, PidFile, StateLock};

/// The real entry point: returns the process exit code.
pub fn main(cli: Cli) -> anyhow::Result<i32> {
    // Before any thread starts: it edits the environment.
    picomon_common::handoff::take_link_from_env();
    allocator::tune_allocator();
    startup::private_umask();
    init_logging(cli.debug);
    startup::log_panics();
    if cli.check_config {
        return Ok(check_config(&cli));
    }
    if cli.watchdog_mail {
        return watchdog_mail();
    }
    if let Some(crate::cli::Command::Run {
        check,
        nagios_json,
        nagios_json_base64,
    }) = &cli.command
    {
        if *nagios_json || *nagios_json_base64 {
            let cfg = load_to_run(&cli)?;
            return once::nagios_json(cfg, check, *nagios_json_base64);
        }
    }
    if cli.command == Some(crate::cli::Command::MailIn) {
        // As the daemon runs it: the checks picomon adds itself too.
        return Ok(crate::mailin::main(load_to_run(&cli)));
    }
    if let Some(crate::cli::Command::Simulate {
        timeline,
        json,
        until,
    }) = &cli.command
    {
        return simulate::run(load(&cli)?, timeline, *json, *until);
    }
    if let Some(cmd) = &cli.command {
        return crate::control::commands::run(&cli, cmd);
    }
    crate::secret::take_handover();
    let mut cfg = load_to_run(&cli)?;
    apply_verb_level(&cli, &cfg);
    if cli.test_mail {
        return Ok(match crate::notify::mail::test_mail(&cfg) {
            Ok(answer) => {
                println!("test mail sent: {answer}");
                0
            }
            Err(err) => {
                eprintln!("picomon: test mail failed: {err}");
                1
            }
        });
    }
    if cli.one {
        if let Some(pattern) = &cli.only {
            only(&mut cfg, pattern)?;
        }
        return once::run(
            cfg,
            cli.notify,
            cli.outputs,
            once::View::of_stdout(cli.json),
        );
    }
    if cli.send {
        return send(&cfg);
    }
    // While still root: the record is in root's /run/picomon.
    crate::control::record::write(&cfg.path, &cfg.state_dir);
    // Still as the user that started us: the password file is read here.
    picomon_common::handoff::hand_over(&handoff::handoff(&cfg));
    // Drop privileges first, so the lock and pid files are the user's and
    // the pid file can be removed at exit.
    startup::prepare_user(&cfg.state_dir, cli.user.as_deref(), &cfg.secret_files())?;
    // Before anything is read from the state dir or sent from its outbox.
    let _lock = startup::StateLock::acquire(&cfg.state_dir)?;
    let _pid_file = match &cli.pid_file {
        Some(path) => Some(startup::PidFile::create(path)?),
        None => None,
    };
    let reaper = crate::run::plugin::Reaper::start().context("cannot become a child subreaper")?;
    let result = runner::run(cli, cfg);
    // What escaped the runs is killed last, after the state is saved.
    reaper.finish(startup::STOP_GRACE);
    result
}

/// `--watchdog-mail`: the request on stdin, 0 when the outbox was
/// delivered, 1 (and why on stderr) when mail still waits.
fn watchdog_mail() -> anyhow::Result<i32> {
    let req = picomon_common::handoff::MailRequest::read_from(std::io::stdin().lock())
        .context("cannot read the watchdog's mail request on stdin")?;
    let n = crate::notify::mail::watchdog::serve(&req)?;
    log::info!("delivered {n} mail(s) from the outbox");
    Ok(0)
}

/// Logging to stderr (see [`picomon_common::logging`]). `RUST_LOG` wins; else `-D` means
/// debug; else INFO until the config's `verb_level` is known (see
/// [`apply_verb_level`]).
fn init_logging(debug: bool) {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    picomon_common::logging::init("debug", None);
    if !from_env {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        });
    }
}

/// `config.verb_level` applies when neither `RUST_LOG` nor `-D` chose.
fn apply_verb_level(cli: &Cli, cfg: &Config) {
    if !cli.debug && std::env::var_os("RUST_LOG").is_none() {
        log::set_max_level(cfg.verb_level);
    }
}

/// Loads the config named on the command line and applies command-line
/// overrides.
pub fn load(cli: &Cli) -> anyhow::Result<Config> {
    // Evaluated on this thread, and kept as evaluated: the engine's
    // garbage is freed into the arena the daemon goes on allocating from,
    // which reuses it. Evaluated on a thread of its own and copied out, its
    // arena, left to the threads started later, stayed resident in part
    // (measured idle, 10,000 `tcp` checks: 9.4 MiB private against 7.2;
    // 100,000: 81 MiB against 66).
    let file = cli.config_file()?;
    let mut cfg = config::load(&file)?;
    if let Some(dir) = &cli.state_dir {
        cfg.state_dir = dir.clone();
    }
    Ok(cfg)
}

/// [`load`] plus the checks picomon adds itself (`picomon state_dir`):
/// what `-1` and the daemon run.
pub fn load_to_run(cli: &Cli) -> anyhow::Result<Config> {
    let mut cfg = load(cli)?;
    // Exactly one more: a plain push would double the capacity, and the
    // loop's check list is collected in place from this buffer.
    cfg.checks.reserve_exact(1);
    cfg.checks.push(selfcheck::spec(&cfg));
    Ok(cfg)
}

/// `-1 --only PATTERN`: keeps the checks whose name, identity or target
/// matches the glob.
fn only(cfg: &mut Config, pattern: &str) -> anyhow::Result<()> {
    cfg.checks.retain(|c| {
        crate::alert::quiet::Subject {
            id: &c.id,
            name: &c.name,
            dest: &c.dest,
        }
        .matches(pattern)
    });
    if cfg.checks.is_empty() {
        anyhow::bail!(
            "--only {pattern:?}: no check's name, identity or target matches (--check-config lists them)"
        );
    }
    Ok(())
}

/// `--check-config`: the summary and 0, or `FILE:LINE:COL: message` and 1.
/// Beyond the script, it looks at what the daemon would trip on at start
/// or at a check's first run ([`config::preflight`]): each fault is one
/// line, and a warning (a `listen` address in use) keeps the exit 0.
/// With `--json`, on stdout either way: `{"ok": true, "file", "summary",
/// "checks", "warnings"}` or `{"ok": false, "error", "file", "line", "col",
/// "message", "errors", "warnings"}` (`error` and its place: the first).
fn check_config(cli: &Cli) -> i32 {
    let found = load(cli).map(|cfg| {
        let f = config::preflight::check(&cfg);
        (cfg, f)
    });
    let place = |e: &config::ConfigError| {
        serde_json::json!({
            "error": e.to_string(),
            "file": e.file,
            "line": e.line,
            "col": e.col,
            "message": e.message,
        })
    };
    if cli.json {
        let v = match &found {
            Ok((cfg, f)) if f.errors.is_empty() => serde_json::json!({
                "ok": true,
                "file": cfg.path,
                "summary": config::summary(cfg),
                "checks": cfg.checks.len(),
                "contacts": contacts_json(cfg),
                "warnings": f.warnings.iter().map(place).collect::<Vec<_>>(),
            }),
            Ok((_, f)) => {
                let mut v = place(&f.errors[0]);
                v["ok"] = false.into();
                v["errors"] = f.errors.iter().map(place).collect();
                v["warnings"] = f.warnings.iter().map(place).collect();
                v
            }
            Err(err) => {
                let mut v = serde_json::json!({ "ok": false, "error": format!("{err:#}") });
                if let Some(e) = err.downcast_ref::<config::ConfigError>() {
                    v = place(e);
                    v["ok"] = false.into();
                    v["errors"] = vec![place(e)].into();
                }
                v["warnings"] = serde_json::json!([]);
                v
            }
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return i32::from(!matches!(&found, Ok((_, f)) if f.errors.is_empty()));
    }
    match found {
        Ok((cfg, f)) => {
            for w in &f.warnings {
                eprintln!("{w}");
            }
            for e in &f.errors {
                eprintln!("{e}");
            }
            if !f.errors.is_empty() {
                return 1;
            }
            println!("{}", config::summary(&cfg));
            print!("{}", config::contacts_table(&cfg));
            0
        }
        Err(err) => {
            eprintln!("{err:#}");
            1
        }
    }
}

/// `--check-config --json`'s `contacts`: each contact with its hours,
/// addresses, channels and the identities of its checks.
fn contacts_json(cfg: &Config) -> serde_json::Value {
    let book = &cfg.contacts;
    book.contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let checks: Vec<&str> = book
                .picks
                .iter()
                .filter(|(_, p)| p.contains(&(i as u16)))
                .map(|(id, _)| id.as_str())
                .collect();
            serde_json::json!({
                "name": c.name,
                "to": c.to,
                "cc": c.cc,
                "hours": c.period.as_ref().map(|p| p.text.clone()),
                "notify": c.notify,
                "digest": c.digest,
                "checks": checks,
            })
        })
        .collect()
}

/// Creates the state directory (and its parents) with a message that says
/// how to fix a failure.
pub(crate) fn ensure_state_dir(cfg: &Config) -> anyhow::Result<()> {
    ensure_dir(&cfg.state_dir)
}

/// [`ensure_state_dir`] for a path (0700 under picomon's umask).
pub(crate) fn ensure_dir(state_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(state_dir).with_context(|| {
        format!(
            "cannot create state directory {} (set config.state_dir or pass --state-dir to a writable place)",
            state_dir.display()
        )
    })
}

/// `--send`: result lines from stdin through the configured outputs, and
/// to the running daemon as pings where they are a heartbeat check's; 0
/// only when every line was delivered or spooled and every ping recorded.
fn send(cfg: &Config) -> anyhow::Result<i32> {
    ensure_state_dir(cfg)?;
    let beats: Vec<&crate::model::CheckSpec> = cfg
        .checks
        .iter()
        .filter(|c| matches!(c.kind, crate::model::CheckKind::Heartbeat(_)))
        .collect();
    let mut missed = Vec::new();
    let mut ping = |r: &crate::passive::PassiveResult| {
        let Some(check) = beats.iter().find(|c| r.is_ping_for(c)) else {
            return false;
        };
        let request = crate::control::Request::Ping {
            check: check.id.to_string(),
            start: false,
            fail: false,
            exit: None,
            nagios: Some(r.status.code() as u8),
            message: r.output.clone(),
        };
        let answer = crate::control::client::call(
            &cfg.state_dir,
            &request,
            std::time::Duration::from_secs(30),
        );
        match answer.map(|a| a.error) {
            Ok(None) => {}
            Ok(Some(e)) => missed.push(e),
            Err(e) => missed.push(e.to_string()),
        }
        true
    };
    let any_beat = !beats.is_empty();
    let n = crate::passive::send_stdin(
        &cfg.outputs,
        &cfg.state_dir,
        std::io::stdin().lock(),
        any_beat.then_some(&mut ping as &mut dyn FnMut(&crate::passive::PassiveResult) -> bool),
    )?;
    log::info!("{n} result(s) forwarded");
    if let Some(first) = missed.first() {
        anyhow::bail!(
            "--send: {} results for heartbeat checks were not recorded as pings: {first}",
            missed.len()
        );
    }
    Ok(0)
}
