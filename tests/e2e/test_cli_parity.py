"""ecspresso parity of the barge CLI (issue 19): scale without --tasks, render
filling in what barge resolved, diff of a service still to be created, init
writing the config named by --config, appspec and --assume-role-arn. None of
these needs a task to run, so barged alone serves them."""
import json
import os

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


class FakeAWS:
    """Stands in for AWS's STS and ECS endpoints (barged has no STS yet,
    issue 18): AssumeRole answers fixed credentials, every ECS call is
    refused; both record what they were sent, which is what is checked."""

    def __init__(self):
        import http.server
        import threading
        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers["Content-Length"])
                calls.append((dict(self.headers), self.rfile.read(n).decode()))
                if self.headers.get("X-Amz-Target"):
                    ctype = "application/x-amz-json-1.1"
                    body = b'{"__type": "AccessDeniedException", "message": "not here"}'
                    self.send_response(400)
                else:
                    ctype = "text/xml"
                    body = (b"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/"
                            b"2011-06-15/\"><AssumeRoleResult><Credentials>"
                            b"<AccessKeyId>ASIAASSUMED000000000</AccessKeyId>"
                            b"<SecretAccessKey>assumed/secret+key</SecretAccessKey>"
                            b"<SessionToken>FwoGZXIvYXdz&amp;token</SessionToken>"
                            b"<Expiration>2030-01-01T00:00:00Z</Expiration>"
                            b"</Credentials></AssumeRoleResult></AssumeRoleResponse>")
                    self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_assume_role_arn(barged, tmp_path):
    import urllib.parse
    p = project(barged, tmp_path)
    role = "arn:aws:iam::000000000000:role/deployer"
    # barged does not serve STS: the flag fails and says so, instead of
    # going on as the caller's own identity.
    out = p.run("status", "--assume-role-arn", role, check=False)
    assert out.returncode == 1
    assert f"--assume-role-arn '{role}': {barged.endpoint} does not serve STS" in out.stderr
    assert "UnknownOperationException" in out.stderr
    out = p.run("status", env={"ECSPRESSO_ASSUME_ROLE_ARN": role}, check=False)
    assert out.returncode == 1 and "does not serve STS" in out.stderr
    # Where STS answers, its credentials sign the calls that follow.
    fake = FakeAWS()
    try:
        env = {"AWS_ENDPOINT_URL_STS": fake.url, "AWS_ENDPOINT_URL_ECS": fake.url,
               "AWS_ACCESS_KEY_ID": "AKIDCALLER0000000000",
               "AWS_SECRET_ACCESS_KEY": "caller-secret"}
        out = p.run("status", "--assume-role-arn", role, env=env, check=False)
        assert out.returncode == 1 and "AccessDeniedException: not here" in out.stderr
        (sts_headers, body), (ecs_headers, _) = fake.calls[:2]
        form = urllib.parse.parse_qs(body)
        assert form["Action"] == ["AssumeRole"] and form["RoleArn"] == [role]
        assert form["RoleSessionName"][0].startswith("barge-")
        assert "Credential=AKIDCALLER0000000000/" in sts_headers["Authorization"]
        assert "/sts/aws4_request" in sts_headers["Authorization"]
        assert "X-Amz-Security-Token" not in sts_headers
        assert ecs_headers["X-Amz-Target"] == "AmazonEC2ContainerServiceV20141113.DescribeServices"
        assert "Credential=ASIAASSUMED000000000/" in ecs_headers["Authorization"]
        assert ecs_headers["X-Amz-Security-Token"] == "FwoGZXIvYXdz&token"
    finally:
        fake.close()
