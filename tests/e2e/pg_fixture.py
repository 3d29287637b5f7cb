"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl from
Debian's postgresql package into a temporary directory, listening on
127.0.0.1 (and a socket in that directory) on a free port, owned by the
'postgres' user because postgres refuses to run as root. Each caller gets a
fresh database of its own with new_database(). close() stops the cluster and
removes the directory, also when a test failed.

    with PostgresCluster() as pg:
        uri = pg.new_database()     # postgres://postgres@127.0.0.1:PORT/barge_1

As a program it runs a command with BARGE_TEST_PG_URI naming a fresh database
of a cluster started for the command (the unit tests of the store use it):

    python3 tests/e2e/pg_fixture.py -- build/tests/test_store

When the cluster cannot start (no postgresql package, not root and not the
postgres user) the command runs without the variable and a note says so.
"""

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

PG_USER = "postgres"


def pg_bin_dir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    """fsync=False trades crash safety of the cluster (never crashed in tests:
    only barged is killed) for speed; bench/api keeps it on. prefix runs the
    server under a command (bench/api pins it with taskset)."""

    def __init__(self, fsync=False, prefix=()):
        self.bin = pg_bin_dir()
        self.fsync = fsync
        self.prefix = list(prefix)
        self.tmp = None
        self.port = None
        self.started = False
        self._names = itertools.count(1)

    def _as_owner(self, argv):
        if os.geteuid() == 0:
            return ["runuser", "-u", PG_USER, "--"] + argv
        return argv

    def start(self):
        if not self.bin:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.tmp = tempfile.mkdtemp(prefix="barge-pg-")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.tmp, "data")
        subprocess.run(self._as_owner([
            os.path.join(self.bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync"]), check=True, capture_output=True,
            timeout=120)
        opts = ("-c listen_addresses=127.0.0.1 -k %s -c max_connections=400 "
                "-c shared_buffers=64MB -c fsync=%s -c full_page_writes=%s" %
                (self.tmp, "on" if self.fsync else "off", "on" if self.fsync else "off"))
        log = os.path.join(self.tmp, "postgres.log")
        for _ in range(5):
            self.port = free_port()
            p = subprocess.run(self.prefix + self._as_owner([
                os.path.join(self.bin, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60",
                "-o", "%s -p %d" % (opts, self.port), "start"]), capture_output=True,
                timeout=120)
            if p.returncode == 0:
                self.started = True
                return self
        raise RuntimeError("postgres did not start: " + open(log).read()[-2000:])

    def restart(self):
        """Stops the server at once (every session ends) and starts it again
        on the same port."""
        subprocess.run(self._as_owner([
            os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.tmp, "data"), "-l",
            os.path.join(self.tmp, "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart"]),
            check=True, capture_output=True, timeout=120)

    def psql(self, sql, db="postgres"):
        return subprocess.run(
            [os.path.join(self.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
             "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-At", "-c", sql],
            check=True, capture_output=True, text=True, timeout=60).stdout

    def new_database(self):
        name = "barge_%d" % next(self._names)
        self.psql("CREATE DATABASE %s" % name)
        return self.uri(name)

    def uri(self, db):
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, db)

    def close(self):
        if self.started:
            subprocess.run(self._as_owner([
                os.path.join(self.bin, "pg_ctl"), "-D", os.path.join(self.tmp, "data"), "-m",
                "immediate", "-w", "stop"]), capture_output=True, timeout=60)
            self.started = False
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        sys.exit("usage: pg_fixture.py -- COMMAND [ARGS...]")
    pg = PostgresCluster()
    env = dict(os.environ)
    try:
        try:
            pg.start()
            env["BARGE_TEST_PG_URI"] = pg.new_database()
        except (RuntimeError, OSError, KeyError, subprocess.SubprocessError) as e:
            print("pg_fixture: no PostgreSQL for the tests (%s); running without it" %
                  str(e).strip().splitlines()[0][:200], file=sys.stderr)
        return subprocess.run(argv, env=env).returncode
    finally:
        pg.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
