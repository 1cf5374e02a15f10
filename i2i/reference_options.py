"""The option names of the reference CycleGAN/pix2pix code (its base, train and test options,
and the cycle_gan/pix2pix/test models' own) and of Real-ESRGAN's inference script, with what
i2i has instead. People who used those type their names; Click's look-alike suggestions for
them are often wrong (--ngf: --ndf, the discriminator's width; --output_nc: --out, the run
folder), so the CLI names the equivalent from these tables instead (cli._name_reference_option).

Each value is i2i's equivalent ("--width", "the MODEL argument", "--precision fp32"), or
"no equivalent", then, after ": ", what to know or do instead. Scopes: "train" is the
reference's two models (train cyclegan, train pix2pix), a pipeline's own key overrides it;
"translate" is the reference's test.py (and Real-ESRGAN's inference script). A name that is
already an option of the command has no entry there: Click never reports it; but a value of
it that i2i spells otherwise has one, as "--ext auto" (the CLI's choices name it on refusal).
"""
from __future__ import annotations

import re

#: The commands the table speaks for: the reference's train.py per model, and its test.py.
COMMANDS = ("train cyclegan", "train pix2pix", "translate")

_NO_EQUIVALENT = "no equivalent"
_RECORDED = f"{_NO_EQUIVALENT}: the model file records the networks' settings"
_TRAINING = f"{_NO_EQUIVALENT}: a training setting"
_WHOLE = f"{_NO_EQUIVALENT}: each image is translated whole, at its own size (--tile for large ones)"
_NO_VISDOM = f"{_NO_EQUIVALENT}: no visdom display; --out's index.html shows the samples"
_RESUME = f"{_NO_EQUIVALENT}: --resume continues a run from its last checkpoint"
_WHICH_MODEL = f"{_NO_EQUIVALENT}: MODEL names the model file (i2i models import makes one of a .pth)"
_DEVICE = "--device: cuda:N, or cpu"
_ALL = f"{_NO_EQUIVALENT}: every image in INPUT is translated"
# Real-ESRGAN blends realesr-general-x4v3 with its -wdn (weak denoise) twin by this strength; 1 is the model alone
_DENOISE = (f"{_NO_EQUIVALENT}: i2i runs the model as it is; realesr-general-x4v3 is Real-ESRGAN's "
            "denoise strength 1")

REFERENCE_OPTIONS: dict[str, dict[str, str]] = {
    # base_options.py
    "--dataroot": {"train": "--data", "translate": "the INPUT argument: a folder of images, e.g. DATA/testA"},
    "--name": {"train": "--out: the run folder, the reference's checkpoints_dir/name",
               "translate": "the MODEL argument: a run folder or a model file"},
    "--gpu_ids": {"train": f"{_DEVICE}; several GPUs: run under torchrun", "translate": _DEVICE},
    "--checkpoints_dir": {"train": "--out: the run folder, the reference's checkpoints_dir/name",
                          "translate": "the MODEL argument: a run folder or a model file"},
    "--model": {"train": f"{_NO_EQUIVALENT}: the pipeline is the command, i2i train cyclegan or pix2pix",
                "translate": f"{_NO_EQUIVALENT}: the MODEL argument's file records which model it is"},
    "--input_nc": {"train": "--in-channels", "translate": _RECORDED},
    "--output_nc": {"train": "--out-channels", "translate": _RECORDED},
    "--ngf": {"train": "--width", "translate": _RECORDED},
    "--ndf": {"translate": _RECORDED},
    "--netD": {"translate": _RECORDED},
    "--netG": {"translate": _RECORDED},
    "--n_layers_D": {"train": "--n-layers-D", "translate": _RECORDED},
    "--norm": {"translate": _RECORDED},
    "--init_type": {"train": "--init-type", "translate": _TRAINING},
    "--init_gain": {"train": "--init-gain", "translate": _TRAINING},
    "--no_dropout": {"train": "--no-dropout", "translate": _RECORDED},
    "--dataset_mode": {"train": f"{_NO_EQUIVALENT}: the folder layout under --data decides (README)",
                       "translate": f"{_NO_EQUIVALENT}: INPUT holds single images; --ab-split for A|B pairs"},
    "--serial_batches": {"train": "--serial-batches", "translate": f"{_NO_EQUIVALENT}: images are read in order"},
    "--num_threads": {"train": "--num-workers", "translate": f"{_NO_EQUIVALENT}: --workers sets the batches "
                                                            "translated at once"},
    "--batch_size": {"train": "--batch-size", "translate": "--batch-size"},
    "--load_size": {"train": "--load-size", "translate": _WHOLE},
    "--crop_size": {"train": "--image-size", "translate": _WHOLE},
    "--max_dataset_size": {"train": f"{_NO_EQUIVALENT}: give --data a folder of just the images to use",
                           "translate": _ALL},
    "--preprocess": {"translate": _WHOLE},
    "--no_flip": {"train": "--no-flip", "translate": f"{_NO_EQUIVALENT}: images are never flipped"},
    "--display_winsize": {"train": _NO_VISDOM, "translate": f"{_NO_EQUIVALENT}: outputs keep each input's size"},
    "--epoch": {"train": _RESUME, "translate": _WHICH_MODEL},
    "--load_iter": {"train": _RESUME, "translate": _WHICH_MODEL},
    "--verbose": {"train": f"{_NO_EQUIVALENT}: --out's metrics.jsonl and config.yaml record the run",
                  "translate": _NO_EQUIVALENT},
    "--suffix": {"train": f"{_NO_EQUIVALENT}: name the run folder in --out as you like"},
    # train_options.py (and its older names: niter, niter_decay)
    "--display_freq": {"train": "--sample-every"},
    "--display_ncols": {"train": _NO_VISDOM},
    "--display_id": {"train": _NO_VISDOM},
    "--display_server": {"train": _NO_VISDOM},
    "--display_env": {"train": _NO_VISDOM},
    "--display_port": {"train": _NO_VISDOM},
    "--use_wandb": {"train": f"{_NO_EQUIVALENT}: --out's metrics.jsonl and index.html log the run"},
    "--wandb_project_name": {"train": f"{_NO_EQUIVALENT}: --out's metrics.jsonl and index.html log the run"},
    "--update_html_freq": {"train": "--sample-every"},
    "--print_freq": {"train": "--log-every"},
    "--no_html": {"train": f"{_NO_EQUIVALENT}: --out always gets index.html"},
    "--save_latest_freq": {"train": "--checkpoint-every"},
    "--save_epoch_freq": {"train": "--checkpoint-every: in steps, not epochs"},
    "--save_by_iter": {"train": f"{_NO_EQUIVALENT}: checkpoints are named by step; --keep-last says how many stay"},
    "--continue_train": {"train": "--resume"},
    "--epoch_count": {"train": _RESUME},
    "--phase": {"train": f"{_NO_EQUIVALENT}: training reads the train folders under --data",
                "translate": "the INPUT argument: the folder to translate, e.g. DATA/testA"},
    "--n_epochs": {"train": "--n-epochs"},
    "--n_epochs_decay": {"train": "--n-epochs-decay"},
    "--niter": {"train": "--n-epochs"},
    "--niter_decay": {"train": "--n-epochs-decay"},
    "--gan_mode": {"train": "--gan-mode"},
    "--pool_size": {"train cyclegan": "--pool-size",
                    "train pix2pix": f"{_NO_EQUIVALENT}: pix2pix keeps no image pool, as the reference's (size 0)"},
    "--lr_policy": {"train": "--lr-policy"},
    "--lr_decay_iters": {"train": "--lr-decay-iters"},
    # the models' own options: cycle_gan_model.py, pix2pix_model.py, test_model.py
    "--lambda_A": {"train cyclegan": "--lambda-A", "train pix2pix": f"{_NO_EQUIVALENT}: a cyclegan loss weight"},
    "--lambda_B": {"train cyclegan": "--lambda-B", "train pix2pix": f"{_NO_EQUIVALENT}: a cyclegan loss weight"},
    "--lambda_identity": {"train cyclegan": "--lambda-identity",
                          "train pix2pix": f"{_NO_EQUIVALENT}: a cyclegan loss weight"},
    "--lambda_L1": {"train pix2pix": "--lambda-L1", "train cyclegan": f"{_NO_EQUIVALENT}: a pix2pix loss weight"},
    # test.py loads <epoch>_net_G<suffix>.pth; i2i picks a generator by the way it translates, which for
    # G_A is the run's --direction (i2i.importers._direction_of)
    "--model_suffix": {"translate": "--direction: it picks the generator by the way it translates, not by its name; "
                                    "in a run trained with --direction BtoA, G_A translates B to A and G_B A to B"},
    # test_options.py (and its older names: ntest, how_many, which_epoch)
    "--results_dir": {"translate": "the OUTPUT argument"},
    "--aspect_ratio": {"translate": f"{_NO_EQUIVALENT}: outputs keep each input's size"},
    "--num_test": {"translate": _ALL},
    "--ntest": {"translate": _ALL},
    "--how_many": {"translate": _ALL},
    "--which_epoch": {"translate": _WHICH_MODEL},
}

#: Real-ESRGAN's inference_realesrgan.py (BasicSR's inference scripts share most of its names).
REALESRGAN_OPTIONS: dict[str, dict[str, str]] = {
    "-n": {"translate": "the MODEL argument"},
    "--model_name": {"translate": "the MODEL argument: a pretrained name (i2i models list) or a file"},
    "--model_path": {"translate": "the MODEL argument"},
    "-i": {"translate": "the INPUT argument"},
    "--input": {"translate": "the INPUT argument"},
    "-o": {"translate": "the OUTPUT argument"},
    "--output": {"translate": "the OUTPUT argument"},
    "--ext auto": {"translate": "--ext same: each output keeps its input's extension"},
    "-s": {"translate": "--outscale"},
    "-t": {"translate": "--tile"},
    "--tile_pad": {"translate": "--tile-pad"},
    "--pre_pad": {"translate": f"{_NO_EQUIVALENT}: each image is padded as the network needs, by itself"},
    "--fp32": {"translate": "--precision fp32"},
    "--alpha_upsampler": {"translate": "--alpha-upsampler: realesrgan is model, bicubic is resize"},
    "--alpha-upsampler realesrgan": {"translate": "--alpha-upsampler model: the alpha goes through the network"},
    "--alpha-upsampler bicubic": {"translate": "--alpha-upsampler resize: the alpha is resized bicubically"},
    "--half": {"translate": "--precision fp16"},
    "-g": {"translate": _DEVICE},
    "--gpu-id": {"translate": _DEVICE},
    "--face_enhance": {"translate": f"{_NO_EQUIVALENT}: no face restoration (GFPGAN)"},
    "-dn": {"translate": _DENOISE},
    "--denoise_strength": {"translate": _DENOISE},
}

_NESTED = (f"{_NO_EQUIVALENT}: i2i's settings are flat, one name a line, named as i2i train srgan's "
           "help shows them; BasicSR's dataroot_gt is data, dataroot_lq lr_data, gt_size "
           "image_size, total_iter max_steps, pretrain_network_g pretrained")
_NO_VAL = (f"{_NO_EQUIVALENT}: no validation during training; the run folder's model file is written every "
           "--checkpoint-every steps: score it with i2i eval RUN VAL_HR --scale N (PSNR-Y, SSIM-Y)")

#: BasicSR's (and Real-ESRGAN's) training options, its YAML names, for `i2i train srgan` and
#: `i2i eval`: what a BasicSR user types as flags or writes in a --config file.
BASICSR_OPTIONS: dict[str, dict[str, str]] = {
    # layout of a BasicSR options file
    "--datasets": {"train srgan": _NESTED}, "--network_g": {"train srgan": _NESTED},
    "--network_d": {"train srgan": _NESTED}, "--path": {"train srgan": _NESTED},
    "--train": {"train srgan": _NESTED}, "--val": {"train srgan": _NESTED}, "--logger": {"train srgan": _NESTED},
    "--model_type": {"train srgan": "--stage: psnr is SRModel, gan SRGANModel (--gan relativistic: ESRGANModel)"},
    "--num_gpu": {"train srgan": f"{_DEVICE}; several GPUs: run under torchrun"},
    "--manual_seed": {"train srgan": "--seed"},
    # datasets.train
    "--dataroot_gt": {"train srgan": "--data", "eval": "the DATA argument"},
    "--dataroot_lq": {"train srgan": "--lr-data", "eval model": "--lr"},
    "--meta_info_file": {"train srgan": f"{_NO_EQUIVALENT}: every image in --data is used; give a folder of just "
                                       "those images", "eval": f"{_NO_EQUIVALENT}: every image in DATA is scored"},
    "--filename_tmpl": {"train srgan": f"{_NO_EQUIVALENT}: LR files match HR ones by name, with or without the "
                                       "scale's suffix (0001, 0001x4, 0001_x4)",
                        "eval": f"{_NO_EQUIVALENT}: LR files match HR ones by name (0001, 0001x4, 0001_x4)"},
    "--io_backend": {"train srgan": f"{_NO_EQUIVALENT}: images are read from folders (no LMDB); give the image "
                                    "folder the LMDB was made from", "eval": f"{_NO_EQUIVALENT}: image folders only"},
    "--gt_size": {"train srgan": "--image-size: the HR patch"},
    "--use_hflip": {"train srgan": "--augment flip: with use_rot too, --augment dihedral, the default"},
    "--use_rot": {"train srgan": "--augment dihedral: flips and 90-degree rotations, the default"},
    "--use_shuffle": {"train srgan": "--serial-batches: off (shuffled) by default"},
    "--num_worker_per_gpu": {"train srgan": "--num-workers"},
    "--batch_size_per_gpu": {"train srgan": "--batch-size: per process under torchrun"},
    "--dataset_enlarge_ratio": {"train srgan": "--repeat"},
    # network_g
    "--num_feat": {"train srgan": "--width"},
    "--num_block": {"train srgan": "--num-blocks"},
    "--num_grow_ch": {"train srgan": "--growth"},
    "--num_in_ch": {"train srgan": "--channels"},
    "--num_out_ch": {"train srgan": "--channels"},
    "--upscale": {"train srgan": "--scale"},
    # path
    "--pretrain_network_g": {"train srgan": "--pretrained: an i2i model (i2i models import makes one of a "
                                            "BasicSR net_g_N.pth, params_ema preferred)"},
    "--param_key_g": {"train srgan": f"{_NO_EQUIVALENT}: i2i models import takes params_ema where the file has it"},
    "--strict_load_g": {"train srgan": f"{_NO_EQUIVALENT}: a --pretrained model always loads strictly"},
    "--resume_state": {"train srgan": "--resume: it continues an i2i run in --out; a BasicSR run continues here "
                                      "only as a new run from its net_g with --pretrained"},
    # train
    "--ema_decay": {"train srgan": "--ema"},
    "--total_iter": {"train srgan": "--max-steps"},
    "--optim_g": {"train srgan": "--lr, --beta1 and --beta2 (Adam)"},
    "--scheduler": {"train srgan": "--lr-policy: cosine (CosineAnnealingRestartLR without restarts), step"},
    "--warmup_iter": {"train srgan": f"{_NO_EQUIVALENT}: no warm-up"},
    "--pixel_opt": {"train srgan": "--pixel-loss and --pixel-weight"},
    "--perceptual_opt": {"train srgan": "--perceptual-weight and --vgg-weights"},
    "--gan_opt": {"train srgan": "--gan and --gan-weight"},
    "--l1_gt_usm": {"train srgan": "--degradation-settings: usm_weight 0 trains on the plain HR"},
    "--percep_gt_usm": {"train srgan": "--degradation-settings: usm_weight 0 trains on the plain HR"},
    "--high_order_degradation": {"train srgan": "--degradation realesrgan"},
    "--queue_size": {"train srgan": f"{_NO_EQUIVALENT}: each batch is degraded on its own"},
    # val and logger
    "--val_freq": {"train srgan": _NO_VAL}, "--save_img": {"train srgan": _NO_VAL},
    "--crop_border": {"eval": f"{_NO_EQUIVALENT}: i2i eval crops the scale's border, as BasicSR's crop_border: "
                              "scale", "train srgan": _NO_VAL},
    "--test_y_channel": {"eval": f"{_NO_EQUIVALENT}: i2i eval scores Y (BT.601), as BasicSR's test_y_channel: true",
                         "train srgan": _NO_VAL},
    "--print_freq": {"train srgan": "--log-every"},
    "--save_checkpoint_freq": {"train srgan": "--checkpoint-every"},
    "--use_tb_logger": {"train srgan": f"{_NO_EQUIVALENT}: --out's metrics.jsonl and index.html log the run"},
}
#: BASICSR_OPTIONS's commands.
BASICSR_COMMANDS = ("train srgan", "eval model", "eval bicubic")

#: Whose names, in the message: the tables above.
SOURCES = (("the reference's", REFERENCE_OPTIONS), ("Real-ESRGAN's", REALESRGAN_OPTIONS))
#: The tables that speak for each command.
_TABLES_OF = {**{command: SOURCES for command in COMMANDS},
              **{command: (("BasicSR's", BASICSR_OPTIONS),) for command in BASICSR_COMMANDS}}


def _spelling(flag: str) -> str:
    """`_` and `-` alike: --crop-size is the reference's --crop_size too."""
    return flag.replace("_", "-")


def _reported_as(name: str, flag: str) -> bool:
    """Whether Click reports `name`, typed, as the unknown option `flag`: itself, or for a short
    option of several letters (Real-ESRGAN's -dn) its first letter, as Click reads -dn as -d -n."""
    several = name.startswith("-") and not name.startswith("--") and len(name) > 2
    return _spelling(name) == _spelling(flag) or (several and name[:2] == flag)


def _lookup(flag: str, command: str) -> tuple[str, str, str]:
    """(whose name, the table's name, its value in `command`) for what Click reports as `flag`,
    the exact name first; ("", "", "") where no table has it for that command."""
    found = [(whose, name, entry.get(command) or entry.get(command.split()[0], ""))
             for whose, table in _TABLES_OF.get(command, ()) for name, entry in table.items()
             if _reported_as(name, flag)]
    found = sorted((row for row in found if row[2]), key=lambda row: _spelling(row[1]) != _spelling(flag))
    return found[0] if found else ("", "", "")


def reference_hint(flag: str, command: str) -> str:
    """"the reference's --ngf is --width here" for an option of the reference code (or of
    Real-ESRGAN, or BasicSR's for train srgan and eval) in `command`, or "". Real-ESRGAN's -dn
    comes as the -d Click reports: the hint names -dn, and says why Click said -d."""
    whose, name, value = _lookup(flag, command)
    if not value:
        return ""
    what, _, why = value.partition(": ")
    said = "has no equivalent here" if what == _NO_EQUIVALENT else f"is {what} here"
    named = flag if _spelling(name) == _spelling(flag) else f"{name} (read as {flag})"
    return f"{whose} {named} {said}" + (f": {why}" if why else "")


def basicsr_setting_hint(key: str, command: str = "train srgan") -> str:
    """The hint for a BasicSR name met as a settings-file key ("gt_size"), i2i's flags written
    as the file's keys: "BasicSR's gt_size is image_size here: the HR patch"."""
    hint = reference_hint(f"--{key}", command)
    if not hint.startswith("BasicSR's"):
        return ""
    hint = hint.replace(f"BasicSR's --{key} ", f"BasicSR's {key} ", 1)
    return re.sub(r"(?<![\w-])--([a-z][\w-]*)", lambda m: m.group(1).replace("-", "_"), hint)
