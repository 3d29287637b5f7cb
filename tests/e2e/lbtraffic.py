"""HTTP traffic through a load balancer's listener, shared by the ELBv2 and
the service load balancer suites."""
import socket
import threading
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path="/"):
    """(status, body without surrounding white space) of GET path on port."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read().decode().strip()


class Load:
    """Sends requests through port one after another until stopped; counts
    what came back (the bodies, in order) and every failed request."""

    def __init__(self, port):
        self.port = port
        self.failures = []
        self.seen = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                status, body = get(self.port)
                self.seen.append(body)
                if status != 200:
                    self.failures.append(status)
            except Exception as e:  # any failed request counts
                self.failures.append(repr(e))

    def count(self):
        return len(self.seen) + len(self.failures)

    def stop(self):
        self.running = False
        self.thread.join(timeout=30)
