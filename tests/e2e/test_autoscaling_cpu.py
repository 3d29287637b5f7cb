"""Target tracking on real CPU utilization (issues 8 and 11): agents report
their containers' usage, barged computes the service's
ECSServiceAverageCPUUtilization, and the scaler adds a task when a service
that burns a core against 1024 reserved units is above a 20% target (low, so
that a busy shared machine still shows it clearly above)."""
import time

from conftest import wait_task

RID = "service/default/hot"
DIM = "ecs:service:DesiredCount"
BURNER = ["sh", "-c", "trap 'exit 143' TERM; while :; do :; done"]


def test_target_tracking_scales_out_on_cpu(barged, agent_factory, busybox):
    barged.extra_args += ["--autoscale-interval", "1"]
    barged.restart()
    agent_factory(extra_args=["--metrics-interval", "1"])
    ecs = barged.client("ecs")
    aas = barged.client("application-autoscaling")
    td = ecs.register_task_definition(
        family="hot", cpu="1024", memory="64",
        containerDefinitions=[{"name": "main", "image": busybox, "command": BURNER}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName="hot", taskDefinition=td, desiredCount=1)
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=1, MaxCapacity=2)
    aas.put_scaling_policy(
        PolicyName="cpu20", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 20.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 300,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
    deadline = time.time() + 90
    svc = None
    while time.time() < deadline:
        svc = ecs.describe_services(cluster="default", services=["hot"])["services"][0]
        if svc["desiredCount"] == 2:
            break
        time.sleep(0.5)
    assert svc["desiredCount"] == 2, svc["events"][:3]
    acts = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID)
    causes = [a["Cause"] for a in acts["ScalingActivities"]]
    assert any("ECSServiceAverageCPUUtilization" in c for c in causes), causes
    ecs.delete_service(cluster="default", service="hot", force=True)
    for arn in ecs.list_tasks(cluster="default", serviceName="hot")["taskArns"]:
        wait_task(ecs, "default", arn)
