"""Environment variables three ways (issue 7): a task's containers get the
definition's `environment`, variables from environment files in S3 and
secrets from SSM Parameter Store and Secrets Manager, resolved by the agent at
start with execution credentials barged issues for the task, with ECS's
precedence. Failures stop the task before any container starts, naming what
was missing; no secret value reaches barged's database, a log or the agent's
state."""
import json
import os
import stat
import time
import urllib.request

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import error_code, wait_task

SLEEPER = ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.2; done"]
ACCOUNT = "000000000000"

SSM_SECRET = "ssm-Secure-7c41e9"
SM_PASSWORD = "sm-Passw0rd-52ab0d"
SM_WHOLE = json.dumps({"username": "dbuser", "password": SM_PASSWORD})
WEST_SECRET = "west-Only-3f9e21"
LOG_SECRET = "log-Token-a81c77"


def client(barged, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=barged.endpoint, region_name=region,
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1},
                                                      s3={"addressing_style": "path"},
                                                      signature_version=None
                                                      if service != "s3" else "s3v4"))


@pytest.fixture
def stores(barged):
    """Parameters, a secret and two environment files to point tasks at."""
    ssm = client(barged, "ssm")
    ssm.put_parameter(Name="/app/secure", Value=SSM_SECRET, Type="SecureString")
    ssm.put_parameter(Name="plain-param", Value="plain-param-value", Type="String")
    sm = client(barged, "secretsmanager")
    arn = sm.create_secret(Name="app/db", SecretString=SM_WHOLE)["ARN"]
    s3 = client(barged, "s3")
    s3.create_bucket(Bucket="envs")
    s3.put_object(Bucket="envs", Key="base.env", Body=(
        "# a comment line\n"
        "FROM_FILE1=file1\n"
        "SHARED=from-base\n"
        "INLINE_WINS=from-file\n"
        "QUOTED=\"kept quotes\" and spaces \n"
        "SPLIT=a=b\n").encode())
    s3.put_object(Bucket="envs", Key="extra.env",
                  Body=b"SHARED=from-extra\nFROM_FILE2=file2\n")
    return {"sm_arn": arn}


def register(ecs, image, containers=None, family="env", **container):
    if containers is None:
        c = {"name": "main", "image": image, "memory": 32,
             "command": ["sh", "-c", "env | sort"]}
        c.update(container)
        containers = [c]
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        executionRoleArn="arn:aws:iam::000000000000:role/exec")[
        "taskDefinition"]["taskDefinitionArn"]


def run(ecs, td, **kw):
    r = ecs.run_task(cluster="default", taskDefinition=td, **kw)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def container_env(agent, arn, name="main"):
    """The environment a container printed (env | sort), from its log."""
    path = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], name + ".log")
    env = {}
    for line in open(path).read().splitlines():
        # conmon's k8s-file format: "<time> stdout F <text>"
        text = line.split(" ", 3)[3] if line.count(" ") >= 3 else line
        if "=" in text:
            k, v = text.split("=", 1)
            env[k] = v
    return env


def test_environment_files_and_secrets_with_precedence(barged, agent, busybox, stores):
    ecs = barged.client("ecs")
    sm_arn = stores["sm_arn"]
    td = register(ecs, busybox,
                  environment=[{"name": "INLINE_WINS", "value": "from-inline"},
                               {"name": "ONLY_INLINE", "value": "inline"}],
                  environmentFiles=[{"type": "s3", "value": "arn:aws:s3:::envs/base.env"},
                                    {"type": "s3", "value": "arn:aws:s3:::envs/extra.env"}],
                  secrets=[{"name": "SSM_SECURE", "valueFrom": "/app/secure"},
                           {"name": "SSM_PLAIN", "valueFrom": "plain-param"},
                           {"name": "SSM_BY_ARN", "valueFrom":
                            f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/secure"},
                           {"name": "DB_PASSWORD", "valueFrom": sm_arn + ":password::"},
                           {"name": "DB_USER", "valueFrom": sm_arn[:-7] + ":username::"},
                           {"name": "DB_WHOLE", "valueFrom": sm_arn}])
    arn = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, task
    env = container_env(agent, arn)
    assert env["ONLY_INLINE"] == "inline"
    assert env["INLINE_WINS"] == "from-inline"  # environment wins over files
    assert env["SHARED"] == "from-base"  # the earlier file wins
    assert env["FROM_FILE1"] == "file1" and env["FROM_FILE2"] == "file2"
    assert env["QUOTED"] == '"kept quotes" and spaces '  # no quote processing, no trim
    assert env["SPLIT"] == "a=b"  # split at the first '='
    assert "# a comment line" not in env
    assert env["SSM_SECURE"] == SSM_SECRET  # a SecureString, decrypted
    assert env["SSM_BY_ARN"] == SSM_SECRET
    assert env["SSM_PLAIN"] == "plain-param-value"
    assert env["DB_PASSWORD"] == SM_PASSWORD  # a JSON key of a secret
    assert env["DB_USER"] == "dbuser"  # ... by partial ARN
    assert json.loads(env["DB_WHOLE"]) == json.loads(SM_WHOLE)
    assert "PATH" in env  # the image's variables are still there

    # nothing shows the values: the APIs, the database, the logs, the state
    described = json.dumps(ecs.describe_tasks(cluster="default", tasks=[arn]), default=str)
    described += json.dumps(ecs.describe_task_definition(taskDefinition=td), default=str)
    for secret in (SSM_SECRET, SM_PASSWORD):
        assert secret not in described
    assert_nowhere(barged, agent, [SSM_SECRET, SM_PASSWORD])


def assert_nowhere(barged, agent, secrets):
    """No secret in barged's data directory (database, WAL, logs) nor in the
    agent's (log, state.json, checkpoints), except the containers' own output
    (they printed them), their image layers and the OCI config of a container
    not yet removed."""
    for root_dir, skip in ((barged.data_dir, ()), (agent.data_dir, ("logs", "images"))):
        for root, dirs, files in os.walk(root_dir):
            rel = os.path.relpath(root, root_dir)
            if rel.split(os.sep)[0] in skip:
                continue
            for f in files:
                path = os.path.join(root, f)
                # regular files only: conmon keeps FIFOs there, and opening
                # one would wait for a writer forever
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    if root_dir == agent.data_dir and f == "config.json" and \
                            rel.startswith(os.path.join("runtime", "containers")):
                        # the runtime starts the process from its OCI
                        # config, environment included, until the agent
                        # removes the container: owner-only, by necessity
                        assert st.st_mode & 0o077 == 0, path
                        continue
                    data = open(path, "rb").read()
                except OSError:
                    continue  # removed while we walked
                for s in secrets:
                    assert s.encode() not in data, f"{s} found in {path}"
    assert os.path.exists(os.path.join(agent.data_dir, "state.json"))


def test_missing_parameter_stops_the_task(barged, agent, busybox, stores):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, secrets=[{"name": "OK", "valueFrom": "/app/secure"},
                                         {"name": "GONE", "valueFrom": "/missing/param"}])
    arn = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["stoppedReason"]
    assert reason.startswith("ResourceInitializationError: unable to pull secrets or registry "
                             "auth: "), reason
    assert "/missing/param" in reason and SSM_SECRET not in reason
    assert "runtimeId" not in task["containers"][0]  # no container was created
    log = open(os.path.join(agent.data_dir, "logs", arn.split("/")[-1], "main.log")) \
        if os.path.exists(os.path.join(agent.data_dir, "logs", arn.split("/")[-1],
                                       "main.log")) else None
    assert log is None

    # a secret that does not exist, a JSON key that does not exist
    sm_arn = stores["sm_arn"]
    for value_from, needle in ((sm_arn.replace("app/db", "app/nope"), "ResourceNotFound"),
                               (sm_arn + ":nokey::", "nokey")):
        td = register(ecs, busybox, family="asm", secrets=[{"name": "X",
                                                             "valueFrom": value_from}])
        task = wait_task(ecs, "default", run(ecs, td))
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("ResourceInitializationError: unable to pull "
                                                "secrets or registry auth: ")
        assert needle in task["stoppedReason"] and SM_PASSWORD not in task["stoppedReason"]


def test_missing_environment_file_stops_the_task(barged, agent, busybox, stores):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, environmentFiles=[
        {"type": "s3", "value": "arn:aws:s3:::envs/base.env"},
        {"type": "s3", "value": "arn:aws:s3:::envs/nope.env"}])
    task = wait_task(ecs, "default", run(ecs, td))
    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith(
        "ResourceInitializationError: unable to retrieve environment file "
        "arn:aws:s3:::envs/nope.env"), task["stoppedReason"]
    assert "NoSuchKey" in task["stoppedReason"]


def test_cross_region_name_refused_arn_works(barged, agent, busybox, stores):
    west = client(barged, "ssm", "us-west-2")
    west.put_parameter(Name="/west/only", Value=WEST_SECRET, Type="SecureString")
    ecs = barged.client("ecs")
    # a bare name means the task's region: the western parameter is not there
    td = register(ecs, busybox, secrets=[{"name": "W", "valueFrom": "/west/only"}])
    task = wait_task(ecs, "default", run(ecs, td))
    assert task["stopCode"] == "TaskFailedToStart"
    assert "/west/only" in task["stoppedReason"]
    # its ARN names the region
    td = register(ecs, busybox, secrets=[{"name": "W", "valueFrom":
                                          f"arn:aws:ssm:us-west-2:{ACCOUNT}:parameter/west/only"}])
    arn = run(ecs, td)
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, task
    assert container_env(agent, arn)["W"] == WEST_SECRET
    assert_nowhere(barged, agent, [WEST_SECRET])


def test_overrides_and_log_secret_options(barged, agent, busybox, stores):
    ecs = barged.client("ecs")
    client(barged, "ssm").put_parameter(Name="/log/token", Value=LOG_SECRET,
                                        Type="SecureString")
    td = register(ecs, busybox,
                  environmentFiles=[{"type": "s3", "value": "arn:aws:s3:::envs/base.env"}],
                  logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g",
                                                                "awslogs-create-group": "true"},
                                    "secretOptions": [{"name": "token",
                                                       "valueFrom": "/log/token"}]})
    # an override's environmentFiles replace the definition's; its environment merges
    arn = run(ecs, td, overrides={"containerOverrides": [{
        "name": "main",
        "environment": [{"name": "FROM_OVERRIDE", "value": "yes"}],
        "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::envs/extra.env"}]}]})
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, task
    env = container_env(agent, arn)
    assert env["FROM_OVERRIDE"] == "yes" and env["SHARED"] == "from-extra"
    assert "FROM_FILE1" not in env
    assert LOG_SECRET not in env.values()  # log options are not environment
    # a log secret that cannot be resolved stops the task too
    td = register(ecs, busybox, family="badlog",
                  logConfiguration={"logDriver": "awslogs", "options": {"awslogs-group": "g",
                                                                "awslogs-create-group": "true"},
                                    "secretOptions": [{"name": "token",
                                                       "valueFrom": "/log/missing"}]})
    task = wait_task(ecs, "default", run(ecs, td))
    assert task["stopCode"] == "TaskFailedToStart" and "/log/missing" in task["stoppedReason"]
    assert_nowhere(barged, agent, [LOG_SECRET])


def agent_post(barged, agent, path, body):
    token = json.load(open(os.path.join(agent.data_dir, "state.json")))["token"]
    req = urllib.request.Request(barged.endpoint + path, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_task_credentials_read_only_what_the_task_names(barged, agent, busybox, stores):
    ecs = barged.client("ecs")
    ssm = client(barged, "ssm")
    ssm.put_parameter(Name="/other/secret", Value="not-for-this-task", Type="SecureString")
    td = register(ecs, busybox, command=SLEEPER,
                  environmentFiles=[{"type": "s3", "value": "arn:aws:s3:::envs/base.env"}],
                  secrets=[{"name": "S", "valueFrom": "/app/secure"},
                           {"name": "P", "valueFrom": stores["sm_arn"] + ":password::"}])
    arn = run(ecs, td)
    wait_task(ecs, "default", arn, ("RUNNING",))
    status, creds = agent_post(barged, agent, "/agent/credentials", {"taskArn": arn})
    assert status == 200, creds
    assert creds["accessKeyId"].startswith("ASIA") and creds["sessionToken"]

    def as_task(service, region="us-east-1"):
        return boto3.client(service, endpoint_url=barged.endpoint, region_name=region,
                            aws_access_key_id=creds["accessKeyId"],
                            aws_secret_access_key=creds["secretAccessKey"],
                            aws_session_token=creds["sessionToken"],
                            config=botocore.config.Config(retries={"max_attempts": 1},
                                                          s3={"addressing_style": "path"},
                                                          signature_version=None
                                                          if service != "s3" else "s3v4"))
    tssm = as_task("ssm")
    got = tssm.get_parameters(Names=["/app/secure"], WithDecryption=True)
    assert got["Parameters"][0]["Value"] == SSM_SECRET
    for call in (lambda: tssm.get_parameters(Names=["/other/secret"], WithDecryption=True),
                 lambda: tssm.get_parameter(Name="/other/secret"),
                 lambda: tssm.put_parameter(Name="/app/secure", Value="x", Overwrite=True),
                 lambda: tssm.describe_parameters()):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "AccessDeniedException"
    tsm = as_task("secretsmanager")
    assert json.loads(tsm.get_secret_value(SecretId=stores["sm_arn"])["SecretString"]) == \
        json.loads(SM_WHOLE)
    with pytest.raises(ClientError) as e:
        tsm.list_secrets()
    assert error_code(e) == "AccessDeniedException"
    ts3 = as_task("s3")
    assert b"FROM_FILE1" in ts3.get_object(Bucket="envs", Key="base.env")["Body"].read()
    for call in (lambda: ts3.get_object(Bucket="envs", Key="extra.env"),
                 lambda: ts3.put_object(Bucket="envs", Key="base.env", Body=b"x"),
                 lambda: ts3.list_objects_v2(Bucket="envs")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        as_task("ecs").list_clusters()
    assert error_code(e) == "AccessDeniedException"
    # not this instance's task, or no task at all: refused
    status, out = agent_post(barged, agent, "/agent/credentials",
                             {"taskArn": arn.replace(arn.split("/")[-1], "0" * 32)})
    assert status == 404
    # once the task stops, the credentials are dead
    ecs.stop_task(cluster="default", task=arn)
    wait_task(ecs, "default", arn)
    with pytest.raises(ClientError) as e:
        tssm.get_parameters(Names=["/app/secure"], WithDecryption=True)
    assert error_code(e) == "ExpiredTokenException"
    status, out = agent_post(barged, agent, "/agent/credentials", {"taskArn": arn})
    assert status == 410
    assert time  # used by helpers in other suites


def test_environment_files_from_another_s3_endpoint(barged, agent_factory, busybox, tmp_path):
    """An agent given --s3-endpoint fetches environment files there, with the
    keys it was given, not from barged."""
    from conftest import Barged
    other = Barged(str(tmp_path / "other-s3")).start()
    try:
        s3 = client(other, "s3")
        s3.create_bucket(Bucket="external")
        s3.put_object(Bucket="external", Key="ext.env", Body=b"EXTERNAL=from-elsewhere\n")
        agent = agent_factory(extra_args=[
            "--s3-endpoint", other.endpoint,
            "--s3-credentials", os.path.join(other.data_dir, "admin-credentials")])
        ecs = barged.client("ecs")
        td = register(ecs, busybox, environmentFiles=[
            {"type": "s3", "value": "arn:aws:s3:::external/ext.env"}])
        arn = run(ecs, td)
        task = wait_task(ecs, "default", arn)
        assert task["containers"][0]["exitCode"] == 0, task
        assert container_env(agent, arn)["EXTERNAL"] == "from-elsewhere"
    finally:
        other.stop()
