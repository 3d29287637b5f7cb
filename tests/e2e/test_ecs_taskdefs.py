"""Task definitions through boto3: registration with ECS's validation,
revisions, describe by every identifier form, listing and paging, families,
deregistration and deletion."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ecs_raw, error_code, error_message

TD_ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition/"


def web(**over):
    c = {"name": "web", "image": "busybox", "memory": 64, "essential": True,
         "command": ["sh", "-c", "echo hi"]}
    c.update(over)
    return c


def register(ecs, family="web", containers=None, **kw):
    for c in containers or []:
        if "memory" in c and c["memory"] is None:
            del c["memory"]
    return ecs.register_task_definition(family=family,
                                        containerDefinitions=containers or [web()], **kw)


def test_register_fills_in_ecs_defaults(ecs):
    r = register(ecs, tags=[{"key": "k", "value": "v"}])
    td = r["taskDefinition"]
    assert td["taskDefinitionArn"] == TD_ARN + "web:1"
    assert td["family"] == "web" and td["revision"] == 1 and td["status"] == "ACTIVE"
    assert td["compatibilities"] == ["EC2"]
    assert td["registeredBy"] == "arn:aws:iam::000000000000:root"
    assert abs(td["registeredAt"].timestamp() - time.time()) < 60
    c = td["containerDefinitions"][0]
    assert c["cpu"] == 0 and c["essential"] is True
    assert c["portMappings"] == [] and c["environment"] == [] and c["mountPoints"] == []
    assert td["volumes"] == [] and td["placementConstraints"] == []
    assert r["tags"] == [{"key": "k", "value": "v"}]


def test_revisions_are_never_reused(ecs, barged):
    assert register(ecs)["taskDefinition"]["revision"] == 1
    assert register(ecs)["taskDefinition"]["revision"] == 2
    ecs.deregister_task_definition(taskDefinition="web:1")
    ecs.deregister_task_definition(taskDefinition="web:2")
    status, _ = ecs_raw(barged, "DeleteTaskDefinitions",
                        {"taskDefinitions": ["web:1", "web:2"]})
    assert status == 200
    assert register(ecs)["taskDefinition"]["revision"] == 3


def test_describe_by_family_revision_and_arn(ecs):
    register(ecs)
    register(ecs, containers=[web(image="busybox:2")])
    latest = ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]
    assert latest["revision"] == 2
    one = ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"]
    assert one["containerDefinitions"][0]["image"] == "busybox"
    by_arn = ecs.describe_task_definition(taskDefinition=TD_ARN + "web:2")["taskDefinition"]
    assert by_arn["revision"] == 2
    # the family resolves to the latest ACTIVE revision
    ecs.deregister_task_definition(taskDefinition="web:2")
    assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 1
    # an INACTIVE revision stays describable by number
    assert ecs.describe_task_definition(
        taskDefinition="web:2")["taskDefinition"]["status"] == "INACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.describe_task_definition(taskDefinition="nope")
    assert error_code(e) == "ClientException"
    with pytest.raises(ClientError) as e:
        ecs.describe_task_definition(taskDefinition="web:x")
    assert error_code(e) == "ClientException"


def test_describe_include_tags(ecs):
    register(ecs, tags=[{"key": "a", "value": "b"}])
    r = ecs.describe_task_definition(taskDefinition="web:1", include=["TAGS"])
    assert r["tags"] == [{"key": "a", "value": "b"}]
    assert "tags" not in ecs.describe_task_definition(taskDefinition="web:1")


@pytest.mark.parametrize("containers,kw,needle", [
    ([web(memory=None)], {}, "memory"),
    ([web(memory=4)], {}, "6 MiB"),
    ([web(memory=64, memoryReservation=128)], {}, "memoryReservation"),
    ([web(), web()], {}, "Duplicate container name"),
    ([web(essential=False)], {}, "essential"),
    ([web(name="bad name")], {}, "bad name"),
    ([web(dependsOn=[{"containerName": "db", "condition": "START"}])], {}, "'db'"),
    ([web(healthCheck={"command": ["curl"]})], {}, "CMD"),
    ([web(healthCheck={"command": ["CMD", "true"], "interval": 1})], {}, "interval"),
    ([web(portMappings=[{"containerPort": 80, "hostPort": 8080}])],
     {"networkMode": "awsvpc"}, "must match"),
    ([web()], {"requiresCompatibilities": ["FARGATE"], "networkMode": "bridge"}, "awsvpc"),
    ([web()], {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "4096"}, "No Fargate configuration"),
    ([web()], {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "memory": "512"}, "'cpu'"),
    ([web(mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}])], {}, "'data'"),
    ([web(secrets=[{"name": "A", "valueFrom": "p"}, {"name": "A", "valueFrom": "q"}])], {},
     "'A'"),
    ([web(environmentFiles=[{"type": "s3", "value": "bucket/key"}])], {}, "S3 object ARN"),
    ([web()], {"cpu": "lots"}, "'lots'"),
])
def test_register_rejects_invalid(ecs, containers, kw, needle):
    with pytest.raises(ClientError) as e:
        register(ecs, containers=containers, **kw)
    assert error_code(e) == "ClientException", error_message(e)
    assert needle in error_message(e)
    # nothing was stored
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []


def test_register_rejects_model_violations(ecs):
    with pytest.raises(ClientError) as e:
        register(ecs, networkMode="bridged")
    assert error_code(e) == "InvalidParameterException"
    assert "networkMode" in error_message(e)


def test_restart_policy_rules(barged):
    # Debian's botocore predates restartPolicy, so this goes by hand.
    body = {"family": "rp", "containerDefinitions": [
        {"name": "c", "image": "busybox", "memory": 32,
         "restartPolicy": {"enabled": True, "restartAttemptPeriod": 10}}]}
    status, r = ecs_raw(barged, "RegisterTaskDefinition", body)
    assert status == 400 and r["__type"] == "ClientException"
    assert "restartAttemptPeriod" in r["message"]
    body["containerDefinitions"][0]["restartPolicy"]["restartAttemptPeriod"] = 60
    status, r = ecs_raw(barged, "RegisterTaskDefinition", body)
    assert status == 200
    assert r["taskDefinition"]["containerDefinitions"][0]["restartPolicy"]["enabled"] is True


def test_dependency_cycle(ecs):
    a = web(name="a", essential=True, dependsOn=[{"containerName": "b", "condition": "START"}])
    b = web(name="b", essential=True, dependsOn=[{"containerName": "a", "condition": "START"}])
    with pytest.raises(ClientError) as e:
        register(ecs, containers=[a, b])
    assert "cycle" in error_message(e)


def test_fargate_definition(ecs):
    td = register(ecs, family="fg", requiresCompatibilities=["FARGATE"],
                  networkMode="awsvpc", cpu="0.5 vCPU", memory="1 GB",
                  containers=[web(memory=None, portMappings=[{"containerPort": 80}])]
                  )["taskDefinition"]
    assert td["cpu"] == "512" and td["memory"] == "1024"
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    pm = td["containerDefinitions"][0]["portMappings"][0]
    assert pm["hostPort"] == 80 and pm["protocol"] == "tcp"
    assert {"name": "ecs.capability.task-eni"} in td["requiresAttributes"]


def test_health_check_defaults(ecs):
    td = register(ecs, containers=[web(healthCheck={"command": ["CMD-SHELL", "true"]})]
                  )["taskDefinition"]
    hc = td["containerDefinitions"][0]["healthCheck"]
    assert (hc["interval"], hc["timeout"], hc["retries"]) == (30, 5, 3)


def test_list_task_definitions(ecs):
    for fam in ("b", "a", "a-x"):
        register(ecs, family=fam)
        register(ecs, family=fam)
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    assert arns == [TD_ARN + x for x in ("a:1", "a:2", "a-x:1", "a-x:2", "b:1", "b:2")]
    desc = ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"]
    assert desc == list(reversed(arns))
    assert ecs.list_task_definitions(familyPrefix="a")["taskDefinitionArns"] == \
        [TD_ARN + "a:1", TD_ARN + "a:2"]
    ecs.deregister_task_definition(taskDefinition="b:1")
    assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == [TD_ARN + "b:1"]
    pages = list(ecs.get_paginator("list_task_definitions").paginate(
        PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [a for p in pages for a in p["taskDefinitionArns"]] == \
        [a for a in arns if a != TD_ARN + "b:1"]


def test_list_families(ecs):
    for fam in ("hello", "hello-world", "other"):
        register(ecs, family=fam)
    assert ecs.list_task_definition_families()["families"] == ["hello", "hello-world", "other"]
    assert ecs.list_task_definition_families(familyPrefix="hello")["families"] == \
        ["hello", "hello-world"]
    ecs.deregister_task_definition(taskDefinition="other:1")
    assert ecs.list_task_definition_families(status="ACTIVE")["families"] == \
        ["hello", "hello-world"]
    assert ecs.list_task_definition_families(status="INACTIVE")["families"] == ["other"]
    r = ecs.list_task_definition_families(maxResults=1)
    assert r["families"] == ["hello"] and "nextToken" in r


def test_deregister(ecs):
    register(ecs)
    td = ecs.deregister_task_definition(taskDefinition="web:1")["taskDefinition"]
    assert td["status"] == "INACTIVE" and "deregisteredAt" in td
    with pytest.raises(ClientError) as e:
        ecs.deregister_task_definition(taskDefinition="web")
    assert error_code(e) == "ClientException"
    with pytest.raises(ClientError) as e:
        ecs.deregister_task_definition(taskDefinition="web:9")
    assert error_code(e) == "ClientException"


def test_delete_task_definitions(ecs, barged):
    register(ecs)
    register(ecs)
    ecs.deregister_task_definition(taskDefinition="web:1")
    status, r = ecs_raw(barged, "DeleteTaskDefinitions",
                        {"taskDefinitions": ["web:1", "web:2", "web:7"]})
    assert status == 200
    assert [t["status"] for t in r["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    reasons = sorted(f["reason"] for f in r["failures"])
    assert reasons == ["TASK_DEFINITION_IS_ACTIVE", "TASK_DEFINITION_NOT_FOUND"]
    # nothing refers to it, so barged purges it soon after
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            ecs.describe_task_definition(taskDefinition="web:1")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ClientException"
            break
        time.sleep(0.5)
    else:
        pytest.fail("DELETE_IN_PROGRESS revision was never purged")
    assert ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"] == [TD_ARN + "web:2"]


def test_task_definition_tags(ecs):
    arn = register(ecs)["taskDefinition"]["taskDefinitionArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "x", "value": "y"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "x", "value": "y"}]


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_two_barged_on_one_store_see_each_others_changes(tmp_path, backend):
    """barged keeps parsed task definitions and the answers of task definition
    lookups and listings in memory; with two barged on one store (PostgreSQL,
    or one SQLite file: the second is a follower of the control loops but
    serves the API all the same), a revision one of them deregisters or
    deletes must show its new status through the other at once, for every way
    of reading it."""
    import os
    import secrets

    from conftest import Barged, postgres

    uri = (postgres().new_database() if backend == "postgres"
           else "sqlite://" + str(tmp_path / "shared.db"))
    key = tmp_path / "master.key"
    key.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key, 0o600)
    servers = [Barged(str(tmp_path / name), store=uri,
                      extra_args=["--master-key-file", str(key)]) for name in ("a", "b")]
    try:
        for b in servers:
            b.start()
        ea, eb = servers[0].client(), servers[1].client()
        register(ea, family="shared")
        register(ea, family="shared")
        # read both revisions through b, twice, by every form
        for _ in range(2):
            assert eb.describe_task_definition(taskDefinition="shared")[
                "taskDefinition"]["revision"] == 2
            for ident in ("shared:2", TD_ARN + "shared:2"):
                assert eb.describe_task_definition(taskDefinition=ident)[
                    "taskDefinition"]["status"] == "ACTIVE"
            assert eb.list_task_definitions(familyPrefix="shared")["taskDefinitionArns"] == [
                TD_ARN + "shared:1", TD_ARN + "shared:2"]

        ea.deregister_task_definition(taskDefinition="shared:2")
        assert eb.describe_task_definition(taskDefinition="shared")[
            "taskDefinition"]["revision"] == 1
        td = eb.describe_task_definition(taskDefinition="shared:2")["taskDefinition"]
        assert td["status"] == "INACTIVE" and "deregisteredAt" in td
        assert eb.list_task_definitions(familyPrefix="shared")["taskDefinitionArns"] == [
            TD_ARN + "shared:1"]
        assert eb.list_task_definitions(familyPrefix="shared", status="INACTIVE")[
            "taskDefinitionArns"] == [TD_ARN + "shared:2"]

        status, _ = ecs_raw(servers[0], "DeleteTaskDefinitions", {"taskDefinitions": ["shared:2"]})
        assert status == 200
        assert eb.describe_task_definition(taskDefinition=TD_ARN + "shared:2")[
            "taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
        assert eb.list_task_definitions(familyPrefix="shared", status="DELETE_IN_PROGRESS")[
            "taskDefinitionArns"] == [TD_ARN + "shared:2"]
        # and a change made through b shows through a, which cached it too
        assert ea.describe_task_definition(taskDefinition="shared:1")[
            "taskDefinition"]["status"] == "ACTIVE"
        eb.deregister_task_definition(taskDefinition="shared:1")
        assert ea.describe_task_definition(taskDefinition="shared:1")[
            "taskDefinition"]["status"] == "INACTIVE"
        with pytest.raises(ClientError) as e:
            ea.describe_task_definition(taskDefinition="shared")
        assert error_code(e) == "ClientException"
    finally:
        for b in servers:
            b.stop()
