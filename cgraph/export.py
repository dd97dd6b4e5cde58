"""Convert a :class:`~cgraph.graph.CompGraph` to networkx, PyTorch Geometric and JSON.

- :func:`to_networkx`: a ``DiGraph`` with nodes ``m<i>`` (arrays, ``bipartite=0``)
  and ``k<i>`` (kernels, ``bipartite=1``), carrying every attribute of the graph.
- :func:`to_pyg`: a ``HeteroData`` with node types ``memory`` and ``kernel``
  and edge types ``(memory, read, kernel)`` and ``(kernel, write, memory)``;
  features are listed in :data:`MEMORY_FEATURES` and :data:`KERNEL_FEATURES`.
- :func:`to_json` / :func:`from_json`: a lossless plain-data form (kernel types
  stored by name, so it survives vocabulary extensions); :func:`save` and
  :func:`load` pick the format from the file suffix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import torch
from cbred._files import atomic_output
from cbred.cgraph.graph import MEMORY_KINDS, CompGraph
from cbred.cgraph.vocab import VOCAB, op_index
from torch_geometric.data import HeteroData

FORMAT = "cbred.compgraph"
VERSION = 1
SUFFIXES = (".json", ".graphml", ".pt")

MEMORY_FEATURES: tuple[str, ...] = (
    *(f"kind={k}" for k in MEMORY_KINDS),
    "log1p_numel",
    "ndim",
    "is_floating",
)
"""Columns of ``HeteroData["memory"].x``: one-hot kind, log(1 + elements), rank, float dtype."""

KERNEL_FEATURES: tuple[str, ...] = (*(f"op={op}" for op in VOCAB), "log1p_flops")
"""Columns of ``HeteroData["kernel"].x``: one-hot vocabulary type, log(1 + FLOPs)."""


def to_networkx(graph: CompGraph) -> nx.DiGraph:
    """A directed bipartite networkx graph with all node attributes."""
    out = nx.DiGraph()
    numel = graph.mem_numel
    for i in range(graph.num_memory):
        out.add_node(
            f"m{i}",
            bipartite=0,
            type="memory",
            name=graph.mem_name[i],
            kind=MEMORY_KINDS[graph.mem_kind[i]],
            shape=graph.mem_shape[i],
            dtype=graph.mem_dtype[i],
            numel=int(numel[i]),
        )
    ops = graph.kernel_ops
    for k in range(graph.num_kernels):
        out.add_node(
            f"k{k}",
            bipartite=1,
            type="kernel",
            name=graph.kernel_name[k],
            op=ops[k],
            target=graph.kernel_target[k],
            attrs=graph.kernel_attrs[k],
            flops=int(graph.kernel_flops[k]),
        )
    out.add_edges_from((f"m{m}", f"k{k}", {"type": "read"}) for m, k in graph.reads.tolist())
    out.add_edges_from((f"k{k}", f"m{m}", {"type": "write"}) for k, m in graph.writes.tolist())
    return out


def write_graphml(graph: CompGraph, path: str | Path) -> None:
    """GraphML file of :func:`to_networkx`; shapes as ``1x3x32x32``, attrs as JSON text."""
    g = to_networkx(graph)
    for _, data in g.nodes(data=True):
        if "shape" in data:
            data["shape"] = "x".join(map(str, data["shape"]))
        if "attrs" in data:
            data["attrs"] = json.dumps(data["attrs"], sort_keys=True)
    nx.write_graphml(g, path)


def to_pyg(graph: CompGraph) -> HeteroData:
    """A PyTorch Geometric ``HeteroData`` with the features documented above.

    Besides ``x`` it stores ``memory.kind``, ``memory.numel``, ``kernel.op`` and
    ``kernel.flops`` as integer tensors.
    """
    data = HeteroData()
    kinds = torch.from_numpy(graph.mem_kind.astype(np.int64))
    numel = torch.from_numpy(graph.mem_numel)
    floating = torch.tensor(
        [torch.empty(0, dtype=_dtype(d)).is_floating_point() for d in graph.mem_dtype]
    )
    ndim = torch.tensor([len(s) for s in graph.mem_shape], dtype=torch.float32)
    data["memory"].x = torch.cat(
        [
            torch.nn.functional.one_hot(kinds, len(MEMORY_KINDS)).float(),
            torch.log1p(numel.double()).float().unsqueeze(1),
            ndim.reshape(-1, 1),
            floating.float().reshape(-1, 1),
        ],
        dim=1,
    )
    data["memory"].kind, data["memory"].numel = kinds, numel
    ops = torch.from_numpy(graph.kernel_op.astype(np.int64))
    flops = torch.from_numpy(graph.kernel_flops)
    data["kernel"].x = torch.cat(
        [
            torch.nn.functional.one_hot(ops, len(VOCAB)).float(),
            torch.log1p(flops.double()).float().unsqueeze(1),
        ],
        dim=1,
    )
    data["kernel"].op, data["kernel"].flops = ops, flops
    data["memory", "read", "kernel"].edge_index = torch.from_numpy(graph.reads.T.copy())
    data["kernel", "write", "memory"].edge_index = torch.from_numpy(graph.writes.T.copy())
    return data


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype name {name!r}")
    return dtype


def to_json(graph: CompGraph) -> dict[str, Any]:
    """A plain-data dictionary that :func:`from_json` turns back into an equal graph."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "memory": {
            "name": graph.mem_name,
            "kind": [MEMORY_KINDS[k] for k in graph.mem_kind],
            "shape": [list(s) for s in graph.mem_shape],
            "dtype": graph.mem_dtype,
        },
        "kernels": {
            "name": graph.kernel_name,
            "op": graph.kernel_ops,
            "target": graph.kernel_target,
            "attrs": graph.kernel_attrs,
            "flops": graph.kernel_flops.tolist(),
        },
        "reads": graph.reads.tolist(),
        "writes": graph.writes.tolist(),
    }


def from_json(data: dict[str, Any]) -> CompGraph:
    """The graph stored by :func:`to_json` (validated)."""
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ValueError(
            f"not a {FORMAT} v{VERSION} document: format={data.get('format')!r}, "
            f"version={data.get('version')!r}"
        )
    memory, kernels = data["memory"], data["kernels"]
    try:
        kinds = [MEMORY_KINDS.index(k) for k in memory["kind"]]
    except ValueError as exc:
        raise ValueError(f"unknown memory kind: {exc}; expected one of {MEMORY_KINDS}") from None
    graph = CompGraph(
        mem_name=list(memory["name"]),
        mem_kind=np.asarray(kinds, dtype=np.int8),
        mem_shape=[tuple(s) for s in memory["shape"]],
        mem_dtype=list(memory["dtype"]),
        kernel_name=list(kernels["name"]),
        kernel_op=np.asarray([op_index(op) for op in kernels["op"]], dtype=np.int16),
        kernel_target=list(kernels["target"]),
        kernel_attrs=[_tuples(a) for a in kernels["attrs"]],
        kernel_flops=np.asarray(kernels["flops"], dtype=np.int64),
        reads=np.asarray(data["reads"], dtype=np.int64).reshape(-1, 2),
        writes=np.asarray(data["writes"], dtype=np.int64).reshape(-1, 2),
    )
    graph.validate()
    return graph


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples that kernel attributes hold."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def save(graph: CompGraph, path: str | Path) -> Path:
    """Write ``graph`` as JSON (lossless), GraphML or a PyG ``HeteroData`` (``.pt``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot tell the format of {str(path)!r}; use one of {SUFFIXES}")
    with atomic_output(path) as tmp:  # a finished file or none
        if suffix == ".json":
            tmp.write_text(json.dumps(to_json(graph)))
        elif suffix == ".graphml":
            write_graphml(graph, tmp)
        else:
            torch.save(to_pyg(graph), tmp)
    return path


def load(path: str | Path) -> CompGraph:
    """Read a graph written by :func:`save` in JSON form."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"only the lossless .json form can be loaded back, got {str(path)!r}")
    return from_json(json.loads(path.read_text()))
