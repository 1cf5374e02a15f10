#!/bin/bash
# Issue 17's GPU work in one call: the degradation cost on the GPU, and a real-world x4 model
# trained there for a fixed time budget. Three steps:
#
#   benchmarks/realworld_gpu.sh prepare          # here (needs ../shared and pip): fills .gpu/ (ignored)
#   benchmarks/realworld_gpu.sh run OUT          # there: the device tool's run with carry [".gpu"],
#                                                #   command `bash benchmarks/realworld_gpu.sh run $OUT`
#   benchmarks/realworld_gpu.sh score MODEL      # here: the validation sets of pretrained/README.md
#
# .gpu/ holds what the device machine lacks, 48 MB (with the repository's 15 MB, under the 64 MiB
# a call carries): wheels of kornia and kornia_rs for its Python 3.12 (it has torch, numpy,
# Pillow, scipy, click, PyYAML, safetensors, tqdm) and the 291 training photos (T91 + BSD200) as
# lossless WebP. `run` writes to OUT: info.txt, bench.jsonl (the SRResNet step and the
# degradations timed apart, bf16 and fp32, 16 x 256 px and the training batch), train.log,
# model.safetensors, config.yaml, metrics.jsonl. Settings (environment): BUDGET_S (training
# seconds, 300), DEVICE (cuda), BATCH (64), PATCH (128), LR (1e-4), FROM (the model fine-tuned,
# srresnet-x4-realworld), DEGRADATIONS (stage 3's YAML), WORKERS (12), BENCH_STEPS (10). About
# 8 minutes of an H100/H200 in all, the machine's start included.
set -euo pipefail
cd "$(dirname "$0")/.."
GPU=.gpu
KORNIA=0.9.0 KORNIA_RS=0.2.0

prepare() {
    local shared=${I2I_SHARED:-../shared}
    mkdir -p $GPU/whl $GPU/sr291
    grep -qx '/.gpu/' .gitignore || echo '/.gpu/' >> .gitignore
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d $GPU/whl \
        kornia==$KORNIA kornia_rs==$KORNIA_RS
    python - "$shared/data/sr" $GPU/sr291 <<'EOF'
import sys
from pathlib import Path
from PIL import Image
source, out = Path(sys.argv[1]), Path(sys.argv[2])
for folder in ("T91", "BSD200"):
    for path in sorted((source / folder).glob("*.png")):
        Image.open(path).save(out / f"{path.stem}.webp", lossless=True, method=4)
EOF
    printf 'degradation: realesrgan\n' > $GPU/realesrgan.yaml
    du -sh $GPU
}

run() {
    local out=${1:?run OUT}
    local device=${DEVICE:-cuda} budget=${BUDGET_S:-300} batch=${BATCH:-64} patch=${PATCH:-128}
    local from=${FROM:-srresnet-x4-realworld} workers=${WORKERS:-12}
    local degradations=${DEGRADATIONS:-pretrained/srresnet-x4-realworld.stage3.degradation.yaml}
    mkdir -p "$out"
    python3 -c "import kornia" 2>/dev/null || {
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $GPU/whl/*.whl
        export PYTHONPATH=/tmp/site; }
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 I2I_HOME=/tmp/i2i-home
    local i2i="python3 -m i2i"
    { nvidia-smi -L 2>/dev/null || lscpu | grep "Model name"; $i2i info; } > "$out/info.txt" 2>&1
    for precision in bf16 fp32; do
        for size_batch in "256 16" "$patch $batch"; do
            set -- $size_batch
            $i2i bench train srgan --config $GPU/realesrgan.yaml --image-size $1 --batch-size $2 \
                --precision $precision --device "$device" --steps "${BENCH_STEPS:-10}" --warmup 3 >> "$out/bench.jsonl"
        done
    done
    # steps that fit the budget, from the measured step + degradations of the training batch (bf16)
    local steps
    steps=$(python3 - "$out/bench.jsonl" "$budget" "$patch" "$batch" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
row = next(r for r in rows if r["precision"] == "bf16" and r["image_size"] == int(sys.argv[3])
           and r["batch_size"] == int(sys.argv[4]))
print(max(10, int(0.85 * float(sys.argv[2]) / (row["sec_per_step"] + row["augment_sec"]))))
EOF
)
    echo "training $steps steps ($budget s budget)" | tee "$out/train.log"
    local run=/tmp/realworld-run-$$
    $i2i train srgan --data $GPU/sr291 --out $run --pretrained "$from" \
        --degradation realesrgan --degradation-settings "$degradations" \
        --max-steps "$steps" --batch-size "$batch" --image-size "$patch" --lr "${LR:-1e-4}" --lr-policy cosine \
        --ema 0.999 --precision bf16 --device "$device" --num-workers "$workers" \
        --log-every 100 --checkpoint-every 100000 --sample-every 100000 >> "$out/train.log" 2>&1
    cp $run/model.safetensors $run/config.yaml $run/metrics.jsonl "$out/"
    python3 - "$out/bench.jsonl" <<'EOF'
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    print(f"{r['gpu'] or r['cpu']}: srgan {r['batch_size']} x {r['image_size']} px {r['precision']}: step "
          f"{r['sec_per_step'] * 1e3:.1f} ms, degradations {r['augment_sec'] * 1e3:.1f} ms "
          f"({r['augment_share_of_step']:.1%} of the step)")
EOF
    tail -n 2 "$out/train.log"
}

score() {
    local model=${1:?score MODEL} shared=${I2I_SHARED:-../shared} val=runs/val
    for set in Set5 Set14; do
        [ -d $val/${set}_rw ] || python benchmarks/realworld_sr.py make $shared/data/sr/$set $val/${set}_rw 2>/dev/null
        [ -d $val/${set}_harsh ] || python benchmarks/realworld_sr.py make $shared/data/sr/$set $val/${set}_harsh \
            --preset harsh 2>/dev/null
        for kind in rw harsh; do
            python benchmarks/realworld_sr.py score $shared/data/sr/$set $val/${set}_$kind srresnet-x4 \
                srresnet-x4-realworld "$model"
        done
        echo "clean $set: $(i2i eval "$model" $shared/data/sr/$set --scale 4 2>&1 | tail -1)"
    done
}

case "${1:-}" in
    prepare|run|score) "$@" ;;
    *) echo "usage: benchmarks/realworld_gpu.sh prepare | run OUT | score MODEL (see the top of this file)" >&2; exit 2 ;;
esac
