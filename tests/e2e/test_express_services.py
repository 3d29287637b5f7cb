"""Express Gateway services (issue 19): one call from an image to a URL. The
service, its task definition, target group, load balancer and listener are
made from one CreateExpressGatewayService; the endpoint answers real HTTP
from the container (busybox httpd behind real HAProxy), an update rolls a new
configuration out behind the same URL, and a delete removes it all. Debian's
botocore predates these operations, so they are called as signed JSON by
hand."""
import subprocess
import urllib.request

import pytest

import nethelpers
from test_service_deployments import call, fails
from test_services import wait_for

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")

ROLE = "arn:aws:iam::000000000000:role/"





def httpd(body, port=8080):
    return ["sh", "-c", f"trap 'exit 143' TERM; mkdir -p /www && echo {body} > /www/index.html "
                        f"&& echo pong > /www/ping && httpd -p {port} -h /www "
                        "&& while true; do sleep 0.2; done"]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode().strip()
    except Exception as e:  # not answering yet
        return None, str(e)


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargexp", 217, tmp_path_factory.getbasetemp())


def test_image_to_url(barged, agent_factory, scope, busybox):
    agent_factory(extra_args=scope.agent_args)
    ecs, elb = barged.client("ecs"), barged.client("elbv2")

    # A malformed request makes nothing.
    code, msg = fails(barged, "CreateExpressGatewayService", {
        "executionRoleArn": ROLE + "exec", "infrastructureRoleArn": ROLE + "infra",
        "healthCheckPath": "ping", "primaryContainer": {"image": busybox}})
    assert code == "InvalidParameterException" and "'ping'" in msg
    code, msg = fails(barged, "CreateExpressGatewayService", {
        "executionRoleArn": ROLE + "exec", "infrastructureRoleArn": ROLE + "infra",
        "primaryContainer": {"image": busybox},
        "scalingTarget": {"minTaskCount": 1, "maxTaskCount": 2,
                          "autoScalingMetric": "REQUEST_COUNT_PER_TARGET"}})
    assert code == "InvalidParameterException" and "'REQUEST_COUNT_PER_TARGET'" in msg
    assert elb.describe_load_balancers()["LoadBalancers"] == []

    svc = call(barged, "CreateExpressGatewayService", {
        "serviceName": "hello", "executionRoleArn": ROLE + "exec",
        "infrastructureRoleArn": ROLE + "infra", "memory": "128",
        "primaryContainer": {"image": busybox, "containerPort": 8080,
                             "command": httpd("v1")},
        "scalingTarget": {"minTaskCount": 1, "maxTaskCount": 3,
                          "autoScalingMetric": "AVERAGE_MEMORY", "autoScalingTargetValue": 70},
        "tags": [{"key": "app", "value": "hello"}]})["service"]
    arn = svc["serviceArn"]
    assert arn.endswith(":service/default/hello")
    assert svc["status"]["statusCode"] == "ACTIVE"
    [cfg] = svc["activeConfigurations"]
    assert cfg["cpu"] == "256" and cfg["memory"] == "128"
    assert cfg["healthCheckPath"] == "/ping"
    assert cfg["primaryContainer"]["containerPort"] == 8080
    [ingress] = cfg["ingressPaths"]
    url = ingress["endpoint"]
    assert url.startswith("http://") and ingress["accessType"] == "PUBLIC"

    # It is an ordinary service behind an ordinary load balancer.
    s = ecs.describe_services(cluster="default", services=["hello"])["services"][0]
    assert s["desiredCount"] == 1 and s["loadBalancers"][0]["containerPort"] == 8080
    td = ecs.describe_task_definition(taskDefinition=s["taskDefinition"])["taskDefinition"]
    assert td["family"] == "hello" and td["containerDefinitions"][0]["image"] == busybox
    [lb] = elb.describe_load_balancers()["LoadBalancers"]
    [tg] = elb.describe_target_groups()["TargetGroups"]
    assert tg["HealthCheckPath"] == "/ping" and tg["TargetType"] == "ip"
    # Auto scaling between minTaskCount and maxTaskCount on the metric asked.
    aas = barged.client("application-autoscaling")
    [target] = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == \
        ("service/default/hello", 1, 3)
    [policy] = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    tt = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tt["TargetValue"] == 70.0
    assert tt["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "ECSServiceAverageMemoryUtilization"

    # The headline: the URL answers from the container.
    wait_for(lambda: fetch(url) == (200, "v1"), what="the endpoint answering v1")

    # An update rolls out behind the same URL.
    up = call(barged, "UpdateExpressGatewayService", {
        "serviceArn": arn, "primaryContainer": {"image": busybox, "containerPort": 8080,
                                                "command": httpd("v2")}})["service"]
    assert up["targetConfiguration"]["memory"] == "128"  # kept from the first
    wait_for(lambda: fetch(url) == (200, "v2"), what="the endpoint answering v2")
    desc = call(barged, "DescribeExpressGatewayService",
                {"serviceArn": arn, "include": ["TAGS"]})["service"]
    assert desc["tags"] == [{"key": "app", "value": "hello"}]
    assert desc["currentDeployment"].startswith(arn.replace(":service/", ":service-deployment/"))
    wait_for(lambda: len(call(barged, "DescribeExpressGatewayService", {"serviceArn": arn})[
        "service"]["activeConfigurations"]) == 1, what="the first configuration drained")
    assert call(barged, "DescribeExpressGatewayService", {"serviceArn": arn})[
        "service"]["activeConfigurations"][0]["primaryContainer"]["command"] == httpd("v2")

    # Delete: the service drains, the load balancer and target group go.
    out = call(barged, "DeleteExpressGatewayService", {"serviceArn": arn})["service"]
    assert out["status"]["statusCode"] in ("DRAINING", "INACTIVE")
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    wait_for(lambda: fetch(url)[0] is None, what="the endpoint gone")
    wait_for(lambda: call(barged, "DescribeExpressGatewayService", {"serviceArn": arn})[
        "service"]["status"]["statusCode"] == "INACTIVE", what="the service inactive")
    assert fails(barged, "DeleteExpressGatewayService", {"serviceArn": arn})[0] == \
        "ServiceNotFoundException"
    assert fails(barged, "DescribeExpressGatewayService",
                 {"serviceArn": arn.replace("hello", "nope")})[0] == "ResourceNotFoundException"
    code, msg = fails(barged, "UpdateExpressGatewayService", {"serviceArn": "x"})
    assert code == "InvalidParameterException" and "'x'" in msg
