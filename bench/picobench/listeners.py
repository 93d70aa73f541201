"""Loopback TCP listeners for the built-in probe measurement: a bounded
number of sockets on 127.0.0.1 only, one thread accepting and closing
connections, all closed when the with-block ends."""
import selectors
import socket
import threading


class Listeners:
    def __init__(self, count):
        self.count = count
        self.accepted = 0
        self.ports = []
        self._socks = []
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        for _ in range(self.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(4096)
            s.setblocking(False)
            self._socks.append(s)
            self.ports.append(s.getsockname()[1])
            self._sel.register(s, selectors.EVENT_READ)
        self._thread.start()
        return self

    def _serve(self):
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.2):
                try:
                    conn, _ = key.fileobj.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                conn.close()
                self.accepted += 1

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        for s in self._socks:
            s.close()
        self._sel.close()
        return False
