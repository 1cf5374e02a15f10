"""A BasicSR / Real-ESRGAN user training with i2i: their folders (DIV2K's, LMDB), their option
names (flags, --config keys, Real-ESRGAN's degradation block) and their resume habits get i2i's
equivalent in one line, or just work, instead of silent wrong data or look-alike suggestions."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from conftest import noise, save
from test_reference_option_names import command
from i2i.cli import main
from i2i.data.datasets import SRDataset, pair_lr_files, sr_folders
from i2i.data.degradations import KERNELS, RealESRGANSettings, settings_from_mapping
from i2i.data.io import list_images
from i2i.errors import UsageError
from i2i.reference_options import reference_hint

# Real-ESRGAN's train_realesrgan_x4plus.yml degradation block, as its users paste it
PUBLISHED = {
    "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5], "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4, "jpeg_range": [30, 95],
    "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3], "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25], "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95],
    "blur_kernel_size": 21, "kernel_list": list(KERNELS), "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1, "blur_sigma": [0.2, 3], "betag_range": [0.5, 4], "betap_range": [1, 2],
    "blur_kernel_size2": 21, "kernel_list2": list(KERNELS), "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5], "betag_range2": [0.5, 4], "betap_range2": [1, 2],
    "final_sinc_prob": 0.8,
}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def div2k(root: Path, scales: tuple[int, ...] = (2, 4), size: tuple[int, int] = (52, 48)) -> Path:
    """DIV2K's layout: DIV2K_train_HR/0001.png, DIV2K_train_LR_bicubic/X4/0001x4.png."""
    for name in ("0001", "0002"):
        save(root / "DIV2K_train_HR" / f"{name}.png", noise(size[1], size[0]))
        for s in scales:
            save(root / "DIV2K_train_LR_bicubic" / f"X{s}" / f"{name}x{s}.png", noise(size[1] // s, size[0] // s))
    return root


# ----------------------------------------------------------------------------- folders


def test_a_div2k_root_is_refused_not_read_with_its_lr_images_as_hr(tmp_path):
    """--data DIV2K/ read every image below it, the X2 LR images (as large as a patch) among the
    HR ones, and trained on them silently; now one line names the folders to give."""
    root = div2k(tmp_path / "DIV2K")
    with pytest.raises(UsageError) as error:
        sr_folders(root, 4)
    message = str(error.value)
    assert "DIV2K_train_LR_bicubic" in message and f"{root / 'DIV2K_train_HR'}" in message
    assert f"--lr-data {root / 'DIV2K_train_LR_bicubic' / 'X4'}" in message
    assert "--lr " in str(pytest.raises(UsageError, sr_folders, root, 4, lr_flag="--lr").value)
    # the folders it names train: HR with its LR, and an HR folder alone (bicubic LR)
    hr, lr = sr_folders(root / "DIV2K_train_HR", 4, root / "DIV2K_train_LR_bicubic" / "X4")
    assert len(SRDataset(hr, 4, 48, lr).items) == 2
    assert sr_folders(root / "DIV2K_train_HR", 4) == (root / "DIV2K_train_HR", None)


def test_an_lr_folder_given_above_its_scale_folders_takes_the_scales(tmp_path):
    """--lr-data DIV2K_train_LR_bicubic (not .../X4) matched X2/0001x2 against HR 0001: 16 unmatched."""
    root = div2k(tmp_path / "DIV2K")
    lr = root / "DIV2K_train_LR_bicubic"
    assert sr_folders(root / "DIV2K_train_HR", 4, lr) == (root / "DIV2K_train_HR", lr / "X4")
    assert sr_folders(root / "DIV2K_train_HR", 2, lr / "X2") == (root / "DIV2K_train_HR", lr / "X2")


def test_an_lr_folder_of_another_scale_says_which_scale_its_names_carry(tmp_path):
    root = div2k(tmp_path / "DIV2K")
    hr, x2 = root / "DIV2K_train_HR", root / "DIV2K_train_LR_bicubic" / "X2"
    with pytest.raises(UsageError, match=r"their names say x2: these are the LR images of scale 2, not 4$"):
        pair_lr_files(hr, list_images(hr), x2, list_images(x2), 4)
    assert len(pair_lr_files(hr, list_images(hr), x2, list_images(x2), 2)) == 2


def test_an_lmdb_folder_says_lmdb_is_not_read(tmp_path):
    lmdb = tmp_path / "DIV2K_train_HR_sub.lmdb"
    lmdb.mkdir()
    (lmdb / "data.mdb").write_bytes(b"\0" * 64)
    (lmdb / "meta_info.txt").write_text("0001_s001.png (480,480,3) 1\n")
    with pytest.raises(UsageError, match=r"LMDB database, BasicSR's io_backend: lmdb, which i2i does not read"):
        SRDataset(lmdb, 4, 48)
    hr = div2k(tmp_path / "DIV2K") / "DIV2K_train_HR"
    with pytest.raises(UsageError, match=r"LMDB database"):
        SRDataset(hr, 4, 48, lmdb)


def test_hr_images_all_smaller_than_the_patch_name_the_flag(tmp_path):
    save(tmp_path / "hr" / "a.png", noise(40, 44))
    with pytest.raises(UsageError, match=r"at least 96x96 pixels \(the HR patch: give a smaller --image-size\)$"):
        SRDataset(tmp_path / "hr", 4, 96)


def test_realesrgan_with_an_hr_lr_layout_reads_the_hr_only_and_says_so(tmp_path):
    """The LR folder was read, checked, then unused (and its files were the 'clean' LR of
    clean_prob); --lr-data is refused with realesrgan, and a layout's LR/ is now left out aloud."""
    from i2i.pipelines.srgan import SRGAN
    from i2i.training.settings import make_settings

    for name in ("a", "b"):
        save(tmp_path / "HR" / f"{name}.png", noise(48, 48))
        save(tmp_path / "LR" / f"{name}.png", noise(12, 12))
    config, options = make_settings("srgan", {"data": str(tmp_path), "out": str(tmp_path / "run"),
                                              "degradation": "realesrgan", "image_size": 48})
    SRGAN.resolve(options, config, quiet=True)
    dataset = SRGAN.build_dataset(options, config)
    assert dataset.lr_root is None and dataset.roots == [tmp_path / "HR"]
    assert len(dataset.notes) == 1 and "LR/ is not read" in dataset.notes[0]


def test_eval_scores_a_folder_of_hr_images_whatever_lr_folder_lies_below(tmp_path):
    """eval reads DATA's own images only: an LR/ below them is no DIV2K root (the refusal meant
    for training, which lists folders recursively, refused this valid folder)."""
    for name in ("im0", "im1"):
        save(tmp_path / "hr" / f"{name}.png", noise(24, 24))
    save(tmp_path / "hr" / "LR" / "im0x2.png", noise(12, 12))
    code, output = run("eval", "bicubic", str(tmp_path / "hr"), "--scale", "2")
    assert code == 0 and "mean (2)" in output, output
    with pytest.raises(UsageError, match=r"LR folders \(LR\) below its images.*move .*LR/ out of it"):
        sr_folders(tmp_path / "hr", 2)  # training would read im0x2 as an HR image: said, without a made-up path


def test_realesrgan_neither_looks_into_lr_nor_offers_lr_data(tmp_path):
    """--degradation realesrgan reads no LR: an LR/ without this scale's X<s>/ is no reason to
    refuse it, and a DIV2K root's message must not offer --lr-data, which realesrgan refuses."""
    from i2i.pipelines.srgan import SRGAN
    from i2i.training.settings import make_settings

    for name in ("a", "b"):
        save(tmp_path / "d" / "HR" / f"{name}.png", noise(48, 48))
        save(tmp_path / "d" / "LR" / "X2" / f"{name}x2.png", noise(24, 24))
    config, options = make_settings("srgan", {"data": str(tmp_path / "d"), "out": str(tmp_path / "run"),
                                              "degradation": "realesrgan", "image_size": 48, "scale": 4})
    SRGAN.resolve(options, config, quiet=True)
    assert SRGAN.build_dataset(options, config).roots == [tmp_path / "d" / "HR"]
    root = div2k(tmp_path / "DIV2K")
    config, options = make_settings("srgan", {"data": str(root), "out": str(tmp_path / "run2"),
                                              "degradation": "realesrgan", "image_size": 48})
    SRGAN.resolve(options, config, quiet=True)
    with pytest.raises(UsageError) as error:
        SRGAN.build_dataset(options, config)
    assert "DIV2K_train_HR" in str(error.value) and "--lr-data" not in str(error.value)


# ----------------------------------------------------------------------------- degradation names


def test_real_esrgan_degradation_names_are_read_as_i2is():
    """Its published block, pasted as it is, is the published recipe i2i has as its default."""
    from i2i.data.degradations import from_realesrgan_names

    assert settings_from_mapping(PUBLISHED) == RealESRGANSettings()
    mapping, renamed = from_realesrgan_names({"blur_sigma2": [0.2, 1.0], "jpeg_range": [50, 90]})
    assert mapping == {"blur2": {"sigma": [0.2, 1.0]}, "round1": {"jpeg_range": [50, 90]}}
    assert renamed == ["blur_sigma2 -> blur2.sigma", "jpeg_range -> round1.jpeg_range"]
    settings = settings_from_mapping({"betag_range2": [0.6, 3], "noise_range2": [1, 10], "clean_prob": 0.2})
    assert settings.blur2.beta_gaussian == (0.6, 3) and settings.round2.noise_range == (1, 10)
    # i2i's own names pass through as they were
    assert from_realesrgan_names({"round2": {"jpeg_range": [50, 95]}}) == ({"round2": {"jpeg_range": [50, 95]}}, [])


def test_a_kernel_list_in_another_order_carries_its_probabilities():
    settings = settings_from_mapping({"kernel_list": ["plateau_aniso", "iso"], "kernel_prob": [0.25, 0.75]})
    assert settings.blur1.kernel_prob == (0.75, 0, 0, 0, 0, 0.25)


@pytest.mark.parametrize("values, says", [
    ({"blur_kernel_size": 15}, "i2i's kernels are 21 taps at most"),
    ({"jpeg_range": [30, 95], "round1": {"jpeg_range": [40, 90]}}, "are the same setting; give one"),
    ({"kernel_list": ["iso", "box"], "kernel_prob": [0.5, 0.5]}, "must be a list of kernel names"),
    ({"kernel_list": ["iso"]}, "needs its kernel_prob beside it"),
    ({"blur_sigm": [0.2, 3]}, "did you mean blur_sigma"),
])
def test_real_esrgan_names_used_wrong_are_one_line(values, says):
    with pytest.raises(UsageError, match=re.escape(says)):
        settings_from_mapping(values)


def test_a_run_records_i2is_names_and_says_how_it_read_real_esrgans(tmp_path, capsys):
    from i2i.pipelines.srgan import SRGAN
    from i2i.training.settings import make_settings

    config, options = make_settings("srgan", {"data": str(tmp_path), "out": str(tmp_path / "run"),
                                              "degradation": "realesrgan",
                                              "degradation_settings": "{blur_sigma: [0.2, 2], jpeg_range2: [60, 95]}"})
    SRGAN.resolve(options, config)
    assert options.degradation_settings == {"blur1": {"sigma": [0.2, 2]}, "round2": {"jpeg_range": [60, 95]},
                                            "usm_weight": 0.5}
    assert "blur_sigma -> blur1.sigma; jpeg_range2 -> round2.jpeg_range" in capsys.readouterr().err


# ----------------------------------------------------------------------------- option names


@pytest.mark.parametrize("args, line", [
    (["train", "srgan", "--gt_size", "128"],
     "Error: No such option '--gt_size'. (BasicSR's --gt_size is --image-size here: the HR patch)"),
    (["train", "srgan", "--use_hflip"], "Error: No such option '--use_hflip'. (BasicSR's --use_hflip is "
     "--augment flip here: with use_rot too, --augment dihedral, the default)"),
    (["train", "srgan", "--total_iter", "5"], "Error: No such option '--total_iter'. (BasicSR's --total_iter is "
     "--max-steps here)"),
    (["eval", "m", "d", "--crop_border", "4"], "Error: No such option '--crop_border'. (BasicSR's --crop_border has "
     "no equivalent here: i2i eval crops the scale's border, as BasicSR's crop_border: scale)"),
    (["eval", "m", "d", "--dataroot_lq", "x"], "Error: No such option '--dataroot_lq'. (BasicSR's --dataroot_lq is "
     "--lr here)"),
])
def test_a_basicsr_option_name_gets_the_equivalent(args, line):
    code, output = run(*args)
    assert code == 2 and output.splitlines()[-1] == line, output


def test_basicsr_keys_in_a_settings_file_name_i2is(tmp_path):
    """Before: gt_size (did you mean batch_size, ...?), use_hflip (did you mean no_flip?)."""
    from i2i.reference_options import basicsr_setting_hint
    from i2i.training.settings import make_settings

    path = tmp_path / "bsr.yaml"
    path.write_text("gt_size: 48\nuse_hflip: true\ntotal_iter: 3\n")
    with pytest.raises(UsageError) as error:
        make_settings("srgan", {"out": str(tmp_path / "run")}, config_file=path)
    assert str(error.value) == (
        f"unknown settings in {path}: BasicSR's gt_size is image_size here: the HR patch; BasicSR's use_hflip is "
        "augment flip here: with use_rot too, augment dihedral, the default; BasicSR's total_iter is max_steps here")
    path.write_text("datasets:\n  train:\n    gt_size: 48\nnetwork_g:\n  num_feat: 8\n")
    with pytest.raises(UsageError, match=r"BasicSR's datasets, network_g have no equivalent here: i2i's settings "
                                         r"are flat"):
        make_settings("srgan", {"out": str(tmp_path / "run")}, config_file=path)
    assert basicsr_setting_hint("gt_size", "train cyclegan") == ""  # not BasicSR's there


def test_the_basicsr_table_names_only_what_each_command_has():
    """Every flag a BasicSR entry names is an option of its command; no entry is for an option
    the command has (Click would never report it); "the X argument" is one of its arguments."""
    from i2i.reference_options import BASICSR_COMMANDS, BASICSR_OPTIONS

    checked = 0
    for flag, entry in BASICSR_OPTIONS.items():
        for path in BASICSR_COMMANDS:
            value = entry.get(path) or entry.get(path.split()[0], "")
            if not value:
                continue
            params = command(path).params
            options = {opt for p in params if isinstance(p, click.Option) for opt in [*p.opts, *p.secondary_opts]}
            arguments = {p.name.upper() for p in params if isinstance(p, click.Argument)}
            assert flag not in options and flag.replace("_", "-") not in options, (flag, path)
            for name in re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", value):
                assert name in options, (flag, path, name)
            for argument in re.findall(r"the (\w+) argument", value):
                assert argument in arguments, (flag, path, argument)
            assert reference_hint(flag, path).startswith(f"BasicSR's {flag} "), (flag, path)
            checked += 1
    assert checked > 50


# ----------------------------------------------------------------------------- resume


def test_a_resume_does_not_need_the_pretrained_file_any_more(tmp_path):
    """BasicSR resumes from its training state whatever became of pretrain_network_g; a run
    started from --pretrained once failed to resume when that file had been moved."""
    import i2i

    for name in ("a", "b"):
        save(tmp_path / "hr" / f"{name}.png", noise(24, 24))
    small = {"data": str(tmp_path / "hr"), "width": 4, "num_blocks": 1, "image_size": 16, "batch_size": 1,
             "num_workers": 0, "threads": 1, "max_steps": 1, "precision": "fp32", "channels_last": "off"}
    first = i2i.train("srgan", {**small, "out": str(tmp_path / "first")})
    i2i.train("srgan", {**small, "out": str(tmp_path / "second"), "pretrained": str(first / "model.safetensors")})
    moved = tmp_path / "moved.safetensors"
    (first / "model.safetensors").rename(moved)
    run = i2i.train("srgan", {"out": str(tmp_path / "second"), "max_steps": 2}, resume=True)
    assert (run / "checkpoints" / "step_2.pt").is_file()
    with pytest.raises(Exception, match="not found"):  # a new run still needs it
        i2i.train("srgan", {**small, "out": str(tmp_path / "third"), "pretrained": str(first / "model.safetensors")})
