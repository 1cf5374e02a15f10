"""The pretrained registry: shipped files offline; downloads, conversion of foreign checkpoints,
pinned hashes and offline use from the cache, against a real local HTTP server."""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from test_download import Server
from i2i import zoo
from i2i.errors import I2IError


@pytest.fixture()
def server():
    serving = Server()
    yield serving
    serving.stop()


@pytest.fixture()
def i2i_home(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2I_MIRROR", raising=False)
    monkeypatch.delenv("I2I_REGISTRY", raising=False)
    return tmp_path / "home"


def write_registry(folder: Path, rows: dict) -> Path:
    path = folder / "registry.json"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def reference_checkpoint(net: torch.nn.Module) -> bytes:
    """A generator saved the way the reference's save_networks does: torch.save(state_dict)."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def tiny_resnet() -> torch.nn.Module:
    import i2i.nn

    torch.manual_seed(0)
    return i2i.nn.create("resnet_6blocks", norm="instance", width=4)


def tiny_model_file(tmp_path: Path) -> bytes:
    """The bytes of a small i2i model file (safetensors with its architecture and contract)."""
    from i2i.checkpoint import save_model
    from i2i.spec import spec_for_network

    net = tiny_resnet()
    save_model(tmp_path / "tiny-model.safetensors", {"G": net}, spec_for_network(net, "cyclegan"))
    return (tmp_path / "tiny-model.safetensors").read_bytes()


TINY_ROW = {"format": "pth", "arch": {"name": "resnet_6blocks", "norm": "instance", "width": 4},
            "spec": {"pipeline": "cyclegan"}, "description": "a tiny CycleGAN generator"}


def cli(*args: str):
    from i2i.cli import main

    return CliRunner().invoke(main, list(args))


def write_photo(folder: Path) -> None:
    from i2i.data.io import write_image

    write_image(folder / "a.png", np.random.default_rng(0).integers(0, 256, (20, 12, 3), dtype=np.uint8))


# --------------------------------------------------------------------------- i2i model files


def test_download_verifies_and_caches(tmp_path, server, i2i_home):
    payload = tiny_model_file(tmp_path)
    server.files["/m.safetensors"] = payload
    reg = write_registry(tmp_path / "reg", {"tiny": {"file": "m.safetensors", "url": server.url("/m.safetensors"),
                                                     "sha256": hashlib.sha256(payload).hexdigest()}})
    path = zoo.resolve("tiny", registry_path=reg, progress=False)
    assert path == i2i_home / "models" / "m.safetensors" and path.read_bytes() == payload
    server.stop()  # the second call must not need the server
    assert zoo.resolve("tiny", registry_path=reg, progress=False) == path


def test_old_cache_variable_still_honoured(tmp_path, server, monkeypatch):
    monkeypatch.delenv("I2I_HOME", raising=False)
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "old"))
    server.files["/m.safetensors"] = tiny_model_file(tmp_path)
    reg = write_registry(tmp_path / "reg", {"t": {"file": "m.safetensors", "url": server.url("/m.safetensors")}})
    assert zoo.resolve("t", registry_path=reg, progress=False) == tmp_path / "old" / "models" / "m.safetensors"


def test_a_page_that_is_no_model_is_not_kept(tmp_path, server, i2i_home):
    server.files["/m.safetensors"] = b"<html>moved</html>"
    reg = write_registry(tmp_path / "reg", {"t": {"url": server.url("/m.safetensors")}})
    with pytest.raises(I2IError, match="is not an i2i model file .*nothing was kept"):
        zoo.resolve("t", registry_path=reg, progress=False)
    assert [p for p in i2i_home.rglob("*") if p.is_file()] == []


def test_corrupt_download_is_not_kept(tmp_path, server, i2i_home):
    server.files["/m.safetensors"] = b"tampered"
    reg = write_registry(tmp_path / "reg", {"tiny": {"file": "m.safetensors", "url": server.url("/m.safetensors"),
                                                     "sha256": "0" * 64}})
    with pytest.raises(I2IError, match="corrupt"):
        zoo.resolve("tiny", registry_path=reg, progress=False)
    assert not any(i2i_home.rglob("*.safetensors*"))


def test_missing_file_and_unknown_names(tmp_path, server, i2i_home):
    reg = write_registry(tmp_path / "reg", {"gone": {"url": server.url("/gone.safetensors")},
                                            "horse2zebra": {"url": server.url("/h.safetensors")},
                                            "RealESRGAN_x4plus": {"url": server.url("/r.safetensors")}})
    with pytest.raises(I2IError, match=r"cannot download gone: .* answered 404"):
        zoo.resolve("gone", registry_path=reg, progress=False)
    with pytest.raises(I2IError, match=r"did you mean horse2zebra\?"):
        zoo.resolve("horse2zebr", registry_path=reg, progress=False)
    with pytest.raises(I2IError, match="known: RealESRGAN_x4plus, gone, horse2zebra"):
        zoo.resolve("nope", registry_path=reg, progress=False)
    assert zoo.lookup("realesrgan_x4plus", registry_path=reg).name == "RealESRGAN_x4plus"  # case does not matter


def test_shipped_file_used_offline_and_checked(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    (folder / "s.safetensors").write_bytes(b"shipped")
    reg = write_registry(folder, {"s": {"file": "s.safetensors", "sha256": hashlib.sha256(b"shipped").hexdigest()}})
    assert zoo.resolve("s", registry_path=reg) == folder / "s.safetensors"
    (folder / "s.safetensors").write_bytes(b"edited")
    with pytest.raises(I2IError, match="does not match"):
        zoo.resolve("s", registry_path=reg)


@pytest.mark.parametrize("row, problem", [
    ({"file": "../x.safetensors"}, "must be a plain file name"),
    ({"format": "onnx"}, "format must be one of"),
    ({"format": "pth"}, '"pth" model needs "arch"'),
    ({"sha256": "abc"}, "sha256 must be 64"),
    ({"spec": {"scale": 4}}, "spec may set only"),
    ({"colour": 1}, "unknown field 'colour'"),
    ({"file": None, "metrics": []}, "file, metrics must be str / dict"),
])
def test_bad_registry_rows_are_one_line(tmp_path, row, problem):
    reg = write_registry(tmp_path / "reg", {"bad": row})
    with pytest.raises(I2IError, match=re.escape(problem)) as caught:
        zoo.registry(reg)
    assert str(reg) in str(caught.value) and "'bad'" in str(caught.value)


def test_user_registry_adds_to_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_REGISTRY", str(write_registry(tmp_path / "mine", {"mine": {"url": "http://x/m"}})))
    names = zoo.registry()
    assert "mine" in names and "srresnet-x4" in names and names["mine"].home == tmp_path / "mine"


# --------------------------------------------------------------------------- foreign checkpoints


def test_pull_converts_a_reference_checkpoint_and_works_offline(tmp_path, server, i2i_home, monkeypatch):
    net = tiny_resnet()
    server.files["/tiny.pth"] = reference_checkpoint(net)
    monkeypatch.setenv("I2I_REGISTRY", str(write_registry(tmp_path / "reg", {
        "tiny": {**TINY_ROW, "url": server.url("/tiny.pth")}})))
    assert re.search(r"^tiny +CycleGAN +\? +download", cli("models", "list").stdout, re.M)
    pulled = cli("models", "pull", "tiny")
    assert pulled.exit_code == 0, pulled.output
    model = i2i_home / "models" / "tiny.safetensors"
    assert pulled.stdout.strip() == str(model)
    assert re.search(r"^tiny +CycleGAN +[\d.]+ MB +cached", cli("models", "list").stdout, re.M)
    assert sorted(p.name for p in i2i_home.rglob("*") if p.is_file()) == ["tiny.safetensors", "tiny.safetensors.json"]
    record = json.loads((i2i_home / "models" / "tiny.safetensors.json").read_text())
    assert record["source_sha256"] == hashlib.sha256(server.files["/tiny.pth"]).hexdigest()
    assert record["sha256"] == zoo.sha256_of(model)

    from i2i.checkpoint import load_model

    loaded = load_model(model)
    assert loaded.spec.pipeline == "cyclegan" and loaded.spec.size.multiple == 4
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.networks["G"].state_dict()[key], value), key

    server.stop()
    write_photo(tmp_path / "in")
    result = cli("translate", "tiny", str(tmp_path / "in"), str(tmp_path / "out"), "--device", "cpu",
                 "--precision", "fp32")
    assert result.exit_code == 0, result.output
    from i2i.data.io import read_image

    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (20, 12, 3)
    model.write_bytes(model.read_bytes()[:-1] + b"\0")  # a cached file that changed is refused
    with pytest.raises(I2IError, match="does not match the download record"):
        zoo.resolve("tiny")


def test_translate_by_name_pulls_the_reference_horse2zebra_on_first_use(tmp_path, server, i2i_home, monkeypatch):
    """`i2i translate horse2zebra photos/ out/` with the registry's own row (resnet_9blocks, instance
    norm), its file served by a local mirror; then again with the server gone."""
    import i2i.nn

    torch.manual_seed(0)
    net = i2i.nn.create("resnet_9blocks", norm="instance")
    server.files["/cyclegan/pretrained_models/horse2zebra.pth"] = reference_checkpoint(net)
    monkeypatch.setenv("I2I_MIRROR", server.base)
    write_photo(tmp_path / "photos")
    args = ["translate", "horse2zebra", str(tmp_path / "photos"), "--device", "cpu", "--precision", "fp32"]
    first = cli(*args, str(tmp_path / "out1"))
    assert first.exit_code == 0, first.output
    server.stop()
    second = cli(*args, str(tmp_path / "out2"))
    assert second.exit_code == 0, second.output
    from i2i.data.io import read_image

    a, b = (read_image(tmp_path / out / "a.png").pixels for out in ("out1", "out2"))
    assert a.shape == (20, 12, 3) and np.array_equal(a, b)


def test_unknown_hash_is_pinned_at_first_download(tmp_path, server, i2i_home, monkeypatch):
    server.files["/tiny.pth"] = reference_checkpoint(tiny_resnet())
    monkeypatch.setenv("I2I_REGISTRY", str(write_registry(tmp_path / "reg", {
        "tiny": {**TINY_ROW, "url": server.url("/tiny.pth")}})))
    zoo.resolve("tiny", progress=False)
    (i2i_home / "models" / "tiny.safetensors").unlink()
    server.files["/tiny.pth"] = reference_checkpoint(_other())  # the publisher's file changed
    result = cli("models", "pull", "tiny")
    assert result.exit_code == 1
    assert "corrupt" in result.stderr and "the first download (recorded in" in result.stderr
    assert not (i2i_home / "models" / "tiny.safetensors").exists()


def test_a_model_cached_from_another_registry_row_is_not_used(tmp_path, server, i2i_home, monkeypatch):
    """A name pulled through I2I_REGISTRY's row and later resolved by another row (the override
    removed): the cached file is refused in one line naming where it came from, not used as it."""
    for name, net in (("a.pth", tiny_resnet()), ("b.pth", _other())):
        server.files[f"/{name}"] = reference_checkpoint(net)
    first = write_registry(tmp_path / "first", {"tiny": {**TINY_ROW, "url": server.url("/a.pth")}})
    second = write_registry(tmp_path / "second", {"tiny": {**TINY_ROW, "url": server.url("/b.pth")}})
    zoo.resolve("tiny", registry_path=first, progress=False)
    with pytest.raises(I2IError, match=r"came from .*/a\.pth, but 'tiny' is .*/b\.pth now; delete it"):
        zoo.resolve("tiny", registry_path=second, progress=False)
    assert zoo.resolve("tiny", registry_path=first, progress=False).is_file()


def _other() -> torch.nn.Module:
    import i2i.nn

    torch.manual_seed(1)
    return i2i.nn.create("resnet_6blocks", norm="instance", width=4)


def test_checkpoint_quirks_the_reference_forgives(tmp_path, server, i2i_home):
    """Old checkpoints: InstanceNorm running stats (PyTorch < 0.4) are dropped, BatchNorm counters
    (PyTorch < 0.4.1) added; any other mismatch is one line."""
    import i2i.nn

    torch.manual_seed(0)
    unet = i2i.nn.create("unet_32", norm="batch", width=4, dropout=True)
    old_unet = {k: v for k, v in unet.state_dict().items() if not k.endswith("num_batches_tracked")}
    resnet = tiny_resnet()
    old_resnet = {**resnet.state_dict(), "model.2.running_mean": torch.zeros(4), "model.2.running_var": torch.ones(4),
                  "model.2.num_batches_tracked": torch.tensor(0)}  # as the published horse2zebra.pth (reference #262, #318)
    extra = {**resnet.state_dict(), "model.99.weight": torch.zeros(1)}
    rows = {}
    for name, state, arch, spec in [("unet", old_unet, {"name": "unet_32", "norm": "batch", "width": 4, "dropout": True},
                                     {"pipeline": "pix2pix", "test_mode": "train"}),
                                    ("resnet", old_resnet, TINY_ROW["arch"], TINY_ROW["spec"]),
                                    ("extra", extra, TINY_ROW["arch"], TINY_ROW["spec"])]:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        server.files[f"/{name}.pth"] = buffer.getvalue()
        rows[name] = {"format": "pth", "url": server.url(f"/{name}.pth"), "arch": arch, "spec": spec}
    reg = write_registry(tmp_path / "reg", rows)
    from i2i.checkpoint import read_header

    assert read_header(zoo.resolve("unet", registry_path=reg, progress=False)).spec.test_mode == "train"
    zoo.resolve("resnet", registry_path=reg, progress=False)
    with pytest.raises(I2IError, match=r"extra: the downloaded weights do not fit resnet_6blocks \(.*model.99.weight"):
        zoo.resolve("extra", registry_path=reg, progress=False)
    assert not (i2i_home / "models" / "extra.safetensors").exists()
    assert not any((i2i_home / "downloads").iterdir())


def test_basicsr_checkpoint_becomes_an_upscaler(tmp_path, server, i2i_home, monkeypatch):
    """A Real-ESRGAN-style file ({"params_ema": ...}, RRDBNet keys) with an SR row: x4 output."""
    import i2i.nn

    torch.manual_seed(0)
    arch = {"name": "rrdbnet", "width": 8, "num_blocks": 1, "growth": 4, "scale": 4}
    buffer = io.BytesIO()
    torch.save({"params_ema": i2i.nn.create(**arch).state_dict()}, buffer)
    server.files["/sr.pth"] = buffer.getvalue()
    monkeypatch.setenv("I2I_REGISTRY", str(write_registry(tmp_path / "reg", {"sr": {
        "format": "pth", "url": server.url("/sr.pth"), "arch": arch,
        "spec": {"pipeline": "srgan", "input_range": [0, 1], "output_range": [0, 1]}}})))
    import i2i

    upscaler = i2i.load_model("sr", device="cpu", precision="fp32")
    assert upscaler(np.zeros((20, 12, 3), np.uint8)).shape == (80, 48, 3)
    assert re.search(r"^sr +SR x4 +[\d.]+ MB +cached", cli("models", "list").stdout, re.M)


def test_sha256_prefix_in_registry_is_checked(tmp_path, server, i2i_home):
    server.files["/net-00000000.pth"] = reference_checkpoint(tiny_resnet())
    reg = write_registry(tmp_path / "reg", {"t": {**TINY_ROW, "url": server.url("/net-00000000.pth"),
                                                  "sha256_prefix": "00000000"}})
    with pytest.raises(I2IError, match=r"expected 00000000\.\.\. \(the prefix in its file name\)"):
        zoo.resolve("t", registry_path=reg, progress=False)


# --------------------------------------------------------------------------- the shipped registry


CYCLEGAN = ("apple2orange orange2apple summer2winter_yosemite winter2summer_yosemite horse2zebra zebra2horse "
            "monet2photo style_monet style_cezanne style_ukiyoe style_vangogh sat2map map2sat cityscapes_photo2label "
            "cityscapes_label2photo facades_photo2label facades_label2photo iphone2dslr_flower").split()
PIX2PIX = "edges2shoes sat2map map2sat facades_label2photo day2night".split()


def test_the_registry_holds_the_reference_models_at_their_urls():
    import i2i.nn
    from i2i.spec import ModelSpec

    rows = zoo.registry(zoo.REGISTRY_FILE)
    for family, names, url in [("cyclegan", CYCLEGAN, "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"),
                               ("pix2pix", PIX2PIX, "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/")]:
        for name in names:
            clash = name in CYCLEGAN and name in PIX2PIX
            entry = rows[f"{name}-{family}" if clash else name]
            assert entry.url == f"{url}{name}.pth" and entry.format == "pth" and entry.spec["pipeline"] == family
    for entry in rows.values():
        if entry.arch:  # options the network really has, and a contract inference accepts
            assert set(entry.arch) - {"name"} <= set(i2i.nn.defaults(entry.arch["name"])), entry.name
            ModelSpec.from_dict({"pipeline": "x", **entry.spec})
        basicsr = re.search(r"-([0-9a-f]{8})\.pth$", entry.url)
        assert entry.sha256_prefix == (basicsr[1] if basicsr else ""), entry.name
        assert not entry.url or (entry.license and entry.source), entry.name
    assert rows["ESRGAN_SRx4_DF2KOST_official"].sha256_prefix == "ff704c30"
    assert rows["srresnet-x4"].file == "srresnet-x4.safetensors" or pytest.fail("shipped row changed")


def test_models_list_and_translate_by_name(tmp_path, i2i_home, monkeypatch):
    """The shipped srresnet-x4 is listed and translates offline by name."""
    from i2i.data.io import read_image, write_image

    if "srresnet-x4" not in zoo.registry():
        pytest.skip("srresnet-x4 not registered")
    listed = cli("models", "list")
    assert listed.exit_code == 0
    assert re.search(r"^srresnet-x4 +SR x4 +[\d.]+ MB +shipped", listed.stdout, re.M)
    assert re.search(r"^horse2zebra +CycleGAN +~45.5 MB +download", listed.stdout, re.M)
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    result = cli("translate", "srresnet-x4", str(tmp_path / "in"), str(tmp_path / "out"),
                 "--device", "cpu", "--precision", "fp32")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "a.png").pixels.shape == (36, 28, 3)
    # an output folder named after the model, in the working folder, no longer hides it
    monkeypatch.chdir(tmp_path)
    for out in ("srresnet-x4", "srresnet-x4"):
        result = cli("translate", "srresnet-x4", str(tmp_path / "in"), out, "--device", "cpu", "--overwrite")
        assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "srresnet-x4" / "a.png").pixels.shape == (36, 28, 3)


# --------------------------------------------------------------------------- a row corrected since


TINY_UNET = {"name": "unet_32", "norm": "batch", "width": 4, "dropout": True}


def test_a_model_converted_with_an_older_row_is_converted_again(tmp_path, server, i2i_home, capsys):
    """map2sat-pix2pix pulled before its row said BtoA: the cached file (AtoB) is made again with
    today's row, from its own weights, offline, saying so in one line; the record follows."""
    from i2i.checkpoint import load_model, read_header

    net = _tiny_unet()
    server.files["/map2sat.pth"] = reference_checkpoint(net)
    today = {**json.loads(zoo.REGISTRY_FILE.read_text())["map2sat-pix2pix"], "url": server.url("/map2sat.pth"),
             "arch": TINY_UNET}
    assert today["spec"]["default_direction"] == "BtoA"
    older = {**today, "spec": {k: v for k, v in today["spec"].items() if "direction" not in k}}
    first = zoo.resolve("map2sat-pix2pix", registry_path=write_registry(tmp_path / "old", {"map2sat-pix2pix": older}))
    assert read_header(first).spec.default_direction == "AtoB"
    source_hash = json.loads((i2i_home / "models" / f"{first.name}.json").read_text())["source_sha256"]
    capsys.readouterr()

    server.stop()  # only the contract changed: no download needed
    again = zoo.resolve("map2sat-pix2pix", registry_path=write_registry(tmp_path / "new", {"map2sat-pix2pix": today}))
    assert again == first
    spec = read_header(again).spec
    assert (dict(spec.directions), spec.default_direction, spec.test_mode) == ({"BtoA": "G"}, "BtoA", "train")
    for key, value in net.state_dict().items():
        assert torch.equal(load_model(again).networks["G"].state_dict()[key], value), key
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "converted with an older registry row" in lines[0], lines
    assert 'default_direction "AtoB" -> "BtoA"' in lines[0], lines
    record = json.loads((i2i_home / "models" / f"{again.name}.json").read_text())
    assert record["sha256"] == zoo.sha256_of(again) and record["source_sha256"] == source_hash

    zoo.resolve("map2sat-pix2pix", registry_path=tmp_path / "new" / "registry.json")  # now current: nothing said
    assert capsys.readouterr().err == ""


def test_a_model_converted_as_another_network_is_downloaded_again(tmp_path, server, i2i_home, capsys):
    """A row whose architecture changed (dropout off, same weights) cannot be mended from the cached
    file's metadata alone: the checkpoint is downloaded again (its pinned hash checked) and converted."""
    import i2i.nn
    from i2i.checkpoint import read_header

    server.files["/u.pth"] = reference_checkpoint(_tiny_unet())
    row = {"format": "pth", "url": server.url("/u.pth"), "arch": TINY_UNET, "spec": {"pipeline": "pix2pix"}}
    zoo.resolve("u", registry_path=write_registry(tmp_path / "old", {"u": row}), progress=False)
    before = len(server.requests)
    fixed = {**row, "arch": {**TINY_UNET, "dropout": False}}
    path = zoo.resolve("u", registry_path=write_registry(tmp_path / "new", {"u": fixed}))
    assert len(server.requests) == before + 1 and read_header(path).archs["G"]["dropout"] is False
    assert "downloading the checkpoint again" in capsys.readouterr().err
    assert not any((i2i_home / "downloads").iterdir())
    spelt_out = {**fixed, "arch": {**i2i.nn.defaults("unet_32"), **fixed["arch"]}}  # the same network
    zoo.resolve("u", registry_path=write_registry(tmp_path / "same", {"u": spelt_out}), progress=False)
    assert len(server.requests) == before + 1  # converted with today's row: used as it is


def _tiny_unet() -> torch.nn.Module:
    import i2i.nn

    torch.manual_seed(0)
    return i2i.nn.create(**TINY_UNET)
