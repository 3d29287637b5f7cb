"""barged's HTTP listener under hostile and crowded connections: clients that
never finish their headers, idle sockets, many agents long-polling at once,
one address opening too many connections, request lines that are not HTTP,
a write stuck behind SQLite's lock, and a SIGTERM while agents poll. Raw sockets from several loopback source
addresses (127.0.0.2, ...) stand in for many clients."""
import json
import os
import signal
import socket
import sqlite3
import threading
import time

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, Agent, Barged, cleanup_runtime


def connect(barged, source="127.0.0.1", timeout=30):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", barged.port))
    return s


def open_many(barged, n, first_bytes=b"", per_source=400):
    """n connections spread over 127.0.0.2.. (per_source each), each sent
    first_bytes (b"": nothing)."""
    socks = []
    for i in range(n):
        s = connect(barged, source=f"127.0.0.{2 + i // per_source}")
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    return socks


def read_answer(s):
    """Everything the server sends until it closes or a full answer is in."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    return data


def close_all(socks):
    for s in socks:
        s.close()


def signed_post(barged, path, body):
    data = json.dumps(body).encode()
    req = AWSRequest(method="POST", url=barged.endpoint + path, data=data,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ecs", REGION).add_auth(req)
    return dict(req.headers.items()), data


def raw_request(path, headers, data, port):
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def register_instance(barged, ecs):
    """An instance registered over the agent channel; its bearer token."""
    ecs.create_cluster(clusterName="default")
    headers, data = signed_post(barged, "/agent/register", {
        "cluster": "default", "cpu": 1024, "memory": 1024, "hostname": "sim",
        "agentVersion": "test", "architecture": "x86_64", "runtime": "simulated"})
    s = connect(barged)
    s.sendall(raw_request("/agent/register", headers, data, barged.port))
    answer = read_answer(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:500]
    return json.loads(answer.partition(b"\r\n\r\n")[2])["token"]


def poll_request(barged, token, wait):
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    return raw_request("/agent/poll", headers, json.dumps({"known": {}, "wait": wait}).encode(),
                       barged.port)


def test_half_open_and_idle_connections_leave_room_for_clients(barged, tmp_path):
    """2,000 connections that stopped in the middle of their request line and
    500 that never said anything: boto3 calls and a real agent are still
    served."""
    half_open = open_many(barged, 2000, first_bytes=b"POST /agent/poll HTT")
    idle = open_many(barged, 500)[::-1]
    try:
        ecs = barged.client("ecs")
        ecs.create_cluster(clusterName="default")
        for i in range(5):
            ecs.register_task_definition(family=f"f{i}", containerDefinitions=[
                {"name": "c", "image": "busybox", "memory": 16}])
        assert len(ecs.list_task_definitions()["taskDefinitionArns"]) == 5
        agent = Agent(barged, str(tmp_path / "host1"))
        try:
            agent.start()
            arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
            assert arns == [agent.instance_arn]
        finally:
            agent.close()
        # Nothing was answered on the half-open or idle connections.
        for s in half_open[:10] + idle[:10]:
            s.setblocking(False)
            try:
                assert s.recv(1) == b"", "the server answered an unfinished request"
            except BlockingIOError:
                pass
    finally:
        close_all(half_open + idle)


def test_header_timeout_closes_half_open_connections_not_parked_polls(tmp_path):
    """With --header-timeout 1 and --idle-timeout 1, connections that do not
    finish their headers (silent or trickling) are closed, while a long poll
    parked for longer than both is answered."""
    b = Barged(str(tmp_path / "data"),
               extra_args=["--header-timeout", "1", "--idle-timeout", "1"]).start()
    try:
        token = register_instance(b, b.client("ecs"))
        poll = connect(b)
        poll.sendall(poll_request(b, token, wait=2))  # capped at agent-timeout/3 = 2 s
        half_open = open_many(b, 20, first_bytes=b"GET / HTTP/1.1\r\nHost: x\r\n")
        silent = open_many(b, 20)
        for s in half_open + silent:
            s.settimeout(30)
            assert read_answer(s) == b"", "a half-open connection got an answer"
        answer = read_answer(poll)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["tasks"] == []
        close_all(half_open + silent + [poll])
        # A client that trickles its headers a byte at a time is not silent,
        # but its headers are late all the same.
        slow = connect(b)
        slow.setblocking(False)
        closed = False
        for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                slow.send(bytes([byte]))
                closed = slow.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            if closed:
                break
            time.sleep(0.2)
        slow.close()
        assert closed, "a connection trickling its headers was kept for 20 s"
    finally:
        b.stop()


def answers(barged, source):
    """Whether a connection from source gets an HTTP answer to a request."""
    try:
        s = connect(barged, source=source, timeout=10)
        s.sendall(b"GET /no-such-bucket HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_answer(s)
        s.close()
    except OSError:
        return False
    return data.startswith(b"HTTP/1.1 ")


def test_connections_per_client_are_limited(tmp_path):
    b = Barged(str(tmp_path / "data"), extra_args=["--max-connections-per-client", "4"]).start()
    try:
        held = [connect(b) for _ in range(4)]
        assert not answers(b, "127.0.0.1")
        assert answers(b, "127.0.0.2")
        held.pop().close()
        deadline = time.time() + 10
        while not answers(b, "127.0.0.1"):
            assert time.time() < deadline, "a closed connection did not free its slot"
            time.sleep(0.1)
        close_all(held)
    finally:
        b.stop()


def test_garbage_request_lines_get_400(barged):
    for garbage in (b"GARBAGE\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
                    b"GET /\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n"):
        s = connect(barged)
        s.sendall(garbage)
        answer = read_answer(s)
        s.close()
        assert answer.startswith(b"HTTP/1.1 400 "), (garbage, answer)
    # A garbage request after a good one on the same connection too.
    s = connect(barged)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    first = read_answer(s)
    assert first.startswith(b"HTTP/1.1 ") and not first.startswith(b"HTTP/1.1 400"), first
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    assert read_answer(s).startswith(b"HTTP/1.1 400 ")
    s.close()
    # A request that closes its connection gets its answer and nothing more.
    for closing in (b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /x HTTP/1.0\r\n\r\n"):
        s = connect(barged)
        s.sendall(closing)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        assert data.count(b"HTTP/1.") == 1 and b" 400 " not in data, data


def test_many_long_polls_do_not_hold_threads(barged):
    """1,500 agents' long polls parked at once (more than the old
    thread-per-connection listener could hold): a boto3 call is answered
    meanwhile, and every poll is answered at its deadline."""
    ecs = barged.client("ecs")
    token = register_instance(barged, ecs)
    req = poll_request(barged, token, wait=2)
    polls = open_many(barged, 1500, per_source=400)
    for s in polls:
        s.sendall(req)
    assert ecs.list_clusters()["clusterArns"]
    for s in polls:
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    close_all(polls)


def test_a_stuck_write_holds_up_no_read(tmp_path):
    """With one event thread, a write that waits for SQLite's write lock (held
    here by another connection to the database file) waits on the handler
    pool: reads are answered meanwhile on the event thread, and the write
    completes once the lock is free. Run inline, the write would hold the
    only event thread and the reads would time out."""
    data = str(tmp_path / "data")
    b = Barged(data, extra_args=["--http-threads", "1"],
               store="sqlite://" + os.path.join(data, "barge.db")).start()
    db = None
    try:
        b.client().create_cluster(clusterName="first")
        db = sqlite3.connect(os.path.join(data, "barge.db"), timeout=30, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        result = {}

        def write():
            try:
                result["cluster"] = b.client().create_cluster(clusterName="held")["cluster"]
            except Exception as e:  # reported below
                result["error"] = e

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1)
        assert writer.is_alive(), result
        reader = boto3.client(
            "ecs", endpoint_url=b.endpoint, region_name=REGION, aws_access_key_id=b.access_key,
            aws_secret_access_key=b.secret_key,
            config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=10))
        for _ in range(5):
            arns = reader.list_clusters()["clusterArns"]
            assert any(a.endswith("/first") for a in arns), arns
            assert reader.describe_clusters(clusters=["first"])["clusters"][0]["status"] == "ACTIVE"
        assert writer.is_alive(), result
        db.execute("ROLLBACK")
        writer.join(30)
        assert not writer.is_alive()
        assert result.get("cluster", {}).get("status") == "ACTIVE", result
        assert reader.describe_clusters(clusters=["held"])["clusters"][0]["status"] == "ACTIVE"
    finally:
        if db:
            db.close()
        b.stop()


def test_sigterm_with_agents_polling_and_a_service(tmp_path, busybox):
    """barged stops promptly though an agent is long-polling (20 s polls, as
    with the default --agent-timeout) and a service's task runs (the bound
    is for correctness, generous on a busy machine)."""
    b = Barged(str(tmp_path / "data"), extra_args=["--agent-timeout", "60"]).start()
    agent = Agent(b, str(tmp_path / "host1"))
    try:
        ecs = b.client("ecs")
        ecs.create_cluster(clusterName="default")
        agent.start()
        td = ecs.register_task_definition(family="sleeper", containerDefinitions=[
            {"name": "main", "image": busybox, "memory": 16,
             "command": ["sleep", "600"]}])["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster="default", serviceName="s", taskDefinition=td,
                           desiredCount=1)
        deadline = time.time() + 60
        while ecs.describe_services(cluster="default",
                                    services=["s"])["services"][0]["runningCount"] < 1:
            assert time.time() < deadline, "the service's task never ran"
            time.sleep(0.3)
        time.sleep(1)  # the agent's next poll is parked
        b.proc.send_signal(signal.SIGTERM)
        b.proc.wait(timeout=5)
        assert b.proc.returncode == 0
    finally:
        b.stop()
        agent.close()


def test_sigterm_in_dev_mode(tmp_path):
    """barged --dev stops its two local agents with it, promptly, although
    both are long-polling (20 s polls)."""
    b = Barged(str(tmp_path / "data"), extra_args=["--dev", "--agent-timeout", "60"])
    try:
        b.start()
        ecs = b.client("ecs")
        deadline = time.time() + 60
        while not ecs.list_container_instances(cluster="default")["containerInstanceArns"]:
            assert time.time() < deadline, "the local agent never registered"
            time.sleep(0.3)
        time.sleep(1)  # its next poll is parked
        b.proc.send_signal(signal.SIGTERM)
        b.proc.wait(timeout=5)
        assert b.proc.returncode == 0
    finally:
        b.stop()
        for d in ("agent", "fargate-agent"):
            cleanup_runtime(str(tmp_path / "data" / d))
