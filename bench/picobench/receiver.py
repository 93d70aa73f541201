"""A local NSCA-web endpoint for pcrunner: accepts its form POSTs on
127.0.0.1, answers 200 and counts the result lines, so the peer's run is
only counted as done when its results really arrived."""
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """`with Receiver() as r:` serves on r.url until the block ends."""

    def __init__(self):
        self.lines = 0
        self.posts = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                text = "".join(form.get("input", []))
                n = sum(1 for line in text.splitlines() if "_CHECK_RESULT;" in line)
                with receiver._lock:
                    receiver.lines += n
                    receiver.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/queue"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def count(self):
        with self._lock:
            return self.lines

    def reset(self):
        with self._lock:
            self.lines = 0
            self.posts = 0

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        return False
