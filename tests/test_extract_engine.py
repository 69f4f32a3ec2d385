"""Engines of `dramasr extract`: a local process pool and a Ray cluster (a head started here on
127.0.0.1 with 2 CPUs) give byte-identical drama folders; a killed run resumes without redoing
finished episodes. Skips without the media stack, ray, flite or ../shared/media.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

for module in ("av", "dlib", "face_recognition_models", "resemblyzer", "webrtcvad", "yaml", "soundfile"):
    pytest.importorskip(module, reason=f"media stack absent ({module}): pip install -e '.[media]'")

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
pytestmark = [
    pytest.mark.skipif(not (MEDIA / "cast").is_dir(), reason=f"shared media absent: no {MEDIA / 'cast'}"),
    pytest.mark.skipif(shutil.which("flite") is None, reason="flite absent: apt-get install flite"),
]
FAST = ["--sample-fps", "2", "--upsample", "0", "--part-seconds", "5"]  # several parts per episode


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory):
    from dramasr.extract.synthetic import make_episode, shared_characters

    root = tmp_path_factory.mktemp("engine")
    made = [make_episode(root, shared_characters(MEDIA), 6, seed=seed, size=(320, 180), face_height=171,
                         stem=f"ep{seed}") for seed in (1, 2)]
    return root, made


def _args(root: Path, made, out: Path) -> list[str]:
    args = [str(e.video) for e in made]
    for e in made:
        args += ["--subs", str(e.subtitles)]
    return [*args, "--cast", str(root / "cast.yaml"), "-o", str(out), *FAST]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every output file but the per-episode work files (they hold timings)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".extract" not in p.parts}


def _dramasr(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dramasr.cli", "extract", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def local_run(episodes) -> Path:
    root, made = episodes
    out = root / "local"
    proc = _dramasr(*_args(root, made, out), "--workers", "2")
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    # each episode ran as a voice part and several face parts, side by side on the 2 workers
    assert all(json.loads(p.read_text())["parts"] >= 3 for p in (out / ".extract").glob("*.json"))
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ray_cluster_output_is_byte_identical_to_local(episodes, local_run: Path) -> None:
    pytest.importorskip("ray", reason="ray absent: pip install -e '.[media]'")
    root, made = episodes
    port = _free_port()
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    # a head of our own on loopback, 2 worker CPUs; --block keeps it a child that we stop ourselves
    head = subprocess.Popen([ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray head exited"
            assert time.monotonic() < deadline, "ray head did not come up"
            time.sleep(1)
        out = root / "ray"
        proc = _dramasr(*_args(root, made, out), "--engine", "ray", "--address", f"127.0.0.1:{port}")
        output = proc.communicate(timeout=400)[0].decode()
        assert proc.returncode == 0, output
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # the head and the processes it started, nothing else
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
    tree_local, tree_ray = _tree(local_run), _tree(out)
    assert sorted(tree_local) == sorted(tree_ray)
    different = [name for name in tree_local if tree_local[name] != tree_ray[name]]
    assert not different, f"ray and local outputs differ: {different}"


def test_killed_run_resumes_without_redoing_finished_episodes(episodes, local_run: Path) -> None:
    root, made = episodes
    out = root / "resumed"
    first = out / ".extract" / "0001.json"
    proc = _dramasr(*_args(root, made, out), "--workers", "1")
    deadline = time.monotonic() + 300
    while not first.exists():
        assert proc.poll() is None, proc.communicate()[0].decode()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (out / "subtitle_data").exists()  # killed before the drama was written
    stamp = first.stat().st_mtime_ns
    proc = _dramasr(*_args(root, made, out), "--workers", "1")
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert first.stat().st_mtime_ns == stamp  # episode 1 was not extracted again
    assert _tree(out) == _tree(local_run)
