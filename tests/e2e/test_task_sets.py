"""Task sets (issue 19): a service with the EXTERNAL deployment controller
runs what its task sets say, each its scale (a percentage) of the service's
desiredCount, rounded up; an external controller shifts traffic by creating
sets, scaling them and naming the primary one. Real agent, real containers,
and for the load balancer test real HAProxy."""
import subprocess

import pytest
from botocore.exceptions import ClientError

import nethelpers
from conftest import error_code, error_message
from lbtraffic import free_port, get
from test_services import wait_for

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]



def register(ecs, image, family="ts", command=None, **kw):
    return ecs.register_task_definition(
        family=family, containerDefinitions=[{
            "name": "main", "image": image, "memory": 16, "command": command or SLEEPER, **kw}]
    )["taskDefinition"]["taskDefinitionArn"]


def external_service(ecs, name="ext", desired=2):
    return ecs.create_service(cluster="default", serviceName=name, desiredCount=desired,
                              deploymentController={"type": "EXTERNAL"})["service"]


def task_set(ecs, ts_id, service="ext"):
    return ecs.describe_task_sets(cluster="default", service=service,
                                  taskSets=[ts_id])["taskSets"][0]


def running(ecs, service="ext"):
    arns = ecs.list_tasks(cluster="default", serviceName=service)["taskArns"]
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def steady(ecs, ts_id, count, service="ext"):
    ts = task_set(ecs, ts_id, service)
    return (ts["stabilityStatus"] == "STEADY_STATE" and ts["runningCount"] == count
            and ts["computedDesiredCount"] == count) and ts


def test_task_sets_run_scale_and_shift(barged, agent, busybox):
    ecs = barged.client("ecs")
    v1 = register(ecs, busybox)
    v2 = register(ecs, busybox)
    svc = external_service(ecs, desired=3)
    assert svc["deploymentController"] == {"type": "EXTERNAL"}
    assert svc["deployments"] == [] and svc["taskSets"] == []
    assert "taskDefinition" not in svc

    blue = ecs.create_task_set(cluster="default", service="ext", taskDefinition=v1,
                               externalId="blue", scale={"value": 100, "unit": "PERCENT"},
                               tags=[{"key": "color", "value": "blue"}])["taskSet"]
    assert blue["id"].startswith("ecs-svc/")
    assert blue["taskSetArn"].endswith(f":task-set/default/ext/{blue['id']}")
    assert blue["status"] == "ACTIVE" and blue["computedDesiredCount"] == 3
    assert blue["stabilityStatus"] == "STABILIZING" and blue["launchType"] == "EC2"
    assert blue["externalId"] == "blue" and blue["taskDefinition"] == v1
    wait_for(lambda: steady(ecs, blue["id"], 3), what="blue steady with 3 tasks")
    tasks = running(ecs)
    assert len(tasks) == 3
    assert {t["startedBy"] for t in tasks} == {blue["id"]}
    assert {t["taskDefinitionArn"] for t in tasks} == {v1}
    assert {t["group"] for t in tasks} == {"service:ext"}

    # The primary set lends the service its task definition and launch type.
    primary = ecs.update_service_primary_task_set(cluster="default", service="ext",
                                                  primaryTaskSet=blue["taskSetArn"])["taskSet"]
    assert primary["status"] == "PRIMARY"
    s = ecs.describe_services(cluster="default", services=["ext"])["services"][0]
    assert s["taskDefinition"] == v1 and s["launchType"] == "EC2"
    assert s["runningCount"] == 3 and s["deployments"] == []
    assert [t["id"] for t in s["taskSets"]] == [blue["id"]]

    # Green at a third of 3 tasks, rounded up: 1 task; blue keeps its 3.
    green = ecs.create_task_set(cluster="default", service="ext", taskDefinition=v2,
                                scale={"value": 33.4, "unit": "PERCENT"})["taskSet"]
    assert green["computedDesiredCount"] == 2
    ecs.update_task_set(cluster="default", service="ext", taskSet=green["id"],
                        scale={"value": 30, "unit": "PERCENT"})
    wait_for(lambda: steady(ecs, green["id"], 1), what="green steady with 1 task")
    assert steady(ecs, blue["id"], 3)
    wait_for(lambda: len(running(ecs)) == 4, what="4 tasks")

    # Shift: green to 100 %, primary; blue to 0 and deleted.
    ecs.update_task_set(cluster="default", service="ext", taskSet=green["taskSetArn"],
                        scale={"value": 100, "unit": "PERCENT"})
    ecs.update_service_primary_task_set(cluster="default", service="ext",
                                        primaryTaskSet=green["id"])
    assert task_set(ecs, blue["id"])["status"] == "ACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.delete_task_set(cluster="default", service="ext", taskSet=blue["id"])
    assert error_code(e) == "InvalidParameterException"
    assert "scaled above 0" in error_message(e)
    ecs.update_task_set(cluster="default", service="ext", taskSet=blue["id"],
                        scale={"value": 0, "unit": "PERCENT"})
    wait_for(lambda: steady(ecs, green["id"], 3), what="green steady with 3 tasks")
    wait_for(lambda: task_set(ecs, blue["id"])["runningCount"] == 0, what="blue empty")
    deleted = ecs.delete_task_set(cluster="default", service="ext",
                                  taskSet=blue["taskSetArn"])["taskSet"]
    assert deleted["status"] == "DRAINING"
    wait_for(lambda: ecs.describe_task_sets(cluster="default", service="ext",
                                            taskSets=[blue["id"]])["failures"],
             what="blue gone")
    s = ecs.describe_services(cluster="default", services=["ext"])["services"][0]
    assert s["taskDefinition"] == v2
    assert [(t["id"], t["status"]) for t in s["taskSets"]] == [(green["id"], "PRIMARY")]
    tasks = wait_for(lambda: (lambda r: len(r) == 3 and r)(running(ecs)), what="3 green tasks")
    assert {t["taskDefinitionArn"] for t in tasks} == {v2}

    # The service's desiredCount scales its sets.
    ecs.update_service(cluster="default", service="ext", desiredCount=1)
    wait_for(lambda: steady(ecs, green["id"], 1), what="green down to 1")

    # force deletes a set that still runs tasks; they stop, and the service
    # can go.
    ecs.delete_task_set(cluster="default", service="ext", taskSet=green["id"], force=True)
    wait_for(lambda: running(ecs) == [], what="green's tasks stopped")
    wait_for(lambda: ecs.describe_services(cluster="default", services=["ext"])["services"][0][
        "taskSets"] == [], what="green gone")
    ecs.delete_service(cluster="default", service="ext", force=True)


def test_task_set_errors(barged, busybox):
    ecs = barged.client("ecs")
    ecs.create_cluster()
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="rolling", taskDefinition=td,
                       desiredCount=0)

    def fails(code, needle, fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        assert error_code(e) == code, error_message(e)
        assert needle in error_message(e)

    # Task sets belong to EXTERNAL services only.
    fails("InvalidParameterException", "EXTERNAL deployment controller", ecs.create_task_set,
          cluster="default", service="rolling", taskDefinition=td)
    fails("ServiceNotFoundException", "nope", ecs.create_task_set,
          cluster="default", service="nope", taskDefinition=td)
    # The service leaves to its task sets what they set.
    fails("InvalidParameterException", "taskDefinition cannot be given", ecs.create_service,
          cluster="default", serviceName="ext", desiredCount=1, taskDefinition=td,
          deploymentController={"type": "EXTERNAL"})
    fails("InvalidParameterException", "DAEMON", ecs.create_service,
          cluster="default", serviceName="ext", schedulingStrategy="DAEMON",
          deploymentController={"type": "EXTERNAL"})
    external_service(ecs, desired=0)
    fails("InvalidParameterException", "taskDefinition cannot be given", ecs.update_service,
          cluster="default", service="ext", taskDefinition=td)
    fails("ClientException", "not found", ecs.create_task_set,
          cluster="default", service="ext", taskDefinition="missing:1")
    fails("InvalidParameterException", "scale.value must be between 0 and 100",
          ecs.create_task_set, cluster="default", service="ext", taskDefinition=td,
          scale={"value": 150, "unit": "PERCENT"})
    for fn, kw in ((ecs.update_task_set, {"taskSet": "ecs-svc/1",
                                          "scale": {"value": 1, "unit": "PERCENT"}}),
                   (ecs.delete_task_set, {"taskSet": "ecs-svc/1"}),
                   (ecs.update_service_primary_task_set, {"primaryTaskSet": "ecs-svc/1"})):
        fails("TaskSetNotFoundException", "ecs-svc/1", fn, cluster="default", service="ext",
              **kw)

    # A retried CreateTaskSet (same clientToken) gets the same set; tags on
    # request.
    ts = ecs.create_task_set(cluster="default", service="ext", taskDefinition=td,
                             clientToken="t1", tags=[{"key": "k", "value": "v"}])["taskSet"]
    again = ecs.create_task_set(cluster="default", service="ext", taskDefinition=td,
                                clientToken="t1")["taskSet"]
    assert again["id"] == ts["id"]
    assert ts["scale"] == {"value": 100.0, "unit": "PERCENT"}
    assert ts["computedDesiredCount"] == 0
    out = ecs.describe_task_sets(cluster="default", service="ext", include=["TAGS"])
    assert [t["id"] for t in out["taskSets"]] == [ts["id"]]
    assert out["taskSets"][0]["tags"] == [{"key": "k", "value": "v"}]
    assert "tags" not in ecs.describe_task_sets(cluster="default",
                                                service="ext")["taskSets"][0]
    # Task sets are taggable resources.
    ecs.tag_resource(resourceArn=ts["taskSetArn"], tags=[{"key": "k2", "value": "v2"}])
    assert ecs.list_tags_for_resource(resourceArn=ts["taskSetArn"])["tags"] == [
        {"key": "k", "value": "v"}, {"key": "k2", "value": "v2"}]
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=ts["taskSetArn"].replace("ecs-svc/", "ecs-svc/9"))
    assert error_code(e) == "ResourceNotFoundException"
    out = ecs.describe_task_sets(cluster="default", service="ext",
                                 taskSets=[ts["taskSetArn"], "ecs-svc/2"])
    assert [t["id"] for t in out["taskSets"]] == [ts["id"]]
    assert out["failures"] == [{"arn": "ecs-svc/2", "reason": "MISSING"}]
    fails("InvalidParameterException", "EXTERNAL", ecs.describe_task_sets,
          cluster="default", service="rolling")


haproxy = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def scope(tmp_path_factory):
    return nethelpers.free_scope("bargets", 216, tmp_path_factory.getbasetemp())


def httpd(body):
    return ["sh", "-c", f"trap 'exit 143' TERM; mkdir -p /www && echo {body} > /www/index.html "
                        "&& httpd -p 80 -h /www && while true; do sleep 0.2; done"]


@haproxy
def test_task_sets_behind_a_load_balancer(barged, agent_factory, scope, busybox):
    """Each set's tasks are registered in its target group; moving scale from
    blue to green moves the traffic."""
    agent_factory(extra_args=scope.agent_args)
    ecs, elb = barged.client("ecs"), barged.client("elbv2")
    port = free_port()
    lb = elb.create_load_balancer(Name="ts", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="ts-tg", Protocol="HTTP", Port=80, TargetType="ip", HealthCheckPath="/",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "2"}])
    elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    lbs = [{"targetGroupArn": tg, "containerName": "main", "containerPort": 80}]
    blue_td = register(ecs, busybox, family="web", command=httpd("blue"),
                       portMappings=[{"containerPort": 80}])
    green_td = register(ecs, busybox, family="web", command=httpd("green"),
                        portMappings=[{"containerPort": 80}])
    external_service(ecs, desired=1)
    # As for services: the container must map the port.
    with pytest.raises(ClientError) as e:
        ecs.create_task_set(cluster="default", service="ext", taskDefinition=blue_td,
                            loadBalancers=[dict(lbs[0], containerPort=81)])
    assert error_code(e) == "InvalidParameterException"
    assert "did not have a container port 81" in error_message(e)

    blue = ecs.create_task_set(cluster="default", service="ext", taskDefinition=blue_td,
                               loadBalancers=lbs)["taskSet"]
    assert blue["loadBalancers"] == lbs

    def healthy():
        d = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        return [t for t in d if t["TargetHealth"]["State"] == "healthy"]

    wait_for(lambda: steady(ecs, blue["id"], 1), what="blue steady behind the load balancer")
    assert len(healthy()) == 1
    assert get(port)[1] == "blue"

    green = ecs.create_task_set(cluster="default", service="ext", taskDefinition=green_td,
                                loadBalancers=lbs)["taskSet"]
    wait_for(lambda: steady(ecs, green["id"], 1), what="green steady")
    assert len(healthy()) == 2
    ecs.update_task_set(cluster="default", service="ext", taskSet=blue["id"],
                        scale={"value": 0, "unit": "PERCENT"})
    wait_for(lambda: task_set(ecs, blue["id"])["runningCount"] == 0, what="blue drained")
    wait_for(lambda: len(elb.describe_target_health(TargetGroupArn=tg)[
        "TargetHealthDescriptions"]) == 1, what="blue's target gone")
    assert {get(port)[1] for _ in range(5)} == {"green"}
