"""User models on the command line (``--model`` / ``--models``): one way to build and feed them.

``MODULE:FACTORY`` names a callable (the module is imported like ``python -m`` would, from the
current folder first); ``--factory-kwargs JSON`` are its keyword arguments. The example input
is the module's ``example_inputs()`` when it defines one, else a seeded tensor of
``--input-shape``: floats from a normal distribution, or integer token ids below ``--vocab``
with ``--input-dtype long``. Models are traced in eval mode (what they compute at inference:
dropout and batch-norm statistics off) unless ``--train`` is given. Every failure is one
ValueError naming the value and what was expected.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from cbred.bench.commands.common import positive_int


def first_line(exc: BaseException) -> str:
    """``Type: message`` with the message's first non-empty line only (torch.fx appends the
    graph node and hints on further lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def model_parent() -> argparse.ArgumentParser:
    """``--input-shape``, ``--input-dtype``, ``--vocab``, ``--factory-kwargs``, ``--train``,
    ``--drop-noops``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--input-shape", help="example input shape, e.g. 1,3,32,32")
    parent.add_argument(
        "--input-dtype", default="float", help="float (normal) or long (token ids < --vocab)"
    )
    parent.add_argument("--vocab", type=positive_int, help="vocabulary size for --input-dtype long")
    parent.add_argument(
        "--factory-kwargs", default="{}", help='keyword arguments of the factory, JSON: {"n": 10}'
    )
    parent.add_argument("--train", action="store_true", help="trace in training mode")
    parent.add_argument(
        "--drop-noops",
        action="store_true",
        help="remove kernels that compute nothing as traced (identities, eval-mode dropout)",
    )
    return parent


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,32,32"`` → (1, 3, 32, 32); ValueError naming the text otherwise."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated integers, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"--input-shape must list positive sizes, got {text!r}")
    return shape


def load_factory(spec: str) -> tuple[Any, Any]:
    """(module, callable) named by ``"package.module:factory"``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"model {spec!r} must look like package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise ValueError(
            f"cannot import {module_name!r} for model {spec!r}: {first_line(exc)}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{module_name!r} has no callable {attribute!r} (model {spec!r})")
    return module, factory


def build_model(spec: str, kwargs_json: str = "{}") -> tuple[Any, Any]:
    """(module, freshly built torch module) for ``spec`` called with ``kwargs_json``."""
    from torch import nn

    try:
        kwargs = json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--factory-kwargs {kwargs_json!r} is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--factory-kwargs must be a JSON object, got {kwargs_json!r}")
    module, factory = load_factory(spec)
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise ValueError(
            f"{spec}(**{kwargs}) raised {first_line(exc)}; pass its arguments with "
            "--factory-kwargs JSON"
        ) from None
    if not isinstance(model, nn.Module):
        raise ValueError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return module, model


def example_input(args: argparse.Namespace, module: Any, seed: int = 0) -> Any:
    """The module's ``example_inputs()``, else a seeded tensor from the flags."""
    import torch

    provided = getattr(module, "example_inputs", None)
    if callable(provided) and not args.input_shape:
        return provided()
    if not args.input_shape:
        raise ValueError(
            "a user model needs --input-shape (e.g. --input-shape 1,3,32,32) or an "
            "example_inputs() in its module"
        )
    shape = parse_shape(args.input_shape)
    generator = torch.Generator().manual_seed(seed)
    if args.input_dtype not in ("float", "long"):
        raise ValueError(f"--input-dtype must be float or long, got {args.input_dtype!r}")
    if args.input_dtype == "long" and not args.vocab:
        raise ValueError("--input-dtype long needs --vocab N (token ids are drawn below N)")
    try:
        if args.input_dtype == "long":
            return torch.randint(0, args.vocab, shape, generator=generator)
        return torch.randn(shape, generator=generator)
    except (RuntimeError, TypeError, OverflowError) as exc:  # too large to allocate
        raise ValueError(
            f"cannot make an input of --input-shape {args.input_shape!r}: {first_line(exc)}"
        ) from None


def trace_model(spec: str, args: argparse.Namespace, seed: int = 0, fallback: str = "eager"):
    """The CompGraph of the model ``spec`` builds, on its example input, eval mode unless
    ``--train``."""
    from cbred.cgraph import trace

    module, model = build_model(spec, args.factory_kwargs)
    x = example_input(args, module, seed)
    model.train(bool(args.train))
    try:
        return trace(model, x, fallback=fallback)
    except Exception as exc:  # the user's forward may fail in any way on this input
        raise ValueError(f"cannot trace {spec}: {first_line(exc)}") from None
