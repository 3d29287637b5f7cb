"""The barge CLI's first commands."""
import subprocess

from conftest import binary


def test_version_and_help():
    out = subprocess.run([binary("barge"), "version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("barge v")
    out = subprocess.run([binary("barge"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: barge" in out.stdout
    out = subprocess.run([binary("barge"), "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command 'frobnicate'" in out.stderr


def test_barged_help_and_bad_flags():
    out = subprocess.run([binary("barged"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--listen" in out.stdout
    out = subprocess.run([binary("barged"), "--account-id", "12"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "'12'" in out.stderr
