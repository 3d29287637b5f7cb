"""barge with barged's SSM Parameter Store and Secrets Manager: the ssm and
secretsmanager_arn template functions, and verify catching a secret that does
not exist. Skipped while barged does not serve those APIs (they are being
built on another branch); tests/unit/test_cli_aws.c covers the requests and
their AWS semantics meanwhile."""
import json

import pytest

from conftest import raw_call
from test_cli_deploy import Project


def served(barged):
    st, _ = raw_call(barged, "AmazonSSM.DescribeParameters", {}, service="ssm")
    st2, _ = raw_call(barged, "secretsmanager.ListSecrets", {}, service="secretsmanager")
    return st == 200 and st2 == 200


def test_templates_and_verify_with_secrets(barged, busybox, tmp_path):
    if not served(barged):
        pytest.skip("barged does not serve SSM and Secrets Manager yet")
    barged.client("ecs").create_cluster(clusterName="default")
    ssm = barged.client("ssm")
    ssm.put_parameter(Name="/app/db/host", Value="db.internal", Type="String")
    ssm.put_parameter(Name="/app/db/password", Value="hunter2", Type="SecureString")
    ssm.put_parameter(Name="/app/subnets", Value="subnet-a,subnet-b", Type="StringList")
    secret = barged.client("secretsmanager").create_secret(
        Name="app/token", SecretString=json.dumps({"token": "t0k"}))
    p = Project(barged, tmp_path / "sec", busybox)
    p.write("ecspresso.yml", "cluster: default\ntask_definition: td.json\n")
    p.write("td.json", """{
  "family": "sec",
  "containerDefinitions": [{
    "name": "app", "image": "{{ must_env `IMAGE` }}", "memory": 16,
    "environment": [
      {"name": "DB_HOST", "value": "{{ ssm `/app/db/host` }}"},
      {"name": "SUBNET", "value": "{{ ssm `/app/subnets` 1 }}"}
    ],
    "secrets": [
      {"name": "DB_PASSWORD", "valueFrom": "/app/db/password"},
      {"name": "TOKEN", "valueFrom": "{{ secretsmanager_arn `app/token` }}:token::"}
    ]
  }]
}""")
    out = p.ok("render", "taskdef")
    c = json.loads(out.stdout)["containerDefinitions"][0]
    assert {e["name"]: e["value"] for e in c["environment"]} == {"DB_HOST": "db.internal",
                                                                 "SUBNET": "subnet-b"}
    assert c["secrets"][1]["valueFrom"] == secret["ARN"] + ":token::"
    # The secret's value is never printed.
    assert "hunter2" not in out.stdout and "t0k" not in out.stdout
    out = p.ok("verify")
    assert "Secret DB_PASSWORD[/app/db/password]\n      --> [OK]" in out.stdout
    assert "Secret TOKEN[" in out.stdout and "hunter2" not in out.stdout
    # A parameter that does not exist is caught before any deploy.
    p.write("td.json", p.read("td.json").replace("/app/db/password", "/app/db/missing"))
    out = p.run("verify", check=False)
    assert out.returncode == 1
    assert ("Secret DB_PASSWORD[/app/db/missing]\n"
            "      --> [NG] parameter '/app/db/missing' is not found") in out.stdout
    # So is a JSON key the secret lacks.
    p.write("td.json", p.read("td.json").replace(":token::", ":nokey::"))
    out = p.run("verify", check=False)
    assert "the secret has no JSON key 'nokey'" in out.stdout
    # A template naming a missing parameter fails the load, naming it.
    p.write("td.json", p.read("td.json").replace("{{ ssm `/app/db/host` }}",
                                                 "{{ ssm `/app/nope` }}"))
    out = p.run("render", "taskdef", check=False)
    assert out.returncode == 1 and "ssm parameter '/app/nope'" in out.stderr


def test_verify_environment_files(barged, busybox, tmp_path):
    st, _ = raw_call(barged, "AmazonSSM.DescribeParameters", {}, service="ssm")
    if st != 200:
        pytest.skip("barged does not serve S3 yet")
    barged.client("ecs").create_cluster(clusterName="default")
    s3 = barged.client("s3")
    s3.create_bucket(Bucket="conf")
    s3.put_object(Bucket="conf", Key="app/prod.env", Body=b"A=1\n")
    p = Project(barged, tmp_path / "envf", busybox)
    p.write("ecspresso.yml", "cluster: default\ntask_definition: td.json\n")
    td = {"family": "envf", "containerDefinitions": [{
        "name": "app", "image": busybox, "memory": 16,
        "environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::conf/app/prod.env"}]}]}
    p.write("td.json", json.dumps(td))
    out = p.ok("verify")
    assert "EnvironmentFile[arn:aws:s3:::conf/app/prod.env]\n      --> [OK]" in out.stdout
    td["containerDefinitions"][0]["environmentFiles"][0]["value"] = "arn:aws:s3:::conf/nope.env"
    p.write("td.json", json.dumps(td))
    out = p.run("verify", check=False)
    assert out.returncode == 1
    assert "--> [NG] s3://conf/nope.env is not found" in out.stdout
