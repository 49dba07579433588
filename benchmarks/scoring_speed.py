"""How fast lead text becomes vectors: naive loop vs the real encoder path, cold and warm cache.

    .venv/bin/python benchmarks/scoring_speed.py --n 2000 --json OUT.json

Measures, on the same generated lead texts (short form messages to long notes, ~10% Chinese,
all distinct so no cache or de-duplication helps the cold run):

(a) naive: one lead at a time, tokenizer + model + pooling per lead;
(b) cold: ``TextEncoder.encode`` with an empty cache file (hashing, lookups, tokenising,
    length-sorted batches, pooling, cache writes: everything the daemon pays);
(c) warm: the same texts again, from the memory layer and from the file after a "restart";
(d) raw: the model's batched forward + pooling alone on pre-tokenised, pre-padded,
    length-sorted batches of ``batch_size``: the ceiling (b) is compared with. Also the raw
    forward on the encoder's own batch plan (batches also split where padding would waste
    >15%), and on batches in input order (a subset), to show what sorting buys.

``--onnx`` adds, in the same run and interleaved with the PyTorch timings, the encoder with
``backend="onnx"`` (ONNX Runtime, same fp32 weights): its raw forward on the same sorted
batches, its cold path, and the lowest cosine between its vectors and PyTorch's.

``--static`` (on by default; ``--no-static`` skips it) adds the static backend
(``scoring.encoder_static``: token vectors distilled once from the same encoder with model2vec,
kept in ``--static-cache``): its cold path on the same texts in the same rounds, and the time its
distillation took if this run had to distil it.

Timings are wall clock on a shared machine, measured in interleaved rounds: ``--repeats``
takes the best of several rounds for each measurement (and CPU-time rates are given beside).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._out import write_json  # noqa: E402
from scoring.encoder import TextEncoder, mean_pool, plan_batches  # noqa: E402
from scoring.encoder_cache import EmbeddingCache  # noqa: E402
from scoring.encoder_static import StaticEncoder  # noqa: E402

_OPENERS = [
    "Hi, ",
    "Hello team, ",
    "",
    "Following up on the webinar: ",
    "Re: pricing request. ",
    "Note from call: ",
]
_SENTENCES = [
    "we are looking for a CRM that our {n} sales reps can use from day one",
    "please send pricing for the enterprise plan",
    "our budget for this is approved for next quarter",
    "I am a student researching tools for a class project",
    "can someone call me back tomorrow morning",
    "we currently use spreadsheets and it does not scale anymore",
    "the decision maker is our VP of operations, she wants a demo",
    "just browsing, not ready to buy",
    "we need SSO, audit logs and an SLA before procurement signs off",
    "interested in the online course on data science, what are the fees",
    "our contract with the current vendor ends in {n} days",
    "the team in Munich asked for a German-speaking contact",
    "is there a discount for non-profits",
    "customer mentioned a competitor quote of {n}k EUR and wants a better offer",
    "left a voicemail, no answer yet, will try again on Friday",
    "they integrate with SAP and need an API for order data",
]
_CHINESE = [
    "您好，我们公司有{n}名销售，想了解企业版价格。",
    "预算已经批准，希望下周安排产品演示。",
    "我是学生，只是随便看看。",
    "请尽快回电，我们需要在本季度内完成采购。",
    "客户提到竞争对手报价{n}万元，希望我们给出更优惠的方案。",
    "需要支持单点登录和数据导出功能。",
]


def lead_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct lead texts: 45% short form messages, 30% medium, 15% long notes, 10% Chinese."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.10:
            k = int(rng.integers(1, 4)) if rng.random() < 0.7 else int(rng.integers(8, 30))
            body = "".join(rng.choice(_CHINESE, size=k)).replace("{n}", str(rng.integers(2, 500)))
        else:
            k = 1 if kind < 0.55 else int(rng.integers(2, 6)) if kind < 0.85 else int(rng.integers(10, 45))
            picked = [
                str(s).replace("{n}", str(rng.integers(2, 500))) for s in rng.choice(_SENTENCES, size=k)
            ]
            body = str(rng.choice(_OPENERS)) + ". ".join(s.capitalize() for s in picked) + "."
        out.append(f"{body} (ref {i})")  # distinct texts: the cold run must encode every one
    return out


class Clock:
    """Best (lowest) wall-clock and process-CPU seconds per measurement, over its repeats.

    CPU seconds are this process's own (all its threads): on a machine shared with other jobs
    they barely move with the load, while wall time moves with whatever else runs, so ratios
    between measurements are also given on CPU time.
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def time(self, key: str, fn: Callable[[], object], repeats: int = 1) -> object:
        out = None
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            out = fn()
            self.wall[key] = min(self.wall.get(key, float("inf")), time.perf_counter() - wall)
            self.cpu[key] = min(self.cpu.get(key, float("inf")), time.process_time() - cpu)
        return out


def naive_loop(enc: TextEncoder, texts: list[str]) -> np.ndarray:
    """(a) what a first implementation does: one text at a time through tokenizer and model."""
    tok, model = enc._tokenizer, enc._model
    rows = []
    with torch.inference_mode():
        for text in texts:
            inputs = tok(text, truncation=True, max_length=enc.max_length, return_tensors="pt").to(enc.device)
            hidden = model(**inputs).last_hidden_state
            pooled = mean_pool(hidden, inputs["attention_mask"])
            rows.append(torch.nn.functional.normalize(pooled, dim=1)[0].cpu().numpy())
    return np.stack(rows)


def raw_batches(enc: TextEncoder, texts: list[str], *, plan: str) -> list[dict[str, torch.Tensor]]:
    """Pre-tokenised, pre-padded batches for the raw forward.

    ``plan``: "sorted" (length-sorted, ``batch_size`` each: the classic batched encoder),
    "encoder" (the encoder's own plan, see ``plan_batches``) or "input" (input order).
    """
    ids = enc._tokenizer(texts, truncation=True, max_length=enc.max_length)["input_ids"]
    lengths = [len(x) for x in ids]
    if plan == "encoder":
        groups = plan_batches(lengths, enc.batch_size)
    else:
        order = (
            sorted(range(len(ids)), key=lambda i: -lengths[i]) if plan == "sorted" else list(range(len(ids)))
        )
        groups = [order[s : s + enc.batch_size] for s in range(0, len(order), enc.batch_size)]
    batches = []
    for group in groups:
        padded = enc._tokenizer.pad({"input_ids": [ids[i] for i in group]}, padding=True, return_tensors="pt")
        batches.append({k: v.to(enc.device) for k, v in padded.items()})
    return batches


def raw_forward(enc: TextEncoder, batches: list[dict[str, torch.Tensor]]) -> None:
    """(d) model forward + pooling + normalisation only (through the encoder's backend)."""
    with torch.inference_mode():
        for inputs in batches:
            if enc._onnx is not None:
                hidden = enc._onnx(inputs["input_ids"], inputs["attention_mask"])
            else:
                hidden = enc._model(
                    **inputs, token_type_ids=torch.zeros_like(inputs["input_ids"])
                ).last_hidden_state
            torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=1).cpu()


def run(n: int, naive_n: int, repeats: int, model: str, onnx: bool = False,
        static_cache: Path | None = None) -> dict[str, object]:
    """All measurements as one JSON-ready dict; ``static_cache``: also the static backend."""
    texts = lead_texts(n)
    enc = TextEncoder(model)
    static = None
    distill_s = None
    if static_cache is not None:
        started = time.perf_counter()
        static = StaticEncoder(model, cache_dir=static_cache, source=enc)
        distill_s = round(time.perf_counter() - started, 1) if static.rebuilt else None
        static.encode(texts[:8])
    scratch = tempfile.TemporaryDirectory()  # the ONNX export of this run
    ort = TextEncoder(model, backend="onnx", onnx_dir=scratch.name) if onnx else None
    token_lengths = [len(x) for x in enc._tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    naive_texts = texts[:naive_n]
    enc.encode(texts[:8])  # warm up kernels / allocator outside every timing
    if ort is not None:
        ort.encode(texts[:8])

    clock = Clock()
    sorted_batches = raw_batches(enc, texts, plan="sorted")
    planned_batches = raw_batches(enc, texts, plan="encoder")
    # Unsorted batches only illustrate what sorting buys; a subset keeps the run short.
    unsorted_texts = texts[: min(n, 512)]
    clock.time("raw_forward_unsorted_first512",
               lambda: raw_forward(enc, raw_batches(enc, unsorted_texts, plan="input")))

    with tempfile.TemporaryDirectory() as tmp:
        ort_vectors = None
        # (a), (b), (d) and ONNX interleaved in rounds: each sees the same machine load
        for r in range(repeats):
            clock.time("naive", lambda: naive_loop(enc, naive_texts))
            if ort is not None:
                clock.time("onnx_raw_forward", lambda: raw_forward(ort, sorted_batches))
                ort_cold = ort.with_options(cache=EmbeddingCache(Path(tmp) / f"ort{r}.sqlite"))
                ort_vectors = clock.time("onnx_cold", partial(ort_cold.encode, texts))
            if static is not None:
                static_cold = static.with_options(cache=EmbeddingCache(Path(tmp) / f"static{r}.sqlite"))
                clock.time("static_cold", partial(static_cold.encode, texts))
                assert static_cold.texts_encoded == n, "the static cold run must encode every text"
            clock.time("raw_forward", lambda: raw_forward(enc, sorted_batches))
            clock.time("raw_forward_encoder_plan", lambda: raw_forward(enc, planned_batches))
            cold = enc.with_options(cache=EmbeddingCache(Path(tmp) / f"cold{r}.sqlite"))  # empty file
            vectors = np.asarray(clock.time("cold", partial(cold.encode, texts)))
        assert cold.texts_encoded == n, "the cold run must encode every text"
        clock.time("warm_memory", lambda: cold.encode(texts), max(repeats, 3))

        def from_disk() -> np.ndarray:
            restarted = enc.with_options(cache=EmbeddingCache(Path(tmp) / f"cold{repeats - 1}.sqlite"))
            out = restarted.encode(texts)
            assert restarted.texts_encoded == 0
            return out

        clock.time("warm_disk", from_disk, max(repeats, 3))
    naive_vectors = naive_loop(enc, naive_texts[:50])
    agreement = float(np.min(np.sum(naive_vectors * vectors[: len(naive_vectors)], axis=1)))

    count = {k: (naive_n if k == "naive" else len(unsorted_texts) if k.endswith("first512") else n) for k in clock.wall}
    rate = {k: count[k] / clock.wall[k] for k in clock.wall}
    cpu_rate = {k: count[k] / max(clock.cpu[k], 1e-9) for k in clock.cpu}
    scratch.cleanup()
    extra: dict[str, object] = {}
    if static is not None:
        extra["static"] = {
            "model_id": static.model_id,
            "dim": static.dim,
            "distill_seconds_this_run": distill_s,  # null: distilled before, read from --static-cache
            "cold_leads_per_s": round(rate["static_cold"], 1),
            "transformer_cold_leads_per_s": round(rate["cold"], 1),
            "static_cold_vs_transformer_cold": _ratios(rate, cpu_rate, "static_cold", "cold"),
        }
    if ort is not None and ort_vectors is not None:
        extra |= {  # next to the static backend's figures, not instead of them
            "onnx_cold_vs_torch_cold": _ratios(rate, cpu_rate, "onnx_cold", "cold"),
            "onnx_raw_vs_torch_raw": _ratios(rate, cpu_rate, "onnx_raw_forward", "raw_forward"),
            "min_cosine_onnx_vs_torch": round(float(np.min(np.sum(np.asarray(ort_vectors) * vectors, axis=1))), 6),
        }
    return {
        "n": n,
        "naive_n": naive_n,
        "repeats": repeats,
        "model_id": enc.model_id,
        "max_length": enc.max_length,
        "batch_size": enc.batch_size,
        "device": str(enc.device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "texts": {
            "mean_chars": float(np.mean([len(t) for t in texts])),
            "mean_tokens_untruncated": float(np.mean(token_lengths)),
            "share_over_max_length": float(np.mean([x > enc.max_length for x in token_lengths])),
            "share_chinese": float(np.mean([any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts])),
        },
        "leads_per_s": {k: round(v, 1) for k, v in rate.items()},
        "leads_per_cpu_s": {k: round(v, 1) for k, v in cpu_rate.items()},
        "cold_vs_naive": _ratios(rate, cpu_rate, "cold", "naive"),
        "cold_vs_raw_forward": _ratios(rate, cpu_rate, "cold", "raw_forward"),
        "cold_vs_raw_forward_encoder_plan": _ratios(rate, cpu_rate, "cold", "raw_forward_encoder_plan"),
        "min_cosine_naive_vs_cold_first50": round(agreement, 6),
        **extra,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goals": {
            "cold_ge_1.5x_naive": rate["cold"] >= 1.5 * rate["naive"],
            "cold_ge_90pct_raw": rate["cold"] >= 0.9 * rate["raw_forward"],
            "warm_ge_5000_per_s": min(rate["warm_memory"], rate["warm_disk"]) >= 5000,
            "on_cpu_time": {
                "cold_ge_1.5x_naive": cpu_rate["cold"] >= 1.5 * cpu_rate["naive"],
                "cold_ge_90pct_raw": cpu_rate["cold"] >= 0.9 * cpu_rate["raw_forward"],
            },
        },
    }


def _ratios(rate: dict[str, float], cpu_rate: dict[str, float], a: str, b: str) -> dict[str, float]:
    """``a`` over ``b`` on wall-clock and on CPU-time rates."""
    return {"wall": round(rate[a] / rate[b], 3), "cpu": round(cpu_rate[a] / cpu_rate[b], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="number of lead texts")
    parser.add_argument(
        "--naive-n", type=int, default=None, help="texts for the slow naive loop (default: n)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per measurement")
    parser.add_argument("--model", default="", help="encoder model (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--onnx", action="store_true", help="also measure backend='onnx' (needs onnxruntime)")
    parser.add_argument("--static", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the static backend (default: on)")
    parser.add_argument("--static-cache", type=Path, default=Path("state/static-encoder"),
                        help="folder of the distilled static model (distilled there once if missing)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    result = run(args.n, min(args.naive_n or args.n, args.n), args.repeats, args.model, args.onnx,
                 args.static_cache if args.static else None)
    print(write_json(result, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
