"""Which way an imported or converted generator translates: a reference pix2pix model trained with
--direction BtoA (facades label2photo, map2sat, day2night) and CycleGAN's G_B translate B to A, so
`i2i translate --ab-split` must feed them the right (B) half of each A|B pair, as the reference's
aligned_dataset does. The keys cannot tell; `--direction`, the file name, the run's train_opt.txt
and the registry row do."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_infer import pattern

from i2i import zoo
from i2i.checkpoint import read_header
from i2i.cli import main
from i2i.data.io import read_image, write_image
from i2i.errors import I2IError

TINY_UNET = {"name": "unet_32", "norm": "batch", "width": 4, "dropout": True}


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def reference_file(path: Path, arch: dict, seed: int = 0) -> Path:
    """A tiny generator saved as the reference saves one: torch.save(net.state_dict(), path)."""
    import i2i.nn

    torch.manual_seed(seed)
    state = i2i.nn.create(**arch).state_dict()
    for key, value in state.items():  # weights far from the 0.02 init, so outputs follow the input
        if key.endswith((".weight", ".bias")):
            value.normal_(0, 0.3 if key.endswith(".weight") else 0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def imported(tmp_path: Path, checkpoint: Path, *extra) -> tuple[str, Path]:
    """(the import's output, the model file) of `i2i models import checkpoint`."""
    out = tmp_path / f"{checkpoint.stem}-{len(list(tmp_path.glob('*.safetensors')))}.safetensors"
    code, output = run_cli("models", "import", checkpoint, "--out", out, *extra)
    assert code == 0, output
    return output, out


def ab_folder(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """The reference's aligned test layout: one A|B pair side by side (32 x 32 halves)."""
    left, right = pattern(32, 32, seed=1), np.ascontiguousarray(pattern(32, 32, seed=2)[::-1, ::-1])
    write_image(tmp_path / "test" / "pair.png", np.concatenate([left, right], axis=1))
    return tmp_path / "test", left, right


def assert_translates_right_half(tmp_path: Path, model: str | Path, *extra: str) -> None:
    """`i2i translate MODEL test/ out/ --ab-split` (no --direction) writes what the model makes of
    the right half (B), not of the left one."""
    import i2i

    src, left, right = ab_folder(tmp_path)
    out = tmp_path / "out"
    code, output = run_cli("translate", model, src, out, "--ab-split", "--eval", "--device", "cpu",
                           "--precision", "fp32", *extra)
    assert code == 0, output
    translator = i2i.load_model(model, device="cpu", precision="fp32", test_mode="eval")
    assert translator.direction == "BtoA"
    written = read_image(out / "pair.png").pixels.astype(int)
    from_right, from_left = translator(right).astype(int), translator(left).astype(int)
    assert np.abs(written - from_right).max() <= 1
    assert np.abs(written - from_left).max() > 10  # the halves give different outputs: the test can tell


# ----------------------------------------------------------------------------- i2i models import


def test_pix2pix_generator_imported_btoa_feeds_the_right_half(tmp_path):
    """The tester's case: facades label2photo's latest_net_G.pth, trained --direction BtoA."""
    checkpoint = reference_file(tmp_path / "facades_label2photo_pretrained" / "latest_net_G.pth", TINY_UNET)
    output, model = imported(tmp_path, checkpoint)
    assert "assumed: direction AtoB" in output and "--direction BtoA" in output  # says how to fix it

    output, model = imported(tmp_path, checkpoint, "--direction", "BtoA")
    assert output.splitlines()[-1] == f"wrote {model} (unet_32, BtoA)"
    spec = read_header(model).spec
    assert dict(spec.directions) == {"BtoA": "G"} and spec.default_direction == "BtoA"
    assert_translates_right_half(tmp_path, model)
    assert_translates_right_half(tmp_path / "asked", model, "--direction", "BtoA")  # no longer refused
    code, output = run_cli("translate", model, tmp_path / "test", tmp_path / "o", "--direction", "AtoB")
    assert code == 2 and "translates BtoA only" in output


@pytest.mark.parametrize("name, expected, evidence", [
    ("latest_net_G_B.pth", "BtoA", "inferred: direction BtoA (file name: CycleGAN's G_B"),
    ("200_net_G_A.pth", "AtoB", "inferred: direction AtoB (file name: CycleGAN's G_A"),
    ("latest_net_G.pth", "AtoB", "assumed: direction AtoB"),
    ("horse2zebra.pth", "AtoB", "assumed: direction AtoB"),
    ("latest_net_G_B.PTH", "BtoA", "inferred: direction BtoA (file name: CycleGAN's G_B"),  # any case
    ("latest_net_g_b.pth", "BtoA", "inferred: direction BtoA (file name: CycleGAN's G_B"),
    ("latest_net_G_B (1).pth", "BtoA", "inferred: direction BtoA (file name: CycleGAN's G_B"),  # a second copy
    ("latest_net_G_B-2.pth", "BtoA", "inferred: direction BtoA (file name: CycleGAN's G_B"),
    ("latest_net_G_B_old.pth", "AtoB", "assumed: direction AtoB"),  # another name: not the reference's
])
def test_direction_inferred_from_the_file_name(tmp_path, name, expected, evidence):
    arch = {"name": "resnet_6blocks", "norm": "instance", "width": 4}
    output, model = imported(tmp_path, reference_file(tmp_path / "run" / name, arch))
    assert evidence in output, output
    assert output.splitlines()[-1].endswith(f"(resnet_6blocks, {expected})")
    spec = read_header(model).spec
    assert dict(spec.directions) == {expected: "G"} and spec.default_direction == expected


@pytest.mark.parametrize("name, trained, expected", [
    ("latest_net_G.pth", "BtoA", "BtoA"),    # pix2pix trained BtoA: G translates B to A
    ("latest_net_G_A.pth", "BtoA", "BtoA"),  # CycleGAN trained BtoA reads A from the B side
    ("latest_net_G_B.pth", "BtoA", "AtoB"),  # ... so its G_B translates back, A to B
    ("latest_net_G_B.pth", "AtoB", "BtoA"),
    ("latest_net_G_B (1).pth", "BtoA", "AtoB"),  # a second copy of the file is still the run's
    ("LATEST_NET_G_B.PTH", "BtoA", "AtoB"),
])
def test_direction_from_the_runs_train_options(tmp_path, name, trained, expected):
    """The reference writes its options into the run's checkpoint folder (train_opt.txt)."""
    run = tmp_path / "checkpoints" / "facades_pix2pix"
    checkpoint = reference_file(run / name, TINY_UNET)
    (run / "train_opt.txt").write_text("----------------- Options ---------------\n"
                                       f"               direction: {trained:<30}\t[default: AtoB]\n"
                                       "                 netG: unet_256\n----------------- End -------------------\n")
    output, model = imported(tmp_path, checkpoint)
    assert f"inferred: direction {expected} (its run's train_opt.txt: direction {trained}" in output, output
    assert read_header(model).spec.default_direction == expected


def test_given_direction_wins_and_upscalers_have_none(tmp_path):
    arch = {"name": "resnet_6blocks", "norm": "instance", "width": 4}
    output, model = imported(tmp_path, reference_file(tmp_path / "latest_net_G_B.pth", arch), "--direction", "AtoB")
    assert not [line for line in output.splitlines() if line.startswith(("inferred: direction", "assumed: direction"))]
    assert output.splitlines()[-1].endswith("(resnet_6blocks, AtoB)")
    assert read_header(model).spec.default_direction == "AtoB"

    sr = reference_file(tmp_path / "net_g.pth", {"name": "srresnet", "width": 4, "num_blocks": 1, "scale": 2})
    output, model = imported(tmp_path, sr)
    assert output.splitlines()[-1] == f"wrote {model} (srresnet)"
    code, output = run_cli("models", "import", sr, "--out", tmp_path / "sr.safetensors", "--direction", "BtoA")
    assert code == 2 and output.count("\n") == 1 and "upscaler has no direction" in output, output
    assert not (tmp_path / "sr.safetensors").exists()


def test_a_run_folder_is_named_a_folder_with_its_generator_files(tmp_path):
    folder = tmp_path / "checkpoints" / "h2z"
    arch = {"name": "resnet_6blocks", "norm": "instance", "width": 4}
    for name in ("latest_net_G_B.pth", "latest_net_G_A.pth"):
        reference_file(folder / name, arch)
    torch.save({}, folder / "latest_net_D_A.pth")
    (folder / "train_opt.txt").write_text("direction: AtoB\n")
    code, output = run_cli("models", "import", folder, "--out", tmp_path / "x.safetensors")
    assert code == 1 and output.count("\n") == 1, output
    assert output == (f"error: {folder}: a folder, not a checkpoint file; give one of its *_net_G*.pth files "
                      "(latest_net_G_A.pth, latest_net_G_B.pth)\n")
    (tmp_path / "empty").mkdir()
    code, output = run_cli("models", "import", tmp_path / "empty", "--out", tmp_path / "x.safetensors")
    assert code == 1 and "a folder, not a checkpoint file" in output and "(it holds none)" in output
    assert "not found" not in output and not (tmp_path / "x.safetensors").exists()


# ----------------------------------------------------------------------------- the registry


PIX2PIX_DIRECTIONS = {  # the reference's README, docs/datasets.md and scripts (see i2i.zoo)
    "edges2shoes": "AtoB", "sat2map-pix2pix": "AtoB", "map2sat-pix2pix": "BtoA",
    "facades_label2photo-pix2pix": "BtoA", "day2night": "BtoA"}


def test_shipped_rows_carry_the_direction_each_model_was_trained_in():
    from i2i.spec import ModelSpec

    rows = zoo.registry(zoo.REGISTRY_FILE)
    for entry in rows.values():
        if entry.format != "pth" or entry.spec.get("pipeline") not in ("pix2pix", "cyclegan"):
            continue
        spec = ModelSpec.from_dict(entry.spec)
        # pix2pix: as trained; CycleGAN: each published file is one generator (horse2zebra's G_A;
        # zebra2horse is a file of its own), run on a single folder by the reference's --model test
        expected = PIX2PIX_DIRECTIONS[entry.name] if entry.spec["pipeline"] == "pix2pix" else "AtoB"
        assert (dict(spec.directions), spec.default_direction) == ({expected: "G"}, expected), entry.name
    assert set(PIX2PIX_DIRECTIONS) <= set(rows)


@pytest.mark.parametrize("name", ["facades_label2photo-pix2pix", "map2sat-pix2pix"])
def test_converted_btoa_row_feeds_the_right_half(tmp_path, name):
    """zoo.convert_checkpoint with the shipped row (a tiny U-Net for its unet_256): the model file
    says BtoA, and translating A|B pairs reads the right half by default."""
    entry = dataclasses.replace(zoo.registry(zoo.REGISTRY_FILE)[name], arch=TINY_UNET)
    model = tmp_path / f"{name}.safetensors"
    zoo.convert_checkpoint(reference_file(tmp_path / "download.pth", TINY_UNET), model, entry)
    spec = read_header(model).spec
    assert (dict(spec.directions), spec.default_direction, spec.test_mode) == ({"BtoA": "G"}, "BtoA", "train")
    assert_translates_right_half(tmp_path, model)


def test_translate_by_name_pulls_a_btoa_row_and_feeds_the_right_half(tmp_path, monkeypatch):
    """End to end, by name, as the tester ran `i2i translate facades_label2photo-pix2pix test/ out/
    --ab-split`: the shipped row's spec, a tiny U-Net served by a local server."""
    from test_download import Server

    server = Server()
    try:
        buffer = io.BytesIO()
        torch.save(torch.load(reference_file(tmp_path / "g.pth", TINY_UNET), weights_only=True), buffer)
        server.files["/facades_label2photo.pth"] = buffer.getvalue()
        row = {**json.loads((zoo.REGISTRY_FILE).read_text())["facades_label2photo-pix2pix"],
               "url": server.url("/facades_label2photo.pth"), "arch": TINY_UNET}
        registry = tmp_path / "reg" / "registry.json"
        registry.parent.mkdir()
        registry.write_text(json.dumps({"tiny_label2photo": row}))
        monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("I2I_REGISTRY", str(registry))
        monkeypatch.delenv("I2I_MIRROR", raising=False)
        assert_translates_right_half(tmp_path, "tiny_label2photo")
    finally:
        server.stop()


@pytest.mark.parametrize("spec, problem", [
    ({"pipeline": "pix2pix", "directions": {"BtoA": "G_B"}, "default_direction": "BtoA"}, 'name the one network, "G"'),
    ({"pipeline": "pix2pix", "default_direction": "BtoA"}, "default direction 'BtoA' is not one of its directions"),
])
def test_a_pth_row_with_a_direction_the_conversion_cannot_make_is_refused_when_read(tmp_path, spec, problem):
    """Found when the registry is read, not after a 200 MB download."""
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"bad": {"format": "pth", "url": "http://x/b.pth", "arch": TINY_UNET,
                                            "spec": spec}}))
    with pytest.raises(I2IError, match="'bad'") as caught:
        zoo.registry(registry)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
