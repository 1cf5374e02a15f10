"""A mistyped name gets "did you mean" everywhere, from one helper (i2i.errors.did_you_mean):
subcommands of every group, dataset names, model names in `i2i serve` and `i2i translate`."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.errors import did_you_mean


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """A local registry ($I2I_REGISTRY) with one made-up name, run from an empty folder."""
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"tinynet-x2": {"url": "http://127.0.0.1:9/tiny.safetensors"}}))
    monkeypatch.setenv("I2I_REGISTRY", str(path))
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return path


def test_the_helper():
    assert did_you_mean("pix2px", ["cyclegan", "pix2pix", "srgan"]) == "did you mean pix2pix?"
    assert did_you_mean("facades", ["horse2zebra", "facades-cyclegan", "facades-pix2pix"]) == \
        "did you mean facades-pix2pix, facades-cyclegan?"  # prefixes, the closest first
    assert did_you_mean("srresnet_x4", ["srresnet-x4-realworld", "srresnet-x4"]) == \
        "did you mean srresnet-x4, srresnet-x4-realworld?"  # `_` is `-`, an exact one first
    assert did_you_mean("div2k", ["DIV2K", "Flickr2K"]) == "did you mean DIV2K?"  # case does not matter
    assert did_you_mean("nope", ["train", "eval"]) == ""
    assert did_you_mean("", ["train"]) == ""
    assert did_you_mean("a", [f"a{i}" for i in range(9)], limit=2).count(",") == 1


@pytest.mark.parametrize("args, line", [
    (["trian"], "Error: No such command 'trian'. Did you mean train?"),
    (["train", "pix2px"], "Error: No such command 'pix2px'. Did you mean pix2pix?"),  # made on demand
    (["data", "downlod"], "Error: No such command 'downlod'. Did you mean download?"),
    (["models", "lst"], "Error: No such command 'lst'. Did you mean list?"),
    (["bench", "trian"], "Error: No such command 'trian'. Did you mean train?"),
    (["eval", "bicubc", "hr/", "--scale", "4"], "Error: No such command 'bicubc'. Did you mean bicubic?"),
    (["data", "frobnicate"], "Error: No such command 'frobnicate'."),  # nothing close: nothing said
])
def test_subcommands_suggest(registry, args, line):
    code, output = run(*args)
    assert code == 2 and output.splitlines()[-1] == line, output


def test_every_group_suggests(registry):
    """Each group, with one of its subcommands missing its last letter."""
    groups = [cmd for cmd in main.commands.values() if isinstance(cmd, click.Group)]
    assert {"data", "train", "eval", "bench", "models"} <= {group.name for group in groups}
    for group in groups:
        with click.Context(group) as ctx:
            names = [n for n in group.list_commands(ctx) if not group.commands.get(n, main).hidden]
        typo = names[0][:-1]
        assert typo not in names
        code, output = run(group.name, typo, "x")
        assert code == 2 and output.splitlines()[-1].startswith(
            f"Error: No such command '{typo}'. Did you mean {names[0]}"), output


def test_an_eval_model_name_close_to_a_subcommand_is_still_a_model(registry, tmp_path):
    (tmp_path / "bicubc").mkdir()  # a folder of that name: the model, not a typo of `bicubic`
    code, output = run("eval", "bicubc", "hr/")
    assert code == 1 and "bicubc: no model.safetensors in this folder" in output


def test_dataset_names_suggest_and_keep_the_list(registry):
    code, output = run("data", "download", "facades")
    assert code == 2 and output.count("\n") == 1, output
    assert output.startswith("error: unknown dataset 'facades'; did you mean facades-pix2pix, facades-cyclegan? "
                             "known: apple2orange, ")
    assert output.rstrip().endswith("Flickr2K, cityscapes")
    code, output = run("data", "download", "nope")  # nothing close: the list, as before
    assert code == 2 and output.startswith("error: unknown dataset 'nope'; known: apple2orange, ")


def test_serve_model_names_suggest(registry):
    pytest.importorskip("starlette", reason='the serve extra is not installed: pip install -e ".[serve]"')
    pytest.importorskip("uvicorn", reason='the serve extra is not installed: pip install -e ".[serve]"')
    code, output = run("serve", "--models", "tinynet_x2", "--device", "cpu")
    assert code == 1 and output == ("error: tinynet_x2: no such model file or folder, nor a known model name "
                                    "(did you mean tinynet-x2?)\n")
    code, output = run("serve", "--models", "zzqqzzqq", "--device", "cpu")  # nothing close: the names
    assert code == 1 and "(known: " in output and "tinynet-x2" in output and output.count("\n") == 1


def test_translate_model_names_suggest_the_same_way(registry, tmp_path):
    (tmp_path / "in").mkdir()
    code, output = run("translate", "tinynet_x2", "in", "out")
    assert code == 1 and output == ("error: 'tinynet_x2' is neither a model file, a run folder nor a known model "
                                    "(did you mean tinynet-x2?)\n")


def test_settings_names_and_options_suggest_too(tmp_path):
    """Mistyped keys of a degradation settings file, a --diffaug op, a network option and a
    choice all name the close one."""
    import i2i.nn
    from i2i.data.degradations import settings_from_mapping
    from i2i.data.diffaugment import parse_policy
    from i2i.errors import UsageError

    with pytest.raises(UsageError, match="unknown setting 'round1.jpeg_rnage' \\(did you mean jpeg_range\\?"):
        settings_from_mapping({"round1": {"jpeg_rnage": [40, 95]}})
    with pytest.raises(UsageError, match="unknown diffaug op 'cutuot'; did you mean cutout\\?"):
        parse_policy("color,cutuot")
    with pytest.raises(UsageError, match="has no option 'num_block'; did you mean num_blocks"):
        i2i.nn.create("srresnet", num_block=4)
    with pytest.raises(UsageError, match="did you mean instance"):
        i2i.nn.create("resnet_6blocks", norm="instanse")
