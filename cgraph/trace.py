"""Trace a PyTorch model into its :class:`~cgraph.graph.CompGraph`.

The main path is ``torch.fx``: a symbolic trace that keeps the modules listed
in the vocabulary as leaves (one kernel per call, see :mod:`cgraph.vocab`) and
traces through every other module, followed by shape propagation on the
example inputs (an :class:`torch.fx.Interpreter` that records each value's
shape and dtype and builds the nodes as it goes).

Models that ``torch.fx`` cannot trace symbolically, typically because of
data-dependent control flow (``if x.sum() > 0:``), fall back to an *eager*
recording: the model runs once on the example inputs under a
``TorchFunctionMode`` and module hooks that record the same calls, so the graph
follows the branch the example inputs take.  A :class:`TraceFallbackWarning`
names the offending line; ``fallback="error"`` raises :class:`TraceError`
instead.  On models both paths can trace they give equal graphs; to keep them equal,
the fx path records the calls inside functions that libraries hide from fx with
``torch.fx.wrap`` (torchvision's window attention and stochastic depth) instead of
one opaque kernel per call.

Running the model for shapes does not change it: buffers (batch-norm running
statistics) are restored afterwards, and gradients are not recorded.
"""

from __future__ import annotations

import inspect
import operator
import os
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from cbred.cgraph import passes
from cbred.cgraph.graph import (
    ACTIVATION,
    BUFFER,
    CONSTANT,
    INPUT,
    OUTPUT,
    PARAMETER,
    CompGraph,
    Fragment,
    GraphBuilder,
)
from cbred.cgraph.kernels import Operand, bind_function, bind_module, describe
from cbred.cgraph.vocab import VOCAB_INDEX, function_family, module_family, normalise_name
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

FALLBACKS = ("eager", "error")
_TORCH_DIR = os.path.dirname(torch.__file__)


class TraceError(ValueError):
    """A model could not be traced; the message names the offending operation or line."""


class TraceFallbackWarning(UserWarning):
    """``torch.fx`` failed and the graph was recorded eagerly on the example inputs."""


def trace(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple | list,
    fallback: str = "eager",
    drop_noops: bool = False,
) -> CompGraph:
    """The computational graph of ``model`` called on ``example_inputs``.

    ``example_inputs`` is one tensor or a tuple of the positional tensor inputs;
    their shapes set the arrays' shapes and the FLOPs.  ``fallback`` says what to
    do when ``torch.fx`` cannot trace the model: ``"eager"`` (record one real
    call, warning) or ``"error"`` (raise :class:`TraceError`).  ``drop_noops``
    removes the kernels that compute nothing in the model's current mode
    (identities, dropout in eval mode: :func:`cgraph.passes.drop_noops`); off by
    default, since an identity can be a searchable operation (NB201's ``skip_connect``).
    """
    graph = _record(model, _as_inputs(example_inputs), fallback).build()
    return passes.drop_noops(graph) if drop_noops else graph


def trace_fragment(model: nn.Module, example_inputs: torch.Tensor | tuple, root: str) -> Fragment:
    """Trace with ``torch.fx`` into a :class:`~cgraph.graph.Fragment` whose placeholders
    are the inputs and whose names start at ``root`` (a one-character attribute of
    ``model`` holding the piece being templated)."""
    if len(root) != 1:
        raise ValueError(f"a fragment root must be one character, got {root!r}")
    inputs = _as_inputs(example_inputs)
    recorder = _record(model, inputs, "error")
    return recorder.fragment(root, len(inputs), recorder.outputs)


def _as_inputs(example_inputs: Any) -> tuple[torch.Tensor, ...]:
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else example_inputs
    if not isinstance(inputs, (tuple, list)) or not all(
        isinstance(x, torch.Tensor) for x in inputs
    ):
        raise TypeError(
            f"example_inputs must be a tensor or a tuple of tensors, got {type(example_inputs)}"
        )
    return tuple(inputs)


def _record(model: nn.Module, inputs: tuple[torch.Tensor, ...], fallback: str) -> _Recorder:
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        graph = _LeafTracer().trace(model, concrete_args=_defaults_after(model, len(inputs)))
    except Exception as exc:  # fx raises TraceError, TypeError, ... depending on the construct
        where = _user_line(exc) or _forward_line(model)
        message = f"torch.fx cannot trace {type(model).__name__}: {exc}{where}"
        if fallback == "error":
            raise TraceError(message) from exc
        warnings.warn(
            f"{message}; recording one eager call on the example inputs instead",
            TraceFallbackWarning,
            stacklevel=3,
        )
        return _run_preserving(model, lambda: _EagerRecorder(model).run(inputs))
    return _run_preserving(model, lambda: _FxRecorder(model, graph).run_all(inputs))


def _defaults_after(model: nn.Module, count: int) -> dict[str, Any]:
    """``forward`` parameters after the first ``count``, fixed at their defaults for fx
    (so ``if mask is None`` takes the branch an eager call without ``mask`` takes)."""
    params = list(inspect.signature(model.forward).parameters.values())[count:]
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _user_line(exc: BaseException) -> str:
    """`` (at file:line: code)`` for the innermost frame outside torch, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _TORCH_DIR not in f.filename]
    if not frames or frames[-1].filename == __file__:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename}:{frame.lineno}: {frame.line})"


def _forward_line(model: nn.Module) -> str:
    """`` (in Class.forward at file:line)`` where the traceback has no frame of the user's:
    fx failed on the forward's signature itself (a decorated forward, ``**kwargs``: "co_varnames
    is too small"), so its definition is the line to look at."""
    forward = inspect.unwrap(type(model).forward)
    try:
        path, line = inspect.getsourcefile(forward), inspect.getsourcelines(forward)[1]
    except (OSError, TypeError):
        return ""
    return f" (in {type(model).__qualname__}.forward at {path}:{line})"


def _run_preserving(model: nn.Module, run: Callable[[], _Recorder]) -> _Recorder:
    """Run ``run`` without gradients and restore the model's buffers afterwards."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        with torch.no_grad():
            return run()
    finally:
        for buffer, value in saved:
            buffer.copy_(value)


class _LeafTracer(fx.Tracer):
    """Keeps the vocabulary's modules as single calls, traces through all others."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_family(m) is not None


def _module_target(module: nn.Module) -> str:
    cls = type(module)
    return f"nn.{cls.__name__}" if getattr(nn, cls.__name__, None) is cls else cls.__qualname__


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _has_tensor(value: Any) -> bool:
    return any(isinstance(leaf, torch.Tensor) for leaf in pytree.tree_leaves(value))


def _operand_leaves(*values: Any) -> Iterator[Operand]:
    for leaf in pytree.tree_leaves(values, is_leaf=lambda v: isinstance(v, Operand)):
        if isinstance(leaf, Operand):
            yield leaf


class _Recorder(GraphBuilder):
    """A graph builder that knows the model's parameters and buffers.

    State tensors are keyed by identity, so a weight tied between two modules is
    one node, named by its first path in the model.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.outputs: list[int] = []
        self._known: dict[int, tuple[str, int]] = {
            id(t): (n, BUFFER) for n, t in model.named_buffers()
        }
        self._known.update({id(t): (n, PARAMETER) for n, t in model.named_parameters()})
        for path, module in model.named_modules():
            for attr, value in vars(module).items():
                if isinstance(value, torch.Tensor) and id(value) not in self._known:
                    self._known[id(value)] = (f"{path}.{attr}" if path else attr, CONSTANT)
        self._state_mem: dict[int, int] = {}
        self._alive: list[torch.Tensor] = []  # keeps the ids of unnamed constants unique

    def operand(self, mem: int) -> Operand:
        return Operand(mem, self.mem_shape[mem], self.mem_dtype[mem])

    def new_array(self, name: str | None, kind: int, tensor: torch.Tensor) -> Operand:
        return self.operand(self.add_memory(name, kind, tensor.shape, _dtype_name(tensor.dtype)))

    def state(self, tensor: torch.Tensor, name: str | None = None) -> Operand:
        """The node of a parameter, buffer or constant tensor, made on first use.

        ``name`` names a constant (a tensor attribute); unnamed constants are numbered.
        """
        mem = self._state_mem.get(id(tensor))
        if mem is None:
            known = self._known.get(id(tensor))
            if known is None:
                known = (name or f"constant{len(self._alive)}", CONSTANT)
                self._alive.append(tensor)
            mem = self._state_mem[id(tensor)] = self.new_array(known[0], known[1], tensor).mem
        return self.operand(mem)

    def kernel(
        self,
        name: str,
        family: str,
        raw: str,
        target: str,
        bound: dict[str, Any],
        reads: list[Operand],
        result: Any,
    ) -> Any:
        """Add one kernel; return ``result`` with each tensor replaced by its new Operand."""
        leaves, spec = pytree.tree_flatten(result)
        outs = [
            self.new_array(None, ACTIVATION, leaf) if isinstance(leaf, torch.Tensor) else None
            for leaf in leaves
        ]
        written = [o for o in outs if o is not None]
        op, attrs, flops = describe(family, raw, bound, written)
        self.add_kernel(
            name,
            VOCAB_INDEX[op],
            target,
            attrs,
            flops,
            [r.mem for r in reads],
            [o.mem for o in written],
        )
        return pytree.tree_unflatten(outs, spec)

    def module_kernel(
        self,
        name: str,
        family: str,
        raw: str,
        target: str,
        bound: dict[str, Any],
        reads: list[Operand],
        result: Any,
    ) -> Any:
        """Add a leaf module's call: one kernel, or, for self-attention through
        ``nn.MultiheadAttention``, the operations it runs (:meth:`_self_attention`)."""
        if family == "attention" and _packed_self_attention(bound):
            return self._self_attention(name, bound, result)
        return self.kernel(name, family, raw, target, bound, reads, result)

    def _self_attention(self, name: str, bound: dict[str, Any], result: Any) -> Any:
        """``nn.MultiheadAttention`` on one input as the operations it computes, in the
        order a transformer written out by hand runs them (timm's ``Attention``): the packed
        q/k/v projection (``linear``), split into heads (``reshape``, ``permute``, ``split``),
        the attention product (``attention``), heads merged (``permute``, ``reshape``) and
        the output projection (``linear``).  So torchvision's ViT (this module) and timm's
        (the operations) give one graph; FLOPs are the module's, split among the steps."""
        x = bound["query"]
        embed, heads = int(bound["embed_dim"]), int(bound["num_heads"])
        out, weights = result
        lead = x.shape[:-1]  # (B, L) batch first, else (L, B)
        batch, length = (lead[0], lead[1]) if bound["batch_first"] else (lead[1], lead[0])
        head_shape = (batch, heads, length, embed // heads)
        width = embed // heads

        def meta(*shape: int) -> torch.Tensor:  # a shape, no data, unseen by an eager recording
            with torch._C.DisableTorchFunction():
                return torch.empty(shape, dtype=out.dtype, device="meta")

        def step(suffix: str, family: str, raw: str, args: dict[str, Any], value: Any) -> Any:
            reads = list(_operand_leaves(list(args.values())))
            return self.kernel(f"{name}/{suffix}", family, raw, raw, args, reads, value)

        projection = {"input": x, "weight": bound["in_proj_weight"]}
        if isinstance(bound.get("in_proj_bias"), Operand):
            projection["bias"] = bound["in_proj_bias"]
        qkv = step("in_proj", "linear", "linear", projection, meta(*lead, 3 * embed))
        qkv = step(
            "split_heads", "reshape", "reshape", {"input": qkv}, meta(*lead, 3, heads, width)
        )
        qkv = step("to_heads", "permute", "permute", {"input": qkv}, meta(3, *head_shape))
        parts = tuple(meta(*head_shape) for _ in range(3))
        q, k, v = step("unbind", "split", "unbind", {"input": qkv}, parts)
        masks = {m: bound[m] for m in ("attn_mask", "key_padding_mask") if m in bound}
        core = meta(*head_shape)
        core = step(
            "attention",
            "attention",
            "scaled_dot_product_attention",
            {"query": q, "key": k, "value": v, **masks},
            core if weights is None else (core, weights),
        )
        core, weights = (core, None) if weights is None else core
        merged = (batch, length) if bound["batch_first"] else (length, batch)
        core = step(
            "from_heads", "permute", "transpose", {"input": core}, meta(*merged, heads, width)
        )
        core = step("merge_heads", "reshape", "reshape", {"input": core}, meta(*lead, embed))
        projection = {"input": core, "weight": bound["out_proj.weight"]}
        if isinstance(bound.get("out_proj.bias"), Operand):
            projection["bias"] = bound["out_proj.bias"]
        return step("out_proj", "linear", "linear", projection, out), weights

    def mark_outputs(self, result: Any) -> None:
        for leaf in _operand_leaves(result):
            if self.mem_kind[leaf.mem] == ACTIVATION:
                self.set_kind(leaf.mem, OUTPUT)
            self.outputs.append(leaf.mem)


def _packed_self_attention(bound: dict[str, Any]) -> bool:
    """Whether an ``nn.MultiheadAttention`` call is batched self-attention with packed
    q/k/v weights and no extra key/value bias or zero attention (the usual transformer
    block); other calls stay one ``attention`` kernel."""
    x, weight = bound.get("query"), bound.get("in_proj_weight")
    same = all(isinstance(bound.get(a), Operand) and bound[a].mem == getattr(x, "mem", -1)
               for a in ("query", "key", "value"))  # fmt: skip
    return (
        same
        and isinstance(weight, Operand)
        and len(x.shape) == 3
        and "bias_k" not in bound
        and not bound.get("add_zero_attn", False)
    )


@dataclass(frozen=True)
class _State:
    """A tensor attribute fetched by an fx ``get_attr`` node, not yet read by a kernel."""

    name: str
    tensor: torch.Tensor


class _FxRecorder(fx.Interpreter):
    """Shape propagation over an fx graph that records kernels as it runs."""

    def __init__(self, model: nn.Module, graph: fx.Graph) -> None:
        super().__init__(model, graph=graph)  # runs the graph on the model: no code generation
        self.recorder = _Recorder(model)
        self.arrays: dict[fx.Node, Any] = {}  # node -> value with tensors as Operands

    def run_all(self, inputs: tuple[torch.Tensor, ...]) -> _Recorder:
        self.run(*inputs)
        return self.recorder

    def run_node(self, n: fx.Node) -> Any:
        if n.op == "call_function" and _is_wrapped_function(n.target):
            return self._look_through(n)
        value = super().run_node(n)
        rec = self.recorder
        if n.op == "placeholder":  # an argument left at its default may not be a tensor
            is_tensor = isinstance(value, torch.Tensor)
            self.arrays[n] = rec.new_array(n.target, INPUT, value) if is_tensor else None
        elif n.op == "get_attr":
            self.arrays[n] = _State(n.target, value) if isinstance(value, torch.Tensor) else None
        elif n.op == "output":
            rec.mark_outputs(self._operands(n.args[0]))
        elif n.target is operator.getitem and isinstance(self.arrays.get(n.args[0]), (tuple, list)):
            self.arrays[n] = self.arrays[n.args[0]][self._operands(n.args[1])]
        elif _has_tensor(value):
            self.arrays[n] = self._kernel(n, value)
        return value

    def _look_through(self, n: fx.Node) -> Any:
        """Run a function fx kept whole (``torch.fx.wrap``) while recording its calls, as
        the eager path does, instead of one opaque kernel: torchvision's
        ``shifted_window_attention`` holds a window attention's projections and products."""
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        eager = _EagerRecorder(self.module, self.recorder)
        eager.scopes.append(_scope(n))
        arrays = pytree.tree_leaves(self._operands((n.args, n.kwargs)))
        for value, array in zip(pytree.tree_leaves((args, kwargs)), arrays, strict=True):
            if isinstance(value, torch.Tensor) and isinstance(array, Operand):
                eager._bind(value, array)
        with eager:
            value = n.target(*args, **kwargs)
        self.arrays[n] = eager._operands(value) if _has_tensor(value) else None
        return value

    def _operands(self, arg: Any) -> Any:
        """An fx argument with array nodes as Operands and other nodes as their values."""
        return fx.node.map_aggregate(arg, self._operand)

    def _operand(self, a: Any) -> Any:
        if not isinstance(a, fx.Node):
            return a
        array = self.arrays.get(a)
        if array is None:
            return self.env[a]
        if isinstance(array, _State):  # parameters get their node when first read
            array = self.arrays[a] = self.recorder.state(array.tensor, array.name)
        return array

    def _kernel(self, n: fx.Node, value: Any) -> Any:
        rec = self.recorder
        args, kwargs = self._operands(n.args), self._operands(n.kwargs)
        reads = list(_operand_leaves(args, kwargs))
        if n.op == "call_module":
            module = self.module.get_submodule(n.target)
            family, raw = module_family(module), type(module).__name__
            state = {
                name: rec.state(tensor)
                for name, tensor in (*module.named_parameters(), *module.named_buffers())
            }
            bound = bind_module(family, module, args, kwargs, state)
            return rec.module_kernel(
                n.target,
                family,
                raw,
                _module_target(module),
                bound,
                reads + list(state.values()),
                value,
            )
        raw = normalise_name(n.target if n.op == "call_method" else n.target.__name__)
        family = function_family(raw)
        scope = _scope(n)
        name = f"{scope}/{raw}" if scope else raw
        bound = bind_function(family, raw, args, kwargs)
        return rec.kernel(name, family, raw, raw, bound, reads, value)


def _scope(n: fx.Node) -> str:
    """The qualified name of the module whose ``forward`` made the call ``n`` ("" at the top)."""
    stack = n.meta.get("nn_module_stack")
    return next(reversed(stack.values()))[0] if stack else ""


def _is_wrapped_function(target: Any) -> bool:
    """Whether an fx ``call_function`` target is a Python function from outside torch.

    fx traces through every Python function except those registered with
    ``torch.fx.wrap`` (torchvision's ``shifted_window_attention`` and
    ``stochastic_depth``, timm's ``register_notrace_function``), so such a target is one
    of those: code that holds the computation, not a torch operation.
    """
    module = getattr(target, "__module__", None) or ""
    return inspect.isfunction(target) and module.split(".")[0] not in ("torch", "_operator")


class _EagerRecorder(TorchFunctionMode):
    """Records one real call: leaf modules through hooks, other calls through the mode.

    ``recorder`` is the builder to record into: a fresh one for a whole model, the fx
    path's own for a function fx kept whole (:meth:`_FxRecorder._look_through`).
    """

    def __init__(self, model: nn.Module, recorder: _Recorder | None = None) -> None:
        super().__init__()
        self.model = model
        self.recorder = _Recorder(model) if recorder is None else recorder
        self.names = {id(m): name for name, m in model.named_modules()}
        self.arrays: dict[int, Operand] = {}  # id(tensor) -> its latest array
        self.alive: list[torch.Tensor] = []  # keeps recorded tensors' ids unique
        self.scopes: list[str] = []
        self.leaf_depth = 0

    def run(self, inputs: tuple[torch.Tensor, ...]) -> _Recorder:
        names = list(_forward_arg_names(self.model, len(inputs)))
        for name, x in zip(names, inputs, strict=True):
            self._bind(x, self.recorder.new_array(name, INPUT, x))
        with self._hooks(), self:
            result = self.model(*inputs)
        self.recorder.mark_outputs(self._operands(result))
        return self.recorder

    def __torch_function__(
        self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.leaf_depth or not _has_tensor(result):
            return result
        raw = normalise_name(func.__name__)
        scope = self.scopes[-1] if self.scopes else ""
        name = f"{scope}/{raw}" if scope else raw
        result = self._fresh(result, (args, kwargs))
        ops_args, ops_kwargs = self._operands(args), self._operands(kwargs)
        family = function_family(raw)
        bound = bind_function(family, raw, ops_args, ops_kwargs)
        reads = list(_operand_leaves(ops_args, ops_kwargs))
        self._record(name, family, raw, raw, bound, reads, result)
        return result

    @contextmanager
    def _hooks(self) -> Iterator[None]:
        handles = []
        for module in self.model.modules():
            handles.append(module.register_forward_pre_hook(self._enter, with_kwargs=True))
            handles.append(module.register_forward_hook(self._leave, with_kwargs=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.leaf_depth or module_family(module) is not None:
            self.leaf_depth += 1
        self.scopes.append(self.names[id(module)])

    def _leave(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        self.scopes.pop()
        if not self.leaf_depth:
            return None
        self.leaf_depth -= 1
        if self.leaf_depth:
            return None
        rec, path = self.recorder, self.names[id(module)]
        output = self._fresh(output, (args, kwargs))
        ops_args, ops_kwargs = self._operands(args), self._operands(kwargs)
        state = {
            name: rec.state(tensor)
            for name, tensor in (*module.named_parameters(), *module.named_buffers())
        }
        family = module_family(module)
        bound = bind_module(family, module, ops_args, ops_kwargs, state)
        reads = list(_operand_leaves(ops_args, ops_kwargs)) + list(state.values())
        arrays = rec.module_kernel(
            path, family, type(module).__name__, _module_target(module), bound, reads, output
        )
        self._bind_result(output, arrays)
        return output

    def _record(
        self,
        name: str,
        family: str,
        raw: str,
        target: str,
        bound: dict[str, Any],
        reads: list[Operand],
        result: Any,
    ) -> None:
        """Add the kernel and point the result tensors at their new arrays."""
        self._bind_result(
            result, self.recorder.kernel(name, family, raw, target, bound, reads, result)
        )

    def _bind_result(self, result: Any, arrays: Any) -> None:
        for tensor, array in zip(pytree.tree_leaves(result), pytree.tree_leaves(arrays)):
            if isinstance(tensor, torch.Tensor):
                self._bind(tensor, array)

    def _bind(self, tensor: torch.Tensor, array: Operand) -> None:
        self.arrays[id(tensor)] = array
        self.alive.append(tensor)

    def _fresh(self, result: Any, inputs: Any) -> Any:
        """Give results that are input objects (identity, in-place) a new tensor object,
        so that the input keeps naming its old array, as in the fx graph."""
        seen = {id(t) for t in pytree.tree_leaves(inputs) if isinstance(t, torch.Tensor)}
        with torch._C.DisableTorchFunction():
            return pytree.tree_map(
                lambda t: t.view_as(t) if isinstance(t, torch.Tensor) and id(t) in seen else t,
                result,
            )

    def _operands(self, value: Any) -> Any:
        return pytree.tree_map(
            lambda t: self._operand(t) if isinstance(t, torch.Tensor) else t, value
        )

    def _operand(self, tensor: torch.Tensor) -> Operand:
        array = self.arrays.get(id(tensor))
        return array if array is not None else self.recorder.state(tensor)


def _forward_arg_names(model: nn.Module, count: int) -> Iterator[str]:
    """Names of the first ``count`` positional parameters of ``model.forward``."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [
        p.name for p in inspect.signature(model.forward).parameters.values() if p.kind in positional
    ]
    for i in range(count):
        yield names[i] if i < len(names) else f"input_{i}"
