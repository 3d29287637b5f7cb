"""Beyond one machine (issue 12): two barged share a PostgreSQL database that
the harness starts on loopback, three agents run on "hosts" that are network
namespaces behind a bridge, each in its own availability zone, and every
agent knows both barged and joined with a join token (no access key on the
hosts). Shown here: only the elected leader runs the control loops; kill -9 of
the leader during a deployment leaves the other to finish it; a host whose
agent and containers are gone gets its tasks replaced on the others; a
partitioned host (its link down) has its tasks replaced, and when the link
comes back it stops the stale copies, so a service never runs more tasks than
maximumPercent allows; a restart of PostgreSQL itself ends every session (and
the leadership), and both barged carry on.

Both barged and the test registry listen on the bridge's address, which only
this test's namespaces can reach; everything is removed afterwards."""
import os
import secrets
import signal
import subprocess
import threading
import time

import pytest

from conftest import Agent, Barged, binary, postgres
from netns_fixture import HostNetwork
from registry_fixture import Front, Registry

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def wait_for(pred, timeout=90, every=0.3, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def log_of(b):
    with open(b.log_path, errors="replace") as f:
        return f.read()


def leads(b):
    return "this barged is now the leader" in log_of(b)


@pytest.fixture(scope="module")
def net():
    n = HostNetwork().start()
    yield n
    n.close()


class Images:
    """The test image in a registry on the bridge, and the same image through
    a front that answers manifest requests late, for deployments slow enough
    to kill a barged in the middle of one."""

    def __init__(self, net):
        self.registry = Registry(addr=net.gateway)
        self.front = None

    def start(self):
        self.registry.start()
        self.busybox = self.registry.push_test_image("busybox", "latest")
        self.front = Front(self.registry, manifest_delay=3)
        self.slow_busybox = self.front.host + "/busybox:latest"
        return self

    def close(self):
        if self.front:
            self.front.close()
        self.registry.close()


@pytest.fixture(scope="module")
def images(net):
    im = Images(net)
    try:
        yield im.start()
    finally:
        im.close()


def join_token(barged, *args):
    """A new join token, from `barge join-token create`."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=barged.access_key,
               AWS_SECRET_ACCESS_KEY=barged.secret_key, AWS_REGION="us-east-1")
    p = subprocess.run([binary("barge"), "--endpoint-url", barged.endpoint, "join-token",
                        "create", *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


class Cluster:
    """Two barged on one database and three agents, one per host."""

    def __init__(self, net, tmp):
        self.net = net
        self.tmp = tmp
        self.barged = []
        self.agents = []
        self.hosts = []

    def start(self):
        uri = postgres().new_database()
        for name in ("a", "b"):
            # Every barged of one store must hold the same master key.
            key = os.path.join(self.tmp, "master.key")
            if not os.path.exists(key):
                with open(key, "w") as f:
                    f.write(secrets.token_hex(32) + "\n")
                os.chmod(key, 0o600)
            b = Barged(os.path.join(self.tmp, f"barged-{name}"), store=uri, host=self.net.gateway,
                       extra_args=["--master-key-file", os.path.join(self.tmp, "master.key")])
            self.barged.append(b)
            b.start()
        assert leads(self.barged[0]) and not leads(self.barged[1])
        self.barged[0].client().create_cluster(clusterName="default")
        # The hosts hold no access key: they join with a token.
        token = os.path.join(self.tmp, "join.token")
        with open(token, "w") as f:
            f.write(join_token(self.barged[0], "--cluster", "default", "--uses", "3"))
        for i in range(3):
            host = self.net.add_host()
            self.hosts.append(host)
            a = Agent(self.barged[0], os.path.join(self.tmp, f"host{i + 1}"),
                      servers=[b.endpoint for b in self.barged], prefix=host.prefix,
                      credentials=False,
                      extra_args=["--availability-zone", ZONES[i], "--insecure-registry",
                                  self.net.gateway, "--stop-timeout", "2",
                                  "--join-token-file", token])
            self.agents.append(a)
            a.start()
        return self

    def close(self):
        for a in self.agents:
            a.close()
        for b in self.barged:
            b.stop()
        self.net.close_hosts()


@pytest.fixture
def cluster(net, images, tmp_path):
    c = Cluster(net, str(tmp_path))
    try:
        yield c.start()
    finally:
        c.close()


def register(ecs, image, **kw):
    return ecs.register_task_definition(
        family="ha", containerDefinitions=[{"name": "main", "image": image, "memory": 16,
                                            "command": SLEEPER, **kw}]
    )["taskDefinition"]["taskDefinitionArn"]


def tasks_of(ecs, service):
    arns = ecs.list_tasks(cluster="default", serviceName=service)["taskArns"]
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []


def steady(ecs, service, desired, td=None):
    s = ecs.describe_services(cluster="default", services=[service])["services"][0]
    ok = (len(s["deployments"]) == 1 and s["runningCount"] == desired and
          s["deployments"][0]["rolloutState"] == "COMPLETED" and
          (td is None or s["taskDefinition"] == td))
    return s if ok else None


def running_containers(agent):
    """Containers really running on a host, whatever barged believes."""
    root = os.path.join(agent.data_dir, "runtime", "runc")
    if not os.path.isdir(root):
        return 0
    out = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True,
                         text=True).stdout.split()
    n = 0
    for cid in out:
        st = subprocess.run(["runc", "--root", root, "state", cid], capture_output=True,
                            text=True).stdout
        if '"running"' in st:
            n += 1
    return n


class Watch:
    """Samples, through one barged, how many tasks the service wants running,
    and on the hosts how many of its containers really run."""

    def __init__(self, ecs, service, agents):
        self.ecs, self.service, self.agents = ecs, service, agents
        self.api = []
        self.real = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            try:
                active = [t for t in tasks_of(self.ecs, self.service)
                          if t["desiredStatus"] == "RUNNING"]
                self.api.append(len(active))
            except Exception:  # the barged it asks may be the one killed
                pass
            self.real.append(sum(running_containers(a) for a in self.agents
                                 if a.proc and a.proc.poll() is None))
            time.sleep(0.2)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def test_kill9_leader_during_deployment(cluster, images):
    a, b = cluster.barged
    ecs_b = b.client()
    v1 = register(ecs_b, images.busybox)
    # one task above the desired count at a time: three steps, each waiting
    # for a slow pull, so the deployment is still going when the leader dies
    ecs_b.create_service(cluster="default", serviceName="web", taskDefinition=v1,
                         desiredCount=3, deploymentConfiguration={
                             "minimumHealthyPercent": 100, "maximumPercent": 134})
    wait_for(lambda: steady(ecs_b, "web", 3), what="v1 steady")
    zones = sorted(t["availabilityZone"] for t in tasks_of(ecs_b, "web"))
    assert zones == ZONES
    # the follower served all of that; only the leader scheduled
    assert not leads(b)

    v2 = register(ecs_b, images.slow_busybox, environment=[{"name": "V", "value": "2"}])

    def midway():
        live = [t for t in tasks_of(ecs_b, "web") if t["desiredStatus"] == "RUNNING"]
        new_running = [t for t in live
                       if t["taskDefinitionArn"] == v2 and t["lastStatus"] == "RUNNING"]
        old = [t for t in live if t["taskDefinitionArn"] == v1]
        return new_running and old and (len(new_running), len(old))

    with Watch(ecs_b, "web", cluster.agents) as w:
        ecs_b.update_service(cluster="default", service="web", taskDefinition=v2)
        new, old = wait_for(midway, every=0.1, what="the deployment to be half done")
        a.kill(signal.SIGKILL)
        s = ecs_b.describe_services(cluster="default", services=["web"])["services"][0]
        assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS" and old >= 1, (new, old)
        wait_for(lambda: leads(b), timeout=30, what="the follower to take over")
        s = wait_for(lambda: steady(ecs_b, "web", 3, td=v2), timeout=120,
                     what="the deployment to complete through the other barged")
    live = [t for t in tasks_of(ecs_b, "web") if t["desiredStatus"] == "RUNNING"]
    assert len(live) == 3 and all(t["taskDefinitionArn"] == v2 for t in live)
    # 134% of 3: never more than 4 tasks, in the API or on the hosts
    assert max(w.api) <= 4, w.api
    assert max(w.real) <= 4, w.real
    # every agent moved to the surviving barged and polls it
    for ag in cluster.agents:
        wait_for(lambda: "answers; using it" in open(ag.log_path, errors="replace").read(),
                 what=f"agent {ag.data_dir} to use the other barged")
    cis = ecs_b.describe_container_instances(
        cluster="default", containerInstances=[ag.instance_arn for ag in cluster.agents])
    assert all(ci["agentConnected"] for ci in cis["containerInstances"])
    wait_for(lambda: sum(running_containers(ag) for ag in cluster.agents) == 3,
             what="old containers to stop")


def test_lost_host_tasks_come_back_elsewhere(cluster, images):
    a, b = cluster.barged
    ecs = a.client()
    td = register(ecs, images.busybox)
    ecs.create_service(cluster="default", serviceName="lost", taskDefinition=td, desiredCount=3)
    wait_for(lambda: steady(ecs, "lost", 3), what="3 running")
    gone = cluster.agents[0]
    on_gone = [t["taskArn"] for t in tasks_of(ecs, "lost")
               if t["containerInstanceArn"] == gone.instance_arn]
    assert len(on_gone) == 1
    # the host dies: its agent and its containers
    gone.close()
    assert running_containers(gone) == 0

    def replaced():
        live = [t for t in tasks_of(ecs, "lost") if t["desiredStatus"] == "RUNNING"]
        return (len(live) == 3 and all(t["lastStatus"] == "RUNNING" for t in live) and
                all(t["containerInstanceArn"] != gone.instance_arn for t in live))

    wait_for(replaced, timeout=90, what="the lost host's task to come back elsewhere")
    t = ecs.describe_tasks(cluster="default", tasks=on_gone)["tasks"][0]
    assert t["lastStatus"] == "STOPPED"
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[gone.instance_arn])
    assert ci["containerInstances"][0]["agentConnected"] is False
    # the leader found the host lost, the follower did not act on its own
    assert "is unreachable" in log_of(a) and "is unreachable" not in log_of(b)


def test_partition_heals_without_duplicates(cluster, net, images):
    a, b = cluster.barged
    ecs = b.client()
    td = register(ecs, images.busybox)
    ecs.create_service(cluster="default", serviceName="part", taskDefinition=td, desiredCount=3,
                       deploymentConfiguration={"minimumHealthyPercent": 100,
                                                "maximumPercent": 200})
    wait_for(lambda: steady(ecs, "part", 3), what="3 running")
    cut = cluster.agents[2]
    cut_host = cluster.hosts[2]
    stale = [t["taskArn"] for t in tasks_of(ecs, "part")
             if t["containerInstanceArn"] == cut.instance_arn]
    assert len(stale) == 1
    with Watch(ecs, "part", cluster.agents) as w:
        net.partition(cut_host)
        try:
            def replaced():
                live = [t for t in tasks_of(ecs, "part") if t["desiredStatus"] == "RUNNING"]
                return (len(live) == 3 and all(t["lastStatus"] == "RUNNING" for t in live) and
                        all(t["containerInstanceArn"] != cut.instance_arn for t in live))

            wait_for(replaced, timeout=90, what="replacement while the host is cut off")
            # the cut-off host still runs its copy: it cannot hear barged
            assert running_containers(cut) == 1
        finally:
            net.heal(cut_host)
        wait_for(lambda: running_containers(cut) == 0, timeout=90,
                 what="the healed host to stop the task that was replaced")
        wait_for(lambda: ecs.describe_container_instances(
            cluster="default", containerInstances=[cut.instance_arn]
        )["containerInstances"][0]["agentConnected"], what="the host to reconnect")
        time.sleep(2)  # a few more samples after the heal
    t = ecs.describe_tasks(cluster="default", tasks=stale)["tasks"][0]
    assert t["lastStatus"] == "STOPPED"
    assert steady(ecs, "part", 3)
    # never more than maximumPercent (200% of 3), in the API or on the hosts
    assert max(w.api) <= 6, w.api
    assert max(w.real) <= 6, w.real
    assert sum(running_containers(ag) for ag in cluster.agents) == 3


def test_database_restart(cluster, images):
    a, b = cluster.barged
    ecs_a, ecs_b = a.client(), b.client()
    td = register(ecs_a, images.busybox)
    ecs_a.create_service(cluster="default", serviceName="db", taskDefinition=td, desiredCount=2)
    wait_for(lambda: steady(ecs_a, "db", 2), what="2 running")
    postgres().restart()
    # the pooled connections died with their sessions; the next requests open
    # fresh ones, and a leader is elected again
    wait_for(lambda: log_of(a).count("is now the leader") + log_of(b).count("is now the leader")
             >= 2, timeout=30, what="a leader after the restart")
    ecs_b.update_service(cluster="default", service="db", desiredCount=3)
    wait_for(lambda: steady(ecs_a, "db", 3), what="3 running after the restart")
    assert ecs_b.describe_services(cluster="default", services=["db"])["services"][0][
        "runningCount"] == 3
    # and the other way round: changes made through either barged still land
    ecs_a.update_service(cluster="default", service="db", desiredCount=1)
    wait_for(lambda: steady(ecs_b, "db", 1), what="scaled in after the restart")
