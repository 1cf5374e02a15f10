"""onnxruntime vs torch on the CPU: should `i2i translate` offer `--backend onnxruntime`?

    python benchmarks/onnx_backend.py [--rounds 7] [--threads 1,2] [--models resnet_9blocks,srresnet]

Per image (batch 1), the network alone (range mapping, padding and file IO are the same for
both backends): resnet_9blocks (width 64, instance norm) at 256x256 and srresnet x4 (width 64,
16 blocks) at 128x128 in (512x512 out), random init. Backends:

- torch fp32, torch fp32 + channels_last, torch bf16 + channels_last: i2i's own model call
  (`ImageModel.speed.forward`, InstanceNorm as group_norm), each precision/layout forced;
- torch auto: what `i2i translate` picks on this machine (measured at its first call);
- onnxruntime: the graph `i2i models export` writes (i2i.export), CPUExecutionProvider,
  all graph optimisations, intra-op threads = the thread count.

Each thread count runs all backends round-robin, one call each per round, for `--rounds`
rounds after a warm-up call, and reports the median and the minimum: the machine is shared
(a training job runs beside it), so interleaving spreads the noise over all backends alike.
Also prints the largest |onnxruntime - torch fp32| (the backend must agree within 1e-3).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def make_case(name: str):
    """(network, spec, input) for a benchmark model, random init (seed 0)."""
    import torch

    import i2i.nn
    from i2i.spec import spec_for_network

    torch.manual_seed(0)
    if name == "resnet_9blocks":
        net = i2i.nn.create("resnet_9blocks", width=64, norm="instance")
        spec, size = spec_for_network(net, "cyclegan"), 256
    else:
        net = i2i.nn.create("srresnet", width=64, num_blocks=16, scale=4)
        spec, size = spec_for_network(net, "srgan", input_range=(0.0, 1.0), output_range=(0.0, 1.0)), 128
    x = torch.rand(1, 3, size, size) * (spec.input_range[1] - spec.input_range[0]) + spec.input_range[0]
    return net.eval(), spec, x


def torch_backends(net, spec) -> dict:
    """name -> forward(x) for i2i's torch model call with a forced (or auto) precision/layout."""
    import copy

    from i2i.infer.model import ImageModel

    choices = {"torch fp32": ("fp32", False), "torch fp32+cl": ("fp32", True),
               "torch bf16+cl": ("bf16", True), "torch auto": ("auto", None)}
    backends = {}
    for label, (precision, channels_last) in choices.items():
        model = ImageModel(copy.deepcopy(net), spec, device="cpu", precision=precision, channels_last=channels_last)
        backends[label] = model
    return backends


def onnx_session(net, spec, threads: int, folder: Path):
    import onnxruntime as ort

    from i2i.export import _export

    path = folder / f"{net.arch['name']}.onnx"
    if not path.exists():
        import onnx

        onnx.save_model(_export(net, spec.in_channels, spec.size, 18, path), str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def measure(name: str, threads: int, rounds: int, folder: Path) -> None:
    import torch

    torch.set_num_threads(threads)
    net, spec, x = make_case(name)
    models = torch_backends(net, spec)
    session = onnx_session(net, spec, threads, folder)
    feed = {session.get_inputs()[0].name: x.numpy()}

    def run_torch(model):
        with torch.inference_mode():
            if model.speed.candidates:
                model._settle_speed(*x.shape[-2:])
            return model.speed.forward(x).float()

    calls = {label: (lambda m=m: run_torch(m)) for label, m in models.items()}
    calls["onnxruntime"] = lambda: torch.from_numpy(session.run(None, feed)[0])
    outputs = {label: call() for label, call in calls.items()}  # warm-up (and auto's choice)
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    diff = (outputs["onnxruntime"] - outputs["torch fp32"]).abs().max().item()
    auto = models["torch auto"]
    print(f"\n{name} ({tuple(x.shape)} in), {threads} thread{'s' * (threads > 1)}, {rounds} rounds; "
          f"torch auto chose {auto.precision}{' + channels_last' if auto.channels_last else ''}; "
          f"max |onnxruntime - torch fp32| = {diff:.2e}", flush=True)
    for label, values in times.items():
        print(f"  {label:<15} median {statistics.median(values) * 1000:8.1f} ms   min {min(values) * 1000:8.1f} ms",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default="resnet_9blocks,srresnet")
    args = parser.parse_args()
    import onnxruntime
    import torch

    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            for threads in (int(t) for t in args.threads.split(",")):
                measure(name, threads, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
