"""The barge CLI against a real barged and agent (issue 9): ecspresso's config
files and commands. deploy creates and rolls a service, rollback returns to
the previous revision and deregisters, scale, status, diff, verify, run,
init/render round trips, tasks, revisions and deregister, Jsonnet configs,
fail-fast on the circuit breaker, and terminal output."""
import base64
import hashlib
import http.client
import json
import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import REGION, binary
from registry_fixture import mkimage

SLEEPER = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


class Project:
    """A directory with ecspresso files and an environment that reaches
    barged the way a user's would: the 'barge' profile (credentials and
    endpoint_url) from the shared files barged writes, nothing else."""

    def __init__(self, barged, path, image):
        self.barged = barged
        self.dir = str(path)
        self.image = image
        os.makedirs(self.dir, exist_ok=True)
        creds = os.path.join(self.dir, ".aws-credentials")
        with open(creds, "w") as f:
            f.write(open(os.path.join(barged.data_dir, "admin-credentials")).read())
        conf = os.path.join(self.dir, ".aws-config")
        with open(conf, "w") as f:
            f.write(f"[profile barge]\nregion = {REGION}\nendpoint_url = {barged.endpoint}\n")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("AWS_") and not k.startswith("ECSPRESSO_")}
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": conf,
                         "HOME": self.dir, "IMAGE": image, "NO_COLOR": "1"})

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def read(self, name):
        return open(os.path.join(self.dir, name)).read()

    def run(self, *args, env=None, check=None, timeout=180, cwd=None):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([binary("barge"), *args], cwd=cwd or self.dir, env=e,
                           capture_output=True, text=True, timeout=timeout)
        if check is True and p.returncode != 0:
            raise AssertionError(f"barge {' '.join(args)} failed ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        if check is False and p.returncode == 0:
            raise AssertionError(f"barge {' '.join(args)} succeeded:\n{p.stdout}\n{p.stderr}")
        return p

    def ok(self, *args, **kw):
        return self.run(*args, check=True, **kw)


def web_project(barged, tmp_path, image, desired=1, circuit_breaker=True):
    p = Project(barged, tmp_path / "web", image)
    p.write("ecspresso.yml", """\
region: us-east-1
cluster: default
service: web
service_definition: ecs-service-def.json
task_definition: ecs-task-def.json
timeout: 3m
""")
    p.write("ecs-task-def.json", """\
{
  "family": "web",
  "containerDefinitions": [
    {
      "name": "app",
      "image": "{{ must_env `IMAGE` }}",
      "memory": 16,
      "essential": true,
      "command": ["sh", "-c", "{{ env `PRE` `` }}%s"],
      "environment": [{"name": "VERSION", "value": "{{ env `VERSION` `1` }}"}]
    }
  ]
}
""" % SLEEPER)
    cb = ('"deploymentConfiguration": {"deploymentCircuitBreaker": '
          '{"enable": true, "rollback": true}},' if circuit_breaker else "")
    p.write("ecs-service-def.json", """\
{
  %s
  "desiredCount": %d,
  "launchType": "EC2",
  "tags": [{"key": "team", "value": "core"}]
}
""" % (cb, desired))
    return p


def describe(barged, name="web"):
    return barged.client("ecs").describe_services(
        cluster="default", services=[name], include=["TAGS"])["services"][0]


def td_status(barged, name):
    return barged.client("ecs").describe_task_definition(
        taskDefinition=name)["taskDefinition"]["status"]


def test_deploy_creates_rolls_back_and_deregisters(barged, agent, busybox, test_registry,
                                                   tmp_path):
    p = web_project(barged, tmp_path, busybox)
    # A second image in the test registry: busybox with another label.
    mkimage(str(tmp_path / "v2"), "v2", label="version=2")
    v2 = test_registry.push(str(tmp_path / "v2"), "v2", "busybox")
    out = p.ok("deploy")
    assert "Service web is not found. Creating a new service..." in out.stderr
    assert "Task definition is registered web:1" in out.stderr
    assert "Service is stable now. Completed!" in out.stderr
    s = describe(barged)
    assert s["taskDefinition"].endswith("task-definition/web:1")
    assert s["runningCount"] == 1 and len(s["deployments"]) == 1
    assert {"key": "team", "value": "core"} in s["tags"]
    # The events of the rollout are printed as they happen, on stdout.
    assert re.search(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \(service web\) has started 1 tasks",
                     out.stdout, re.M), out.stdout

    # A new image: a new revision, rolled out.
    out = p.ok("deploy", env={"VERSION": "2", "IMAGE": v2})
    assert "Task definition is registered web:2" in out.stderr
    assert "[INFO] deployment by ECS rolling update" in out.stderr
    assert "service attributes will not change" in out.stderr
    assert "desired count: 1" in out.stderr
    assert re.search(r"web/default +PRIMARY web:2 desired:1 pending:\d running:\d", out.stderr)
    s = describe(barged)
    assert s["taskDefinition"].endswith("web:2") and s["runningCount"] == 1
    tasks = barged.client("ecs").describe_tasks(
        cluster="default", tasks=barged.client("ecs").list_tasks(
            cluster="default", serviceName="web")["taskArns"])["tasks"]
    assert all(t["taskDefinitionArn"].endswith("web:2") for t in tasks)
    assert all(t["containers"][0]["image"] == v2 for t in tasks)

    out = p.ok("rollback")
    assert "Rolling back to web:1" in out.stderr
    assert "web:2 was deregistered successfully" in out.stderr
    s = describe(barged)
    assert s["taskDefinition"].endswith("web:1") and s["runningCount"] == 1
    assert td_status(barged, "web:2") == "INACTIVE"
    assert td_status(barged, "web:1") == "ACTIVE"
    # Nothing older than web:1 is active: a second rollback has no target.
    out = p.run("rollback", "--no-deregister-task-definition", check=False)
    assert out.returncode == 1 and "rollback target is not found" in out.stderr

    # --no-wait with deregistration is refused, as in ecspresso.
    out = p.run("rollback", "--no-wait", check=False)
    assert out.returncode == 1 and "--no-deregister-task-definition" in out.stderr


def test_scale_status_and_desired_count(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox)
    p.ok("deploy")
    out = p.ok("scale", "--tasks", "3")
    assert "desired count: 3" in out.stderr
    s = describe(barged)
    assert s["desiredCount"] == 3 and s["runningCount"] == 3
    out = p.ok("status", "--events", "2")
    lines = out.stdout.splitlines()
    assert lines[0] == "Service: web"
    assert lines[1] == "Cluster: default"
    assert lines[2] == "TaskDefinition: web:1"
    assert lines[3] == "Deployments:"
    assert re.match(r"^ +PRIMARY web:1 desired:3 pending:0 running:3 COMPLETED\(ECS deployment "
                    r"ecs-svc/\d+ completed\.\)$", lines[4]), lines[4]
    assert lines[5] == "Events:"
    events = lines[6:]
    assert len(events) == 2
    assert all(re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \(service web\)", e) for e in events)
    assert events[-1].endswith("has reached a steady state.")
    # deploy --tasks overrides the definition; without it the definition's count wins.
    p.ok("deploy", "--skip-task-definition", "--tasks", "2")
    assert describe(barged)["desiredCount"] == 2
    p.ok("deploy", "--skip-task-definition")
    assert describe(barged)["desiredCount"] == 1
    # A missing service is an error with the name in it.
    p.write("other.yml", "cluster: default\nservice: nosuch\n")
    out = p.run("--config", "other.yml", "status", check=False)
    assert out.returncode == 1
    assert "service 'nosuch' is not found in cluster 'default'" in out.stderr


def test_diff_output(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox)
    # Before the service exists everything is new.
    out = p.ok("diff")
    assert "service web will be created" in out.stderr
    assert out.stdout.startswith("--- /dev/null\n+++ ecs-service-def.json\n")
    p.ok("deploy")
    out = p.ok("diff")
    assert out.stdout == "", out.stdout
    out = p.ok("diff", env={"VERSION": "2"})
    arn = describe(barged)["taskDefinition"]
    assert out.stdout == (
        f"--- {arn}\n"
        "+++ ecs-task-def.json\n"
        "@@ -9,7 +9,7 @@\n"
        "       \"environment\": [\n"
        "         {\n"
        "           \"name\": \"VERSION\",\n"
        "-          \"value\": \"1\"\n"
        "+          \"value\": \"2\"\n"
        "         }\n"
        "       ],\n"
        "       \"essential\": true,\n"), out.stdout
    p.write("ecs-service-def.json", '{"desiredCount": 2, "launchType": "EC2", '
            '"tags": [{"key": "team", "value": "core"}]}')
    out = p.ok("diff")
    svc_arn = describe(barged)["serviceArn"]
    assert out.stdout.startswith(f"--- {svc_arn}\n+++ ecs-service-def.json\n@@ ")
    assert '-      "enable": true,\n' in out.stdout
    assert '+      "enable": false,\n' in out.stdout
    assert '-  "desiredCount": 1,\n+  "desiredCount": 2,\n' in out.stdout
    # A dry run shows the change and makes none.
    out = p.ok("deploy", "--dry-run", "--skip-task-definition")
    assert "service attributes will change" in out.stderr
    assert '+      "enable": false,\n' in out.stderr and "DRY RUN OK" in out.stderr
    assert describe(barged)["desiredCount"] == 1
    # deploy applies what diff showed.
    p.ok("deploy", "--skip-task-definition")
    s = describe(barged)
    assert s["desiredCount"] == 2
    assert s["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] is False
    assert p.ok("diff").stdout == ""
    # A tag added elsewhere shows up, and deploy removes it...
    ecs = barged.client("ecs")
    ecs.tag_resource(resourceArn=svc_arn, tags=[{"key": "owner", "value": "tf"}])
    assert '-      "key": "owner",\n' in p.ok("diff").stdout
    # ...unless the config's ignore.tags leaves it to whoever manages it.
    p.write("ecspresso.yml", p.read("ecspresso.yml") + "ignore:\n  tags: [owner]\n")
    assert p.ok("diff").stdout == ""
    p.ok("deploy", "--skip-task-definition")
    assert {"key": "owner", "value": "tf"} in describe(barged)["tags"]


def ecr_push(barged, repo, tag):
    """A one-layer image pushed into barged's registry with its ECR token."""
    ecr = barged.client("ecr")
    ecr.create_repository(repositoryName=repo)
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]

    def call(method, path, body=b"", ctype="application/octet-stream"):
        c = http.client.HTTPConnection("127.0.0.1", barged.port, timeout=30)
        c.request(method, path, body=body, headers={"Authorization": "Basic " + token,
                                                    "Content-Type": ctype})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status in (201, 202), (method, path, r.status)

    def upload(data):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        call("POST", f"/v2/{repo}/blobs/uploads/?digest={d}", data)
        return d

    layer = b"layer"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": upload(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": upload(layer), "size": len(layer)}]}).encode()
    call("PUT", f"/v2/{repo}/manifests/{tag}", manifest,
         "application/vnd.oci.image.manifest.v1+json")
    return f"127.0.0.1:{barged.port}/{repo}:{tag}"


def test_verify(barged, busybox, tmp_path):
    barged.client("ecs").create_cluster(clusterName="default")
    p = web_project(barged, tmp_path, busybox)
    out = p.ok("verify")
    assert out.stdout == (
        "  TaskDefinition\n"
        "    ContainerDefinition[app]\n"
        f"      Image[{busybox}]\n"
        "      --> [OK]\n"
        "    --> [OK]\n"
        "  --> [OK]\n"
        "  ServiceDefinition\n"
        "  --> [OK]\n"
        "  Cluster\n"
        "  --> [OK]\n"), out.stdout
    assert "Verify OK!" in out.stderr
    # A tag that is not in the registry, and a cluster that does not exist.
    missing = busybox.rsplit(":", 1)[0] + ":nosuchtag"
    p.write("ecspresso.yml", p.read("ecspresso.yml").replace("cluster: default",
                                                             "cluster: nowhere"))
    out = p.run("verify", env={"IMAGE": missing}, check=False)
    assert out.returncode == 1
    assert f"      Image[{missing}]\n      --> [NG] {missing} is not found" in out.stdout
    assert "  Cluster\n  --> [NG] cluster 'nowhere' is not found or not ACTIVE" in out.stdout
    assert "verify failed: 2 checks are NG" in out.stderr
    # Images in barged's own registry are checked with an ECR token.
    p.write("ecspresso.yml", p.read("ecspresso.yml").replace("cluster: nowhere",
                                                             "cluster: default"))
    image = ecr_push(barged, "app", "v1")
    out = p.run("verify", env={"IMAGE": image}, check=True)
    assert f"Image[{image}]\n      --> [OK]" in out.stdout
    out = p.run("verify", env={"IMAGE": image.replace(":v1", ":v2")}, check=False)
    assert out.returncode == 1 and "is not found" in out.stdout
    # Secrets are checked through SSM and Secrets Manager; barged on this
    # branch does not serve them yet, so the check reports NG with AWS's error.
    p.write("ecs-task-def.json", json.dumps({
        "family": "web", "containerDefinitions": [{
            "name": "app", "image": busybox, "memory": 16,
            "secrets": [{"name": "DB", "valueFrom": "/app/db"}]}]}))
    out = p.run("verify", check=False)
    assert out.returncode == 1
    assert "      Secret DB[/app/db]\n      --> [NG] " in out.stdout
    out = p.ok("verify", "--no-get-secrets")
    assert "      --> [SKIP] --no-get-secrets" in out.stdout


def test_run_exit_codes(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox)
    out = p.run("run", "--overrides",
                json.dumps({"containerOverrides": [
                    {"name": "app", "command": ["sh", "-c", "echo bye; exit 3"]}]}),
                check=False)
    assert out.returncode == 3, out.stderr
    assert re.search(r"container: app, exit code: 3", out.stderr)
    assert "Task ARN: arn:aws:ecs:" in out.stderr
    out = p.ok("run", "--latest-task-definition", "--overrides",
               json.dumps({"containerOverrides": [
                   {"name": "app", "command": ["sh", "-c", "exit 0"]}]}))
    assert "Run task completed!" in out.stderr
    # --wait-until running returns once the task runs; the task keeps running.
    out = p.ok("run", "--latest-task-definition", "--wait-until", "running")
    arn = re.search(r"Task ARN: (\S+)", out.stderr).group(1)
    t = barged.client("ecs").describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    assert t["lastStatus"] == "RUNNING"
    barged.client("ecs").stop_task(cluster="default", task=arn)
    # An overrides file goes through templates too.
    p.write("ov.json", '{"containerOverrides": [{"name": "app", "command": '
            '["sh", "-c", "exit {{ env `CODE` `0` }}"]}]}')
    out = p.run("run", "--latest-task-definition", "--overrides-file", "ov.json",
                env={"CODE": "5"}, check=False)
    assert out.returncode == 5
    out = p.run("run", "--count", "11", check=False)
    assert out.returncode == 1 and "--count must be between 1 and 10" in out.stderr


def test_init_and_render_round_trip(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox)
    p.ok("deploy")
    q = Project(barged, tmp_path / "taken-over", busybox)
    out = q.ok("init", "--service", "web")
    assert "save service definition to ecs-service-def.json" in out.stderr
    assert "save task definition to ecs-task-def.json" in out.stderr
    assert "save config to ecspresso.yml" in out.stderr
    assert q.read("ecspresso.yml") == (
        "region: us-east-1\ncluster: default\nservice: web\n"
        "service_definition: ecs-service-def.json\ntask_definition: ecs-task-def.json\n"
        "timeout: 10m0s\n")
    td = json.loads(q.read("ecs-task-def.json"))
    assert td["family"] == "web" and "taskDefinitionArn" not in td and "revision" not in td
    assert td["containerDefinitions"][0]["image"] == busybox
    sd = json.loads(q.read("ecs-service-def.json"))
    assert sd["desiredCount"] == 1 and "events" not in sd and "serviceName" not in sd
    assert sd["tags"] == [{"key": "team", "value": "core"}]
    # What init wrote is what render reads and what runs: no diff.
    assert q.ok("render", "taskdef").stdout == q.read("ecs-task-def.json")
    rendered = json.loads(q.ok("render", "servicedef").stdout)
    assert rendered.pop("serviceName") == "web" and rendered == sd
    assert q.ok("render", "config").stdout == q.read("ecspresso.yml")
    assert q.ok("diff").stdout == ""
    # ...and deploying it unchanged keeps the revision's content.
    out = q.ok("deploy")
    assert "service attributes will not change" in out.stderr
    # init refuses to overwrite without asking (no terminal here).
    out = q.ok("init", "--service", "web")
    assert "skip config ecspresso.yml" in out.stderr


def test_tasks_revisions_deregister(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox, desired=2)
    p.ok("deploy")
    p.ok("deploy", env={"VERSION": "2"})
    p.ok("register")
    p.ok("register")
    out = p.ok("tasks", "--output", "json")
    tasks = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(tasks) == 2 and all(t["lastStatus"] == "RUNNING" for t in tasks)
    assert all(t["taskDefinitionArn"].endswith("web:2") for t in tasks)
    out = p.ok("tasks", "--output", "tsv")
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) == 2 and rows[0][1] == "web:2" and rows[0][3] == "RUNNING"
    out = p.ok("tasks")
    assert out.stdout.splitlines()[0].startswith("| ID ")
    out = p.ok("revisions")
    lines = out.stdout.splitlines()
    assert lines[0].split("|")[1].strip() == "NAME"
    assert [ln.split("|")[1].strip() for ln in lines[2:]] == ["web:4", "web:3", "web:2",
                                                               "web:1"]
    assert "PRIMARY deployment" in lines[4] or "RUNNING task" in lines[4]
    out = p.ok("revisions", "--revision", "current")
    assert json.loads(out.stdout)["taskDefinition"]["revision"] == 2
    # In-use revisions are never deregistered.
    out = p.run("deregister", "--revision", "2", "--force", check=False)
    assert out.returncode == 1 and "web:2 is in use" in out.stderr
    out = p.ok("deregister", "--keeps", "1", "--force", "--delete")
    assert "web:1 was deregistered successfully" in out.stderr
    assert "web:3 was deregistered successfully" in out.stderr
    assert "web:4" not in out.stderr.replace("web:4 was", "")
    assert td_status(barged, "web:4") == "ACTIVE"
    assert td_status(barged, "web:2") == "ACTIVE"
    # --stop with --id stops one task.
    tid = tasks[0]["taskArn"].rsplit("/", 1)[1]
    p.ok("tasks", "--id", tid, "--stop", "--force")
    t = barged.client("ecs").describe_tasks(cluster="default", tasks=[tid])["tasks"][0]
    assert t["desiredStatus"] == "STOPPED"
    out = p.run("tasks", "--find", check=False)
    assert out.returncode == 1 and "--find needs a terminal" in out.stderr


def test_circuit_breaker_fails_fast(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox, desired=2)
    p.ok("deploy")
    start = time.time()
    out = p.run("deploy", env={"PRE": "exit 1; "}, check=False)
    assert out.returncode == 1, out.stderr
    assert re.search(r"FAILED\. deployment ecs-svc/\d+ of web:2 failed: tasks failed to start; "
                     r"the circuit breaker rolled the service back to web:1", out.stderr), \
        out.stderr
    # It fails at once rather than waiting for the (rolled back) service.
    assert time.time() - start < 120
    s = describe(barged)
    assert s["taskDefinition"].endswith("web:1")


def test_jsonnet_config_templates_and_plugins(barged, agent, busybox, tmp_path):
    p = Project(barged, tmp_path / "jn", busybox)
    p.write("ecspresso.jsonnet", """\
{
  region: 'us-east-1',
  cluster: 'default',
  service: std.extVar('service'),
  task_definition: 'td.jsonnet',
  timeout: '5m',
  required_version: '>= 2.0.0, < 3',
  plugins: [{name: 'tfstate', config: {path: 'terraform.tfstate'}}],
}
""")
    p.write("td.jsonnet", """\
local env = std.native('env');
{
  family: 'jn',
  containerDefinitions: [{
    name: 'app',
    image: std.native('must_env')('IMAGE'),
    memory: std.parseInt(env('MEM', '16')),
    command: ['sh', '-c', 'sleep 1'],
    environment: [
      {name: 'SUBNET', value: '{{ tfstate `aws_subnet.main.id` }}'},
      {name: 'FROM_EXT', value: std.extVar('tag')},
      {name: 'COUNT', value: std.toString(std.extVar('n') + 1)},
    ],
  }],
}
""")
    p.write("terraform.tfstate", json.dumps({"version": 4, "resources": [
        {"mode": "managed", "type": "aws_subnet", "name": "main",
         "instances": [{"attributes": {"id": "subnet-123"}}]}]}))
    out = p.ok("--ext-str", "service=jn", "--ext-str", "tag=v7", "--ext-code", "n=41",
               "render", "taskdef")
    td = json.loads(out.stdout)
    env = {e["name"]: e["value"] for e in td["containerDefinitions"][0]["environment"]}
    assert env == {"SUBNET": "subnet-123", "FROM_EXT": "v7", "COUNT": "42"}
    assert td["containerDefinitions"][0]["memory"] == 16
    out = p.ok("--ext-str", "service=jn", "--ext-str", "tag=v7", "--ext-code", "n=1",
               "register", "--output")
    assert json.loads(out.stdout)["taskDefinition"]["family"] == "jn"
    # An unsatisfied required_version stops everything.
    p.write("ecspresso.jsonnet", p.read("ecspresso.jsonnet").replace(">= 2.0.0, < 3", ">= 9"))
    out = p.run("--ext-str", "service=jn", "render", "config", check=False)
    assert out.returncode == 1 and "does not satisfy constraints required_version" in out.stderr
    # Unknown config keys are warned about; a missing must_env fails with its name.
    p.write("ecspresso.yml", "cluster: default\nservice: x\ntypo_key: 1\n"
            "task_definition: td.json\n")
    p.write("td.json", '{"family": "{{ must_env `NOPE_VAR` }}", "containerDefinitions": []}')
    out = p.run("--config", "ecspresso.yml", "render", "taskdef", check=False)
    assert 'unknown field "typo_key"' in out.stderr
    assert "environment variable 'NOPE_VAR' is not defined" in out.stderr
    assert out.returncode == 1


def test_endpoint_flags_and_usage(barged, busybox, tmp_path):
    barged.client("ecs").create_cluster(clusterName="default")
    p = web_project(barged, tmp_path, busybox)
    # --profile and --endpoint-url as the aws CLI takes them; the config file
    # here names no endpoint.
    conf = os.path.join(p.dir, ".aws-config")
    with open(conf, "w") as f:
        f.write(f"[profile barge]\nregion = {REGION}\n")
    out = p.run("verify", check=False)
    assert out.returncode == 1  # no endpoint: real AWS, unreachable here
    out = p.ok("--profile", "barge", "--endpoint-url", barged.endpoint, "verify")
    assert "Verify OK!" in out.stderr
    out = p.ok("verify", env={"AWS_ENDPOINT_URL_ECS": barged.endpoint,
                              "AWS_ENDPOINT_URL_ECR": barged.endpoint})
    out = p.run("--profile", "nosuch", "status", check=False)
    assert out.returncode == 1 and "the config profile 'nosuch' could not be found" in out.stderr
    # Every command has --help; bad flags are usage errors (exit 2).
    for cmd in ("deploy", "rollback", "scale", "refresh", "status", "wait", "register",
                "deregister", "revisions", "diff", "verify", "render", "init", "run", "tasks",
                "delete", "logs", "compose", "version"):
        h = p.run(cmd, "--help")
        assert h.returncode == 0 and h.stdout.startswith("Usage: barge " + cmd), cmd
        assert "--config" in h.stdout
    out = p.run("deploy", "--no-such-flag", check=False)
    assert out.returncode == 2 and "unknown flag '--no-such-flag'" in out.stderr
    out = p.run("scale", "--tasks", "many", check=False)
    assert out.returncode == 2 and "'many' is not a number" in out.stderr
    # delete needs --force without a terminal.
    out = p.run("delete", check=False)
    assert out.returncode == 1


def run_on_pty(p, args, env=None, pty_out=False):
    """Runs barge with stderr (and stdout when pty_out) on a terminal;
    returns (exit code, what the terminal saw)."""
    master, slave = pty.openpty()
    e = dict(p.env)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    proc = subprocess.Popen([binary("barge"), *args], cwd=p.dir, env=e, stdin=subprocess.DEVNULL,
                            stdout=slave if pty_out else subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, seen.decode(errors="replace")


def test_terminal_output(barged, agent, busybox, tmp_path):
    p = web_project(barged, tmp_path, busybox, desired=2)
    p.ok("deploy")
    # On a terminal: a live status line redrawn in place, and colour.
    code, seen = run_on_pty(p, ["deploy", "--force-new-deployment", "--skip-task-definition"])
    assert code == 0, seen
    assert "\r\x1b[K" in seen
    assert re.search(r"web/default desired:2 running:\d pending:\d \S+ \d+:\d\d", seen), seen
    code, seen = run_on_pty(p, ["diff"], env={"VERSION": "9"}, pty_out=True)
    assert "\x1b[31m-" in seen and "\x1b[32m+" in seen
    # NO_COLOR turns colour off, even on a terminal.
    code, seen = run_on_pty(p, ["diff"], env={"VERSION": "9", "NO_COLOR": "1"}, pty_out=True)
    assert "\x1b[3" not in seen and "+          \"value\": \"9\"" in seen
    # Not on a terminal: plain lines, no escape sequences at all.
    out = p.ok("deploy", "--force-new-deployment", "--skip-task-definition",
               env={"NO_COLOR": ""})
    assert "\x1b" not in out.stderr and "\x1b" not in out.stdout
