"""Task roles: a task definition's taskRoleArn gives each task temporary
credentials of that role through ECS's container credentials endpoint
(http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served by the
agent) in the bridge, host and awsvpc network modes. The credentials act with
the role's policies only and stop working when the task stops."""
import json
import os
import time
import urllib.error
import urllib.request

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

import nethelpers
from conftest import REGION, error_code, wait_task

ACCOUNT = "000000000000"
TRAP = "trap 'exit 143' TERM; "
FOREVER = TRAP + "while true; do sleep 0.2; done"
FETCH = ('wget -q -O /tmp/c "http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" '
         '&& echo "CREDS $(cat /tmp/c)" || echo "NO CREDS"; ')
ECS_TASKS_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargetr", 221, tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(scope):
    """Namespaces, veths, NAT rules and leases of the tasks are gone at the
    end, and so is the host's route to the credentials endpoint."""
    before = nethelpers.snapshot(scope)
    yield
    assert nethelpers.snapshot(scope) == before
    assert host_rules() == []


@pytest.fixture
def agent(agent_factory, scope):
    return agent_factory(extra_args=scope.agent_args)


def host_rules():
    return [line for line in nethelpers.run("iptables-save", "-t", "nat").splitlines()
            if "barge task credentials" in line]


def client(barged, service, creds):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=barged.endpoint, region_name=REGION,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["Token"], config=cfg)


def registry_get(barged, path, token):
    """The status of a GET of barged's registry with an ECR token."""
    req = urllib.request.Request(f"{barged.endpoint}{path}",
                                 headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def output_lines(agent, arn, prefix):
    """The lines of the container's output that start with one of prefix."""
    path = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "app.log")
    if not os.path.exists(path):
        return []
    # conmon's k8s-file lines: "<time> stdout F <text>"
    texts = (line.split(" ", 3)[3] if line.count(" ") >= 3 else ""
             for line in open(path).read().splitlines())
    return [t for t in texts if t.startswith(prefix)]


def output_line(agent, arn, prefix, timeout=60, after=0):
    """The first line of the container's output that starts with one of
    prefix, past the first after such lines."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = output_lines(agent, arn, prefix)
        if len(lines) > after:
            return lines[after]
        time.sleep(0.2)
    raise AssertionError(f"no {prefix} in the output of {arn}")


def run_in(ecs, busybox, mode, role_arn, family, script=FETCH + FOREVER):
    kw = {"networkMode": mode}
    run_kw = {}
    if mode == "awsvpc":
        run_kw["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    td = ecs.register_task_definition(
        family=family, taskRoleArn=role_arn, containerDefinitions=[
            {"name": "app", "image": busybox, "memory": 32,
             "command": ["sh", "-c", script]}], **kw)["taskDefinition"]
    r = ecs.run_task(cluster="default", taskDefinition=td["taskDefinitionArn"], **run_kw)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def test_task_role_credentials_in_every_network_mode(barged, agent, busybox):
    iam = barged.client("iam")
    role = iam.create_role(RoleName="app", AssumeRolePolicyDocument=ECS_TASKS_TRUST)["Role"]
    iam.put_role_policy(RoleName="app", PolicyName="own-parameters", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ssm:GetParameter",
            "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/*"}, {
            "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:ListImages"],
            "Resource": "*"}]}))
    barged.client("ecr").create_repository(repositoryName="app")
    ssm = barged.client("ssm")
    ssm.put_parameter(Name="/app/db", Value="postgres://db", Type="String")
    ssm.put_parameter(Name="/other/secret", Value="not yours", Type="String")
    ecs = barged.client("ecs")

    tasks = {mode: run_in(ecs, busybox, mode, role["Arn"], f"role-{mode}")
             for mode in ("bridge", "host", "awsvpc")}
    for mode, arn in tasks.items():
        line = output_line(agent, arn, ("CREDS ", "NO CREDS"))
        assert line.startswith("CREDS "), f"{mode}: {line}"
        creds = json.loads(line[len("CREDS "):])
        assert creds["RoleArn"] == role["Arn"]
        assert creds["AccessKeyId"].startswith("ASIA") and creds["Token"]
        expiration = time.mktime(time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
        assert expiration - time.mktime(time.gmtime()) > 3600, creds["Expiration"]

        task_id = arn.split("/")[-1]
        me = client(barged, "sts", creds).get_caller_identity()
        assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/{task_id}"
        # Exactly the role's policy: its own parameters, nothing else.
        mine = client(barged, "ssm", creds)
        assert mine.get_parameter(Name="/app/db")["Parameter"]["Value"] == "postgres://db"
        with pytest.raises(ClientError) as e:
            mine.get_parameter(Name="/other/secret")
        assert error_code(e) == "AccessDeniedException"
        assert f"assumed-role/app/{task_id}" in str(e.value)
        with pytest.raises(ClientError) as e:
            client(barged, "ecs", creds).list_clusters()
        assert error_code(e) == "AccessDeniedException"

        token = client(barged, "ecr", creds).get_authorization_token()[
            "authorizationData"][0]["authorizationToken"]
        assert registry_get(barged, "/v2/app/tags/list", token) == 200

        # They die with the task, and so do registry tokens made from them.
        ecs.stop_task(cluster="default", task=arn)
        wait_task(ecs, "default", arn)
        with pytest.raises(ClientError) as e:
            mine.get_parameter(Name="/app/db")
        assert error_code(e) == "ExpiredTokenException"
        assert registry_get(barged, "/v2/app/tags/list", token) == 403

    # Host mode needed a rule in the host's namespace: the agent removes it
    # when it stops.
    assert host_rules()
    agent.stop()
    assert host_rules() == []


def test_roles_that_do_not_trust_ecs_tasks_give_no_credentials(barged, agent, busybox):
    iam = barged.client("iam")
    role = iam.create_role(RoleName="humans-only", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole"}]}))["Role"]
    ecs = barged.client("ecs")
    arn = run_in(ecs, busybox, "bridge", role["Arn"], "untrusted")
    assert output_line(agent, arn, ("CREDS ", "NO CREDS")) == "NO CREDS"
    # The agent says why in its log; the task runs on without credentials.
    assert "ecs-tasks.amazonaws.com" in open(agent.log_path).read()

    # A task without a role has no credentials URI; an unknown id is refused.
    td = ecs.register_task_definition(family="norole", containerDefinitions=[
        {"name": "app", "image": busybox, "memory": 32, "command": ["sh", "-c",
         'echo "URI=${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-none}"; '
         'wget -q -O - http://169.254.170.2/v2/credentials/unknown 2>&1 | head -c 300; '
         'echo; echo END']}])["taskDefinition"]["taskDefinitionArn"]
    arn2 = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    assert output_line(agent, arn2, "URI=") == "URI=none"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    wait_task(ecs, "default", arn2)


def test_adopted_tasks_keep_their_credentials(barged, agent, busybox):
    """An agent stopped and started again adopts the running containers: their
    URI stays valid (bridge: the rule in the task's namespace; host: the host's
    rule, removed at the stop, comes back)."""
    iam = barged.client("iam")
    role = iam.create_role(RoleName="app", AssumeRolePolicyDocument=ECS_TASKS_TRUST)["Role"]
    iam.put_role_policy(RoleName="app", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}]}))
    barged.client("ssm").put_parameter(Name="/app/x", Value="1", Type="String")
    ecs = barged.client("ecs")
    # Fetches again each time the test touches /tmp/again in the container's
    # volume.
    again = os.path.join(agent.data_dir, "again")
    os.makedirs(again)
    loop = (TRAP + "n=0; while true; do if [ -e /again/go$n ]; then " + FETCH +
            "n=$((n+1)); fi; sleep 0.2; done")
    tasks = {}
    for mode in ("bridge", "host"):
        td = ecs.register_task_definition(
            family=f"adopt-{mode}", taskRoleArn=role["Arn"], networkMode=mode,
            volumes=[{"name": "again", "host": {"sourcePath": again}}],
            containerDefinitions=[{"name": "app", "image": busybox, "memory": 32,
                                   "mountPoints": [{"sourceVolume": "again",
                                                    "containerPath": "/again"}],
                                   "command": ["sh", "-c", loop]}])["taskDefinition"]
        tasks[mode] = ecs.run_task(cluster="default", taskDefinition=td["taskDefinitionArn"])[
            "tasks"][0]["taskArn"]
        wait_task(ecs, "default", tasks[mode], ("RUNNING",))
    open(os.path.join(again, "go0"), "w").close()
    first = {m: output_line(agent, arn, ("CREDS ", "NO CREDS")) for m, arn in tasks.items()}
    assert all(line.startswith("CREDS ") for line in first.values()), first

    agent.stop()
    assert host_rules() == []
    agent.start()
    open(os.path.join(again, "go1"), "w").close()
    for mode, arn in tasks.items():
        line = output_line(agent, arn, ("CREDS ", "NO CREDS"), after=1)
        assert line.startswith("CREDS "), f"{mode}: {line}"
        creds = json.loads(line[len("CREDS "):])
        ssm = client(barged, "ssm", creds)
        assert ssm.get_parameter(Name="/app/x")["Parameter"]["Value"] == "1"
    for arn in tasks.values():
        ecs.stop_task(cluster="default", task=arn)
        wait_task(ecs, "default", arn)


def test_task_role_of_a_task_in_another_region(barged, agent_factory, scope, busybox):
    """A task in eu-west-1 gets its role's credentials, and they stay valid
    while it runs: the session is tied to the task in its own region."""
    eu = dict(region_name="eu-west-1", endpoint_url=barged.endpoint,
              aws_access_key_id=barged.access_key, aws_secret_access_key=barged.secret_key)
    ecs, ssm = boto3.client("ecs", **eu), boto3.client("ssm", **eu)
    ecs.create_cluster(clusterName="default")
    iam = barged.client("iam")
    role = iam.create_role(RoleName="eu-app", AssumeRolePolicyDocument=ECS_TASKS_TRUST)["Role"]
    iam.put_role_policy(RoleName="eu-app", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ssm:GetParameter",
            "Resource": f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/eu/*"}]}))
    ssm.put_parameter(Name="/eu/x", Value="bonjour", Type="String")
    host = agent_factory(name="euhost", create_cluster=False,
                         extra_args=[*scope.agent_args, "--region", "eu-west-1"])
    arn = run_in(ecs, busybox, "bridge", role["Arn"], "eu-app")
    creds = json.loads(output_line(host, arn, "CREDS ")[len("CREDS "):])
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    mine = boto3.client("ssm", region_name="eu-west-1", endpoint_url=barged.endpoint,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["Token"], config=cfg)
    assert mine.get_parameter(Name="/eu/x")["Parameter"]["Value"] == "bonjour"
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    with pytest.raises(ClientError) as e:
        mine.get_parameter(Name="/eu/x")
    assert error_code(e) == "ExpiredTokenException"
