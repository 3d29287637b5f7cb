"""barge status and barge verify show the health of a service's load
balancer targets (issue 17): a real agent and HAProxy, a task whose health
check passes and then fails."""
import json
import re
import subprocess

import pytest

import nethelpers
from lbtraffic import free_port, get
from test_cli_deploy import Project
from test_service_lb import httpd, wait_for

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargeth", 218, tmp_path_factory.getbasetemp())


def test_status_and_verify_show_target_health(barged, agent_factory, busybox, scope, tmp_path):
    agent_factory(extra_args=scope.agent_args)
    elb = barged.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="web", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="web-tg", Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]
    arn = tg["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])

    p = Project(barged, tmp_path / "web", busybox)
    p.write("ecspresso.yml", "region: us-east-1\ncluster: default\nservice: web\n"
            "service_definition: ecs-service-def.json\ntask_definition: ecs-task-def.json\n"
            "timeout: 3m\n")
    p.write("ecs-task-def.json", json.dumps({
        "family": "web", "containerDefinitions": [{
            "name": "web", "image": busybox, "memory": 32,
            "command": ["sh", "-c", httpd("v1")], "portMappings": [{"containerPort": 80}]}]}))
    # A long grace period: the scheduler leaves the failing task alone, so
    # that what status and verify show stays put.
    p.write("ecs-service-def.json", json.dumps({
        "desiredCount": 1, "launchType": "EC2", "healthCheckGracePeriodSeconds": 3600,
        "loadBalancers": [{"targetGroupArn": arn, "containerName": "web",
                           "containerPort": 80}]}))
    p.ok("deploy")

    def state():
        d = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        return d[0]["TargetHealth"]["State"] if d else None
    wait_for(lambda: state() == "healthy", what="the target healthy")
    out = p.ok("status").stdout
    assert "LoadBalancers:\n  TargetGroup name:web-tg container:web:80 healthy:1/1\n" in out, out
    assert re.search(r"^    Target [\d.]+:\d+ healthy$", out, re.M), out
    assert out.index("LoadBalancers:") < out.index("Events:")
    out = p.ok("verify").stdout
    assert re.search(r"LoadBalancer\[web:80\]\n\s+--> \[OK\]\n\s+TargetGroup\[web-tg\]\n"
                     r"\s+--> \[OK\] 1 of 1 targets healthy", out), out

    # the task's health check starts failing
    assert get(port, "/cgi-bin/fail")[0] == 200
    wait_for(lambda: state() == "unhealthy", what="the target unhealthy")
    out = p.ok("status").stdout
    assert "TargetGroup name:web-tg container:web:80 healthy:0/1" in out, out
    assert re.search(r"^    Target [\d.]+:\d+ unhealthy \(Target\.\w+\)$", out, re.M), out
    r = p.run("verify", check=False)
    assert re.search(r"--> \[NG\] 0 of 1 targets healthy: [\d.]+:\d+ unhealthy", r.stdout), \
        r.stdout
    assert "verify failed" in r.stderr

    # a target group that is gone is NG too
    p.write("ecs-service-def.json", json.dumps({
        "desiredCount": 1, "launchType": "EC2",
        "loadBalancers": [{"targetGroupArn": arn.replace("web-tg", "gone-tg"),
                           "containerName": "web", "containerPort": 80}]}))
    r = p.run("verify", check=False)
    assert re.search(r"LoadBalancer\[web:80\]\n\s+--> \[NG\] .*not found", r.stdout), r.stdout
