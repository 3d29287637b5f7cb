"""Native blue/green deployments (issue 19): deploymentConfiguration.strategy
BLUE_GREEN with a load balancer's advancedConfiguration. Green starts at full
count in the alternate target group while blue serves production; once green
is healthy the test and production listener rules forward to it (ModifyRule /
ModifyListener through HAProxy, under constant load, no request lost); after
the bake time blue goes. StopServiceDeployment during the bake returns
production to blue at once. Real agent, real containers (busybox httpd), real
HAProxy. Debian's botocore predates these fields, so ECS is called as signed
JSON by hand."""
import subprocess

import pytest
from botocore.exceptions import ClientError

import nethelpers
from conftest import error_code, error_message
from lbtraffic import Load, free_port, get
from test_service_deployments import call, fails
from test_service_lb import healthy_targets, register, wait_for

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")

ROLE = "arn:aws:iam::000000000000:role/ecsInfrastructureRoleForLoadBalancers"


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargebg", 222, tmp_path_factory.getbasetemp())


@pytest.fixture
def agent(agent_factory, scope):
    return agent_factory(extra_args=scope.agent_args)


def target_group(elb, name):
    arn = elb.create_target_group(
        Name=name, Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    return arn


@pytest.fixture
def setup(barged):
    """A load balancer with a production listener (a rule forwarding to blue)
    and a test listener (its default rule forwarding to green)."""
    elb = barged.client("elbv2")
    prod_port, test_port = free_port(), free_port()
    lb = elb.create_load_balancer(Name="bg", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = target_group(elb, "bg-blue"), target_group(elb, "bg-green")
    prod = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=prod_port,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}]
                               )["Listeners"][0]["ListenerArn"]
    rule = elb.create_rule(ListenerArn=prod, Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/*"]}], Actions=[
        {"Type": "forward", "TargetGroupArn": blue}])["Rules"][0]["RuleArn"]
    test = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=test_port,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": green}]
                               )["Listeners"][0]["ListenerArn"]
    [test_rule] = [r["RuleArn"] for r in elb.describe_rules(ListenerArn=test)["Rules"]
                   if r["IsDefault"]]
    return dict(elb=elb, prod_port=prod_port, test_port=test_port, blue=blue, green=green,
                prod_rule=rule, test_rule=test_rule, prod_listener=prod)


def lbs(s, **adv):
    cfg = {"alternateTargetGroupArn": s["green"], "productionListenerRule": s["prod_rule"],
           "testListenerRule": s["test_rule"], "roleArn": ROLE}
    cfg.update(adv)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    return [{"targetGroupArn": s["blue"], "containerName": "web", "containerPort": 80,
             "advancedConfiguration": cfg}]


def service(barged):
    return call(barged, "DescribeServices",
                {"cluster": "default", "services": ["web"]})["services"][0]


def stable(barged, td):
    s = service(barged)
    return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
            and s["taskDefinition"] == td and s["runningCount"] == 2)


def record(barged):
    arn = call(barged, "ListServiceDeployments", {"cluster": "default", "service": "web"}
               )["serviceDeployments"][0]["serviceDeploymentArn"]
    return call(barged, "DescribeServiceDeployments",
                {"serviceDeploymentArns": [arn]})["serviceDeployments"][0]


def forwards_to(elb, rule_arn):
    [rule] = elb.describe_rules(RuleArns=[rule_arn])["Rules"]
    return rule["Actions"][0]["TargetGroupArn"]


def test_bad_blue_green_configurations(barged, setup, busybox):
    ecs = barged.client("ecs")
    ecs.create_cluster()
    s = setup
    v1 = register(ecs, busybox, "v1")
    base = {"cluster": "default", "serviceName": "web", "taskDefinition": v1,
            "desiredCount": 1}
    bg = {"strategy": "BLUE_GREEN"}
    no_adv = [{"targetGroupArn": s["blue"], "containerName": "web", "containerPort": 80}]
    hook = {"hookTargetArn": "arn:aws:lambda:us-east-1:000000000000:function:check",
            "roleArn": ROLE, "lifecycleStages": ["POST_SCALE_UP"]}
    for dcfg, lb, needle in (
            (bg, no_adv, "advancedConfiguration is required for the BLUE_GREEN"),
            (bg, None, "needs loadBalancers with an advancedConfiguration"),
            (bg, lbs(s, roleArn=None), "productionListenerRule and roleArn are required"),
            (bg, lbs(s, alternateTargetGroupArn=s["blue"]), "must differ from targetGroupArn"),
            (bg, lbs(s, productionListenerRule=s["prod_rule"][:-4] + "ffff"), "does not exist"),
            ({"strategy": "ROLLING"}, lbs(s), "only valid with the BLUE_GREEN"),
            ({"strategy": "CANARY"}, no_adv, "CANARY deployment strategy is not supported"),
            ({"strategy": "SIDEWAYS"}, no_adv, "'SIDEWAYS'"),
            ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2000}, lbs(s), "'2000'"),
            ({"strategy": "BLUE_GREEN", "lifecycleHooks": [hook]}, lbs(s),
             "'arn:aws:lambda:us-east-1:000000000000:function:check'")):
        body = dict(base, deploymentConfiguration=dcfg)
        if lb is not None:
            body["loadBalancers"] = lb
        code, msg = fails(barged, "CreateService", body)
        assert code == "InvalidParameterException", (dcfg, msg)
        assert needle in msg, (dcfg, msg)
    # UpdateService checks the same way.
    call(barged, "CreateService", dict(base, loadBalancers=no_adv))
    code, msg = fails(barged, "UpdateService", {"cluster": "default", "service": "web",
                                                "deploymentConfiguration": bg})
    assert code == "InvalidParameterException"
    assert "advancedConfiguration is required" in msg


def test_modify_rule_and_listener(barged, setup):
    elb, s = setup["elb"], setup
    [out] = elb.modify_rule(RuleArn=s["prod_rule"], Actions=[
        {"Type": "forward", "TargetGroupArn": s["green"]}])["Rules"]
    assert out["Actions"][0]["TargetGroupArn"] == s["green"]
    assert forwards_to(elb, s["prod_rule"]) == s["green"]
    [out] = elb.modify_listener(ListenerArn=s["prod_listener"], DefaultActions=[
        {"Type": "forward", "TargetGroupArn": s["green"]}])["Listeners"]
    assert out["DefaultActions"][0]["TargetGroupArn"] == s["green"]
    # The default rule's actions are its listener's.
    elb.modify_rule(RuleArn=s["test_rule"], Actions=[
        {"Type": "forward", "TargetGroupArn": s["blue"]}])
    assert forwards_to(elb, s["test_rule"]) == s["blue"]
    with pytest.raises(ClientError) as e:
        elb.modify_rule(RuleArn=s["test_rule"], Conditions=[
            {"Field": "path-pattern", "Values": ["/x"]}])
    assert error_code(e) == "OperationNotPermitted"
    with pytest.raises(ClientError) as e:
        elb.modify_rule(RuleArn=s["prod_rule"][:-4] + "ffff", Actions=[
            {"Type": "forward", "TargetGroupArn": s["blue"]}])
    assert error_code(e) == "RuleNotFound"
    with pytest.raises(ClientError) as e:
        elb.modify_listener(ListenerArn=s["prod_listener"], Port=s["test_port"])
    assert "cannot change the port" in error_message(e)


def test_blue_green_deployment_and_rollback(barged, agent, setup, busybox):
    ecs, elb, s = barged.client("ecs"), setup["elb"], setup
    port = s["prod_port"]
    v1, v2, v3 = (register(ecs, busybox, v) for v in ("v1", "v2", "v3"))
    call(barged, "CreateService", {
        "cluster": "default", "serviceName": "web", "taskDefinition": v1, "desiredCount": 2,
        "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
        "loadBalancers": lbs(s)})
    svc = service(barged)
    assert svc["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert svc["loadBalancers"][0]["advancedConfiguration"]["alternateTargetGroupArn"] == \
        s["green"]
    wait_for(lambda: stable(barged, v1), what="service stable on v1")
    wait_for(lambda: len(healthy_targets(elb, s["blue"])) == 2, what="two healthy blue targets")
    assert get(port)[1] == "v1"

    # The headline: blue serves until green is healthy, then production
    # switches to green under constant load, losing nothing.
    load = Load(port)
    try:
        wait_for(lambda: len(load.seen) > 20, what="load running")
        call(barged, "UpdateService", {"cluster": "default", "service": "web",
                                       "taskDefinition": v2})
        wait_for(lambda: len(healthy_targets(elb, s["green"])) == 2,
                 what="two healthy green targets")
        wait_for(lambda: stable(barged, v2), what="service stable on v2")
        wait_for(lambda: load.seen[-10:] == ["v2"] * 10, what="only v2 answering")
    finally:
        load.stop()
    assert load.failures == []
    first_v2 = load.seen.index("v2")
    assert "v1" in load.seen[:first_v2] and "v1" not in load.seen[first_v2:]
    assert forwards_to(elb, s["prod_rule"]) == s["green"]
    assert forwards_to(elb, s["test_rule"]) == s["green"]
    rec = record(barged)
    assert rec["status"] == "SUCCESSFUL" and rec["lifecycleStage"] == "CLEAN_UP"
    wait_for(lambda: healthy_targets(elb, s["blue"]) == [] and elb.describe_target_health(
        TargetGroupArn=s["blue"])["TargetHealthDescriptions"] == [], what="blue deregistered")

    # A rollback during the bake time: production returns to blue (now the
    # v2 tasks in the green target group) at once.
    call(barged, "UpdateService", {
        "cluster": "default", "service": "web", "taskDefinition": v3,
        "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 30}})
    wait_for(lambda: record(barged).get("lifecycleStage") == "BAKE_TIME", what="bake time")
    wait_for(lambda: get(port)[1] == "v3", what="v3 in production")
    assert forwards_to(elb, s["prod_rule"]) == s["blue"]
    assert len(service(barged)["deployments"]) == 2  # blue still runs
    load = Load(port)
    try:
        wait_for(lambda: len(load.seen) > 10, what="load running")
        arn = record(barged)["serviceDeploymentArn"]
        call(barged, "StopServiceDeployment", {"serviceDeploymentArn": arn})
        wait_for(lambda: load.seen[-10:] == ["v2"] * 10, what="only v2 answering")
    finally:
        load.stop()
    assert load.failures == []
    rec = record(barged)
    assert rec["serviceDeploymentArn"] == arn and rec["status"] == "ROLLBACK_SUCCESSFUL"
    assert forwards_to(elb, s["prod_rule"]) == s["green"]
    assert forwards_to(elb, s["test_rule"]) == s["green"]
    wait_for(lambda: stable(barged, v2), what="service back on v2")
    wait_for(lambda: elb.describe_target_health(TargetGroupArn=s["blue"])[
        "TargetHealthDescriptions"] == [], what="v3 deregistered")
    assert get(port)[1] == "v2"
    ecs.delete_service(cluster="default", service="web", force=True)


def test_circuit_breaker_returns_to_blue(barged, agent, setup, busybox):
    """Green tasks that keep failing trip the circuit breaker: production
    never leaves blue, and the deployment is a successful rollback."""
    ecs, elb, s = barged.client("ecs"), setup["elb"], setup
    v1 = register(ecs, busybox, "v1")
    bad = ecs.register_task_definition(family="web", containerDefinitions=[{
        "name": "web", "image": busybox, "memory": 32, "command": ["false"],
        "portMappings": [{"containerPort": 80}]}])["taskDefinition"]["taskDefinitionArn"]
    call(barged, "CreateService", {
        "cluster": "default", "serviceName": "web", "taskDefinition": v1, "desiredCount": 1,
        "deploymentConfiguration": {
            "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        "loadBalancers": lbs(s)})
    wait_for(lambda: len(healthy_targets(elb, s["blue"])) == 1, what="a healthy blue target")
    wait_for(lambda: record(barged)["status"] == "SUCCESSFUL", what="first deployment done")
    call(barged, "UpdateService", {"cluster": "default", "service": "web",
                                   "taskDefinition": bad})
    wait_for(lambda: record(barged)["status"] == "ROLLBACK_SUCCESSFUL", timeout=180,
             what="circuit breaker rollback")
    rec = record(barged)
    assert rec["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert "production traffic returned to the blue deployment" in rec["statusReason"]
    assert forwards_to(elb, s["prod_rule"]) == s["blue"]
    assert get(s["prod_port"])[1] == "v1"
    svc = service(barged)
    assert svc["taskDefinition"] == v1 and len(svc["deployments"]) == 1
    ecs.delete_service(cluster="default", service="web", force=True)


def test_delete_during_bake_time(barged, agent, setup, busybox):
    """Deleting a service whose blue/green deployment bakes stops blue and
    green alike."""
    ecs, s = barged.client("ecs"), setup
    v1, v2 = register(ecs, busybox, "v1"), register(ecs, busybox, "v2")
    call(barged, "CreateService", {
        "cluster": "default", "serviceName": "web", "taskDefinition": v1, "desiredCount": 1,
        "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 30},
        "loadBalancers": lbs(s)})
    wait_for(lambda: record(barged)["status"] == "SUCCESSFUL", what="first deployment done")
    call(barged, "UpdateService", {"cluster": "default", "service": "web",
                                   "taskDefinition": v2})
    wait_for(lambda: record(barged).get("lifecycleStage") == "BAKE_TIME", what="bake time")
    wait_for(lambda: get(s["prod_port"])[1] == "v2", what="v2 in production")
    ecs.delete_service(cluster="default", service="web", force=True)

    def running():
        return ecs.list_tasks(cluster="default", serviceName="web")["taskArns"]

    wait_for(lambda: running() == [], what="every task stopping")
    wait_for(lambda: service(barged)["status"] == "INACTIVE", what="service gone")
