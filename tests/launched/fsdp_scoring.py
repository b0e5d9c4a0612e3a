"""Run under ``torchrun --nproc_per_node 2``: the Yes/No scorer on a model sharded with FSDP2 (gloo, CPU).

Every rank scores the same prompts with a whole copy of a tiny model and with the same model whose
decoder layers and root are ``fully_shard``-ed across the two processes; rank 0 writes both to
``sys.argv[1]`` (JSON), with what the scorer saw.
"""

import copy
import gc
import json
import sys
from pathlib import Path

import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from llmrec.llm import AnswerTokens, EncodedPrompt, YesNoScorer, sharding  # noqa: E402
from tests.tiny_models import tiny_loaded  # noqa: E402


def main() -> None:
    dist.init_process_group("gloo")
    loaded = tiny_loaded("llama")
    whole = copy.deepcopy(loaded.model)
    prompts = [EncodedPrompt((1, 7, 8, 9), (10,)), EncodedPrompt((1, 7, 8, 9), (11, 12)), EncodedPrompt((3, 4), (5,)),
               EncodedPrompt((3, 4, 9, 9, 12), (5, 6, 7))]
    answer = AnswerTokens(5, 6, "Yes", "No")
    reference = YesNoScorer(whole, answer).score(prompts)
    for layer in loaded.model.model.layers:
        fully_shard(layer)
    fully_shard(loaded.model)
    local = sum(p.to_local().numel() for p in loaded.model.parameters())
    scorer = YesNoScorer(loaded.model, answer)
    sharded = scorer.score(prompts)
    if dist.get_rank() == 0:
        Path(sys.argv[1]).write_text(json.dumps({
            "reference": reference.tolist(), "sharded": sharded.tolist(), "sharding": sharding(loaded.model),
            "head": scorer.config.head, "local_parameters": local,
            "all_parameters": sum(p.numel() for p in whole.parameters())}))
    # Tear down in lockstep: both ranks past every collective and the write, the sharded modules (which hold the
    # group) freed, then the group destroyed. A rank that tears gloo down while its peer is still busy can abort
    # ("terminate called without an active exception", seen once in CI).
    dist.barrier()
    del scorer, loaded, whole
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
