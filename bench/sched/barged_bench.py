#!/usr/bin/env python3
"""bench/sched parts 2 and 3: the scheduler through a real barged.

Part 2 (scale-up): a service goes from 0 to --service-tasks (1,000) tasks on
--agents (100) simulated container instances. The simulator registers each
instance over the real agent channel (POST /agent/register, SigV4-signed with
barged's admin key), long-polls /agent/poll like barge-agent (one connection
and thread per instance, the `known` map of task versions, wait 20) and
reports every task it is given as PENDING and then RUNNING at once
(/agent/state, the SubmitTaskStateChange shape barge-agent sends). The clock
starts at CreateService (desiredCount N) and stops when DescribeServices shows
runningCount N: tasks/s, and the time until the first task was RUNNING.

Part 3 (a big store): barged's resident memory (VmRSS) with no tasks and with
--tasks (100,000) tasks in the store, and the latency of DescribeTasks of 10
random existing tasks (--describe-calls, 1,000 calls, p50/p99). The tasks go in
through the API: RunTask with count 10 on --agents simulated instances with
ample CPU and memory, spread over --clusters (50) clusters, each task reported
RUNNING by its instance. The stores are on a tmpfs and the instances do not
long-poll (barged runs with a long --agent-timeout); bench/sched/README.md
says why that measures the same thing.

Each part runs against barged with SQLite and, when PostgreSQL is installed,
barged with a throwaway PostgreSQL cluster, printing the ratio to SQLite.
bench/sched/run runs it after part 1 (place_bench.c); see its --help.
"""

import argparse
import datetime
import http.client
import importlib.machinery
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]

# bench/api's process handling, barged starter and PostgreSQL cluster.
api = importlib.machinery.SourceFileLoader(
    "bench_api", os.path.join(ROOT, "bench", "api", "run")).load_module()


def log(msg):
    print(f"bench/sched: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ clients

class Conn:
    """One keep-alive HTTP connection to barged (reconnects when closed)."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.c = None

    def post(self, path, body, headers):
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.c.request("POST", path, body=body, headers=headers)
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


def signed(srv, path, target, body, service="ecs"):
    """Headers and bytes of a SigV4-signed POST (path on barged)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1" if target else "application/json"}
    if target:
        headers["X-Amz-Target"] = target
    req = api.AWSRequest(method="POST", url=srv.url.rstrip("/") + path, data=data,
                         headers=headers)
    api.SigV4Auth(api.Credentials(srv.access_key, srv.secret_key), service,
                  api.REGION).add_auth(req)
    return dict(req.headers.items()), data


def ecs_call(conn, srv, op, body):
    headers, data = signed(srv, "/", api.TARGET_PREFIX + op, body)
    status, out = conn.post("/", data, headers)
    if status != 200:
        raise RuntimeError(f"{op} answered {status}: {out[:300]!r}")
    return json.loads(out)


# ---------------------------------------------------------------- simulator

class SimInstance:
    """A container instance whose agent runs every task at once."""

    def __init__(self, sim, index):
        self.sim = sim
        self.index = index
        self.conn = Conn(sim.srv.port)
        self.token = None
        self.arn = None
        self.known = {}      # taskArn -> version, as barge-agent's engine keeps it
        self.reported = {}   # taskArn -> last status reported
        self.thread = None
        self.lock = threading.Lock()  # part 3: reports from several client threads

    def register(self):
        srv = self.sim.srv
        body = {"cluster": self.sim.cluster, "cpu": self.sim.cpu, "memory": self.sim.memory,
                "hostname": f"sim-{self.index}", "agentVersion": "bench-sim",
                "architecture": "x86_64",
                "availabilityZone": ZONES[self.index % len(ZONES)],
                "attributes": [{"name": "stack", "value": "bench"}],
                "reservedPorts": [22, 2375, 2376, 51678, 51679], "runtime": "simulated"}
        headers, data = signed(srv, "/agent/register", None, body)
        status, out = self.conn.post("/agent/register", data, headers)
        if status != 200:
            raise RuntimeError(f"/agent/register answered {status}: {out[:300]!r}")
        doc = json.loads(out)
        self.token, self.arn = doc["token"], doc["containerInstanceArn"]

    def _agent_post(self, path, body):
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + self.token}
        return self.conn.post(path, json.dumps(body, separators=(",", ":")).encode(), headers)

    def report(self, manifest, status):
        task = manifest.get("task") or {}
        ctrs = []
        for c in task.get("containers", []):
            r = {"name": c.get("name", ""), "lastStatus": status}
            if status != "PENDING":
                r["runtimeId"] = "sim-" + manifest["taskArn"].rsplit("/", 1)[1][:12]
            if status == "STOPPED":
                r["exitCode"] = 0
            ctrs.append(r)
        rep = {"taskArn": manifest["taskArn"], "status": status, "containers": ctrs}
        now = time.time()
        if status == "PENDING":
            rep["pullStartedAt"] = rep["pullStoppedAt"] = now
        if status == "STOPPED":
            rep["executionStoppedAt"] = now
        s, out = self._agent_post("/agent/state", rep)
        if s != 200:
            raise RuntimeError(f"/agent/state answered {s}: {out[:300]!r}")
        self.sim.reports += 1
        self.reported[manifest["taskArn"]] = status

    def run_to(self, manifest):
        """Moves a task to where barged wants it, as a fast agent would."""
        arn = manifest["taskArn"]
        done = self.reported.get(arn)
        if manifest.get("desiredStatus") == "STOPPED":
            if done != "STOPPED":
                self.report(manifest, "STOPPED")
        elif done is None:
            self.report(manifest, "PENDING")
            self.report(manifest, "RUNNING")

    def poll_loop(self):
        try:
            while not self.sim.stopping.is_set():
                s, out = self._agent_post("/agent/poll", {"known": self.known, "wait": 20})
                if s != 200:
                    raise RuntimeError(f"/agent/poll answered {s}: {out[:300]!r}")
                tasks = json.loads(out).get("tasks", [])
                self.sim.polls += 1
                for m in tasks:
                    self.run_to(m)
                self.known = {m["taskArn"]: m["version"] for m in tasks}
        except Exception as e:  # reported by the caller
            if not self.sim.stopping.is_set():
                self.sim.errors.put(f"instance {self.index}: {e}")

    def start_polling(self):
        self.thread = threading.Thread(target=self.poll_loop, daemon=True)
        self.thread.start()


class Simulator:
    def __init__(self, srv, cluster, n, cpu, memory):
        self.srv = srv
        self.cluster = cluster
        self.cpu = cpu
        self.memory = memory
        self.stopping = threading.Event()
        self.errors = queue.Queue()
        self.polls = 0
        self.reports = 0
        self.instances = [SimInstance(self, i) for i in range(n)]
        by_arn = {}
        for inst in self.instances:
            inst.register()
            by_arn[inst.arn] = inst
        self.by_arn = by_arn

    def check(self):
        if not self.errors.empty():
            raise RuntimeError("simulator: " + self.errors.get())

    def stop(self):
        self.stopping.set()
        for inst in self.instances:
            inst.conn.close()


# ------------------------------------------------------------------- barged

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0.0


TASKDEF = {
    "family": "bench",
    "networkMode": "bridge",
    "containerDefinitions": [{
        "name": "app", "image": "registry.example.com/app:1", "cpu": 1, "memory": 8,
        "essential": True, "command": ["serve"],
        "environment": [{"name": "MODE", "value": "bench"}],
    }],
}


# ------------------------------------------------------------------- part 2

def part2(args, srv):
    conn = Conn(srv.port)
    ecs_call(conn, srv, "CreateCluster", {"clusterName": "bench"})
    td = ecs_call(conn, srv, "RegisterTaskDefinition", TASKDEF)["taskDefinition"]
    log(f"{srv.name}: registering {args.agents} simulated instances")
    # Room for the service on every instance, as the shape (a few
    # dozen tasks per host) has.
    sim = Simulator(srv, "bench", args.agents, cpu=4096, memory=16384)
    for inst in sim.instances:
        inst.start_polling()
    time.sleep(1)
    n = args.service_tasks
    log(f"{srv.name}: CreateService desiredCount {n}")
    cpu0 = api.proc_cpu_seconds(srv.proc.pid)
    t0 = time.monotonic()
    ecs_call(conn, srv, "CreateService", {"cluster": "bench", "serviceName": "scale",
                                          "taskDefinition": td["taskDefinitionArn"],
                                          "desiredCount": n})
    first = None
    running = 0
    deadline = t0 + args.timeout
    while True:
        sim.check()
        s = ecs_call(conn, srv, "DescribeServices", {"cluster": "bench",
                                                    "services": ["scale"]})["services"][0]
        running = s["runningCount"]
        now = time.monotonic()
        if running > 0 and first is None:
            first = now - t0
        if running >= n:
            break
        if now > deadline:
            sim.stop()
            raise RuntimeError(f"{srv.name}: runningCount {running} of {n} after "
                               f"{args.timeout} s")
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = api.proc_cpu_seconds(srv.proc.pid) - cpu0
    rss = rss_kib(srv.proc.pid)
    sim.stop()
    conn.close()
    return {"tasks": n, "instances": args.agents, "seconds": elapsed, "first": first,
            "rate": n / elapsed, "cpu": 100 * cpu / elapsed, "reports": sim.reports,
            "polls": sim.polls, "rss": rss}


# ------------------------------------------------------------------- part 3

def part3(args, srv):
    conn = Conn(srv.port)
    rss0 = rss_kib(srv.proc.pid)
    td = ecs_call(conn, srv, "RegisterTaskDefinition", TASKDEF)["taskDefinition"]
    per_cluster = max(1, args.agents // args.clusters)
    per_inst = -(-args.tasks // (per_cluster * args.clusters))
    sims = []
    log(f"{srv.name}: registering {per_cluster * args.clusters} simulated instances in "
        f"{args.clusters} clusters")
    for k in range(args.clusters):
        name = f"bench{k}"
        ecs_call(conn, srv, "CreateCluster", {"clusterName": name})
        sims.append(Simulator(srv, name, per_cluster, cpu=max(4096, 2 * per_inst),
                              memory=max(16384, 16 * per_inst)))
    # RunTask count 10 from a few client threads, round robin over the
    # clusters; each thread reports the tasks it started RUNNING, as their
    # instances' agents would.
    todo = queue.Queue()
    left = args.tasks
    k = 0
    while left > 0:
        todo.put((k % args.clusters, min(10, left)))
        left -= 10
        k += 1
    arns = [[] for _ in sims]
    lock = threading.Lock()
    errors = []
    cpu0 = api.proc_cpu_seconds(srv.proc.pid)
    t0 = time.monotonic()
    done = [0]

    def worker():
        c = Conn(srv.port)
        try:
            while not errors:
                try:
                    ci, count = todo.get_nowait()
                except queue.Empty:
                    return
                r = ecs_call(c, srv, "RunTask", {"cluster": sims[ci].cluster, "count": count,
                                                 "taskDefinition": td["taskDefinitionArn"]})
                if r.get("failures") or len(r["tasks"]) != count:
                    raise RuntimeError(f"RunTask placed {len(r['tasks'])} of {count}: "
                                       f"{r.get('failures', [])[:3]}")
                for t in r["tasks"]:
                    inst = sims[ci].by_arn[t["containerInstanceArn"]]
                    with inst.lock:
                        inst.report({"taskArn": t["taskArn"], "task": t}, "RUNNING")
                with lock:
                    arns[ci].extend(t["taskArn"] for t in r["tasks"])
                    done[0] += count
                    if done[0] % 10000 < count:
                        log(f"{srv.name}: {done[0]:,} tasks in {time.monotonic() - t0:.0f} s, "
                            f"RSS {rss_kib(srv.proc.pid) / 1024:.0f} MiB")
        except Exception as e:
            errors.append(str(e))
        finally:
            c.close()

    # Daemon threads, joined with a timeout: a signal then ends the run.
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    if errors:
        raise RuntimeError(f"{srv.name}: seeding: {errors[0]}")
    seed_s = time.monotonic() - t0
    seed_cpu = 100 * (api.proc_cpu_seconds(srv.proc.pid) - cpu0) / seed_s
    rss_full = rss_kib(srv.proc.pid)
    # DescribeTasks of 10 random tasks of a random cluster, signed beforehand
    # so that only barged's side is timed.
    rnd = random.Random(1)
    reqs = []
    for _ in range(args.describe_calls):
        ci = rnd.randrange(len(sims))
        reqs.append(signed(srv, "/", api.TARGET_PREFIX + "DescribeTasks",
                           {"cluster": sims[ci].cluster, "tasks": rnd.sample(arns[ci], 10)}))
    lat = []
    dconn = Conn(srv.port)
    for headers, data in reqs:
        a = time.perf_counter()
        status, out = dconn.post("/", data, headers)
        lat.append(time.perf_counter() - a)
        if status != 200:
            raise RuntimeError(f"DescribeTasks answered {status}: {out[:300]!r}")
    doc = json.loads(out)
    if len(doc["tasks"]) != 10 or any(t["lastStatus"] != "RUNNING" for t in doc["tasks"]):
        raise RuntimeError(f"{srv.name}: DescribeTasks did not show 10 RUNNING tasks")
    dconn.close()
    rss_after = rss_kib(srv.proc.pid)
    for sim in sims:
        sim.stop()
    conn.close()
    return {"tasks": sum(len(a) for a in arns), "seed_s": seed_s,
            "seed_rate": sum(len(a) for a in arns) / seed_s, "seed_cpu": seed_cpu, "rss0": rss0,
            "rss_full": rss_full, "rss_after": rss_after,
            "p50": 1000 * percentile(lat, 50), "p99": 1000 * percentile(lat, 99),
            "max": 1000 * max(lat), "calls": len(lat)}


# ------------------------------------------------------------------- report

def table(cols, rows):
    widths = [max(len(str(r[i])) for r in [cols] + rows) for i in range(len(cols))]
    out = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                     for i, (c, w) in enumerate(zip(cols, widths))).rstrip(),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return out


def ratio(a, b):
    return f"{a / b:.2f}x" if b else ""


def report(results, args):
    lines = []
    p2 = [(name, r) for name, r in results if "rate" in r]
    if p2:
        lines += ["", f"part 2: service scale-up 0 -> {args.service_tasks:,} tasks through "
                      f"barged, {args.agents} simulated agents (long-poll, PENDING+RUNNING "
                      "reported at once)",
                  "aim: tasks/s well ahead of Kubernetes (100 pods/s at 5,000 nodes) and "
                  "Nomad (C1M ~3,750/s)"]
        base = dict(p2).get("barged")
        rows = []
        for name, r in p2:
            rows.append([name, f"{r['tasks']:,}", r["instances"], f"{r['seconds']:.1f}",
                         f"{r['rate']:,.0f}", f"{r['first']:.2f}", f"{r['cpu']:.0f}",
                         f"{r['reports']:,}", f"{r['polls']:,}", f"{r['rss'] / 1024:.0f}",
                         f"{r['rate'] / 100:.1f}x", f"{r['rate'] / 3750:.2f}x",
                         ratio(r["rate"], base["rate"]) if base and name != "barged" else ""])
        lines += table(["server", "tasks", "instances", "seconds", "tasks/s", "first s",
                        "srv cpu%", "reports", "polls", "RSS MiB", "vs k8s", "vs C1M",
                        "pg/sqlite"], rows)
        lines += ["vs k8s / vs C1M = tasks/s over 100 pods/s and over 3,750 containers/s "
                  "(whole systems, see part 1's anchors)."]
    p3 = [(name, r) for name, r in results if "p99" in r]
    if p3:
        lines += ["", f"part 3: {args.tasks:,} tasks in the store (RunTask count 10 on "
                      f"{args.agents} simulated instances in {args.clusters} clusters, each "
                      "task reported RUNNING; stores on a tmpfs);",
                  f"  then DescribeTasks of 10 random tasks of one cluster x "
                  f"{args.describe_calls:,}",
                  "aim: barged < 512 MiB at 100,000 tasks"]
        base = dict(p3).get("barged")
        rows = []
        for name, r in p3:
            rows.append([name, f"{r['tasks']:,}", f"{r['seed_s']:.0f}", f"{r['seed_rate']:,.0f}",
                         f"{r['seed_cpu']:.0f}",
                         f"{r['rss0'] / 1024:.1f}", f"{r['rss_full'] / 1024:.1f}",
                         f"{r['rss_after'] / 1024:.1f}",
                         "yes" if r["rss_after"] < 512 * 1024 else "NO",
                         f"{r['p50']:.2f}", f"{r['p99']:.2f}", f"{r['max']:.1f}",
                         ratio(base["p99"], r["p99"]) if base and name != "barged" else ""])
        lines += table(["server", "tasks", "seed s", "seed tasks/s", "seed srv cpu%", "RSS0 MiB",
                        "RSS MiB", "RSS+DT MiB", "<512", "DT p50 ms", "DT p99 ms", "DT max ms",
                        "pg/sqlite p99"], rows)
        lines += ["RSS0 = barged just started; RSS = after seeding; RSS+DT = after the "
                  "DescribeTasks calls.",
                  "pg/sqlite p99 = SQLite's p99 over PostgreSQL's (below 1: PostgreSQL slower)."]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="2,3", help="which parts to run (default 2,3)")
    ap.add_argument("--service-tasks", type=int, default=1000,
                    help="part 2: the service's desiredCount (default 1000)")
    ap.add_argument("--agents", type=int, default=100,
                    help="simulated container instances (default 100)")
    ap.add_argument("--tasks", type=int, default=100000,
                    help="part 3: tasks put in the store (default 100000)")
    ap.add_argument("--describe-calls", type=int, default=1000,
                    help="part 3: DescribeTasks calls (default 1000)")
    ap.add_argument("--clusters", type=int, default=50,
                    help="part 3: clusters the instances and tasks are spread over (default 50)")
    ap.add_argument("--clients", type=int, default=4,
                    help="part 3: RunTask client threads (default 4)")
    ap.add_argument("--part3-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="part 3: where barged's data and PostgreSQL's cluster go (default "
                         "/dev/shm: a tmpfs, see bench/README.md)")
    ap.add_argument("--postgres", choices=["auto", "yes", "no"], default="auto",
                    help="also run barged with PostgreSQL (default auto: when available)")
    ap.add_argument("--timeout", type=int, default=300, help="part 2: give up after (300 s)")
    ncpu = os.cpu_count() or 1
    ap.add_argument("--server-cpus", default="0" if ncpu >= 2 else "",
                    help="taskset CPU list for barged and PostgreSQL (default 0; '' = none)")
    ap.add_argument("--load-cpus", default="1" if ncpu >= 2 else "",
                    help="taskset CPU list for the simulator (default 1; '' = none)")
    ap.add_argument("--barged", default=os.path.join(ROOT, "build", "barged"))
    ap.add_argument("--out", help="append the table to this file")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.load_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.load_cpus.split(",")})
    signal.signal(signal.SIGTERM, api._on_signal)
    signal.signal(signal.SIGINT, api._on_signal)
    try:
        return run(args, parts)
    finally:
        api.cleanup()


def run(args, parts):
    have_pg = args.postgres != "no"
    pg_note = None
    results = []
    servers = {}
    for part, fn in (("2", part2), ("3", part3)):
        if part not in parts:
            continue
        stores = [("barged", None, "SQLite")]
        # Part 3 puts the stores on a tmpfs: it measures memory and reads,
        # and an fsync per seeded task would make seeding take an hour.
        tmp = args.part3_dir if part == "3" else None
        if have_pg:
            try:
                new_db, version = pg_cluster(args, fsync=part == "2", tmp=tmp)
                m = re.search(r"\(PostgreSQL\) (\S+)", version)
                stores.append(("barged-pg", new_db, "PostgreSQL " + (m.group(1) if m else "?")))
            except Exception as e:
                if args.postgres == "yes":
                    raise
                have_pg = False
                pg_note = f"PostgreSQL: not available ({e}); SQLite only"
                log(pg_note)
        extra = ["--agent-timeout", "86400"] if part == "3" else []
        for name, new_db, label in stores:
            log(f"part {part}: starting {name}")
            old_tmp = tempfile.tempdir
            tempfile.tempdir = tmp
            try:
                srv = api.Barged(args.barged, args.server_cpus, name=name,
                                 store=new_db() if new_db else None, store_label=label,
                                 extra=extra)
            finally:
                tempfile.tempdir = old_tmp
            servers[name] = label
            try:
                results.append((name, fn(args, srv)))
            finally:
                srv.proc.send_signal(signal.SIGTERM)
                srv.proc.wait(timeout=30)
    now = datetime.datetime.now()
    lines = [f"bench/sched parts 2-3  {now:%Y-%m-%d %H:%M:%S}  barge {api.git_describe()}",
             f"machine: {os.cpu_count()} CPUs, {api.cpu_model()}; barged (and PostgreSQL) on "
             f"CPU {args.server_cpus or 'any'}, simulator on CPU {args.load_cpus or 'any'}",
             "servers: " + "; ".join(f"{n} = {lbl}" for n, lbl in servers.items())]
    if pg_note:
        lines.append(pg_note)
    lines += report(results, args)
    text = "\n".join(lines) + "\n"
    print(text, end="", flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(text)
        log(f"wrote {args.out}")
    return 0


def pg_cluster(args, fsync, tmp):
    """Starts a throwaway cluster (in tmp, or the default temporary
    directory); returns (new database function, version)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from pg_fixture import PostgresCluster
    if PostgresCluster().bin is None:
        raise RuntimeError("no postgresql package")
    pg = PostgresCluster(fsync=fsync, prefix=api.pin(args.server_cpus))
    api._postgres.append(pg)
    old_tmp = tempfile.tempdir
    tempfile.tempdir = tmp
    try:
        pg.start()
    finally:
        tempfile.tempdir = old_tmp
    version = subprocess.run([os.path.join(pg.bin, "postgres"), "--version"],
                             capture_output=True, text=True).stdout.strip()
    return pg.new_database, version


if __name__ == "__main__":
    sys.exit(main())
