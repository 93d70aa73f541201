#!/usr/bin/python3
"""A webhook receiver for picomon's channel tests.

receiver.py PORT LOG [ANSWERS]

Listens on 127.0.0.1:PORT (0: any free port), prints "READY <port>", and
appends every request it gets to LOG as one JSON line: method, path,
headers, body (text). It answers with the HTTP status on the first line of
the file ANSWERS, removing that line (so a test scripts "500 then 200"),
and 200 when the file is missing or empty. The request is logged whatever
the answer, with the answer it got.
"""
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log = int(sys.argv[1]), sys.argv[2]
answers = sys.argv[3] if len(sys.argv) > 3 else None
lock = threading.Lock()


def next_answer():
    if not answers or not os.path.exists(answers):
        return 200
    with open(answers) as f:
        lines = f.read().splitlines()
    if not lines:
        return 200
    with open(answers, "w") as f:
        f.write("".join(line + "\n" for line in lines[1:]))
    return int(lines[0])


class Handler(BaseHTTPRequestHandler):
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        with lock:
            code = next_answer()
            with open(log, "a") as f:
                f.write(json.dumps({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k: v for k, v in self.headers.items()},
                    "body": body,
                    "answer": code,
                }) + "\n")
        reply = b'{"ok": true}' if code < 300 else b'{"error": "scripted refusal"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = handle_one
    do_POST = handle_one
    do_PUT = handle_one

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("READY %d" % server.server_address[1], flush=True)
server.serve_forever()
