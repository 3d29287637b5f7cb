"""The CloudWatch Logs API (issue 8) through boto3 and Debian's aws CLI:
groups, streams, retention, tags, PutLogEvents' rules, GetLogEvents' forward
and backward tokens, FilterLogEvents' patterns and paging, and the errors
each operation can return."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import AwsCli, error_code, error_message, raw_call

DAY_MS = 86400 * 1000


def now_ms():
    return int(time.time() * 1000)


@pytest.fixture
def logs(barged):
    return barged.client("logs")


def put(logs, group, stream, messages, start=None, step=1):
    start = now_ms() - 60000 if start is None else start
    events = [{"timestamp": start + i * step, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_log_groups(logs):
    logs.create_log_group(logGroupName="/ecs/web", tags={"team": "a"})
    for name in ("/ecs/api", "/ecs/worker", "other", "Prod.Web-1_#x"):
        logs.create_log_group(logGroupName=name)
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="/ecs/web")
    assert error_code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="bad:name")
    assert error_code(e) == "InvalidParameterException"
    assert "bad:name" in error_message(e)

    groups = logs.describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [
        "/ecs/api", "/ecs/web", "/ecs/worker", "Prod.Web-1_#x", "other"]
    web = groups[1]
    assert web["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*"
    assert web["storedBytes"] == 0 and web["creationTime"] > now_ms() - 60000
    assert "retentionInDays" not in web

    prefixed = logs.describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"]
    assert [g["logGroupName"] for g in prefixed] == ["/ecs/api", "/ecs/web", "/ecs/worker"]

    # Paging: two at a time, each token picking up where the last page ended.
    names, token, pages = [], None, 0
    while True:
        kw = {"limit": 2, **({"nextToken": token} if token else {})}
        r = logs.describe_log_groups(**kw)
        names += [g["logGroupName"] for g in r["logGroups"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
    assert pages == 3 and len(names) == 5 and names == sorted(names)
    paginated = logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 2}).build_full_result()
    assert [g["logGroupName"] for g in paginated["logGroups"]] == names
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(nextToken="not-a-token!")
    assert error_code(e) == "InvalidParameterException"

    logs.put_retention_policy(logGroupName="/ecs/web", retentionInDays=14)
    g = logs.describe_log_groups(logGroupNamePrefix="/ecs/web")["logGroups"][0]
    assert g["retentionInDays"] == 14
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/ecs/web", retentionInDays=8)
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/ecs/nope", retentionInDays=7)
    assert error_code(e) == "ResourceNotFoundException"
    logs.delete_retention_policy(logGroupName="/ecs/web")
    g = logs.describe_log_groups(logGroupNamePrefix="/ecs/web")["logGroups"][0]
    assert "retentionInDays" not in g

    logs.delete_log_group(logGroupName="/ecs/web")
    assert "/ecs/web" not in [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName="/ecs/web")
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == "The specified log group does not exist."


def test_log_group_name_pattern(barged, logs):
    for name in ("/ecs/Web", "/ecs/api", "web-2"):
        logs.create_log_group(logGroupName=name)
    # Debian's botocore predates logGroupNamePattern: a raw call.
    status, body = raw_call(barged, "Logs_20140328.DescribeLogGroups",
                            {"logGroupNamePattern": "WEB"}, service="logs")
    assert status == 200
    assert [g["logGroupName"] for g in body["logGroups"]] == ["/ecs/Web", "web-2"]
    status, body = raw_call(barged, "Logs_20140328.DescribeLogGroups",
                            {"logGroupNamePattern": "web", "logGroupNamePrefix": "/"},
                            service="logs")
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_log_streams(logs):
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="g", logStreamName="s")
    assert error_code(e) == "ResourceNotFoundException"
    logs.create_log_group(logGroupName="g")
    for s in ("b", "a", "c/1", "c/2"):
        logs.create_log_stream(logGroupName="g", logStreamName=s)
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="g", logStreamName="a")
    assert error_code(e) == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="g", logStreamName="x:y")
    assert error_code(e) == "InvalidParameterException"

    t0 = now_ms() - 10000
    put(logs, "g", "b", ["old"], start=t0)
    put(logs, "g", "a", ["newer"], start=t0 + 1000)
    put(logs, "g", "c/1", ["newest", "and more"], start=t0 + 2000)

    streams = logs.describe_log_streams(logGroupName="g")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a", "b", "c/1", "c/2"]
    a = streams[0]
    assert a["arn"] == "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:a"
    assert a["firstEventTimestamp"] == a["lastEventTimestamp"] == t0 + 1000
    assert a["storedBytes"] == len("newer") and a["lastIngestionTime"] >= t0
    assert "firstEventTimestamp" not in streams[3]
    desc = logs.describe_log_streams(logGroupName="g", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in desc] == ["c/2", "c/1", "b", "a"]
    pre = logs.describe_log_streams(logGroupName="g", logStreamNamePrefix="c/")["logStreams"]
    assert [s["logStreamName"] for s in pre] == ["c/1", "c/2"]
    by_time = logs.describe_log_streams(logGroupName="g", orderBy="LastEventTime",
                                        descending=True)["logStreams"]
    assert [s["logStreamName"] for s in by_time] == ["c/1", "a", "b", "c/2"]
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName="g", orderBy="LastEventTime",
                                  logStreamNamePrefix="c")
    assert error_code(e) == "InvalidParameterException"

    # Paging in both orders.
    for kw in ({}, {"descending": True}, {"orderBy": "LastEventTime", "descending": True}):
        full = logs.get_paginator("describe_log_streams").paginate(
            logGroupName="g", PaginationConfig={"PageSize": 1}, **kw).build_full_result()
        once = logs.describe_log_streams(logGroupName="g", **kw)["logStreams"]
        assert [s["logStreamName"] for s in full["logStreams"]] == \
            [s["logStreamName"] for s in once], kw

    g = logs.describe_log_groups(logGroupNamePrefix="g")["logGroups"][0]
    assert g["storedBytes"] == len("old") + len("newer") + len("newest") + len("and more")
    logs.delete_log_stream(logGroupName="g", logStreamName="c/1")
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName="g", logStreamName="c/1")
    assert error_code(e) == "ResourceNotFoundException"
    assert error_message(e) == "The specified log stream does not exist."
    # A stream made again under the same name starts empty.
    logs.create_log_stream(logGroupName="g", logStreamName="c/1")
    assert logs.get_log_events(logGroupName="g", logStreamName="c/1")["events"] == []
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName="nope")
    assert error_code(e) == "ResourceNotFoundException"


def test_put_log_events_rules(logs):
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    with pytest.raises(ClientError) as e:
        put(logs, "g", "nope", ["x"])
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        put(logs, "nope", "s", ["x"])
    assert error_code(e) == "ResourceNotFoundException"
    t = now_ms()
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
            {"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}])
    assert error_code(e) == "InvalidParameterException"
    assert "chronological" in error_message(e)
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
            {"timestamp": t - 2 * DAY_MS, "message": "a"}, {"timestamp": t, "message": "b"}])
    assert error_code(e) == "InvalidParameterException"
    assert "24 hours" in error_message(e)
    big = "x" * 200000
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="g", logStreamName="s",
                            logEvents=[{"timestamp": t, "message": big}] * 6)
    assert error_code(e) == "InvalidParameterException"
    assert "too large" in error_message(e)

    # Too old (over 14 days) and too new (over 2 hours ahead) are refused one
    # by one and the rest stored (a batch spans 24 hours at most, so old and
    # new go in separate batches).
    r = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": t - 15 * DAY_MS, "message": "ancient"},
        {"timestamp": t - 15 * DAY_MS + 1, "message": "ancient too"},
        {"timestamp": t - 15 * DAY_MS + 10 * 3600 * 1000, "message": "still ancient"}])
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 3}
    r = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": t - 1000, "message": "kept"},
        {"timestamp": t + 3 * 3600 * 1000, "message": "future"}])
    assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    assert r["nextSequenceToken"]
    events = logs.get_log_events(logGroupName="g", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["kept"]
    # With a retention, events older than it are "expired".
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    r = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[
        {"timestamp": t - DAY_MS - 3600 * 1000, "message": "expired"},
        {"timestamp": t - 12 * 3600 * 1000, "message": "fine"}])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}

def test_put_log_events_model_limits(barged, logs):
    """What botocore would stop on the client side, sent raw."""
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    t = now_ms()
    for events in ([{"timestamp": t, "message": ""}], [],
                   [{"timestamp": t, "message": "x"}] * 10001):
        status, body = raw_call(barged, "Logs_20140328.PutLogEvents",
                                {"logGroupName": "g", "logStreamName": "s",
                                 "logEvents": events}, service="logs")
        assert status == 400 and body["__type"] == "InvalidParameterException", body
    status, body = raw_call(barged, "Logs_20140328.PutLogEvents",
                            {"logGroupName": "g", "logStreamName": "s",
                             "logEvents": [{"timestamp": "soon", "message": "x"}]},
                            service="logs")
    assert status == 400 and body["__type"] == "SerializationException"


def test_get_log_events_tokens(logs):
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    t0 = now_ms() - 100000
    put(logs, "g", "s", [f"m{i:02d}" for i in range(25)], start=t0, step=1000)

    # The default reads the newest events.
    r = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10)
    assert [e["message"] for e in r["events"]] == [f"m{i:02d}" for i in range(15, 25)]
    assert all(e["ingestionTime"] > 0 for e in r["events"])

    # Forward from the head, page by page, until the token comes back unchanged.
    seen, token, calls = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        r = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10, **kw)
        calls += 1
        seen += [e["message"] for e in r["events"]]
        if r["nextForwardToken"] == token:
            assert r["events"] == []
            break
        token = r["nextForwardToken"]
    assert seen == [f"m{i:02d}" for i in range(25)] and calls == 4

    # New events show up behind the last forward token.
    put(logs, "g", "s", ["late"], start=t0 + 50000)
    r = logs.get_log_events(logGroupName="g", logStreamName="s", nextToken=token)
    assert [e["message"] for e in r["events"]] == ["late"]

    # Backward from the end, the same way.
    r = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10)
    back = [e["message"] for e in r["events"]]
    token = r["nextBackwardToken"]
    while True:
        r = logs.get_log_events(logGroupName="g", logStreamName="s", limit=10, nextToken=token)
        if r["nextBackwardToken"] == token:
            assert r["events"] == []
            break
        back = [e["message"] for e in r["events"]] + back
        token = r["nextBackwardToken"]
    assert back == [f"m{i:02d}" for i in range(25)] + ["late"]

    # Time ranges: startTime inclusive, endTime exclusive.
    r = logs.get_log_events(logGroupName="g", logStreamName="s", startTime=t0 + 3000,
                            endTime=t0 + 6000, startFromHead=True)
    assert [e["message"] for e in r["events"]] == ["m03", "m04", "m05"]
    assert [e["timestamp"] for e in r["events"]] == [t0 + 3000, t0 + 4000, t0 + 5000]

    # An empty stream still gives tokens, and they repeat.
    logs.create_log_stream(logGroupName="g", logStreamName="empty")
    r = logs.get_log_events(logGroupName="g", logStreamName="empty", startFromHead=True)
    assert r["events"] == []
    r2 = logs.get_log_events(logGroupName="g", logStreamName="empty",
                             nextToken=r["nextForwardToken"])
    assert r2["nextForwardToken"] == r["nextForwardToken"]

    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName="g", logStreamName="s", nextToken="f/bogus")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName="g", logStreamName="nope")
    assert error_code(e) == "ResourceNotFoundException"


def test_get_log_events_by_identifier(barged, logs):
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    put(logs, "g", "s", ["hello"])
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:g:*"
    for ident in ("g", arn, arn[:-2]):
        status, body = raw_call(barged, "Logs_20140328.GetLogEvents",
                                {"logGroupIdentifier": ident, "logStreamName": "s"},
                                service="logs")
        assert status == 200, body
        assert [e["message"] for e in body["events"]] == ["hello"]
    status, body = raw_call(barged, "Logs_20140328.GetLogEvents",
                            {"logGroupIdentifier": "g", "logGroupName": "g",
                             "logStreamName": "s"}, service="logs")
    assert status == 400 and body["__type"] == "InvalidParameterException"


def test_filter_log_events(logs):
    logs.create_log_group(logGroupName="g")
    t0 = now_ms() - 100000
    lines = {
        "web/1": ["GET /users 200", "GET /health 200", "ERROR db timeout"],
        "web/2": ["POST /users 201", "WARN slow request", "ERROR disk full"],
        "worker": ["job 1 done", "ERROR job 2 failed", "job 3 done"],
    }
    for i, (stream, msgs) in enumerate(lines.items()):
        logs.create_log_stream(logGroupName="g", logStreamName=stream)
        # Interleave the streams' timestamps.
        events = [{"timestamp": t0 + k * 1000 + i, "message": m} for k, m in enumerate(msgs)]
        logs.put_log_events(logGroupName="g", logStreamName=stream, logEvents=events)

    def messages(**kw):
        r = logs.filter_log_events(logGroupName="g", **kw)
        return [e["message"] for e in r["events"]]

    every = messages()
    assert every == ["GET /users 200", "POST /users 201", "job 1 done",
                     "GET /health 200", "WARN slow request", "ERROR job 2 failed",
                     "ERROR db timeout", "ERROR disk full", "job 3 done"]
    assert messages(filterPattern="ERROR") == ["ERROR job 2 failed", "ERROR db timeout",
                                               "ERROR disk full"]
    assert messages(filterPattern="ERROR -disk") == ["ERROR job 2 failed", "ERROR db timeout"]
    assert messages(filterPattern="?WARN ?timeout") == ["WARN slow request", "ERROR db timeout"]
    assert messages(filterPattern='"/users 20"') == ["GET /users 200", "POST /users 201"]
    assert messages(filterPattern="users 200") == ["GET /users 200"]
    assert messages(filterPattern="error") == []
    assert messages(logStreamNamePrefix="web/", filterPattern="ERROR") == [
        "ERROR db timeout", "ERROR disk full"]
    assert messages(logStreamNames=["worker", "missing"]) == lines["worker"]
    assert messages(startTime=t0 + 1000, endTime=t0 + 2000) == [
        "GET /health 200", "WARN slow request", "ERROR job 2 failed"]

    r = logs.filter_log_events(logGroupName="g", filterPattern="ERROR")
    e = r["events"][0]
    assert e["logStreamName"] == "worker" and e["timestamp"] == t0 + 1000 + 2
    assert e["ingestionTime"] > 0 and e["eventId"]
    assert len({ev["eventId"] for ev in logs.filter_log_events(logGroupName="g")["events"]}) == 9
    assert sorted(s["logStreamName"] for s in r["searchedLogStreams"]) == sorted(lines)

    # Paging: limit 2 gives tokens; the paginator reassembles everything.
    r = logs.filter_log_events(logGroupName="g", limit=2)
    assert len(r["events"]) == 2 and r["nextToken"]
    full = logs.get_paginator("filter_log_events").paginate(
        logGroupName="g", PaginationConfig={"PageSize": 2}).build_full_result()
    assert [e["message"] for e in full["events"]] == every
    full = logs.get_paginator("filter_log_events").paginate(
        logGroupName="g", filterPattern="done", PaginationConfig={"PageSize": 1}
    ).build_full_result()
    assert [e["message"] for e in full["events"]] == ["job 1 done", "job 3 done"]

    for bad in ({"filterPattern": '{ $.x = 1 }'}, {"filterPattern": '"open'},
                {"nextToken": "????"},
                {"logStreamNames": ["a"], "logStreamNamePrefix": "a"}):
        with pytest.raises(ClientError) as e:
            logs.filter_log_events(logGroupName="g", **bad)
        assert error_code(e) == "InvalidParameterException", bad
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="nope")
    assert error_code(e) == "ResourceNotFoundException"


def test_tags(logs):
    logs.create_log_group(logGroupName="g", tags={"env": "dev"})
    arn = "arn:aws:logs:us-east-1:000000000000:log-group:g"
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev"}
    logs.tag_resource(resourceArn=arn + ":*", tags={"team": "core", "env": "prod"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod",
                                                                     "team": "core"}
    logs.untag_resource(resourceArn=arn, tagKeys=["env", "missing"])
    assert logs.list_tags_log_group(logGroupName="g")["tags"] == {"team": "core"}
    logs.tag_log_group(logGroupName="g", tags={"a": "1"})
    logs.untag_log_group(logGroupName="g", tags=["team"])
    assert logs.list_tags_log_group(logGroupName="g")["tags"] == {"a": "1"}
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn, tags={"aws:x": "y"})
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    assert error_code(e) == "TooManyTagsException"
    for bad in ("arn:aws:logs:us-east-1:000000000000:log-group:nope",
                "arn:aws:ecs:us-east-1:000000000000:cluster/default"):
        with pytest.raises(ClientError) as e:
            logs.list_tags_for_resource(resourceArn=bad)
        assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_log_group(logGroupName="nope")
    assert error_code(e) == "ResourceNotFoundException"


def test_retention_removes_old_events(logs):
    """Housekeeping (every few seconds) deletes events older than the group's
    retention; stream sizes and first timestamps follow."""
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    t = now_ms()
    put(logs, "g", "s", ["ten days old", "ten days old too"], start=t - 10 * DAY_MS)
    put(logs, "g", "s", ["three days old"], start=t - 3 * DAY_MS)
    put(logs, "g", "s", ["fresh"], start=t - 1000)
    s = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    assert s["firstEventTimestamp"] == t - 10 * DAY_MS
    logs.put_retention_policy(logGroupName="g", retentionInDays=7)
    deadline = time.time() + 30
    while time.time() < deadline:
        msgs = [e["message"] for e in
                logs.get_log_events(logGroupName="g", logStreamName="s",
                                    startFromHead=True)["events"]]
        if "ten days old" not in msgs:
            break
        time.sleep(0.5)
    assert msgs == ["three days old", "fresh"]
    s = logs.describe_log_streams(logGroupName="g")["logStreams"][0]
    assert s["firstEventTimestamp"] == t - 3 * DAY_MS
    assert s["storedBytes"] == len("three days old") + len("fresh")
    assert logs.filter_log_events(logGroupName="g", filterPattern="ten")["events"] == []
    # Shorter again: the three-day-old event goes too.
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    deadline = time.time() + 30
    while time.time() < deadline:
        msgs = [e["message"] for e in logs.filter_log_events(logGroupName="g")["events"]]
        if msgs == ["fresh"]:
            break
        time.sleep(0.5)
    assert msgs == ["fresh"]


def test_aws_cli(barged, tmp_path):
    cli = AwsCli(barged, str(tmp_path))
    cli.run("logs", "create-log-group", "--log-group-name", "/cli/app")
    cli.run("logs", "create-log-stream", "--log-group-name", "/cli/app",
            "--log-stream-name", "one")
    t = now_ms() - 5000
    out = cli.json("logs", "put-log-events", "--log-group-name", "/cli/app",
                   "--log-stream-name", "one", "--log-events",
                   f"timestamp={t},message=hello world", f"timestamp={t + 1},message=ERROR oops",
                   f"timestamp={t + 2},message=bye")
    assert out["nextSequenceToken"]
    ev = cli.json("logs", "get-log-events", "--log-group-name", "/cli/app",
                  "--log-stream-name", "one", "--start-from-head")
    assert [e["message"] for e in ev["events"]] == ["hello world", "ERROR oops", "bye"]
    assert ev["nextForwardToken"].startswith("f/") and ev["nextBackwardToken"].startswith("b/")
    fl = cli.json("logs", "filter-log-events", "--log-group-name", "/cli/app",
                  "--filter-pattern", "ERROR")
    assert [e["message"] for e in fl["events"]] == ["ERROR oops"]
    # The CLI pages through filter-log-events itself.
    fl = cli.json("logs", "filter-log-events", "--log-group-name", "/cli/app",
                  "--page-size", "1")
    assert [e["message"] for e in fl["events"]] == ["hello world", "ERROR oops", "bye"]
    st = cli.json("logs", "describe-log-streams", "--log-group-name", "/cli/app",
                  "--order-by", "LastEventTime", "--descending")
    assert st["logStreams"][0]["logStreamName"] == "one"
    gr = cli.json("logs", "describe-log-groups", "--log-group-name-prefix", "/cli")
    assert [g["logGroupName"] for g in gr["logGroups"]] == ["/cli/app"]
    cli.run("logs", "put-retention-policy", "--log-group-name", "/cli/app",
            "--retention-in-days", "30")
    cli.run("logs", "tag-resource", "--resource-arn",
            "arn:aws:logs:us-east-1:000000000000:log-group:/cli/app", "--tags", "k=v")
    tags = cli.json("logs", "list-tags-for-resource", "--resource-arn",
                    "arn:aws:logs:us-east-1:000000000000:log-group:/cli/app")
    assert tags["tags"] == {"k": "v"}
    # aws logs tail reads through FilterLogEvents.
    tail = cli.run("logs", "tail", "/cli/app", "--since", "1h", "--format", "short").stdout
    assert [line.split(" ", 1)[1] for line in tail.splitlines()] == [
        "hello world", "ERROR oops", "bye"]
    p = cli.run("logs", "create-log-group", "--log-group-name", "/cli/app", check=False)
    assert p.returncode != 0 and "ResourceAlreadyExistsException" in p.stderr
    p = cli.run("logs", "get-log-events", "--log-group-name", "/cli/app",
                "--log-stream-name", "missing", check=False)
    assert p.returncode != 0 and "ResourceNotFoundException" in p.stderr
    cli.run("logs", "delete-log-stream", "--log-group-name", "/cli/app",
            "--log-stream-name", "one")
    cli.run("logs", "delete-log-group", "--log-group-name", "/cli/app")
    assert cli.json("logs", "describe-log-groups")["logGroups"] == []


def test_unsigned_and_wrong_service(barged):
    import json
    import urllib.error
    import urllib.request
    req = urllib.request.Request(barged.endpoint + "/", data=b"{}", method="POST", headers={
        "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
        "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code in (400, 403)
    assert json.loads(e.value.read())["__type"] == "MissingAuthenticationTokenException"
    # Signed for ECS, sent to Logs.
    status, body = raw_call(barged, "Logs_20140328.DescribeLogGroups", {}, service="ecs")
    assert status == 400 and body["__type"] == "InvalidSignatureException"
