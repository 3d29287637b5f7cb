"""Task placement and the cluster query language through the public API:
ListContainerInstances' filter over instances registered with
RegisterContainerInstance, RunTask's and StartTask's placement strategies and
constraints (and the task definition's) over real agents in three
availability zones, each on a host of its own (a network namespace,
netns_hosts.py), and the errors that point into a bad expression."""
import collections

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message
from netns_hosts import hbarged, host_agents, host_net, host_registry  # noqa: F401 (fixtures)

SLEEPER = ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.2; done"]


def register_instance(ecs, cluster, attributes=(), cpu=2048, memory=4096):
    return ecs.register_container_instance(
        cluster=cluster,
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}],
        attributes=[{"name": n, "value": v} for n, v in attributes],
    )["containerInstance"]


def listed(ecs, cluster, expr, **kw):
    arns, token = [], None
    while True:
        args = dict(cluster=cluster, filter=expr, **kw)
        if token:
            args["nextToken"] = token
        r = ecs.list_container_instances(**args)
        arns += r["containerInstanceArns"]
        token = r.get("nextToken")
        if not token:
            return sorted(arns)


def test_list_container_instances_filter(barged, tmp_path):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="q")
    a = register_instance(ecs, "q", [("ecs.availability-zone", "us-east-1a"), ("stack", "blue")])
    b = register_instance(ecs, "q", [("ecs.availability-zone", "us-east-1b"), ("stack", "green")])
    c = register_instance(ecs, "q", [("ecs.availability-zone", "us-east-1b"), ("gpu", "")])
    A, B, C = (x["containerInstanceArn"] for x in (a, b, c))
    everyone = sorted([A, B, C])
    assert listed(ecs, "q", "attribute:ecs.availability-zone == us-east-1b") == sorted([B, C])
    assert listed(ecs, "q", "attribute:ecs.availability-zone != us-east-1b") == [A]
    assert listed(ecs, "q", "attribute:stack in [blue, green]") == sorted([A, B])
    assert listed(ecs, "q", "attribute:stack not_in [blue]") == sorted([B, C])
    assert listed(ecs, "q", "attribute:stack exists") == sorted([A, B])
    assert listed(ecs, "q", "attribute:stack !exists") == [C]
    assert listed(ecs, "q", "attribute:stack =~ gr.*") == [B]
    assert listed(ecs, "q", "attribute:ecs.instance-type =~ barge\\..*") == everyone
    assert listed(ecs, "q", f"ec2InstanceId == {a['ec2InstanceId']}") == [A]
    assert listed(ecs, "q", f"ec2InstanceId in ['{a['ec2InstanceId']}', "
                            f"'{c['ec2InstanceId']}']") == sorted([A, C])
    # registered through the API, never polled: no agent is connected
    assert listed(ecs, "q", "agentConnected == false") == everyone
    assert listed(ecs, "q", "agentConnected == true") == []
    assert listed(ecs, "q", "runningTasksCount == 0 and registeredAt > 2020-01-01") == everyone
    assert listed(ecs, "q", "registeredAt < 2020-01-01T00:00:00Z") == []
    assert listed(ecs, "q", "task:group exists") == []
    assert listed(ecs, "q", "not (attribute:stack == blue or attribute:gpu exists)") == [B]
    # pages of one, filter and status together
    assert listed(ecs, "q", "attribute:ecs.os-type == linux", maxResults=1) == everyone
    ecs.update_container_instances_state(cluster="q", containerInstances=[B],
                                         status="DRAINING")
    assert listed(ecs, "q", "attribute:ecs.availability-zone == us-east-1b",
                  status="DRAINING") == [B]
    # the aws CLI's --filter
    cli = AwsCli(barged, str(tmp_path))
    out = cli.json("ecs", "list-container-instances", "--cluster", "q", "--filter",
                   "attribute:stack == blue")
    assert out["containerInstanceArns"] == [A]
    # a bad expression says where
    with pytest.raises(ClientError) as e:
        ecs.list_container_instances(cluster="q", filter="attribute:stack ==")
    assert error_code(e) == "InvalidParameterException"
    assert error_message(e) == ("invalid filter: expected a value after '==' at position 19 "
                                "in 'attribute:stack =='")
    with pytest.raises(ClientError) as e:
        ecs.list_container_instances(cluster="q", filter="agentConnected > true")
    assert "operator '>' cannot be used with agentConnected" in error_message(e)
    p = cli.run("ecs", "list-container-instances", "--cluster", "q", "--filter",
                "hostname == x", check=False)
    assert p.returncode != 0 and "unknown subject 'hostname'" in p.stderr


def register_td(ecs, image, family="p", command=("sh", "-c", "true"), memory=16, **kw):
    return ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "main", "image": image, "memory": memory,
                               "command": list(command)}],
        **kw)["taskDefinition"]["taskDefinitionArn"]


def test_run_task_rejects_bad_placement(barged, busybox):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="default")
    register_instance(ecs, "default")
    td = register_td(ecs, busybox)
    cases = [
        (dict(placementConstraints=[{"type": "memberOf",
                                     "expression": "attribute:ecs.instance-type == t2.small and "
                                                   "attribute:x =="}]),
         "invalid memberOf expression: expected a value after '==' at position 59 in "
         "'attribute:ecs.instance-type == t2.small and attribute:x =='"),
        (dict(placementConstraints=[{"type": "memberOf", "expression": "(attribute:a exists"}]),
         "invalid memberOf expression: expected ')' (to close the '(' at position 1) at "
         "position 20 in '(attribute:a exists'"),
        (dict(placementConstraints=[{"type": "distinctInstance",
                                     "expression": "attribute:a exists"}]),
         "the distinctInstance placement constraint takes no expression; 'attribute:a exists' "
         "was given"),
        (dict(placementConstraints=[{"type": "memberOf"}]),
         "the memberOf placement constraint needs an expression"),
        (dict(placementStrategy=[{"type": "pack"}]),  # the API model's enum check
         "1 validation error detected: Value 'pack' at 'placementStrategy.1.member.type' failed "
         "to satisfy constraint: Member must satisfy enum value set: [random, spread, binpack]"),
        (dict(placementStrategy=[{"type": "spread"}]),
         "the spread placement strategy needs a field: instanceId, host or attribute:NAME"),
        (dict(placementStrategy=[{"type": "binpack", "field": "disk"}]),
         "invalid field 'disk' for the binpack placement strategy: use cpu or memory"),
        (dict(placementStrategy=[{"type": "random"}] * 6),
         "at most 5 placement strategies can be given"),
    ]
    for kw, message in cases:
        with pytest.raises(ClientError) as e:
            ecs.run_task(cluster="default", taskDefinition=td, **kw)
        assert error_code(e) == "InvalidParameterException", kw
        assert error_message(e) == message
    # the task definition's constraints are checked when a task is run
    bad = register_td(ecs, busybox, family="bad", placementConstraints=[
        {"type": "memberOf", "expression": "runningTasksCount > lots"}])
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="default", taskDefinition=bad)
    assert error_message(e) == (
        "task definition placement constraint: invalid memberOf expression: expected a whole "
        "number after '>', not 'lots' at position 21 in 'runningTasksCount > lots'")
    # valid, but the only instance has no agent connected
    r = ecs.run_task(cluster="default", taskDefinition=td, placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"}])
    assert r["tasks"] == [] and [f["reason"] for f in r["failures"]] == ["AGENT"]


def instance_of(tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def test_placement_over_three_zones(hbarged, host_agents, host_registry):
    ecs = hbarged.client("ecs")
    busybox = host_registry
    hosts = {
        "a": host_agents("host-a", extra_args=["--availability-zone", "us-east-1a",
                                               "--attribute", "stack=blue"]),
        "b": host_agents("host-b", extra_args=["--availability-zone", "us-east-1b",
                                               "--attribute", "stack=green"]),
        "c": host_agents("host-c", extra_args=["--availability-zone", "us-east-1c"]),
    }
    arn = {k: a.instance_arn for k, a in hosts.items()}
    td = register_td(ecs, busybox)

    def run(count=1, **kw):
        return ecs.run_task(cluster="default", taskDefinition=td, count=count, **kw)

    # spread over the zones: two each
    r = run(6, group="spread", placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"}])
    assert r["failures"] == []
    assert sorted(instance_of(r["tasks"]).values()) == [2, 2, 2]
    assert {t["availabilityZone"] for t in r["tasks"]} == {"us-east-1a", "us-east-1b",
                                                           "us-east-1c"}
    # spread over instances, chained after the zone
    r = run(3, group="spread2", placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
        {"type": "spread", "field": "instanceId"}])
    assert sorted(instance_of(r["tasks"]).values()) == [1, 1, 1]
    # binpack: once one host has less memory left, the others are not used
    r = run(4, group="pack", placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert r["failures"] == [] and len(instance_of(r["tasks"])) == 1
    # distinctInstance: three hosts, three tasks; the fourth has nowhere to go
    r = run(4, group="distinct", placementConstraints=[{"type": "distinctInstance"}])
    assert sorted(instance_of(r["tasks"]).values()) == [1, 1, 1]
    assert r["failures"] and {f["reason"] for f in r["failures"]} == {
        "DistinctInstance placement constraint unsatisfied."}
    # memberOf on a custom attribute
    r = run(3, placementConstraints=[{"type": "memberOf",
                                      "expression": "attribute:stack == blue"}])
    assert instance_of(r["tasks"]) == {arn["a"]: 3}
    r = run(2, placementConstraints=[{"type": "memberOf",
                                      "expression": "attribute:stack !exists or "
                                                    "attribute:stack == green"}],
            placementStrategy=[{"type": "spread", "field": "host"}])
    assert instance_of(r["tasks"]) == {arn["b"]: 1, arn["c"]: 1}
    r = run(1, placementConstraints=[{"type": "memberOf",
                                      "expression": "attribute:stack == red"}])
    assert r["tasks"] == []
    assert sorted(f["arn"] for f in r["failures"]) == sorted(arn.values())
    assert {f["reason"] for f in r["failures"]} == {"MemberOf placement constraint unsatisfied."}
    # the task definition's memberOf, for RunTask and StartTask
    in_c = register_td(ecs, busybox, family="in-c", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1c"}])
    r = ecs.run_task(cluster="default", taskDefinition=in_c, count=2)
    assert instance_of(r["tasks"]) == {arn["c"]: 2}
    r = ecs.start_task(cluster="default", taskDefinition=in_c,
                       containerInstances=[arn["a"], arn["c"]])
    assert instance_of(r["tasks"]) == {arn["c"]: 1}
    assert r["failures"] == [{"arn": arn["a"],
                              "reason": "MemberOf placement constraint unsatisfied."}]
    # task:group follows the tasks that are there
    sleeper = register_td(ecs, busybox, family="db", command=SLEEPER)
    r = ecs.run_task(cluster="default", taskDefinition=sleeper, group="db",
                     placementConstraints=[{"type": "memberOf",
                                            "expression": "attribute:stack == green"}])
    [db] = r["tasks"]
    assert db["containerInstanceArn"] == arn["b"] and db["group"] == "db"
    r = run(2, placementConstraints=[{"type": "memberOf", "expression": "task:group == db"}])
    assert instance_of(r["tasks"]) == {arn["b"]: 2}
    assert listed(ecs, "default", "task:group == db") == [arn["b"]]
    assert listed(ecs, "default", "agentConnected == true and attribute:stack == blue") == \
        [arn["a"]]
    assert listed(ecs, "default", "attribute:ecs.availability-zone in "
                                  "[us-east-1a, us-east-1c]") == sorted([arn["a"], arn["c"]])
    ecs.stop_task(cluster="default", task=db["taskArn"])


def sim_instance(barged, cluster, memory, cpu=1024):
    """A container instance registered over the agent channel, as barge-agent
    registers, without containers: registering counts as its first heartbeat,
    so it takes tasks until --agent-timeout passes."""
    import json
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"cluster": cluster, "cpu": cpu, "memory": memory,
                       "hostname": "sim", "agentVersion": "test"}).encode()
    req = AWSRequest(method="POST", url=barged.endpoint + "/agent/register", data=body,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ecs",
              "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    with urllib.request.urlopen(r, timeout=30) as resp:
        return json.loads(resp.read())["containerInstanceArn"]


def test_tasks_placed_together_count_each_other(barged, busybox):
    """RunTask and a service place many tasks in one transaction on one
    snapshot of the cluster: each placement must see the ones before it."""
    import time
    ecs = barged.client("ecs")
    td = register_td(ecs, busybox, memory=30)
    ecs.create_cluster(clusterName="batch")
    arns = [sim_instance(barged, "batch", memory=100) for _ in range(3)]
    r = ecs.run_task(cluster="batch", taskDefinition=td, count=10)
    assert len(r["tasks"]) == 9
    assert sorted(instance_of(r["tasks"]).values()) == [3, 3, 3]
    assert {f["reason"] for f in r["failures"]} == {"RESOURCE:MEMORY"}
    assert sorted(f["arn"] for f in r["failures"]) == sorted(arns)
    # the next call reads the cluster again and finds it full
    r = ecs.run_task(cluster="batch", taskDefinition=td, count=1)
    assert r["tasks"] == [] and {f["reason"] for f in r["failures"]} == {"RESOURCE:MEMORY"}
    # a service of 7 on two instances with room for 3 each starts 6
    ecs.create_cluster(clusterName="svc")
    two = [sim_instance(barged, "svc", memory=100) for _ in range(2)]
    ecs.create_service(cluster="svc", serviceName="s", taskDefinition=td, desiredCount=7)
    deadline = time.time() + 30
    while time.time() < deadline:
        s = ecs.describe_services(cluster="svc", services=["s"])["services"][0]
        if any("was unable to place a task" in e["message"] for e in s["events"]):
            break
        time.sleep(0.2)
    tasks = ecs.describe_tasks(cluster="svc", tasks=ecs.list_tasks(
        cluster="svc", serviceName="s")["taskArns"])["tasks"]
    assert instance_of(tasks) == {two[0]: 3, two[1]: 3}
    assert any(e["message"].endswith("has insufficient memory available.") for e in s["events"])
