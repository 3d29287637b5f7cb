"""Daemons (issue 19): a daemon runs one task of its daemon task definition on
every container instance of its capacity providers (host groups: agents
started with --attribute barge.capacity-provider=NAME), follows an update to
a new definition and to other providers, records each deployment and
revision, and stops its tasks when deleted. Real agents and containers.
Debian's botocore predates the daemon operations, so they are called as
signed JSON by hand."""
from test_service_deployments import call, fails
from test_services import wait_for

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]





def register(barged, image, marker):
    return call(barged, "RegisterDaemonTaskDefinition", {
        "family": "agentd", "memory": "32",
        "containerDefinitions": [{"name": "main", "image": image, "essential": True,
                                  "command": SLEEPER,
                                  "environment": [{"name": "MARK", "value": marker}]}],
        "tags": [{"key": "team", "value": "infra"}]})["daemonTaskDefinitionArn"]


def provider(ecs, name):
    return ecs.create_capacity_provider(name=name, autoScalingGroupProvider={
        "autoScalingGroupArn": f"arn:aws:autoscaling:us-east-1:000000000000:"
                               f"autoScalingGroup:x:autoScalingGroupName/{name}"}
    )["capacityProvider"]["capacityProviderArn"]


def daemon_tasks(ecs, name, status="RUNNING"):
    """{host group: task} of the daemon's tasks in status."""
    arns = ecs.list_tasks(cluster="default")["taskArns"]
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
    tasks = [t for t in tasks if t.get("group") == f"daemon:{name}"
             and t["lastStatus"] == status and t["desiredStatus"] == "RUNNING"]
    out = {}
    for t in tasks:
        ci = ecs.describe_container_instances(
            cluster="default", containerInstances=[t["containerInstanceArn"]]
        )["containerInstances"][0]
        group = {a["name"]: a.get("value") for a in ci["attributes"]}.get(
            "barge.capacity-provider")
        out.setdefault(group, []).append(t)
    return out


def test_daemon_task_definitions(barged, busybox):
    ecs = barged.client("ecs")
    v1 = register(barged, busybox, "one")
    v2 = register(barged, busybox, "two")
    assert v1.endswith(":daemon-task-definition/agentd:1") and v2.endswith("agentd:2")
    td = call(barged, "DescribeDaemonTaskDefinition",
              {"daemonTaskDefinition": "agentd"})["daemonTaskDefinition"]
    assert td["daemonTaskDefinitionArn"] == v2 and td["revision"] == 2
    assert td["status"] == "ACTIVE" and td["containerDefinitions"][0]["image"] == busybox
    assert call(barged, "DescribeDaemonTaskDefinition",
                {"daemonTaskDefinition": v1})["daemonTaskDefinition"]["revision"] == 1
    # Daemon task definitions are not task definitions, and the other way
    # round.
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []
    code, msg = fails(barged, "DescribeDaemonTaskDefinition", {"daemonTaskDefinition": "nope"})
    assert code == "ClientException" and "'nope'" in msg
    # As RegisterTaskDefinition checks them.
    code, msg = fails(barged, "RegisterDaemonTaskDefinition", {
        "family": "bad name", "containerDefinitions": [{"name": "m", "image": "x",
                                                        "memory": 8}]})
    assert code in ("ClientException", "InvalidParameterException") and "bad name" in msg

    listed = call(barged, "ListDaemonTaskDefinitions", {})["daemonTaskDefinitions"]
    assert [d["arn"] for d in listed] == [v1, v2]
    listed = call(barged, "ListDaemonTaskDefinitions",
                  {"revision": "LAST_REGISTERED"})["daemonTaskDefinitions"]
    assert [d["arn"] for d in listed] == [v2]
    # The latest revision of each family, a page at a time, either way.
    call(barged, "RegisterDaemonTaskDefinition", {
        "family": "zeta", "containerDefinitions": [{"name": "m", "image": busybox,
                                                   "memory": 8}]})
    z2 = call(barged, "RegisterDaemonTaskDefinition", {
        "family": "zeta", "containerDefinitions": [{"name": "m", "image": busybox,
                                                   "memory": 8}]})["daemonTaskDefinitionArn"]
    for order, expected in (("ASC", [v2, z2]), ("DESC", [z2, v2])):
        seen, token = [], None
        while True:
            args = {"revision": "LAST_REGISTERED", "sort": order, "maxResults": 1}
            if token:
                args["nextToken"] = token
            page = call(barged, "ListDaemonTaskDefinitions", args)
            seen += [d["arn"] for d in page["daemonTaskDefinitions"]]
            token = page.get("nextToken")
            if not token:
                break
        assert seen == expected, order
    assert [d["arn"] for d in call(barged, "ListDaemonTaskDefinitions", {
        "familyPrefix": "ag"})["daemonTaskDefinitions"]] == [v1, v2]

    out = call(barged, "DeleteDaemonTaskDefinition", {"daemonTaskDefinition": "agentd:1"})
    assert out["daemonTaskDefinitionArn"] == v1
    assert call(barged, "DescribeDaemonTaskDefinition", {"daemonTaskDefinition": v1})[
        "daemonTaskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    assert [d["arn"] for d in call(barged, "ListDaemonTaskDefinitions", {
        "family": "agentd"})["daemonTaskDefinitions"]] == [v2]
    assert [d["arn"] for d in call(barged, "ListDaemonTaskDefinitions", {
        "family": "agentd", "status": "ALL", "sort": "DESC"})["daemonTaskDefinitions"]] == \
        [v2, v1]
    assert fails(barged, "DeleteDaemonTaskDefinition",
                 {"daemonTaskDefinition": "agentd"})[0] == "InvalidParameterException"


def test_daemon_runs_on_its_capacity_providers(barged, agent_factory, busybox):
    ecs = barged.client("ecs")
    agent_factory("host-a", extra_args=["--attribute", "barge.capacity-provider=grp-a"])
    agent_factory("host-b", extra_args=["--attribute", "barge.capacity-provider=grp-b"])
    agent_factory("host-c")
    wait_for(lambda: len(ecs.list_container_instances(cluster="default")[
        "containerInstanceArns"]) == 3, what="three instances")
    grp_a, grp_b = provider(ecs, "grp-a"), provider(ecs, "grp-b")
    v1 = register(barged, busybox, "one")
    v2 = register(barged, busybox, "two")

    # Errors first: as ECS words them, naming what is wrong.
    code, msg = fails(barged, "CreateDaemon", {"daemonName": "agentd",
                                               "daemonTaskDefinitionArn": v1,
                                               "capacityProviderArns": ["FARGATE"]})
    assert code == "InvalidParameterException" and "'FARGATE'" in msg
    code, msg = fails(barged, "CreateDaemon", {"daemonName": "agentd",
                                               "daemonTaskDefinitionArn": "nope:1",
                                               "capacityProviderArns": [grp_a]})
    assert code == "ClientException" and "nope:1" in msg
    code, _ = fails(barged, "CreateDaemon", {"daemonName": "agentd",
                                             "daemonTaskDefinitionArn": v1,
                                             "capacityProviderArns": ["missing"]})
    assert code == "InvalidParameterException"

    out = call(barged, "CreateDaemon", {"daemonName": "agentd", "daemonTaskDefinitionArn": v1,
                                        "capacityProviderArns": [grp_a],
                                        "tags": [{"key": "k", "value": "v"}]})
    arn = out["daemonArn"]
    assert arn.endswith(":daemon/default/agentd") and out["status"] == "ACTIVE"
    first = out["deploymentArn"]
    assert ":daemon-deployment/default/agentd/" in first
    # Daemons and daemon task definitions are taggable resources.
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.list_tags_for_resource(resourceArn=v1)["tags"] == [
        {"key": "team", "value": "infra"}]
    assert fails(barged, "CreateDaemon", {"daemonName": "agentd",
                                          "daemonTaskDefinitionArn": v1,
                                          "capacityProviderArns": [grp_a]})[0] == \
        "InvalidParameterException"

    # One task, on grp-a's instance only.
    tasks = wait_for(lambda: (lambda t: list(t) == ["grp-a"] and t)(daemon_tasks(ecs, "agentd")),
                     what="the daemon's task on host-a")
    assert len(tasks["grp-a"]) == 1
    assert tasks["grp-a"][0]["taskDefinitionArn"] == v1
    # Not a service's task: ListTasks by service name does not show it.
    assert ecs.list_services(cluster="default")["serviceArns"] == []

    def deployment(darn):
        d = call(barged, "DescribeDaemonDeployments", {"daemonDeploymentArns": [darn]})
        assert d["failures"] == []
        return d["daemonDeployments"][0]

    wait_for(lambda: deployment(first)["status"] == "SUCCESSFUL", what="first deployment done")
    detail = call(barged, "DescribeDaemon", {"daemonArn": arn})["daemon"]
    assert detail["deploymentArn"] == first and detail["status"] == "ACTIVE"
    [rev] = detail["currentRevisions"]
    assert rev["totalRunningCount"] == 1
    assert rev["capacityProviders"] == [{"arn": grp_a, "runningCount": 1}]
    revision = call(barged, "DescribeDaemonRevisions",
                    {"daemonRevisionArns": [rev["arn"]]})["daemonRevisions"][0]
    assert revision["daemonTaskDefinitionArn"] == v1 and revision["daemonArn"] == arn
    assert revision["containerImages"] == [{"containerName": "main", "image": busybox}]

    # Update: a new definition, on both groups; host-c never runs it.
    out = call(barged, "UpdateDaemon", {"daemonArn": arn, "daemonTaskDefinitionArn": v2,
                                        "capacityProviderArns": [grp_a, "grp-b"]})
    second = out["deploymentArn"]
    assert second != first

    def on_both_with_v2():
        t = daemon_tasks(ecs, "agentd")
        return (sorted(t) == ["grp-a", "grp-b"] and all(
            len(v) == 1 and v[0]["taskDefinitionArn"] == v2 for v in t.values())) and t

    wait_for(on_both_with_v2, what="v2 on both groups")
    wait_for(lambda: deployment(second)["status"] == "SUCCESSFUL", what="second deployment")
    d = deployment(second)
    assert [p["arn"] for p in d["targetDaemonRevision"]["capacityProviders"]] == [grp_a, grp_b]
    assert [s["arn"] for s in d["sourceDaemonRevisions"]] == [rev["arn"]]
    listed = call(barged, "ListDaemonDeployments", {"daemonArn": arn})["daemonDeployments"]
    assert [x["daemonDeploymentArn"] for x in listed] == [second, first]
    assert [x["daemonDeploymentArn"] for x in call(barged, "ListDaemonDeployments", {
        "daemonArn": arn, "status": ["IN_PROGRESS"]})["daemonDeployments"]] == []
    summaries = call(barged, "ListDaemons", {})["daemonSummariesList"]
    assert [s["daemonArn"] for s in summaries] == [arn]
    assert call(barged, "ListDaemons", {"capacityProviderArns": ["grp-b"]})[
        "daemonSummariesList"][0]["daemonArn"] == arn
    assert call(barged, "ListDaemons", {"capacityProviderArns": ["grp-x"]})[
        "daemonSummariesList"] == []

    # Delete: its tasks stop and the daemon goes.
    assert call(barged, "DeleteDaemon", {"daemonArn": arn})["status"] == "DELETE_IN_PROGRESS"
    assert fails(barged, "UpdateDaemon", {"daemonArn": arn, "daemonTaskDefinitionArn": v2,
                                          "capacityProviderArns": [grp_a]})[0] == \
        "DaemonNotActiveException"
    wait_for(lambda: daemon_tasks(ecs, "agentd") == {}, what="daemon tasks stopped")
    wait_for(lambda: fails(barged, "DescribeDaemon", {"daemonArn": arn})[0] ==
             "DaemonNotFoundException", what="daemon gone")
    code, msg = fails(barged, "DescribeDaemon", {"daemonArn": "arn:x"})
    assert code == "InvalidParameterException" and "'arn:x'" in msg
