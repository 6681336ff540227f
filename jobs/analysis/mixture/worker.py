"""Worker process of the matching oracle (`jobs.analysis.mixture.matching`): min-cost flows by OR-Tools.

Runs as its own program (`python jobs/analysis/mixture/worker.py`) and imports only numpy and ortools:
ortools bundles its own HiGHS, and importing it and highspy into one process fails with
undefined symbols, in either order. It says "ready" (the array [PROTOCOL]) once ortools imported, then
reads each problem from stdin and writes the matching to stdout, as arrays in numpy's .npy
format (`send`, `receive`); an error goes to stderr and ends the process.

Where ortools comes from: the environment, or else the directory ORTOOLS_DIR (default
`<sys.prefix>/ortools`), installed with `pip install --no-deps --target <dir> ortools`. It is not
a package dependency because ortools pins protobuf < 6.34 while sentencepiece 0.2.3's generated
proto code needs protobuf >= 7.36; the flow solver imports no protobuf, so the worker can use an
ortools installed beside the environment without its dependencies.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # run as a script, this file's folder (jobs/) is sys.path[0]: drop it, so that jobs/reports/site.py and
    # its siblings cannot shadow modules that numpy or ortools import
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

PROTOCOL = 2  # bump when the messages change: a parent that loaded other code refuses the worker


def ortools_dir() -> Path:
    """Where an ortools installed beside the environment lives (ORTOOLS_DIR or <sys.prefix>/ortools)."""
    return Path(os.environ.get("ORTOOLS_DIR") or Path(sys.prefix) / "ortools")


def ortools_available() -> bool:
    """Whether a worker can import ortools (without importing it here)."""
    return importlib.util.find_spec("ortools") is not None or (ortools_dir() / "ortools").is_dir()


INSTALL_HINT = ("the matching method needs OR-Tools in its worker process; install it beside the environment "
                "with: python -m pip install --no-deps --target \"$(python -c 'import sys; print(sys.prefix)')/ortools\" "
                "'ortools>=9.10'  (see README, 'Mixture inference')")


def tree_cover(lo: np.ndarray, hi: np.ndarray, leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """The canonical nodes of a heap-ordered segment tree with `leaves` (a power of two) leaves
    that cover each range [lo, hi): (range index, node), O(log leaves) nodes per range."""
    lo, hi = lo + leaves, hi + leaves
    rng = np.arange(len(lo))
    out_r, out_n = [], []
    while True:
        act = lo < hi
        if not act.any():
            break
        m = act & (lo & 1 == 1)
        out_r.append(rng[m])
        out_n.append(lo[m])
        lo = np.where(m, lo + 1, lo)
        m = act & (hi & 1 == 1)
        hi = np.where(m, hi - 1, hi)
        out_r.append(rng[m])
        out_n.append(hi[m])
        lo >>= 1
        hi >>= 1
    return np.concatenate(out_r), np.concatenate(out_n)


def match_segments(pair: np.ndarray, weight: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   leaf_cost: np.ndarray, leaf_cap: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight b-matching of segments to leaves: at most one segment per pair (ids
    0..P-1), at most leaf_cap[i] segments on leaf i; segment s may take a leaf in [lo, hi) and
    gains weight − leaf_cost (costs are rounded to multiples of 1/scale). Returns the matched
    (segments, leaves).

    Runs OR-Tools; call it in a process that has not imported highspy (see the module doc)."""
    from ortools.graph.python import min_cost_flow

    n_leaves, S = len(leaf_cost), len(pair)
    P = int(pair.max()) + 1 if S else 0
    L = 1 << max(n_leaves - 1, 0).bit_length()  # leaves of the segment tree: a power of two ≥ n_leaves
    src, snk, pbase = 0, 1, 2
    sbase = pbase + P
    tbase = sbase + S  # tree node v (heap order, 1..2L-1) is graph node tbase + v
    seg, node = tree_cover(lo, hi, L)
    inner = np.arange(1, L)
    tails = [np.full(P, src), pbase + pair, sbase + seg, tbase + inner, tbase + inner, tbase + L + np.arange(n_leaves)]
    heads = [pbase + np.arange(P), sbase + np.arange(S), tbase + node, tbase + 2 * inner, tbase + 2 * inner + 1,
             np.full(n_leaves, snk)]
    caps = [np.ones(P), np.ones(S), np.ones(len(seg)), np.full(L - 1, P), np.full(L - 1, P), leaf_cap]
    costs = [np.zeros(P), -np.round(weight * scale), np.zeros(len(seg)), np.zeros(L - 1), np.zeros(L - 1),
             np.round(leaf_cost * scale)]
    # a direct source → sink arc lets pairs stay unmatched
    tails, heads, caps, costs = (np.r_[np.concatenate(x), y].astype(np.int64)
                                 for x, y in ((tails, src), (heads, snk), (caps, P), (costs, 0)))
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supply = np.zeros(tbase + 2 * L, np.int64)
    supply[src], supply[snk] = P, -P
    flow.set_nodes_supplies(np.arange(len(supply)), supply)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow status {status}")
    F = flow.flows(np.arange(flow.num_arcs()))
    off = np.cumsum([0, P, S, len(seg), L - 1])
    f_cover, f_left = F[off[2]:off[3]], F[off[3]:off[4]]
    # decompose: each unit entering a tree node goes left or right as the flows on its two arcs
    # say; which unit goes where does not matter (every unit below a node fits every leaf below it)
    units: list[list[int]] = [[] for _ in range(2 * L)]
    for s, v in zip(seg[f_cover > 0].tolist(), node[f_cover > 0].tolist(), strict=True):
        units[v].append(s)
    for v in range(1, L):
        u = units[v]
        if u:
            k = int(f_left[v - 1])
            units[2 * v].extend(u[:k])
            units[2 * v + 1].extend(u[k:])
    segs = [s for i in range(n_leaves) for s in units[L + i]]
    leaves = [i for i in range(n_leaves) for _ in units[L + i]]
    return np.array(segs, np.int64), np.array(leaves, np.int64)


def send(out, x: np.ndarray) -> None:
    """Write one array: its .npy bytes, preceded by their length (8 bytes, little-endian)."""
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    out.write(len(buf.getbuffer()).to_bytes(8, "little"))
    out.write(buf.getbuffer())


def receive(inp) -> np.ndarray | None:
    """Read one array written by `send`; None at the end of the stream."""
    head = inp.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "little")
    data = inp.read(size)
    if len(data) < size:
        raise EOFError(f"stream ended after {len(data)} of {size} bytes")
    return np.load(io.BytesIO(data), allow_pickle=False)


def serve(inp, out) -> None:
    """Say ready, then answer problems (pair, weight, lo, hi, leaf_cost, leaf_cap, [scale]) until the input ends."""
    if importlib.util.find_spec("ortools") is None:
        sys.path.append(str(ortools_dir()))  # after site-packages: numpy stays the environment's
    try:
        from ortools.graph.python import min_cost_flow  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e}\n{INSTALL_HINT}")
    send(out, np.array([PROTOCOL]))
    out.flush()
    while (pair := receive(inp)) is not None:
        weight, lo, hi, leaf_cost, leaf_cap, scale = (receive(inp) for _ in range(6))
        seg, leaf = match_segments(pair, weight, lo, hi, leaf_cost, leaf_cap, float(scale[0]))
        send(out, seg)
        send(out, leaf)
        out.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
