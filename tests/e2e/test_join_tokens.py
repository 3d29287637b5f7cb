"""Join tokens (issue 12): a host registers its barge-agent with a token an
operator created (`barge join-token create`) instead of holding an access key,
then runs tasks with its per-instance token like any agent. Expired, revoked,
used-up and wrong-cluster tokens are refused, and the agent's log says which;
`barge join-token list` shows how often each was used. One host in a network
namespace joins barged over the network."""
import os
import subprocess
import time

import pytest

from conftest import Agent, Barged, binary, wait_task


def barge(barged, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=barged.access_key,
               AWS_SECRET_ACCESS_KEY=barged.secret_key, AWS_REGION="us-east-1")
    p = subprocess.run([binary("barge"), "--endpoint-url", barged.endpoint, *args],
                       capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert p.returncode == 0, f"barge {' '.join(args)}: {p.stderr}"
    return p


def create_token(barged, *args):
    token = barge(barged, "join-token", "create", *args).stdout.strip()
    assert token.startswith("jt-") and "." in token
    return token


def token_file(tmp_path, name, token):
    path = tmp_path / f"{name}.token"
    path.write_text(token + "\n")
    os.chmod(path, 0o600)
    return str(path)


def listed(barged):
    """barge join-token list as {id: row fields}."""
    out = barge(barged, "join-token", "list").stdout.splitlines()
    assert out[0].split() == ["ID", "CLUSTER", "USES", "EXPIRES", "STATUS"]
    rows = {}
    for line in out[1:]:
        f = line.split(None, 4)
        rows[f[0]] = {"cluster": f[1], "uses": f[2], "expires": f[3], "status": f[4]}
    return rows


@pytest.fixture
def hosts(barged, tmp_path):
    """Agents that register with a join token and hold no access key."""
    made = []

    def make(name, token, cluster="default", how="file"):
        if how == "file":
            extra = ["--join-token-file", token_file(tmp_path, name, token)]
        else:
            extra = ["--join-token", token]
        a = Agent(barged, str(tmp_path / name), cluster=cluster, extra_args=extra,
                  credentials=False)
        made.append(a)
        return a

    yield make
    # every agent is stopped even when one's log fails the test
    failures = []
    for a in made:
        try:
            a.close()
        except AssertionError as e:
            failures.append(e)
    if failures:
        raise failures[0]


def refused(agent, message):
    with pytest.raises(RuntimeError):
        agent.start()
    agent.proc.wait(timeout=30)
    assert agent.proc.returncode != 0
    with open(agent.log_path, errors="replace") as f:
        log = f.read()
    assert "refused the registration" in log and message in log, log
    assert agent.instance_arn is None


def test_agent_joins_with_a_token_and_runs_a_task(barged, hosts, busybox, tmp_path):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="default")
    token = create_token(barged, "--cluster", "default", "--ttl", "1h", "--uses", "2")
    tid, secret = token.split(".")
    rows = listed(barged)
    assert rows[tid] == {"cluster": "default", "uses": "0/2", "expires": rows[tid]["expires"],
                         "status": "active"}
    a = hosts("host1", token).start()
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[a.instance_arn])
    assert ci["containerInstances"][0]["agentConnected"] is True
    td = ecs.register_task_definition(
        family="joined", containerDefinitions=[{
            "name": "main", "image": busybox, "memory": 32,
            "command": ["sh", "-c", "echo joined"]}])["taskDefinition"]["taskDefinitionArn"]
    r = ecs.run_task(cluster="default", taskDefinition=td)
    assert r["failures"] == []
    task = wait_task(ecs, "default", r["tasks"][0]["taskArn"], timeout=120)
    assert task["containers"][0]["exitCode"] == 0
    assert task["containerInstanceArn"] == a.instance_arn
    rows = listed(barged)
    assert rows[tid]["uses"] == "1/2" and rows[tid]["status"] == "active"
    # the JSON listing has the same, and never the secret
    out = barge(barged, "join-token", "list", "--output", "json").stdout
    assert secret not in out and '"uses": 1' in out
    # neither barged's log nor the agent's has the secret
    for log in (barged.log_path, a.log_path):
        with open(log, errors="replace") as f:
            assert secret not in f.read()
    # the token on the command line works too, and uses it up
    b = hosts("host2", token, how="arg").start()
    assert b.instance_arn != a.instance_arn
    assert listed(barged)[tid] == {**rows[tid], "uses": "2/2", "status": "used up"}
    refused(hosts("host3", token), "is used up")


def test_bad_tokens_are_refused(barged, hosts):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="default")
    ecs.create_cluster(clusterName="other")
    expiring = create_token(barged, "--ttl", "1s")
    revoked = create_token(barged)
    other = create_token(barged, "--cluster", "other")
    rid = revoked.split(".")[0]
    p = barge(barged, "join-token", "revoke", rid)
    assert rid in p.stdout
    time.sleep(2)
    refused(hosts("expired", expiring), "expired at")
    refused(hosts("revoked", revoked), f"join token '{rid}' was revoked")
    refused(hosts("wrong", other), "is for cluster 'other', not 'default'")
    refused(hosts("unknown", rid + "." + "0" * 64), "unknown join token")
    refused(hosts("malformed", "not-a-token"), "malformed join token")
    # barged's log says so too, for the operator
    with open(barged.log_path, errors="replace") as f:
        log = f.read()
    assert "refused to register host" in log and f"join token '{rid}' was revoked" in log
    rows = listed(barged)
    assert rows[expiring.split(".")[0]]["status"] == "expired"
    assert rows[rid]["status"] == "revoked"
    o = rows[other.split(".")[0]]
    assert o["cluster"] == "other" and o["uses"] == "0" and o["status"] == "active"
    # the token that is for the cluster works there
    hosts("right", other, cluster="other").start()
    assert listed(barged)[other.split(".")[0]]["uses"] == "1"
    assert ecs.list_container_instances(cluster="default")["containerInstanceArns"] == []


def test_join_token_cli(barged):
    for args in (["join-token", "--help"], ["join-token", "create", "--help"],
                 ["join-token", "list", "--help"], ["join-token", "revoke", "--help"]):
        p = barge(barged, *args)
        assert "Usage: barge join-token" in p.stdout
    assert "--uses" in barge(barged, "join-token", "create", "--help").stdout
    p = barge(barged, "join-token", "create", "--cluster", "nope", check=False)
    assert p.returncode == 1 and "nope" in p.stderr
    p = barge(barged, "join-token", "revoke", "jt-0000000000000000", check=False)
    assert p.returncode == 1 and "does not exist" in p.stderr
    p = barge(barged, "join-token", "frob", check=False)
    assert p.returncode == 2
    # unsigned calls are refused
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(barged.endpoint + "/barge/v1/join-tokens", timeout=30)
    assert e.value.code in (400, 401, 403)


def test_host_in_a_network_namespace_joins_over_the_network(tmp_path):
    from netns_fixture import HostNetwork
    net = HostNetwork().start()
    b = None
    a = None
    try:
        b = Barged(str(tmp_path / "barged"), host=net.gateway)
        b.start()
        ecs = b.client()
        ecs.create_cluster(clusterName="default")
        token = create_token(b, "--cluster", "default", "--uses", "1")
        host = net.add_host()
        a = Agent(b, str(tmp_path / "host1"), prefix=host.prefix, credentials=False,
                  extra_args=["--join-token-file", token_file(tmp_path, "ns", token)])
        a.start()
        ci = ecs.describe_container_instances(cluster="default",
                                              containerInstances=[a.instance_arn])
        assert ci["containerInstances"][0]["agentConnected"] is True
        assert listed(b)[token.split(".")[0]]["status"] == "used up"
    finally:
        if a:
            a.close()
        if b:
            b.stop()
        net.close()
