"""barge logs against barged's CloudWatch Logs API: a deployed service whose
container logs through awslogs, read once and followed. Skipped while barged
does not serve the Logs API (it is being built on another branch); the unit
tests (tests/unit/test_cli_aws.c) cover the requests and output meanwhile."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import binary, raw_call
from test_cli_deploy import Project


def logs_served(barged):
    status, body = raw_call(barged, "Logs_20140328.DescribeLogGroups", {}, service="logs")
    return status == 200


def test_logs_follow(barged, agent, busybox, tmp_path):
    if not logs_served(barged):
        pytest.skip("barged does not serve the CloudWatch Logs API yet")
    p = Project(barged, tmp_path / "lg", busybox)
    p.write("ecspresso.yml", "cluster: default\nservice: talker\n"
            "service_definition: sd.json\ntask_definition: td.json\n")
    p.write("sd.json", '{"desiredCount": 1}')
    p.write("td.json", """{
  "family": "talker",
  "containerDefinitions": [{
    "name": "app", "image": "{{ must_env `IMAGE` }}", "memory": 16,
    "command": ["sh", "-c", "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.5; done"],
    "logConfiguration": {"logDriver": "awslogs", "options": {
      "awslogs-group": "/ecs/talker", "awslogs-stream-prefix": "talker",
      "awslogs-create-group": "true", "awslogs-region": "us-east-1"}}
  }]
}""")
    p.ok("deploy")
    deadline = time.time() + 60
    out = None
    while time.time() < deadline:
        out = p.run("logs", "--since", "5m")
        if "tick" in out.stdout:
            break
        time.sleep(1)
    assert "app/" in out.stdout and "tick 0" in out.stdout, out.stdout + out.stderr
    env = dict(p.env)
    proc = subprocess.Popen([binary("barge"), "logs", "--follow", "--since", "1s"], cwd=p.dir,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        deadline = time.time() + 30
        while time.time() < deadline and len(seen) < 3:
            line = proc.stdout.readline()
            if "tick" in line:
                seen.append(line)
        assert len(seen) >= 3, seen
        # Lines arrive in order, each once.
        ticks = [int(line.rsplit("tick ", 1)[1]) for line in seen]
        assert ticks == sorted(set(ticks))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_run_prints_the_watched_containers_log(barged, agent, busybox, tmp_path):
    if not logs_served(barged):
        pytest.skip("barged does not serve the CloudWatch Logs API yet")
    p = Project(barged, tmp_path / "rl", busybox)
    p.write("ecspresso.yml", "cluster: default\ntask_definition: td.json\n")
    p.write("td.json", """{
  "family": "oneoff",
  "containerDefinitions": [{
    "name": "job", "image": "{{ must_env `IMAGE` }}", "memory": 16,
    "command": ["sh", "-c", "echo starting; sleep 3; echo done-with-it; exit 4"],
    "logConfiguration": {"logDriver": "awslogs", "options": {
      "awslogs-group": "/ecs/oneoff", "awslogs-stream-prefix": "oneoff",
      "awslogs-create-group": "true", "awslogs-region": "us-east-1"}}
  }]
}""")
    out = p.run("run")
    assert out.returncode == 4, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.endswith(("starting", "done-with-it"))]
    assert [ln.rsplit(" ", 1)[1] for ln in lines] == ["starting", "done-with-it"], out.stdout
    assert all(re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", ln) for ln in lines)


def test_logs_and_run_read_the_containers_awslogs_region(barged, agent, busybox, tmp_path):
    """A container whose awslogs-region is not the config's region logs in
    that region; barge logs and barge run read it there."""
    p = Project(barged, tmp_path / "far", busybox)
    p.write("ecspresso.yml", "region: us-east-1\ncluster: default\nservice: faraway\n"
            "service_definition: sd.json\ntask_definition: td.json\n")
    p.write("sd.json", '{"desiredCount": 1}')
    td = """{
  "family": "faraway",
  "containerDefinitions": [{
    "name": "app", "image": "{{ must_env `IMAGE` }}", "memory": 16,
    "command": ["sh", "-c", "echo far-away-line; trap 'exit 0' TERM; sleep 300 & wait"],
    "logConfiguration": {"logDriver": "awslogs", "options": {
      "awslogs-group": "/ecs/faraway", "awslogs-stream-prefix": "far",
      "awslogs-create-group": "true", "awslogs-region": "eu-west-1"}}
  }]
}"""
    p.write("td.json", td)
    p.ok("deploy")
    deadline = time.time() + 60
    out = None
    while time.time() < deadline:
        out = p.run("logs", "--since", "5m")
        if "far-away-line" in out.stdout:
            break
        time.sleep(1)
    assert out.returncode == 0 and "far-away-line" in out.stdout, out.stdout + out.stderr
    p.ok("verify")

    p.write("ecspresso.yml", "region: us-east-1\ncluster: default\ntask_definition: td.json\n")
    p.write("td.json", td.replace("echo far-away-line; trap 'exit 0' TERM; sleep 300 & wait",
                                  "echo one-off-far; sleep 2; exit 3"))
    out = p.run("run")
    assert out.returncode == 3, out.stderr
    assert "one-off-far" in out.stdout, out.stdout + out.stderr
