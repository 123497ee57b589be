# `make demo` and `make test` each create .venv when missing and install pinned dependencies.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SHARED ?= ../shared/data

.PHONY: install demo test acceptance lint format clean bench bench-quick bench-pretrain \
	bench-finetune bench-time-to-quality bench-families bench-segmenter bench-continue \
	bench-embed

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and exactly pinned: the CPU wheel, never a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bertforge demo $(if $(CORPUS),--corpus $(CORPUS))

# Unit, parity and small end-to-end tests; the real-data quality runs are `make acceptance`.
test: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) -m pytest -q -ra -m "not acceptance" --durations=15

acceptance: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) -m pytest -q -ra -m acceptance --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# One table of every main job against its peer: bench/results/<date>-<host>.{json,png} and
# the table in bench/README.md. bench-quick: about 3 minutes on 2 cores; bench: about an hour.
bench-quick: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/run.py --quick

bench: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/run.py

bench-pretrain: $(STAMP)
	$(PY) bench/pretrain_step.py
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/build_data.py

bench-finetune: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/finetune_trainer.py --group-by-length

# Two hours on 2 cores: bertforge and a transformers loop, one hour each, BERT-mini MLM.
bench-time-to-quality: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/time_to_quality.py --marks 15,30,60 --sst2 --json bench/time_to_quality.json

# About 2.5 hours on 2 cores: five families 20 minutes each, a distilled student, SST-2 for all.
bench-families: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/family_compare.py --minutes 20 --json bench/family_compare.json

# Task-adaptive pretraining of all-MiniLM-L6-v2 on SST-2's and CoNLL-2003's train text, 15
# minutes each side against the transformers Trainer, then fine-tuning with and without it;
# vocabulary extension on Gutenberg (about 2 hours on 2 cores).
bench-continue: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/continue_pretraining.py --task sst2 --finetune --json bench/continue_pretraining_sst2_minilm.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/continue_pretraining.py --task conll --side bertforge --finetune --json bench/continue_pretraining_conll_minilm.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/extend_vocab.py --add 1000 --minutes 10 --json bench/extend_vocab.json

# Sentence embeddings on SQuAD pairs against sentence-transformers' trainer: 15 minutes from
# all-MiniLM-L6-v2 and from a BERT-mini, the peer at the same steps, memory at batch 1,024, a
# batch-size curve (about 1.8 hours). EMBED_BERT_MINI: the 20-minute BERT-mini of
# `bench/family_compare.py --families bert --work /tmp/bertforge-bench-family`.
EMBED_BERT_MINI ?= /tmp/bertforge-bench-family/bert/hf
EMBED_WORK ?= /tmp/bertforge-bench-embed
bench-embed: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job quality --model minilm --minutes 15 --work $(EMBED_WORK)/minilm --json bench/embeddings.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job quality --model $(EMBED_BERT_MINI) --minutes 15 --lr 1e-4 --max-length 128 --work $(EMBED_WORK)/bertmini --json bench/embeddings.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job peer --model minilm --steps 48 --work $(EMBED_WORK)/peer --json bench/embeddings.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job memory --model minilm --steps 1 --batch 1024 --work $(EMBED_WORK)/memory --json bench/embeddings.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job curve --model $(EMBED_BERT_MINI) --examples 4096 --lr 1e-4 --max-length 128 --work $(EMBED_WORK)/curve --json bench/embeddings.json
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/embeddings.py --job curve --model $(EMBED_BERT_MINI) --examples 16384 --lr 1e-4 --max-length 128 --work $(EMBED_WORK)/curve-16k --json bench/embeddings.json

bench-segmenter: $(STAMP)
	BERTFORGE_SHARED_DATA=$(SHARED) $(PY) bench/segmenter_cost.py
