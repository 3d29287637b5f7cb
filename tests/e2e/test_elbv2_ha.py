"""Load balancers under several barged on one PostgreSQL database (issue
17): only the leader runs HAProxy, and a barged that loses the leadership
stops its HAProxy processes, so that the new leader's own take the listener
ports instead of both serving them."""
import os
import secrets
import subprocess

import pytest

from conftest import Barged, postgres
from lbtraffic import free_port
from test_elbv2 import Backend, haproxy_pids, health, make_stack, try_get, wait_for

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True).returncode != 0,
    reason="haproxy is not installed (scripts/setup installs it)")


def leads(b):
    with open(b.log_path, errors="replace") as f:
        return "this barged is now the leader" in f.read()


def test_haproxy_follows_the_leadership(tmp_path):
    uri = postgres().new_database()
    db = uri.rsplit("/", 1)[-1]
    key = tmp_path / "master.key"
    key.write_text(secrets.token_hex(32) + "\n")
    os.chmod(key, 0o600)
    first, second = (Barged(str(tmp_path / n), store=uri,
                            extra_args=["--master-key-file", str(key)]) for n in ("a", "b"))
    backend = Backend("x")
    try:
        first.start()
        second.start()
        assert leads(first) and not leads(second)
        elb = first.client("elbv2")
        port = free_port()
        _, tg, _ = make_stack(elb, port, backend.port, name="ha")
        elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
        wait_for(lambda: try_get(port) == "x", what="served by the first barged's haproxy")
        assert haproxy_pids(first.data_dir) and not haproxy_pids(second.data_dir)

        # End the leader's lock session (the database's view of a leader that
        # went away) until the second barged holds the leadership.
        def moved():
            if leads(second):
                return True
            postgres().psql(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a "
                f"ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.datname = '{db}'")
            return leads(second)

        wait_for(moved, timeout=120, what="the second barged leads")
        wait_for(lambda: not haproxy_pids(first.data_dir), what="old leader's haproxy stopped")
        wait_for(lambda: len(haproxy_pids(second.data_dir)) == 1, what="new leader's haproxy")
        wait_for(lambda: health(second.client("elbv2"), tg["TargetGroupArn"])[
            ("127.0.0.1", backend.port)]["State"] == "healthy", what="target healthy again")
        assert try_get(port) == "x"
        assert not haproxy_pids(first.data_dir)
    finally:
        for b in (second, first):
            b.stop()
        backend.stop()
    assert not haproxy_pids(first.data_dir) and not haproxy_pids(second.data_dir)
