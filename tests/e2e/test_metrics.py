"""Utilization metrics (issue 8): agents report containers' CPU and memory
from their cgroups, barged turns them into ECS's service and cluster
utilization, and both serve Prometheus /metrics (on listeners of their own,
--metrics-listen) that a strict text-format parser (and prometheus_client's)
accepts."""
import math
import re
import time
import urllib.request

import pytest

from conftest import Barged, wait_task

BURNER = "trap 'exit 143' TERM; while :; do :; done"
SLEEPER = "trap 'exit 143' TERM; while true; do sleep 0.2; done"

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_strict(text):
    """A strict reader of the Prometheus text format (0.0.4): every sample
    belongs to a family announced by HELP and TYPE before it, families are
    contiguous and not repeated, labels are well formed and values are floats;
    histograms have cumulative buckets ending in +Inf equal to _count.
    Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    families, order, current = {}, [], None
    assert text.endswith("\n"), "the exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line, f"line {n}: empty line"
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            assert NAME.match(name), f"line {n}: bad name {name!r}"
            assert name not in families, f"line {n}: family {name} repeated"
            families[name] = {"help": help_, "type": None, "samples": []}
            order.append(name)
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == current, f"line {n}: TYPE for {name} after HELP for {current}"
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), typ
            families[name]["type"] = typ
            continue
        assert not line.startswith("#"), f"line {n}: stray comment"
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$", line)
        assert m, f"line {n}: malformed sample {line!r}"
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = {}, 0
        while pos < len(labels_text):
            lm = LABEL.match(labels_text, pos)
            assert lm, f"line {n}: malformed labels {labels_text!r}"
            assert lm.group(1) not in labels, f"line {n}: label repeated"
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        v = float(value)  # accepts NaN, +Inf
        fam = current
        assert fam is not None and families[fam]["type"], f"line {n}: sample before HELP/TYPE"
        typ = families[fam]["type"]
        allowed = {fam} if typ != "histogram" else {fam + "_bucket", fam + "_sum", fam + "_count"}
        assert name in allowed, f"line {n}: {name} outside its family {fam}"
        if typ == "counter":
            assert v >= 0, f"line {n}: negative counter"
        families[fam]["samples"].append((name, labels, v))
    for fam, f in families.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, v in f["samples"]:
            key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                series[key]["buckets"].append((labels["le"], v))
            elif name.endswith("_count"):
                series[key]["count"] = v
        for key, s in series.items():
            les = [float(le) for le, _ in s["buckets"]]
            counts = [c for _, c in s["buckets"]]
            assert les == sorted(les) and math.isinf(les[-1]), f"{fam}{key}: bad le order"
            assert counts == sorted(counts), f"{fam}{key}: buckets not cumulative"
            assert counts[-1] == s["count"], f"{fam}{key}: +Inf bucket != _count"
    return families


def parse_with_client(text):
    from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, family, **labels):
    for name, l, v in families[family]["samples"]:
        if name == family and all(l.get(k) == x for k, x in labels.items()):
            return v
    return None


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


@pytest.fixture
def barged(tmp_path):
    """barged with its /metrics listener."""
    b = Barged(str(tmp_path / "data"), extra_args=["--metrics-listen", "127.0.0.1:0"]).start()
    yield b
    b.stop()


def metrics_url(barged):
    port = None
    for line in open(barged.log_path):
        m = re.search(r"serving /metrics on port (\d+)", line)
        if m:
            port = int(m.group(1))
    assert port, "barged did not say where /metrics is"
    return f"http://127.0.0.1:{port}/metrics"


def agent_port(agent):
    port = None
    for line in open(agent.log_path):
        m = re.search(r"serving /metrics on port (\d+)", line)
        if m:
            port = int(m.group(1))
    assert port, "the agent did not say where /metrics is"
    return port


def register(ecs, image, family, script, cpu=None, memory="64"):
    kw = {"cpu": cpu} if cpu else {}
    return ecs.register_task_definition(
        family=family, memory=memory, **kw,
        containerDefinitions=[{"name": "main", "image": image,
                               "command": ["sh", "-c", script]}]
    )["taskDefinition"]["taskDefinitionArn"]


def test_cpu_burner_service_utilization(barged, agent_factory, busybox):
    """A service whose task burns one core against 1024 reserved CPU units
    shows about 100% CPUUtilization; an idle task group next to it shows
    about none."""
    agent = agent_factory(extra_args=["--metrics-interval", "1",
                                      "--metrics-listen", "127.0.0.1:0"])
    ecs = barged.client("ecs")
    burner = register(ecs, busybox, "burner", BURNER, cpu="1024")
    idle = register(ecs, busybox, "idle", SLEEPER, cpu="512")
    ecs.create_service(cluster="default", serviceName="burner", taskDefinition=burner,
                       desiredCount=1)
    i = ecs.run_task(cluster="default", taskDefinition=idle,
                     group="service:idle")["tasks"][0]["taskArn"]
    deadline = time.time() + 60
    b = None
    while time.time() < deadline and not b:
        arns = ecs.list_tasks(cluster="default", serviceName="burner",
                              desiredStatus="RUNNING")["taskArns"]
        b = arns[0] if arns else None
        time.sleep(0.3)
    assert b, "the service started no task"
    wait_task(ecs, "default", b, ("RUNNING",))
    wait_task(ecs, "default", i, ("RUNNING",))

    deadline = time.time() + 60
    cpu = None
    while time.time() < deadline:
        fams = parse_strict(scrape(metrics_url(barged)))
        cpu = value(fams, "barge_group_cpu_utilization_percent", cluster="default",
                    group="service:burner")
        if cpu is not None and cpu > 70:
            break
        time.sleep(1)
    # One busy core is 1024 units: 100% of what the task reserved. The
    # machine is shared with other work (and sanitizer builds are slow), so
    # only "clearly busy, and not more than a core".
    assert cpu is not None and 25 < cpu < 150, cpu
    idle_cpu = value(fams, "barge_group_cpu_utilization_percent", cluster="default",
                     group="service:idle")
    assert idle_cpu is not None and idle_cpu < 20, idle_cpu
    mem = value(fams, "barge_group_memory_utilization_percent", cluster="default",
                group="service:burner")
    assert mem is not None and 0 <= mem < 100

    # The same numbers per container, and as DescribeClusters statistics.
    task_id = b.split("/")[-1]
    used = value(fams, "barge_container_cpu_seconds_total", task=task_id, container="main")
    assert used and used > 0.5
    assert value(fams, "barge_container_memory_limit_bytes", task=task_id,
                 container="main") == 64 * 1024 * 1024
    cl = ecs.describe_clusters(clusters=["default"], include=["STATISTICS"])["clusters"][0]
    stats = {s["name"]: s["value"] for s in cl["statistics"]}
    ci = ecs.describe_container_instances(cluster="default",
                                          containerInstances=[agent.instance_arn])
    host_cpu = {r["name"]: r for r in ci["containerInstances"][0]["registeredResources"]
                }["CPU"]["integerValue"]
    assert float(stats["CPUReservation"]) == pytest.approx(1536 * 100 / host_cpu, abs=0.01)
    assert 0 < float(stats["CPUUtilization"]) <= 100
    assert float(stats["MemoryReservation"]) > 0
    assert stats["runningEC2TasksCount"] == "2"

    # The agent serves its own view.
    afams = parse_strict(scrape(f"http://127.0.0.1:{agent_port(agent)}/metrics"))
    assert value(afams, "barge_agent_tasks") == 2
    assert value(afams, "barge_agent_container_cpu_seconds_total", task=task_id) > 0.5
    assert value(afams, "barge_agent_metric_reports_total", result="ok") >= 2
    parse_with_client(scrape(f"http://127.0.0.1:{agent_port(agent)}/metrics"))

    ecs.delete_service(cluster="default", service="burner", force=True)
    ecs.stop_task(cluster="default", task=i)
    for arn in (b, i):
        wait_task(ecs, "default", arn)


def test_barged_metrics_parse(barged, agent, busybox):
    ecs, logs = barged.client("ecs"), barged.client("logs")
    td = register(ecs, busybox, "short", "echo hi")
    arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn)
    logs.create_log_group(logGroupName="g")
    with pytest.raises(Exception):
        logs.create_log_group(logGroupName="g")
    ecs.list_clusters()
    text = scrape(metrics_url(barged))
    fams = parse_strict(text)
    client = parse_with_client(text)
    assert "barge_api_request_duration_seconds" in client

    assert value(fams, "barge_tasks", cluster="default", status="STOPPED") == 1
    assert value(fams, "barge_container_instances", cluster="default", status="ACTIVE",
                 connected="true") == 1
    assert value(fams, "barge_api_requests_total", service="logs",
                 operation="CreateLogGroup", code="2xx") == 1
    assert value(fams, "barge_api_requests_total", service="logs",
                 operation="CreateLogGroup", code="4xx") == 1
    assert value(fams, "barge_api_requests_total", service="ecs", operation="RunTask",
                 code="2xx") == 1
    lat = [s for s in fams["barge_api_request_duration_seconds"]["samples"]
           if s[0].endswith("_count") and s[1].get("operation") == "ListClusters"]
    assert lat and lat[0][2] == 1
    assert value(fams, "barge_scheduler_decisions_total", decision="placed") == 1
    pulls = [s for s in fams["barge_image_pull_duration_seconds"]["samples"]
             if s[0].endswith("_count")]
    assert pulls[0][2] == 1
    assert fams["barge_tasks"]["type"] == "gauge"
    assert fams["barge_api_requests_total"]["type"] == "counter"

    # No RunTask can place: counted as unplaceable.
    big = ecs.register_task_definition(
        family="big", containerDefinitions=[{"name": "main", "image": busybox,
                                             "memory": 10 ** 7}]
    )["taskDefinition"]["taskDefinitionArn"]
    assert ecs.run_task(cluster="default", taskDefinition=big)["failures"]
    fams = parse_strict(scrape(metrics_url(barged)))
    assert value(fams, "barge_scheduler_decisions_total", decision="unplaceable") == 1

    # Only GET /metrics is served there.
    req = urllib.request.Request(metrics_url(barged), method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_strict_parser_rejects_bad_text():
    good = "# HELP a x\n# TYPE a counter\na{b=\"1\"} 2\n"
    parse_strict(good)
    for bad in ("a 1\n",  # no HELP/TYPE
                "# HELP a x\n# TYPE a counter\na{b=1} 2\n",  # unquoted label
                "# HELP a x\n# TYPE a counter\na 1",  # no final newline
                "# HELP a x\n# TYPE a counter\nb 1\n",  # outside its family
                "# HELP a x\n# TYPE a histogram\na_bucket{le=\"1\"} 2\n"
                "a_bucket{le=\"+Inf\"} 1\na_count 1\n"):  # not cumulative
        with pytest.raises(AssertionError):
            parse_strict(bad)
