"""barge logs --task: a task's output as its host keeps it (conmon's log file),
read through barged's GET /barge/v1/task-logs, which has the task's agent
upload the slice over the agent channel. No logConfiguration needed."""
import json
import secrets
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import REGION, Agent, Barged, binary, postgres, sqlite_store, wait_task
from test_cli_deploy import Project
from test_fargate import NET, fargate_td, pool  # noqa: F401 (pool is a fixture)


def register(ecs, containers, family="tl"):
    return ecs.register_task_definition(
        family=family, containerDefinitions=containers)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, td):
    r = ecs.run_task(cluster="default", taskDefinition=td)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def task_logs(barged, **params):
    """A SigV4-signed GET of the endpoint; (status, body)."""
    query = "&".join(f"{k}={urllib.parse.quote(str(v), safe='')}"
                     for k, v in sorted(params.items()))
    url = f"{barged.endpoint}/barge/v1/task-logs?{query}"
    req = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), "ecs", REGION).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, headers=dict(p.headers), method="GET")
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_output_of_a_task_without_log_driver(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "main", "image": busybox, "memory": 16, "command": [
        "sh", "-c", "echo out-one; echo err-one >&2; echo out-two"]}])
    arn = run(ecs, td)
    wait_task(ecs, "default", arn)
    task_id = arn.rsplit("/", 1)[1]
    # The endpoint: events with their stream, and the offset to go on from.
    status, body = task_logs(barged, cluster="default", task=task_id)
    assert status == 200, body
    # conmon reads stdout and stderr from two pipes: order holds per stream.
    got = [(e["stream"], e["message"]) for e in body["events"]]
    assert [m for s, m in got if s == "stdout"] == ["out-one", "out-two"], body
    assert [m for s, m in got if s == "stderr"] == ["err-one"], body
    assert body["lastStatus"] == "STOPPED" and body["container"] == "main"
    assert body["nextOffset"] == body["size"] > 0 and body["more"] is False
    status, again = task_logs(barged, cluster="default", task=arn, offset=body["nextOffset"])
    assert status == 200 and again["events"] == [], again
    # Paged with a small cap, the same events come back, one slice at a time.
    events, offset = [], 0
    for _ in range(10):
        status, page = task_logs(barged, task=task_id, offset=offset, limit=60)
        assert status == 200, page
        events += page["events"]
        offset = page["nextOffset"]
        if not page["more"]:
            break
    assert [e["message"] for e in events] == [e["message"] for e in body["events"]]
    # The CLI, with no config file: the STOPPED task's output is still there.
    p = Project(barged, tmp_path / "p", busybox)
    out = p.ok("logs", "--task", task_id)
    lines = out.stdout.splitlines()
    shown = [line.split(" ", 3)[3] for line in lines]
    assert sorted(shown) == ["err-one", "out-one", "out-two"], out
    assert shown.index("out-one") < shown.index("out-two"), out  # a burst keeps its order
    assert all(line.split(" ")[2] == f"main/{task_id}" for line in lines), out.stdout


def test_container_selection_and_errors(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    td = register(ecs, [
        {"name": "web", "image": busybox, "memory": 16, "essential": True,
         "command": ["sh", "-c", "echo from-web; sleep 2"]},
        {"name": "side", "image": busybox, "memory": 16, "essential": False,
         "command": ["sh", "-c", "echo from-side"]},
    ], family="two")
    arn = run(ecs, td)
    wait_task(ecs, "default", arn)
    p = Project(barged, tmp_path / "p", busybox)
    out = p.ok("logs", "--task", arn, "--container", "side")
    assert "from-side" in out.stdout and "from-web" not in out.stdout, out.stdout
    both = p.ok("logs", "--task", arn)
    assert "from-side" in both.stdout and "from-web" in both.stdout, both.stdout
    bad = p.run("logs", "--task", arn, "--container", "nope", check=False)
    assert "no container 'nope'" in bad.stderr and "'web', 'side'" in bad.stderr, bad.stderr
    # The endpoint says the same, and that a task needs a container named.
    status, body = task_logs(barged, task=arn.rsplit("/", 1)[1], container="nope")
    assert status == 400 and body["__type"] == "InvalidParameterException", body
    assert "'web', 'side'" in body["message"]
    status, body = task_logs(barged, task=arn.rsplit("/", 1)[1])
    assert status == 400 and "several containers" in body["message"], body
    status, body = task_logs(barged, task="0123456789abcdef0123456789abcdef")
    assert status == 400 and body["__type"] == "InvalidParameterException", body
    assert "was not found" in body["message"]
    missing = p.run("logs", "--task", "0123456789abcdef0123456789abcdef", check=False)
    assert missing.returncode != 0 and "0123456789abcdef0123456789abcdef" in missing.stderr


def test_follow_until_the_task_stops(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "ticker", "image": busybox, "memory": 16, "command": [
        "sh", "-c", "i=0; while [ $i -lt 6 ]; do echo tick $i; i=$((i+1)); sleep 1; done"]}],
        family="ticker")
    arn = run(ecs, td)
    wait_task(ecs, "default", arn, statuses=("RUNNING", "STOPPED"))
    p = Project(barged, tmp_path / "p", busybox)
    proc = subprocess.Popen([binary("barge"), "logs", "--task", arn, "--follow"], cwd=p.dir,
                            env=p.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    ticks = [line.rsplit(" ", 1)[1] for line in stdout.splitlines() if "tick" in line]
    assert ticks == [str(i) for i in range(6)], stdout + stderr
    assert ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["lastStatus"] == \
        "STOPPED"


def test_task_of_a_stopped_agent(barged, agent, busybox, tmp_path):
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "main", "image": busybox, "memory": 16, "command": [
        "sh", "-c", "echo before; trap 'exit 0' TERM; while true; do sleep 0.2; done"]}],
        family="lonely")
    arn = run(ecs, td)
    wait_task(ecs, "default", arn, statuses=("RUNNING",))
    agent.stop()
    deadline = time.time() + 60
    while time.time() < deadline:
        ci = ecs.describe_container_instances(
            cluster="default", containerInstances=[agent.instance_arn])["containerInstances"][0]
        if not ci["agentConnected"]:
            break
        time.sleep(0.5)
    p = Project(barged, tmp_path / "p", busybox)
    out = p.run("logs", "--task", arn, check=False)
    assert out.returncode != 0
    assert f"the agent of container instance '{agent.instance_arn}' is not connected" in \
        out.stderr, out.stderr
    status, body = task_logs(barged, task=arn.rsplit("/", 1)[1])
    assert status == 400 and body["__type"] == "TargetNotConnectedException", body


def test_agent_polls_another_barged(busybox, tmp_path):
    """Two barged on one PostgreSQL database: the client asks one, the agent
    polls only the other, and the request and the reply meet in the store."""
    uri = postgres().new_database()
    key = tmp_path / "master.key"
    key.write_text(secrets.token_hex(32) + "\n")
    key.chmod(0o600)
    pair = [Barged(str(tmp_path / f"barged-{n}"), store=uri,
                   extra_args=["--master-key-file", str(key)]) for n in ("a", "b")]
    agent = None
    try:
        for b in pair:
            b.start()
        a, b = pair
        a.client("ecs").create_cluster(clusterName="default")
        agent = Agent(a, str(tmp_path / "host"), servers=[a.endpoint]).start()
        ecs = b.client("ecs")
        td = register(ecs, [{"name": "main", "image": busybox, "memory": 16,
                             "command": ["sh", "-c", "echo across-the-store"]}], family="ha")
        arn = run(ecs, td)
        wait_task(ecs, "default", arn)
        status, body = task_logs(b, task=arn.rsplit("/", 1)[1])
        assert status == 200, body
        assert [e["message"] for e in body["events"]] == ["across-the-store"]
    finally:
        if agent:
            agent.close()
        for b in pair:
            b.stop()


def test_requests_do_not_pile_up(barged, agent, busybox):
    """The client removes its request and reply; housekeeping removes what a
    client that went away left behind."""
    db_path = sqlite_store(barged)
    ecs = barged.client("ecs")
    td = register(ecs, [{"name": "main", "image": busybox, "memory": 16,
                         "command": ["sh", "-c", "echo once"]}], family="once")
    arn = run(ecs, td)
    wait_task(ecs, "default", arn)
    status, body = task_logs(barged, task=arn)
    assert status == 200 and [e["message"] for e in body["events"]] == ["once"], body

    def left():
        db = sqlite3.connect(db_path, timeout=30)
        try:
            return db.execute("SELECT kind, key FROM objects "
                              "WHERE kind IN ('logreq', 'logreply')").fetchall()
        finally:
            db.close()

    assert left() == []
    # What a barged killed while its client waited would leave.
    db = sqlite3.connect(db_path, timeout=30)
    with db:
        for kind in ("logreq", "logreply"):
            db.execute("INSERT INTO objects (kind, key, doc) VALUES (?, ?, ?)",
                       (kind, "gone/0123", json.dumps({"id": "0123", "sent": True,
                                                        "created": time.time() - 3600})))
    db.close()
    deadline = time.time() + 60
    while left() and time.time() < deadline:
        time.sleep(0.5)
    assert left() == []


def test_fargate_task(barged, pool, busybox, tmp_path):
    """A FARGATE task's output is read from the pool host that runs it."""
    ecs = barged.client("ecs")
    td = fargate_td(ecs, busybox, family="fgl", command=["sh", "-c", "echo on-the-pool"])
    r = ecs.run_task(cluster="default", taskDefinition=td, launchType="FARGATE",
                     networkConfiguration=NET)
    assert r["failures"] == [], r["failures"]
    arn = r["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn)
    p = Project(barged, tmp_path / "p", busybox)
    out = p.ok("logs", "--task", arn)
    assert out.stdout.rstrip().endswith("on-the-pool"), out.stdout
