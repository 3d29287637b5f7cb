"""Task networking (issue 4): bridge, host, none and awsvpc network modes wired
with the CNI plugins, dynamic and fixed host ports reported as
networkBindings, placement around fixed ports, and no leftovers: every test
module checks that the namespaces, veths, NAT rules and IPAM leases its tasks
made are gone at the end."""
import json
import os
import subprocess
import time
import urllib.request

import pytest

import nethelpers
from conftest import ecs_raw, wait_task

# PID 1 of a container ignores SIGTERM unless it traps it.
TRAP = "trap 'exit 143' TERM; "
HTTPD = TRAP + ("mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
                "httpd -p 80 -h /www && while true; do sleep 0.2; done")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    """This module's own bridge and subnet, so that what its tasks leave can
    be told from what other suites running on this host make."""
    root = tmp_path_factory.getbasetemp()
    return nethelpers.free_scope("bargenet", 214, root)


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(scope):
    """Per-task leftovers fail the suite; the bridge and the shared chains are
    removed at the end of the session (conftest)."""
    before = nethelpers.snapshot(scope)
    yield
    assert nethelpers.snapshot(scope) == before


@pytest.fixture
def agent(agent_factory, scope):
    return agent_factory(extra_args=scope.agent_args)


def register(ecs, containers, family="net", **kw):
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        **kw)["taskDefinition"]["taskDefinitionArn"]


def run_task(ecs, td, **kw):
    r = ecs.run_task(cluster="default", taskDefinition=td, **kw)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def http_get(url, timeout=3):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def gone(url):
    """True when url no longer reaches a task's httpd. (A client's ephemeral
    source port may equal a dynamic port nobody listens on any more, and the
    socket then connects to itself: that is not an answer either.)"""
    try:
        return "hello from" not in http_get(url, timeout=1)
    except Exception:
        return True


def wait_http(url, timeout=20):
    deadline = time.time() + timeout
    while True:
        try:
            return http_get(url)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def host_address():
    """An address of this host other than loopback."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        dev, addr = line.split()[1], line.split()[3].split("/")[0]
        if not dev.startswith(("barge", "veth")):
            return addr
    return None


def test_dynamic_host_port_answers_on_loopback_and_host_address(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", HTTPD],
                         "portMappings": [{"containerPort": 80}]}])
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn, ("RUNNING",))
    [binding] = task["containers"][0]["networkBindings"]
    assert binding["containerPort"] == 80 and binding["protocol"] == "tcp"
    assert binding["bindIP"] == "0.0.0.0"
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    port = binding["hostPort"]
    assert lo <= port <= hi and port not in (51678, 51679)
    assert "hello from" in wait_http(f"http://127.0.0.1:{port}/")
    addr = host_address()
    if addr:
        assert "hello from" in http_get(f"http://{addr}:{port}/")
    # the port counts as taken on the instance
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[agent.instance_arn])
    remaining = {r["name"]: r for r in ci["containerInstances"][0]["remainingResources"]}
    assert str(port) in remaining["PORTS"]["stringSetValue"]
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 143
    assert gone(f"http://127.0.0.1:{port}/")


def test_fixed_host_port_goes_to_the_other_instance(barged, agent_factory, busybox, scope):
    ecs = barged.client("ecs")
    # Both agents share this host's network namespace (and so its ports and
    # its bridge); barged sees two instances.
    a = agent_factory("host1", extra_args=scope.agent_args)
    b = agent_factory("host2", extra_args=scope.agent_args)
    td = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", HTTPD],
                         "portMappings": [{"containerPort": 80, "hostPort": 18080}]}],
                  family="fixed")
    first = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]
    r2 = ecs.run_task(cluster="default", taskDefinition=td)
    assert r2["failures"] == [], r2
    second = r2["tasks"][0]
    assert {first["containerInstanceArn"], second["containerInstanceArn"]} == \
        {a.instance_arn, b.instance_arn}
    r = ecs.run_task(cluster="default", taskDefinition=td)
    assert r["tasks"] == []
    assert sorted(f["reason"] for f in r["failures"]) == ["RESOURCE:PORTS", "RESOURCE:PORTS"]
    for t in (first, second):
        task = wait_task(ecs, "default", t["taskArn"], ("RUNNING",))
        [binding] = task["containers"][0]["networkBindings"]
        assert binding["hostPort"] == 18080
    assert "hello from" in wait_http("http://127.0.0.1:18080/")
    # reserved ports of the instance are never handed out either
    ssh = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                          "portMappings": [{"containerPort": 80, "hostPort": 22}]}],
                   family="ssh")
    r = ecs.run_task(cluster="default", taskDefinition=ssh)
    assert r["tasks"] == [] and {f["reason"] for f in r["failures"]} == {"RESOURCE:PORTS"}
    for t in (first, second):
        ecs.stop_task(cluster="default", task=t["taskArn"])
    for t in (first, second):
        wait_task(ecs, "default", t["taskArn"])
    # the port is free again
    third = run_task(ecs, td)
    wait_task(ecs, "default", third, ("RUNNING",))
    ecs.stop_task(cluster="default", task=third)
    wait_task(ecs, "default", third)


def test_awsvpc_task_shares_localhost_and_reports_its_eni(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "server", "image": busybox, "memory": 32, "command": ["sh", "-c", HTTPD],
         "portMappings": [{"containerPort": 80}]},
        {"name": "client", "image": busybox, "memory": 32, "essential": False,
         "command": ["sh", "-c", "for i in $(seq 50); do wget -q -O /dev/null "
                     "http://127.0.0.1:80/ && exit 0; sleep 0.2; done; exit 1"]}],
        family="vpc", networkMode="awsvpc")
    with pytest.raises(Exception) as e:
        ecs.run_task(cluster="default", taskDefinition=td)
    assert "Network Configuration must be provided" in str(e.value)
    arn = run_task(ecs, td, networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-0abc"]}})
    deadline = time.time() + 30
    while True:
        task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
        client = [c for c in task["containers"] if c["name"] == "client"][0]
        if "exitCode" in client or time.time() > deadline:
            break
        time.sleep(0.3)
    assert client["exitCode"] == 0, client
    [eni] = task["attachments"]
    assert eni["type"] == "ElasticNetworkInterface" and eni["status"] == "ATTACHED"
    details = {d["name"]: d["value"] for d in eni["details"]}
    assert details["subnetId"] == "subnet-0abc"
    assert details["networkInterfaceId"].startswith("eni-")
    ip = details["privateIPv4Address"]
    assert ip and details["macAddress"]
    server = [c for c in task["containers"] if c["name"] == "server"][0]
    assert server["networkInterfaces"] == [{"attachmentId": eni["id"], "privateIpv4Address": ip}]
    assert "networkBindings" not in server or server["networkBindings"] == []
    # the task's address answers on the container port, from the host
    assert "hello from" in wait_http(f"http://{ip}:80/")
    ecs.stop_task(cluster="default", task=arn)
    task = wait_task(ecs, "default", arn)
    assert task["attachments"][0]["status"] == "DELETED"


def test_host_mode_uses_the_host_ports(barged, agent, busybox):
    ecs = barged.client("ecs")
    cmd = TRAP + ("mkdir -p /www && echo host mode > /www/index.html && "
                  "httpd -p 127.0.0.1:18081 -h /www && while true; do sleep 0.2; done")
    td = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", cmd],
                         "portMappings": [{"containerPort": 18081}]}],
                  family="hostmode", networkMode="host")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn, ("RUNNING",))
    assert task["containers"][0]["networkBindings"] == [
        {"bindIP": "0.0.0.0", "containerPort": 18081, "hostPort": 18081, "protocol": "tcp"}]
    assert wait_http("http://127.0.0.1:18081/").strip() == "host mode"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)


def test_none_mode_has_only_loopback(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "main", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", "ls /sys/class/net | tr '\\n' ' '; "
                                     "ip addr show lo | grep -q 'inet 127.0.0.1' && "
                                     "[ \"$(ls /sys/class/net)\" = lo ]"]}],
                  family="nonet", networkMode="none")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, open(
        os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "main.log")).read()


def test_metadata_endpoint_from_inside_containers(barged, agent, busybox):
    ecs = barged.client("ecs")
    script = ('wget -q -O /tmp/c "$ECS_CONTAINER_METADATA_URI_V4" && '
              'wget -q -O /tmp/t "$ECS_CONTAINER_METADATA_URI_V4/task" && '
              'wget -q -O /tmp/s "$ECS_CONTAINER_METADATA_URI_V4/stats" && '
              'wget -q -O /tmp/ts "$ECS_CONTAINER_METADATA_URI_V4/task/stats" && '
              'for f in c t s ts; do echo "=$f"; cat /tmp/$f; echo; done')
    results = {}
    for mode in ("bridge", "host", "awsvpc"):
        kw = {"networkMode": mode}
        run_kw = {}
        if mode == "awsvpc":
            run_kw["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
        td = register(ecs, [
            {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c", script],
             "dockerLabels": {"team": "net"},
             "dependsOn": [{"containerName": "side", "condition": "START"}]},
            {"name": "side", "image": busybox, "memory": 32, "essential": False,
             "command": ["sh", "-c", TRAP + "while true; do sleep 0.2; done"]}],
            family=f"meta-{mode}", **kw)
        arn = run_task(ecs, td, **run_kw)
        task = wait_task(ecs, "default", arn)
        app = [c for c in task["containers"] if c["name"] == "app"][0]
        log = open(os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "app.log")).read()
        assert app["exitCode"] == 0, log
        # conmon's k8s-file lines: "<time> stdout F <text>"
        text = "\n".join(line.split(" ", 3)[3] for line in log.splitlines() if line.count(" ") >= 3)
        docs = {}
        for part in text.split("\n=")[0:]:
            part = part.lstrip("=")
            name, _, body = part.partition("\n")
            docs[name] = json.loads(body)
        results[mode] = (arn, task, docs)
    for mode, (arn, task, docs) in results.items():
        c, t, s, ts = docs["c"], docs["t"], docs["s"], docs["ts"]
        assert c["Name"] == "app" and c["DockerId"] == task["containers"][0]["runtimeId"]
        assert all(x["DockerId"] for x in t["Containers"])
        assert c["Labels"]["com.amazonaws.ecs.task-arn"] == arn
        assert c["Labels"]["com.amazonaws.ecs.container-name"] == "app"
        assert c["Labels"]["team"] == "net"
        assert c["KnownStatus"] == "RUNNING" and c["Limits"]["Memory"] == 32
        assert c["Type"] == "NORMAL" and c["Networks"][0]["NetworkMode"] == mode
        assert t["TaskARN"] == arn and t["Family"] == f"meta-{mode}"
        assert t["Cluster"] == task["clusterArn"] and t["LaunchType"] == "EC2"
        assert {x["Name"] for x in t["Containers"]} == {"app", "side"}
        assert "PullStartedAt" in t and "AvailabilityZone" in t
        assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] >= 1
        assert "cpu_usage" in s["cpu_stats"] and s["id"] == c["DockerId"]
        assert set(ts) == {x["DockerId"] for x in t["Containers"]}
        if mode == "awsvpc":
            net = c["Networks"][0]
            assert net["IPv4Addresses"] == [task["attachments"][0]["details"][-1]["value"]]
            assert net["MACAddress"] and net["IPv4SubnetCIDRBlock"]
        if mode != "host":
            assert "eth0" in s["networks"]
    # an unknown token is refused
    port = json.load(open(os.path.join(agent.data_dir, "state.json")))["metadataPort"]
    with pytest.raises(urllib.error.HTTPError) as e:
        http_get(f"http://127.0.0.1:{port}/v4/{'0' * 32}")
    assert e.value.code == 404


def test_no_leaks_after_100_tasks(barged, agent, busybox, scope):
    ecs = barged.client("ecs")
    before = nethelpers.snapshot(scope)
    td = register(ecs, [{"name": "main", "image": busybox, "memory": 16,
                         "command": ["sh", "-c", "wget -q -O /dev/null "
                                     "\"$ECS_CONTAINER_METADATA_URI_V4\""],
                         "portMappings": [{"containerPort": 80}, {"containerPort": 53,
                                                                   "protocol": "udp"}]}],
                  family="churn")
    arns = []
    for _ in range(10):
        r = ecs.run_task(cluster="default", taskDefinition=td, count=10)
        assert r["failures"] == [], r["failures"]
        batch = [t["taskArn"] for t in r["tasks"]]
        for arn in batch:
            task = wait_task(ecs, "default", arn, timeout=120)
            assert task["containers"][0]["exitCode"] == 0, task
            bindings = task["containers"][0]["networkBindings"]
            assert {b["protocol"] for b in bindings} == {"tcp", "udp"}
            assert all(b["hostPort"] not in (22, 2375, 2376, 51678, 51679) for b in bindings)
        arns += batch
    assert len(arns) == 100
    # STOPPED is reported once the network is gone
    assert nethelpers.snapshot(scope) == before
    assert not os.listdir(os.path.join(agent.data_dir, "net"))
    volumes = os.path.join(agent.data_dir, "volumes", "tasks")
    assert not os.path.exists(volumes) or not os.listdir(volumes)


def kill_containers(data_dir):
    """Kills the containers under data_dir, leaving their mounts (and so the
    task namespaces) alone."""
    for name in ("runc", "crun"):
        root = os.path.join(data_dir, "runtime", name)
        if os.path.isdir(root):
            ids = subprocess.run([name, "--root", root, "list", "-q"], capture_output=True,
                                 text=True).stdout.split()
            for cid in ids:
                subprocess.run([name, "--root", root, "delete", "-f", cid], capture_output=True)


def metadata_port(agent):
    return json.load(open(os.path.join(agent.data_dir, "state.json")))["metadataPort"]


def test_agent_restart_adopts_the_network(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", HTTPD],
                         "portMappings": [{"containerPort": 80}]}], family="adopt")
    arn = run_task(ecs, td)
    task = wait_task(ecs, "default", arn, ("RUNNING",))
    port = task["containers"][0]["networkBindings"][0]["hostPort"]
    wait_http(f"http://127.0.0.1:{port}/")
    state = json.load(open(os.path.join(agent.data_dir, "state.json")))
    token = state["tasks"][arn]["containers"][0]["token"]
    meta_port = state["metadataPort"]
    agent.kill()
    # the task keeps serving while its agent is away
    assert "hello from" in http_get(f"http://127.0.0.1:{port}/")
    agent.start()
    assert metadata_port(agent) == meta_port
    doc = json.loads(wait_http(f"http://127.0.0.1:{meta_port}/v4/{token}"))
    assert doc["Name"] == "web" and doc["Ports"][0]["HostPort"] == port
    assert "hello from" in http_get(f"http://127.0.0.1:{port}/")
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    assert gone(f"http://127.0.0.1:{port}/")


def test_agent_removes_networks_of_tasks_it_forgot(barged, agent, busybox, scope):
    ecs = barged.client("ecs")
    before = nethelpers.snapshot(scope)
    td = register(ecs, [{"name": "web", "image": busybox, "memory": 32,
                         "command": ["sh", "-c", HTTPD],
                         "portMappings": [{"containerPort": 80}]}], family="forgot")
    arn = run_task(ecs, td)
    wait_task(ecs, "default", arn, ("RUNNING",))
    assert nethelpers.snapshot(scope) != before
    agent.kill()
    # The agent dies and its checkpoint loses the task (as if it crashed
    # between removing the task's containers and its network); the task is
    # stopped meanwhile.
    path = os.path.join(agent.data_dir, "state.json")
    state = json.load(open(path))
    state["tasks"] = {}
    json.dump(state, open(path, "w"))
    kill_containers(agent.data_dir)
    ecs.stop_task(cluster="default", task=arn)
    agent.start()
    wait_task(ecs, "default", arn)
    deadline = time.time() + 20
    while nethelpers.snapshot(scope) != before and time.time() < deadline:
        time.sleep(0.2)
    assert nethelpers.snapshot(scope) == before
