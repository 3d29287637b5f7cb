"""The ECS operations Amazon's container agent calls, answered as ECS does:
DiscoverPollEndpoint points at this barged, the Submit*StateChange calls move
a task (and its containers and attachments) forward and are acknowledged,
UpdateContainerAgent says no update is available for a barge agent. The
tasks here are placed on the instance of an agent killed right after it
registered (it still counts as connected for barged's --agent-timeout, 60 s),
so only these calls change them."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message


def instance_and_task(ecs, agent, network_mode=None, **run):
    agent.kill()
    kw = {"networkMode": network_mode} if network_mode else {}
    ecs.register_task_definition(family="ag", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 16, "essential": True,
         "portMappings": [{"containerPort": 80}]},
        {"name": "side", "image": "busybox", "memory": 16, "essential": False}], **kw)
    r = ecs.start_task(cluster="default", taskDefinition="ag",
                       containerInstances=[agent.instance_arn], **run)
    assert r["failures"] == []
    return agent.instance_arn, r["tasks"][0]


def describe(ecs, arn):
    return ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]


def test_discover_poll_endpoint_points_here(barged, ecs, agent):
    r = ecs.discover_poll_endpoint()
    assert r["endpoint"] == barged.endpoint
    assert r["telemetryEndpoint"] == barged.endpoint
    r = ecs.discover_poll_endpoint(cluster="default", containerInstance=agent.instance_arn)
    assert r["endpoint"] == barged.endpoint
    with pytest.raises(ClientError) as e:
        ecs.discover_poll_endpoint(cluster="nope")
    assert error_code(e) == "ClientException" and "'nope'" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.discover_poll_endpoint(cluster="default", containerInstance="0123abcd")
    assert error_code(e) == "ClientException" and "'0123abcd'" in error_message(e)


def test_task_and_container_state_changes_apply(ecs, agent):
    _, task = instance_and_task(ecs, agent)
    arn = task["taskArn"]
    assert task["lastStatus"] == "PENDING"

    r = ecs.submit_task_state_change(
        cluster="default", task=arn, status="RUNNING",
        containers=[{"containerName": "web", "status": "RUNNING", "runtimeId": "rt-web",
                     "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80,
                                          "hostPort": 32768, "protocol": "tcp"}]}])
    assert r["acknowledgment"] == "ACK"
    t = describe(ecs, arn)
    assert t["lastStatus"] == "RUNNING" and "startedAt" in t
    web = [c for c in t["containers"] if c["name"] == "web"][0]
    assert web["lastStatus"] == "RUNNING" and web["runtimeId"] == "rt-web"
    assert web["networkBindings"][0]["hostPort"] == 32768

    r = ecs.submit_container_state_change(cluster="default", task=arn, containerName="side",
                                          status="STOPPED", exitCode=3, reason="done")
    assert r["acknowledgment"] == "ACK"
    t = describe(ecs, arn)
    side = [c for c in t["containers"] if c["name"] == "side"][0]
    assert side["lastStatus"] == "STOPPED" and side["exitCode"] == 3
    assert t["lastStatus"] == "RUNNING"

    ecs.submit_task_state_change(cluster="default", task=arn, status="STOPPED",
                                 reason="Essential container in task exited",
                                 containers=[{"containerName": "web", "status": "STOPPED",
                                              "exitCode": 1}])
    t = describe(ecs, arn)
    assert t["lastStatus"] == "STOPPED" and t["desiredStatus"] == "STOPPED"
    assert t["stoppedReason"] == "Essential container in task exited"
    # never backwards
    ecs.submit_task_state_change(cluster="default", task=arn, status="RUNNING")
    assert describe(ecs, arn)["lastStatus"] == "STOPPED"


def test_state_change_errors(ecs, agent):
    _, task = instance_and_task(ecs, agent)
    arn = task["taskArn"]
    cases = [
        (ecs.submit_task_state_change, {"task": arn, "status": "DANCING"}, "'DANCING'"),
        (ecs.submit_task_state_change, {"task": arn, "status": "RUNNING",
                                        "containers": [{"containerName": "ghost"}]}, "'ghost'"),
        (ecs.submit_container_state_change, {"task": arn, "containerName": "ghost",
                                             "status": "RUNNING"}, "'ghost'"),
        (ecs.submit_task_state_change, {"task": "0" * 32, "status": "RUNNING"}, "0" * 32),
        (ecs.submit_task_state_change, {"status": "RUNNING"}, "task"),
    ]
    for call, kw, words in cases:
        with pytest.raises(ClientError) as e:
            call(cluster="default", **kw)
        assert error_code(e) == "InvalidParameterException", kw
        assert words in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.submit_task_state_change(cluster="nope", task=arn, status="RUNNING")
    assert error_code(e) == "ClusterNotFoundException"


def test_attachment_state_changes(ecs, agent):
    _, task = instance_and_task(ecs, agent, network_mode="awsvpc", networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    att = task["attachments"][0]
    assert att["status"] == "PRECREATED"
    att_arn = f"arn:aws:ecs:us-east-1:000000000000:attachment/{att['id']}"
    r = ecs.submit_attachment_state_changes(
        cluster="default", attachments=[{"attachmentArn": att_arn, "status": "ATTACHED"}])
    assert r["acknowledgment"] == "ACK"
    assert describe(ecs, task["taskArn"])["attachments"][0]["status"] == "ATTACHED"
    with pytest.raises(ClientError) as e:
        ecs.submit_attachment_state_changes(
            cluster="default", attachments=[{"attachmentArn": att_arn, "status": "GLUED"}])
    assert error_code(e) == "InvalidParameterException" and "'GLUED'" in error_message(e)
    missing = "arn:aws:ecs:us-east-1:000000000000:attachment/nope"
    with pytest.raises(ClientError) as e:
        ecs.submit_attachment_state_changes(
            cluster="default", attachments=[{"attachmentArn": missing, "status": "ATTACHED"}])
    assert error_code(e) == "InvalidParameterException" and missing in error_message(e)


def test_update_container_agent_has_no_update_for_barge_agents(ecs, agent):
    version = ecs.describe_container_instances(
        cluster="default", containerInstances=[agent.instance_arn]
    )["containerInstances"][0]["versionInfo"]["agentVersion"]
    with pytest.raises(ClientError) as e:
        ecs.update_container_agent(cluster="default", containerInstance=agent.instance_arn)
    assert error_code(e) == "NoUpdateAvailableException"
    assert f"'{version}'" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.update_container_agent(cluster="default", containerInstance="0123abcd")
    assert error_code(e) == "InvalidParameterException" and "'0123abcd'" in error_message(e)
