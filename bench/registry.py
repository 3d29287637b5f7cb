#!/usr/bin/python3
"""Registry benchmark: push and pull of the same multi-layer image (random
data, ~100 MB by default) with skopeo, against barged's embedded registry and
against Debian's docker-registry, side by side on loopback. Each run makes a
fresh image (so no blob is already there) and pushes and pulls it through both
registries, alternating which goes first; the table shows median MB/s and the
barged / docker-registry ratio (above 1: barged is faster). Nothing is
asserted. The table also goes to bench/results/registry.txt.

    bench/registry.py [--size-mb 100] [--layers 4] [--runs 5] [--bin-dir build]
"""
import argparse
import base64
import configparser
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import ociimage  # noqa: E402

SKOPEO = "skopeo"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_barged(bin_dir, work):
    data = os.path.join(work, "barged")
    os.makedirs(data)
    log = open(os.path.join(work, "barged.log"), "wb")
    p = subprocess.Popen([os.path.join(bin_dir, "barged"), "--data-dir", data, "--listen",
                          "127.0.0.1:0", "--no-aws-profile", "--log-level", "warn"],
                         stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        line = p.stdout.readline()
        if line.startswith(b"barged ready on port "):
            port = int(line.split()[-1])
            cp = configparser.ConfigParser()
            cp.read(os.path.join(data, "admin-credentials"))
            return p, port, cp["barge"]["aws_access_key_id"], cp["barge"]["aws_secret_access_key"]
        if not line and p.poll() is not None:
            break
    raise SystemExit("barged did not start; see " + log.name)


def start_docker_registry(work):
    port = free_port()
    root = os.path.join(work, "docker-registry")
    conf = os.path.join(work, "docker-registry.yml")
    with open(conf, "w") as f:
        f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = open(os.path.join(work, "docker-registry.log"), "wb")
    p = subprocess.Popen(["docker-registry", "serve", conf], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.1)
    raise SystemExit("docker-registry did not start; see " + log.name)


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def timed(args):
    t = time.monotonic()
    r = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True)
    dt = time.monotonic() - t
    if r.returncode != 0:
        raise SystemExit(f"skopeo {' '.join(args)} failed:\n{r.stderr}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build"))
    a = ap.parse_args()

    import boto3
    work = tempfile.mkdtemp(prefix="barge-bench-registry-")
    barged = dreg = None
    try:
        barged, bport, akid, secret = start_barged(a.bin_dir, work)
        dreg, dport = start_docker_registry(work)
        ecr = boto3.client("ecr", endpoint_url=f"http://127.0.0.1:{bport}",
                           region_name="us-east-1", aws_access_key_id=akid,
                           aws_secret_access_key=secret)
        ecr.create_repository(repositoryName="bench")
        tok = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        creds = base64.b64decode(tok).decode()
        targets = {
            "barged": (f"127.0.0.1:{bport}", ["--dest-creds", creds], ["--src-creds", creds]),
            "docker-registry": (f"127.0.0.1:{dport}", [], []),
        }
        times = {n: {"push": [], "pull": []} for n in targets}
        size = 0
        for run in range(a.runs):
            img = os.path.join(work, f"image{run}")
            info = ociimage.random_image(img, a.size_mb, a.layers)
            size = info["size"]
            order = list(targets) if run % 2 == 0 else list(reversed(targets))
            for name in order:
                host, dest_creds, src_creds = targets[name]
                ref = f"docker://{host}/bench:run{run}"
                times[name]["push"].append(timed(["copy", "--dest-tls-verify=false", *dest_creds,
                                                  f"oci:{img}:latest", ref]))
                out = os.path.join(work, f"pulled-{name}-{run}")
                times[name]["pull"].append(timed(["copy", "--src-tls-verify=false", *src_creds,
                                                  ref, f"oci:{out}:x"]))
                shutil.rmtree(out)
            shutil.rmtree(img)
            print(f"run {run + 1}/{a.runs} done", file=sys.stderr)

        mb = size / 1e6
        rate = {n: {op: mb / statistics.median(t) for op, t in ops.items()}
                for n, ops in times.items()}
        lines = [f"registry push/pull with skopeo: {mb:.1f} MB image, {a.layers} layers, "
                 f"{a.runs} runs, median MB/s",
                 f"{'':18}{'push MB/s':>12}{'pull MB/s':>12}"]
        for n in targets:
            lines.append(f"{n:18}{rate[n]['push']:12.1f}{rate[n]['pull']:12.1f}")
        lines.append(f"{'ratio barged/dr':18}"
                     f"{rate['barged']['push'] / rate['docker-registry']['push']:12.2f}"
                     f"{rate['barged']['pull'] / rate['docker-registry']['pull']:12.2f}")
        text = "\n".join(lines) + "\n"
        print(text, end="")
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "registry.txt"), "w") as f:
            f.write(text)
    finally:
        stop(barged)
        stop(dreg)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
