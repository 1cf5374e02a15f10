"""Export a model file's generator to ONNX, with dynamic batch, height and width.

The graph is the bare network: it takes N x C x H x W float32 in the model's input range
and returns the network's output in its output range (the spec's ranges, e.g. [-1, 1] for
CycleGAN/pix2pix and [0, 1] for the SR nets), H and W multiples of the spec's size multiple
(a U-Net's 2**levels). The ONNX metadata records all of that (`i2i.spec`, `i2i.arch`,
`i2i.opset`, ...), so a runtime needs nothing else.

Exporters: both of torch.onnx's handle every i2i generator with dynamic batch, height and
width, and their graphs agree with torch within 1e-5 (tests/test_export.py). The default is the
TorchScript one (`dynamo=False`): it exports a network in 0.1-1 s where the torch.export-based
one (`exporter="dynamo"`, torch's default since 2.9) takes 4-10 s a network, plus its imports,
on a 2-core AMD EPYC: that decides the test suite's time. torch deprecates the TorchScript exporter;
where it is gone, "dynamo" is one option away (and tested too).
The graph runs in eval mode (running BatchNorm statistics, no dropout), as
`i2i translate --eval`: the reference's training-time test mode draws random dropout masks.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from i2i.atomic import check_output_file
from i2i.errors import I2IError, UsageError, one_line

DEFAULT_OPSET = 18
FORMAT = "i2i-onnx/1"
EXPORTERS = ("torchscript", "dynamo")


@dataclass
class ExportResult:
    """What `export_onnx` wrote, and what a user should know about it."""

    path: Path
    opset: int
    arch: dict
    notes: list[str] = field(default_factory=list)


def default_output(model: str | os.PathLike) -> Path:
    """MODEL.onnx beside a model file, model.onnx in a run folder, NAME.onnx here for a zoo name."""
    from i2i.infer.loading import resolve_model_path

    given = Path(model)
    if given.is_file() or given.is_dir():
        return resolve_model_path(model).with_suffix(".onnx")
    return Path(f"{given.name}.onnx")


def export_onnx(model: str | os.PathLike, out: str | os.PathLike | None = None, *, direction: str | None = None,
                opset: int = DEFAULT_OPSET, exporter: str = "torchscript", overwrite: bool = False) -> ExportResult:
    """Write the generator of `model` (a model file, run folder or zoo name) that translates
    `direction` (default: the model's) as an ONNX file at `out` (default: `default_output`; an
    existing one only with `overwrite`), with torch.onnx's `exporter` ("torchscript" or "dynamo")."""
    from i2i.checkpoint import load_model, read_header
    from i2i.infer.loading import resolve_model_path

    if exporter not in EXPORTERS:
        raise UsageError(f"exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
    path = resolve_model_path(model)
    out = check_output_file(out if out is not None else default_output(model), ".onnx", path, overwrite=overwrite)
    _require_onnx(exporter)
    spec = read_header(path).spec
    chosen, direction = direction, direction or spec.default_direction
    if direction not in spec.directions:
        raise UsageError(f"{path}: this {spec.pipeline} model translates {', '.join(spec.directions)} only")
    name = spec.directions[direction]
    net = load_model(path, [name]).networks[name].eval()
    notes = []
    if len(spec.directions) > 1 and not chosen:
        other = next(d for d in spec.directions if d != direction)
        notes.append(f"exported {direction} ({name}); --direction {other} exports the other")
    if spec.test_mode == "train":
        notes.append("exported in eval mode (running BatchNorm statistics, no dropout), as `i2i translate --eval`")
    proto = _export(net, spec.channels(direction)[0], spec.size, opset, path, exporter)
    metadata = {
        "i2i.format": FORMAT,
        "i2i.opset": str(opset),
        "i2i.exporter": f"torch.onnx {exporter} (torch {torch.__version__})",
        "i2i.arch": json.dumps(net.arch),
        "i2i.spec": json.dumps(spec.to_dict()),
        "i2i.direction": direction,
        "i2i.io": (f"image: N x {spec.channels(direction)[0]} x H x W float32 in {list(spec.input_range)}, H and W "
                   f"multiples of {spec.size.multiple}; output: in {list(spec.output_range)}, {spec.scale}x the size"),
    }
    _save(proto, metadata, out)
    return ExportResult(path=out, opset=opset, arch=dict(net.arch), notes=notes)


def _require_onnx(exporter: str) -> None:
    try:
        import onnx  # noqa: F401
        if exporter == "dynamo":
            import onnxscript  # noqa: F401
    except ImportError as error:
        raise I2IError(f"ONNX export needs the 'export' extra ({error.name} is missing): "
                       "pip install 'i2i[export]'") from None


def _export(net: torch.nn.Module, channels: int, size, opset: int, source: Path, exporter: str = "torchscript"):
    """The network as an ONNX ModelProto with dynamic batch, height and width."""
    import onnx

    # An example input of an unremarkable size (not 1, not square), so no dimension specialises.
    side = math.lcm(size.multiple, 8)
    example = torch.rand(1, channels, 2 * side, 3 * side)
    dims = {0: "batch", 2: "height", 3: "width"}
    names = {"input_names": ["image"], "output_names": ["output"], "opset_version": opset}
    try:
        with warnings.catch_warnings(), torch.no_grad(), _silenced():
            warnings.simplefilter("ignore")  # the exporters' notes on the trace and deprecations
            if exporter == "dynamo":
                program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes=(dims,), verbose=False, **names)
                proto = program.model_proto
            else:
                buffer = io.BytesIO()
                torch.onnx.export(net, (example,), buffer, dynamo=False, **names, dynamic_axes={
                    "image": dims, "output": {0: "batch", 2: "out_height", 3: "out_width"}})
                proto = onnx.load_from_string(buffer.getvalue())
    except Exception as error:  # the exporters raise many types
        raise I2IError(f"{source}: ONNX export failed ({one_line(error, 300, typed=True)})") from None
    written = [entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")]
    if written != [opset]:  # the dynamo exporter falls back to its own opset where it cannot convert
        raise I2IError(f"{source}: ONNX export failed (torch {torch.__version__} cannot write opset {opset}; "
                       f"it wrote {', '.join(map(str, written)) or 'none'})")
    return proto


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Nothing printed during the block reaches the user, from Python or C++: the exporters print
    the whole graph, or a logged traceback, beside the error that becomes our one line."""
    sink = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as native, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:  # no such descriptors (a closed stdout): nothing to silence there
            yield
            return
        try:
            for fd in (1, 2):
                os.dup2(native.fileno(), fd)
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def _save(proto, metadata: dict[str, str], out: Path) -> None:
    import onnx

    from i2i.atomic import atomic_path, write_errors

    onnx.helper.set_model_props(proto, metadata)
    with write_errors(out), atomic_path(out) as tmp:
        try:
            onnx.save_model(proto, str(tmp))
        except ValueError as error:  # e.g. over protobuf's 2 GB limit
            raise I2IError(f"{out}: cannot write the ONNX file ({one_line(error, 200)})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The i2i metadata of an exported ONNX file (without loading its weights)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise I2IError(f"{path}: not an ONNX file ({one_line(error, 200)})") from None
    return {p.key: p.value for p in proto.metadata_props}
