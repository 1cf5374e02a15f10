"""An option name of the reference CycleGAN/pix2pix code (or of Real-ESRGAN's inference script)
gets i2i's equivalent, from one table (i2i.reference_options), not Click's look-alikes
(--ngf: --ndf, the discriminator's width; --output_nc: --out, the run folder). The table is
checked against the commands' real options, so it cannot name one that is gone."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from i2i.cli import main
from i2i.reference_options import COMMANDS, SOURCES, reference_hint


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def command(path: str) -> click.Command:
    """The command `path` ("train cyclegan") names below `i2i`."""
    found: click.Command = main
    with click.Context(main) as ctx:
        for name in path.split():
            found = found.get_command(ctx, name)
    return found


@pytest.mark.parametrize("args, line", [
    (["train", "cyclegan", "--ngf", "8"], "Error: No such option '--ngf'. (the reference's --ngf is --width here)"),
    (["train", "pix2pix", "--crop_size", "128"],
     "Error: No such option '--crop_size'. (the reference's --crop_size is --image-size here)"),
    (["train", "cyclegan", "--crop-size", "128"],  # its name hyphenated: still the reference's
     "Error: No such option '--crop-size'. (the reference's --crop-size is --image-size here)"),
    (["train", "cyclegan", "--output_nc", "1"],
     "Error: No such option '--output_nc'. (the reference's --output_nc is --out-channels here)"),
    (["train", "pix2pix", "--input_nc", "1"],
     "Error: No such option '--input_nc'. (the reference's --input_nc is --in-channels here)"),
    (["train", "cyclegan", "--epoch_count", "5"],
     "Error: No such option '--epoch_count'. (the reference's --epoch_count has no equivalent here: "
     "--resume continues a run from its last checkpoint)"),
    (["train", "pix2pix", "--continue_train"],
     "Error: No such option '--continue_train'. (the reference's --continue_train is --resume here)"),
    (["train", "cyclegan", "--name", "h2z"],
     "Error: No such option '--name'. (the reference's --name is --out here: the run folder, "
     "the reference's checkpoints_dir/name)"),
    (["train", "pix2pix", "--max_dataset_size", "100"],
     "Error: No such option '--max_dataset_size'. (the reference's --max_dataset_size has no equivalent here: "
     "give --data a folder of just the images to use)"),
    (["train", "cyclegan", "--gpu_ids", "0"],
     "Error: No such option '--gpu_ids'. (the reference's --gpu_ids is --device here: cuda:N, or cpu; "
     "several GPUs: run under torchrun)"),
    (["train", "cyclegan", "--pool_size", "0"],
     "Error: No such option '--pool_size'. (the reference's --pool_size is --pool-size here)"),
    (["train", "pix2pix", "--pool_size", "0"],  # a pipeline's own entry
     "Error: No such option '--pool_size'. (the reference's --pool_size has no equivalent here: "
     "pix2pix keeps no image pool, as the reference's (size 0))"),
    (["translate", "m", "in", "out", "--results_dir", "r"],
     "Error: No such option '--results_dir'. (the reference's --results_dir is the OUTPUT argument here)"),
    (["translate", "m", "in", "out", "--ngf", "64"],
     "Error: No such option '--ngf'. (the reference's --ngf has no equivalent here: "
     "the model file records the networks' settings)"),
    (["translate", "m", "in", "out", "--num_test", "5"],
     "Error: No such option '--num_test'. (the reference's --num_test has no equivalent here: "
     "every image in INPUT is translated)"),
    (["translate", "-n", "RealESRGAN_x4plus", "in", "out"],
     "Error: No such option '-n'. (Real-ESRGAN's -n is the MODEL argument here)"),
    (["translate", "m", "in", "out", "-s", "2"], "Error: No such option '-s'. (Real-ESRGAN's -s is --outscale here)"),
    (["translate", "m", "in", "out", "--fp32"],
     "Error: No such option '--fp32'. (Real-ESRGAN's --fp32 is --precision fp32 here)"),
    (["translate", "m", "in", "out", "-dn", "0.5"],  # Click reads -dn as -d -n, and reports -d
     "Error: No such option '-d'. (Real-ESRGAN's -dn (read as -d) has no equivalent here: i2i runs the model "
     "as it is; realesr-general-x4v3 is Real-ESRGAN's denoise strength 1)"),
    (["translate", "m", "in", "out", "--denoise_strength", "0.5"],
     "Error: No such option '--denoise_strength'. (Real-ESRGAN's --denoise_strength has no equivalent here: "
     "i2i runs the model as it is; realesr-general-x4v3 is Real-ESRGAN's denoise strength 1)"),
    (["translate", "m", "in", "out", "--model_suffix", "_A"],  # right for a run trained BtoA too
     "Error: No such option '--model_suffix'. (the reference's --model_suffix is --direction here: it picks the "
     "generator by the way it translates, not by its name; in a run trained with --direction BtoA, G_A "
     "translates B to A and G_B A to B)"),
])
def test_a_reference_name_gets_the_equivalent(args, line):
    code, output = run(*args)
    assert code == 2 and output.splitlines()[-1] == line, output


@pytest.mark.parametrize("args, close", [
    (["train", "cyclegan", "--lamda-A", "5"], "--lambda-A"),  # not a reference name: Click's look-alikes
    (["train", "srgan", "--ngf", "8"], "--ndf"),  # not one of the reference's models
    (["translate", "m", "in", "out", "--tile-pda", "8"], "--tile-pad"),
])
def test_other_names_keep_the_look_alikes(args, close):
    code, output = run(*args)
    last = output.splitlines()[-1]
    assert code == 2 and close in last and "reference" not in last and "Real-ESRGAN" not in last, output


def test_the_model_suffix_hint_agrees_with_how_an_import_reads_the_run(tmp_path):
    """What the hint says of a run trained BtoA is what `i2i models import` infers for its files."""
    from i2i.importers import _direction_of

    assert "G_A translates B to A and G_B A to B" in reference_hint("--model_suffix", "translate")
    (tmp_path / "train_opt.txt").write_text("direction: BtoA\n")
    assert _direction_of(tmp_path / "latest_net_G_A.pth", []) == "BtoA"
    assert _direction_of(tmp_path / "latest_net_G_B.pth", []) == "AtoB"


def test_a_reference_name_another_command_has_no_entry_for_keeps_the_look_alikes():
    code, output = run("train", "cyclegan", "--results_dir", "r")  # test.py's, not train.py's
    assert code == 2 and output.splitlines()[-1] == "Error: No such option '--results_dir'.", output


def _entries() -> list[tuple[str, str, str, str]]:
    """(whose, reference flag, i2i command, table value) for every command an entry applies to."""
    return [(whose, flag, path, value) for whose, table in SOURCES for flag, entry in table.items()
            for path in COMMANDS if (value := entry.get(path) or entry.get(path.split()[0], ""))]


def test_the_table_names_only_what_each_command_has():
    """Every option the table names is a shown option of the command (with a valid choice
    right after it), every "the X argument" one of its arguments; and no entry is for an
    option the command has (Click would never report it)."""
    entries = _entries()
    assert len(entries) > 100
    for whose, flag, path, value in entries:
        params = command(path).params
        options = {opt: p for p in params if isinstance(p, click.Option) and not p.hidden
                   for opt in [*p.opts, *p.secondary_opts]}
        taken = {opt for p in params for opt in [*p.opts, *p.secondary_opts]}
        arguments = {p.name.upper() for p in params if isinstance(p, click.Argument)}
        assert flag not in taken, (flag, path)
        for name, after in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)(?: ([\w]+))?", value):
            assert name in options, (flag, path, name)
            choices = getattr(options[name].type, "choices", None)
            if choices and after and value.startswith(name):
                assert after in choices, (flag, path, name, after)
        for argument in re.findall(r"the (\w+) argument", value):
            assert argument in arguments, (flag, path, argument)


def test_the_table_is_well_formed():
    """Scopes are "train", "translate" or one command; no flag is two sources' in one command."""
    for _, table in SOURCES:
        for flag, entry in table.items():
            assert flag.startswith("-") and entry, flag
            assert set(entry) <= {"train", "translate", *COMMANDS}, flag
    for path in COMMANDS:
        flags = [flag.replace("_", "-") for _, flag, at, _ in _entries() if at == path]
        assert len(flags) == len(set(flags)), path
    assert reference_hint("--ngf", "train srgan") == ""  # not the reference's model


@pytest.mark.parametrize("args", [["--ext", "auto"], ["--ext=auto"]])
def test_a_reference_value_of_an_option_i2i_has_gets_the_equivalent(args):
    """Real-ESRGAN's --ext auto (keep the input's extension) is i2i's --ext same: Click's refusal
    of the value names it, as an unknown option name gets its equivalent."""
    code, output = run("translate", "m", "in", "out", *args)
    assert code == 2 and output.splitlines()[-1] == (
        "Error: Invalid value for '--ext': 'auto' is not one of 'png', 'jpg', 'same'. "
        "(Real-ESRGAN's --ext auto is --ext same here: each output keeps its input's extension)"), output
    code, output = run("translate", "m", "in", "out", "--ext", "gif")  # no one's value: Click's line alone
    assert code == 2 and output.splitlines()[-1] == (
        "Error: Invalid value for '--ext': 'gif' is not one of 'png', 'jpg', 'same'."), output


def test_every_value_entry_is_a_value_its_option_refuses_and_names():
    """An entry for an option and a value ("--ext auto") is for an option the command has, a
    value it refuses, and the refusal names the entry's equivalent (the option's type looks it up)."""
    values = [entry for entry in _entries() if " " in entry[1]]
    assert values
    for whose, flag, path, _ in values:
        name, refused = flag.split(" ")
        option = next(p for p in command(path).params if name in p.opts)
        assert refused not in option.type.choices, (flag, path)
        arguments = ["m", "in", "out"] if path == "translate" else []
        code, output = run(*path.split(), *arguments, name, refused)
        hint = reference_hint(flag, path)
        assert hint.startswith(f"{whose} {flag} is "), (flag, hint)
        assert code == 2 and output.splitlines()[-1].endswith(f" ({hint})"), output
