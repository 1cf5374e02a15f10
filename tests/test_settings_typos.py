"""Settings as a new user types them: a near miss gets the setting it may mean, and the flag's
spelling (`max-steps`) is read the same from a YAML file and from a Python mapping."""
from __future__ import annotations

import pytest

import i2i
from i2i.errors import UsageError
from i2i.training import make_settings


def test_a_misspelt_setting_suggests_the_close_one():
    with pytest.raises(UsageError, match=r"^unknown setting: max_step \(did you mean max_steps\?\)$"):
        i2i.train("pix2pix", {"max_step": 1, "data": "unused", "out": "unused"})
    with pytest.raises(UsageError, match=r"^unknown settings: lamda_L1 \(did you mean lambda_L1\?\), zzz$"):
        make_settings("pix2pix", {"lamda_L1": 3, "zzz": 1})


def test_a_misspelt_setting_in_a_file_names_the_file_and_the_close_one(tmp_path):
    settings = tmp_path / "run.yaml"
    settings.write_text("batchsize: 4\n")
    with pytest.raises(UsageError, match=rf"unknown setting in {settings}: batchsize \(did you mean batch_size\?\)"):
        make_settings("pix2pix", config_file=settings)


def test_dashed_names_read_the_same_from_a_mapping_and_a_file(tmp_path):
    settings = tmp_path / "run.yaml"
    settings.write_text("max-steps: 7\nn-layers-D: 2\n")
    from_file = make_settings("pix2pix", config_file=settings)
    from_mapping = make_settings("pix2pix", {"max-steps": 7, "n-layers-D": 2})
    assert from_file == from_mapping
    assert (from_mapping[0].max_steps, from_mapping[1].n_layers_D) == (7, 2)


def test_both_spellings_of_one_setting_are_one_line_not_a_silent_choice(tmp_path):
    with pytest.raises(UsageError, match="^'max-steps' and 'max_steps' are the same setting; give it once$"):
        make_settings("pix2pix", {"max-steps": 1, "max_steps": 2})
    settings = tmp_path / "run.yaml"
    settings.write_text("max_steps: 1\nmax-steps: 2\n")
    with pytest.raises(UsageError, match=rf"^{settings}: 'max_steps' and 'max-steps' are the same setting"):
        make_settings("pix2pix", config_file=settings)
