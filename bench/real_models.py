"""cbred on real model code: torchvision, timm and transformers, random init, no weights.

    python -m cbred.bench.real_models [--only NAME ...] [--batch 8] [--out rows.csv]

Issue #17's study, run as a new user would: 39 architectures built from the libraries'
own code (configurations only, nothing downloaded), each traced (eval mode, fx with the
recorded fallback) and scored with NASWOT on a random batch.  Per model it prints the
path that traced it, kernels, whether the graph's parameter count is the model's,
2 × graph MACs over ``torch.utils.flop_counter``'s FLOPs, NASWOT and the activations it
read.  Then the checks the issue sets:

* NASWOT finite on at least 38 of the 39;
* the same architecture from two libraries is close after :func:`cgraph.drop_noops`:
  Hellinger between torchvision's and timm's EfficientNet-B0 ≤ 0.05 (ResNet-50 and
  ViT-B/16 pairs printed beside it);
* swin_t: kernel counts of the fx trace and of the eager recording equal, and FLOPs within
  1% of ``flop_counter`` (counted with gradients on and the math attention backend, which
  the counter needs on a CPU to see the attention products).

torchvision does not import beside this project's CPU torch 2.13.0 on these machines, so
the study runs in a separate environment, never a test dependency::

    python -m venv /tmp/bvenv && /tmp/bvenv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/bvenv/bin/pip install timm transformers && /tmp/bvenv/bin/pip install -e .
    /tmp/bvenv/bin/python -m cbred.bench.real_models

Without those libraries it says which is missing, in one line, and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cbred import proxies
from cbred.cgraph import TraceFallbackWarning, drop_noops, trace
from cbred.cgraph.distance import pairwise
from cbred.cgraph.graph import CompGraph
from cbred.cgraph.trace import _EagerRecorder, _run_preserving
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LIBRARIES = ("torchvision", "timm", "transformers")
TARGETS = {"naswot_finite": 38, "efficientnet_hellinger": 0.05, "swin_flops": 0.01}


@dataclass(frozen=True)
class Entry:
    """One architecture: its library, how to build it, and the input it takes."""

    library: str
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[int], tuple[torch.Tensor, ...]]


def _image(size: int = 224) -> Callable[[int], tuple[torch.Tensor, ...]]:
    return lambda n: (torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0)),)


def _tokens(vocab: int, length: int = 16) -> Callable[[int], tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(0)
    return lambda n: (torch.randint(0, vocab, (n, length), generator=gen),)


class FirstOutput(nn.Module):
    """A transformers model as a user wraps it for a tool: tensors in, the first output
    (logits or last hidden state) out; encoder-decoders decode their own input."""

    def __init__(self, model: nn.Module, decoder: str | None = None) -> None:
        super().__init__()
        self.model, self.decoder = model, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kwargs = {"return_dict": False}
        if self.decoder is not None:
            kwargs["decoder_input_ids"] = x.new_zeros((x.shape[0], 4), dtype=torch.long)
        return self.model(x, **kwargs)[0]


def _torchvision(name: str, size: int = 224, **kwargs) -> Entry:
    def build() -> nn.Module:
        return getattr(importlib.import_module("torchvision.models"), name)(weights=None, **kwargs)

    return Entry("torchvision", name, build, _image(size))


def _timm(name: str, size: int = 224) -> Entry:
    def build() -> nn.Module:
        return importlib.import_module("timm").create_model(name, pretrained=False)

    return Entry("timm", name, build, _image(size))


def _hf(name: str, config: str, model: str, inputs, decoder: bool = False, **cfg) -> Entry:
    def build() -> nn.Module:
        lib = importlib.import_module("transformers")
        built = getattr(lib, model)(getattr(lib, config)(**cfg))
        return FirstOutput(built, "decoder" if decoder else None)

    return Entry("transformers", name, build, inputs)


SMALL_LM = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4}
ENTRIES: tuple[Entry, ...] = (
    *(
        _torchvision(n)
        for n in (
            "resnet18",
            "resnet50",
            "resnext50_32x4d",
            "wide_resnet50_2",
            "vgg11_bn",
            "alexnet",
            "densenet121",
            "mobilenet_v2",
            "mobilenet_v3_small",
            "mobilenet_v3_large",
            "efficientnet_b0",
            "efficientnet_v2_s",
            "regnet_y_400mf",
            "mnasnet1_0",
            "shufflenet_v2_x1_0",
            "squeezenet1_0",
            "convnext_tiny",
            "swin_t",
            "vit_b_16",
            "maxvit_t",
        )
    ),
    _torchvision("googlenet", aux_logits=False, init_weights=True),
    _torchvision("inception_v3", 299, aux_logits=False, init_weights=True),
    *(
        _timm(n)
        for n in (
            "efficientnet_b0",
            "resnet50",
            "vit_base_patch16_224",
            "deit_tiny_patch16_224",
            "convnext_atto",
            "mobilevit_xxs",
            "levit_128s",
            "regnetx_002",
            "ghostnet_100",
            "rexnet_100",
            "lcnet_050",
        )
    ),
    _hf(
        "gpt2",
        "GPT2Config",
        "GPT2LMHeadModel",
        _tokens(100),
        n_layer=2,
        n_embd=64,
        n_head=4,
        vocab_size=100,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    ),
    _hf(
        "bert",
        "BertConfig",
        "BertModel",
        _tokens(100),
        vocab_size=100,
        intermediate_size=128,
        **SMALL_LM,
    ),
    _hf(
        "llama",
        "LlamaConfig",
        "LlamaForCausalLM",
        _tokens(100),
        vocab_size=100,
        intermediate_size=128,
        **SMALL_LM,
    ),
    _hf(
        "t5",
        "T5Config",
        "T5ForConditionalGeneration",
        _tokens(100),
        decoder=True,
        vocab_size=100,
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_heads=4,
    ),
    _hf(
        "whisper",
        "WhisperConfig",
        "WhisperForConditionalGeneration",
        lambda n: (torch.randn(n, 16, 40, generator=torch.Generator().manual_seed(0)),),
        decoder=True,
        vocab_size=100,
        num_mel_bins=16,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=20,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    ),
    _hf(
        "vit_hf",
        "ViTConfig",
        "ViTModel",
        _image(32),
        image_size=32,
        patch_size=8,
        intermediate_size=128,
        **SMALL_LM,
    ),
)
PAIRS = (
    ("efficientnet_b0", "torchvision", "efficientnet_b0", "timm"),
    ("resnet50", "torchvision", "resnet50", "timm"),
    ("vit_b_16", "torchvision", "vit_base_patch16_224", "timm"),
)


def missing_library() -> str | None:
    """The first of :data:`LIBRARIES` that does not import, or ``None``."""
    for name in LIBRARIES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # torchvision beside a mismatched torch raises RuntimeError
            return f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return None


def counted_flops(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """FLOPs by ``torch.utils.flop_counter`` with gradients on and math attention."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as c:
        model(*inputs)
    return c.get_total_flops()


def traced(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[CompGraph, str, str]:
    """The model's graph, the path that traced it (``fx`` or ``eager``) and, for ``eager``,
    the line the fallback warning names."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TraceFallbackWarning)
        graph = trace(model, inputs)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, TraceFallbackWarning)]
    if not fallbacks:
        return graph, "fx", ""
    named = re.search(r"(?:\(at|forward at) (\S+?):(\d+)", fallbacks[0])
    return graph, "eager", f"{Path(named[1]).name}:{named[2]}" if named else "no line named"


def study(entry: Entry, batch: int) -> tuple[dict, CompGraph]:
    """One row of the table and the traced graph."""
    torch.manual_seed(0)
    model = entry.build().eval()
    inputs = entry.inputs(batch)
    start = time.perf_counter()
    graph, path, line = traced(model, inputs)
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        flops = counted_flops(model, inputs)
    labels = torch.arange(batch) % 10
    result = proxies.score(model, (inputs[0], labels), ["naswot"], seed=0)
    sites = result.code_sites.get("naswot", {})
    row = {
        "library": entry.library,
        "model": entry.name,
        "path": path,
        "fallback_line": line,
        "kernels": graph.num_kernels,
        "other": graph.kernel_ops.count("other"),
        "params_equal": graph.summary().params == params,
        "flops_ratio": 2 * graph.summary().flops / flops if flops else math.nan,
        "naswot": result["naswot"],
        "read": ", ".join(f"{k}×{v}" for k, v in sites.items()) or result.errors.get("naswot"),
        "seconds": time.perf_counter() - start,
    }
    return row, graph


def swin_check() -> dict:
    """swin_t: fx and eager kernel counts, FLOPs over ``flop_counter``'s."""
    model = importlib.import_module("torchvision.models").swin_t(weights=None).eval()
    x = _image()(1)
    fx_graph = trace(model, x, fallback="error")
    eager = _run_preserving(model, lambda: _EagerRecorder(model).run(x)).build()
    flops = counted_flops(model, x)
    return {
        "fx_kernels": fx_graph.num_kernels,
        "eager_kernels": eager.num_kernels,
        "fx_flops_ratio": 2 * fx_graph.summary().flops / flops,
        "eager_flops_ratio": 2 * eager.summary().flops / flops,
    }


def hellinger(a: CompGraph, b: CompGraph) -> float:
    return float(pairwise([a, b], "hellinger", dtype=np.float64)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="models to study (default all)")
    parser.add_argument("--batch", type=int, default=8, help="NASWOT batch size")
    parser.add_argument("--out", help="also write the rows as CSV")
    args = parser.parse_args(argv)
    missing = missing_library()
    if missing is not None:
        print(f"real_models: needs torchvision, timm and transformers; {missing} does not "
              "import (see this module's docstring for the benchmark environment)")  # fmt: skip
        return 2
    import pandas as pd

    print(f"torch {torch.__version__}; " + ", ".join(
        f"{n} {importlib.import_module(n).__version__}" for n in LIBRARIES))  # fmt: skip
    entries = [e for e in ENTRIES if not args.only or e.name in args.only]
    rows, graphs = [], {}
    for entry in entries:
        try:
            row, graph = study(entry, args.batch)
        except Exception as exc:  # a study, not a test: record the failure and go on
            print(f"{entry.library:>12} {entry.name:<24} FAILED {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:160]}", flush=True)  # fmt: skip
            rows.append({"library": entry.library, "model": entry.name, "path": "failed",
                         "naswot": math.nan, "params_equal": False,
                         "flops_ratio": math.nan})  # fmt: skip
            continue
        rows.append(row)
        graphs[entry.name, entry.library] = graph
        at = f" [{row['fallback_line']}]" if row["fallback_line"] else ""
        print(f"{row['library']:>12} {row['model']:<24} {row['path']:<5}{at} {row['kernels']:5d}k "
              f"params {'=' if row['params_equal'] else '≠'} flops×{row['flops_ratio']:.3f} "
              f"naswot {row['naswot']:10.2f}  {row['read']}  ({row['seconds']:.1f} s)",
              flush=True)  # fmt: skip
    frame = pd.DataFrame(rows)
    if args.out:
        from cbred._files import atomic_output

        with atomic_output(args.out) as tmp:
            frame.to_csv(tmp, index=False)
    finite = int(np.isfinite(frame["naswot"]).sum())
    print(f"NASWOT finite on {finite} of {len(frame)} (target ≥ {TARGETS['naswot_finite']} of 39)")
    eager = frame["path"] == "eager"
    named = int((eager & (frame["fallback_line"] != "no line named")).sum())
    print(f"traced by fx {int((frame['path'] == 'fx').sum())}, recorded eagerly "
          f"{int(eager.sum())} (the warning names a line for {named}); parameter count equal on "
          f"{int(frame['params_equal'].sum())}; 2×MACs within 1% of flop_counter on "
          f"{int((abs(frame['flops_ratio'] - 1) <= 0.01).sum())}")  # fmt: skip
    for a, lib_a, b, lib_b in PAIRS:
        if (a, lib_a) in graphs and (b, lib_b) in graphs:
            ga, gb = graphs[a, lib_a], graphs[b, lib_b]
            raw, clean = hellinger(ga, gb), hellinger(drop_noops(ga), drop_noops(gb))
            print(f"Hellinger {lib_a} {a} vs {lib_b} {b}: {raw:.3f} as traced, "
                  f"{clean:.3f} after drop_noops")  # fmt: skip
    if not args.only or "swin_t" in args.only:
        swin = swin_check()
        print(f"swin_t kernels fx {swin['fx_kernels']} / eager {swin['eager_kernels']}; "
              f"2×MACs / flop_counter fx {swin['fx_flops_ratio']:.4f}, "
              f"eager {swin['eager_flops_ratio']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    from cbred.bench.cli import module_main

    raise SystemExit(module_main(main, "cbred.bench.real_models"))
