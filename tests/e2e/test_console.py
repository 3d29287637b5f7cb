"""The web console (issue 21) in a real headless Chromium: sign-in (and a
wrong secret refused), a deployment rolling and rolled back, a service
scaled, a task stopped, logs followed, charts, an IAM user's AccessDenied in
the page; and, with plain HTTP, the session's defences (CSRF token, Origin,
sign-out, expiry). One barged with one agent serves the whole module.

With BARGE_CONSOLE_SCREENSHOTS=DIR the browser tests also save the pages
they reach as DIR/console-*.png (how docs/ got its pictures)."""
import http.client
import json
import os
import time

import boto3
import botocore.config
import pytest

from conftest import Agent, Barged, wait_task
from lbtraffic import free_port

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
SHOTS = os.environ.get("BARGE_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def env(tmp_path_factory, test_registry):
    tmp = tmp_path_factory.mktemp("console")
    b = Barged(str(tmp / "data")).start()
    ecs = b.client("ecs")
    ecs.create_cluster(clusterName="default")
    agent = None
    try:
        # metrics every second, so that the charts have points soon
        agent = Agent(b, str(tmp / "host1"), extra_args=["--metrics-interval", "1"]).start()
        yield b, test_registry.images["busybox"]
    finally:
        if agent:
            agent.close()
        b.stop()


@pytest.fixture(scope="module")
def browser(env):
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--disable-gpu"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    yield d
    d.quit()


def wait_until(pred, timeout=90, every=0.3, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def text(d, sel):
    """The text of the first element matching the CSS selector sel, or ""
    (read in the page, since views redraw their live part every few seconds)."""
    return d.execute_script("const e = document.querySelector(arguments[0]);"
                            "return e ? e.innerText : '';", sel)


def shot(d, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        d.save_screenshot(os.path.join(SHOTS, f"console-{name}.png"))


def sign_in(d, b, akid=None, secret=None):
    d.get(b.endpoint + "/console/")
    # the page asks barged whether a session goes on: the form, or sign out first
    WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "akid").is_displayed() or
                               d.find_element(By.ID, "logout").is_displayed())
    if d.find_element(By.ID, "logout").is_displayed():
        d.find_element(By.ID, "logout").click()
        WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "akid").is_displayed())
    d.find_element(By.ID, "akid").clear()
    d.find_element(By.ID, "akid").send_keys(akid or b.access_key)
    d.find_element(By.ID, "secret").clear()
    d.find_element(By.ID, "secret").send_keys(secret or b.secret_key)
    d.find_element(By.ID, "login-btn").click()


def signed_in(d, b):
    sign_in(d, b)
    wait_until(lambda: "user/admin" in text(d, "#who"), 20, what="signed in")


def go(d, b, fragment):
    d.get(f"{b.endpoint}/console/#/{fragment}")


def register(ecs, image, family, command=None, **kw):
    return ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "main", "image": image, "memory": 16, "cpu": 64,
                               "command": command or SLEEPER, **kw}]
    )["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, name):
    return ecs.describe_services(cluster="default", services=[name])["services"][0]


def deployments(d):
    """The deployments table as rows of cells."""
    return d.execute_script(
        "return [...document.querySelectorAll('#deployments tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText.trim()));")


# --- sign-in and the session's defences (plain HTTP) ----------------------

def request(b, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers=headers or {})
    r = c.getresponse()
    data = r.read()
    cookie = r.getheader("Set-Cookie")
    c.close()
    return r.status, (json.loads(data) if data else None), cookie


def login(b, akid=None, secret=None, headers=None):
    return request(b, "POST", "/console/login",
                   {"accessKeyId": akid or b.access_key, "secretAccessKey": secret or b.secret_key},
                   headers)


def session(b):
    status, out, cookie = login(b)
    assert status == 200, out
    token = cookie.split(";")[0]
    assert token.startswith("barge_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return token, out["csrfToken"]


def test_sign_in_refuses_a_wrong_secret_in_the_browser(env, browser):
    b, _ = env
    sign_in(browser, b, secret="x" * 40)
    err = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.ID, "login-error").is_displayed() and
        d.find_element(By.ID, "login-error").text)
    assert "UnrecognizedClientException" in err and b.access_key in err
    assert not browser.find_element(By.ID, "nav").is_displayed()
    shot(browser, "login")
    signed_in(browser, b)
    assert browser.find_element(By.ID, "nav").is_displayed()
    # the session survives a reload (the cookie is HttpOnly: the page asks barged)
    browser.refresh()
    wait_until(lambda: "user/admin" in text(browser, "#who"), 20, what="signed in after reload")
    assert browser.execute_script("return document.cookie") == ""


def test_login_errors_name_the_problem(env):
    b, _ = env
    status, out, cookie = login(b, secret="wrong")
    assert status == 401 and out["__type"] == "UnrecognizedClientException" and cookie is None
    status, out, _ = login(b, akid="AKIANOSUCHKEY0000000")
    assert status == 401 and "'AKIANOSUCHKEY0000000'" in out["message"]
    status, out, _ = request(b, "POST", "/console/login", {"accessKeyId": b.access_key})
    assert status == 400 and out["__type"] == "ValidationException"
    assert "secretAccessKey" in out["message"]


def test_api_calls_need_the_csrf_token_and_this_origin(env):
    b, _ = env
    cookie, csrf = session(b)
    ok = {"Cookie": cookie, "X-CSRF-Token": csrf}
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {}, ok)
    assert status == 200 and any(a.endswith("/default") for a in out["clusterArns"])
    # what a page of another site could make the browser send
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {}, {"Cookie": cookie})
    assert status == 403 and "X-CSRF-Token" in out["message"]
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {"Cookie": cookie, "X-CSRF-Token": "0" * 64})
    assert status == 403 and "does not match" in out["message"]
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {**ok, "Origin": "http://evil.example"})
    assert status == 403 and "'http://evil.example'" in out["message"]
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {**ok, "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "'cross-site'" in out["message"]
    status, out, cookie2 = login(b, headers={"Origin": "http://evil.example"})
    assert status == 403 and cookie2 is None
    # this origin is fine; behind an https proxy the cookie is Secure
    status, _, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                           {**ok, "Origin": b.endpoint})
    assert status == 200
    status, _, plain = login(b, headers={"Origin": b.endpoint})
    assert status == 200 and "Secure" not in plain
    status, _, secure = login(b, headers={"Origin": f"https://127.0.0.1:{b.port}"})
    assert status == 200 and secure.endswith("; Secure")
    # the API's own validation and errors, as for signed calls
    status, out, _ = request(b, "POST", "/console/api/ecs/DescribeClusters", {"clusters": 5}, ok)
    assert status == 400 and out["__type"] == "SerializationException"
    status, out, _ = request(b, "POST", "/console/api/iam/ListUsers", {}, ok)
    assert status == 400 and "'iam'" in out["message"]
    # ECS's 1 MiB cap on a request holds here too
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters",
                             {"nextToken": "x" * (1 << 20)}, ok)
    assert status == 400 and out["__type"] == "ClientException" and "bytes" in out["message"]
    # without a cookie there is no session
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {"X-CSRF-Token": csrf})
    assert status == 401


def test_target_health_comes_from_elbv2(env):
    """The service page's target health is elbv2's DescribeTargetHealth, a
    query-protocol operation, called with JSON through the same pipeline."""
    b, _ = env
    elb = b.client("elbv2")
    tg = elb.create_target_group(Name="console-tg", Protocol="HTTP", Port=8080,
                                 TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 9}])
    cookie, csrf = session(b)
    status, out, _ = request(b, "POST", "/console/api/elbv2/DescribeTargetHealth",
                             {"TargetGroupArn": tg}, {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 200, out
    want = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    got = out["TargetHealthDescriptions"]
    assert [(t["Target"]["Id"], t["Target"]["Port"], t["TargetHealth"]["State"]) for t in got] == \
        [(t["Target"]["Id"], t["Target"]["Port"], t["TargetHealth"]["State"]) for t in want]
    status, out, _ = request(b, "POST", "/console/api/elbv2/DescribeTargetHealth",
                             {"TargetGroupArn": tg + "x"}, {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 400 and out["__type"] == "TargetGroupNotFound", out
    elb.delete_target_group(TargetGroupArn=tg)


def test_service_page_draws_its_target_groups_health(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    elb = b.client("elbv2")
    instance = ecs.describe_container_instances(
        cluster="default", containerInstances=ecs.list_container_instances(
            cluster="default")["containerInstanceArns"])["containerInstances"][0]["ec2InstanceId"]
    lb = elb.create_load_balancer(Name="console-lb", Type="application",
                                  Scheme="internal")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="console-svc-tg", Protocol="HTTP", Port=80,
                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    try:
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=free_port(),
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        td = register(ecs, busybox, "balanced", portMappings=[{"containerPort": 80}])
        # no tasks: the targets drawn are the ones registered here
        ecs.create_service(cluster="default", serviceName="balanced", taskDefinition=td,
                           desiredCount=0, loadBalancers=[{"targetGroupArn": tg,
                                                           "containerName": "main",
                                                           "containerPort": 80}])
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance, "Port": 9},
                                                         {"Id": instance, "Port": 10}])
        signed_in(browser, b)
        go(browser, b, "service/default/balanced")

        def drawn():
            return browser.execute_script(
                "return [...document.querySelectorAll('table.targets tbody tr')]"
                ".map(r => [...r.cells].map(c => c.innerText.trim()));")
        rows = wait_until(lambda: len(drawn()) == 2 and drawn(), 30, what="the targets")
        assert sorted(r[:3] for r in rows) == [["console-svc-tg", instance, "10"],
                                               ["console-svc-tg", instance, "9"]]
        assert all(r[3] in ("initial", "healthy", "unhealthy") for r in rows), rows
        # the state drawn is elbv2's, once it has settled
        wait_until(lambda: sorted(r[3] for r in drawn()) == sorted(
            t["TargetHealth"]["State"] for t in
            elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]), 30,
            what="the drawn states to match DescribeTargetHealth")
        shot(browser, "target-health")
    finally:
        ecs.delete_service(cluster="default", service="balanced", force=True)
        elb.delete_load_balancer(LoadBalancerArn=lb)
        elb.delete_target_group(TargetGroupArn=tg)


def test_s3_buckets_whose_names_start_with_console_stay_reachable(env):
    b, _ = env
    s3 = boto3.client("s3", endpoint_url=b.endpoint, region_name="us-east-1",
                      aws_access_key_id=b.access_key, aws_secret_access_key=b.secret_key,
                      config=botocore.config.Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="consoles")
    s3.put_object(Bucket="consoles", Key="a/b.txt", Body=b"kept")
    assert s3.get_object(Bucket="consoles", Key="a/b.txt")["Body"].read() == b"kept"
    s3.delete_object(Bucket="consoles", Key="a/b.txt")
    s3.delete_bucket(Bucket="consoles")


def regional(b, service, region):
    return boto3.client(service, endpoint_url=b.endpoint, region_name=region,
                        aws_access_key_id=b.access_key, aws_secret_access_key=b.secret_key)


def test_api_calls_run_in_the_region_the_page_names(env):
    b, _ = env
    regional(b, "ecs", "ap-south-2").create_cluster(clusterName="south-only")
    cookie, csrf = session(b)
    ok = {"Cookie": cookie, "X-CSRF-Token": csrf}
    status, out, _ = request(b, "GET", "/console/session", None, {"Cookie": cookie})
    assert status == 200 and out["region"] == "us-east-1"
    assert {"us-east-1", "ap-south-2"} <= set(out["regions"])
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {**ok, "X-Barge-Region": "ap-south-2"})
    assert status == 200 and [a.split(":")[3] for a in out["clusterArns"]] == ["ap-south-2"]
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {}, ok)
    assert status == 200 and not any(a.endswith("/south-only") for a in out["clusterArns"])
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {**ok, "X-Barge-Region": "mars"})
    assert status == 400 and "'mars'" in out["message"]
    regional(b, "ecs", "ap-south-2").delete_cluster(cluster="south-only")


def test_sign_out_ends_the_session(env):
    b, _ = env
    cookie, csrf = session(b)
    status, out, _ = request(b, "GET", "/console/session", None, {"Cookie": cookie})
    assert status == 200 and out["csrfToken"] == csrf and out["arn"].endswith(":user/admin")
    status, _, cleared = request(b, "POST", "/console/logout", {},
                                 {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 200 and "Max-Age=0" in cleared
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {},
                             {"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 401 and out["__type"] == "ExpiredTokenException"


def test_an_inactive_or_deleted_key_ends_its_sessions(env):
    b, _ = env
    iam = b.client("iam")
    iam.create_user(UserName="leaver")
    key = iam.create_access_key(UserName="leaver")["AccessKey"]
    status, out, cookie = login(b, key["AccessKeyId"], key["SecretAccessKey"])
    assert status == 200 and out["arn"].endswith(":user/leaver")
    auth = {"Cookie": cookie.split(";")[0], "X-CSRF-Token": out["csrfToken"]}
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {}, auth)
    assert status == 400 and out["__type"] == "AccessDeniedException"  # no policy: denied
    iam.update_access_key(UserName="leaver", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    status, out, _ = request(b, "POST", "/console/api/ecs/ListClusters", {}, auth)
    assert status == 401 and "inactive" in out["message"]
    status, _, _ = login(b, key["AccessKeyId"], key["SecretAccessKey"])
    assert status == 401
    iam.update_access_key(UserName="leaver", AccessKeyId=key["AccessKeyId"], Status="Active")
    status, out, cookie = login(b, key["AccessKeyId"], key["SecretAccessKey"])
    assert status == 200
    auth = {"Cookie": cookie.split(";")[0], "X-CSRF-Token": out["csrfToken"]}
    iam.delete_access_key(UserName="leaver", AccessKeyId=key["AccessKeyId"])
    status, out, _ = request(b, "GET", "/console/session", None, auth)
    assert status == 401 and "no longer exists" in out["message"]
    iam.delete_user(UserName="leaver")


def test_sessions_expire(tmp_path):
    b = Barged(str(tmp_path / "data"), extra_args=["--console-session-ttl", "1"]).start()
    try:
        cookie, csrf = session(b)
        assert "Max-Age=1" in login(b)[2]
        wait_until(lambda: request(b, "POST", "/console/api/ecs/ListClusters", {},
                                   {"Cookie": cookie, "X-CSRF-Token": csrf})[0] == 401,
                   30, what="the session to expire")
    finally:
        b.stop()


# --- views and actions in the browser -------------------------------------

def test_watch_a_deployment_roll_roll_back_and_scale(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    td1 = register(ecs, busybox, "web")
    ecs.create_service(cluster="default", serviceName="web", taskDefinition=td1, desiredCount=2)
    signed_in(browser, b)
    go(browser, b, "services/default")
    wait_until(lambda: "web" in text(browser, "#services"), 30, what="the service list")
    browser.find_element(By.LINK_TEXT, "web").click()
    wait_until(lambda: any(r[1] == "PRIMARY" and r[3] == "2 / 2" and r[5] == "COMPLETED"
                           for r in deployments(browser)), what="the first deployment")

    # a new revision rolls: its tasks become healthy only after a while, so
    # the page shows both deployments, then follows the roll to completion
    td2 = register(ecs, busybox, "web", environment=[{"name": "V", "value": "2"}],
                   command=["sh", "-c", "sleep 8; touch /tmp/ready; " + SLEEPER[2]],
                   healthCheck={"command": ["CMD-SHELL", "test -f /tmp/ready"],
                                "interval": 5, "timeout": 2, "retries": 3})
    ecs.update_service(cluster="default", service="web", taskDefinition=td2)
    wait_until(lambda: [r[1:3] + r[5:6] for r in deployments(browser)] ==
               [["PRIMARY", "web:2", "IN_PROGRESS"], ["ACTIVE", "web:1", "COMPLETED"]] or
               [r[1:3] + r[5:6] for r in deployments(browser)] ==
               [["PRIMARY", "web:2", "IN_PROGRESS"], ["ACTIVE", "web:1", "IN_PROGRESS"]], 30,
               what="both deployments in the page")
    shot(browser, "deployment")
    wait_until(lambda: [r[1:6] for r in deployments(browser)] ==
               [["PRIMARY", "web:2", "2 / 2", "0", "COMPLETED"]], what="the roll to finish")
    assert "has reached a steady state" in text(browser, "#events")
    # roll back: to the revision before the current one, as `barge rollback`
    browser.find_element(By.ID, "rollback").click()
    wait_until(lambda: describe(ecs, "web")["taskDefinition"] == td1, 30, what="rollback")
    wait_until(lambda: [r[1:6] for r in deployments(browser)] ==
               [["PRIMARY", "web:1", "2 / 2", "0", "COMPLETED"]], what="the rollback to finish")
    # scale to 3 and see the service get there
    count = browser.find_element(By.ID, "desired-count")
    count.clear()
    count.send_keys("3")
    browser.find_element(By.ID, "scale").click()
    wait_until(lambda: "desired 3 · running 3" in text(browser, "#service-summary"),
               what="three running")
    assert describe(ecs, "web")["desiredCount"] == 3
    assert text(browser, "#error") == ""
    # CPU and memory charts of the service, drawn from the metrics barged keeps
    assert browser.execute_script("return document.querySelectorAll('svg.metric').length") == 2
    wait_until(lambda: browser.execute_script(
        "return document.querySelectorAll('svg[aria-label^=Memory] path').length"), 60,
        what="a memory utilization line")
    # force a new deployment: another deployment of the same revision
    before = describe(ecs, "web")["deployments"][0]["id"]
    browser.find_element(By.ID, "force-deploy").click()
    wait_until(lambda: describe(ecs, "web")["deployments"][0]["id"] != before, 30,
               what="a forced deployment")
    assert describe(ecs, "web")["deployments"][0]["taskDefinition"] == td1
    # the cluster view: the host's capacity, minus what the tasks reserve
    go(browser, b, "clusters")
    wait_until(lambda: "connected" in text(browser, "table.instances"), 30, what="instances")
    inst = ecs.describe_container_instances(
        cluster="default",
        containerInstances=ecs.list_container_instances(cluster="default")
        ["containerInstanceArns"])["containerInstances"][0]
    mem = {r["name"]: r["integerValue"] for r in inst["registeredResources"]}["MEMORY"]
    assert f" / {mem}" in text(browser, "table.instances")
    shot(browser, "clusters")
    ecs.delete_service(cluster="default", service="web", force=True)


def open_task(d, b, td):
    """Runs a task of td and opens its page once it runs; its ARN."""
    ecs = b.client("ecs")
    arn = ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"]
    wait_task(ecs, "default", arn, ("RUNNING",))
    signed_in(d, b)
    go(d, b, f"task/default/{arn.split('/')[-1]}")
    return arn


def test_stop_a_task_and_see_its_exit_code_and_reason(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    arn = open_task(browser, b, register(ecs, busybox, "oneoff"))
    wait_until(lambda: "RUNNING" in text(browser, "#containers"), 30, what="the task page")
    browser.find_element(By.ID, "stop-task").click()
    wait_until(lambda: "Stopped from the barge console" in text(browser, "#stopped-reason"),
               what="the stopped reason")
    row = browser.execute_script("return [...document.querySelector('#containers tbody tr')"
                                 ".cells].map(c => c.innerText.trim())")
    task = wait_task(ecs, "default", arn)
    assert row[2] == "STOPPED" and row[3] == str(task["containers"][0]["exitCode"])
    shot(browser, "task")


def test_follow_logs(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    td = ecs.register_task_definition(family="ticker", containerDefinitions=[{
        "name": "main", "image": busybox, "memory": 16,
        "command": ["sh", "-c", "i=0; while true; i=$((i+1)); do echo tick $i; sleep 0.5; done"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/ticker", "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "app", "awslogs-create-group": "true"}}}]
    )["taskDefinition"]["taskDefinitionArn"]
    arn = open_task(browser, b, td)
    wait_until(lambda: "logs" in text(browser, "#containers"), 30, what="the logs link")
    browser.find_element(By.LINK_TEXT, "logs").click()
    wait_until(lambda: "tick 2" in text(browser, "#log-lines"), what="the first lines")
    # following: lines written after the page opened arrive without a reload
    seen = text(browser, "#log-lines")
    last = max(int(line.split()[-1]) for line in seen.splitlines() if "tick" in line)
    wait_until(lambda: f"tick {last + 4}" in text(browser, "#log-lines"), what="new lines")
    lines = [line for line in text(browser, "#log-lines").splitlines() if "tick" in line]
    ticks = [int(line.split()[-1]) for line in lines]
    assert ticks == list(range(1, len(ticks) + 1)), "every line once, in order"
    assert browser.find_element(By.ID, "log-stream").get_attribute("value") == \
        f"app/main/{arn.split('/')[-1]}"
    shot(browser, "logs")
    ecs.stop_task(cluster="default", task=arn)


def test_search_a_log_groups_streams(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    logs = b.client("logs")
    arns = []
    for word in ("alpha", "beta"):
        td = ecs.register_task_definition(family="searched", containerDefinitions=[{
            "name": "main", "image": busybox, "memory": 16,
            "command": ["sh", "-c", f"echo starting {word}; echo ERROR {word} failed; echo done"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/searched", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "app", "awslogs-create-group": "true"}}}]
        )["taskDefinition"]["taskDefinitionArn"]
        arns.append(ecs.run_task(cluster="default", taskDefinition=td)["tasks"][0]["taskArn"])
    for arn in arns:
        wait_task(ecs, "default", arn)
    wait_until(lambda: len(logs.filter_log_events(logGroupName="/ecs/searched",
                                                  filterPattern="done")["events"]) == 2,
               60, what="both tasks' lines shipped")
    signed_in(browser, b)
    go(browser, b, "logs/%2Fecs%2Fsearched")
    pattern = wait_until(lambda: browser.find_elements(By.ID, "log-pattern"), 30,
                         what="the search box")[0]
    pattern.send_keys("ERROR")
    browser.find_element(By.ID, "log-search-btn").click()
    wait_until(lambda: "2 matching events" in text(browser, "#log-search-summary"), 30,
               what="the search's results")
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#log-search-results tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText.trim()));")
    assert sorted(r[2] for r in rows) == ["ERROR alpha failed", "ERROR beta failed"]
    assert sorted(r[1] for r in rows) == sorted(f"app/main/{a.split('/')[-1]}" for a in arns)
    shot(browser, "log-search")
    # a pattern AWS would refuse shows its error
    pattern.clear()
    pattern.send_keys('"unterminated')
    browser.find_element(By.ID, "log-search-btn").click()
    err = wait_until(lambda: text(browser, "#error"), 30, what="the error banner")
    assert err.startswith("InvalidParameterException:"), err


def test_logs_link_follows_awslogs_region(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    td = ecs.register_task_definition(family="farlogs", containerDefinitions=[{
        "name": "main", "image": busybox, "memory": 16,
        "command": ["sh", "-c", "echo from afar; " + SLEEPER[2]],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/farlogs", "awslogs-region": "eu-central-1",
            "awslogs-stream-prefix": "app", "awslogs-create-group": "true"}}}]
    )["taskDefinition"]["taskDefinitionArn"]
    arn = open_task(browser, b, td)
    wait_until(lambda: "logs" in text(browser, "#containers"), 30, what="the logs link")
    browser.find_element(By.LINK_TEXT, "logs").click()
    wait_until(lambda: "from afar" in text(browser, "#log-lines"), what="eu-central-1's lines")
    assert browser.find_element(By.ID, "region").get_attribute("value") == "eu-central-1"
    picker = browser.find_element(By.ID, "region")
    picker.clear()
    picker.send_keys("us-east-1\n")
    ecs.stop_task(cluster="default", task=arn)


def test_task_definition_revisions_side_by_side(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    register(ecs, busybox, "diffed", command=["sleep", "1"])
    register(ecs, busybox, "diffed", command=["sleep", "2"])
    signed_in(browser, b)
    go(browser, b, "taskdefs/diffed")
    wait_until(lambda: "changed line" in text(browser, "#td-diff"), 30, what="the diff")
    removed = browser.execute_script(
        "return [...document.querySelectorAll('#td-diff .del')].map(e => e.innerText)")
    added = browser.execute_script(
        "return [...document.querySelectorAll('#td-diff .add')].map(e => e.innerText)")
    assert any('"1"' in x for x in removed) and any('"2"' in x for x in added)
    shot(browser, "taskdefs")


def test_a_denied_update_service_shows_access_denied(env, browser):
    b, busybox = env
    ecs = b.client("ecs")
    td = register(ecs, busybox, "guarded")
    ecs.create_service(cluster="default", serviceName="guarded", taskDefinition=td,
                       desiredCount=1)
    iam = b.client("iam")
    iam.create_user(UserName="viewer")
    iam.put_user_policy(UserName="viewer", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ecs:*", "cloudwatch:*", "logs:*"], "Resource": "*"},
            {"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="viewer")["AccessKey"]
    sign_in(browser, b, key["AccessKeyId"], key["SecretAccessKey"])
    wait_until(lambda: "user/viewer" in text(browser, "#who"), 20, what="signed in as viewer")
    go(browser, b, "service/default/guarded")
    wait_until(lambda: "PRIMARY" in text(browser, "#deployments"), 30, what="the service")
    count = browser.find_element(By.ID, "desired-count")
    count.clear()
    count.send_keys("4")
    browser.find_element(By.ID, "scale").click()
    err = wait_until(lambda: text(browser, "#error"), 30, what="the error banner")
    assert err.startswith("AccessDeniedException:") and "ecs:UpdateService" in err
    assert "user/viewer" in err
    assert describe(ecs, "guarded")["desiredCount"] == 1
    shot(browser, "denied")
    browser.find_element(By.ID, "logout").click()
    ecs.delete_service(cluster="default", service="guarded", force=True)


def test_region_picker_shows_the_picked_regions_clusters(env, browser):
    b, _ = env
    regional(b, "ecs", "eu-west-1").create_cluster(clusterName="dublin")
    signed_in(browser, b)
    go(browser, b, "clusters")
    wait_until(lambda: "default" in text(browser, "#live"), 30, what="the clusters")
    assert "dublin" not in text(browser, "#live")
    # the regions that hold something are offered
    offered = browser.execute_script(
        "return [...document.querySelectorAll('#regions option')].map(o => o.value)")
    assert "eu-west-1" in offered and "us-east-1" in offered
    picker = browser.find_element(By.ID, "region")
    picker.clear()
    picker.send_keys("eu-west-1\n")
    wait_until(lambda: "dublin" in text(browser, "#live"), 30, what="eu-west-1's clusters")
    assert "default" not in text(browser, ".cluster h2")
    shot(browser, "region")
    # a typed region without data: no clusters there
    picker.clear()
    picker.send_keys("sa-east-1\n")
    wait_until(lambda: "No clusters." in text(browser, "#live"), 30, what="sa-east-1's clusters")
    # back to the default region, and the choice outlives a reload
    picker.clear()
    picker.send_keys("us-east-1\n")
    wait_until(lambda: "default" in text(browser, "#live") and
               "dublin" not in text(browser, "#live"), 30, what="us-east-1's clusters")
    browser.refresh()
    wait_until(lambda: browser.find_element(By.ID, "region").get_attribute("value") ==
               "us-east-1", 20, what="the picked region after a reload")
    regional(b, "ecs", "eu-west-1").delete_cluster(cluster="dublin")
