"""The real AWS CDK against barged (issue 18): `cdk bootstrap`, then `cdk
deploy` of a Fargate service behind an application load balancer with an SSM
parameter as a secret and CPU auto scaling (tests/e2e/cdkapp), whose tasks
really run and answer through the load balancer; an update of the
environment; `barge init` + `barge diff` on the service CDK made show no
drift; `cdk destroy` removes everything. A second, small app
(cdkapp/lookup.js) is only synthesized: its context lookups (Vpc.fromLookup
and others) go to barged's EC2 Describe calls.

aws-cdk and aws-cdk-lib come from npm, pinned by cdkapp/package-lock.json and
installed once into a cache outside the tree ($BARGE_CDK_CACHE, default
~/.cache/barge/cdk). Nothing is skipped: without node, npm or the npm
registry the test fails and says so."""
import filecmp
import json
import os
import shutil
import subprocess
import time

import pytest

import nethelpers
from conftest import REGION, binary
from lbtraffic import free_port, get

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cdkapp")
CACHE = os.environ.get("BARGE_CDK_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "barge", "cdk"))
STACK = "BargeCdkE2e"
# The container serves $GREETING and the secret's value at /.
COMMAND = ('mkdir -p /www && echo "$GREETING $SECRET" > /www/index.html && '
           "exec httpd -f -p 80 -h /www")


def cdk_modules():
    """The cache's node_modules, installed from the pinned lock file when
    missing or out of date."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed (scripts/setup installs nodejs and npm)")
    os.makedirs(CACHE, exist_ok=True)
    lock = os.path.join(CACHE, "package-lock.json")
    fresh = (os.path.isdir(os.path.join(CACHE, "node_modules", "aws-cdk-lib")) and
             os.path.exists(lock) and filecmp.cmp(lock, os.path.join(APP, "package-lock.json"),
                                                  shallow=False))
    if not fresh:
        for f in ("package.json", "package-lock.json"):
            shutil.copy(os.path.join(APP, f), os.path.join(CACHE, f))
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CACHE,
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            pytest.fail("npm could not install aws-cdk and aws-cdk-lib into "
                        f"{CACHE} (is registry.npmjs.org reachable?):\n{r.stderr[-3000:]}")
    return os.path.join(CACHE, "node_modules")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargecdk", 219, tmp_path_factory.getbasetemp())


@pytest.fixture
def pool(barged, agent_factory, scope):
    """The Fargate capacity pool the service's tasks run on."""
    return agent_factory("fargate-host", create_cluster=False,
                         extra_args=["--capacity", "fargate"] + scope.agent_args)


class Cdk:
    def __init__(self, barged, modules, workdir, env):
        self.dir = workdir
        shutil.copytree(APP, workdir, ignore=shutil.ignore_patterns("node_modules", "cdk.out"))
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=barged.access_key,
                        AWS_SECRET_ACCESS_KEY=barged.secret_key, AWS_REGION=REGION,
                        AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=barged.endpoint,
                        NODE_PATH=modules, CDK_DISABLE_VERSION_CHECK="1",
                        CDK_DISABLE_CLI_TELEMETRY="1", BARGE_CDK_STACK=STACK, **env)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
            self.env.pop(k, None)
        self.bin = os.path.join(modules, ".bin", "cdk")

    def run(self, *args, **env):
        r = subprocess.run([self.bin, *args, "--no-color"], cwd=self.dir,
                           env=dict(self.env, **env), capture_output=True, text=True,
                           timeout=900)
        assert r.returncode == 0, f"cdk {' '.join(args)} failed:\n{r.stdout[-3000:]}\n" \
                                  f"{r.stderr[-6000:]}"
        return r


def wait_for(pred, what, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def answer(port):
    try:
        status, body = get(port, "/")
        return body.strip() if status == 200 else None
    except OSError:
        return None


def test_cdk_bootstrap_deploy_update_destroy(barged, pool, busybox, tmp_path):
    modules = cdk_modules()
    ssm = barged.client("ssm")
    ssm.put_parameter(Name="/cdk/secret", Type="String", Value="s3cr3t")
    port = free_port()
    cdk = Cdk(barged, modules, str(tmp_path / "app"), {
        "BARGE_CDK_SECRET_PARAM": "/cdk/secret", "BARGE_CDK_LB_PORT": str(port),
        "BARGE_CDK_IMAGE": busybox, "BARGE_CDK_COMMAND": COMMAND,
        "BARGE_CDK_GREETING": "hello"})
    cfn, ecs = barged.client("cloudformation"), barged.client("ecs")
    aas = barged.client("application-autoscaling")

    cdk.run("bootstrap", f"aws://{barged.client('sts').get_caller_identity()['Account']}/{REGION}")
    boot = cfn.describe_stacks(StackName="CDKToolkit")["Stacks"][0]
    assert boot["StackStatus"] == "CREATE_COMPLETE"
    assert ssm.get_parameter(Name="/cdk-bootstrap/hnb659fds/version")["Parameter"]["Value"]

    cdk.run("deploy", "--require-approval", "never")
    st = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert st["StackStatus"] == "CREATE_COMPLETE"
    out = {o["OutputKey"]: o["OutputValue"] for o in st["Outputs"]}
    cluster, service = out["ClusterName"], out["ServiceName"]
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert svc["launchType"] == "FARGATE" and svc["desiredCount"] == 1
    # Real tasks, reached through the load balancer, with the secret.
    assert wait_for(lambda: answer(port) == "hello s3cr3t", "the service to answer")
    tasks = ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
    assert len(tasks) == 1
    targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [
        (f"service/{cluster}/{service}", 1, 3)]
    pols = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
        "PredefinedMetricType"] for p in pols] == ["ECSServiceAverageCPUUtilization"]

    # An update of the environment rolls the service onto a new revision.
    old_td = svc["taskDefinition"]
    cdk.run("deploy", "--require-approval", "never", BARGE_CDK_GREETING="bonjour")
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert svc["taskDefinition"] != old_td
    assert wait_for(lambda: answer(port) == "bonjour s3cr3t", "the new revision to answer")

    # barge takes the service CDK made over without drift.
    work = tmp_path / "ecspresso"
    work.mkdir()
    benv = dict(cdk.env)
    init = subprocess.run([binary("barge"), "init", "--cluster", cluster, "--service", service],
                          cwd=work, env=benv, capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    diff = subprocess.run([binary("barge"), "diff"], cwd=work, env=benv, capture_output=True,
                          text=True, timeout=120)
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stderr

    cdk.run("destroy", "--force")
    gone = cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert STACK in [s["StackName"] for s in gone]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "INACTIVE"
    assert barged.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert wait_for(lambda: answer(port) is None, "the listener to close", timeout=30)


def test_cdk_context_lookups(barged, tmp_path):
    """`cdk synth` of an app with Vpc.fromLookup, SecurityGroup.fromLookupByName
    and the stack's availabilityZones: the CDK CLI's lookups (EC2 Describe
    calls) find barged's default VPC, and the template is built from it."""
    modules = cdk_modules()
    cdk = Cdk(barged, modules, str(tmp_path / "app"), {})
    cdk.run("synth", "--app", "node lookup.js", "--quiet")
    ec2 = barged.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    group = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]},
                 {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    with open(os.path.join(cdk.dir, "cdk.out", "BargeCdkLookup.template.json")) as f:
        tpl = json.load(f)
    out = {k: v["Value"] for k, v in tpl["Outputs"].items()}
    assert out["VpcId"] == vpc["VpcId"]
    by_zone = sorted(subnets, key=lambda s: s["AvailabilityZone"])
    assert out["PublicSubnets"].split(",") == [s["SubnetId"] for s in by_zone]
    assert out["Zones"].split(",") == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    assert out["GroupId"] == group["GroupId"]
    # The CLI keeps what it found in cdk.context.json.
    with open(os.path.join(cdk.dir, "cdk.context.json")) as f:
        assert any(k.startswith("vpc-provider:") for k in json.load(f))
