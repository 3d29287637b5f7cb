"""The aws CLI (Debian's awscli v2) against barged with the 'barge' profile:
every cluster, task definition and tag operation, errors and pagination."""
import json

import pytest

from conftest import AwsCli, newest_aws


def test_cluster_lifecycle(awscli):
    c = awscli.json("ecs", "create-cluster", "--cluster-name", "cli")["cluster"]
    assert c["status"] == "ACTIVE"
    assert awscli.json("ecs", "list-clusters")["clusterArns"] == [c["clusterArn"]]
    d = awscli.json("ecs", "describe-clusters", "--clusters", "cli", "--include", "SETTINGS",
                    "TAGS")
    assert d["clusters"][0]["settings"][0]["name"] == "containerInsights"
    awscli.json("ecs", "update-cluster-settings", "--cluster", "cli", "--settings",
                "name=containerInsights,value=enabled")
    awscli.json("ecs", "update-cluster", "--cluster", "cli", "--settings",
                "name=containerInsights,value=disabled")
    awscli.json("ecs", "tag-resource", "--resource-arn", c["clusterArn"], "--tags",
                "key=a,value=b")
    assert awscli.json("ecs", "list-tags-for-resource", "--resource-arn",
                       c["clusterArn"])["tags"] == [{"key": "a", "value": "b"}]
    awscli.json("ecs", "untag-resource", "--resource-arn", c["clusterArn"], "--tag-keys", "a")
    assert awscli.json("ecs", "delete-cluster", "--cluster", "cli")["cluster"]["status"] == \
        "INACTIVE"


def test_task_definitions(awscli, tmp_path):
    spec = {"family": "cli", "containerDefinitions": [
        {"name": "c", "image": "busybox", "memory": 32, "command": ["true"]}]}
    f = tmp_path / "td.json"
    f.write_text(json.dumps(spec))
    for _ in range(3):
        awscli.json("ecs", "register-task-definition", "--cli-input-json", f"file://{f}")
    td = awscli.json("ecs", "describe-task-definition", "--task-definition", "cli")
    assert td["taskDefinition"]["revision"] == 3
    # the CLI paginates through all pages by itself
    arns = awscli.json("ecs", "list-task-definitions", "--page-size", "1")["taskDefinitionArns"]
    assert len(arns) == 3
    assert awscli.json("ecs", "list-task-definition-families")["families"] == ["cli"]
    awscli.json("ecs", "deregister-task-definition", "--task-definition", "cli:1")


def test_delete_task_definitions_with_newer_cli(barged, tmp_path):
    # Debian's aws CLI 2.9 predates DeleteTaskDefinitions; the image's pip
    # awscli has it.
    aws = newest_aws()
    if not aws:
        pytest.skip("no aws CLI that knows delete-task-definitions on this machine")
    cli = AwsCli(barged, str(tmp_path), binary=aws)
    spec = '[{"name":"c","image":"busybox","memory":32}]'
    cli.json("ecs", "register-task-definition", "--family", "new",
             "--container-definitions", spec)
    cli.json("ecs", "deregister-task-definition", "--task-definition", "new:1")
    r = cli.json("ecs", "delete-task-definitions", "--task-definitions", "new:1")
    assert r["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"


def test_cli_errors(awscli):
    p = awscli.run("ecs", "describe-task-definition", "--task-definition", "nope", check=False)
    assert p.returncode != 0
    assert "ClientException" in p.stderr
    p = awscli.run("ecs", "delete-cluster", "--cluster", "nope", check=False)
    assert "ClusterNotFoundException" in p.stderr
