"""Model files as untrusted input: the metadata is checked, and every tensor shape compared
with what the architecture builds, before a network is allocated; written files honour the umask."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import i2i.nn
from i2i.checkpoint import load_model, save_model, save_training_state
from i2i.errors import I2IError
from i2i.spec import spec_for_network


@pytest.fixture
def model_file(tmp_path) -> Path:
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=2)
    save_model(tmp_path / "good.safetensors", {"G": net}, spec_for_network(net, "srgan", input_range=(0, 1)))
    return tmp_path / "good.safetensors"


def rewrite(source: Path, target: Path, **metadata: str) -> Path:
    """`source`'s tensors with its metadata changed (None removes a key)."""
    with safe_open(str(source), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    meta.update(metadata)
    save_file(tensors, str(target), metadata={k: v for k, v in meta.items() if v is not None})
    return target


def networks_json(source: Path, **changes) -> str:
    with safe_open(str(source), framework="pt") as f:
        archs = json.loads(f.metadata()["networks"])
    archs["G"].update(changes)
    return json.dumps(archs)


@pytest.mark.parametrize("change,words", [
    (lambda p: {"networks": networks_json(p, width=300)}, "width=300"),
    (lambda p: {"networks": networks_json(p, width=-1)}, "width"),
    (lambda p: {"networks": networks_json(p, depth=3)}, "depth"),
    (lambda p: {"networks": networks_json(p, name="no_such_net")}, "no_such_net"),
    (lambda p: {"networks": "{not json"}, "bad model metadata"),
    (lambda p: {"networks": "[1, 2]"}, "bad model metadata"),
    (lambda p: {"networks": '{"G": 3}'}, "bad model metadata"),
    (lambda p: {"spec": '{"pipeline": "srgan", "directions": {"AtoB": "H"}}'}, "'H'"),
    (lambda p: {"spec": '{"pipeline": "srgan", "scale": "big"}'}, "scale"),
    (lambda p: {"spec": None, "pipeline": None}, "bad model metadata"),
])
def test_bad_metadata_is_one_line(tmp_path, model_file, change, words):
    bad = rewrite(model_file, tmp_path / "bad.safetensors", **change(model_file))
    with pytest.raises(I2IError, match=words) as caught:
        load_model(bad)
    assert "\n" not in str(caught.value) and str(bad) in str(caught.value)


def test_a_huge_width_allocates_nothing(tmp_path, model_file):
    """Metadata claiming width 200000 (weights of tens of GB) is refused before any allocation."""
    bad = rewrite(model_file, tmp_path / "huge.safetensors", networks=networks_json(model_file, width=200000))
    code = ("import resource, sys\n"
            "import i2i.nn, safetensors.torch\n"
            "from i2i.checkpoint import load_model\n"
            "from i2i.errors import I2IError\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
            f"try:\n    load_model({str(bad)!r})\nexcept I2IError as e:\n    print(e)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    before_kib, message, after_kib = done.stdout.strip().splitlines()
    assert "width=200000" in message and done.returncode == 0, done.stderr
    # its weights would take 1.4 TB; checking them on the meta device costs ~180 MB (measured)
    assert int(after_kib) - int(before_kib) < 500_000


def test_files_honour_the_umask(tmp_path, model_file):
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=2)
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            save_model(tmp_path / f"m{mask}.safetensors", {"G": net}, spec_for_network(net, "srgan"))
            save_training_state(tmp_path / f"s{mask}.pt", {"step": torch.tensor(1)})
        finally:
            os.umask(old)
        assert os.stat(tmp_path / f"m{mask}.safetensors").st_mode & 0o777 == mode
        assert os.stat(tmp_path / f"s{mask}.pt").st_mode & 0o777 == mode


def test_writes_work_on_a_file_system_without_flock(tmp_path, monkeypatch):
    """Lustre mounted noflock answers flock with ENOSYS: every atomic write then failed."""
    import errno
    import fcntl

    from i2i.atomic import remove_stale_temp_files, write_bytes

    def no_flock(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    write_bytes(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    (tmp_path / ".b.bin.0123456789ab.tmp").write_bytes(b"left by a kill")
    (tmp_path / ".dir.0123456789ab.tmp").mkdir()  # a folder with such a name is not ours
    assert remove_stale_temp_files(tmp_path) == [tmp_path / ".b.bin.0123456789ab.tmp"]


def test_the_same_networks_make_the_same_file_bytes(tmp_path):
    """safetensors writes the metadata keys in a random order: two identical runs gave model
    files of different sha256 (a checksum could not tell a re-run from another model)."""
    net = i2i.nn.create("srresnet", width=4, num_blocks=1, scale=2)
    spec = spec_for_network(net, "srgan", input_range=(0, 1))
    files = [tmp_path / f"m{i}.safetensors" for i in range(6)]
    for path in files:
        save_model(path, {"G": net}, spec)
    assert len({path.read_bytes() for path in files}) == 1
    loaded = load_model(files[0])
    assert all(torch.equal(a, b) for a, b in zip(loaded.networks["G"].state_dict().values(),
                                                 net.state_dict().values()))
