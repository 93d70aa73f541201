//! `picomon mail-in` behind a real MTA: replies sent by SMTP to a private
//! postfix, whose alias pipes them to `picomon -c CONFIG mail-in` (as
//! `nobody`, postfix's `default_privs`, which is also the daemon's user
//! here), and aiosmtpd receiving everything picomon sends.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::ports::reserve_port;
use crate::support::postfix::{Postfix, DOMAIN};
use crate::support::rig::{self, Rig, StatusCheck, WITHIN};
use crate::support::smtp::Mail;
use crate::support::{picomon_bin, Daemon};

/// `picomon status --json`'s ack of the check: `(by, comment)`.
fn ack_of(t: &Rig) -> Option<(String, String)> {
    let c = t.check_json();
    c["ack"].as_object().map(|a| {
        (
            a["by"].as_str().unwrap_or("").to_string(),
            a["comment"].as_str().unwrap_or("").to_string(),
        )
    })
}

/// A reply as a mail client writes it: the command on top, the alert
/// quoted below.
fn reply(from: &str, in_reply_to: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: picomon@{DOMAIN}\r\nSubject: Re: [picomon] CRITICAL: flappy on web1\r\n\
         Message-ID: <reply.{}@client.example>\r\nIn-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n\
         {extra}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\r\n\
         On Mon, picomon wrote:\r\n> CRITICAL since ...\r\n> ack\r\n",
        from.len() + body.len()
    )
    .into_bytes()
}

/// The answers to `to` so far.
fn answers<'a>(msgs: &'a [Mail], to: &str) -> Vec<&'a Mail> {
    msgs.iter()
        .filter(|m| m.rcpt_tos.iter().any(|r| r == to))
        .collect()
}

#[test]
#[ignore = "needs root: a private postfix, and the daemon as nobody"]
fn replies_through_postfix_ack_a_check_or_get_one_explanation() {
    let t = Rig::with(
        StatusCheck {
            retry: 1,
            ..rig::FLAPPY
        },
        0.3,
        "",
        r#"
config.emails.reply_to = "picomon@mx.test";
config.emails.ack_from = ["@team.example.org"];
config.emails.ack_secret_file = "@DIR@/ack-secret";
"#,
    );
    // Run by nobody: the daemon (--user) and mail-in (postfix's
    // default_privs); the secret is theirs alone.
    fs::set_permissions(t.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(t.config(), fs::Permissions::from_mode(0o644)).unwrap();
    let secret = t.path("ack-secret");
    fs::write(&secret, "a-secret-of-enough-length-for-tokens\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Command::new("chown")
        .arg("nobody")
        .arg(&secret)
        .status()
        .unwrap()
        .success());
    let server = t.server();
    t.set_status(2, "CRITICAL - down");
    let config = t.config();
    let mut d = Daemon::start_anew(t.dir(), &["-c", &config, "--user", "nobody"]);
    let problem = server.wait_messages(1).remove(0);
    // The Problem mail says how to answer, and where.
    assert_eq!(problem.one("Reply-To"), format!("picomon@{DOMAIN}"));
    assert!(
        problem
            .body_decoded
            .contains("Reply with `ack`, `ack sticky` or `silence 2h` to picomon@mx.test"),
        "{}",
        problem.body_decoded
    );
    let root = problem.one("Message-ID").to_string();
    assert!(root.contains(".k"), "no thread token in {root}");

    let (held, port) = reserve_port();
    drop(held);
    let mail_in = format!("|{} -c {config} mail-in", picomon_bin().display());
    let pf = Postfix::start(&t.path("postfix"), port, &[("picomon", &mail_in)]);
    let to = format!("picomon@{DOMAIN}");
    // Deliveries so far, and those deferred (a daemon that was down).
    let sent = std::cell::Cell::new(0);
    let deferred = std::cell::Cell::new(0);
    let send = |from: &str, msg: &[u8]| {
        pf.send(from, &to, msg);
        sent.set(sent.get() + 1);
        pf.wait_delivered(sent.get(), deferred.get());
    };

    // A stranger: one explanation, nothing changes; the same again: no
    // second explanation within the hour.
    let eve = "eve@elsewhere.example";
    send(eve, &reply(eve, &root, "", "ack on it"));
    let msgs = server.wait_messages(2);
    let a = answers(&msgs, eve);
    assert_eq!(a.len(), 1, "{msgs:#?}");
    assert!(a[0].body_decoded.contains("may not act on"), "{:#?}", a[0]);
    assert_eq!(a[0].one("Auto-Submitted"), "auto-replied");
    assert_eq!(ack_of(&t), None);
    send(eve, &reply(eve, &root, "", "ack on it"));
    assert_eq!(answers(&server.received(), eve).len(), 1);

    // Someone allowed (ack_from), but to a thread picomon does not know.
    let ann = "ann@team.example.org";
    send(
        ann,
        &reply(ann, "<unknown.1@client.example>", "", "ack on it"),
    );
    let msgs = server.wait_messages(3);
    let a = answers(&msgs, ann);
    assert_eq!(a.len(), 1, "{msgs:#?}");
    assert!(
        a[0].body_decoded.contains("not a reply to a picomon alert"),
        "{:#?}",
        a[0]
    );

    // A forged reply: the thread's id, a wrong token.
    let bob = "bob@team.example.org";
    let at = root.find(".k").unwrap() + 2;
    let flipped = if &root[at..at + 1] == "0" { "1" } else { "0" };
    let forged = format!("{}{flipped}{}", &root[..at], &root[at + 1..]);
    send(bob, &reply(bob, &forged, "", "ack on it"));
    let msgs = server.wait_messages(4);
    let a = answers(&msgs, bob);
    assert_eq!(a.len(), 1, "{msgs:#?}");
    assert!(a[0].body_decoded.contains("token"), "{:#?}", a[0]);
    assert_eq!(ack_of(&t), None);

    // An automatic answer (a vacation notice): no answer, nothing changes,
    // even with a command on top.
    let carl = "carl@team.example.org";
    send(
        carl,
        &reply(carl, &root, "Auto-Submitted: auto-replied\r\n", "ack"),
    );
    // Hostile input: control characters and a line that is no header
    // field (taken by postfix as the body's start), then a message over
    // the size limit. Both are refused cleanly (delivered: exit 0).
    let dan = "dan@team.example.org";
    send(
        dan,
        format!(
            "From: {dan}\r\nSubject: \x1b[31mred\x07\r\nIn-Reply-To: {root}\r\nno header here\r\n\r\nack \x1b]0;x\x07\r\n"
        )
        .as_bytes(),
    );
    let erin = "erin@team.example.org";
    let huge = format!(
        "ack on it\r\n{}",
        format!("{}\r\n", "x".repeat(100)).repeat(15_000)
    );
    send(erin, &reply(erin, &root, "", &huge));
    let msgs = server.wait_messages(6);
    assert!(answers(&msgs, carl).is_empty(), "{msgs:#?}");
    let a = answers(&msgs, erin);
    assert_eq!(a.len(), 1, "{msgs:#?}");
    assert!(a[0].body_decoded.contains("larger than"), "{:#?}", a[0]);
    for m in answers(&msgs, dan) {
        assert!(!m.subject().contains('\x1b'), "{m:#?}");
        assert!(!m.body_decoded.contains('\x1b'), "{m:#?}");
    }
    assert_eq!(ack_of(&t), None, "{msgs:#?}");

    // A contact's reply acks the check; the thread's ack mail says who,
    // by mail. Sent while the daemon is down, mail-in exits 75: postfix
    // keeps the reply and delivers it again once the daemon is back.
    assert!(d.stop().success(), "{}", d.stderr());
    let ops = "ops@example.org";
    let before = server.received().len();
    pf.send(
        ops,
        &to,
        &reply(&format!("Ops <{ops}>"), &root, "", "ack on it"),
    );
    crate::support::wait_until(WITHIN, "a deferred delivery", || {
        (pf.deferred() >= 1).then_some(())
    });
    assert!(
        pf.log().contains("no picomon daemon is running"),
        "{}",
        pf.log()
    );
    // Nothing acked meanwhile (the daemon's saved acks).
    assert!(!crate::support::read(&t.path("state/quiet")).contains("by mail"));
    deferred.set(pf.deferred());
    let mut d = Daemon::start_anew(t.dir(), &["-c", &config, "--user", "nobody"]);
    sent.set(sent.get() + 1);
    // Retried every second or so: more deferrals until the daemon listens.
    crate::support::wait_until(WITHIN, "the retried delivery", || {
        (pf.delivered() >= sent.get()).then_some(())
    });
    deferred.set(pf.deferred());
    let (by, comment) = crate::support::wait_until(WITHIN, "the ack", || ack_of(&t));
    assert_eq!(
        (by.as_str(), comment.as_str()),
        ("ops@example.org by mail", "on it")
    );
    let msgs = server.wait_messages(before + 1);
    let ack_mail = msgs
        .iter()
        .find(|m| {
            m.body_decoded
                .contains("Acknowledged by ops@example.org by mail: on it")
        })
        .unwrap_or_else(|| panic!("no ack mail: {msgs:#?}"));
    assert_eq!(ack_mail.one("In-Reply-To"), root);
    // The contact is not answered: the ack mail is the answer.
    assert!(answers(&msgs, ops)
        .iter()
        .all(|m| m.one("Auto-Submitted") == "auto-generated"));

    // `unack` and `silence` are confirmed to the contact, each time.
    let confirmations = |n: usize| {
        crate::support::wait_until(WITHIN, "the confirmation", || {
            let c: Vec<Mail> = answers(&server.received(), ops)
                .into_iter()
                .filter(|m| m.one("Auto-Submitted") == "auto-replied")
                .cloned()
                .collect();
            (c.len() >= n).then_some(c)
        })
    };
    send(ops, &reply(ops, &root, "", "unack"));
    let c = confirmations(1);
    assert!(
        c[0].body_decoded.contains("acknowledgement ended"),
        "{c:#?}"
    );
    assert_eq!(ack_of(&t), None);
    send(ops, &reply(ops, &root, "", "Silence 2h deploy"));
    let c = confirmations(2);
    assert!(c[1].body_decoded.contains("silence"), "{c:#?}");
    let out = t.picomon(&["silences"]);
    let silences = String::from_utf8_lossy(&out.stdout);
    assert!(
        silences.contains("by ops@example.org by mail") && silences.contains("deploy"),
        "{silences}"
    );
    drop(pf);
    assert!(d.stop().success(), "{}", d.stderr());
}
