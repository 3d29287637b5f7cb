"""ecspresso parity of the barge CLI (issue 19): scale without --tasks, render
filling in what barge resolved, diff of a service still to be created, init
writing the config named by --config, appspec and --assume-role-arn. None of
these needs a task to run, so barged alone serves them."""
import json

from conftest import sqlite_store
from test_cli_deploy import Project

CONFIG = """\
cluster: default
service: web
service_definition: ecs-service-def.json
task_definition: ecs-task-def.json
"""

TASKDEF = """\
{"family": "web",
 "containerDefinitions": [{"name": "app", "image": "{{ must_env `IMAGE` }}", "memory": 16,
                           "portMappings": [{"containerPort": 80}]}]}
"""

SERVICEDEF = """\
{"desiredCount": 2, "launchType": "EC2",
 "tags": [{"key": "team", "value": "core"}]}
"""


def project(barged, tmp_path, config=CONFIG, servicedef=SERVICEDEF):
    barged.client("ecs").create_cluster(clusterName="default")
    p = Project(barged, tmp_path / "web", "busybox:latest")
    p.write("ecspresso.yml", config)
    p.write("ecs-task-def.json", TASKDEF)
    p.write("ecs-service-def.json", servicedef)
    return p


def describe(barged):
    return barged.client("ecs").describe_services(cluster="default",
                                                  services=["web"])["services"][0]


def test_scale_without_tasks_keeps_the_count(barged, tmp_path):
    p = project(barged, tmp_path)
    p.ok("deploy", "--no-wait")
    out = p.ok("scale", "--no-wait")
    assert "desired count: unchanged" in out.stderr
    assert describe(barged)["desiredCount"] == 2
    p.ok("scale", "--tasks", "3", "--no-wait")
    assert describe(barged)["desiredCount"] == 3


def test_render_shows_what_barge_resolved(barged, tmp_path):
    p = project(barged, tmp_path)
    # The region comes from the environment, the timeout is the default.
    out = p.ok("render", "config", env={"AWS_REGION": "eu-west-1"})
    assert out.stdout == ("region: eu-west-1\n" + CONFIG + "timeout: 10m0s\n")
    out = p.ok("render", "config", "--jsonnet", "--timeout", "90s",
               env={"AWS_REGION": "eu-west-1"})
    doc = json.loads(out.stdout)
    assert doc["region"] == "eu-west-1" and doc["timeout"] == "1m30s"
    assert doc["cluster"] == "default"
    # serviceName is the config's, as for deploy.
    sd = json.loads(p.ok("render", "servicedef").stdout)
    assert sd["serviceName"] == "web" and sd["desiredCount"] == 2


def test_diff_of_a_new_service_shows_the_definition(barged, tmp_path):
    p = project(barged, tmp_path)
    out = p.ok("diff")
    assert "service web will be created" in out.stderr
    head, _, rest = out.stdout.partition("+++ ecs-service-def.json\n")
    assert head.endswith("--- /dev/null\n")
    svc = rest.split("--- ")[0]
    # The user's own fields, launchType included, and no ECS defaults.
    assert '+  "launchType": "EC2",' in svc and '+  "desiredCount": 2,' in svc
    assert "deploymentConfiguration" not in svc and "propagateTags" not in svc


def test_init_writes_the_config_named_by_config(barged, tmp_path):
    p = project(barged, tmp_path)
    p.ok("deploy", "--no-wait")
    q = Project(barged, tmp_path / "other", "busybox:latest")
    out = q.ok("init", "--service", "web", "--config", "deploy/web.yml")
    assert "save config to deploy/web.yml" in out.stderr
    assert "save task definition to deploy/ecs-task-def.json" in out.stderr
    assert "service_definition: ecs-service-def.json" in q.read("deploy/web.yml")
    assert json.loads(q.read("deploy/ecs-task-def.json"))["family"] == "web"
    # What it wrote is a config the other commands read: nothing to change.
    assert q.ok("diff", "--config", "deploy/web.yml").stdout == ""
    # $ECSPRESSO_CONFIG names it as well as --config does.
    r = Project(barged, tmp_path / "third", "busybox:latest")
    out = r.ok("init", "--service", "web", env={"ECSPRESSO_CONFIG": "svc.yml"})
    assert "save config to svc.yml" in out.stderr
    assert r.ok("diff", env={"ECSPRESSO_CONFIG": "svc.yml"}).stdout == ""


def test_appspec(barged, tmp_path):
    p = project(barged, tmp_path, config=CONFIG + """\
appspec:
  Hooks:
    - BeforeInstall: "CheckBeforeInstall"
    - AfterAllowTraffic: "CheckAfterTraffic"
""")
    p.ok("deploy", "--no-wait")
    # Without a load balancer CodeDeploy has nothing to shift.
    out = p.run("appspec", check=False)
    assert "appspec requires loadBalancers" in out.stderr
    p.ok("register")
    p.write("ecs-service-def.json", """\
{"desiredCount": 2, "launchType": "FARGATE", "platformVersion": "1.4.0",
 "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1",
                    "containerName": "app", "containerPort": 80}],
 "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"],
                                                  "securityGroups": ["sg-1"],
                                                  "assignPublicIp": "DISABLED"}}}
""")
    arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:%d"
    out = p.ok("appspec")
    assert out.stdout == f"""\
version: "0.0"
Resources:
- TargetService:
    Type: AWS::ECS::Service
    Properties:
      TaskDefinition: {arn % 2}
      LoadBalancerInfo:
        ContainerName: app
        ContainerPort: 80
      PlatformVersion: 1.4.0
      NetworkConfiguration:
        AwsvpcConfiguration:
          Subnets:
          - subnet-1
          SecurityGroups:
          - sg-1
          AssignPublicIp: DISABLED
Hooks:
- BeforeInstall: CheckBeforeInstall
- AfterAllowTraffic: CheckAfterTraffic
"""
    out = p.ok("appspec", "--task-definition", "current")
    assert f"TaskDefinition: {arn % 1}\n" in out.stdout
    out = p.ok("appspec", "--task-definition", arn % 2)
    assert f"TaskDefinition: {arn % 2}\n" in out.stdout
    # The running service has no load balancer.
    out = p.run("appspec", "--no-update-service", check=False)
    assert out.returncode == 1 and "appspec requires loadBalancers" in out.stderr
    out = p.run("appspec", "--task-definition", "web:1", check=False)
    assert out.returncode == 1 and "not 'web:1'" in out.stderr


def test_assume_role_arn(barged, tmp_path):
    import sqlite3
    p = project(barged, tmp_path)
    role = "arn:aws:iam::000000000000:role/deployer"
    # A role that does not exist: STS refuses, and barge does not go on as
    # the caller's own identity.
    out = p.run("status", "--assume-role-arn", role, check=False)
    assert out.returncode == 1
    assert f"--assume-role-arn '{role}': AssumeRole: AccessDenied" in out.stderr
    out = p.run("status", env={"ECSPRESSO_ASSUME_ROLE_ARN": role}, check=False)
    assert out.returncode == 1 and "AccessDenied" in out.stderr
    assert "does not serve STS" not in out.stderr
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "sts:AssumeRole"}]}
    barged.client("iam").create_role(RoleName="deployer",
                                     AssumeRolePolicyDocument=json.dumps(trust))
    # Deny by default: the role may do what its policy allows, here anything.
    barged.client("iam").put_role_policy(
        RoleName="deployer", PolicyName="all", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    # The deploy's calls are signed with the role's temporary key: ECS
    # records the assumed role as the service's creator.
    p.ok("deploy", "--no-wait", "--assume-role-arn", role)
    assert describe(barged)["createdBy"] == role
    p.ok("status", env={"ECSPRESSO_ASSUME_ROLE_ARN": role})
    db = sqlite3.connect(sqlite_store(barged), timeout=30)
    sessions = [json.loads(d) for (d,) in db.execute(
        "SELECT doc FROM objects WHERE kind = 'accesskey' AND key LIKE 'ASIA%'")]
    db.close()
    assert len(sessions) == 2
    for s in sessions:
        assert s["issuedBy"] == barged.access_key and s["roleArn"] == role
        assert s["arn"].startswith("arn:aws:sts::000000000000:assumed-role/deployer/barge-")
    # Without the flag, the caller's own key creates as the account.
    barged.client("ecs").delete_service(cluster="default", service="web", force=True)