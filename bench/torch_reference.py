#!/usr/bin/env python3
"""PyTorch anchor for the uhop benchmark workloads T1-T4 and R1 (bench/SPEC in ../shared/bench).

An independent eager PyTorch implementation of the same maths as uhop's layers, timed the
same way as bench/run.ts: one training step = forward + backward + Adam update (lr 1e-3);
the median of --steps steps after --warmup warm-up steps. Inputs are seeded random normals.

    /usr/bin/python3 bench/torch_reference.py --threads 1 --json out.json
    /usr/bin/python3 bench/torch_reference.py --workload T2 --steps 5

U-Hop (T2, T4, R1): Phi is a linear map (head_dim x head_dim) per memory set (per sample and
per head), initialised from the trainable Phi0 and fitted by plain gradient steps on the
U-Hop+ lse separation loss of the projected keys (detached), batched over [B, heads] with one
torch.autograd.grad call per step. The fitted Phi passes its task gradient straight through
to Phi0 (first-order U-Hop): Phi = Phi0 + (Phi_fit - Phi0).detach().
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time


def _threads_from_argv(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


# torch.set_num_threads does not reach the BLAS of a Debian build (BLAS_INFO=generic, e.g.
# OpenBLAS through libblas.so.3 alternatives), which starts its own thread pool at load time:
# fix the BLAS/OpenMP pools before torch is imported, so that --threads 1 means one thread.
_THREADS = _threads_from_argv(sys.argv)
if _THREADS is not None:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _THREADS)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ----------------------------------------------------------------------------- the maths


def lse_separation_loss(features: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """U-Hop+ separation loss per memory set.

    features [..., S, D] -> [...]:  log( mean_{i<j} exp(<u_i, u_j>/tau) ) / S,
    u_i = features_i / ||features_i||.
    """
    S = features.shape[-2]
    u = F.normalize(features, dim=-1, eps=1e-12)
    gram = u @ u.transpose(-1, -2) / tau
    upper = torch.triu(torch.ones(S, S, dtype=torch.bool, device=features.device), diagonal=1)
    pairs = gram.masked_fill(~upper, float("-inf"))
    lse = torch.logsumexp(pairs.flatten(-2), dim=-1)
    return (lse - math.log(S * (S - 1) / 2)) / S


def lse_separation_grad(features: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Analytic gradient of lse_separation_loss w.r.t. the unnormalized features [..., S, D]."""
    S = features.shape[-2]
    n = features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    u = features / n
    upper = torch.triu(torch.ones(S, S, dtype=torch.bool, device=features.device), diagonal=1)
    gram = (u @ u.transpose(-1, -2) / tau).masked_fill(~upper, float("-inf"))
    P = torch.softmax(gram.flatten(-2), dim=-1).view_as(gram)  # weight of each pair i < j
    A = (P + P.transpose(-1, -2)) / (S * tau)
    du = A @ u
    return (du - u * (u * du).sum(-1, keepdim=True)) / n


FIT_GRAD = "analytic"  # set by --fit-grad


def fit_linear_phi(keys: torch.Tensor, phi0: torch.Tensor, steps: int, lr: float, tau: float = 0.1,
                   grad: str | None = None) -> torch.Tensor:
    """Stage I, batched over the leading dims of keys [..., S, d]: `steps` plain gradient steps
    from phi0 ([D, d], or [..., D, d] broadcastable to the sets, e.g. one per head) on each
    set's own lse loss. Returns the fitted W [..., D, d], detached.

    grad='analytic' (default, about 2x faster here) uses lse_separation_grad; grad='autograd'
    asks torch.autograd.grad. Both give the same W (bench checks it with --check)."""
    grad = grad or FIT_GRAD
    keys = keys.detach()
    W = phi0.detach().expand(*keys.shape[:-2], *phi0.shape[-2:]).contiguous()
    if grad == "analytic":
        with torch.no_grad():
            for _ in range(steps):
                dF = lse_separation_grad(keys @ W.transpose(-1, -2), tau)
                W = W - lr * (dF.transpose(-1, -2) @ keys)
        return W
    with torch.enable_grad():
        for _ in range(steps):
            W.requires_grad_(True)
            loss = lse_separation_loss(keys @ W.transpose(-1, -2), tau)
            # The sets are independent, so the gradient of the sum is each set's own gradient.
            (g,) = torch.autograd.grad(loss.sum(), W)
            W = (W - lr * g).detach()
    return W


def fit_linear_phi_span(keys: torch.Tensor, phi0: torch.Tensor, steps: int, lr: float, tau: float = 0.1) -> torch.Tensor:
    """The same iterates as fit_linear_phi (analytic), computed in the span of the memories.

    Every gradient dL/dW = dF^T K lies in the row space of K [S, d], so W_t = W_0 + A_t K with
    A_t [D, S], and F_t = K W_t^T = K W_0^T + (K K^T) A_t^T: per step O(S^2 D) instead of
    O(S d D). Exact (up to rounding); cheaper when S < d, as in R1 (S=100, d=784)."""
    F0 = keys @ phi0.transpose(-1, -2)
    gram = keys @ keys.transpose(-1, -2)
    A = torch.zeros(*keys.shape[:-2], phi0.shape[-2], keys.shape[-2])
    for _ in range(steps):
        dF = lse_separation_grad(F0 + gram @ A.transpose(-1, -2), tau)
        A = A - lr * dF.transpose(-1, -2)
    return phi0 + A @ keys


def straight_through(phi0: torch.Tensor, fitted: torch.Tensor) -> torch.Tensor:
    """Forward value = fitted; gradient w.r.t. phi0 = sum over the fitted copies' gradients."""
    return phi0 + (fitted - phi0).detach()


class Hopfield(nn.Module):
    """Hopfield association (one update step) with Q/K/V projections and an output projection.
    With `uhop`, scores are beta * Phi(Q) Phi(K)^T with Phi pre-fitted per (sample, head)."""

    def __init__(self, d_query: int, d_model: int, heads: int, head_dim: int, d_out: int,
                 uhop: bool, fit_steps: int = 5, fit_lr: float = 0.1, tau: float = 0.1):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.beta = 1.0 / math.sqrt(head_dim)
        self.q = nn.Linear(d_query, heads * head_dim)
        self.k = nn.Linear(d_model, heads * head_dim)
        self.v = nn.Linear(d_model, heads * head_dim)
        self.o = nn.Linear(heads * head_dim, d_out)
        self.uhop, self.fit_steps, self.fit_lr, self.tau = uhop, fit_steps, fit_lr, tau
        if uhop:
            # Phi0 per head [h, hd, hd], starting at the identity (as uhop's 'isometry' init).
            self.phi0 = nn.Parameter(torch.eye(head_dim).repeat(heads, 1, 1))

    def split(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, h*hd] -> [B, h, L, hd]
        B, L, _ = x.shape
        return x.view(B, L, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.q(query)), self.split(self.k(memory)), self.split(self.v(memory))
        if self.uhop:
            fitted = fit_linear_phi(k, self.phi0, self.fit_steps, self.fit_lr, self.tau)  # [B, h, hd, hd]
            W = straight_through(self.phi0, fitted)
            q, k = q @ W.transpose(-1, -2), k @ W.transpose(-1, -2)
        attn = torch.softmax(self.beta * (q @ k.transpose(-1, -2)), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        return self.o(out)


class SelfModel(nn.Module):
    """T1/T2: Hopfield self-association, MSE to a target."""

    def __init__(self, d_model: int, heads: int, head_dim: int, uhop: bool):
        super().__init__()
        self.hopfield = Hopfield(d_model, d_model, heads, head_dim, d_model, uhop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hopfield(x, x)


class MilModel(nn.Module):
    """T3/T4: Dense(230->128, relu) -> HopfieldPooling(1 learned query) -> Dense(128->1)."""

    def __init__(self, features: int, hidden: int, heads: int, head_dim: int, uhop: bool):
        super().__init__()
        self.embed = nn.Linear(features, hidden)
        # The learned state pattern (query) lives in the embedding space, as in HopfieldPooling.
        self.query = nn.Parameter(torch.randn(1, 1, hidden) / math.sqrt(hidden))
        self.pool = Hopfield(hidden, hidden, heads, head_dim, hidden, uhop)
        self.head = nn.Linear(hidden, 1)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(bags))
        pooled = self.pool(self.query.expand(bags.shape[0], -1, -1), h)  # [B, 1, hidden]
        return self.head(pooled[:, 0, :]).squeeze(-1)


# ----------------------------------------------------------------------------- workloads


def make_train_step(kind: str, gen: torch.Generator):
    if kind in ("T1", "T2"):
        B, S, d, heads, hd = 32, 128, 128, 4, 32
        model = SelfModel(d, heads, hd, uhop=kind == "T2")
        x = torch.randn(B, S, d, generator=gen)
        target = torch.randn(B, S, d, generator=gen)
        loss_fn = lambda: F.mse_loss(model(x), target)
    else:
        B, S, feats, hidden, heads, hd = 16, 64, 230, 128, 4, 32
        model = MilModel(feats, hidden, heads, hd, uhop=kind == "T4")
        x = torch.randn(B, S, feats, generator=gen)
        labels = (torch.rand(B, generator=gen) > 0.5).float()
        loss_fn = lambda: F.binary_cross_entropy_with_logits(model(x), labels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    def forward() -> float:
        return loss_fn().item()

    def forward_backward() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss.item()

    phases = {"forward": forward, "forward_backward": forward_backward}
    uhop = kind in ("T2", "T4")
    if uhop:
        layer = model.hopfield if kind == "T2" else model.pool
        with torch.no_grad():
            mem = x if kind == "T2" else torch.relu(model.embed(x))
            keys = layer.split(layer.k(mem))

        def fit() -> float:
            return float(fit_linear_phi(keys, layer.phi0, layer.fit_steps, layer.fit_lr, layer.tau)[0, 0, 0, 0])

        phases["fit"] = fit
    step.phases = phases  # type: ignore[attr-defined]
    return step


def make_r1(gen: torch.Generator, fit: str = "dense"):
    M, d, beta, fit_steps, fit_lr = 100, 784, 1.0, 100, 0.1
    memories = torch.rand(M, d, generator=gen)
    keep = (torch.rand(M, d, generator=gen) >= 0.5).float()
    queries = memories * keep  # half of the entries zeroed, the rest unchanged
    phi0 = torch.eye(d)

    def run() -> float:
        with torch.no_grad():
            fitter = fit_linear_phi_span if fit == "span" else fit_linear_phi
            W = fitter(memories, phi0, fit_steps, fit_lr)  # Stage I
            scores = beta * (queries @ W.T) @ (memories @ W.T).T  # Stage II
            states = torch.softmax(scores, dim=-1) @ memories
        return float(((states - memories) ** 2).sum(-1).mean())

    return run


WORKLOADS = ("T1", "T2", "T3", "T4", "R1")


def time_it(fn, steps: int, warmup: int) -> dict:
    """Wall-clock median/min/max and the median process CPU time (all threads) per unit."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times), "times_ms": times,
            "cpu_median_ms": statistics.median(cpu), "cpu_ms": cpu}


def blas_library() -> str:
    """The BLAS shared object actually mapped into this process (Debian switches it by alternatives)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return ", ".join(sorted(os.path.realpath(p) for p in libs)) or "unknown"
    except OSError:
        return "unknown"


def floor() -> None:
    """One-thread CPU time of the products and op dispatch that bench/floor.ts times on tfjs."""
    def cpu_ms(fn, r=10):
        for _ in range(2):
            fn()
        c0 = time.process_time()
        for _ in range(r):
            fn()
        return (time.process_time() - c0) * 1e3 / r

    def report(name, ms, flops):
        print(f"{name:<52} {ms:9.3f} ms cpu  {flops / ms / 1e6:6.1f} GFLOP/s")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), BLAS {blas_library()}")
    a, w, s = torch.randn(4096, 128), torch.randn(128, 128), torch.randn(512, 512)
    report("mm [4096,128] x [128,128]", cpu_ms(lambda: a @ w), 2 * 4096 * 128 * 128)
    report("mm [4096,128]^T x [4096,128]", cpu_ms(lambda: a.T @ a), 2 * 4096 * 128 * 128)
    report("mm 512 x 512 x 512", cpu_ms(lambda: s @ s), 2 * 512 ** 3)
    q, k = torch.randn(32, 4, 128, 32), torch.randn(32, 4, 128, 32)
    report("batched [32,4,128,32] x [32,4,128,32]^T", cpu_ms(lambda: q @ k.transpose(-1, -2)), 2 * 128 * 128 * 32 * 128)
    x = torch.ones(128)
    n = 20000
    c0 = time.process_time()
    for _ in range(n):
        x + x
    print(f"{'tiny op: add [128] (dispatch)':<52} {(time.process_time() - c0) / n * 1e6:9.1f} us cpu")
    xg = torch.ones(128, requires_grad=True)
    n = 5000
    c0 = time.process_time()
    for _ in range(n):
        torch.autograd.grad((xg * xg).sum(), xg)
    print(f"{'tape: grad(sum(x*x)) on [128]':<52} {(time.process_time() - c0) / n * 1e6:9.1f} us cpu")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    p.add_argument("--workload", default="all", help="comma list of T1,T2,T3,T4,R1 or 'all'")
    p.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    p.add_argument("--r1-steps", type=int, default=None, help="timed repeats of R1 (default: --steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-grad", choices=("analytic", "autograd"), default="analytic",
                   help="gradient of the Stage-I fit: closed form (default) or torch.autograd.grad")
    p.add_argument("--r1-fit", choices=("dense", "span"), default="dense",
                   help="R1 Stage I: dense W updates (default, the SPEC's form) or the same iterates in the span of the memories")
    p.add_argument("--phases", action="store_true",
                   help="also time forward, forward+backward and (T2/T4) the Stage-I fit alone")
    p.add_argument("--floor", action="store_true", help="time single products and op dispatch (see bench/floor.ts) and exit")
    p.add_argument("--check", action="store_true", help="check analytic vs autograd fit and exit")
    p.add_argument("--json", default=None, help="write results to this path")
    args = p.parse_args()

    global FIT_GRAD
    FIT_GRAD = args.fit_grad
    if args.floor:
        floor()
        sys.exit(0)
    if args.check:
        gen = torch.Generator().manual_seed(args.seed)
        keys = torch.randn(4, 2, 16, 8, generator=gen)
        phi0 = torch.eye(8) + 0.1 * torch.randn(8, 8, generator=gen)
        a = fit_linear_phi(keys, phi0, 5, 0.1, grad="analytic")
        b = fit_linear_phi(keys, phi0, 5, 0.1, grad="autograd")
        diff = (a - b).abs().max().item()
        moved = (a - phi0).abs().max().item()
        print(f"fit check: max |analytic - autograd| = {diff:.3g} (Phi moved by {moved:.3g})")
        sys.exit(0 if diff < 1e-5 and moved > 1e-3 else 1)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    chosen = WORKLOADS if args.workload == "all" else tuple(w.strip().upper() for w in args.workload.split(","))
    for w in chosen:
        if w not in WORKLOADS:
            sys.exit(f"torch_reference: --workload must be a comma list of {', '.join(WORKLOADS)} or 'all', got {w}")

    load_start = os.getloadavg()
    results = {}
    for w in chosen:
        torch.manual_seed(args.seed)
        gen = torch.Generator().manual_seed(args.seed)
        if w == "R1":
            fn = make_r1(gen, args.r1_fit)
            stats = time_it(fn, args.r1_steps or args.steps, args.warmup)
            stats["check"] = fn()  # mean squared retrieval error, a sanity value
        else:
            fn = make_train_step(w, gen)
            stats = time_it(fn, args.steps, args.warmup)
            stats["check"] = fn()  # the loss after the timed steps
            if args.phases:
                stats["phases"] = {}
                for name, f in fn.phases.items():
                    t = time_it(f, max(3, args.steps // 4), 1)
                    stats["phases"][name] = {"median_ms": t["median_ms"], "cpu_median_ms": t["cpu_median_ms"]}
        results[w] = stats
        print(f"torch {w}: median {stats['median_ms']:.2f} ms  (min {stats['min_ms']:.2f}, max {stats['max_ms']:.2f}), cpu {stats['cpu_median_ms']:.2f} ms  check {stats['check']:.4g}",
              flush=True)
        if "phases" in stats:
            print("  phases (wall / cpu): " + ", ".join(f"{k} {v['median_ms']:.2f} / {v['cpu_median_ms']:.2f} ms"
                                                 for k, v in stats["phases"].items()), flush=True)

    out = {
        "impl": "torch",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "os_threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "blas": blas_library(),
        "fit_grad": FIT_GRAD,
        "r1_fit": args.r1_fit,
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "steps": args.steps,
        "warmup": args.warmup,
        "results": results,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
