"""Tasks as real containers (issue 3): barge-agent registers the host, RunTask
places tasks on it, the agent pulls from a real registry and runs containers
under conmon with crun or runc, and DescribeTasks tells the truth about them."""
import os
import signal
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message, wait_task


# PID 1 of a container gets no default signal handlers, so a bare `sleep`
# ignores SIGTERM (as under Docker); this one honours it.
SLEEPER = ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.2; done"]


def register(ecs, image, family="t", command=None, containers=None, **kw):
    if containers is None:
        containers = [{"name": "main", "image": image, "memory": 32,
                       "command": command or ["sh", "-c", "echo hello from barge"]}]
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        **kw)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, td, count=1, **kw):
    r = ecs.run_task(cluster="default", taskDefinition=td, count=count, **kw)
    assert r["failures"] == [], r["failures"]
    return [t["taskArn"] for t in r["tasks"]]


def test_instance_registered(barged, agent):
    ecs = barged.client("ecs")
    arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert arns == [agent.instance_arn]
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=arns)["containerInstances"][0]
    assert ci["agentConnected"] is True and ci["status"] == "ACTIVE"
    res = {r["name"]: r for r in ci["registeredResources"]}
    assert res["CPU"]["integerValue"] == 1024 * os.cpu_count()
    assert res["MEMORY"]["integerValue"] > 0
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["ecs.os-type"] == "linux"
    assert attrs["ecs.availability-zone"] == "us-east-1a"


def test_run_task_that_prints_and_exits_0(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    [arn] = run(ecs, td, startedBy="tester")
    task = wait_task(ecs, "default", arn)
    c = task["containers"][0]
    assert c["exitCode"] == 0 and c["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["desiredStatus"] == "STOPPED" and task["startedBy"] == "tester"
    assert task["group"] == "family:t"
    for ts in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt",
               "stoppedAt", "executionStoppedAt"):
        assert ts in task, ts
    assert task["createdAt"] <= task["pullStartedAt"] <= task["pullStoppedAt"]
    assert task["stoppedAt"] >= task["startedAt"]
    assert c["runtimeId"]
    # the output was captured with timestamps
    log = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "main.log")
    assert "hello from barge" in open(log).read()


def test_exit_code_3(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, command=["sh", "-c", "exit 3"])
    [arn] = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 3
    assert task["stopCode"] == "EssentialContainerExited"


def test_non_essential_sidecar(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, containers=[
        {"name": "app", "image": busybox, "memory": 32, "command": SLEEPER},
        {"name": "sidecar", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "exit 7"]}])
    [arn] = run(ecs, td)
    deadline = time.time() + 60
    while time.time() < deadline:
        task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        side = [c for c in task["containers"] if c["name"] == "sidecar"][0]
        if side.get("exitCode") is not None:
            break
        time.sleep(0.3)
    assert side["exitCode"] == 7 and side["lastStatus"] == "STOPPED"
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
    app = [c for c in task["containers"] if c["name"] == "app"][0]
    assert app["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "UserInitiated"


def test_stop_task_sigterm_and_sigkill(barged, agent, busybox):
    ecs = barged.client("ecs")
    polite = register(ecs, busybox, family="polite", command=SLEEPER)
    stubborn = register(ecs, busybox, family="stubborn", containers=[
        {"name": "main", "image": busybox, "memory": 32, "stopTimeout": 2,
         "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}])
    [p] = run(ecs, polite)
    [s] = run(ecs, stubborn)
    wait_task(ecs, "default", p, ("RUNNING",))
    wait_task(ecs, "default", s, ("RUNNING",))
    t0 = time.time()
    r = ecs.stop_task(cluster="default", task=p, reason="enough")
    assert r["task"]["desiredStatus"] == "STOPPED"
    task = wait_task(ecs, "default", p)
    assert task["stopCode"] == "UserInitiated" and task["stoppedReason"] == "enough"
    assert task["containers"][0]["exitCode"] == 143  # SIGTERM honoured
    ecs.stop_task(cluster="default", task=s)
    task = wait_task(ecs, "default", s)
    assert task["containers"][0]["exitCode"] == 137  # SIGKILL after stopTimeout
    assert task["stoppedAt"].timestamp() - task["stoppingAt"].timestamp() >= 1.5


def test_missing_image(barged, agent, test_registry):
    ecs = barged.client("ecs")
    image = f"{test_registry.host}/nothing-here:latest"
    td = register(ecs, image)
    [arn] = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("CannotPullContainerError:")
    assert "nothing-here" in task["stoppedReason"]
    assert "startedAt" not in task


def test_too_big_for_the_host(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, containers=[
        {"name": "main", "image": busybox, "memory": 10_000_000}])
    r = ecs.run_task(cluster="default", taskDefinition=td)
    assert r["tasks"] == []
    assert r["failures"] == [{"arn": agent.instance_arn, "reason": "RESOURCE:MEMORY"}]


def test_no_instances(barged, busybox):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="empty")
    td = register(ecs, busybox)
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="empty", taskDefinition=td)
    assert error_code(e) == "InvalidParameterException"
    assert "No Container Instances" in error_message(e)


def test_memory_limit_enforced(barged, agent, busybox):
    ecs = barged.client("ecs")
    # tail holds its whole input in memory: 200 MiB in a 16 MiB container.
    td = register(ecs, busybox, containers=[
        {"name": "hog", "image": busybox, "memory": 16,
         "command": ["sh", "-c", "head -c 200m /dev/zero | tail"]}])
    [arn] = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    c = task["containers"][0]
    assert c["exitCode"] == 137
    assert c.get("reason", "").startswith("OutOfMemoryError")


def test_agent_kill9_keeps_containers(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, command=SLEEPER)
    [arn] = run(ecs, td)
    task = wait_task(ecs, "default", arn, ("RUNNING",))
    runtime_id = task["containers"][0]["runtimeId"]
    agent.kill(signal.SIGKILL)
    # the container is still there, with its process
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "trap 'exit 143' TERM" in ps
    agent.start()
    time.sleep(1)
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    assert task["containers"][0]["runtimeId"] == runtime_id
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 143


def test_exit_while_agent_down_is_reported(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, command=["sh", "-c", "sleep 3; exit 5"])
    [arn] = run(ecs, td)
    wait_task(ecs, "default", arn, ("RUNNING",))
    agent.kill(signal.SIGKILL)
    time.sleep(4)
    agent.start()
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 5


def test_barged_kill9_loses_nothing(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, command=SLEEPER)
    [arn] = run(ecs, td)
    wait_task(ecs, "default", arn, ("RUNNING",))
    barged.kill()
    barged.restart()
    ecs = barged.client("ecs")
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster="default", task=arn)
    assert wait_task(ecs, "default", arn)["containers"][0]["exitCode"] == 143


def test_aws_cli_waiter(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    # Long enough for the CLI (a second or more to start on a busy host) to
    # see the task RUNNING before it ends.
    td = register(ecs, busybox, command=["sh", "-c", "sleep 5"])
    [arn] = run(ecs, td)
    cli = AwsCli(barged, str(tmp_path))
    cli.run("ecs", "wait", "tasks-running", "--cluster", "default", "--tasks", arn)
    cli.run("ecs", "wait", "tasks-stopped", "--cluster", "default", "--tasks", arn)
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"


def test_list_and_describe_tasks(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, command=SLEEPER)
    arns = run(ecs, td, count=3, startedBy="lister", tags=[{"key": "k", "value": "v"}])
    assert sorted(ecs.list_tasks(cluster="default")["taskArns"]) == sorted(arns)
    assert len(ecs.list_tasks(cluster="default", family="t")["taskArns"]) == 3
    assert len(ecs.list_tasks(cluster="default", startedBy="lister")["taskArns"]) == 3
    assert len(ecs.list_tasks(cluster="default", startedBy="nobody")["taskArns"]) == 0
    assert len(ecs.list_tasks(cluster="default",
                              containerInstance=agent.instance_arn)["taskArns"]) == 3
    page = ecs.list_tasks(cluster="default", maxResults=2)
    assert len(page["taskArns"]) == 2 and page["nextToken"]
    d = ecs.describe_tasks(cluster="default", tasks=arns[:1] + ["nope"], include=["TAGS"])
    assert d["tasks"][0]["tags"] == [{"key": "k", "value": "v"}]
    assert d["failures"][0]["reason"] == "MISSING"
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[agent.instance_arn])
    ci = ci["containerInstances"][0]
    assert ci["runningTasksCount"] + ci["pendingTasksCount"] == 3
    rem = {r["name"]: r for r in ci["remainingResources"]}
    reg = {r["name"]: r for r in ci["registeredResources"]}
    assert rem["MEMORY"]["integerValue"] == reg["MEMORY"]["integerValue"] - 3 * 32
    for a in arns:
        ecs.stop_task(cluster="default", task=a)
    for a in arns:
        wait_task(ecs, "default", a)
    assert ecs.list_tasks(cluster="default")["taskArns"] == []
    assert len(ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"]) == 3


def test_stop_missing_task(barged, agent):
    ecs = barged.client("ecs")
    with pytest.raises(ClientError) as e:
        ecs.stop_task(cluster="default", task="0" * 32)
    assert error_code(e) == "InvalidParameterException"


def test_container_instance_operations(barged, agent, busybox):
    ecs = barged.client("ecs")
    arn = agent.instance_arn
    ecs.put_attributes(cluster="default", attributes=[
        {"name": "stack", "value": "prod", "targetId": arn}])
    attrs = ecs.list_attributes(cluster="default", targetType="container-instance",
                                attributeName="stack")["attributes"]
    assert attrs == [{"name": "stack", "value": "prod", "targetId": arn,
                      "targetType": "container-instance"}]
    ecs.delete_attributes(cluster="default", attributes=[{"name": "stack", "targetId": arn}])
    assert ecs.list_attributes(cluster="default", targetType="container-instance",
                               attributeName="stack")["attributes"] == []
    r = ecs.update_container_instances_state(cluster="default", containerInstances=[arn],
                                             status="DRAINING")
    assert r["containerInstances"][0]["status"] == "DRAINING"
    assert ecs.list_container_instances(cluster="default",
                                        status="DRAINING")["containerInstanceArns"] == [arn]
    # a draining instance takes no new tasks
    td = register(ecs, busybox)
    r = ecs.run_task(cluster="default", taskDefinition=td)
    assert r["tasks"] == [] and r["failures"][0]["reason"] == "AGENT"
    ecs.update_container_instances_state(cluster="default", containerInstances=[arn],
                                         status="ACTIVE")
    # deregistering an instance with tasks needs force
    td = register(ecs, busybox, command=SLEEPER)
    [t] = run(ecs, td)
    with pytest.raises(ClientError) as e:
        ecs.deregister_container_instance(cluster="default", containerInstance=arn)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster="default")
    assert error_code(e) == "ClusterContainsContainerInstancesException"
    d = ecs.deregister_container_instance(cluster="default", containerInstance=arn, force=True)
    assert d["containerInstance"]["status"] == "INACTIVE"
    task = ecs.describe_tasks(cluster="default", tasks=[t])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"
    assert "deregistration" in task["stoppedReason"]


def test_run_task_from_barged_registry_by_tag_and_digest(barged, agent, tmp_path):
    """An image pushed into barged's own registry with skopeo runs, named by tag
    and by digest; the agent logs in to the registry by itself."""
    import base64
    import json as _json

    from registry_fixture import mkimage
    ecr = barged.client("ecr")
    repo = ecr.create_repository(repositoryName="apps/hello")["repository"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    creds = base64.b64decode(token).decode()
    layout = str(tmp_path / "layout")
    mkimage(layout, "v1", cmd='["sh", "-c", "echo from the barge registry"]')
    subprocess.run(["skopeo", "copy", "--dest-creds", creds, "--dest-tls-verify=false",
                    f"oci:{layout}:v1", f"docker://{repo['repositoryUri']}:v1"],
                   check=True, capture_output=True)
    digest = ecr.describe_images(repositoryName="apps/hello")["imageDetails"][0]["imageDigest"]
    ecs = barged.client("ecs")
    for image in (f"{repo['repositoryUri']}:v1", f"{repo['repositoryUri']}@{digest}"):
        td = ecs.register_task_definition(family="hello", containerDefinitions=[
            {"name": "main", "image": image, "memory": 16}])["taskDefinition"]
        [arn] = run(ecs, td["taskDefinitionArn"])
        task = wait_task(ecs, "default", arn)
        assert task["containers"][0]["exitCode"] == 0, _json.dumps(task, default=str)
        log = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "main.log")
        assert "from the barge registry" in open(log).read()


def test_every_short_task_keeps_its_exit_code(barged, agent, busybox):
    # Many containers exiting at once: each exit wakes every task's runner,
    # so runners look at containers whose conmon is just writing the exit
    # file and leaving. None may come out without its exit code.
    ecs = barged.client("ecs")
    td = register(ecs, busybox, family="short", command=["sh", "-c", "exit 3"])
    arns = []
    for _ in range(6):
        arns += run(ecs, td, count=10)
    stopped = {}
    deadline = time.time() + 120
    while len(stopped) < len(arns):
        assert time.time() < deadline, "tasks never stopped: %d of %d" % (len(stopped), len(arns))
        pending = [a for a in arns if a not in stopped]
        for i in range(0, len(pending), 100):
            for t in ecs.describe_tasks(cluster="default", tasks=pending[i:i + 100])["tasks"]:
                if t["lastStatus"] == "STOPPED":
                    stopped[t["taskArn"]] = t
        time.sleep(0.5)
    lost = {a: t["containers"][0].get("exitCode") for a, t in stopped.items()
            if t["containers"][0].get("exitCode") != 3}
    assert lost == {}, "%d of %d tasks lost their exit code" % (len(lost), len(arns))
