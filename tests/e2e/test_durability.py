"""kill -9 of barged during a stream of writes loses no acknowledged write and
leaves nothing half-written."""
import threading
import time

from botocore.exceptions import ClientError, EndpointConnectionError
from urllib3.exceptions import HTTPError


def test_kill9_loses_no_acknowledged_write(barged):
    ecs = barged.client("ecs")
    acked = []
    stop = threading.Event()

    def writer(tid):
        i = 0
        while not stop.is_set():
            name = f"w{tid}-{i}"
            try:
                ecs.register_task_definition(
                    family=name, containerDefinitions=[{"name": "c", "image": "busybox",
                                                        "memory": 32}])
                acked.append(name)
            except Exception:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    barged.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) > 10, "too few writes before the kill to prove anything"

    barged.restart()
    ecs = barged.client("ecs")
    families = set()
    for page in ecs.get_paginator("list_task_definition_families").paginate():
        families.update(page["families"])
    missing = [n for n in acked if n not in families]
    assert not missing, f"acknowledged writes lost: {missing[:5]}"
    # every stored revision is whole
    for name in list(families)[:200]:
        td = ecs.describe_task_definition(taskDefinition=name)["taskDefinition"]
        assert td["revision"] == 1 and td["containerDefinitions"][0]["name"] == "c"


def test_restart_keeps_state_and_key(barged):
    ecs = barged.client("ecs")
    ecs.create_cluster(clusterName="keep")
    key = barged.access_key
    barged.restart()
    assert barged.access_key == key
    ecs = barged.client("ecs")
    assert ecs.describe_clusters(clusters=["keep"])["clusters"][0]["status"] == "ACTIVE"
