"""Application Auto Scaling for ECS services (issue 11): the API through boto3
and the aws CLI, and the scaler's scheduled actions, bounds and suspension.
(Target tracking on CPU is shown in test_autoscaling_cpu.py.)"""
import datetime
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message, raw_call

RID = "service/default/app"
DIM = "ecs:service:DesiredCount"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


@pytest.fixture
def service(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = ecs.register_task_definition(family="app", containerDefinitions=[
        {"name": "main", "image": busybox, "memory": 16, "command": SLEEPER}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="app", taskDefinition=td, desiredCount=1)
    return ecs


def desired(ecs):
    return ecs.describe_services(cluster="default", services=["app"])["services"][0]["desiredCount"]


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_targets_and_policies(barged, service):
    aas = barged.client("application-autoscaling")
    # Debian's botocore predates ScalableTargetARN in the answer: ask by hand.
    status, r = raw_call(barged, "AnyScaleFrontendService.RegisterScalableTarget",
                         {"ServiceNamespace": "ecs", "ResourceId": RID, "ScalableDimension": DIM,
                          "MinCapacity": 1, "MaxCapacity": 4},
                         service="application-autoscaling")
    assert status == 200
    arn = r["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:"
                          "scalable-target/")
    t = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert [(x["ResourceId"], x["MinCapacity"], x["MaxCapacity"]) for x in t] == [(RID, 1, 4)]
    p = aas.put_scaling_policy(
        PolicyName="cpu50", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0, "ScaleOutCooldown": 5, "ScaleInCooldown": 5,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    assert ":scalingPolicy:" in p["PolicyARN"] and p["PolicyARN"].endswith(
        "resource/ecs/service/default/app:policyName/cpu50")
    assert len(p["Alarms"]) == 2
    pols = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    assert [x["PolicyName"] for x in pols] == ["cpu50"]
    aas.delete_scaling_policy(PolicyName="cpu50", ServiceNamespace="ecs", ResourceId=RID,
                              ScalableDimension=DIM)
    assert aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
    aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    assert aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []


def test_errors(barged, service):
    aas = barged.client("application-autoscaling")
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/default/nope",
                                     ScalableDimension=DIM, MinCapacity=1, MaxCapacity=2)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID,
                                     ScalableDimension=DIM, MinCapacity=3, MaxCapacity=2)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        aas.put_scaling_policy(PolicyName="x", ServiceNamespace="ecs", ResourceId=RID,
                               ScalableDimension=DIM, PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={
                                   "TargetValue": 50.0, "PredefinedMetricSpecification": {
                                       "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    assert error_code(e) == "ObjectNotFoundException"
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    with pytest.raises(ClientError) as e:
        aas.put_scheduled_action(ServiceNamespace="ecs", ScheduledActionName="bad",
                                 ResourceId=RID, ScalableDimension=DIM, Schedule="cron(nope)")
    assert error_code(e) == "ValidationException"
    assert "cron" in error_message(e)


def test_bounds_move_the_desired_count(barged, service):
    aas = barged.client("application-autoscaling")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=2, MaxCapacity=3)
    wait_for(lambda: desired(service) == 2, what="raised to the minimum")
    service.update_service(cluster="default", service="app", desiredCount=5)
    wait_for(lambda: desired(service) == 3, what="lowered to the maximum")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs",
                                           ResourceId=RID)["ScalingActivities"]
    assert acts[0]["Description"] == "Setting desired count to 3."
    assert acts[0]["StatusCode"] == "Successful"
    assert "maximum capacity" in acts[0]["Cause"]


def test_scheduled_action_raises_minimum(barged, service):
    aas = barged.client("application-autoscaling")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=5)
    at = (datetime.datetime.utcnow() + datetime.timedelta(seconds=3)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    aas.put_scheduled_action(ServiceNamespace="ecs", ScheduledActionName="morning",
                             ResourceId=RID, ScalableDimension=DIM, Schedule=f"at({at})",
                             ScalableTargetAction={"MinCapacity": 3, "MaxCapacity": 5})
    assert desired(service) == 1
    wait_for(lambda: desired(service) == 3, what="the scheduled minimum")
    t = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert t["MinCapacity"] == 3
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert any("scheduled action name morning was triggered" in a["Cause"] for a in acts)
    sa = aas.describe_scheduled_actions(ServiceNamespace="ecs")["ScheduledActions"]
    assert sa[0]["ScheduledActionName"] == "morning"


def test_suspended_scaling_does_nothing(barged, service):
    aas = barged.client("application-autoscaling")
    aas.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
        MaxCapacity=5, SuspendedState={"DynamicScalingInSuspended": True,
                                       "DynamicScalingOutSuspended": True,
                                       "ScheduledScalingSuspended": True})
    at = (datetime.datetime.utcnow() + datetime.timedelta(seconds=2)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    aas.put_scheduled_action(ServiceNamespace="ecs", ScheduledActionName="s", ResourceId=RID,
                             ScalableDimension=DIM, Schedule=f"at({at})",
                             ScalableTargetAction={"MinCapacity": 4, "MaxCapacity": 5})
    time.sleep(5)
    assert desired(service) == 1
    t = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"][0]
    assert t["MinCapacity"] == 1


def test_aws_cli_every_operation(barged, service, tmp_path):
    cli = AwsCli(barged, str(tmp_path))
    a = ["--service-namespace", "ecs", "--resource-id", RID, "--scalable-dimension", DIM]
    cli.json("application-autoscaling", "register-scalable-target", *a, "--min-capacity", "1",
             "--max-capacity", "3")
    assert cli.json("application-autoscaling", "describe-scalable-targets",
                    "--service-namespace", "ecs")["ScalableTargets"][0]["MaxCapacity"] == 3
    cfg = json.dumps({"TargetValue": 60.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageMemoryUtilization"}})
    cli.json("application-autoscaling", "put-scaling-policy", *a, "--policy-name", "mem",
             "--policy-type", "TargetTrackingScaling",
             "--target-tracking-scaling-policy-configuration", cfg)
    step = json.dumps({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    cli.json("application-autoscaling", "put-scaling-policy", *a, "--policy-name", "step",
             "--policy-type", "StepScaling", "--step-scaling-policy-configuration", step)
    names = [p["PolicyName"] for p in cli.json("application-autoscaling",
                                               "describe-scaling-policies",
                                               "--service-namespace", "ecs")["ScalingPolicies"]]
    assert sorted(names) == ["mem", "step"]
    cli.json("application-autoscaling", "put-scheduled-action", *a, "--scheduled-action-name",
             "nightly", "--schedule", "cron(0 22 ? * MON-FRI *)", "--timezone",
             "Europe/Paris", "--scalable-target-action", "MinCapacity=1,MaxCapacity=2")
    sa = cli.json("application-autoscaling", "describe-scheduled-actions",
                  "--service-namespace", "ecs")["ScheduledActions"]
    assert sa[0]["Schedule"] == "cron(0 22 ? * MON-FRI *)" and sa[0]["Timezone"] == "Europe/Paris"
    cli.json("application-autoscaling", "describe-scaling-activities", "--service-namespace",
             "ecs")
    cli.json("application-autoscaling", "delete-scheduled-action", *a,
             "--scheduled-action-name", "nightly")
    cli.json("application-autoscaling", "delete-scaling-policy", *a, "--policy-name", "mem")
    cli.json("application-autoscaling", "deregister-scalable-target", *a)
    assert cli.json("application-autoscaling", "describe-scalable-targets",
                    "--service-namespace", "ecs")["ScalableTargets"] == []
