"""Training with collaborative tokens (CoLLM-style; the ``collab:`` section of :class:`~llmrec.train.TrainConfig`).

:func:`check_collab` runs with the other cheap checks of ``llmrec train``: the baseline run must be a finished run
on the *same* prepared folder's training split (its data fingerprint; anything else could show the model ids whose
labels it is tested on), the template must place the tokens, the stage's starting adapter must exist.
:func:`collab_model` then installs the frozen tables and a mapper (:mod:`llmrec.llm.collab`) and builds the peft
model: the mapper is a ``modules_to_save`` module, so it is checkpointed, resumed and saved with the LoRA weights;
under ``stage: mapper`` every LoRA weight is frozen.
"""

from __future__ import annotations

from pathlib import Path

from llmrec.errors import ConfigError
from llmrec.llm import adapter_dir, check_adapter
from llmrec.llm.collab import MAPPER_MODULE, CollabIds, CollabTables, collab_module, read_collab
from llmrec.train.config import TrainConfig


def check_collab(config: TrainConfig, fingerprints: dict[str, str], test_data_given: bool) -> CollabTables:
    """The tables of ``config.collab.run`` after every cheap check; ``fingerprints``: the content hashes of the
    prepared folders this run trains on (``data`` and the ``mix_data`` views of the same samples)."""
    collab = config.collab
    assert collab is not None
    if test_data_given:
        raise ConfigError("collab: test.data scores another prepared folder, whose users and items the collaborative "
                          "model never saw; leave test.data unset")
    if config.instruction.data:
        raise ConfigError("collab: the instruction stage is for text prompts; train it in the stage-1 run and give "
                          "that run as collab.adapter_from")
    tables = CollabTables.from_baseline_run(collab.run)
    src = tables.source
    if src.get("split") != "train" or src.get("data_fingerprint") not in set(fingerprints.values()):
        raise ConfigError(f"collab.run: {collab.run} was trained on {src.get('data')}/{src.get('split')} (data "
                          f"fingerprint {src.get('data_fingerprint')}), not on the training split of {config.data} "
                          f"({fingerprints.get('data')}): the collaborative model must be trained on this prepared "
                          "folder's training split only")
    if collab.adapter_from is not None:
        folder = check_adapter(collab.adapter_from)
        meta = read_collab(folder)
        if meta is not None and meta["source"].get("weights_sha256") != src["weights_sha256"]:
            raise ConfigError(f"collab.adapter_from: {collab.adapter_from} maps the embeddings of "
                              f"{meta['source'].get('run')}, not of {collab.run}")
        if meta is not None and int(meta["mapper"]["hidden"]) != collab.mapper.hidden:
            raise ConfigError(f"collab.mapper.hidden: {collab.adapter_from} has a mapper {meta['mapper']['hidden']} "
                              f"wide, not {collab.mapper.hidden}")
    return tables


def adapter_weights_hash(path: str) -> str:
    """The content hash of an adapter's weights (part of a run's identity: the stage it starts from)."""
    from llmrec.io import file_sha256
    from llmrec.llm.adapters import WEIGHT_FILES

    folder = adapter_dir(path)
    return next(file_sha256(folder / w) for w in WEIGHT_FILES if (folder / w).exists())


def collab_model(model, config: TrainConfig, tables: CollabTables, log=print):
    """The trainable peft model with collaborative tokens: ``model`` with the tables and a fresh mapper installed
    (:func:`~llmrec.llm.collab.install_collab`), LoRA fresh (``config.lora``) or from ``collab.adapter_from`` (its
    own LoRA settings, and its mapper when it has one); under ``stage: mapper`` only the mapper learns."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, load_peft_weights, set_peft_model_state_dict

    collab = config.collab
    assert collab is not None
    if collab_module(model) is None:
        raise ConfigError("collab: install the collaborative tables before building the peft model")
    if collab.adapter_from is not None:
        folder = adapter_dir(collab.adapter_from)
        lora = LoraConfig.from_pretrained(str(folder))
        lora.inference_mode = False
        log(f"collab: LoRA from {folder} (r={lora.r}, alpha={lora.lora_alpha}, {sorted(lora.target_modules)}); "
            "the lora: section is not used")
    else:
        lora = config.lora.to_peft()
    lora.modules_to_save = [MAPPER_MODULE]
    peft_model = get_peft_model(model, lora)
    if collab.adapter_from is not None:
        weights = load_peft_weights(str(adapter_dir(collab.adapter_from)))
        fresh = get_peft_model_state_dict(peft_model)  # a stage-1 (text) adapter has no mapper: keep the fresh one
        weights.update({k: v for k, v in fresh.items() if MAPPER_MODULE in k and k not in weights})
        result = set_peft_model_state_dict(peft_model, weights)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise ConfigError(f"collab.adapter_from: {collab.adapter_from} has weights this model lacks "
                              f"({unexpected[0]}, ...)")
    if collab.stage == "mapper":
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.requires_grad_(False)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    log(f"collab: {len(tables.users):,} users and {len(tables.items):,} items of {tables.source['run']} "
        f"({tables.source['model']}, {tables.dim} wide), mapper {tables.dim} -> {collab.mapper.hidden} -> "
        f"{peft_model.get_input_embeddings().embedding_dim}; stage {collab.stage}: {trainable:,} trainable parameters")
    return peft_model


def save_tables(folder: str | Path, config: TrainConfig, tables: CollabTables, ids: CollabIds) -> None:
    """The frozen tables and ``collab.json`` beside a saved adapter (the mapper is in its weights)."""
    assert config.collab is not None
    tables.save(folder, {"hidden": config.collab.mapper.hidden, "stage": config.collab.stage,
                         "adapter_from": config.collab.adapter_from}, ids.base)
