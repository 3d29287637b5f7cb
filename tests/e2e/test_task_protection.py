"""Task scale-in protection (GetTaskProtection, UpdateTaskProtection) and the
service scheduler honouring it: a scale-in stops unprotected tasks and keeps
protected ones, a deployment keeps a protected old task until its protection
is lifted; input errors and per-task failures as ECS reports them."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message
from test_services import describe, register, running_tasks, stable, wait_for


def protection(ecs, arns):
    r = ecs.get_task_protection(cluster="default", tasks=arns)
    assert r["failures"] == []
    return {t["taskArn"]: t for t in r["protectedTasks"]}


def desired_status(ecs, arn):
    return ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["desiredStatus"]


def under_protection_event(ecs, name):
    return any("tasks under protection" in e["message"] for e in describe(ecs, name)["events"])


def test_scale_in_keeps_protected_tasks(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="p", taskDefinition=td, desiredCount=3)
    wait_for(lambda: stable(ecs, "p", 3), what="3 running")
    arns = sorted(t["taskArn"] for t in running_tasks(ecs, "p"))
    keep, other = arns[:2], arns[2]

    before = time.time()
    r = ecs.update_task_protection(cluster="default", tasks=keep, protectionEnabled=True)
    assert r["failures"] == []
    got = {t["taskArn"]: t for t in r["protectedTasks"]}
    assert set(got) == set(keep)
    for t in got.values():
        assert t["protectionEnabled"] is True
        # the default is 120 minutes
        left = t["expirationDate"].timestamp() - before
        assert 119 * 60 <= left <= 121 * 60
    assert protection(ecs, [other])[other]["protectionEnabled"] is False

    ecs.update_service(cluster="default", service="p", desiredCount=1)
    wait_for(lambda: under_protection_event(ecs, "p"), what="the protection event")
    assert desired_status(ecs, other) == "STOPPED"
    for arn in keep:
        assert desired_status(ecs, arn) == "RUNNING"

    # lifting the protection of one lets the scale-in finish with the other
    r = ecs.update_task_protection(cluster="default", tasks=[keep[1]], protectionEnabled=False)
    assert r["protectedTasks"][0]["protectionEnabled"] is False
    assert "expirationDate" not in r["protectedTasks"][0]
    wait_for(lambda: stable(ecs, "p", 1), what="back to 1")
    assert desired_status(ecs, keep[1]) == "STOPPED"
    assert desired_status(ecs, keep[0]) == "RUNNING"
    assert protection(ecs, [keep[0]])[keep[0]]["protectionEnabled"] is True

    # protection does not hold off deleting the service
    ecs.delete_service(cluster="default", service="p", force=True)
    wait_for(lambda: describe(ecs, "p")["status"] == "INACTIVE", what="INACTIVE")
    assert desired_status(ecs, keep[0]) == "STOPPED"


def test_deployment_waits_for_protected_old_task(barged, agent, busybox):
    ecs = barged.client("ecs")
    v1 = register(ecs, busybox)
    ecs.create_service(cluster="default", serviceName="d", taskDefinition=v1, desiredCount=2,
                       deploymentConfiguration={"minimumHealthyPercent": 50,
                                                "maximumPercent": 200})
    wait_for(lambda: stable(ecs, "d", 2), what="2 running")
    old = sorted(t["taskArn"] for t in running_tasks(ecs, "d"))
    ecs.update_task_protection(cluster="default", tasks=[old[0]], protectionEnabled=True,
                               expiresInMinutes=30)
    v2 = register(ecs, busybox, environment=[{"name": "V", "value": "2"}])
    ecs.update_service(cluster="default", service="d", taskDefinition=v2)

    def new_running():
        s = describe(ecs, "d")
        prim = [d for d in s["deployments"] if d["status"] == "PRIMARY"][0]
        return prim["runningCount"] == 2 and under_protection_event(ecs, "d") and s
    s = wait_for(new_running, what="the new tasks running beside the protected one")
    assert len(s["deployments"]) == 2
    assert desired_status(ecs, old[1]) == "STOPPED"
    assert desired_status(ecs, old[0]) == "RUNNING"

    ecs.update_task_protection(cluster="default", tasks=[old[0]], protectionEnabled=False)
    wait_for(lambda: stable(ecs, "d", 2), what="the deployment to complete")
    assert desired_status(ecs, old[0]) == "STOPPED"
    assert {t["taskDefinitionArn"] for t in running_tasks(ecs, "d")
            if t["desiredStatus"] == "RUNNING"} == {v2}


def test_protection_failures_and_errors(barged, agent, busybox):
    ecs = barged.client("ecs")
    td = register(ecs, busybox, family="solo")
    solo = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    ghost = solo.rsplit("/", 1)[0] + "/00000000000000000000000000000000"
    r = ecs.update_task_protection(cluster="default", tasks=[solo, ghost], protectionEnabled=True)
    assert r["protectedTasks"] == []
    reasons = {f["arn"]: f["reason"] for f in r["failures"]}
    assert reasons == {solo: "TASK_NOT_VALID", ghost: "MISSING"}
    g = ecs.get_task_protection(cluster="default", tasks=[ghost])
    assert g["failures"] == [{"arn": ghost, "reason": "MISSING"}]

    for minutes in (0, 2881):
        with pytest.raises(ClientError) as e:
            ecs.update_task_protection(cluster="default", tasks=[solo], protectionEnabled=True,
                                       expiresInMinutes=minutes)
        assert error_code(e) == "InvalidParameterException"
        assert "expiresInMinutes" in error_message(e) and str(minutes) in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.update_task_protection(cluster="default", tasks=[solo] * 11, protectionEnabled=True)
    assert error_code(e) == "InvalidParameterException"
    # GetTaskProtection takes up to 100
    assert len(ecs.get_task_protection(cluster="default", tasks=[ghost] * 100)["failures"]) == 100
    with pytest.raises(ClientError) as e:
        ecs.get_task_protection(cluster="default", tasks=[ghost] * 101)
    assert error_code(e) == "InvalidParameterException" and "100" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.get_task_protection(cluster="nope", tasks=[solo])
    assert error_code(e) == "ClusterNotFoundException"
