"""Services (issue 6): the service scheduler keeps N tasks running on real
agents, replaces failed ones, rolls deployments within minimumHealthyPercent
and maximumPercent, trips the circuit breaker and rolls back, follows
instances for DAEMON services, drains, and replaces tasks of lost hosts.

The tests with several agents run each agent on a host of its own (a network
namespace, netns_hosts.py) with its own availability zone and attributes; a
lost host is one whose link goes down."""
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message, wait_task
from netns_hosts import hbarged, host_agents, host_net, host_registry  # noqa: F401 (fixtures)

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


def register(ecs, image, family="svc", command=None, **kw):
    return ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "main", "image": image, "memory": 16,
                               "command": command or SLEEPER, **kw}]
    )["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, name, cluster="default"):
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def wait_for(pred, timeout=90, every=0.3, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def stable(ecs, name, desired):
    s = describe(ecs, name)
    return (len(s["deployments"]) == 1 and s["runningCount"] == desired and
            s["deployments"][0]["rolloutState"] == "COMPLETED") and s


def running_tasks(ecs, name):
    arns = ecs.list_tasks(cluster="default", serviceName=name)["taskArns"]
    if not arns:
        return []
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]


def test_service_keeps_three_running_and_replaces_a_killed_one(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    s = ecs.create_service(cluster="default", serviceName="web", taskDefinition=td,
                           desiredCount=3)["service"]
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 3
    assert s["deployments"][0]["status"] == "PRIMARY"
    assert s["deployments"][0]["id"].startswith("ecs-svc/")
    s = wait_for(lambda: stable(ecs, "web", 3), what="steady state")
    messages = [e["message"] for e in s["events"]]
    assert any(m.startswith("(service web) has started 3 tasks:") for m in messages)
    assert "(service web) has reached a steady state." in messages
    tasks = running_tasks(ecs, "web")
    assert len(tasks) == 3
    dep_id = s["deployments"][0]["id"]
    assert all(t["group"] == "service:web" and t["startedBy"] == dep_id for t in tasks)
    # kill one container from outside: the task stops and is replaced
    victim = tasks[0]
    root = f"{agent.data_dir}/runtime/runc"
    subprocess.run(["runc", "--root", root, "kill", victim["containers"][0]["runtimeId"], "KILL"],
                   check=True)
    wait_task(ecs, "default", victim["taskArn"])
    wait_for(lambda: len([t for t in running_tasks(ecs, "web")
                          if t["lastStatus"] == "RUNNING"]) == 3 and
             victim["taskArn"] not in [t["taskArn"] for t in running_tasks(ecs, "web")],
             what="replacement")


def test_rolling_deployment_respects_min_and_max(barged, agent, busybox):
    ecs = barged.client("ecs")
    v1 = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="roll", taskDefinition=v1, desiredCount=4,
                       deploymentConfiguration={"minimumHealthyPercent": 50,
                                                "maximumPercent": 150})
    wait_for(lambda: stable(ecs, "roll", 4), what="v1 steady")
    v2 = register(ecs, busybox, environment=[{"name": "V", "value": "2"}])
    observed = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            tasks = running_tasks(ecs, "roll")
            active = [t for t in tasks if t["desiredStatus"] == "RUNNING"]
            healthy = [t for t in active if t["lastStatus"] == "RUNNING"]
            observed.append((len(active), len(healthy)))
            time.sleep(0.1)

    w = threading.Thread(target=watch)
    w.start()
    try:
        ecs.update_service(cluster="default", service="roll", taskDefinition=v2)
        s = wait_for(lambda: stable(ecs, "roll", 4) if
                     describe(ecs, "roll")["taskDefinition"] == v2 else None, what="v2 steady")
    finally:
        stop.set()
        w.join()
    assert s["deployments"][0]["taskDefinition"] == v2
    assert all(t["taskDefinitionArn"] == v2 for t in running_tasks(ecs, "roll"))
    # max 150% of 4 = 6 tasks at once; min 50% = 2 healthy at every step
    assert max(a for a, _ in observed) <= 6, observed
    assert min(h for _, h in observed) >= 2, observed


def test_circuit_breaker_rolls_back(barged, agent, busybox):
    ecs = barged.client("ecs")
    good = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="cb", taskDefinition=good, desiredCount=2,
                       deploymentConfiguration={
                           "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    wait_for(lambda: stable(ecs, "cb", 2), what="good steady")
    bad = register(ecs, busybox, command=["sh", "-c", "exit 1"])
    ecs.update_service(cluster="default", service="cb", taskDefinition=bad)

    def rolled_back():
        s = describe(ecs, "cb")
        return any("rolling back" in e["message"] for e in s["events"])

    wait_for(rolled_back, timeout=120, what="circuit breaker")
    s = wait_for(lambda: stable(ecs, "cb", 2), timeout=120, what="rollback steady")
    assert s["taskDefinition"] == good
    messages = " ".join(e["message"] for e in s["events"])
    assert "deployment failed: tasks failed to start" in messages
    assert "rolling back to " + good in messages


def test_services_stable_waiter(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="w", taskDefinition=td, desiredCount=2)
    cli = AwsCli(barged, str(tmp_path))
    cli.run("ecs", "wait", "services-stable", "--cluster", "default", "--services", "w")
    s = describe(ecs, "w")
    assert s["runningCount"] == 2 and len(s["deployments"]) == 1


def test_scale_and_delete(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="sc", taskDefinition=td, desiredCount=1)
    wait_for(lambda: stable(ecs, "sc", 1), what="1 running")
    ecs.update_service(cluster="default", service="sc", desiredCount=3)
    wait_for(lambda: stable(ecs, "sc", 3), what="3 running")
    ecs.update_service(cluster="default", service="sc", desiredCount=1)
    wait_for(lambda: stable(ecs, "sc", 1), what="back to 1")
    with pytest.raises(ClientError) as e:
        ecs.delete_service(cluster="default", service="sc")
    assert error_code(e) == "InvalidParameterException"
    d = ecs.delete_service(cluster="default", service="sc", force=True)["service"]
    assert d["status"] == "DRAINING"
    assert ecs.list_services(cluster="default")["serviceArns"] == []
    wait_for(lambda: describe(ecs, "sc")["status"] == "INACTIVE", what="INACTIVE")
    assert ecs.list_tasks(cluster="default", serviceName="sc")["taskArns"] == []


def test_service_api_errors(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="dup", taskDefinition=td, desiredCount=0)
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName="dup", taskDefinition=td,
                           desiredCount=0)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName="nodesired", taskDefinition=td)
    assert "desiredCount" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="default", service="ghost", desiredCount=1)
    assert error_code(e) == "ServiceNotFoundException"
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName="x", taskDefinition=td,
                           desiredCount=1,
                           deploymentConfiguration={"minimumHealthyPercent": 150})
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster="default", serviceName="badq", taskDefinition=td,
                           desiredCount=1, placementConstraints=[
                               {"type": "memberOf", "expression": "attribute:zone =="}])
    assert error_code(e) == "InvalidParameterException"
    assert "position" in error_message(e)
    d = ecs.describe_services(cluster="default", services=["dup", "ghost"])
    assert [s["serviceName"] for s in d["services"]] == ["dup"]
    assert d["failures"][0]["reason"] == "MISSING"
    for i in range(3):
        ecs.create_service(cluster="default", serviceName=f"p{i}", taskDefinition=td,
                           desiredCount=0)
    page = ecs.list_services(cluster="default", maxResults=2)
    assert len(page["serviceArns"]) == 2 and page["nextToken"]


def test_daemon_follows_instances(hbarged, host_agents, host_registry):
    ecs = hbarged.client("ecs")
    a1 = host_agents("h1", extra_args=["--availability-zone", "us-east-1a"])
    td = register(ecs, host_registry)
    ecs.create_service(cluster="default", serviceName="d", taskDefinition=td,
                       schedulingStrategy="DAEMON")
    wait_for(lambda: stable(ecs, "d", 1), what="one daemon task")
    a2 = host_agents("h2", create_cluster=False, extra_args=["--availability-zone", "us-east-1b"])
    s = wait_for(lambda: stable(ecs, "d", 2), what="daemon on the new instance")
    assert s["desiredCount"] == 2
    hosts = {t["containerInstanceArn"] for t in running_tasks(ecs, "d")}
    assert hosts == {a1.instance_arn, a2.instance_arn}


def test_draining_moves_tasks_off(hbarged, host_agents, host_registry):
    ecs = hbarged.client("ecs")
    a1 = host_agents("h1", extra_args=["--availability-zone", "us-east-1a"])
    a2 = host_agents("h2", create_cluster=False, extra_args=["--availability-zone", "us-east-1b"])
    td = register(ecs, host_registry)
    ecs.create_service(cluster="default", serviceName="dr", taskDefinition=td, desiredCount=4)
    wait_for(lambda: stable(ecs, "dr", 4), what="4 running")
    ecs.update_container_instances_state(cluster="default", containerInstances=[a1.instance_arn],
                                         status="DRAINING")

    def moved():
        tasks = [t for t in running_tasks(ecs, "dr") if t["desiredStatus"] == "RUNNING"]
        return (len(tasks) == 4 and all(t["lastStatus"] == "RUNNING" for t in tasks) and
                all(t["containerInstanceArn"] == a2.instance_arn for t in tasks))

    wait_for(moved, timeout=120, what="tasks off the draining instance")


def test_lost_host_tasks_are_rescheduled(hbarged, host_agents, host_net, host_registry):
    ecs = hbarged.client("ecs")
    a1 = host_agents("h1", extra_args=["--availability-zone", "us-east-1a"])
    a2 = host_agents("h2", create_cluster=False, extra_args=["--availability-zone", "us-east-1b"])
    td = register(ecs, host_registry)
    ecs.create_service(cluster="default", serviceName="lost", taskDefinition=td, desiredCount=2)
    wait_for(lambda: stable(ecs, "lost", 2), what="2 running")
    on_a1 = [t["taskArn"] for t in running_tasks(ecs, "lost")
             if t["containerInstanceArn"] == a1.instance_arn]
    assert on_a1, "the default spread placement should have used both hosts"
    # the host drops off the network: its agent and containers run on, but
    # its heartbeat no longer reaches barged
    host_net.partition(a1.host)
    wait_for(lambda: not ecs.describe_container_instances(
        cluster="default", containerInstances=[a1.instance_arn]
    )["containerInstances"][0]["agentConnected"], what="disconnected")

    def replaced():
        tasks = [t for t in running_tasks(ecs, "lost") if t["desiredStatus"] == "RUNNING"]
        return (len(tasks) == 2 and all(t["lastStatus"] == "RUNNING" for t in tasks) and
                all(t["containerInstanceArn"] == a2.instance_arn for t in tasks))

    wait_for(replaced, timeout=60, what="replacement on the live host")
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[a1.instance_arn])
    assert ci["containerInstances"][0]["agentConnected"] is False
    for arn in on_a1:
        t = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        assert t["lastStatus"] == "STOPPED"


def test_service_spreads_and_honours_member_of(hbarged, host_agents, host_registry):
    ecs = hbarged.client("ecs")
    a = host_agents("h1", extra_args=["--availability-zone", "us-east-1a",
                                      "--attribute", "tier=web"])
    b = host_agents("h2", create_cluster=False,
                    extra_args=["--availability-zone", "us-east-1b", "--attribute", "tier=web"])
    c = host_agents("h3", create_cluster=False,
                    extra_args=["--availability-zone", "us-east-1b", "--attribute", "tier=db"])
    td = register(ecs, host_registry)
    ecs.create_service(cluster="default", serviceName="sp", taskDefinition=td, desiredCount=4)
    wait_for(lambda: stable(ecs, "sp", 4), what="4 running")
    zones = {}
    for t in running_tasks(ecs, "sp"):
        zones[t["availabilityZone"]] = zones.get(t["availabilityZone"], 0) + 1
    assert zones == {"us-east-1a": 2, "us-east-1b": 2}
    ecs.create_service(cluster="default", serviceName="mo", taskDefinition=td, desiredCount=3,
                       placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:tier == web"}])
    wait_for(lambda: stable(ecs, "mo", 3), what="3 running")
    hosts = {t["containerInstanceArn"] for t in running_tasks(ecs, "mo")}
    assert c.instance_arn not in hosts and hosts <= {a.instance_arn, b.instance_arn}
    ecs.create_service(cluster="default", serviceName="di", taskDefinition=td, desiredCount=3,
                       placementConstraints=[{"type": "distinctInstance"}])
    wait_for(lambda: stable(ecs, "di", 3), what="3 running on distinct instances")
    hosts = [t["containerInstanceArn"] for t in running_tasks(ecs, "di")]
    assert sorted(hosts) == sorted([a.instance_arn, b.instance_arn, c.instance_arn])
