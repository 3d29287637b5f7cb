"""Target tracking on CPU (issue 11): a service whose container burns CPU on
demand scales out when it is busy and back in when it is idle, within its
bounds. Metrics come from the agent's cgroup readings every second."""
import os
import time

from conftest import Barged

RID = "service/default/burner"
DIM = "ecs:service:DesiredCount"
# Burns a core while /ctl/burn exists, idles otherwise.
BURNER = ("while true; do if [ -e /ctl/burn ]; then i=0; "
          "while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.2; fi; done")


def test_cpu_target_tracking_scales_out_and_in(tmp_path, agent_factory, busybox, barged):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    a = agent_factory("host1", extra_args=["--metrics-interval", "1"])
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
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="cpu50", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0, "ScaleOutCooldown": 2, "ScaleInCooldown": 2,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})

    def desired():
        return ecs.describe_services(cluster="default",
                                     services=["burner"])["services"][0]["desiredCount"]

    def wait(pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.5)
        acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
        raise AssertionError(f"timed out waiting for {what}; activities: {acts}")

    time.sleep(6)
    assert desired() == 1  # idle: nothing happens
    (ctl / "burn").write_text("1")
    wait(lambda: desired() >= 2, 90, "scale-out")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert "AlarmHigh" in acts[0]["Cause"] and acts[0]["StatusCode"] == "Successful"
    assert desired() <= 3  # never beyond the maximum
    os.unlink(ctl / "burn")
    wait(lambda: desired() == 1, 120, "scale-in")
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]
    assert "AlarmLow" in acts[0]["Cause"]
