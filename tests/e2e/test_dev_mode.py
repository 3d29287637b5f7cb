"""barged --dev: one command gives a working single-host cluster with a local
agent in the cluster 'default' and a local Fargate capacity pool, and writes
the 'barge' AWS profile."""
import os
import subprocess
import time

from conftest import Barged, cleanup_runtime, wait_task


def test_dev_mode_runs_a_task_and_a_fargate_task(tmp_path, busybox):
    home = tmp_path / "home"
    home.mkdir()
    env_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    b = Barged(str(tmp_path / "data"), extra_args=["--dev"])
    # --dev writes the profile; the fixture's --no-aws-profile must not be there
    b.no_profile = False
    try:
        b.start()
        assert (home / ".aws" / "credentials").read_text().count("[barge]") == 1
        assert "endpoint_url = http://127.0.0.1:" in (home / ".aws" / "config").read_text()
        ecs = b.client("ecs")
        deadline = time.time() + 60
        while not ecs.list_container_instances(cluster="default")["containerInstanceArns"]:
            assert time.time() < deadline, "the local agent never registered"
            time.sleep(0.5)
        td = ecs.register_task_definition(family="dev", containerDefinitions=[
            {"name": "m", "image": busybox, "memory": 16, "command": ["true"]}]
        )["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
        assert wait_task(ecs, "default", arn)["containers"][0]["exitCode"] == 0
        fg = ecs.register_task_definition(
            family="devfg", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512",
            containerDefinitions=[{"name": "m", "image": busybox, "command": ["true"]}]
        )["taskDefinition"]["taskDefinitionArn"]
        deadline = time.time() + 60
        while True:
            try:
                r = ecs.run_task(cluster="default", taskDefinition=fg, launchType="FARGATE",
                                 networkConfiguration={"awsvpcConfiguration": {
                                     "subnets": ["subnet-dev"]}})
                break
            except Exception:
                assert time.time() < deadline, "the local Fargate pool never came up"
                time.sleep(0.5)
        arn = r["tasks"][0]["taskArn"]
        assert wait_task(ecs, "default", arn)["containers"][0]["exitCode"] == 0
    finally:
        b.stop()
        for d in ("agent", "fargate-agent"):
            cleanup_runtime(str(tmp_path / "data" / d))
        if env_home is not None:
            os.environ["HOME"] = env_home
