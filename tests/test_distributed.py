"""Dask: region enumeration, comparison and checkpoints on real clusters (127.0.0.1 only).

The reference for every distributed result is the same computation in one process: the complexes
must be bitwise equal (same regions in the same order, same maps and volumes) and the JSON documents
equal except for the timing field. Clusters are started and stopped here: a LocalCluster of worker
processes (2 workers) and ``dask scheduler`` / ``dask worker`` as separate processes (1 worker), each
started once for the module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import quasieq as qe
from conftest import random_net
from distributed import Client
from quasieq.cli import app
from quasieq.cluster import DaskExecutor
from quasieq.cluster.session import cluster_client
from quasieq.regions.chunk import ROOT_CHUNK_MIN_REGIONS, ROOT_CHUNKS
from quasieq.regions.schedule import TreePlan, array_bytes, pack_subtree, run_tree, unpack_subtree
from quasieq.regions.tree import EngineNet, Subtree, root_chunk, split_subtree
from quasieq.unit_box import UnitFrame
from quasieq.verify.compare import chunk_size, sample_chunk, sample_chunks

pytestmark = pytest.mark.distributed

#: Seconds a cluster of separate processes may take to start (a loaded 2-core machine takes ~15).
BOOT_TIMEOUT_S = 120

ARRAYS = ("patterns", "vertices_flat", "vertex_indptr", "facet_normals_flat", "facet_rhs_flat", "facet_sources_flat",
          "facet_indptr", "neighbours_flat", "interior_points", "radii", "A", "b", "volumes")

#: Small nets in 2, 3 and 4 dimensions, with chunks small enough to give dozens of subtrees.
NETS = {"2d": ((2, 24, 24, 1), 64), "3d": ((3, 10, 10, 10, 1), 32), "4d": ((4, 8, 8, 1), 32)}


def make_net(arch: tuple[int, ...], seed: int = 5) -> qe.ReluNet:
    return random_net(arch, np.random.default_rng(seed))


def assert_same_complex(a: qe.RegionComplex, b: qe.RegionComplex, *, same_json: bool = True) -> None:
    """Bitwise the same arrays and (``same_json``) the same JSON apart from the seconds taken."""
    assert len(a) == len(b) and a.dropped_lower_dim == b.dropped_lower_dim
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name
    if same_json:
        assert without_seconds(a.to_json()) == without_seconds(b.to_json())


# ----- processes: the command line, clusters of separate processes ----------------------------------

SRC = Path(__file__).resolve().parents[1] / "src"


def subprocess_env() -> dict[str, str]:
    """This environment, with the source tree importable (as in a run from the checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    return env


def quasieq_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "quasieq.cli", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----- clusters, once for the module -----------------------------------------------------------------

@pytest.fixture(scope="module")
def client2():
    with cluster_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def external_cluster():
    """``dask scheduler`` and ``dask worker`` (one worker process) started as their own processes, as on
    a real cluster: the address of the scheduler. Started once for the module (booting processes is
    most of the time these tests take) and stopped at its end."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    quiet = {"env": subprocess_env(), "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--dashboard-address", "127.0.0.1:0"], **quiet)
    worker = subprocess.Popen([dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                               "--dashboard-address", "127.0.0.1:0"], **quiet)
    try:
        yield address
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def client1(external_cluster):
    """A client of the one-worker cluster of separate processes, once its worker has joined."""
    with Client(external_cluster, timeout=BOOT_TIMEOUT_S) as client:
        client.wait_for_workers(1, timeout=BOOT_TIMEOUT_S)
        yield client


@pytest.fixture(scope="module")
def serial():
    """The one-process complexes of NETS (computed once)."""
    out = {}
    for key, (arch, chunk) in NETS.items():
        net = make_net(arch)
        out[key] = (net, chunk, qe.regions(net, qe.Box.cube(net.in_dim, -1, 1), chunk_size=chunk))
    return out


@pytest.mark.parametrize("key", list(NETS))
def test_one_and_two_workers_give_the_serial_complex(key, serial, client1, client2):
    net, chunk, reference = serial[key]
    assert reference.volume_total == pytest.approx(2.0**net.in_dim, rel=1e-9)  # the serial run is sound
    for client, workers in ((client1, 1), (client2, 2)):
        cx = qe.regions(net, reference.box, chunk_size=chunk, client=client)
        assert_same_complex(reference, cx)
        assert cx.run.workers == workers and cx.run.tasks > SUBTREES_AT_LEAST and cx.run.bytes_shipped > 0


SUBTREES_AT_LEAST = 4


@pytest.mark.parametrize("chunk", [4, 4096])
def test_root_children_named_not_sent_give_the_serial_complex(chunk, client2):
    """The workers split the root themselves: with more root chunks than the ROOT_CHUNKS handed out
    before their count is known (chunk 4: the rest are handed out once a worker has counted them) and
    with fewer (chunk 4096: the tasks beyond the last answer that there is no such child), the complex
    is the serial one."""
    net = make_net((2, 24, 24, 1), 8)
    box = qe.Box.cube(2, -1, 1)
    frame = UnitFrame.of(box)
    engine = EngineNet.of(frame.fold(net), frame.unit_box)
    below, _ = split_subtree(Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0), engine,
                             chunk_size=chunk, limit=10**9, found=0)
    assert (len(below) > ROOT_CHUNKS) == (chunk == 4) and len(below) > 1
    reference = qe.regions(net, box, chunk_size=chunk)
    cx = qe.regions(net, box, chunk_size=chunk, client=client2)
    assert_same_complex(reference, cx)
    assert cx.run.explored >= len(below) and cx.run.tasks > max(len(below), ROOT_CHUNKS)


def test_large_subtrees_handed_back_change_nothing(serial, client2):
    """Every subtree that splits into more than one chunk is handed back and split again."""
    net, chunk, reference = serial["3d"]
    frame = UnitFrame.of(reference.box)  # qe.regions runs the tree on the unit box: so does this test
    engine = EngineNet.of(frame.fold(net), frame.unit_box)
    reference = reference.unit
    root = Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0)
    plan = TreePlan(chunk_size=chunk, limit=10**9, subtrees_wanted=2, split_above=1)
    found, dropped, run = run_tree(engine, root, plan, DaskExecutor(client2))
    assert dropped == reference.dropped_lower_dim and run.tasks > run.explored  # expansions happened
    assert found.patterns.tobytes() == reference.patterns.tobytes()
    assert found.A.tobytes() == reference.A.tobytes() and found.volumes.tobytes() == reference.volumes.tobytes()


def test_compare_monte_carlo_and_exact_on_the_cluster(client2):
    a, b = make_net((2, 12, 12, 1), 1), make_net((2, 16, 1), 2)
    box = qe.Box.cube(2, -1, 1)
    mc = qe.compare(a, b, box, samples=30_000, seed=4)
    assert mc.samples == 30_000 and mc.disagreement_measure > 0  # two random nets differ almost everywhere
    assert qe.compare(a, b, box, samples=30_000, seed=4, client=client2) == mc
    exact = qe.compare(a, b, box, exact=True, tol=0.05)
    assert qe.compare(a, b, box, exact=True, tol=0.05, client=client2) == exact
    # independent check of the sampled figure: the exact measure lies in its 95% interval
    assert mc.ci95[0] - 0.05 <= qe.compare(a, b, box, exact=True).disagreement_measure <= mc.ci95[1] + 0.05


def test_monte_carlo_chunks_are_independent_streams():
    """Chunk i's points come from SeedSequence(seed).spawn(n)[i]: the first chunk of a longer sample
    is the whole of a one-chunk sample with the same seed (the same points, so the same witness)."""
    a, b = make_net((2, 6, 1), 1), make_net((2, 6, 1), 2)
    box = qe.Box.cube(2, -1, 1)
    chunk = chunk_size(a, b)
    one = sample_chunk(a, b, box, 0, np.random.SeedSequence(9).spawn(1)[0], chunk, "regression")
    parts = sample_chunks(a, b, box, samples=3 * chunk, seed=9, task="regression", client=None)
    assert [p.position for p in parts] == [0, 1, 2]
    assert parts[0].errors.tobytes() == one.errors.tobytes()
    assert parts[1].errors.tobytes() != parts[0].errors.tobytes()


def test_a_killed_worker_changes_nothing(client2):
    """A worker process ended by SIGKILL while it holds a task, after the first subtree came back: Dask
    reruns its tasks on the other worker (and the nanny starts a new one); the complex is the serial one."""
    net = make_net((2, 40, 40, 1), 7)
    box = qe.Box.cube(2, -1, 1)
    reference = qe.regions(net, box, chunk_size=16)
    pids = client2.run(os.getpid)
    first_back, killed = threading.Event(), []

    def kill_a_busy_worker() -> None:
        first_back.wait(timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done.is_set():
            busy = [address for address, keys in client2.processing().items() if keys and address in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])
                return
            time.sleep(0.005)

    done = threading.Event()
    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    cx = qe.regions(net, box, chunk_size=16, client=client2, progress=lambda p: first_back.set())
    done.set()
    killer.join()
    assert killed, "the run ended before a worker could be killed"
    assert_same_complex(reference, cx)
    client2.wait_for_workers(2, timeout=60)
    assert killed[0] not in client2.run(os.getpid).values()


def test_checkpoint_refuses_another_net(tmp_path):
    net, other = make_net((2, 6, 1), 1), make_net((2, 6, 1), 2)
    box = qe.Box.cube(2, -1, 1)
    qe.regions(net, box, checkpoint=tmp_path / "ck")
    with pytest.raises(qe.QuasieqError, match="holds a checkpoint already"):
        qe.regions(net, box, checkpoint=tmp_path / "ck")
    with pytest.raises(qe.QuasieqError, match="different net"):
        qe.regions(other, box, checkpoint=tmp_path / "ck", resume=True)
    with pytest.raises(qe.QuasieqError, match="different box"):
        qe.regions(net, qe.Box.cube(2, -1, 2), checkpoint=tmp_path / "ck", resume=True)
    manifest = tmp_path / "ck" / "manifest.json"  # written before the root's cut was part of the key
    manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items() if k != "root_chunks"}))
    with pytest.raises(qe.QuasieqError, match="different cut of the root's children"):
        qe.regions(net, box, checkpoint=tmp_path / "ck", resume=True)


def test_subtrees_sent_from_the_client_unpack_to_themselves():
    """The root's children as they travel (bool columns packed, incidence cut to the words in use) come
    back field for field, dtype and bits, and travel in fewer bytes."""
    frame = UnitFrame.of(qe.Box.cube(3, -1, 1))
    engine = EngineNet.of(frame.fold(make_net((3, 50, 20, 1), 2)), frame.unit_box)
    assert engine.words == 2  # 6 + 70 bits; after layer 1 only 6 + 50 can be set: the second word is cut
    children, _ = split_subtree(Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0), engine,
                                chunk_size=64, limit=10**9, found=0)
    for child in children:
        packed = pack_subtree(child)
        assert array_bytes(packed) < array_bytes(child) and packed.chunk.incidence.shape[1] == 1
        back = unpack_subtree(packed, engine).chunk
        for field in child.chunk._fields:
            a, b = getattr(child.chunk, field), getattr(back, field)
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), field


def test_the_root_is_cut_into_root_chunks():
    """The root's children are cut into ROOT_CHUNKS chunks (of ROOT_CHUNK_MIN_REGIONS regions at least,
    the chunk size at most), every later layer's children into chunks of the chunk size."""
    frame = UnitFrame.of(qe.Box.cube(2, -1, 1))
    for arch, size in (((2, 20, 20, 1), 4096), ((2, 120, 8, 1), 4096), ((2, 120, 8, 1), 64)):
        engine = EngineNet.of(frame.fold(make_net(arch, 3)), frame.unit_box)
        root = Subtree(path=(), layer=0, chunk=root_chunk(engine), share=1.0)
        below, _ = split_subtree(root, engine, chunk_size=size, limit=10**9, found=0)
        n = sum(b.chunk.size for b in below)
        rows = min(size, max(ROOT_CHUNK_MIN_REGIONS, -(-n // ROOT_CHUNKS)))
        assert [b.chunk.size for b in below] == [min(rows, n - s) for s in range(0, n, rows)]
        assert len(below) > 1 and (len(below) <= ROOT_CHUNKS or rows == size)
        deeper, _ = split_subtree(below[0], engine, chunk_size=64, limit=10**9, found=0)
        m = sum(d.chunk.size for d in deeper)
        assert m > 64 and [d.chunk.size for d in deeper] == [min(64, m - s) for s in range(0, m, 64)]
    assert rows == 64 and n > ROOT_CHUNKS * ROOT_CHUNK_MIN_REGIONS  # the last net's root: n / 32 > 128 regions


def test_resume_reads_finished_subtrees_back(tmp_path, serial):
    """A complete checkpoint resumes without computing any subtree; a partial one recomputes exactly
    the regions that are missing."""
    net, chunk, reference = serial["3d"]
    directory = tmp_path / "ck"
    first = qe.regions(net, reference.box, chunk_size=chunk, checkpoint=directory)
    assert_same_complex(reference, first)
    files = sorted(directory.glob("subtree-*.npz"))
    assert len(files) == first.run.explored > 1
    again = qe.regions(net, reference.box, chunk_size=chunk, checkpoint=directory, resume=True)
    assert_same_complex(reference, again)
    assert again.run.resumed == len(files) and again.run.explored == 0
    lost = files[::2]
    lost_regions = sum(int(np.load(f)["radii"].shape[0]) for f in lost)
    for f in lost:
        f.unlink()
    partial = qe.regions(net, reference.box, chunk_size=chunk, checkpoint=directory, resume=True)
    assert_same_complex(reference, partial)
    assert partial.run.resumed == len(files) - len(lost)
    assert partial.run.explored_regions == lost_regions


def without_seconds(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "seconds"}


def serial_json(net: qe.ReluNet, box: qe.Box) -> dict:
    """The one-process ``regions --json`` document, through a JSON round trip."""
    return without_seconds(json.loads(json.dumps(qe.regions(net, box).to_json())))


def test_regions_on_a_cluster_of_separate_scheduler_and_worker_processes(tmp_path, external_cluster, client1):
    """``quasieq regions --scheduler`` on the cluster of ``dask scheduler`` and ``dask worker`` processes
    writes the serial JSON."""
    net = make_net((3, 8, 8, 1), 3)
    model = tmp_path / "net.npz"
    qe.save(net, model)
    out = tmp_path / "regions.json"
    run = subprocess.run(quasieq_command("regions", str(model), "--box", "-1", "1", "--scheduler", external_cluster,
                                         "--json", str(out)),
                         env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert f"Dask cluster at {external_cluster}: 1 worker," in run.stdout
    assert without_seconds(json.loads(out.read_text())) == serial_json(net, qe.Box.cube(3, -1, 1))


def test_ctrl_c_then_resume_gives_the_same_regions(tmp_path):
    """SIGINT to a checkpointed ``quasieq regions`` process once its first subtree is on disk: exit 130,
    no JSON. Resuming reads the finished subtrees back and computes only the regions that are missing
    (counted), in Python and through the command line's ``--resume``, with the serial result."""
    net = make_net((2, 96, 96, 1), 11)
    box = qe.Box.cube(2, -1, 1)
    model, checkpoint, out = tmp_path / "net.npz", tmp_path / "ck", tmp_path / "regions.json"
    qe.save(net, model)
    env = subprocess_env()
    process = subprocess.Popen(quasieq_command("regions", str(model), "--box", "-1", "1", "--checkpoint",
                                               str(checkpoint), "--json", str(out)),
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(checkpoint.glob("subtree-*.npz")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert not out.exists()
    finished = sorted(checkpoint.glob("subtree-*.npz"))
    assert finished
    kept = sum(int(np.load(f)["radii"].shape[0]) for f in finished)
    copy = tmp_path / "ck-copy"
    shutil.copytree(checkpoint, copy)

    resumed = qe.regions(net, box, checkpoint=checkpoint, resume=True)
    reference = qe.regions(net, box)
    assert_same_complex(reference, resumed, same_json=False)  # the JSON: of the command line's resume below
    assert resumed.run.resumed == len(finished) and kept < len(reference)
    assert resumed.run.explored_regions == len(reference) - kept  # only the missing regions were computed

    # the command line's --resume, in this process (the interrupted run above is the real process)
    run = CliRunner().invoke(app, ["regions", str(model), "--box", "-1", "1", "--checkpoint", str(copy), "--resume",
                                   "--json", str(out)])
    assert run.exit_code == 0, run.output
    assert without_seconds(json.loads(out.read_text())) == without_seconds(json.loads(json.dumps(reference.to_json())))
