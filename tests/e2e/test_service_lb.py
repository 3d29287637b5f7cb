"""Services behind load balancers (issue 17): a service's tasks are
registered in its target group once RUNNING, a rolling deployment under
constant load through the listener loses no request (old tasks are
deregistered and drained before they stop), and a task that fails the target
group's health checks is replaced. Real agent, real containers (busybox
httpd), real HAProxy."""
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

import nethelpers
from conftest import error_code, error_message
from lbtraffic import Load, free_port, get

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")

# httpd serves the revision's name at /, "ok" at /health, and /cgi-bin/fail
# removes /health, so that the task that answers it starts failing its checks.
FAIL_CGI = r"#!/bin/sh\nrm -f /www/health\necho Content-Type: text/plain\necho\necho bye\n"
# /cgi-bin/slow keeps its request open for a while.
SLOW_CGI = r"#!/bin/sh\nsleep 30\necho Content-Type: text/plain\necho\necho slow\n"


def httpd(body):
    return ("trap 'exit 143' TERM; mkdir -p /www/cgi-bin && "
            f"echo {body} > /www/index.html && echo ok > /www/health && "
            f"printf '{FAIL_CGI}' > /www/cgi-bin/fail && printf '{SLOW_CGI}' > /www/cgi-bin/slow "
            "&& chmod +x /www/cgi-bin/fail /www/cgi-bin/slow && "
            "httpd -p 80 -h /www && while true; do sleep 0.2; done")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargelb", 215, tmp_path_factory.getbasetemp())


@pytest.fixture
def agent(agent_factory, scope):
    return agent_factory(extra_args=scope.agent_args)


def wait_for(pred, timeout=90, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def register(ecs, image, body):
    return ecs.register_task_definition(
        family="web", containerDefinitions=[{
            "name": "web", "image": image, "memory": 32, "command": ["sh", "-c", httpd(body)],
            "portMappings": [{"containerPort": 80}]}])["taskDefinition"]["taskDefinitionArn"]


def stable(ecs, td):
    s = ecs.describe_services(cluster="default", services=["web"])["services"][0]
    return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
            and s["taskDefinition"] == td and s["runningCount"] == 2)


def healthy_targets(elb, arn):
    d = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return [t for t in d if t["TargetHealth"]["State"] == "healthy"]


def test_service_behind_load_balancer(barged, agent, busybox):
    ecs, elb = barged.client("ecs"), barged.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="web", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="web-tg", Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]
    arn = tg["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    v1 = register(ecs, busybox, "v1")
    v2 = register(ecs, busybox, "v2")

    def create(**kw):
        args = dict(cluster="default", serviceName="web", taskDefinition=v1, desiredCount=2,
                    healthCheckGracePeriodSeconds=10,
                    loadBalancers=[{"targetGroupArn": arn, "containerName": "web",
                                    "containerPort": 80}])
        args.update(kw)
        return ecs.create_service(**args)["service"]

    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    unused = elb.create_target_group(Name="unused-tg", Protocol="HTTP", Port=80,
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]

    # As ECS: the target group must exist and be used by a load balancer, the
    # container must exist and map the port.
    for lbs, needle in (
            ([{"targetGroupArn": arn, "containerName": "nope", "containerPort": 80}],
             "The container nope does not exist"),
            ([{"targetGroupArn": arn, "containerName": "web", "containerPort": 8080}],
             "did not have a container port 8080"),
            ([{"targetGroupArn": unused, "containerName": "web", "containerPort": 80}],
             "does not have an associated load balancer"),
            ([{"targetGroupArn": arn.replace("web-tg", "gone"), "containerName": "web",
               "containerPort": 80}], "does not exist")):
        with pytest.raises(ClientError) as e:
            create(loadBalancers=lbs)
        assert error_code(e) == "InvalidParameterException"
        assert needle in error_message(e)

    create()
    wait_for(lambda: stable(ecs, v1), what="service stable on v1")
    wait_for(lambda: len(healthy_targets(elb, arn)) == 2, what="two healthy targets")
    assert get(port)[1] == "v1"

    # The headline: a rolling deployment under constant load loses nothing.
    load = Load(port)
    try:
        wait_for(lambda: len(load.seen) > 20, what="load running")
        ecs.update_service(cluster="default", service="web", taskDefinition=v2)
        wait_for(lambda: stable(ecs, v2), what="service stable on v2")
        wait_for(lambda: load.seen[-10:] == ["v2"] * 10, what="only v2 answering")
    finally:
        load.stop()
    assert load.failures == []
    assert "v1" in load.seen and "v2" in load.seen
    assert len(elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]) == 2

    # UpdateService checks loadBalancers too.
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="default", service="web", loadBalancers=[
            {"targetGroupArn": arn, "containerName": "web", "containerPort": 81}])
    assert error_code(e) == "InvalidParameterException"
    assert "did not have a container port 81" in error_message(e)

    # A task that starts failing the target group's checks is replaced, but
    # not within healthCheckGracePeriodSeconds of its start.
    ecs.update_service(cluster="default", service="web", healthCheckGracePeriodSeconds=3600)
    assert get(port, "/cgi-bin/fail")[1] == "bye"
    reason = f"Task failed ELB health checks in (target-group {arn})"

    def replaced():
        arns = ecs.list_tasks(cluster="default", serviceName="web",
                              desiredStatus="STOPPED")["taskArns"]
        tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
        return [t for t in tasks if t.get("stoppedReason") == reason]

    wait_for(lambda: any(t["TargetHealth"]["State"] == "unhealthy" for t in
                         elb.describe_target_health(TargetGroupArn=arn)[
                             "TargetHealthDescriptions"]), what="a target unhealthy")
    time.sleep(3)  # several scheduler passes (not a timing assertion)
    assert not replaced()
    ecs.update_service(cluster="default", service="web", healthCheckGracePeriodSeconds=0)
    wait_for(replaced, what="unhealthy task replaced")
    wait_for(lambda: len(healthy_targets(elb, arn)) == 2, what="two healthy targets again")
    assert get(port)[1] == "v2"

    # Scale-in drains: the task that holds a request open stays DEACTIVATING
    # (to be stopped) until the deregistration delay is over.
    def slow_request():
        try:
            get(port, "/cgi-bin/slow")
        except Exception:
            pass  # its task is stopped under it

    threading.Thread(target=slow_request, daemon=True).start()
    time.sleep(0.5)  # lets the request reach a task (not a timing assertion)
    ecs.update_service(cluster="default", service="web", desiredCount=0)

    def tasks(desired):
        arns = ecs.list_tasks(cluster="default", serviceName="web",
                              desiredStatus=desired)["taskArns"]
        return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []

    [draining] = wait_for(lambda: [t for t in tasks("STOPPED")
                                   if t["lastStatus"] == "DEACTIVATING"], what="a task draining")
    assert draining["desiredStatus"] == "STOPPED"
    assert draining["stoppedReason"].startswith("Scaling activity initiated by")
    assert tasks("RUNNING") == []
    ecs.delete_service(cluster="default", service="web")
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in tasks("STOPPED")),
             what="tasks stopped")
    assert elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []


def test_instance_target_group(barged, agent, busybox):
    """An instance target group: the task is registered as its container
    instance's EC2 id and host port, and traffic reaches it."""
    ecs, elb = barged.client("ecs"), barged.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="inst", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    arn = elb.create_target_group(
        Name="inst-tg", Protocol="HTTP", Port=80, TargetType="instance",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    ecs.create_service(cluster="default", serviceName="web", taskDefinition=register(
        ecs, busybox, "inst"), desiredCount=1, loadBalancers=[
            {"targetGroupArn": arn, "containerName": "web", "containerPort": 80}])
    ec2_id = ecs.describe_container_instances(
        cluster="default", containerInstances=[agent.instance_arn]
    )["containerInstances"][0]["ec2InstanceId"]
    [target] = wait_for(lambda: healthy_targets(elb, arn), what="a healthy target")
    assert target["Target"]["Id"] == ec2_id
    task = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(
        cluster="default", serviceName="web")["taskArns"])["tasks"][0]
    assert target["Target"]["Port"] == task["containers"][0]["networkBindings"][0]["hostPort"]
    assert get(port) == (200, "inst")
    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for(lambda: elb.describe_target_health(TargetGroupArn=arn)[
        "TargetHealthDescriptions"] == [], what="target deregistered")
    wait_for(lambda: ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]])[
        "tasks"][0]["lastStatus"] == "STOPPED", what="task stopped")


def test_awsvpc_service_behind_ip_target_group(barged, agent, busybox):
    """An awsvpc service: each task is registered at its own address and the
    container port, and traffic through HAProxy reaches it there."""
    ecs, elb = barged.client("ecs"), barged.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="vpc", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    arn = elb.create_target_group(
        Name="vpc-tg", Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/health",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    inst = elb.create_target_group(Name="vpc-inst", Protocol="HTTP", Port=80,
                                   TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}])
    elb.create_rule(ListenerArn=elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])[
        "Listeners"][0]["ListenerArn"], Priority=1, Conditions=[
        {"Field": "path-pattern", "Values": ["/inst"]}], Actions=[
        {"Type": "forward", "TargetGroupArn": inst}])
    td = ecs.register_task_definition(
        family="vpcweb", networkMode="awsvpc", containerDefinitions=[{
            "name": "web", "image": busybox, "memory": 32,
            "command": ["sh", "-c", httpd("vpc")],
            "portMappings": [{"containerPort": 80}]}])["taskDefinition"]["taskDefinitionArn"]
    svc = dict(cluster="default", taskDefinition=td, desiredCount=1,
               networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    # As ECS: awsvpc tasks need target groups of type ip.
    with pytest.raises(ClientError) as e:
        ecs.create_service(serviceName="bad", loadBalancers=[
            {"targetGroupArn": inst, "containerName": "web", "containerPort": 80}], **svc)
    assert error_code(e) == "InvalidParameterException" and "awsvpc" in error_message(e)
    ecs.create_service(serviceName="web", loadBalancers=[
        {"targetGroupArn": arn, "containerName": "web", "containerPort": 80}], **svc)
    [target] = wait_for(lambda: healthy_targets(elb, arn), what="a healthy target")
    task = ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(
        cluster="default", serviceName="web")["taskArns"])["tasks"][0]
    eni = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert (target["Target"]["Id"], target["Target"]["Port"]) == (eni["privateIPv4Address"], 80)
    assert get(port) == (200, "vpc")
    ecs.delete_service(cluster="default", service="web", force=True)
    wait_for(lambda: elb.describe_target_health(TargetGroupArn=arn)[
        "TargetHealthDescriptions"] == [], what="target deregistered")
