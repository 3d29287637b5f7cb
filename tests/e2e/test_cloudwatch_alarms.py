"""CloudWatch metric alarms driving step scaling (issue 11): the CloudWatch
API subset through boto3 and the aws CLI (the query protocol) and through a
recent botocore pinned to each of CloudWatch's protocols (query, JSON 1.0,
Smithy RPC v2 CBOR), the alarm evaluator, and step scaling policies run by
alarms (SetAlarmState, and a CPU-burning service that scales out and back in
on two alarms)."""
import datetime
import glob
import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message

DIM = "ecs:service:DesiredCount"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
# Burns a core while /ctl/burn exists, idles otherwise.
BURNER = ("while true; do if [ -e /ctl/burn ]; then i=0; "
          "while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.2; fi; done")


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def alarm_args(name, **kw):
    a = dict(AlarmName=name, MetricName="CPUUtilization", Namespace="AWS/ECS",
             Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=50.0,
             ComparisonOperator="GreaterThanThreshold",
             Dimensions=[{"Name": "ClusterName", "Value": "default"},
                         {"Name": "ServiceName", "Value": "app"}])
    a.update(kw)
    return a


def test_alarm_crud_and_errors(barged):
    cw = barged.client("cloudwatch")
    for i in range(3):
        cw.put_metric_alarm(**alarm_args(f"alarm-{i}", AlarmDescription="d & <x>",
                                         DatapointsToAlarm=1))
    cw.put_metric_alarm(**alarm_args("other", Threshold=10.0,
                                     ComparisonOperator="LessThanThreshold",
                                     TreatMissingData="notBreaching"))
    alarms = cw.describe_alarms()["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == ["alarm-0", "alarm-1", "alarm-2", "other"]
    a = alarms[0]
    assert a["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:alarm-0"
    assert a["AlarmDescription"] == "d & <x>"
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["StateReason"] == "Unchecked: Initial alarm creation"
    assert a["Dimensions"] == [{"Name": "ClusterName", "Value": "default"},
                               {"Name": "ServiceName", "Value": "app"}]
    assert (a["Period"], a["EvaluationPeriods"], a["Threshold"]) == (60, 1, 50.0)
    assert isinstance(a["StateUpdatedTimestamp"], datetime.datetime)
    # Filters and paging.
    assert [x["AlarmName"] for x in cw.describe_alarms(AlarmNamePrefix="alarm-")
            ["MetricAlarms"]] == ["alarm-0", "alarm-1", "alarm-2"]
    assert [x["AlarmName"] for x in cw.describe_alarms(AlarmNames=["other", "alarm-1"])
            ["MetricAlarms"]] == ["alarm-1", "other"]
    page = cw.describe_alarms(MaxRecords=2)
    assert len(page["MetricAlarms"]) == 2
    rest = cw.describe_alarms(MaxRecords=2, NextToken=page["NextToken"])
    assert [x["AlarmName"] for x in rest["MetricAlarms"]] == ["alarm-2", "other"]
    assert "NextToken" not in rest
    names = [x["AlarmName"] for p in cw.get_paginator("describe_alarms").paginate(
        PaginationConfig={"PageSize": 1}) for x in p["MetricAlarms"]]
    assert len(names) == 4
    found = cw.describe_alarms_for_metric(
        MetricName="CPUUtilization", Namespace="AWS/ECS",
        Dimensions=[{"Name": "ServiceName", "Value": "app"},
                    {"Name": "ClusterName", "Value": "default"}])["MetricAlarms"]
    assert len(found) == 4
    assert cw.describe_alarms_for_metric(MetricName="MemoryUtilization",
                                         Namespace="AWS/ECS")["MetricAlarms"] == []
    # SetAlarmState, then the StateValue filter.
    cw.set_alarm_state(AlarmName="alarm-1", StateValue="ALARM", StateReason="testing",
                       StateReasonData=json.dumps({"recentDatapoints": [70.0]}))
    got = cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert [x["AlarmName"] for x in got] == ["alarm-1"]
    assert got[0]["StateReason"] == "testing"
    # An update keeps the state (and its missing data keeps it after).
    cw.put_metric_alarm(**alarm_args("alarm-1", Threshold=70.0, TreatMissingData="ignore"))
    got = cw.describe_alarms(AlarmNames=["alarm-1"])["MetricAlarms"][0]
    assert (got["StateValue"], got["Threshold"]) == ("ALARM", 70.0)
    cw.delete_alarms(AlarmNames=["alarm-0", "alarm-2"])
    assert [x["AlarmName"] for x in cw.describe_alarms()["MetricAlarms"]] == ["alarm-1", "other"]

    def err(fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        assert e.value.response["Error"]["Type"] == "Sender"
        return error_code(e), error_message(e)

    code, msg = err(cw.put_metric_alarm, **alarm_args("bad", Period=45))
    assert code == "InvalidParameterValue" and "'45'" in msg
    code, msg = err(cw.put_metric_alarm, **alarm_args("bad", EvaluationPeriods=2,
                                                      DatapointsToAlarm=3))
    assert code == "ValidationError" and "DatapointsToAlarm" in msg
    a = alarm_args("bad")
    del a["Statistic"]
    assert err(cw.put_metric_alarm, **a)[0] == "MissingParameter"
    code, msg = err(cw.put_metric_alarm, **alarm_args("x" * 300))
    assert code == "ValidationError" and "alarmName" in msg
    code, msg = err(cw.put_metric_alarm, **alarm_args("bad", TreatMissingData="maybe"))
    assert code == "ValidationError" and "'maybe'" in msg
    assert err(cw.set_alarm_state, AlarmName="nope", StateValue="OK",
               StateReason="x")[0] == "ResourceNotFound"
    assert err(cw.set_alarm_state, AlarmName="other", StateValue="OK", StateReason="x",
               StateReasonData="not json")[0] == "InvalidFormat"
    assert err(cw.describe_alarms, AlarmNames=["a"],
               AlarmNamePrefix="a")[0] == "InvalidParameterCombination"
    assert err(cw.describe_alarms, NextToken="!!")[0] == "InvalidNextToken"
    assert err(cw.delete_alarms, AlarmNames=["nope"])[0] == "ResourceNotFound"
    now = datetime.datetime.utcnow()
    code, msg = err(cw.get_metric_statistics, Namespace="AWS/ECS", MetricName="CPUUtilization",
                    StartTime=now, EndTime=now - datetime.timedelta(minutes=5), Period=60,
                    Statistics=["Average"])
    assert code == "InvalidParameterValue" and "StartTime" in msg
    code, msg = err(cw.get_metric_statistics, Namespace="AWS/ECS", MetricName="CPUUtilization",
                    StartTime=now - datetime.timedelta(days=2), EndTime=now, Period=60,
                    Statistics=["Average"])
    assert code == "InvalidParameterCombination" and "exceeds the limit" in msg


def test_aws_cli_alarms(barged, tmp_path):
    cli = AwsCli(barged, str(tmp_path))
    cli.json("cloudwatch", "put-metric-alarm", "--alarm-name", "cpu-high", "--metric-name",
             "CPUUtilization", "--namespace", "AWS/ECS", "--statistic", "Average",
             "--period", "60", "--evaluation-periods", "2", "--threshold", "75",
             "--comparison-operator", "GreaterThanOrEqualToThreshold", "--dimensions",
             "Name=ClusterName,Value=default", "Name=ServiceName,Value=web")
    alarms = cli.json("cloudwatch", "describe-alarms", "--alarm-names",
                      "cpu-high")["MetricAlarms"]
    assert alarms[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarms[0]["Threshold"] == 75.0
    cli.json("cloudwatch", "set-alarm-state", "--alarm-name", "cpu-high", "--state-value", "OK",
             "--state-reason", "by hand")
    assert cli.json("cloudwatch", "describe-alarms", "--state-value",
                    "OK")["MetricAlarms"][0]["StateReason"] == "by hand"
    got = cli.json("cloudwatch", "describe-alarms-for-metric", "--metric-name",
                   "CPUUtilization", "--namespace", "AWS/ECS")["MetricAlarms"]
    assert [a["AlarmName"] for a in got] == ["cpu-high"]
    p = cli.run("cloudwatch", "put-metric-alarm", "--alarm-name", "bad", "--metric-name",
                "CPUUtilization", "--namespace", "AWS/ECS", "--statistic", "Average",
                "--period", "7", "--evaluation-periods", "1", "--threshold", "1",
                "--comparison-operator", "GreaterThanThreshold", check=False)
    assert p.returncode != 0 and "InvalidParameterValue" in p.stderr
    cli.json("cloudwatch", "delete-alarms", "--alarm-names", "cpu-high")
    assert cli.json("cloudwatch", "describe-alarms")["MetricAlarms"] == []




def new_botocore_python():
    """A Python whose botocore (pip's, next to Debian's) speaks CloudWatch's
    three protocols, or None."""
    for utils in sorted(glob.glob("/root/.pyenv/versions/*/lib/python3*/site-packages/"
                                  "botocore/utils.py")):
        if "smithy-rpc-v2-cbor" in open(utils).read():
            return os.path.join(utils.split("/lib/python3")[0], "bin", "python3")
    return None


# Each run of the client pins one of the protocols.
NEW_PYTHON = new_botocore_python()
PROTOCOL_CLIENT = """
import datetime, sys
import botocore.model, botocore.session
botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (sys.argv[1],)
cw = botocore.session.get_session().create_client(
    "cloudwatch", endpoint_url=sys.argv[2], region_name="us-east-1",
    aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
assert cw.meta.service_model.resolved_protocol == sys.argv[1]
cw.put_metric_alarm(AlarmName="p", MetricName="CPUUtilization", Namespace="AWS/ECS",
                    Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=50.5,
                    ComparisonOperator="GreaterThanThreshold", AlarmActions=[],
                    Dimensions=[{"Name": "ClusterName", "Value": "default"}])
a = cw.describe_alarms(AlarmNames=["p"])["MetricAlarms"][0]
assert a["Threshold"] == 50.5 and a["Period"] == 60 and a["AlarmActions"] == []
assert isinstance(a["StateUpdatedTimestamp"], datetime.datetime)
assert a["Dimensions"] == [{"Name": "ClusterName", "Value": "default"}]
now = datetime.datetime.now(datetime.timezone.utc)
r = cw.get_metric_statistics(Namespace="AWS/ECS", MetricName="CPUUtilization",
                             StartTime=now - datetime.timedelta(minutes=5), EndTime=now,
                             Period=60, Statistics=["Average"])
assert r["Label"] == "CPUUtilization" and r["Datapoints"] == []
try:
    cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
    raise AssertionError("no error")
except cw.exceptions.ResourceNotFound as e:
    assert e.response["Error"]["Message"] == "Alarm nope not found"
try:
    cw.put_metric_alarm(AlarmName="p", MetricName="m", Namespace="n", Statistic="Average",
                        Period=45, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanThreshold")
    raise AssertionError("no error")
except cw.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidParameterValue", e.response
cw.delete_alarms(AlarmNames=["p"])
assert cw.describe_alarms()["MetricAlarms"] == []
print("ok")
"""


@pytest.mark.skipif(not NEW_PYTHON, reason="no recent botocore next to Debian's")
@pytest.mark.parametrize("protocol", ["query", "json", "smithy-rpc-v2-cbor"])
def test_each_protocol(barged, protocol):
    p = subprocess.run([NEW_PYTHON, "-c", PROTOCOL_CLIENT, protocol, barged.endpoint,
                        barged.access_key, barged.secret_key],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


@pytest.fixture
def service(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = ecs.register_task_definition(family="app", containerDefinitions=[
        {"name": "main", "image": busybox, "memory": 16, "command": SLEEPER}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="app", taskDefinition=td, desiredCount=1)
    return ecs


def desired(ecs, name="app"):
    return ecs.describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]


def step_policy(aas, rid, name, adjustments, adjustment_type="ChangeInCapacity", cooldown=300,
                **extra):
    cfg = {"AdjustmentType": adjustment_type, "StepAdjustments": adjustments,
           "Cooldown": cooldown, **extra}
    return aas.put_scaling_policy(PolicyName=name, ServiceNamespace="ecs", ResourceId=rid,
                                  ScalableDimension=DIM, PolicyType="StepScaling",
                                  StepScalingPolicyConfiguration=cfg)["PolicyARN"]


def test_actions_of_another_region_are_refused(barged):
    """A scaling policy of eu-west-1 cannot be an action of a us-east-1 alarm
    (CloudWatch's ValidationError); in its own region it can."""
    def regional(service, region):
        return boto3.client(service, endpoint_url=barged.endpoint, region_name=region,
                            aws_access_key_id=barged.access_key,
                            aws_secret_access_key=barged.secret_key)
    ecs = regional("ecs", "eu-west-1")
    ecs.create_cluster(clusterName="default")
    td = ecs.register_task_definition(family="app", containerDefinitions=[
        {"name": "main", "image": "busybox", "memory": 16}])["taskDefinition"]
    ecs.create_service(cluster="default", serviceName="app",
                       taskDefinition=td["taskDefinitionArn"], desiredCount=0)
    aas = regional("application-autoscaling", "eu-west-1")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId="service/default/app",
                                 ScalableDimension=DIM, MinCapacity=0, MaxCapacity=2)
    arn = step_policy(aas, "service/default/app", "out",
                      [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}])
    assert arn.split(":")[3] == "eu-west-1"
    cw = barged.client("cloudwatch")
    for field in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        with pytest.raises(ClientError) as e:
            cw.put_metric_alarm(**alarm_args("far", **{field: [arn]}))
        assert error_code(e) == "ValidationError"
        msg = error_message(e)
        assert msg.startswith("Invalid region eu-west-1 specified. Only us-east-1 is supported.")
        assert f"{field}: '{arn}'" in msg, msg
    with pytest.raises(ClientError) as e:
        cw.put_metric_alarm(**alarm_args("far", OKActions=[
            "arn:aws:sns:ap-south-1:000000000000:topic"]))
    assert "Invalid region ap-south-1 specified" in error_message(e)
    assert cw.describe_alarms(AlarmNames=["far"])["MetricAlarms"] == []
    # in the policy's own region the alarm is taken and linked to the policy
    regional("cloudwatch", "eu-west-1").put_metric_alarm(**alarm_args("near",
                                                                      AlarmActions=[arn]))
    pol = aas.describe_scaling_policies(ServiceNamespace="ecs",
                                        PolicyNames=["out"])["ScalingPolicies"][0]
    assert [a["AlarmName"] for a in pol["Alarms"]] == ["near"]


def test_set_alarm_state_runs_step_policy(barged, service):
    rid = "service/default/app"
    aas = barged.client("application-autoscaling")
    cw = barged.client("cloudwatch")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=4)
    arn = step_policy(aas, rid, "out", [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 3}])
    # A metric without data, whose missing data keeps the state: what
    # SetAlarmState sets holds, and the evaluator re-runs the action each
    # period while the alarm stays in ALARM.
    cw.put_metric_alarm(**alarm_args("manual", Namespace="Custom/Test", Period=10,
                                     TreatMissingData="ignore", AlarmActions=[arn]))
    pol = aas.describe_scaling_policies(ServiceNamespace="ecs",
                                        PolicyNames=["out"])["ScalingPolicies"][0]
    assert [a["AlarmName"] for a in pol["Alarms"]] == ["manual"]
    assert pol["Alarms"][0]["AlarmARN"].endswith(":alarm:manual")
    # Without datapoints the breach sits at the threshold: the first step.
    cw.set_alarm_state(AlarmName="manual", StateValue="ALARM", StateReason="test")
    wait_for(lambda: desired(service) == 2, what="the step policy")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert acts[0]["Cause"] == ("monitor alarm manual in state ALARM triggered policy out "
                                "changing the desired count from 1 to 2")
    assert acts[0]["Description"] == "Setting desired count to 2."
    assert acts[0]["StatusCode"] == "Successful"
    # Within the cooldown (300 s), neither a new ALARM nor the alarm staying
    # in ALARM over several evaluations scales again by the same step.
    cw.set_alarm_state(AlarmName="manual", StateValue="OK", StateReason="test")
    cw.set_alarm_state(AlarmName="manual", StateValue="ALARM", StateReason="test")
    time.sleep(25)
    assert desired(service) == 2
    assert cw.describe_alarms(AlarmNames=["manual"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    assert len(aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]) == 1
    # A larger breach within the cooldown: +3 from the capacity before the
    # scale-out that started it (1), so 4.
    cw.set_alarm_state(AlarmName="manual", StateValue="OK", StateReason="test")
    cw.set_alarm_state(AlarmName="manual", StateValue="ALARM", StateReason="test",
                       StateReasonData=json.dumps({"recentDatapoints": [95.0]}))
    wait_for(lambda: desired(service) == 4, what="the larger step")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert acts[0]["Cause"].endswith("changing the desired count from 2 to 4")

    # ExactCapacity beyond the maximum is held at the maximum.
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                 MaxCapacity=6)
    big = step_policy(aas, rid, "exact", [{"MetricIntervalLowerBound": 0,
                                           "ScalingAdjustment": 10}], "ExactCapacity", 0)
    cw.put_metric_alarm(**alarm_args("exact", Namespace="Custom/Test", Period=60,
                                     TreatMissingData="ignore", AlarmActions=[big]))
    cw.set_alarm_state(AlarmName="exact", StateValue="ALARM", StateReason="test")
    wait_for(lambda: desired(service) == 6, what="the maximum")
    time.sleep(3)
    assert desired(service) == 6

    # Suspended scale-in: a negative step does nothing, and does once resumed.
    down = step_policy(aas, rid, "in", [{"MetricIntervalUpperBound": 0,
                                         "ScalingAdjustment": -50}],
                       "PercentChangeInCapacity", 0, MinAdjustmentMagnitude=4)
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                 SuspendedState={"DynamicScalingInSuspended": True})
    cw.delete_alarms(AlarmNames=["exact", "manual"])
    cw.put_metric_alarm(**alarm_args("low", Namespace="Custom/Test", Period=60, Threshold=10.0,
                                     ComparisonOperator="LessThanThreshold",
                                     TreatMissingData="ignore", AlarmActions=[down]))
    cw.set_alarm_state(AlarmName="low", StateValue="ALARM", StateReason="test")
    time.sleep(4)
    assert desired(service) == 6
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                 SuspendedState={"DynamicScalingInSuspended": False})
    cw.set_alarm_state(AlarmName="low", StateValue="OK", StateReason="test")
    cw.set_alarm_state(AlarmName="low", StateValue="ALARM", StateReason="test")
    # -50% of 6 is -3, raised to the minimum magnitude of 4: 6 -> 2.
    wait_for(lambda: desired(service) == 2, what="the scale-in")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert acts[0]["Cause"] == ("monitor alarm low in state ALARM triggered policy in "
                                "changing the desired count from 6 to 2")

    # A policy among the OKActions runs when the alarm turns OK.
    up = step_policy(aas, rid, "when-ok", [{"MetricIntervalUpperBound": 0,
                                            "ScalingAdjustment": 1}])
    cw.put_metric_alarm(**alarm_args("calm", Namespace="Custom/Test", Period=60,
                                     TreatMissingData="ignore", OKActions=[up]))
    cw.set_alarm_state(AlarmName="calm", StateValue="OK", StateReason="test")
    wait_for(lambda: desired(service) == 3, what="the OK action")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert acts[0]["Cause"] == ("monitor alarm calm in state OK triggered policy when-ok "
                                "changing the desired count from 2 to 3")


def test_cpu_alarms_scale_out_and_in(tmp_path, agent_factory, busybox, barged):
    rid = "service/default/burner"
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    agent_factory("host1", extra_args=["--metrics-interval", "1"])
    ecs = barged.client("ecs")
    td = ecs.register_task_definition(
        family="burner",
        volumes=[{"name": "ctl", "host": {"sourcePath": str(ctl)}}],
        containerDefinitions=[{"name": "main", "image": busybox, "memory": 32, "cpu": 256,
                               "command": ["sh", "-c", BURNER],
                               "mountPoints": [{"sourceVolume": "ctl",
                                                "containerPath": "/ctl"}]}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="burner", taskDefinition=td,
                       desiredCount=1)
    aas = barged.client("application-autoscaling")
    cw = barged.client("cloudwatch")
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    out = step_policy(aas, rid, "cpu-out", [{"MetricIntervalLowerBound": 0,
                                             "ScalingAdjustment": 1}], cooldown=5)
    back = step_policy(aas, rid, "cpu-in", [{"MetricIntervalUpperBound": 0,
                                             "ScalingAdjustment": -1}], cooldown=5)
    dims = [{"Name": "ClusterName", "Value": "default"},
            {"Name": "ServiceName", "Value": "burner"}]
    cw.put_metric_alarm(**alarm_args("burner-high", Dimensions=dims, Period=10,
                                     AlarmActions=[out]))
    cw.put_metric_alarm(**alarm_args("burner-low", Dimensions=dims, Period=10,
                                     EvaluationPeriods=2, Threshold=10.0,
                                     ComparisonOperator="LessThanThreshold",
                                     AlarmActions=[back]))

    def state(name):
        return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]

    def activities():
        return aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]

    wait_for(lambda: state("burner-low")["StateValue"] == "ALARM", 90, "the idle alarm")
    low = state("burner-low")
    assert low["StateReason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints [")
    assert "were less than the threshold (10.0)" in low["StateReason"]
    assert json.loads(low["StateReasonData"])["statistic"] == "Average"
    assert state("burner-high")["StateValue"] == "OK"
    assert desired(ecs, "burner") == 1  # already at the minimum
    metrics = cw.list_metrics(Namespace="AWS/ECS", MetricName="CPUUtilization",
                              Dimensions=[{"Name": "ServiceName", "Value": "burner"}])["Metrics"]
    assert len(metrics) == 1 and sorted(d["Name"] for d in metrics[0]["Dimensions"]) == [
        "ClusterName", "ServiceName"]

    (ctl / "burn").write_text("1")
    try:
        wait_for(lambda: desired(ecs, "burner") >= 2, 120, "the scale-out")
        acts = activities()
        assert acts[0]["Cause"].startswith(
            "monitor alarm burner-high in state ALARM triggered policy cpu-out")
        assert state("burner-high")["StateReason"].startswith("Threshold Crossed: 1 datapoint [")
        now = datetime.datetime.utcnow()
        stats = cw.get_metric_statistics(
            Namespace="AWS/ECS", MetricName="CPUUtilization", Dimensions=dims,
            StartTime=now - datetime.timedelta(minutes=2), EndTime=now, Period=10,
            Statistics=["Average", "Maximum", "SampleCount"])
        assert stats["Label"] == "CPUUtilization"
        assert any(p["Average"] > 50 for p in stats["Datapoints"])
        assert all(p["Unit"] == "Percent" for p in stats["Datapoints"])
        wait_for(lambda: desired(ecs, "burner") == 3, 120, "the maximum")
        time.sleep(12)
        assert desired(ecs, "burner") == 3  # never beyond the maximum
    finally:
        os.unlink(ctl / "burn")
    wait_for(lambda: desired(ecs, "burner") == 1, 180, "the scale-in")
    acts = activities()
    assert acts[0]["Cause"].startswith(
        "monitor alarm burner-low in state ALARM triggered policy cpu-in")
    pol = aas.describe_scaling_policies(ServiceNamespace="ecs",
                                        PolicyNames=["cpu-in"])["ScalingPolicies"][0]
    assert [a["AlarmName"] for a in pol["Alarms"]] == ["burner-low"]
