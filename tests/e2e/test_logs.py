"""The awslogs log driver (issue 8): containers' output reaches CloudWatch Logs
in barged through the agent, in order, without loss when barged restarts,
grouped into multi-line events when asked, and with drops counted (not the
container slowed) in non-blocking mode."""
import os
import re
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, Barged, error_code, wait_task


@pytest.fixture
def barged(tmp_path):
    """barged with its /metrics listener (--metrics-listen)."""
    b = Barged(str(tmp_path / "data"), extra_args=["--metrics-listen", "127.0.0.1:0"]).start()
    yield b
    b.stop()

SLEEPER = "trap 'exit 143' TERM; while true; do sleep 0.2; done"


def awslogs(group, prefix="app", create=True, **extra):
    opts = {"awslogs-group": group, "awslogs-region": "us-east-1"}
    if prefix:
        opts["awslogs-stream-prefix"] = prefix
    if create:
        opts["awslogs-create-group"] = "true"
    opts.update(extra)
    return {"logDriver": "awslogs", "options": opts}


def run_task(ecs, image, script, log_configuration=None, family="logs", name="main", **kw):
    c = {"name": name, "image": image, "memory": 32, "command": ["sh", "-c", script]}
    if log_configuration:
        c["logConfiguration"] = log_configuration
    td = ecs.register_task_definition(family=family, containerDefinitions=[c], **kw)
    r = ecs.run_task(cluster="default",
                     taskDefinition=td["taskDefinition"]["taskDefinitionArn"])
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def all_messages(logs, group, stream):
    out, token = [], None
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        r = logs.get_log_events(logGroupName=group, logStreamName=stream, **kw)
        out += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            return out
        token = r["nextForwardToken"]


def wait_messages(logs, group, stream, count, timeout=60):
    deadline = time.time() + timeout
    msgs = []
    while time.time() < deadline:
        try:
            msgs = all_messages(logs, group, stream)
        except ClientError:
            msgs = []
        if len(msgs) >= count:
            return msgs
        time.sleep(0.3)
    raise AssertionError(f"only {len(msgs)} of {count} messages arrived: {msgs[-5:]}")


def test_stdout_in_order_through_the_cli(barged, agent, busybox, tmp_path):
    ecs, logs = barged.client("ecs"), barged.client("logs")
    arn = run_task(ecs, busybox,
                   "for i in $(seq 1 300); do echo line $i; done; echo oops >&2",
                   awslogs("/ecs/web", prefix="web"))
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0
    task_id = arn.split("/")[-1]
    stream = f"web/main/{task_id}"
    want = [f"line {i}" for i in range(1, 301)] + ["oops"]
    assert wait_messages(logs, "/ecs/web", stream, len(want)) == want

    cli = AwsCli(barged, str(tmp_path))
    out = cli.json("logs", "get-log-events", "--log-group-name", "/ecs/web",
                   "--log-stream-name", stream, "--start-from-head")
    assert [e["message"] for e in out["events"]] == want
    stamps = [e["timestamp"] for e in out["events"]]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] - task["startedAt"].timestamp() * 1000) < 60000
    out = cli.json("logs", "filter-log-events", "--log-group-name", "/ecs/web",
                   "--log-stream-name-prefix", "web/main/", "--filter-pattern", '"line 2"')
    assert [e["message"] for e in out["events"]] == \
        ["line 2"] + [f"line {i}" for i in range(20, 30)] + \
        [f"line {i}" for i in range(200, 300)]
    assert {e["logStreamName"] for e in out["events"]} == {stream}
    streams = cli.json("logs", "describe-log-streams", "--log-group-name", "/ecs/web")
    assert [s["logStreamName"] for s in streams["logStreams"]] == [stream]
    # The local file is still there as well.
    local = open(os.path.join(agent.data_dir, "logs", task_id, "main.log")).read()
    assert "stdout F line 300" in local


def test_no_log_configuration_stays_local(barged, agent, busybox):
    ecs, logs = barged.client("ecs"), barged.client("logs")
    arn = run_task(ecs, busybox, "echo only here")
    wait_task(ecs, "default", arn)
    local = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "main.log")
    assert "only here" in open(local).read()
    assert logs.describe_log_groups()["logGroups"] == []


def test_stream_without_prefix_and_existing_group(barged, agent, busybox):
    ecs, logs = barged.client("ecs"), barged.client("logs")
    logs.create_log_group(logGroupName="pre-made")
    arn = run_task(ecs, busybox, "echo hi", awslogs("pre-made", prefix=None, create=False))
    task = wait_task(ecs, "default", arn)
    # Without a prefix the stream is named after the container's runtime id.
    stream = task["containers"][0]["runtimeId"]
    assert wait_messages(logs, "pre-made", stream, 1) == ["hi"]


def test_missing_group_fails_the_task(barged, agent, busybox):
    ecs = barged.client("ecs")
    arn = run_task(ecs, busybox, "echo never", awslogs("/does/not/exist", create=False))
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["containers"][0].get("reason", "")
    assert "CannotStartContainerError" in reason and "ResourceInitializationError" in reason
    assert "does not exist" in reason


def test_awslogs_region_picks_the_logs_region(barged, agent, busybox):
    """A task of us-east-1 logging to eu-west-1: its group and stream are
    eu-west-1's (a group made there beforehand is found there), and us-east-1
    has none of them."""
    ecs, logs = barged.client("ecs"), barged.client("logs")
    dublin = boto3.client("logs", endpoint_url=barged.endpoint, region_name="eu-west-1",
                          aws_access_key_id=barged.access_key,
                          aws_secret_access_key=barged.secret_key)
    dublin.create_log_group(logGroupName="/ecs/far")
    arn = run_task(ecs, busybox, "echo far away; echo second",
                   awslogs("/ecs/far", create=False, **{"awslogs-region": "eu-west-1"}))
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, task["containers"][0].get("reason")
    stream = f"app/main/{arn.split('/')[-1]}"
    assert wait_messages(dublin, "/ecs/far", stream, 2) == ["far away", "second"]
    group = dublin.describe_log_groups(logGroupNamePrefix="/ecs/far")["logGroups"][0]
    assert group["arn"].split(":")[3] == "eu-west-1"
    assert logs.describe_log_groups()["logGroups"] == []
    # created on first use, in the region named
    arn = run_task(ecs, busybox, "echo made", awslogs("/ecs/made", **{"awslogs-region": "ap-east-1"}))
    wait_task(ecs, "default", arn)
    hk = boto3.client("logs", endpoint_url=barged.endpoint, region_name="ap-east-1",
                      aws_access_key_id=barged.access_key, aws_secret_access_key=barged.secret_key)
    assert wait_messages(hk, "/ecs/made", f"app/main/{arn.split('/')[-1]}", 1) == ["made"]
    assert logs.describe_log_groups()["logGroups"] == []
    # a name that is no region fails the task before it starts
    arn = run_task(ecs, busybox, "echo never", awslogs("/ecs/x", **{"awslogs-region": "moon"}))
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["containers"][0].get("reason", "")
    assert "ResourceInitializationError" in reason and "'moon'" in reason, reason


def test_bad_options_fail_the_task(barged, agent, busybox):
    ecs = barged.client("ecs")
    for opts, why in (({"mode": "sometimes"}, "mode"),
                      ({"awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "^x"},
                       "both"),
                      ({"mode": "non-blocking", "max-buffer-size": "lots"}, "max-buffer-size")):
        arn = run_task(ecs, busybox, "echo x", awslogs("/g", **opts))
        task = wait_task(ecs, "default", arn)
        assert task["stopCode"] == "TaskFailedToStart", opts
        assert why in task["containers"][0].get("reason", ""), task["containers"][0]


def test_barged_restart_loses_no_line(barged, agent, busybox):
    """barged is killed and restarted while a container logs a numbered line
    every 20 ms: every line arrives, once, in order."""
    ecs, logs = barged.client("ecs"), barged.client("logs")
    n = 400
    arn = run_task(ecs, busybox,
                   f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo seq $i; sleep 0.02; done",
                   awslogs("/ecs/durable", prefix="d"))
    wait_task(ecs, "default", arn, ("RUNNING",))
    stream = f"d/main/{arn.split('/')[-1]}"
    wait_messages(logs, "/ecs/durable", stream, 20)
    barged.kill()
    time.sleep(2)  # lines keep coming while barged is gone
    barged.restart()
    logs = barged.client("logs")
    ecs = barged.client("ecs")
    wait_task(ecs, "default", arn, timeout=120)
    msgs = wait_messages(logs, "/ecs/durable", stream, n, timeout=120)
    assert msgs == [f"seq {i}" for i in range(1, n + 1)]


def test_agent_restart_resumes_shipping(barged, agent, busybox):
    """The agent is killed while a container logs; a new agent resumes from
    its checkpoint and nothing is lost or doubled."""
    ecs, logs = barged.client("ecs"), barged.client("logs")
    n = 300
    arn = run_task(ecs, busybox,
                   f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo n $i; sleep 0.02; done; "
                   + SLEEPER, awslogs("/ecs/agent-restart"))
    wait_task(ecs, "default", arn, ("RUNNING",))
    stream = f"app/main/{arn.split('/')[-1]}"
    wait_messages(logs, "/ecs/agent-restart", stream, 10)
    agent.kill()
    time.sleep(2)
    agent.start()
    msgs = wait_messages(logs, "/ecs/agent-restart", stream, n, timeout=90)
    assert msgs == [f"n {i}" for i in range(1, n + 1)]
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_multiline_grouping(barged, agent, busybox):
    ecs, logs = barged.client("ecs"), barged.client("logs")
    script = ("echo 'ERR first'; echo '  at a'; echo '  at b'; echo 'ERR second'; "
              "echo '  at c'; sleep 2; echo 'ERR third'; " + SLEEPER)
    arn = run_task(ecs, busybox, script,
                   awslogs("/ecs/multi", **{"awslogs-multiline-pattern": "^ERR",
                                            "awslogs-force-flush-interval-seconds": "1"}))
    stream = f"app/main/{arn.split('/')[-1]}"
    # The third event has no successor: the flush interval ends it.
    msgs = wait_messages(logs, "/ecs/multi", stream, 3)
    assert msgs == ["ERR first\n  at a\n  at b", "ERR second\n  at c", "ERR third"]
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)

    arn = run_task(ecs, busybox,
                   "echo '[2024-05-01 10:00:00] start'; echo 'detail'; "
                   "echo '[2024-05-01 10:00:01] next'",
                   awslogs("/ecs/multi", prefix="dt",
                           **{"awslogs-datetime-format": "[%Y-%m-%d %H:%M:%S]"}))
    wait_task(ecs, "default", arn)
    stream = f"dt/main/{arn.split('/')[-1]}"
    # The task's end flushes the last event.
    assert wait_messages(logs, "/ecs/multi", stream, 2) == [
        "[2024-05-01 10:00:00] start\ndetail", "[2024-05-01 10:00:01] next"]


def metric(text, name, **labels):
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
            found = True
    return total if found else None


def metrics_port(proc):
    """The port barged or barge-agent said it serves /metrics on."""
    for line in open(proc.log_path):
        m = re.search(r"serving /metrics on port (\d+)", line)
        if m:
            port = int(m.group(1))
    return port


def test_non_blocking_drops_are_counted(barged, agent_factory, busybox):
    """With barged gone and a 4 KiB buffer, a burst of output is trimmed to the
    newest lines: the container is not held up, the drops are counted on the
    agent and reported to barged, and the newest lines still arrive."""
    agent = agent_factory(extra_args=["--metrics-listen", "127.0.0.1:0"])
    ecs, logs = barged.client("ecs"), barged.client("logs")
    n = 2000
    script = ("while [ ! -e /tmp/go ]; do sleep 0.1; done; "
              f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); "
              "echo burst line $i with some padding to make it longer; done; "
              "echo done > /tmp/done; " + SLEEPER)
    arn = run_task(ecs, busybox, "touch /tmp/ready; " + script,
                   awslogs("/ecs/nb", mode="non-blocking", **{"max-buffer-size": "4k"}))
    wait_task(ecs, "default", arn, ("RUNNING",))
    task_id = arn.split("/")[-1]
    log_path = os.path.join(agent.data_dir, "logs", task_id, "main.log")
    barged.kill()
    # Start the burst by hand: the script waits for a file, made through the
    # container's overlay root (mounted on the host).
    root = os.path.join(agent.data_dir, "runtime", "containers", f"{task_id}-0", "rootfs")
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(root, "tmp", "ready")) and time.time() < deadline:
        time.sleep(0.1)
    open(os.path.join(root, "tmp", "go"), "w").close()
    # The container finishes its burst while nothing is being shipped.
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(root, "tmp", "done")) and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(os.path.join(root, "tmp", "done"))
    assert f"burst line {n} " in open(log_path).read()
    barged.restart()
    logs, ecs = barged.client("logs"), barged.client("ecs")
    stream = f"app/main/{task_id}"
    deadline = time.time() + 60
    msgs = []
    while time.time() < deadline:
        try:
            msgs = all_messages(logs, "/ecs/nb", stream)
        except ClientError:
            msgs = []
        if msgs and msgs[-1].startswith(f"burst line {n} "):
            break
        time.sleep(0.3)
    burst = [m for m in msgs if m.startswith("burst")]
    assert burst and burst[-1].startswith(f"burst line {n} ")
    assert len(burst) < n
    port = metrics_port(agent)
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    dropped = metric(text, "barge_agent_log_lines_dropped_total", task=task_id, container="main")
    assert dropped is not None and dropped >= n - len(burst) - 5
    deadline = time.time() + 30
    while time.time() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port(barged)}/metrics",
                                      timeout=10).read().decode()
        if (metric(text, "barge_log_lines_dropped_total") or 0) > 0:
            break
        time.sleep(0.5)
    assert metric(text, "barge_log_lines_dropped_total") >= dropped
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
