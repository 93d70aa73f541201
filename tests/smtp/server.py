#!/usr/bin/python3
"""A small SMTP server for picomon's mail tests (aiosmtpd, loopback only).

Every message it accepts is written to OUTDIR as msg-NNNN.json (temp file,
then rename, so a test never reads half a file) with the envelope, the raw
data, whether the session was encrypted and who authenticated.

    server.py --port P --dir OUTDIR [--bind 127.0.0.1]
              [--starttls CERT KEY | --tls CERT KEY]
              [--auth USER:PASSWORD] [--reject-rcpt ADDR] [--ready FILE]

--starttls offers STARTTLS; --tls wraps the whole connection (implicit TLS).
--auth requires AUTH (PLAIN/LOGIN) with that user and password.
--reject-rcpt answers 550 to RCPT TO that address.
--ready FILE is written once the socket listens; it holds the port (--port 0
binds any free port). The socket has SO_REUSEPORT, so it can take over a port
the test holds reserved (tests/support/ports.rs).
"""

import argparse
import asyncio
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, outdir, implicit_tls, reject_rcpt):
        self.outdir = outdir
        self.implicit_tls = implicit_tls
        self.reject_rcpt = reject_rcpt
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.reject_rcpt:
            return "550 5.1.1 <%s>: no such user here" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        record = {
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
    p.add_argument("--reject-rcpt")
    p.add_argument("--ready")
    a = p.parse_args()
    if a.bind not in ("127.0.0.1", "::1"):
        sys.exit("server.py: loopback only")

    handler = Recorder(a.dir, bool(a.tls), a.reject_rcpt)
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
