"""Shared fixtures for the e2e suites: a real barged on 127.0.0.1 with its own
data directory, boto3 clients signed with the admin key it generated, and the
aws CLI pointed at it. Everything started here is stopped here, even when a
test fails.

BARGE_TEST_STORE=postgres runs the suites against the PostgreSQL backend:
every barged then gets a fresh database of a throwaway cluster that the first
one starts (pg_fixture.py) and the session stops. `make test-postgres` does
that for the suites that do not need an agent's containers to differ."""
import configparser
import json
import os
import signal
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("BARGE_BIN_DIR", os.path.join(REPO, "build"))
REGION = "us-east-1"


SANITIZER_MARKS = ("runtime error:", "AddressSanitizer", "LeakSanitizer")


def check_sanitizer_log(path):
    """Fails the test when a sanitized build reported a problem in its log."""
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            raise AssertionError(f"sanitizer report in {path}:\n{text[max(0, i - 200):i + 2000]}")


def binary(name):
    path = os.path.join(BIN_DIR, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: run make first")
    return path


_postgres = None


def postgres():
    """The session's throwaway PostgreSQL cluster, started on first use."""
    global _postgres
    if _postgres is None:
        from pg_fixture import PostgresCluster
        cluster = PostgresCluster()
        try:
            cluster.start()
        except Exception:
            cluster.close()
            raise
        _postgres = cluster
    return _postgres


@pytest.fixture(scope="session", autouse=True)
def _stop_postgres():
    yield
    global _postgres
    if _postgres is not None:
        _postgres.close()
        _postgres = None


def sqlite_store(barged):
    """The path of barged's SQLite database, for a test that looks into it
    (to travel in time, or to see what is stored); skips the test when barged
    keeps its store in PostgreSQL."""
    path = os.path.join(barged.data_dir, "barge.db")
    if (barged.store and not barged.store.startswith("sqlite:")) or not os.path.exists(path):
        pytest.skip("looks into the SQLite store")
    return path


def store_for_test():
    """The store URI for a new barged: None (SQLite in its data directory) or a
    fresh PostgreSQL database when BARGE_TEST_STORE=postgres."""
    kind = os.environ.get("BARGE_TEST_STORE", "sqlite")
    if kind == "postgres":
        return postgres().new_database()
    if kind != "sqlite":
        pytest.fail(f"BARGE_TEST_STORE={kind}: use sqlite or postgres")
    return None


class Barged:
    """One barged process and the way to talk to it. store is a --store URI
    (default: store_for_test()); host the address it listens on."""

    def __init__(self, data_dir, extra_args=(), store=None, host="127.0.0.1"):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.store = store or store_for_test()
        self.host = host
        self.proc = None
        self.port = None
        os.makedirs(data_dir, exist_ok=True)
        self.log_path = os.path.join(data_dir, "barged.log")

    def start(self, port=0):
        # Short liveness timings so that lost hosts and deployments resolve in
        # seconds rather than minutes.
        args = [binary("barged"), "--data-dir", self.data_dir, "--listen",
                f"{self.host}:{port}", "--log-level", "debug",
                "--agent-timeout", "6", "--host-grace", "2", "--task-stable-seconds", "5",
                "--autoscale-interval", "1", "--autoscale-window", "5"]
        if getattr(self, "no_profile", True):
            args.append("--no-aws-profile")
        if self.store:
            args += ["--store", self.store]
        args += self.extra_args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        line = b""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"barged ready on port "):
                self.port = int(line.split()[-1])
                break
            if not line and self.proc.poll() is not None:
                break
        if self.port is None:
            self.stop()
            raise RuntimeError(f"barged did not start: {open(self.log_path).read()[-3000:]}")
        cp = configparser.ConfigParser()
        cp.read(os.path.join(self.data_dir, "admin-credentials"))
        self.access_key = cp["barge"]["aws_access_key_id"]
        self.secret_key = cp["barge"]["aws_secret_access_key"]
        return self

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    def client(self, service="ecs", **kw):
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=kw.get("access_key", self.access_key),
                            aws_secret_access_key=kw.get("secret_key", self.secret_key),
                            config=cfg)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        check_sanitizer_log(self.log_path)

    def restart(self):
        port = self.port
        self.stop()
        self.port = None
        return self.start(port=port)


@pytest.fixture
def barged(tmp_path):
    b = Barged(str(tmp_path / "data")).start()
    yield b
    b.stop()


@pytest.fixture
def ecs(barged):
    return barged.client("ecs")


def raw_call(barged, target, body, service="ecs"):
    """A signed JSON 1.1 call made by hand, for operations that Debian's
    botocore (older than the model barged serves) does not know yet. Returns
    (HTTP status, parsed body)."""
    import urllib.error
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=barged.endpoint + "/", data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": target})
    SigV4Auth(Credentials(barged.access_key, barged.secret_key), service, REGION).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ecs_raw(barged, op, body):
    return raw_call(barged, "AmazonEC2ContainerServiceV20141113." + op, body)


def newest_aws():
    """The aws CLI with the newest botocore on this machine (the image's pip
    awscli v1 knows operations Debian's v2 build predates), or None."""
    import glob
    found = sorted(glob.glob("/root/.pyenv/versions/*/bin/aws"))
    return found[-1] if found else None


class AwsCli:
    """Debian's aws CLI (v2) with the 'barge' profile and the endpoint."""

    def __init__(self, barged, tmp, binary="/usr/bin/aws"):
        self.binary = binary
        self.barged = barged
        self.env = dict(os.environ)
        creds = os.path.join(tmp, "aws-credentials")
        with open(creds, "w") as f:
            f.write(open(os.path.join(barged.data_dir, "admin-credentials")).read())
        conf = os.path.join(tmp, "aws-config")
        with open(conf, "w") as f:
            f.write(f"[profile barge]\nregion = {REGION}\noutput = json\n")
        self.env.update({"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": conf,
                         "AWS_PAGER": "", "HOME": tmp})
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                  "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            self.env.pop(k, None)

    def run(self, *args, check=True):
        cmd = [self.binary, "--profile", "barge", "--endpoint-url", self.barged.endpoint,
               "--output", "json", *args]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def json(self, *args):
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else {}


@pytest.fixture
def awscli(barged, tmp_path):
    d = tmp_path / "awscli"
    d.mkdir()
    return AwsCli(barged, str(d))


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo):
    return excinfo.value.response["Error"]["Message"]


class Agent:
    """One barge-agent process (a host) with its own data directory. close()
    stops the agent and removes every container, mount and cgroup it left, so a
    failing test leaves nothing behind."""

    def __init__(self, barged, data_dir, cluster="default", extra_args=(), servers=None,
                 prefix=(), credentials=True):
        self.barged = barged
        # without credentials the agent registers with what extra_args give
        # it (a join token)
        self.credentials = credentials
        self.data_dir = data_dir
        self.cluster = cluster
        self.extra_args = list(extra_args)
        # several barged endpoints (default: barged's), and a command the agent
        # runs under (e.g. ip netns exec NS)
        self.servers = list(servers or [barged.endpoint])
        self.prefix = list(prefix)
        self.proc = None
        self.instance_arn = None
        os.makedirs(data_dir, exist_ok=True)
        self.log_path = os.path.join(data_dir, "agent.log")

    def start(self):
        args = [*self.prefix, binary("barge-agent"), "--server", ",".join(self.servers),
                "--cluster", self.cluster, "--data-dir", self.data_dir, "--log-level", "debug",
                *self.extra_args]
        env = dict(os.environ)
        if self.credentials:
            args += ["--credentials", os.path.join(self.barged.data_dir, "admin-credentials")]
        else:
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env.pop(k, None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"barge-agent ready as "):
                self.instance_arn = line.decode().split()[-1]
                return self
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("barge-agent did not start: " + open(self.log_path).read()[-3000:])

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def stop(self):
        self.kill(signal.SIGTERM)

    def close(self):
        self.kill(signal.SIGKILL)
        # Task networks first (CNI DEL needs their namespaces; the host's
        # bridge and NAT rules are in the agent's namespace, hence the prefix),
        # then the containers and mounts.
        subprocess.run([*self.prefix, binary("barge-agent"), "--data-dir", self.data_dir,
                        "--clean-network", *self.extra_args], capture_output=True, timeout=120)
        cleanup_runtime(self.data_dir)
        check_sanitizer_log(self.log_path)


def cleanup_runtime(data_dir):
    """Removes what containers under data_dir left: runtime state, conmon
    processes, overlay mounts and the barge cgroups of their tasks."""
    runtime_root = os.path.join(data_dir, "runtime")
    for name in ("runc", "crun"):
        root = os.path.join(runtime_root, name)
        if not os.path.isdir(root):
            continue
        ids = subprocess.run([name, "--root", root, "list", "-q"], capture_output=True,
                             text=True).stdout.split()
        for cid in ids:
            subprocess.run([name, "--root", root, "delete", "-f", cid], capture_output=True)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        ours = (cmd.startswith(b"/usr/bin/conmon") and runtime_root.encode() in cmd) or \
            (cmd.startswith(b"/usr/sbin/dnsmasq") and (data_dir + "/dns/").encode() in cmd) or \
            (cmd.startswith(b"haproxy") and (data_dir + "/svcconnect/").encode() in cmd)
        if ours:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
    mounts = [line.split()[1] for line in open("/proc/mounts")]
    for m in sorted((m for m in mounts if m.startswith(data_dir)), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


@pytest.fixture
def agent_factory(barged, tmp_path):
    agents = []

    def make(name="host1", cluster="default", extra_args=(), create_cluster=True):
        if create_cluster:
            barged.client("ecs").create_cluster(clusterName=cluster)
        a = Agent(barged, str(tmp_path / name), cluster=cluster, extra_args=extra_args)
        agents.append(a)
        return a.start()

    yield make
    for a in agents:
        a.close()


@pytest.fixture
def agent(agent_factory):
    return agent_factory()


@pytest.fixture(scope="session", autouse=True)
def network_scaffolding():
    """Task networks share a bridge and portmap's NAT chains, which outlive
    tasks (like Docker's docker0); what the session added goes at its end."""
    from nethelpers import Scaffolding
    s = Scaffolding()
    yield
    s.restore()


@pytest.fixture(scope="session")
def test_registry():
    """Debian's docker-registry on loopback with the busybox test images."""
    from registry_fixture import Registry
    reg = Registry()
    reg.start()
    reg.images = {"busybox": reg.push_test_image("busybox", "latest")}
    yield reg
    reg.close()


@pytest.fixture
def busybox(test_registry):
    return test_registry.images["busybox"]


def wait_task(ecs, cluster, arn, statuses=("STOPPED",), timeout=60):
    """Polls DescribeTasks until lastStatus is one of statuses."""
    deadline = time.time() + timeout
    task = None
    while time.time() < deadline:
        task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if task["lastStatus"] in statuses:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task never reached {statuses}: {json.dumps(task, default=str)}")
