"""The agent's own listeners, the task metadata endpoint (with the task role
credentials behind 169.254.170.2) and --metrics-listen, are served by the
same HTTP server module as barged's API, so they have its defences: a
request line that is not HTTP gets 400, and a client that does not finish
its headers in time (silent or trickling a byte at a time) is cut off while
other clients are answered."""
import json
import os
import socket
import time
import urllib.error
import urllib.request

from test_http_server import read_answer
from test_metrics import agent_port as metrics_port

# The agent's header timeout (src/agent/metadata.c, stats.c use the default).
HEADER_TIMEOUT = 10


def metadata_port(agent):
    return json.load(open(os.path.join(agent.data_dir, "state.json")))["metadataPort"]


def listeners(agent_factory):
    agent = agent_factory(extra_args=["--metrics-listen", "127.0.0.1:0"])
    return {"metadata": metadata_port(agent), "metrics": metrics_port(agent)}


def connect(port, timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def closed_unanswered(s):
    """Whether the server closes s (within 30 s) without a byte of answer."""
    s.settimeout(30)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_garbage_request_lines_get_400(agent_factory):
    for name, port in listeners(agent_factory).items():
        for garbage in (b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                        b"GET /\r\n\r\n"):
            s = connect(port)
            s.sendall(garbage)
            answer = read_answer(s)
            s.close()
            assert answer.startswith(b"HTTP/1.1 400 "), (name, garbage, answer)


def test_what_the_listeners_serve(agent_factory):
    ports = listeners(agent_factory)
    status, body = get(ports["metadata"], "/v4/no-such-token/task")
    assert status == 404 and json.loads(body) == {"error": "unknown container metadata path"}
    status, body = get(ports["metadata"], "/v2/credentials/no-such-id")
    assert status == 400 and json.loads(body)["code"] == "InvalidIdInRequest", body
    req = urllib.request.Request(f"http://127.0.0.1:{ports['metadata']}/v4/x", data=b"{}",
                                 method="POST")
    try:
        urllib.request.urlopen(req, timeout=30)
        assert False, "a POST was answered"
    except urllib.error.HTTPError as e:
        assert e.code == 405
    status, body = get(ports["metrics"], "/metrics")
    assert status == 200 and b"barge_agent_tasks 0" in body, body
    assert get(ports["metrics"], "/other")[0] == 404


def test_unfinished_headers_are_cut_off(agent_factory):
    """A silent connection, one that stopped inside its headers and one that
    trickles them a byte at a time are all closed after the header timeout,
    on both listeners; a normal request meanwhile is answered."""
    ports = listeners(agent_factory)
    silent = {name: connect(port) for name, port in ports.items()}
    stalled = {}
    for name, port in ports.items():
        stalled[name] = connect(port)
        stalled[name].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    slow = {name: connect(port) for name, port in ports.items()}
    for s in slow.values():
        s.setblocking(False)
    trickle = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 1000
    closed = set()
    # Three header timeouts at most: the old listeners never closed a
    # trickling connection.
    for i in range(HEADER_TIMEOUT * 3 * 4):
        for name, s in slow.items():
            if name in closed:
                continue
            try:
                s.send(trickle[i:i + 1])
                if s.recv(1) == b"":
                    closed.add(name)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(name)
        if closed == set(ports):
            break
        time.sleep(0.25)
    assert closed == set(ports), f"kept trickling connections: {set(ports) - closed}"
    assert get(ports["metrics"], "/metrics")[0] == 200
    for group in (silent, stalled):
        for name, s in group.items():
            assert closed_unanswered(s), (name, "an unfinished request was kept or answered")
    for s in list(silent.values()) + list(stalled.values()) + list(slow.values()):
        s.close()
