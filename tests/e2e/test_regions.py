"""Every region on one barged (issue 22): the region of a request is the one
its credentials are scoped to, state is partitioned by region (ARNs, names,
listings), agents join a region's cluster, the control loops serve every
region, and a task's secrets resolve a bare name in the task's region and a
full ARN in the region it names. A store written before regions existed is
the default region's."""
import json
import os
import sqlite3
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import Agent, Barged, error_code, error_message, store_for_test, wait_task

ACCOUNT = "000000000000"
EAST, WEST, SOUTH = "us-east-1", "eu-west-1", "ap-southeast-2"


def client(barged, service, region):
    return boto3.client(service, endpoint_url=barged.endpoint, region_name=region,
                        aws_access_key_id=barged.access_key,
                        aws_secret_access_key=barged.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def cluster_arn(region, name):
    return f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{name}"


def test_same_names_in_two_regions_are_two_resources(barged):
    east, west, south = (client(barged, "ecs", r) for r in (EAST, WEST, SOUTH))
    assert east.create_cluster(clusterName="prod")["cluster"]["clusterArn"] == \
        cluster_arn(EAST, "prod")
    assert west.create_cluster(clusterName="prod", tags=[{"key": "r", "value": "west"}])[
        "cluster"]["clusterArn"] == cluster_arn(WEST, "prod")
    west.create_cluster(clusterName="west-only")

    assert east.list_clusters()["clusterArns"] == [cluster_arn(EAST, "prod")]
    assert sorted(west.list_clusters()["clusterArns"]) == [cluster_arn(WEST, "prod"),
                                                           cluster_arn(WEST, "west-only")]
    assert south.list_clusters()["clusterArns"] == []

    # an ARN of another region names nothing here
    out = east.describe_clusters(clusters=[cluster_arn(WEST, "west-only"), "west-only"])
    assert out["clusters"] == []
    assert {f["arn"] for f in out["failures"]} == {cluster_arn(WEST, "west-only"),
                                                   cluster_arn(EAST, "west-only")}
    with pytest.raises(ClientError) as e:
        east.list_tags_for_resource(resourceArn=cluster_arn(WEST, "prod"))
    assert error_code(e) == "InvalidParameterException"
    assert cluster_arn(WEST, "prod") in error_message(e)
    assert west.list_tags_for_resource(resourceArn=cluster_arn(WEST, "prod"))["tags"] == [
        {"key": "r", "value": "west"}]

    # deleting one leaves the other
    east.delete_cluster(cluster="prod")
    assert west.describe_clusters(clusters=["prod"])["clusters"][0]["status"] == "ACTIVE"

    # task definitions: revisions count per region
    cd = [{"name": "a", "image": "busybox", "memory": 32}]
    for ecs in (east, west, east):
        ecs.register_task_definition(family="app", containerDefinitions=cd)
    assert east.list_task_definitions()["taskDefinitionArns"] == [
        f"arn:aws:ecs:{EAST}:{ACCOUNT}:task-definition/app:1",
        f"arn:aws:ecs:{EAST}:{ACCOUNT}:task-definition/app:2"]
    assert west.list_task_definitions()["taskDefinitionArns"] == [
        f"arn:aws:ecs:{WEST}:{ACCOUNT}:task-definition/app:1"]
    with pytest.raises(ClientError) as e:
        south.describe_task_definition(taskDefinition="app")
    assert error_code(e) == "ClientException"
    west_td = f"arn:aws:ecs:{WEST}:{ACCOUNT}:task-definition/app:1"
    east.create_cluster(clusterName="default")
    with pytest.raises(ClientError) as e:
        east.run_task(cluster="default", taskDefinition=west_td)
    assert error_code(e) == "ClientException" and west_td in error_message(e)
    with pytest.raises(ClientError) as e:
        west.run_task(cluster=cluster_arn(EAST, "prod"), taskDefinition="app")
    assert error_code(e) == "InvalidParameterException"


def test_logs_and_parameters_stay_in_their_region(barged):
    east, west = client(barged, "logs", EAST), client(barged, "logs", WEST)
    east.create_log_group(logGroupName="/app")
    west.create_log_group(logGroupName="/app")  # no clash
    west.create_log_group(logGroupName="/west")
    assert [g["logGroupName"] for g in east.describe_log_groups()["logGroups"]] == ["/app"]
    groups = west.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/app", "/west"]
    assert all(f":logs:{WEST}:" in g["arn"] for g in groups)

    ssm_e, ssm_w = client(barged, "ssm", EAST), client(barged, "ssm", WEST)
    ssm_e.put_parameter(Name="p", Value="east", Type="String")
    ssm_w.put_parameter(Name="p", Value="west", Type="String")
    assert ssm_e.get_parameter(Name="p")["Parameter"]["Value"] == "east"
    assert ssm_w.get_parameter(Name="p")["Parameter"]["ARN"] == \
        f"arn:aws:ssm:{WEST}:{ACCOUNT}:parameter/p"


def test_a_scope_that_is_no_region_is_refused(barged):
    ecs = client(barged, "ecs", "moon")
    with pytest.raises(ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "InvalidSignatureException"
    assert "'moon'" in error_message(e)
    # S3 tools sign for made-up regions ("auto"): bucket names are global
    s3 = boto3.client("s3", endpoint_url=barged.endpoint, region_name="auto",
                      aws_access_key_id=barged.access_key,
                      aws_secret_access_key=barged.secret_key,
                      config=botocore.config.Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="everywhere")
    assert [b["Name"] for b in client(barged, "s3", WEST).list_buckets()["Buckets"]] == [
        "everywhere"]


@pytest.fixture
def west_agent(barged, tmp_path):
    """A host that joins the cluster "prod" of eu-west-1."""
    client(barged, "ecs", WEST).create_cluster(clusterName="prod")
    a = Agent(barged, str(tmp_path / "west-host"), cluster="prod",
              extra_args=["--region", WEST])
    try:
        yield a.start()
    finally:
        a.close()


def container_env(agent, arn, name="main"):
    path = os.path.join(agent.data_dir, "logs", arn.split("/")[-1], name + ".log")
    env = {}
    for line in open(path).read().splitlines():
        text = line.split(" ", 3)[3] if line.count(" ") >= 3 else line
        if "=" in text:
            k, v = text.split("=", 1)
            env[k] = v
    return env


def register(ecs, image, secrets, family="env"):
    return ecs.register_task_definition(
        family=family, executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/exec",
        containerDefinitions=[{"name": "main", "image": image, "memory": 32,
                               "command": ["sh", "-c", "env | sort"], "secrets": secrets}])[
        "taskDefinition"]["taskDefinitionArn"]


def run(ecs, cluster, td):
    r = ecs.run_task(cluster=cluster, taskDefinition=td)
    assert r["failures"] == [], r["failures"]
    return r["tasks"][0]["taskArn"]


def put_secrets(barged):
    """The same names in both regions with different values, and one
    parameter and one secret that only eu-west-1 has."""
    arns = {}
    for region in (EAST, WEST):
        tag = region.split("-")[0]
        client(barged, "ssm", region).put_parameter(Name="/app/token", Value=f"ssm-{tag}",
                                                    Type="SecureString")
        arns[region] = client(barged, "secretsmanager", region).create_secret(
            Name="app/db", SecretString=f"sm-{tag}")["ARN"]
    client(barged, "ssm", WEST).put_parameter(Name="/west/only", Value="ssm-west-only",
                                              Type="SecureString")
    arns["west-only"] = client(barged, "secretsmanager", WEST).create_secret(
        Name="west/only", SecretString="sm-west-only")["ARN"]
    return arns


def test_task_reads_secrets_of_its_region_by_name_and_of_another_by_arn(
        barged, agent, busybox):
    arns = put_secrets(barged)
    assert f":secretsmanager:{WEST}:" in arns["west-only"]
    ecs = client(barged, "ecs", EAST)
    td = register(ecs, busybox, [
        {"name": "SSM_OWN", "valueFrom": "/app/token"},
        {"name": "SM_OWN", "valueFrom": arns[EAST][:-7]},  # the partial ARN
        {"name": "SSM_WEST", "valueFrom": f"arn:aws:ssm:{WEST}:{ACCOUNT}:parameter/west/only"},
        {"name": "SM_WEST", "valueFrom": arns["west-only"]},
        {"name": "SM_WEST_SAME_NAME", "valueFrom": arns[WEST]}])
    arn = run(ecs, "default", td)
    assert f":ecs:{EAST}:" in arn
    task = wait_task(ecs, "default", arn)
    assert task["containers"][0]["exitCode"] == 0, task
    env = container_env(agent, arn)
    assert env["SSM_OWN"] == "ssm-us" and env["SM_OWN"] == "sm-us"
    assert env["SSM_WEST"] == "ssm-west-only" and env["SM_WEST"] == "sm-west-only"
    assert env["SM_WEST_SAME_NAME"] == "sm-eu"

    # a bare name is the task's region only: eu-west-1's parameter is not
    # found from a us-east-1 task, nor its secret under us-east-1's ARN
    for value_from in ("/west/only",
                       f"arn:aws:secretsmanager:{EAST}:{ACCOUNT}:secret:west/only"):
        td = register(ecs, busybox, [{"name": "X", "valueFrom": value_from}], family="miss")
        task = wait_task(ecs, "default", run(ecs, "default", td))
        assert task["stopCode"] == "TaskFailedToStart", task
        reason = task["stoppedReason"]
        assert reason.startswith("ResourceInitializationError: unable to pull secrets or "
                                 "registry auth: "), reason
        assert value_from in reason or "west/only" in reason, reason
        assert "ssm-west-only" not in reason and "sm-west-only" not in reason


def test_agent_joins_a_cluster_of_its_region(barged, west_agent, busybox):
    arns = put_secrets(barged)
    west, east = client(barged, "ecs", WEST), client(barged, "ecs", EAST)
    east.create_cluster(clusterName="prod")
    assert west_agent.instance_arn.startswith(f"arn:aws:ecs:{WEST}:{ACCOUNT}:container-instance/")
    assert west.list_container_instances(cluster="prod")["containerInstanceArns"] == [
        west_agent.instance_arn]
    assert east.list_container_instances(cluster="prod")["containerInstanceArns"] == []

    # placement in eu-west-1, and the task's region is eu-west-1 for names
    td = register(west, busybox, [
        {"name": "SSM_OWN", "valueFrom": "/app/token"},
        {"name": "SM_OWN", "valueFrom": arns[WEST][:-7]},
        {"name": "SM_EAST", "valueFrom": arns[EAST]}])
    arn = run(west, "prod", td)
    assert f":ecs:{WEST}:" in arn
    task = wait_task(west, "prod", arn)
    assert task["containers"][0]["exitCode"] == 0, task
    env = container_env(west_agent, arn)
    assert env["SSM_OWN"] == "ssm-eu" and env["SM_OWN"] == "sm-eu"
    assert env["SM_EAST"] == "sm-us"
    assert east.list_tasks(cluster="prod", desiredStatus="STOPPED")["taskArns"] == []

    # the service scheduler serves eu-west-1's services
    sleeper = west.register_task_definition(family="sleeper", containerDefinitions=[
        {"name": "main", "image": busybox, "memory": 32,
         "command": ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.2; done"]}])[
        "taskDefinition"]["taskDefinitionArn"]
    west.create_service(cluster="prod", serviceName="web", taskDefinition=sleeper,
                        desiredCount=1)
    west.get_waiter("services_stable").wait(cluster="prod", services=["web"],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    svc = west.describe_services(cluster="prod", services=["web"])["services"][0]
    assert svc["runningCount"] == 1 and f":ecs:{WEST}:" in svc["serviceArn"]
    assert east.list_services(cluster="prod")["serviceArns"] == []
    west.update_service(cluster="prod", service="web", desiredCount=0)
    west.delete_service(cluster="prod", service="web")


def test_store_written_before_regions_is_the_default_regions(tmp_path):
    """A store whose documents name no region (what barged wrote before
    regions) is the default region's after the upgrade."""
    store = store_for_test()
    b = Barged(str(tmp_path / "data"), store=store).start()
    try:
        ecs = b.client("ecs")
        ecs.create_cluster(clusterName="legacy")
        ecs.register_task_definition(family="old", containerDefinitions=[
            {"name": "a", "image": "busybox", "memory": 32}])
    finally:
        b.stop()
    # Put the documents back the way the previous barged kept them.
    forget = ("UPDATE objects SET kind = substr(kind, 1, strpos(kind, '@') - 1) "
              "WHERE kind LIKE '%@%'; DELETE FROM objects WHERE kind = 'region'; "
              "DELETE FROM objects WHERE kind = 'meta' AND key = 'regions-migrated'")
    if store:
        from conftest import postgres
        postgres().psql(forget, db=store.rsplit("/", 1)[1])
    else:
        db = sqlite3.connect(str(tmp_path / "data" / "barge.db"))
        db.executescript(forget.replace("strpos(kind, '@')", "instr(kind, '@')") + ";")
        db.commit()
        assert {k for (k,) in db.execute("SELECT kind FROM objects")} >= {"cluster", "taskdef"}
        db.close()
    b = Barged(str(tmp_path / "data"), store=store).start()
    try:
        east, west = client(b, "ecs", EAST), client(b, "ecs", WEST)
        assert east.list_clusters()["clusterArns"] == [cluster_arn(EAST, "legacy")]
        assert east.describe_task_definition(taskDefinition="old")["taskDefinition"][
            "revision"] == 1
        assert west.list_clusters()["clusterArns"] == []
        # still there after another restart, and not moved twice
        b.restart()
        assert client(b, "ecs", EAST).list_clusters()["clusterArns"] == [
            cluster_arn(EAST, "legacy")]
    finally:
        b.stop()


def test_stacks_are_regional(barged):
    """A CloudFormation stack lives in the region it was made in, and makes
    its resources there: its ARN names that region, other regions neither list
    it nor hold what it made."""
    template = json.dumps({"Resources": {"Group": {
        "Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/regional/stack"}}}})
    eu = client(barged, "cloudformation", "eu-west-1")
    arn = eu.create_stack(StackName="st", TemplateBody=template)["StackId"]
    assert arn.startswith("arn:aws:cloudformation:eu-west-1:")
    deadline = time.time() + 60
    while eu.describe_stacks(StackName="st")["Stacks"][0]["StackStatus"] != "CREATE_COMPLETE":
        assert time.time() < deadline, eu.describe_stack_events(StackName="st")["StackEvents"]
        time.sleep(0.2)
    groups = client(barged, "logs", "eu-west-1").describe_log_groups(
        logGroupNamePrefix="/regional/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/regional/stack"]
    assert client(barged, "logs", "us-east-1").describe_log_groups(
        logGroupNamePrefix="/regional/")["logGroups"] == []
    assert client(barged, "cloudformation", "us-east-1").list_stacks()["StackSummaries"] == []
