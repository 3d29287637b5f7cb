"""Fargate (issue 10): FARGATE tasks run on barged's managed capacity pool
(an agent started with --capacity fargate) without anyone registering a host
in the cluster, each in its own network namespace with its own address and
its task size as hard limits; capacity provider strategies split tasks by
base and weight; usage is metered per second with a one-minute minimum."""
import os
import subprocess
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


def log_of(agent, arn, name="main"):
    path = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], f"{name}.log")
    return open(path).read() if os.path.exists(path) else ""


def wait_log(agent, arn, text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = log_of(agent, arn)
        if text in out:
            return out
        time.sleep(0.3)
    raise AssertionError(f"'{text}' never showed in the log of {arn}: {log_of(agent, arn)}")


def df_sizes(log, marker, paths=("/", "/scratch")):
    """{path: (1K-blocks, used)} from the `df -k PATH...` lines after marker in
    a container log (k8s-file lines: time stream tag text); df prints a line
    per path, in order."""
    lines = [line.split(" ", 3)[-1] for line in log.splitlines()]
    rows = []
    for line in lines[lines.index(marker) + 1:]:
        f = line.split()
        if len(f) == 6 and f[1].isdigit():
            rows.append((int(f[1]), int(f[2])))
        elif line.startswith("end-"):
            break
    return dict(zip(paths, rows))


def storage_of(pool, arn):
    """The task's storage as the host shows it: (mounted, loop-attached, image
    file present)."""
    tid = arn.split("/")[-1]
    mnt = os.path.join(pool.data_dir, "taskfs", tid)
    img = mnt + ".img"
    mounted = any(line.split()[1] == mnt and line.split()[2] == "ext4"
                  for line in open("/proc/mounts"))
    loops = subprocess.run(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"],
                           capture_output=True, text=True).stdout
    return mounted, img in loops, os.path.exists(img)


def wait_storage_gone(pool, arn, timeout=60):
    """The agent removes a task's storage right after reporting it STOPPED."""
    deadline = time.time() + timeout
    while storage_of(pool, arn) != (False, False, False) and time.time() < deadline:
        time.sleep(0.2)
    assert storage_of(pool, arn) == (False, False, False)


GiB_K = 1024 * 1024  # a GiB in df -k's blocks
STORAGE_CMD = ["sh", "-c",
               "echo start-df; df -k / /scratch; echo end-df; "
               "dd if=/dev/zero of=/filler bs=1M count=64 2>/dev/null; "
               "dd if=/dev/zero of=/scratch/filler bs=1M count=32 2>/dev/null; sync; "
               "echo after-df; df -k / /scratch; echo end-after; "
               "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


def storage_td(ecs, image, family, gib=None):
    kw = {"ephemeralStorage": {"sizeInGiB": gib}} if gib else {}
    return ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", volumes=[{"name": "scratch"}], containerDefinitions=[{
            "name": "main", "image": image, "command": STORAGE_CMD,
            "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}]}],
        **kw)["taskDefinition"]["taskDefinitionArn"]


def test_ephemeral_storage_is_the_tasks_quota(barged, pool, busybox):
    """A FARGATE task's writable layer and volumes share one filesystem of its
    ephemeralStorage size (20 GiB by default); writes count against it, and
    the filesystem and its loop device go with the task."""
    ecs = barged.client("ecs")
    big = ecs.run_task(cluster="default", taskDefinition=storage_td(ecs, busybox, "eph21", 21),
                       launchType="FARGATE", networkConfiguration=NET)["tasks"][0]
    assert big["ephemeralStorage"] == {"sizeInGiB": 21}
    dflt = ecs.run_task(cluster="default", taskDefinition=storage_td(ecs, busybox, "eph20"),
                        launchType="FARGATE", networkConfiguration=NET)["tasks"][0]
    assert dflt["ephemeralStorage"] == {"sizeInGiB": 20}
    for t, gib in ((big, 21), (dflt, 20)):
        arn = t["taskArn"]
        wait_task(ecs, "default", arn, ("RUNNING",), timeout=120)
        log = wait_log(pool, arn, "end-after")
        before, after = df_sizes(log, "start-df"), df_sizes(log, "after-df")
        # the root and the volume are one filesystem of the task's size, less
        # what ext4 keeps for itself
        assert before["/"][0] == before["/scratch"][0]
        assert (gib - 1) * GiB_K < before["/"][0] <= gib * GiB_K, before
        # 96 MiB written (64 in the writable layer, 32 in the volume)
        assert after["/"][1] - before["/"][1] >= 90 * 1024, (before, after)
        assert storage_of(pool, arn) == (True, True, True)
    assert df_sizes(log_of(pool, big["taskArn"]), "start-df")["/"][0] > 20 * GiB_K
    for t in (big, dflt):
        ecs.stop_task(cluster="default", task=t["taskArn"])
    for t in (big, dflt):
        wait_task(ecs, "default", t["taskArn"], timeout=120)
        wait_storage_gone(pool, t["taskArn"])
    # a run's override wins over the definition
    arn = ecs.run_task(cluster="default", taskDefinition=storage_td(ecs, busybox, "eph20"),
                       launchType="FARGATE", networkConfiguration=NET,
                       overrides={"ephemeralStorage": {"sizeInGiB": 30}})["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn, ("RUNNING",), timeout=120)
    assert 29 * GiB_K < df_sizes(wait_log(pool, arn, "end-df"), "start-df")["/"][0] <= 30 * GiB_K
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn, timeout=120)
    wait_storage_gone(pool, arn)
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="default", taskDefinition=storage_td(ecs, busybox, "eph20"),
                     launchType="FARGATE", networkConfiguration=NET,
                     overrides={"ephemeralStorage": {"sizeInGiB": 10}})
    assert "'10'" in error_message(e)


def test_ephemeral_storage_survives_an_agent_restart(barged, pool, busybox):
    """The storage is the host's: an agent killed with SIGKILL leaves it mounted
    for the agent that adopts the task, which removes it when the task stops."""
    ecs = barged.client("ecs")
    arn = ecs.run_task(cluster="default", taskDefinition=storage_td(ecs, busybox, "adopt", 21),
                       launchType="FARGATE", networkConfiguration=NET)["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn, ("RUNNING",), timeout=120)
    wait_log(pool, arn, "end-after")
    pool.kill()
    assert storage_of(pool, arn) == (True, True, True)
    pool.start()
    assert storage_of(pool, arn) == (True, True, True)
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn, timeout=120)
    assert task["containers"][0]["exitCode"] == 0
    wait_storage_gone(pool, arn)


SPOT = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
# traps the interruption's SIGTERM and says so (exit 3: not a SIGKILL's 137)
SPOT_CMD = ["sh", "-c", "trap 'echo spot warning received; exit 3' TERM; echo up; "
            "while true; do sleep 0.2; done"]


def test_on_demand_task_interrupts_a_spot_task_for_room(barged, agent_factory, busybox):
    """A pool full of FARGATE_SPOT tasks: another Spot task waits for room,
    an on-demand task gets it at once from one Spot task, which is stopped
    with SpotInterruption after its SIGTERM warning."""
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="default")
    # room for two tasks of 0.25 vCPU / 512 MiB
    pool = agent_factory("small-pool", create_cluster=False,
                         extra_args=["--capacity", "fargate", "--cpu", "512", "--memory", "1024"])
    spot_td = fargate_td(ecs, busybox, family="spot", command=SPOT_CMD)
    spots = []
    for _ in range(2):
        r = ecs.run_task(cluster="default", taskDefinition=spot_td, networkConfiguration=NET,
                         capacityProviderStrategy=SPOT)
        assert r["failures"] == [] and r["tasks"][0]["capacityProviderName"] == "FARGATE_SPOT"
        spots.append(r["tasks"][0]["taskArn"])
    for arn in spots:
        wait_task(ecs, "default", arn, ("RUNNING",), timeout=120)
        wait_log(pool, arn, "up")  # the trap is set
    # Spot tasks never interrupt one another
    r = ecs.run_task(cluster="default", taskDefinition=spot_td, networkConfiguration=NET,
                     capacityProviderStrategy=SPOT)
    assert r["tasks"] == [] and r["failures"]
    assert all(t["desiredStatus"] == "RUNNING"
               for t in ecs.describe_tasks(cluster="default", tasks=spots)["tasks"])
    # an on-demand task takes the room of one of them
    r = ecs.run_task(cluster="default", taskDefinition=fargate_td(ecs, busybox, family="od"),
                     launchType="FARGATE", networkConfiguration=NET)
    assert r["failures"] == []
    od = r["tasks"][0]["taskArn"]
    wait_task(ecs, "default", od, ("RUNNING",), timeout=120)
    tasks = ecs.describe_tasks(cluster="default", tasks=spots)["tasks"]
    hit = [t for t in tasks if t.get("stopCode") == "SpotInterruption"]
    assert len(hit) == 1, tasks
    spared = [t for t in tasks if t is not hit[0]][0]
    stopped = wait_task(ecs, "default", hit[0]["taskArn"], timeout=150)
    assert stopped["stopCode"] == "SpotInterruption"
    assert stopped["stoppedReason"] == "Your Spot Task was interrupted."
    assert stopped["containers"][0]["exitCode"] == 3
    assert "spot warning received" in log_of(pool, hit[0]["taskArn"])
    spared = ecs.describe_tasks(cluster="default", tasks=[spared["taskArn"]])["tasks"][0]
    assert spared["lastStatus"] == "RUNNING" and "stopCode" not in spared
    for arn in (od, spared["taskArn"]):
        ecs.stop_task(cluster="default", task=arn)
    for arn in (od, spared["taskArn"]):
        wait_task(ecs, "default", arn, timeout=120)
