"""barged --dev: one command gives a working single-host cluster with a local
agent in the cluster 'default' and a local Fargate capacity pool, and writes
the 'barge' AWS profile."""
import json
import os
import signal
import subprocess
import time

import boto3

from conftest import AwsCli, Barged, binary, cleanup_runtime, wait_task

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]


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


def test_dev_mode_runs_fargate_tasks_in_another_region(tmp_path, busybox):
    """--dev serves FARGATE in every region: a region's first resource gets
    it a local pool agent, and `aws --region eu-west-1 ecs run-task
    --launch-type FARGATE` runs there."""
    b = Barged(str(tmp_path / "data"), extra_args=["--dev"]).start()
    try:
        cli = AwsCli(b, str(tmp_path))
        eu = ["--region", "eu-west-1", "ecs"]
        cli.json(*eu, "create-cluster", "--cluster-name", "far")
        td = cli.json(*eu, "register-task-definition", "--family", "farfg",
                      "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc",
                      "--cpu", "256", "--memory", "512", "--container-definitions",
                      json.dumps([{"name": "m", "image": busybox, "command": SLEEPER}])
                      )["taskDefinition"]["taskDefinitionArn"]
        assert td.split(":")[3] == "eu-west-1"
        deadline = time.time() + 60
        while True:
            p = cli.run(*eu, "run-task", "--cluster", "far", "--task-definition", td,
                        "--launch-type", "FARGATE", "--network-configuration",
                        "awsvpcConfiguration={subnets=[subnet-dev]}", check=False)
            if p.returncode == 0:
                break
            # until the region's pool agent has come up
            assert "No Fargate capacity is available in 'eu-west-1'" in p.stderr, p.stderr
            assert time.time() < deadline, "eu-west-1's local Fargate pool never came up"
            time.sleep(0.5)
        arn = json.loads(p.stdout)["tasks"][0]["taskArn"]
        assert arn.split(":")[3] == "eu-west-1"
        ecs = boto3.client("ecs", endpoint_url=b.endpoint, region_name="eu-west-1",
                           aws_access_key_id=b.access_key, aws_secret_access_key=b.secret_key)
        task = wait_task(ecs, "far", arn, ("RUNNING",))
        assert task["lastStatus"] == "RUNNING" and task["launchType"] == "FARGATE"
        assert agent_pids(str(tmp_path / "data" / "fargate-agent-eu-west-1"))
        ecs.stop_task(cluster="far", task=arn)
        wait_task(ecs, "far", arn)
    finally:
        b.stop()
        for d in ("agent", "fargate-agent", "fargate-agent-eu-west-1"):
            cleanup_runtime(str(tmp_path / "data" / d))


def agent_pids(data_dir):
    """pids of the barge-agent processes whose --data-dir is data_dir."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if (os.path.basename(argv[0]) == b"barge-agent" and b"--data-dir" in argv
                and argv[argv.index(b"--data-dir") + 1] == data_dir.encode()):
            pids.append(int(pid))
    return pids


def lock_holder(agent_dir):
    with open(os.path.join(agent_dir, "agent.lock")) as f:
        return int(f.read())


def test_dev_restart_keeps_one_agent_per_directory_and_tasks(tmp_path, busybox):
    data = str(tmp_path / "data")
    dirs = [os.path.join(data, d) for d in ("agent", "fargate-agent")]
    b = Barged(data, extra_args=["--dev"])
    try:
        b.start()
        ecs = b.client("ecs")
        deadline = time.time() + 60
        while not ecs.list_container_instances(cluster="default")["containerInstanceArns"]:
            assert time.time() < deadline, "the local agent never registered"
            time.sleep(0.5)
        td = ecs.register_task_definition(family="dev", containerDefinitions=[{
            "name": "m", "image": busybox, "memory": 16,
            "command": ["sh", "-c", "trap 'exit 143' TERM; while true; do sleep 0.2; done"]}]
        )["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
        wait_task(ecs, "default", arn, statuses=("RUNNING",))
        first = {d: agent_pids(d) for d in dirs}
        assert all(len(p) == 1 for p in first.values()), first

        # kill -9 leaves the agents running; the next barged on the same
        # endpoint adopts them rather than starting second ones
        b.kill(signal.SIGKILL)
        b.start(port=b.port)
        assert {d: agent_pids(d) for d in dirs} == first
        assert all(lock_holder(d) == first[d][0] for d in dirs)
        with open(b.log_path) as f:
            log = f.read()
        assert "adopted the local agent already running" in log
        assert "in use by another barge-agent" not in log
        ecs = b.client("ecs")
        assert ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0][
            "lastStatus"] == "RUNNING"

        # a clean stop takes the (adopted) agents down and the next barged
        # starts new ones, which adopt the running container
        b.restart()
        # (an agent that started while its predecessor still held the
        # directory's lock is started again by barged's supervision)
        deadline = time.time() + 30
        while True:
            second = {d: agent_pids(d) for d in dirs}
            if all(len(p) == 1 and p != first[d] for d, p in second.items()):
                break
            assert time.time() < deadline, second
            time.sleep(0.5)

        # the task lived through both restarts, and the new agent runs it
        ecs = b.client("ecs")
        assert ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0][
            "lastStatus"] == "RUNNING"
        ecs.stop_task(cluster="default", task=arn)
        task = wait_task(ecs, "default", arn)
        assert task["containers"][0]["exitCode"] == 143

        # kill -9 again, and back on another port: the stale agents cannot
        # reach it, so they are replaced, one per directory
        b.kill(signal.SIGKILL)
        b.start()
        # (a replacement that lost the race for the stale one's lock is
        # started again by barged's supervision within seconds)
        deadline = time.time() + 30
        while True:
            third = {d: agent_pids(d) for d in dirs}
            if all(len(p) == 1 and p != second[d] for d, p in third.items()):
                break
            assert time.time() < deadline, third
            time.sleep(0.5)

        # a local agent that dies is started again
        os.kill(third[dirs[0]][0], signal.SIGKILL)
        deadline = time.time() + 30
        while len(agent_pids(dirs[0])) != 1 or agent_pids(dirs[0]) == third[dirs[0]]:
            assert time.time() < deadline, "the dead local agent was not replaced"
            time.sleep(0.5)
        assert agent_pids(dirs[1]) == third[dirs[1]]
    finally:
        b.stop()
        for d in dirs:
            for pid in agent_pids(d):
                os.kill(pid, signal.SIGKILL)
            cleanup_runtime(d)


def test_second_agent_on_a_data_directory_is_refused(barged, agent):
    holder = lock_holder(agent.data_dir)
    assert holder == agent.proc.pid
    r = subprocess.run([binary("barge-agent"), "--server", barged.endpoint,
                        "--data-dir", agent.data_dir, "--credentials",
                        os.path.join(barged.data_dir, "admin-credentials")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert ("the data directory '%s' is in use by another barge-agent (pid %d)"
            % (agent.data_dir, holder)) in r.stderr
    # the first agent is untouched and still the only one there
    assert agent.proc.poll() is None
    assert agent_pids(agent.data_dir) == [agent.proc.pid]


def test_a_crash_looping_local_agent_is_restarted_with_backoff(tmp_path):
    """A local agent that dies at once (here: its state file is corrupt) is
    started again after 5 s, then 10, 20... rather than every 5 s for ever."""
    data = str(tmp_path / "data")
    agent_dir = os.path.join(data, "agent")
    os.makedirs(agent_dir)
    with open(os.path.join(agent_dir, "state.json"), "w") as f:
        f.write("{not json")
    b = Barged(data, extra_args=["--dev"])
    try:
        b.start()
        # Without backoff it would have been started 6 or 7 times by now.
        time.sleep(30)
        with open(b.log_path) as f:
            log = f.read()
    finally:
        b.stop()
        for d in ("agent", "fargate-agent"):
            for pid in agent_pids(os.path.join(data, d)):
                os.kill(pid, signal.SIGKILL)
            cleanup_runtime(os.path.join(data, d))
    assert "state.json' is corrupt" in log
    starts = log.count("started the local agent ")
    assert 2 <= starts <= 4, log[-3000:]
    assert "on '%s' is gone, " % agent_dir in log
    assert "starting another in 5 s" in log
    assert "starting another in 10 s" in log
