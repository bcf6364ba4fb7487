# lossbench: `make run` sets everything up and runs the main job;
# `make test` sets everything up and runs the test suite.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-stamp
JOBS    ?= 2

.PHONY: setup opus run test lint perf clean corpus-deps corpus corpus-fullband corpus-stereo data-deps data train train-soundspring train-glaris heldout

$(STAMP): pyproject.toml scripts/install-system-deps.sh Makefile
	bash scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	# DistillMOS's model and weights without its torchaudio requirement, whose wheels cannot load next to
	# torch 2.13 (lossbench/metrics/learned.py imports the model without it; it needs only torch)
	$(PY) -m pip install -q --no-deps distillmos==0.9.1 xls-r-sqa==0.1.0
	touch $(STAMP)

# Opus 1.5.2 from Debian's source package, with DRED, deep PLC, OSCE and LossGen, and the shims over it
# (build/opus-1.5.2/; cached: a second run only checks the shims)
opus:
	bash scripts/build-opus.sh

setup: $(STAMP) opus

# the main job: the shipped default sweep on the embedded corpus; prints the path of report.html
run: setup
	$(VENV)/bin/lossbench sweep --out runs/default

# ruff (the rules in pyproject.toml) and mypy on lossbench/, with the versions the lint extra pins
lint: $(STAMP)
	$(PY) -m pip install -q -e '.[lint]'
	$(VENV)/bin/ruff check lossbench
	$(VENV)/bin/mypy

test: setup
	bash scripts/install-system-deps.sh --test
	$(PY) -m pytest -q -n $(JOBS)

perf: setup
	$(PY) perf/netsim_speed.py
	$(PY) perf/codecs_speed.py
	$(PY) perf/sweep_speed.py
	$(PY) perf/neural_speed.py
	$(PY) perf/soundspring_speed.py
	$(PY) perf/glaris_speed.py
	$(PY) perf/live_relay.py

corpus-deps:
	bash scripts/install-system-deps.sh --corpus

corpus: setup corpus-deps
	$(VENV)/bin/lossbench corpus build

# the embedded 48 kHz corpus (lossbench/corpus/fullband): Debian's game music, fluidsynth renders of
# music21 scores, Tux Paint's English descriptions
corpus-fullband: setup
	bash scripts/install-system-deps.sh --fullband
	$(PY) -m pip install -q -e '.[corpus]'
	$(VENV)/bin/lossbench corpus build --fullband

# stereo music (not embedded): 48 kHz stereo excerpts of the recorded Debian music, for stereo = true sweeps
corpus-stereo: setup
	bash scripts/install-system-deps.sh --fullband
	$(VENV)/bin/lossbench corpus build --stereo-music --out data/stereo_music

# training data and the neural codec (hours of CPU; resumes from checkpoints/codec)
data-deps: setup
	bash scripts/install-system-deps.sh --data
	$(PY) -m pip install -q -e '.[data]'

data: data-deps
	$(VENV)/bin/lossbench data prepare-speech data/speech

# the neural models (resumable: each resumes from its checkpoint directory). BACKBONE=fargan (the default:
# a quantiser of LPCNet features voiced by Opus 1.5's FARGAN) or BACKBONE=waveform (the waveform decoder)
BACKBONE ?= fargan
SUFFIX = $(if $(filter fargan,$(BACKBONE)),_fargan,)

train: setup
ifeq ($(BACKBONE),fargan)
	# the shipped run: 3000 steps of dropout 'square' after a 1000-step unquantised warm-up, then 'mid' to 15000
	$(VENV)/bin/lossbench train codec --backbone fargan --skip --ae-warmup 1000 --dropout square --until 3000 --eval-every 1500 --data data/speech --out checkpoints/codec_fargan --threads 2 --steps 15000
	$(VENV)/bin/lossbench train codec --backbone fargan --skip --dropout mid --eval-every 3000 --data data/speech --out checkpoints/codec_fargan --threads 2 --steps 15000
else
	$(VENV)/bin/lossbench train codec --backbone waveform --data data/speech --out checkpoints/codec
endif

# the transceivers' models on the shipped codec's tokens / latents
# waveform's shipped masked LM: 6000 steps at lr 3e-4, then on to STEPS at lr 1e-4 (3 h of training audio);
# fargan's: 4500 steps at lr 3e-4 (STEPS to go further), exported, then its concealment head (3000 steps, about
# 2 minutes: lost coarse tokens as a change from the last known frame)
train-soundspring: setup
ifeq ($(BACKBONE),fargan)
	$(VENV)/bin/lossbench train soundspring --backbone fargan --data data/speech --out checkpoints/soundspring_fargan --max-hours 3 --threads 2 --steps $(or $(STEPS),4500)
	$(VENV)/bin/lossbench train export-soundspring --ckpt checkpoints/soundspring_fargan/ckpt.pt
	$(VENV)/bin/lossbench train soundspring-head --backbone fargan --data data/speech --steps 3000 --threads 1
else
	$(VENV)/bin/lossbench train soundspring --backbone waveform --data data/speech --out checkpoints/soundspring --max-hours 3 --threads 2 --steps 6000
	$(VENV)/bin/lossbench train soundspring --backbone waveform --data data/speech --out checkpoints/soundspring --max-hours 3 --threads 2 --steps $(or $(STEPS),12000) --lr 1e-4
endif

# (the shipped Glaris modules: 9000 steps on waveform latents; on fargan's, 14000 steps with y of 64 channels
# and the linear skip (about 50 minutes on 2 cores), exported, then stage III: the feature decoder fine-tuned
# to them, 1500 steps, about 5 minutes)
train-glaris: setup
ifeq ($(BACKBONE),fargan)
	$(VENV)/bin/lossbench train glaris --backbone fargan --data data/speech --out checkpoints/glaris_fargan$(SUFFIX) --max-hours 3 --threads 2 --steps $(or $(STEPS),14000) --y-dim 64 --skip
	$(VENV)/bin/lossbench train export-glaris --ckpt checkpoints/glaris_fargan$(SUFFIX)/ckpt.pt
	$(VENV)/bin/lossbench train glaris-stage3 --data data/speech --steps 1500 --threads 2
else
	$(VENV)/bin/lossbench train glaris --backbone $(BACKBONE) --data data/speech --out checkpoints/glaris$(SUFFIX) --max-hours 3 --threads 2 --steps $(or $(STEPS),9000)
endif

# held-out real speech as a corpus for the documented sweeps in docs/
heldout: setup
	$(VENV)/bin/lossbench data heldout data/heldout --data data/speech

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
