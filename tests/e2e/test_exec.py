"""ECS Exec: ExecuteCommand and `barge exec` against a real agent running a
busybox container. barged relays the session between the client's websocket
and the agent's; the command runs in the container through the runtime's
exec, on a terminal when the client has one."""
import base64
import fcntl
import os
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time
import urllib.parse

import botocore.exceptions
import pytest

from conftest import binary, error_code, error_message, wait_task
from test_cli_deploy import Project

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def start_task(ecs, image, family="shell", enable=True, containers=("app",)):
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": name, "image": image, "memory": 32, "command": SLEEPER} for name in containers])
    arn = ecs.run_task(cluster="default", taskDefinition=family,
                       enableExecuteCommand=enable)["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn, statuses=("RUNNING", "STOPPED"))
    assert task["lastStatus"] == "RUNNING", task
    assert task["enableExecuteCommand"] is enable
    return arn


def project(barged, tmp_path, image, family="shell"):
    p = Project(barged, tmp_path / "proj", image)
    p.write("ecspresso.yml", "cluster: default\ntask_definition: td.json\n")
    p.write("td.json", '{"family": "%s", "containerDefinitions": [{"name": "app", '
            '"image": "{{ must_env `IMAGE` }}", "memory": 32}]}' % family)
    return p


def run_exec(p, *args, stdin=b""):
    return subprocess.run([binary("barge"), "exec", *args], cwd=p.dir, env=p.env, input=stdin,
                          capture_output=True, timeout=120)


def test_exec_runs_a_command_and_returns_its_exit_status(barged, agent, busybox, tmp_path):
    ecs = barged.client()
    arn = start_task(ecs, busybox)
    p = project(barged, tmp_path, busybox)
    r = run_exec(p, "--id", arn.rsplit("/", 1)[1], "--command", "sh -c 'echo hi; exit 3'")
    assert r.returncode == 3, r.stderr
    assert r.stdout == b"hi\n"
    # Without --id, the one running task of the family; stdin is piped in
    # and its end is the command's end of input.
    r = run_exec(p, "--command", "sh -c 'cat; echo err >&2'", stdin=b"piped through\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"piped through\n"
    assert b"err\n" in r.stderr
    # The audit: who ran what where, and how it ended; never what flowed.
    log = open(barged.log_path, errors="replace").read()
    opened = [line for line in log.splitlines() if "exec session" in line and "opened" in line]
    assert len(opened) == 2, opened
    assert "sh -c 'echo hi; exit 3'" in opened[0] and "container app" in opened[0]
    assert arn in opened[0] and "cluster default" in opened[0]
    assert "arn:aws:iam::" in opened[0] or "root" in opened[0]
    assert re.search(r"exec session ecs-execute-command-\w+ ended: exit status 3", log)
    assert "piped through" not in log


def test_exec_interactive_session_through_a_terminal(barged, agent, busybox, tmp_path):
    ecs = barged.client()
    start_task(ecs, busybox)
    p = project(barged, tmp_path, busybox)
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    before = termios.tcgetattr(slave)

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([binary("barge"), "exec"], cwd=p.dir, env=p.env, stdin=slave,
                            stdout=slave, stderr=slave, preexec_fn=own_terminal)
    out = b""

    def read_until(pattern, timeout=60):
        nonlocal out
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, out)
            if m:
                out = out[m.end():]
                return m
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
        raise AssertionError(f"no {pattern!r} in {out!r}")

    try:
        read_until(rb"[#$] ")
        # Typed keys go through as they are (the local terminal is raw): the
        # arithmetic is done by the container's shell.
        # Lines end in \r\n, and at times in \r\r\n early in a session (seen
        # with runc, whose terminal set-up races the command's first output).
        os.write(master, b"echo $((6*7)); stty size\r")
        read_until(rb"42\r+\n30 100\r+\n")
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        deadline = time.time() + 30
        while True:
            os.write(master, b"stty size\r")
            m = read_until(rb"(\d+) (\d+)\r+\n")
            if m.group(1, 2) == (b"40", b"120") or time.time() > deadline:
                break
        assert m.group(1, 2) == (b"40", b"120")
        os.write(master, b"exit 7\r")
        assert proc.wait(timeout=60) == 7
        # The terminal is as it was before.
        assert termios.tcgetattr(slave) == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


def test_execute_command_refusals(barged, agent, busybox):
    ecs = barged.client()
    plain = start_task(ecs, busybox, family="plain", enable=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.execute_command(cluster="default", task=plain, command="sh", interactive=True)
    assert error_code(e) == "InvalidParameterException"
    assert "execute command was not enabled when the task was run" in error_message(e)
    two = start_task(ecs, busybox, family="pair", containers=("a", "b"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.execute_command(cluster="default", task=two, command="sh", interactive=True)
    assert error_code(e) == "InvalidParameterException" and "container" in error_message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.execute_command(cluster="default", task=two, container="c", command="sh",
                            interactive=True)
    assert error_code(e) == "InvalidParameterException" and "'c'" in error_message(e)
    ecs.stop_task(cluster="default", task=two)
    wait_task(ecs, "default", two)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.execute_command(cluster="default", task=two, container="a", command="sh",
                            interactive=True)
    assert error_code(e) == "InvalidParameterException" and "RUNNING" in error_message(e)


def open_stream(url, token):
    """Opens the session's websocket by hand: (status, socket, rest of the
    answer)."""
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    status = int(answer.split(b" ", 2)[1])
    if status != 101:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return status, s, answer


def test_session_tokens_are_single_use(barged, agent, busybox):
    ecs = barged.client()
    arn = start_task(ecs, busybox)
    r = ecs.execute_command(cluster="default", task=arn, command="sh", interactive=True)
    assert r["taskArn"] == arn and r["containerName"] == "app" and r["interactive"] is True
    assert r["containerArn"] and r["clusterArn"].endswith(":cluster/default")
    sess = r["session"]
    assert sess["streamUrl"].startswith("ws://") and sess["sessionId"] in sess["streamUrl"]
    status, s, answer = open_stream(sess["streamUrl"], "0" * 64)
    s.close()
    assert status == 401 and b"does not match" in answer
    status, first, _ = open_stream(sess["streamUrl"], sess["tokenValue"])
    assert status == 101
    try:
        status, s, answer = open_stream(sess["streamUrl"], sess["tokenValue"])
        s.close()
        assert status == 401 and b"used already" in answer
    finally:
        first.close()
    # Once the session is over its token opens nothing.
    deadline = time.time() + 30
    while True:
        status, s, answer = open_stream(sess["streamUrl"], sess["tokenValue"])
        s.close()
        if b"no such exec session" in answer or time.time() > deadline:
            break
    assert status == 401 and b"no such exec session" in answer


def test_exec_output_goes_to_the_clusters_log_group(barged, agent, busybox, tmp_path):
    ecs = barged.client()
    logs = barged.client("logs")
    logs.create_log_group(logGroupName="/exec/audit")
    ecs.update_cluster(cluster="default", configuration={"executeCommandConfiguration": {
        "logging": "OVERRIDE", "logConfiguration": {"cloudWatchLogGroupName": "/exec/audit"}}})
    start_task(ecs, busybox)
    p = project(barged, tmp_path, busybox)
    r = run_exec(p, "--command", "sh -c 'echo first line; echo second line'")
    assert r.returncode == 0, r.stderr
    streams = logs.describe_log_streams(logGroupName="/exec/audit")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("ecs-execute-command-")
    events = logs.get_log_events(logGroupName="/exec/audit",
                                 logStreamName=streams[0]["logStreamName"])["events"]
    assert [e["message"] for e in events] == ["first line", "second line"]
    assert "output logged to /exec/audit" in open(barged.log_path, errors="replace").read()


def test_execute_command_is_the_iam_action_on_the_task(barged, agent, busybox):
    from test_iam_policies import allow, client, denied, make_user
    ecs = barged.client()
    arn = start_task(ecs, busybox)
    other = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    creds = make_user(barged, "oncall", allow("ecs:ExecuteCommand", other))
    msg = denied(lambda: client(barged, "ecs", creds).execute_command(
        cluster="default", task=arn, command="sh", interactive=True))
    assert "ecs:ExecuteCommand" in msg
    creds = make_user(barged, "operator", allow("ecs:ExecuteCommand", arn))
    r = client(barged, "ecs", creds).execute_command(cluster="default", task=arn, command="sh",
                                                     interactive=True)
    assert r["session"]["tokenValue"]
    assert re.search(r"exec session \S+ opened: arn:aws:iam::\d+:user/operator ran 'sh'",
                     open(barged.log_path, errors="replace").read())


def test_barged_ends_open_sessions_when_it_stops(barged, agent, busybox):
    ecs = barged.client()
    arn = start_task(ecs, busybox)
    r = ecs.execute_command(cluster="default", task=arn, command="sh", interactive=True)
    status, s, answer = open_stream(r["session"]["streamUrl"], r["session"]["tokenValue"])
    assert status == 101
    received = answer.split(b"\r\n\r\n", 1)[1]
    # The shell's prompt shows that the agent joined.
    while b"# " not in received:
        chunk = s.recv(4096)
        assert chunk, received
        received += chunk
    barged.proc.send_signal(signal.SIGTERM)
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        received += chunk
    s.close()
    assert b"barged is stopping" in received
    assert barged.proc.wait(timeout=60) == 0
    assert "upgraded" not in open(barged.log_path, errors="replace").read()


def running_tasks_of(ecs, service):
    arns = ecs.list_tasks(cluster="default", serviceName=service,
                          desiredStatus="RUNNING")["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
            if t["lastStatus"] == "RUNNING"]


def test_services_pass_enable_execute_command_to_their_tasks(barged, agent, busybox):
    ecs = barged.client()
    ecs.register_task_definition(family="svc", containerDefinitions=[
        {"name": "app", "image": busybox, "memory": 32, "command": SLEEPER}])
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="svc",
                       desiredCount=1, enableExecuteCommand=True)
    deadline = time.time() + 90
    while not running_tasks_of(ecs, "web") and time.time() < deadline:
        time.sleep(0.5)
    (task,) = running_tasks_of(ecs, "web")
    assert task["enableExecuteCommand"] is True
    r = ecs.execute_command(cluster="default", task=task["taskArn"], command="true",
                            interactive=True)
    assert r["session"]["sessionId"]
    # Turned off, the new deployment's tasks refuse it.
    ecs.update_service(cluster="default", service="web", enableExecuteCommand=False)
    svc = ecs.describe_services(cluster="default", services=["web"])["services"][0]
    assert svc["enableExecuteCommand"] is False
    deadline = time.time() + 120
    while time.time() < deadline:
        tasks = running_tasks_of(ecs, "web")
        if tasks and all(t["enableExecuteCommand"] is False for t in tasks):
            break
        time.sleep(0.5)
    (task,) = running_tasks_of(ecs, "web")
    assert task["enableExecuteCommand"] is False
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.execute_command(cluster="default", task=task["taskArn"], command="true",
                            interactive=True)
    assert "execute command was not enabled" in error_message(e)
