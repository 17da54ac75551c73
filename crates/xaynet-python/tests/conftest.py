"""Starts a real coordinator (`xaynet serve`, embedded storage in a temporary directory) on a
free loopback port for the tests. The binary is $XAYNET_BIN, or the workspace's debug build."""

import os
import pathlib
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def xaynet_binary() -> str:
    explicit = os.environ.get("XAYNET_BIN")
    if explicit:
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "xaynet"
    if not path.exists():
        raise RuntimeError(f"{path} not found: build it with `cargo build -p xaynet` or set XAYNET_BIN")
    return str(path)


class Coordinator:
    def __init__(self, url: str, process: subprocess.Popen) -> None:
        self.url, self.process = url, process

    def status(self) -> dict:
        import json
        with urllib.request.urlopen(self.url + "/status") as r:
            return json.load(r)


@pytest.fixture
def coordinator():
    """A coordinator for 50-weight f32 models whose update phase lasts at least 1.5 s, so that
    every updater gets its model in."""
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ)
        env.update({
            "XAYNET__API__BIND_ADDRESS": "127.0.0.1:0",
            "XAYNET__STORAGE__DATA_DIR": data,
            "XAYNET__MODEL__LENGTH": "50",
            "XAYNET__LOG__FILTER": "warn",
            "XAYNET__PET__SUM__PROB": "0.3",
            "XAYNET__PET__UPDATE__PROB": "1.0",
            "XAYNET__PET__SUM__TIME__MIN": "0.3",
            "XAYNET__PET__SUM__TIME__MAX": "3",
            "XAYNET__PET__UPDATE__TIME__MIN": "1.5",
            "XAYNET__PET__UPDATE__TIME__MAX": "20",
            "XAYNET__PET__SUM2__TIME__MIN": "0.1",
            "XAYNET__PET__SUM2__TIME__MAX": "5",
            "XAYNET__LIMITS__COMMIT_INTERVAL": "0.02",
        })
        process = subprocess.Popen([xaynet_binary(), "serve"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "listening on " in line:
                url = line.strip().split("listening on ")[1]
                break
        if url is None:
            process.kill()
            raise RuntimeError("the coordinator did not start")
        try:
            yield Coordinator(url, process)
        finally:
            process.terminate()
            process.wait(timeout=10)
