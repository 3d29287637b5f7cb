"""docker-compose import (issue 9): a compose file with two services becomes
one task definition with two containers, `barge compose up` deploys it as a
service on a real agent and both answer on their ports; `convert` prints or
writes the definitions and names what it cannot convert."""
import json
import os
import socket
import time
import urllib.error
import urllib.request

from test_cli_deploy import Project


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def wait_for(pred, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def compose_project(barged, tmp_path, image, web_port, api_port):
    p = Project(barged, tmp_path / "shop", image)
    p.write("site/index.html", "hello from web\n")
    p.write(".env", f"WEB_PORT={web_port}\n")
    p.write("docker-compose.yml", f"""\
x-base: &base
  image: ${{IMAGE}}
  mem_limit: 32m
  stop_grace_period: 1s  # httpd as PID 1 ignores SIGTERM
services:
  web:
    <<: *base
    command: httpd -f -p ${{WEB_PORT}} -h /site
    ports: ["${{WEB_PORT}}:${{WEB_PORT}}"]
    volumes: ["./site:/site:ro"]
    environment:
      ROLE: web
    depends_on: [api]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:${{WEB_PORT}}/ || exit 1"]
      interval: 5s
    build: ./web
  api:
    <<: *base
    command: ["sh", "-c", "mkdir -p /www && echo api > /www/index.html && exec httpd -f -p {api_port} -h /www"]
    ports:
      - target: {api_port}
        published: {api_port}
    stop_grace_period: 2s
    labels: {{tier: backend}}
""")
    p.write("ecs-params.yml", """\
version: 1
task_definition:
  ecs_network_mode: host
  services:
    api:
      essential: true
""")
    return p


def test_compose_convert(barged, busybox, tmp_path):
    p = compose_project(barged, tmp_path, busybox, 18181, 18182)
    out = p.ok("compose", "convert")
    doc = json.loads(out.stdout)
    td, sd = doc["taskDefinition"], doc["serviceDefinition"]
    assert td["family"] == "shop" and td["networkMode"] == "host"
    names = [c["name"] for c in td["containerDefinitions"]]
    assert names == ["web", "api"]
    web = td["containerDefinitions"][0]
    assert web["command"] == ["httpd", "-f", "-p", "18181", "-h", "/site"]
    assert web["portMappings"] == [{"containerPort": 18181, "hostPort": 18181,
                                    "protocol": "tcp"}]
    assert web["memory"] == 32 and web["dependsOn"] == [{"containerName": "api",
                                                          "condition": "START"}]
    assert web["healthCheck"]["command"][0] == "CMD-SHELL"
    assert web["mountPoints"] == [{"containerPath": "/site", "readOnly": True,
                                   "sourceVolume": "volume-0"}]
    assert td["volumes"] == [{"host": {"sourcePath": os.path.realpath(
        os.path.join(p.dir, "site"))}, "name": "volume-0"}]
    api = td["containerDefinitions"][1]
    assert api["stopTimeout"] == 2 and api["dockerLabels"] == {"tier": "backend"}
    assert sd == {"desiredCount": 1}
    assert "service 'web': 'build' is not supported; ignored" in out.stderr
    # --output-dir writes files barge deploy (and ecspresso) can use.
    out = p.ok("compose", "convert", "--output-dir", "out", "-p", "shop2")
    cfg = p.read("out/ecspresso.yml")
    assert "service: shop2\n" in cfg and "task_definition: ecs-task-def.json\n" in cfg
    assert json.loads(p.read("out/ecs-task-def.json"))["family"] == "shop2"
    out = p.ok("--config", "out/ecspresso.yml", "render", "taskdef")
    assert json.loads(out.stdout)["family"] == "shop2"
    # Missing file and missing subcommand.
    out = p.run("compose", "convert", "-f", "nope.yml", check=False)
    assert out.returncode == 1 and "cannot read 'nope.yml'" in out.stderr
    assert p.run("compose").returncode == 2


def test_compose_up_two_services_reachable(barged, agent, busybox, tmp_path):
    web_port, api_port = free_port(), free_port()
    p = compose_project(barged, tmp_path, busybox, web_port, api_port)
    # web serves ./site through the bind mount; api writes its own page.
    out = p.ok("--timeout", "2m", "compose", "up")
    assert "Task definition is registered shop:1" in out.stderr
    assert "Service is stable now. Completed!" in out.stderr
    ecs = barged.client("ecs")
    s = ecs.describe_services(cluster="default", services=["shop"])["services"][0]
    assert s["runningCount"] == 1
    wait_for(lambda: http_status(web_port) == 200, what="web answers")
    wait_for(lambda: http_status(api_port) == 200, what="api answers")
    body = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=5).read()
    assert body == b"hello from web\n"
    body = urllib.request.urlopen(f"http://127.0.0.1:{api_port}/", timeout=5).read()
    assert body == b"api\n"
    # A second up with the same files registers a new revision and rolls it.
    out = p.ok("--timeout", "2m", "compose", "up", "--tasks", "1")
    assert "Task definition is registered shop:2" in out.stderr
    p.ok("compose", "down")
    wait_for(lambda: http_status(web_port) is None and http_status(api_port) is None,
             what="containers gone")
