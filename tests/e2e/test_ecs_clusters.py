"""Clusters through boto3: create (idempotent), describe with include and
failures, list with paging, update, settings, delete rules and tags."""
import pytest
from botocore.exceptions import ClientError

from conftest import error_code, error_message

ARN = "arn:aws:ecs:us-east-1:000000000000:cluster/"


def test_create_is_idempotent_and_describable(ecs):
    c = ecs.create_cluster(clusterName="web")["cluster"]
    assert c["clusterArn"] == ARN + "web"
    assert c["clusterName"] == "web"
    assert c["status"] == "ACTIVE"
    assert c["registeredContainerInstancesCount"] == 0
    assert c["runningTasksCount"] == 0 and c["pendingTasksCount"] == 0
    assert c["activeServicesCount"] == 0
    again = ecs.create_cluster(clusterName="web")["cluster"]
    assert again["clusterArn"] == c["clusterArn"]
    assert ecs.list_clusters()["clusterArns"] == [ARN + "web"]


def test_create_without_name_makes_default(ecs):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    # describe without clusters describes the default cluster
    d = ecs.describe_clusters()
    assert [x["clusterName"] for x in d["clusters"]] == ["default"]


def test_describe_missing_reports_failure(ecs):
    ecs.create_cluster(clusterName="a")
    d = ecs.describe_clusters(clusters=["a", "nope", ARN + "a"])
    assert [c["clusterName"] for c in d["clusters"]] == ["a", "a"]
    assert d["failures"] == [{"arn": ARN + "nope", "reason": "MISSING"}]


def test_describe_default_missing(ecs):
    d = ecs.describe_clusters()
    assert d["clusters"] == []
    assert d["failures"][0]["reason"] == "MISSING"


def test_include_settings_tags_statistics(ecs):
    ecs.create_cluster(clusterName="inc", tags=[{"key": "team", "value": "blue"}],
                       settings=[{"name": "containerInsights", "value": "enabled"}])
    plain = ecs.describe_clusters(clusters=["inc"])["clusters"][0]
    assert "settings" not in plain
    assert plain.get("tags", []) == []
    full = ecs.describe_clusters(clusters=["inc"],
                                 include=["SETTINGS", "TAGS", "STATISTICS"])["clusters"][0]
    assert full["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert full["tags"] == [{"key": "team", "value": "blue"}]
    names = {s["name"] for s in full["statistics"]}
    assert "runningEC2TasksCount" in names and "activeEC2ServiceCount" in names


def test_invalid_cluster_name(ecs):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="bad name!")
    assert error_code(e) == "InvalidParameterException"
    assert "bad name!" in error_message(e)


def test_list_paging(ecs):
    names = [f"c{i:02d}" for i in range(7)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 3}
        if token:
            kw["nextToken"] = token
        r = ecs.list_clusters(**kw)
        pages += 1
        seen += r["clusterArns"]
        token = r.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert seen == [ARN + n for n in names]
    # the paginator agrees
    p = ecs.get_paginator("list_clusters")
    arns = [a for page in p.paginate(PaginationConfig={"PageSize": 2})
            for a in page["clusterArns"]]
    assert arns == seen


def test_list_rejects_bad_max_results_and_token(ecs):
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(maxResults=101)
    assert error_code(e) == "InvalidParameterException"
    assert "maxResults" in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(nextToken="not-a-token!")
    assert error_code(e) == "InvalidParameterException"


def test_update_cluster_and_settings(ecs):
    ecs.create_cluster(clusterName="u")
    r = ecs.update_cluster_settings(cluster="u",
                                    settings=[{"name": "containerInsights",
                                               "value": "enabled"}])["cluster"]
    assert r["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    r = ecs.update_cluster(cluster="u", configuration={
        "executeCommandConfiguration": {"logging": "DEFAULT"}})["cluster"]
    assert r["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT"
    with pytest.raises(ClientError) as e:
        ecs.update_cluster_settings(cluster="u",
                                    settings=[{"name": "containerInsights", "value": "on"}])
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.update_cluster(cluster="missing", settings=[])
    assert error_code(e) == "ClusterNotFoundException"


def test_delete_cluster(ecs):
    ecs.create_cluster(clusterName="gone")
    d = ecs.delete_cluster(cluster="gone")["cluster"]
    assert d["status"] == "INACTIVE"
    assert ARN + "gone" not in ecs.list_clusters()["clusterArns"]
    desc = ecs.describe_clusters(clusters=["gone"])["clusters"][0]
    assert desc["status"] == "INACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster="gone")
    assert error_code(e) == "ClusterNotFoundException"
    # the name can be used again
    assert ecs.create_cluster(clusterName="gone")["cluster"]["status"] == "ACTIVE"


def test_cluster_tags(ecs):
    arn = ecs.create_cluster(clusterName="t")["cluster"]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"},
                                            {"key": "b", "value": "2"}])
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "3"}])
    tags = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted((t["key"], t["value"]) for t in tags) == [("a", "3"), ("b", "2")]
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:x", "value": "1"}])
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=ARN + "nope")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn="not-an-arn")
    assert error_code(e) == "InvalidParameterException"
