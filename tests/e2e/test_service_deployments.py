"""Service deployment history (ListServiceDeployments,
DescribeServiceDeployments, DescribeServiceRevisions) and
StopServiceDeployment on a real service run by an agent: each deployment
records the revision it rolls out and the revisions it replaces, its status
follows the rollout, a ROLLBACK stop returns the service to the revision it
ran before, and the history survives a restart of barged. Debian's botocore
predates these operations, so they are called as signed JSON by hand."""
from conftest import ecs_raw
from test_services import describe, register, stable, wait_for


def call(barged, op, body):
    status, out = ecs_raw(barged, op, body)
    assert status == 200, (op, status, out)
    return out


def fails(barged, op, body):
    status, out = ecs_raw(barged, op, body)
    assert status >= 400, (op, status, out)
    return out.get("__type", "").split("#")[-1], out.get("message", "")


def deployments(barged, service, **kw):
    return call(barged, "ListServiceDeployments",
                {"cluster": "default", "service": service, **kw})["serviceDeployments"]


def deployment(barged, arn):
    out = call(barged, "DescribeServiceDeployments", {"serviceDeploymentArns": [arn]})
    assert out["failures"] == []
    return out["serviceDeployments"][0]


def revision(barged, arn):
    out = call(barged, "DescribeServiceRevisions", {"serviceRevisionArns": [arn]})
    assert out["failures"] == []
    return out["serviceRevisions"][0]


def status_is(barged, service, index, status):
    ds = deployments(barged, service)
    return len(ds) > index and ds[index]["status"] == status and ds


def test_history_of_two_deployments(barged, agent, busybox):
    ecs = barged.client("ecs")
    v1 = register(ecs, busybox)
    svc = ecs.create_service(cluster="default", serviceName="h", taskDefinition=v1,
                             desiredCount=2)["service"]
    wait_for(lambda: stable(ecs, "h", 2), what="v1 steady")
    first = wait_for(lambda: status_is(barged, "h", 0, "SUCCESSFUL"), what="v1 SUCCESSFUL")[0]
    assert first["serviceArn"] == svc["serviceArn"]
    assert first["clusterArn"] == svc["clusterArn"]
    assert ":service-deployment/default/h/" in first["serviceDeploymentArn"]
    assert first["finishedAt"] >= first["startedAt"]

    v2 = register(ecs, busybox, environment=[{"name": "V", "value": "2"}])
    ecs.update_service(cluster="default", service="h", taskDefinition=v2)
    wait_for(lambda: stable(ecs, "h", 2) and describe(ecs, "h")["taskDefinition"] == v2,
             what="v2 steady")
    ds = wait_for(lambda: status_is(barged, "h", 0, "SUCCESSFUL"), what="v2 SUCCESSFUL")
    # newest first
    assert [d["serviceDeploymentArn"] for d in ds][1:] == [first["serviceDeploymentArn"]]
    second = deployment(barged, ds[0]["serviceDeploymentArn"])
    assert second["status"] == "SUCCESSFUL"
    assert second["targetServiceRevision"]["arn"] == ds[0]["targetServiceRevisionArn"]
    assert second["targetServiceRevision"]["runningTaskCount"] == 2
    assert second["targetServiceRevision"]["requestedTaskCount"] == 2
    assert [s["arn"] for s in second["sourceServiceRevisions"]] == \
        [first["targetServiceRevisionArn"]]
    assert second["deploymentConfiguration"]["maximumPercent"] == 200
    assert second["deploymentCircuitBreaker"]["status"] == "DISABLED"
    assert "rollback" not in second

    r1 = revision(barged, first["targetServiceRevisionArn"])
    r2 = revision(barged, second["targetServiceRevision"]["arn"])
    assert ":service-revision/default/h/" in r1["serviceRevisionArn"]
    assert r1["taskDefinition"] == v1 and r2["taskDefinition"] == v2
    assert r2["serviceArn"] == svc["serviceArn"]
    assert r2["launchType"] == "EC2"
    assert r2["containerImages"] == [{"containerName": "main", "image": busybox}]

    # filters and paging
    assert deployments(barged, "h", status=["IN_PROGRESS"]) == []
    assert len(deployments(barged, "h", status=["SUCCESSFUL", "STOPPED"])) == 2
    after = deployments(barged, "h", createdAt={"after": first["createdAt"]})
    assert [d["serviceDeploymentArn"] for d in after] == [second["serviceDeploymentArn"]]
    before = deployments(barged, "h", createdAt={"before": second["createdAt"]})
    assert [d["serviceDeploymentArn"] for d in before] == [first["serviceDeploymentArn"]]
    page = call(barged, "ListServiceDeployments", {"service": "h", "maxResults": 1})
    assert [d["serviceDeploymentArn"] for d in page["serviceDeployments"]] == \
        [second["serviceDeploymentArn"]]
    rest = call(barged, "ListServiceDeployments",
                {"service": "h", "maxResults": 1, "nextToken": page["nextToken"]})
    assert [d["serviceDeploymentArn"] for d in rest["serviceDeployments"]] == \
        [first["serviceDeploymentArn"]]
    assert "nextToken" not in rest

    # what the history notes on the service's deployments stays inside barged
    raw = call(barged, "DescribeServices", {"services": ["h"]})["services"][0]
    assert [k for d in raw["deployments"] for k in d if k.startswith("_")] == []

    # the history is stored, not kept in memory
    barged.restart()
    assert deployment(barged, second["serviceDeploymentArn"]) == second
    assert revision(barged, r1["serviceRevisionArn"]) == r1


def test_stop_rolls_back_to_the_previous_revision(barged, agent, busybox):
    ecs = barged.client("ecs")
    good = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="s", taskDefinition=good, desiredCount=1)
    wait_for(lambda: stable(ecs, "s", 1), what="good steady")
    first = wait_for(lambda: status_is(barged, "s", 0, "SUCCESSFUL"), what="SUCCESSFUL")[0]

    # without a circuit breaker a deployment whose tasks exit stays in progress
    bad = register(ecs, busybox, command=["sh", "-c", "exit 1"])
    ecs.update_service(cluster="default", service="s", taskDefinition=bad)
    current = deployments(barged, "s")[0]
    assert current["status"] == "IN_PROGRESS"
    arn = current["serviceDeploymentArn"]
    out = call(barged, "StopServiceDeployment", {"serviceDeploymentArn": arn,
                                                 "stopType": "ROLLBACK"})
    assert out == {"serviceDeploymentArn": arn}
    d = deployment(barged, arn)
    assert d["status"] in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL")
    assert d["rollback"]["serviceRevisionArn"] == first["targetServiceRevisionArn"]
    assert "StopServiceDeployment" in d["rollback"]["reason"]

    s = wait_for(lambda: stable(ecs, "s", 1), timeout=120, what="rolled back")
    assert s["taskDefinition"] == good
    d = wait_for(lambda: (lambda x: x["status"] == "ROLLBACK_SUCCESSFUL" and x)(
        deployment(barged, arn)), what="ROLLBACK_SUCCESSFUL")
    assert d["finishedAt"] >= d["startedAt"]
    assert [x["status"] for x in deployments(barged, "s")] == \
        ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]

    # a finished deployment cannot be stopped, nor one without an earlier revision
    assert fails(barged, "StopServiceDeployment", {"serviceDeploymentArn": arn})[0] == \
        "ConflictException"
    code, msg = fails(barged, "StopServiceDeployment",
                      {"serviceDeploymentArn": first["serviceDeploymentArn"]})
    assert code == "ConflictException" and "SUCCESSFUL" in msg


def test_superseded_deployment_is_stopped(barged, agent, busybox):
    ecs = barged.client("ecs")
    v1 = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="x", taskDefinition=v1, desiredCount=1)
    ecs.update_service(cluster="default", service="x",
                       taskDefinition=register(ecs, busybox, environment=[{"name": "V",
                                                                           "value": "2"}]))
    ds = deployments(barged, "x")
    assert len(ds) == 2
    assert ds[1]["status"] == "STOPPED"
    older = deployment(barged, ds[1]["serviceDeploymentArn"])
    assert "Superseded by service deployment" in older["statusReason"]
    assert "stoppedAt" in older
    newer = deployment(barged, ds[0]["serviceDeploymentArn"])
    assert [s["arn"] for s in newer["sourceServiceRevisions"]] == \
        [ds[1]["targetServiceRevisionArn"]]


def test_errors(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="e", taskDefinition=td, desiredCount=0)
    first = deployments(barged, "e")[0]
    arn = first["serviceDeploymentArn"]

    assert fails(barged, "ListServiceDeployments", {"service": "nope"})[0] == \
        "ServiceNotFoundException"
    assert fails(barged, "ListServiceDeployments", {"service": "e", "cluster": "nope"})[0] == \
        "ClusterNotFoundException"
    code, msg = fails(barged, "ListServiceDeployments", {"service": "e", "status": ["DONE"]})
    assert code == "InvalidParameterException" and "'DONE'" in msg
    code, msg = fails(barged, "ListServiceDeployments", {"service": "e", "maxResults": 101})
    assert code == "InvalidParameterException"

    code, msg = fails(barged, "DescribeServiceDeployments", {"serviceDeploymentArns": ["bad"]})
    assert code == "InvalidParameterException" and "'bad'" in msg
    assert fails(barged, "DescribeServiceDeployments",
                 {"serviceDeploymentArns": [arn] * 21})[0] == "InvalidParameterException"
    assert fails(barged, "DescribeServiceRevisions",
                 {"serviceRevisionArns": []})[0] == "InvalidParameterException"
    missing = arn.rsplit("/", 1)[0] + "/0000000000000000000"
    out = call(barged, "DescribeServiceDeployments", {"serviceDeploymentArns": [arn, missing]})
    assert [d["serviceDeploymentArn"] for d in out["serviceDeployments"]] == [arn]
    assert out["failures"] == [{"arn": missing, "reason": "MISSING",
                                "detail": "The resource does not exist."}]
    rmissing = missing.replace(":service-deployment/", ":service-revision/")
    out = call(barged, "DescribeServiceRevisions", {"serviceRevisionArns": [rmissing]})
    assert out["serviceRevisions"] == [] and out["failures"][0]["arn"] == rmissing

    assert fails(barged, "StopServiceDeployment", {"serviceDeploymentArn": missing})[0] == \
        "ServiceDeploymentNotFoundException"
    code, msg = fails(barged, "StopServiceDeployment",
                      {"serviceDeploymentArn": arn, "stopType": "ABORT"})
    assert code == "InvalidParameterException" and "'ABORT'" in msg
    code, msg = fails(barged, "StopServiceDeployment", {"serviceDeploymentArn": "x"})
    assert code == "InvalidParameterException" and "'x'" in msg


def test_continue_answers_for_a_deployment_not_at_a_hook(barged, busybox):
    """ContinueServiceDeployment acts on a deployment paused at a lifecycle
    hook; barge's rolling deployments never pause, so a known deployment is
    one whose hook is not AWAITING_ACTION."""
    ecs = barged.client("ecs")
    ecs.create_cluster()
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="c", taskDefinition=td, desiredCount=0)
    arn = deployments(barged, "c")[0]["serviceDeploymentArn"]
    for action in ("CONTINUE", "ROLLBACK"):
        code, msg = fails(barged, "ContinueServiceDeployment",
                          {"serviceDeploymentArn": arn, "hookId": "ecs-pause-1",
                           "action": action})
        assert code == "InvalidParameterException"
        assert "'ecs-pause-1'" in msg and "AWAITING_ACTION" in msg
    missing = arn.rsplit("/", 1)[0] + "/0000000000000000000"
    assert fails(barged, "ContinueServiceDeployment",
                 {"serviceDeploymentArn": missing, "hookId": "h"})[0] == \
        "ServiceDeploymentNotFoundException"
    code, msg = fails(barged, "ContinueServiceDeployment",
                      {"serviceDeploymentArn": "x", "hookId": "h"})
    assert code == "InvalidParameterException" and "'x'" in msg


def test_circuit_breaker_rollback_is_recorded(barged, agent, busybox):
    ecs = barged.client("ecs")
    good = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="cb", taskDefinition=good, desiredCount=1,
                       deploymentConfiguration={
                           "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    first = wait_for(lambda: status_is(barged, "cb", 0, "SUCCESSFUL"), what="SUCCESSFUL")[0]
    assert deployment(barged, first["serviceDeploymentArn"])["deploymentCircuitBreaker"][
        "status"] == "MONITORING_COMPLETE"
    # Its tasks never start (no such program), so they fail before they are
    # RUNNING however loaded the host is: an `exit 1` task could show RUNNING
    # for a moment and complete the deployment before the breaker saw it fail.
    bad = register(ecs, busybox, command=["/no/such/program"])
    ecs.update_service(cluster="default", service="cb", taskDefinition=bad)
    arn = deployments(barged, "cb")[0]["serviceDeploymentArn"]
    assert deployment(barged, arn)["deploymentCircuitBreaker"]["status"] == "MONITORING"
    d = wait_for(lambda: (lambda x: x["status"] == "ROLLBACK_SUCCESSFUL" and x)(
        deployment(barged, arn)), timeout=180, what="ROLLBACK_SUCCESSFUL")
    cb = d["deploymentCircuitBreaker"]
    assert cb["status"] == "TRIGGERED"
    assert cb["failureCount"] >= cb["threshold"] == 3
    assert d["rollback"]["serviceRevisionArn"] == first["targetServiceRevisionArn"]
    assert "circuit breaker" in d["rollback"]["reason"]
    assert describe(ecs, "cb")["taskDefinition"] == good


def test_history_is_pruned_after_the_retention(tmp_path):
    """Finished deployments older than --deployment-retention (ECS: 90 days)
    leave the history with the revisions only they named; the service's
    current deployment and revision stay. No agent: desiredCount 0."""
    from conftest import Barged
    b = Barged(str(tmp_path / "data"), extra_args=["--deployment-retention", "1"]).start()
    try:
        ecs = b.client("ecs")
        ecs.create_cluster(clusterName="default")
        td = register(ecs, "busybox")
        ecs.create_service(cluster="default", serviceName="p", taskDefinition=td, desiredCount=0)
        first = deployments(b, "p")[0]
        for _ in range(3):
            ecs.update_service(cluster="default", service="p", forceNewDeployment=True)
        assert len(deployments(b, "p")) == 4
        newest = deployments(b, "p")[0]
        left = wait_for(lambda: (lambda ds: len(ds) == 1 and ds)(deployments(b, "p")),
                        what="the history pruned to the current deployment")
        assert left[0]["serviceDeploymentArn"] == newest["serviceDeploymentArn"]
        # The revisions the pruned deployments replaced stay while the
        # current one names them as its sources (which of them it names
        # depends on how far the scheduler drained the earlier ones when it
        # opened); after one more deployment nothing names the first.
        sources = deployment(b, newest["serviceDeploymentArn"])["sourceServiceRevisions"]
        for src in sources:
            assert revision(b, src["arn"])
        ecs.update_service(cluster="default", service="p", forceNewDeployment=True)
        latest = deployments(b, "p")[0]
        assert latest["serviceDeploymentArn"] != newest["serviceDeploymentArn"]
        wait_for(lambda: [d["serviceDeploymentArn"] for d in deployments(b, "p")] ==
                 [latest["serviceDeploymentArn"]], what="the previous deployment pruned")

        def gone():
            out = call(b, "DescribeServiceRevisions",
                       {"serviceRevisionArns": [first["targetServiceRevisionArn"]]})
            return out["serviceRevisions"] == [] and len(out["failures"]) == 1
        wait_for(gone, what="the first revision pruned")
        assert revision(b, latest["targetServiceRevisionArn"])["taskDefinition"] == td
    finally:
        b.stop()


def test_deployment_alarms_fail_and_roll_back(barged, agent, busybox):
    """deploymentConfiguration.alarms: a rolling update stays IN_PROGRESS
    while it bakes (period x evaluation periods of its alarms) once steady;
    an alarm going off meanwhile fails it and, with rollback, returns the
    service to the last completed revision. Without rollback the deployment
    just fails and the new revision keeps running."""
    ecs, cw = barged.client("ecs"), barged.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="deploy-guard", MetricName="CPUUtilization",
                        Namespace="AWS/ECS", Statistic="Average", Period=10,
                        EvaluationPeriods=1, Threshold=99.0,
                        ComparisonOperator="GreaterThanThreshold",
                        Dimensions=[{"Name": "ClusterName", "Value": "default"},
                                    {"Name": "ServiceName", "Value": "guarded"}])
    good = register(ecs, busybox)
    alarms = {"alarmNames": ["deploy-guard"], "enable": True, "rollback": True}
    # Debian's botocore predates deploymentConfiguration.alarms
    call(barged, "CreateService", {"cluster": "default", "serviceName": "guarded",
                                   "taskDefinition": good, "desiredCount": 1,
                                   "deploymentConfiguration": {"alarms": alarms}})
    first = wait_for(lambda: status_is(barged, "guarded", 0, "SUCCESSFUL"), timeout=120,
                     what="v1 SUCCESSFUL after its bake")[0]
    rec = deployment(barged, first["serviceDeploymentArn"])
    assert rec["alarms"] == {"status": "MONITORING_COMPLETE", "alarmNames": ["deploy-guard"]}

    v2 = register(ecs, busybox, environment=[{"name": "V", "value": "2"}])
    ecs.update_service(cluster="default", service="guarded", taskDefinition=v2)
    # steady on v2, but still baking
    def baking(td):
        s = describe(ecs, "guarded")
        return (len(s["deployments"]) == 1 and s["runningCount"] == 1 and
                s["taskDefinition"] == td and
                s["deployments"][0]["rolloutState"] == "IN_PROGRESS")

    wait_for(lambda: baking(v2), what="v2 running and baking")
    arn = deployments(barged, "guarded")[0]["serviceDeploymentArn"]
    assert deployment(barged, arn)["alarms"]["status"] == "MONITORING"
    cw.set_alarm_state(AlarmName="deploy-guard", StateValue="ALARM", StateReason="test")
    d = wait_for(lambda: (lambda x: x["status"] == "ROLLBACK_SUCCESSFUL" and x)(
        deployment(barged, arn)), timeout=120, what="ROLLBACK_SUCCESSFUL")
    assert d["alarms"]["status"] == "TRIGGERED"
    assert d["alarms"]["triggeredAlarmNames"] == ["deploy-guard"]
    assert "deploy-guard" in d["rollback"]["reason"]
    assert d["deploymentCircuitBreaker"]["status"] != "TRIGGERED"
    assert describe(ecs, "guarded")["taskDefinition"] == good
    events = [e["message"] for e in describe(ecs, "guarded")["events"]]
    assert any("deploy-guard" in m and "deployment failed" in m for m in events), events

    # without rollback: failed, v3 stays
    cw.set_alarm_state(AlarmName="deploy-guard", StateValue="OK", StateReason="test")
    call(barged, "UpdateService", {"cluster": "default", "service": "guarded",
                                   "deploymentConfiguration": {
                                       "alarms": dict(alarms, rollback=False)}})
    v3 = register(ecs, busybox, environment=[{"name": "V", "value": "3"}])
    ecs.update_service(cluster="default", service="guarded", taskDefinition=v3)
    wait_for(lambda: baking(v3), what="v3 running and baking")
    cw.set_alarm_state(AlarmName="deploy-guard", StateValue="ALARM", StateReason="test")
    dep = wait_for(lambda: (lambda x: x["rolloutState"] == "FAILED" and x)(
        describe(ecs, "guarded")["deployments"][0]), timeout=60, what="v3 FAILED")
    assert "deploy-guard" in dep["rolloutStateReason"]
    assert describe(ecs, "guarded")["taskDefinition"] == v3
