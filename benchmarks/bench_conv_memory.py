"""Benchmark: memory of the conv-layer activation and analysis path at the paper profile's
sample counts (CIFAR-10 shape 3x32x32, a VGG-style net of 64-128-256-512 channels, all
positions of every layer, two networks).

The activations stream through in batches and a conv layer keeps a bounded uniform subset of
its (input, position) rows (``max_rows``, :data:`repsim_utils.chapters.subspace_match.ROW_BUDGET`);
the subspace match (one coordinate draw of 10,000 rows, five eps) and linear CKA then run on
them. Each input count runs in a fresh process; the peak resident memory is printed beside what
holding every row of both networks would take.

    python benchmarks/bench_conv_memory.py            # 500 and 2,000 inputs
    python benchmarks/bench_conv_memory.py 500 2000 4000

Target: peak under 8 GiB, bounded by the row budget rather than the number of inputs: it grows
with the rows kept until every layer holds the budget, then only with the input images
themselves (12 KB each).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

GIB = 2**30


def one(n_inputs: int) -> dict:
    import torch

    from repsim_utils.chapters import subspace_match
    from repsim_utils.nets.activations import activations
    from repsim_utils.nets.models import ConvSpec, build
    from repsim_utils.science import measures

    torch.set_num_threads(2)
    spec = ConvSpec(channels=(64, 128, 256, 512))
    nets = [build(spec, (3, 32, 32), 10, seed) for seed in (0, 1)]
    layers = list(nets[0].hidden)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n_inputs, 3, 32, 32, generator=g)
    budget = subspace_match.rows_kept(10_000, 16)
    start = time.perf_counter()
    acts = [activations(net, x, layers, batch_size=250, max_rows=budget) for net in nets]
    t_acts = time.perf_counter() - start
    full_bytes = 0
    out = {"inputs": n_inputs, "layers": {}}
    for layer in layers:
        a, b = acts[0][layer], acts[1][layer]
        rows_all = a.shape[0] if a.shape[0] < budget else None
        (m,) = subspace_match.matchers(a, b, False, 10_000, 1, seed=0)
        mms = m.similarity([0.15, 0.2, 0.25, 0.3, 0.5])
        cka = measures.linear_cka(a, b)
        out["layers"][layer] = {"rows kept": int(a.shape[0]), "channels": int(a.shape[1]),
                                "mms@0.25": float(mms[2]), "cka": float(cka),
                                "all rows kept": rows_all is not None}
    # rows of every layer if all positions were held: inputs x H x W per layer
    side = 32
    for c in spec.channels:
        full_bytes += 2 * n_inputs * side * side * c * 4
        side //= 2
    out["seconds"] = time.perf_counter() - start
    out["activation seconds"] = t_acts
    out["all rows would hold GiB"] = full_bytes / GIB
    out["peak GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(json.dumps(one(int(sys.argv[2]))))
        return
    counts = [int(a) for a in sys.argv[1:]] or [500, 2000]
    results = []
    for n in counts:
        proc = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True,
                              text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'inputs':>7} {'peak GiB':>9} {'all rows GiB':>13} {'seconds':>8}  rows kept per layer")
    for r in results:
        rows = ", ".join(f"{k} {v['rows kept']}x{v['channels']}" for k, v in r["layers"].items())
        print(f"{r['inputs']:7d} {r['peak GiB']:9.2f} {r['all rows would hold GiB']:13.2f} "
              f"{r['seconds']:8.1f}  {rows}")
    first, last = results[0], results[-1]
    print(f"\npeak ratio {last['inputs']} vs {first['inputs']} inputs: "
          f"{last['peak GiB'] / first['peak GiB']:.2f}x for "
          f"{last['inputs'] / first['inputs']:.0f}x the inputs; holding all rows would grow "
          f"{last['all rows would hold GiB'] / first['all rows would hold GiB']:.0f}x")
    if last["peak GiB"] > 8:
        sys.exit("peak memory above the 8 GiB target")


if __name__ == "__main__":
    main()
