"""OCI image layouts for the registry tests and benchmarks, made with the
standard library only: a busybox image from Debian's busybox-static (one gzip
layer holding bin/busybox and a few applet symlinks) and images of random data
layers of a chosen size. skopeo reads them with the oci: transport.

    python3 ociimage.py busybox DIR [--tag TAG] [--label K=V]
    python3 ociimage.py random DIR --size-mb 100 --layers 4 [--tag TAG]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "ls", "cat", "echo", "sleep", "true", "false", "env", "id", "wget"]

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(entries):
    """entries: (name, bytes or None for a dir, symlink target or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data, link in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            if link is not None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = link
                ti.mode = 0o777
                tf.addfile(ti)
            elif data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o755
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def busybox_layer():
    """(gzip blob, uncompressed tar) of bin/busybox and its applet links."""
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    entries = [("bin", None, None), ("bin/busybox", bb, None)]
    entries += [(f"bin/{a}", None, "busybox") for a in APPLETS]
    raw = _tar(entries)
    return gzip.compress(raw, compresslevel=6, mtime=0), raw


def random_layer(size, name="data"):
    """An uncompressed tar layer holding one file of size random bytes
    (compressing random data would only cost time)."""
    raw = _tar([(name, os.urandom(size), None)])
    return raw, raw


class Layout:
    """An OCI image layout directory; add images, then close()."""

    def __init__(self, path):
        self.path = path
        self.index = {"schemaVersion": 2, "manifests": []}
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, data):
        d = sha256(data)
        p = os.path.join(self.path, "blobs", "sha256", d.split(":", 1)[1])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
        return d

    def add_image(self, layers, tag="latest", labels=None, cmd=("/bin/sh",)):
        """layers: list of (blob bytes, uncompressed tar bytes or its
        "sha256:..." diff_id, media type). Returns a dict with the manifest digest and the blob digests."""
        descs, diff_ids = [], []
        for blob, raw, mt in layers:
            descs.append({"mediaType": mt, "digest": self.blob(blob), "size": len(blob)})
            diff_ids.append(raw if isinstance(raw, str) else sha256(raw))
        config = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ociimage.py"}],
        }
        cbytes = json.dumps(config, sort_keys=True).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": self.blob(cbytes), "size": len(cbytes)},
            "layers": descs,
        }
        mbytes = json.dumps(manifest, sort_keys=True).encode()
        mdigest = self.blob(mbytes)
        self.index["manifests"].append({
            "mediaType": MT_MANIFEST, "digest": mdigest, "size": len(mbytes),
            "annotations": {"org.opencontainers.image.ref.name": tag}})
        return {"manifest": mdigest, "manifest_bytes": mbytes, "config": manifest["config"],
                "layers": descs, "size": sum(len(b) for b, _, _ in layers) + len(cbytes)}

    def close(self):
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(self.index, f)


def busybox_image(path, tag="latest", labels=None):
    lay = Layout(path)
    blob, raw = busybox_layer()
    info = lay.add_image([(blob, raw, MT_LAYER_GZIP)], tag=tag, labels=labels)
    lay.close()
    return info


def random_image(path, size_mb, layers, tag="latest"):
    lay = Layout(path)
    per = size_mb * 1024 * 1024 // layers
    parts = []
    for i in range(layers):
        blob, raw = random_layer(per, name=f"data{i}")
        parts.append((blob, raw, MT_LAYER_TAR))
    info = lay.add_image(parts, tag=tag)
    lay.close()
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["busybox", "random"])
    ap.add_argument("dir")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--layers", type=int, default=4)
    a = ap.parse_args()
    if a.kind == "busybox":
        labels = dict(kv.split("=", 1) for kv in a.label)
        info = busybox_image(a.dir, a.tag, labels)
    else:
        info = random_image(a.dir, a.size_mb, a.layers, a.tag)
    print(json.dumps({"manifest": info["manifest"], "size": info["size"]}))


if __name__ == "__main__":
    main()
