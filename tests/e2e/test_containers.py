"""Containers of a task working together (issue 4): health checks and the
task's health, dependsOn ordering at start and in reverse at stop,
restartPolicy, and task volumes (task-scoped, host bind mounts, volumesFrom,
tmpfs, /dev/shm size)."""
import json
import os
import time

import pytest

from conftest import ecs_raw, wait_task

TRAP = "trap 'exit 143' TERM; "
FOREVER = TRAP + "while true; do sleep 0.2; done"


def register(ecs, containers, family="ctr", **kw):
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        **kw)["taskDefinition"]["taskDefinitionArn"]


def run_task(ecs, td, **kw):
    r = ecs.run_task(cluster="default", taskDefinition=td, **kw)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def container(task, name):
    return [c for c in task["containers"] if c["name"] == name][0]


def wait_for(ecs, arn, pred, timeout=60, what="condition"):
    deadline = time.time() + timeout
    task = None
    while time.time() < deadline:
        task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        if pred(task):
            return task
        time.sleep(0.3)
    raise AssertionError(f"{what} never held: {json.dumps(task, default=str)}")


def log_of(agent, arn, name):
    path = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], f"{name}.log")
    return open(path).read() if os.path.exists(path) else ""


def test_failing_health_check_turns_unhealthy(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "good", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD", "true"], "interval": 5, "retries": 1}},
        {"name": "bad", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD-SHELL", "echo sick; exit 1"], "interval": 5,
                         "timeout": 2, "retries": 2}},
        {"name": "plain", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER]}],
        family="health")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn, ("RUNNING",))
    assert task["healthStatus"] == "UNKNOWN"
    assert container(task, "good")["healthStatus"] == "UNKNOWN"
    task = wait_for(ecs, arn, lambda t: container(t, "good")["healthStatus"] == "HEALTHY",
                    what="good HEALTHY")
    # one failure does not count with retries 2; the task is not healthy
    # while an essential container is still undecided
    assert container(task, "bad")["healthStatus"] == "UNKNOWN"
    assert task["healthStatus"] == "UNKNOWN"
    task = wait_for(ecs, arn, lambda t: container(t, "bad")["healthStatus"] == "UNHEALTHY",
                    what="bad UNHEALTHY")
    assert task["healthStatus"] == "UNHEALTHY"
    assert container(task, "plain")["healthStatus"] == "UNKNOWN"
    assert task["lastStatus"] == "RUNNING"  # a standalone task keeps running
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_healthy_task(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD-SHELL", "test -d /proc/1"], "interval": 5}},
        {"name": "side", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD", "false"], "interval": 5, "retries": 1}}],
        family="healthy")
    arn = run_task(ecs, td)
    task = wait_for(ecs, arn, lambda t: t.get("healthStatus") == "HEALTHY"
                    and container(t, "side")["healthStatus"] == "UNHEALTHY",
                    what="task HEALTHY, side UNHEALTHY")
    # a non-essential container's health does not count for the task
    assert container(task, "app")["healthStatus"] == "HEALTHY"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_depends_on_healthy_delays_the_web_container(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "web", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "date +%s > /dev/null; echo web started; " + FOREVER],
         "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]},
        {"name": "db", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "sleep 3; touch /tmp/ready; " + FOREVER],
         "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/ready"], "interval": 5,
                         "retries": 1}}],
        family="ordered")
    arn = run_task(ecs, td)
    task = wait_for(ecs, arn, lambda t: container(t, "db")["lastStatus"] == "RUNNING",
                    what="db RUNNING")
    assert container(task, "web")["lastStatus"] == "PENDING"
    assert task["lastStatus"] == "PENDING"
    assert log_of(agent, arn, "web") == ""
    task = wait_for(ecs, arn, lambda t: t["lastStatus"] == "RUNNING", what="task RUNNING")
    assert container(task, "db")["healthStatus"] == "HEALTHY"
    assert container(task, "web")["lastStatus"] == "RUNNING"
    deadline = time.time() + 10
    while "web started" not in log_of(agent, arn, "web") and time.time() < deadline:
        time.sleep(0.2)
    assert "web started" in log_of(agent, arn, "web")
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_dependency_that_cannot_be_met_stops_the_task(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "migrate", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "exit 4"]},
        {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}]}],
        family="unmet")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    assert "container 'app' cannot start" in task["stoppedReason"]
    assert "'migrate' exited with 4 (dependsOn SUCCESS)" in task["stoppedReason"]
    assert container(task, "migrate")["exitCode"] == 4
    assert "exitCode" not in container(task, "app")
    assert "startedAt" not in task


def test_start_timeout(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "never", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD", "false"], "interval": 5, "retries": 10}},
        {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "startTimeout": 3,
         "dependsOn": [{"containerName": "never", "condition": "HEALTHY"}]}],
        family="timeout")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn, timeout=30)
    assert task["stopCode"] == "TaskFailedToStart"
    assert "timed out after 3s waiting for container 'never' to become healthy" in \
        task["stoppedReason"]
    assert container(task, "never")["exitCode"] == 143


def test_complete_dependency_and_reverse_stop_order(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    out = tmp_path / "order"
    out.mkdir()
    td = register(ecs, [
        {"name": "init", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "echo init >> /out/order"],
         "mountPoints": [{"sourceVolume": "out", "containerPath": "/out"}]},
        {"name": "db", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "echo db >> /out/order; trap 'echo db-stop >> /out/order; "
                     "exit 143' TERM; while true; do sleep 0.2; done"],
         "mountPoints": [{"sourceVolume": "out", "containerPath": "/out"}],
         "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]},
        {"name": "web", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "echo web >> /out/order; trap 'sleep 1; "
                     "echo web-stop >> /out/order; exit 143' TERM; "
                     "while true; do sleep 0.2; done"],
         "mountPoints": [{"sourceVolume": "out", "containerPath": "/out"}],
         "dependsOn": [{"containerName": "db", "condition": "START"}]}],
        volumes=[{"name": "out", "host": {"sourcePath": str(out)}}], family="order")
    arn = run_task(ecs, td)
    wait_task(ecs, "default", arn, ("RUNNING",))
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    # web stops (taking a second) before db is even asked to
    assert (out / "order").read_text().split() == ["init", "db", "web", "web-stop", "db-stop"]


def test_restart_policy_restarts_a_crashing_container(barged, agent, busybox):
    ecs = barged.client("ecs")
    # restartAttemptPeriod is at least 60 s: a container is restarted only
    # after running that long. (Debian's botocore predates restartPolicy:
    # register with a raw call.)
    status, body = ecs_raw(barged, "RegisterTaskDefinition", {"family": "restart", "containerDefinitions": [
        {"name": "flaky", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "echo started; sleep 61; exit 3"],
         "restartPolicy": {"enabled": True, "restartAttemptPeriod": 60}},
        {"name": "done", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "sleep 61; exit 0"],
         "restartPolicy": {"enabled": True, "ignoredExitCodes": [0],
                           "restartAttemptPeriod": 60}},
        {"name": "early", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "exit 5"],
         "restartPolicy": {"enabled": True, "restartAttemptPeriod": 60}}]})
    assert status == 200, body
    arn = run_task(ecs, body["taskDefinition"]["taskDefinitionArn"])
    wait_task(ecs, "default", arn, ("RUNNING",))

    def raw_container(name):
        status, body = ecs_raw(barged, "DescribeTasks", {"cluster": "default", "tasks": [arn]})
        assert status == 200
        return [c for c in body["tasks"][0]["containers"] if c["name"] == name][0]

    # exiting within the attempt period: no restart
    deadline = time.time() + 20
    while "exitCode" not in raw_container("early") and time.time() < deadline:
        time.sleep(0.3)
    early = raw_container("early")
    assert early["exitCode"] == 5 and early["restartCount"] == 0
    deadline = time.time() + 90
    while raw_container("flaky").get("restartCount", 0) < 1 and time.time() < deadline:
        time.sleep(0.5)
    flaky = raw_container("flaky")
    assert flaky["restartCount"] == 1 and flaky["lastStatus"] == "RUNNING"
    assert "exitCode" not in flaky
    deadline = time.time() + 30
    while "exitCode" not in raw_container("done") and time.time() < deadline:
        time.sleep(0.3)
    done = raw_container("done")
    assert done["exitCode"] == 0 and done["restartCount"] == 0  # 0 is ignored
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
    assert log_of(agent, arn, "flaky").count("started") == 2
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "UserInitiated"


def test_volumes(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "greeting").write_text("from the host\n")
    writer = ("echo shared data > /data/msg && cat /host/greeting > /data/host-copy && "
              "! touch /host/nope 2>/dev/null && "
              "mount | grep -q ' /scratch type tmpfs' && "
              "df -k /dev/shm | tail -1 | awk '{exit $2 != 16384}' && " + FOREVER)
    reader = ("for i in $(seq 50); do [ -f /data/host-copy ] && break; sleep 0.2; done; "
              "cat /data/msg /data/host-copy && ! touch /data/nope 2>/dev/null && "
              "test -f /host/greeting")
    td = register(ecs, [
        {"name": "writer", "image": busybox, "memory": 32, "command": ["sh", "-c", writer],
         "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data"},
                         {"sourceVolume": "host", "containerPath": "/host", "readOnly": True}],
         "linuxParameters": {"tmpfs": [{"containerPath": "/scratch", "size": 8}],
                             "sharedMemorySize": 16}},
        {"name": "reader", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", reader],
         "volumesFrom": [{"sourceContainer": "writer", "readOnly": True}]}],
        volumes=[{"name": "scratch"}, {"name": "host", "host": {"sourcePath": str(host)}}],
        family="volumes")
    arn = run_task(ecs, td)
    task = wait_for(ecs, arn, lambda t: "exitCode" in container(t, "reader"), what="reader done")
    assert container(task, "reader")["exitCode"] == 0, log_of(agent, arn, "reader")
    assert container(task, "writer")["lastStatus"] == "RUNNING", log_of(agent, arn, "writer")
    log = log_of(agent, arn, "reader")
    assert "shared data" in log and "from the host" in log
    task_dir = os.path.join(agent.data_dir, "volumes", "tasks", arn.split("/")[-1])
    assert open(os.path.join(task_dir, "scratch", "msg")).read() == "shared data\n"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    # the task's volume is gone, the host's directory stays
    assert not os.path.exists(task_dir)
    assert (host / "greeting").exists() and not (host / "nope").exists()


def test_agent_restart_keeps_checking_health(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "app", "image": busybox, "memory": 32,
         "command": ["sh", "-c", TRAP + "while true; do sleep 0.2; done"],
         "healthCheck": {"command": ["CMD-SHELL", "test ! -f /tmp/sick"], "interval": 5,
                         "retries": 1}}],
        family="readopt")
    arn = run_task(ecs, td)
    wait_for(ecs, arn, lambda t: t.get("healthStatus") == "HEALTHY", what="HEALTHY")
    # a clean stop leaves the container running and must not hang on its
    # health checker
    t0 = time.time()
    agent.stop()
    assert time.time() - t0 < 15
    agent.start()
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    # checks resume on the adopted container
    runtime_id = container(task, "app")["runtimeId"]
    import subprocess
    root = [os.path.join(agent.data_dir, "runtime", n) for n in ("runc", "crun")
            if os.path.isdir(os.path.join(agent.data_dir, "runtime", n))][0]
    subprocess.run([os.path.basename(root), "--root", root, "exec", runtime_id, "touch",
                    "/tmp/sick"], check=True)
    wait_for(ecs, arn, lambda t: t.get("healthStatus") == "UNHEALTHY", what="UNHEALTHY")
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_running_task_reports_only_changes(barged, agent, busybox):
    """A running task whose state stays the same sends barged nothing: the
    agent once re-sent RUNNING on every wake of the task's runner (each
    second, and on every change barged announced, its own reports
    included), a storm of state reports with a few tasks."""
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c", FOREVER],
         "healthCheck": {"command": ["CMD", "true"], "interval": 5, "retries": 1}}],
        family="quiet")
    arn = run_task(ecs, td)
    wait_for(ecs, arn, lambda t: t.get("healthStatus") == "HEALTHY", what="task HEALTHY")

    def reports():
        with open(barged.log_path, errors="replace") as f:
            return sum(1 for line in f if f"task {arn} is " in line)

    before = reports()
    time.sleep(5)  # nothing changes in the task meanwhile
    assert reports() - before <= 1
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
