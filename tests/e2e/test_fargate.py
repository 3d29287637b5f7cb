"""Fargate (issue 10): FARGATE tasks run on barged's managed capacity pool
(an agent started with --capacity fargate) without anyone registering a host
in the cluster, each in its own network namespace with its own address and
its task size as hard limits; capacity provider strategies split tasks by
base and weight; usage is metered per second with a one-minute minimum."""
import os
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message, raw_call, wait_task

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
NET = {"awsvpcConfiguration": {"subnets": ["subnet-barge"], "assignPublicIp": "DISABLED"}}


def fargate_td(ecs, image, family="fg", command=None, cpu="256", memory="512", **kw):
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu=cpu,
        memory=memory, containerDefinitions=[{"name": "main", "image": image,
                                              "command": command or SLEEPER, **kw}]
    )["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture
def pool(barged, agent_factory):
    """The Fargate capacity pool: one agent enrolled with --capacity fargate,
    and an empty cluster (no container instance at all)."""
    barged.client("ecs").create_cluster(clusterName="default")
    return agent_factory("fargate-host", create_cluster=False,
                         extra_args=["--capacity", "fargate"])


def test_fargate_task_runs_without_container_instances(barged, pool, busybox):
    ecs = barged.client("ecs")
    assert ecs.list_container_instances(cluster="default")["containerInstanceArns"] == []
    td = fargate_td(ecs, busybox)
    r = ecs.run_task(cluster="default", taskDefinition=td, launchType="FARGATE",
                     networkConfiguration=NET)
    assert r["failures"] == []
    t = r["tasks"][0]
    assert t["launchType"] == "FARGATE" and t["platformVersion"] == "1.4.0"
    assert "containerInstanceArn" not in t
    task = wait_task(ecs, "default", t["taskArn"], ("RUNNING",))
    ni = task["containers"][0]["networkInterfaces"]
    assert ni and ni[0]["privateIpv4Address"]
    eni = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    assert eni and eni[0]["status"] in ("ATTACHED", "PRECREATED", "ATTACHING")
    ecs.stop_task(cluster="default", task=t["taskArn"])
    wait_task(ecs, "default", t["taskArn"])
    # the pool's host never shows up in the cluster
    assert ecs.list_container_instances(cluster="default")["containerInstanceArns"] == []


def test_fargate_rules(barged, pool, busybox):
    ecs = barged.client("ecs")
    bridge = ecs.register_task_definition(family="ec2only", containerDefinitions=[
        {"name": "main", "image": busybox, "memory": 16}])["taskDefinition"]["taskDefinitionArn"]
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="default", taskDefinition=bridge, launchType="FARGATE",
                     networkConfiguration=NET)
    assert error_code(e) == "ClientException"
    assert "FARGATE" in error_message(e)
    td = fargate_td(ecs, busybox)
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="default", taskDefinition=td, launchType="FARGATE")
    assert error_code(e) == "InvalidParameterException"
    assert "Network Configuration" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(family="bad", requiresCompatibilities=["FARGATE"],
                                     networkMode="awsvpc", cpu="256", memory="4096",
                                     containerDefinitions=[{"name": "m", "image": busybox}])
    assert "No Fargate configuration exists" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(family="bad", requiresCompatibilities=["FARGATE"],
                                     networkMode="bridge", cpu="256", memory="512",
                                     containerDefinitions=[{"name": "m", "image": busybox}])
    assert "awsvpc" in error_message(e)


def test_task_over_its_size_is_oom_killed(barged, pool, busybox):
    ecs = barged.client("ecs")
    td = fargate_td(ecs, busybox, family="hog",
                    command=["sh", "-c", "head -c 700m /dev/zero | tail"])
    arn = ecs.run_task(cluster="default", taskDefinition=td, launchType="FARGATE",
                       networkConfiguration=NET)["tasks"][0]["taskArn"]
    task = wait_task(ecs, "default", arn, timeout=120)
    c = task["containers"][0]
    assert c["exitCode"] == 137
    assert c.get("reason", "").startswith("OutOfMemoryError")


def test_capacity_provider_strategy_split(barged, pool, busybox):
    ecs = barged.client("ecs")
    td = fargate_td(ecs, busybox, family="split")
    ecs.create_service(cluster="default", serviceName="split", taskDefinition=td,
                       desiredCount=3, networkConfiguration=NET,
                       capacityProviderStrategy=[
                           {"capacityProvider": "FARGATE", "base": 1, "weight": 0},
                           {"capacityProvider": "FARGATE_SPOT", "weight": 2}])
    deadline = time.time() + 90
    while time.time() < deadline:
        arns = ecs.list_tasks(cluster="default", serviceName="split")["taskArns"]
        if len(arns) == 3:
            break
        time.sleep(0.5)
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    providers = sorted(t["capacityProviderName"] for t in tasks)
    assert providers == ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT"]
    assert all(t["launchType"] == "FARGATE" for t in tasks)
    cps = {c["name"] for c in ecs.describe_capacity_providers()["capacityProviders"]}
    assert {"FARGATE", "FARGATE_SPOT"} <= cps


def test_usage_is_metered_per_second_with_a_minute_minimum(barged, pool, busybox):
    ecs = barged.client("ecs")
    short = fargate_td(ecs, busybox, family="short", command=["sh", "-c", "sleep 20"])
    long = fargate_td(ecs, busybox, family="long", command=["sh", "-c", "sleep 90"],
                      cpu="512", memory="1024")
    a = ecs.run_task(cluster="default", taskDefinition=short, launchType="FARGATE",
                     networkConfiguration=NET)["tasks"][0]["taskArn"]
    b = ecs.run_task(cluster="default", taskDefinition=long, launchType="FARGATE",
                     networkConfiguration=NET)["tasks"][0]["taskArn"]
    wait_task(ecs, "default", a, timeout=120)
    wait_task(ecs, "default", b, timeout=180)
    import json
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url=barged.endpoint + "/barge/v1/usage?cluster=default")
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ecs",
              "us-east-1").add_auth(req)
    p = req.prepare()
    body = json.loads(urllib.request.urlopen(
        urllib.request.Request(p.url, headers=dict(p.headers))).read())
    rec = {u["taskArn"]: u for u in body["usage"]}
    # the short task ran ~20 s and is billed the one-minute minimum
    assert 19 <= rec[a]["seconds"] < 40 and rec[a]["billedSeconds"] == 60
    # the long one is billed by the second (pull start to stop)
    assert 89 <= rec[b]["billedSeconds"] <= 100
    assert rec[b]["vcpu"] == 0.5 and rec[b]["memoryGB"] == 1.0
    assert rec[b]["vcpuSeconds"] == pytest.approx(0.5 * rec[b]["billedSeconds"])
    assert body["totals"]["tasks"] == 2 and body["totals"]["cost"] > 0
    # barge usage prints the same records
    import subprocess
    from conftest import binary
    env = dict(os.environ, AWS_ACCESS_KEY_ID=barged.access_key,
               AWS_SECRET_ACCESS_KEY=barged.secret_key, AWS_REGION="us-east-1")
    out = subprocess.run([binary("barge"), "usage", "--endpoint-url", barged.endpoint,
                          "--cluster", "default"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert a.split("/")[-1] in out.stdout and "2 task(s)" in out.stdout
