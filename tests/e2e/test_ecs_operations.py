"""Every operation of the ECS API model, called against barged with the
least input the model allows: none may answer "unknown operation" except the
ones listed below as not implemented yet, and none may fail as a server
error. The models walked are botocore's (the installed one, through
botocore.session) and the newer one barged embeds (data/models/ecs.json,
from a newer botocore), so an operation that either adds makes this test fail
until it is implemented or listed here."""
import json
import os

import botocore.session
import pytest

from conftest import ecs_raw

# Operations barged does not implement yet (none today). The test checks
# that exactly these are unknown, so a new operation in botocore's model
# fails it until barged implements it or it is listed here.
NOT_IMPLEMENTED = set()

EMBEDDED = os.path.join(os.path.dirname(__file__), "..", "..", "data", "models", "ecs.json")


def models():
    """(operation name -> input shape name, shapes) of each model walked."""
    session = botocore.session.get_session()
    installed = session.get_service_model("ecs")
    raw = session.get_component("data_loader").load_service_model(
        "ecs", "service-2", installed.api_version)
    yield ({op: raw["operations"][op].get("input", {}).get("shape")
            for op in installed.operation_names},
           raw["shapes"])
    with open(EMBEDDED) as f:
        embedded = json.load(f)
    # gen-models keeps the input as the shape's name
    yield ({op: d.get("input") for op, d in embedded["operations"].items()},
           embedded["shapes"])


def minimal(shapes, name, depth=0):
    """The least value of shape name: required members only, the shortest
    lists and strings the constraints allow, the first enum value."""
    s = shapes[name]
    t = s["type"]
    if t == "structure":
        return {m: minimal(shapes, s["members"][m]["shape"], depth + 1)
                for m in s.get("required", [])}
    if t == "list":
        n = s.get("min", 0)
        return [minimal(shapes, s["member"]["shape"], depth + 1) for _ in range(n)]
    if t == "map":
        return {}
    if t == "string":
        if s.get("enum"):
            return s["enum"][0]
        return "x" * max(1, s.get("min", 1))
    if t in ("integer", "long"):
        return max(1, s.get("min", 1))
    if t in ("float", "double"):
        return float(max(1, s.get("min", 1)))
    if t == "boolean":
        return False
    if t == "timestamp":
        return 0
    if t == "blob":
        return ""
    raise AssertionError(f"shape {name} of type {t}")


def all_operations():
    ops = {}
    for opmap, shapes in models():
        for op, shape in opmap.items():
            ops.setdefault(op, (shape, shapes))
    return ops


def test_every_model_operation_is_implemented(barged):
    ecs = barged.client("ecs")
    ecs.create_cluster()
    unknown, server_errors = set(), {}
    ops = all_operations()
    assert len(ops) >= 77
    for op, (shape, shapes) in sorted(ops.items()):
        body = minimal(shapes, shape) if shape else {}
        status, out = ecs_raw(barged, op, body)
        kind = out.get("__type", "").split("#")[-1]
        if kind == "UnknownOperationException":
            unknown.add(op)
        elif status >= 500:
            server_errors[op] = out
    assert barged.proc.poll() is None, "barged died during the walk"
    assert server_errors == {}
    assert sorted(unknown - NOT_IMPLEMENTED) == [], "unknown operations not listed"
    assert sorted(NOT_IMPLEMENTED - unknown) == [], "implemented: remove them from the list"


@pytest.mark.parametrize("op", ["PutAccountSetting", "GetTaskProtection",
                                "ListServicesByNamespace", "DiscoverPollEndpoint",
                                "SubmitTaskStateChange", "UpdateContainerAgent"])
def test_an_unlisted_operation_is_known(barged, op):
    # the walk's oracle: these answer something other than "unknown operation"
    status, out = ecs_raw(barged, op, {})
    assert out.get("__type", "").split("#")[-1] != "UnknownOperationException"
    status, out = ecs_raw(barged, "NoSuchOperation", {})
    assert out.get("__type", "").split("#")[-1] == "UnknownOperationException"
