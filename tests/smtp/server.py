#!/usr/bin/python3
"""A small SMTP server for picomon's mail tests (aiosmtpd, loopback only).

Every message it accepts is written to OUTDIR as msg-NNNN.json (temp file,
then rename, so a test never reads half a file) with the envelope, the raw
data, the subject and body decoded, whether the session was encrypted and
who authenticated.

    server.py --port P --dir OUTDIR [--bind 127.0.0.1]
              [--starttls CERT KEY | --tls CERT KEY]
              [--auth USER:PASSWORD] [--reject-rcpt ADDR]
              [--fail-rcpt-4xx-once ADDR] [--data-4xx-first N]
              [--max-line N] [--quit-delay SECONDS] [--ready FILE]

--starttls offers STARTTLS; --tls wraps the whole connection (implicit TLS).
--auth requires AUTH (PLAIN/LOGIN) with that user and password.
--reject-rcpt answers 550 to RCPT TO that address (may be repeated).
--fail-rcpt-4xx-once answers 451 to the first RCPT TO that address, then
  accepts it.
--data-4xx-first answers 451 to the first N messages (after their data).
--max-line sets the longest line accepted (aiosmtpd's default is 1001
  octets with CRLF); a message with a longer line gets "500 Line too long".
--quit-delay answers QUIT only after that many seconds (the message was
  already recorded at the end of its data).
Refusals are logged to stderr, one line each.
--ready FILE is written once the socket listens; it holds the port (--port 0
binds any free port). The socket has SO_REUSEPORT, so it can take over a port
the test holds reserved (tests/support/ports.rs).
"""

import argparse
import asyncio
import csv
import email
import io
import email.header
import email.policy
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, outdir, implicit_tls, a):
        self.outdir = outdir
        self.implicit_tls = implicit_tls
        self.reject_rcpt = set(a.reject_rcpt or [])
        self.fail_once = set(a.fail_rcpt_4xx_once or [])
        self.data_4xx_left = a.data_4xx_first
        self.quit_delay = a.quit_delay
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject_rcpt:
            print("refused RCPT %s with 550" % address, file=sys.stderr, flush=True)
            return "550 5.1.1 <%s>: no such user here" % address
        if address in self.fail_once:
            self.fail_once.discard(address)
            print("refused RCPT %s with 451" % address, file=sys.stderr, flush=True)
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_4xx_left > 0:
            self.data_4xx_left -= 1
            print("refused DATA with 451", file=sys.stderr, flush=True)
            return "451 4.3.0 local problem, try again later"
        n = next(self.counter)
        msg = email.message_from_bytes(envelope.original_content,
                                       policy=email.policy.compat32)
        subject = msg.get("Subject", "")
        payload = msg.get_payload(decode=True) or b""
        record = {
            # The subject and body as a reader sees them (RFC 2047 words
            # and quoted-printable decoded, folds undone).
            "subject_decoded": str(email.header.make_header(
                email.header.decode_header(subject))),
            "body_decoded": payload.decode("utf-8", "replace"),
            # A multipart mail's leaves; a text/csv one also as the rows
            # Python's csv module reads from it.
            "parts": [part_record(p) for p in msg.walk() if not p.is_multipart()]
            if msg.is_multipart() else [],
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": self.implicit_tls or session.ssl is not None,
            "auth_user": (session.auth_data.login.decode()
                          if isinstance(session.auth_data, LoginPassword) else None),
        }
        path = os.path.join(self.outdir, "msg-%04d.json" % n)
        tmp = os.path.join(self.outdir, ".tmp-%04d" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, path)
        return "250 2.0.0 Ok: queued as test-%04d" % n

    async def handle_QUIT(self, server, session, envelope):
        if self.quit_delay > 0:
            print("answering QUIT in %g s" % self.quit_delay, file=sys.stderr, flush=True)
            await asyncio.sleep(self.quit_delay)
        return "221 Bye"


def part_record(part):
    text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    record = {"type": part.get_content_type(), "filename": part.get_filename(),
              "text": text}
    if part.get_content_type() == "text/csv":
        record["csv_rows"] = list(csv.reader(io.StringIO(text, newline="")))
    return record


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--dir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--reject-rcpt", action="append")
    p.add_argument("--fail-rcpt-4xx-once", action="append")
    p.add_argument("--data-4xx-first", type=int, default=0)
    p.add_argument("--max-line", type=int)
    p.add_argument("--quit-delay", type=float, default=0)
    p.add_argument("--ready")
    a = p.parse_args()
    if a.bind not in ("127.0.0.1", "::1"):
        sys.exit("server.py: loopback only")

    handler = Recorder(a.dir, bool(a.tls), a)
    if a.max_line:
        SMTP.line_length_limit = a.max_line
    smtp_kwargs = {"hostname": "smtp.test", "decode_data": False}
    if a.starttls:
        smtp_kwargs["tls_context"] = tls_context(*a.starttls)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            # handled=False: aiosmtpd answers 535 itself on failure.
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        smtp_kwargs["authenticator"] = authenticator
        smtp_kwargs["auth_required"] = True
        # Implicit TLS sessions are encrypted too; plain-text auth is refused
        # only on a plain connection.
        smtp_kwargs["auth_require_tls"] = not a.tls
    ssl_ctx = tls_context(*a.tls) if a.tls else None

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, **smtp_kwargs),
                           host=a.bind, port=a.port, ssl=ssl_ctx,
                           reuse_port=True))
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write("%d\n" % server.sockets[0].getsockname()[1])
        os.rename(a.ready + ".tmp", a.ready)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
