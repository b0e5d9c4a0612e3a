"""A faster CPU path: SmoothQuant + int8 weights and per-token int8 activations (W8A8).

1. **Smoothing** (Xiao et al., SmoothQuant, 2023): a few input channels of each projection
   carry much larger activations than the rest. For every linear layer fed by an RMSNorm
   (q/k/v after ``input_layernorm``; gate/up after the pre-MLP norm) and for ``down_proj`` (fed
   by ``act(gate) * up``), per-channel factors ``s = max|x|^alpha / max|W|^(1 - alpha)``,
   measured on calibration text, divide the activations (folded into the norm's scale, or
   into ``up_proj``'s rows) and multiply the weight columns: the float function is unchanged,
   the activations become easy to quantize.
2. **W8A8** via torchao ``Int8DynamicActivationInt8WeightConfig``: int8 weights per output
   channel, int8 activations per token, int8 matmul kernels.

Measured on Gemma 3 270M (BENCHMARKS.md): per-tensor int8 (``torch.ao quantize_dynamic``)
moved P(yes) by 0.41 on average; per-token W8A8 by 0.023 (``down_proj`` kept float32);
SmoothQuant (alpha 0.75) + W8A8 by 0.007. ``down_proj`` stays float32 by default, the
embedding / LM head is never touched (the engine only uses its two answer rows).
Supports Llama- and Gemma-style decoder layers; other models are quantized without smoothing.

>>> DEFAULT_ALPHA, DEFAULT_SKIP
(0.75, ('lm_head', 'down_proj'))
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

from llmrec.errors import ModelError

DEFAULT_SKIP = ("lm_head", "down_proj")
DEFAULT_ALPHA = 0.75

CALIBRATION_TEXTS = (
    'The user is a female, aged 25-34, working as writer.\nThe user watched and rated these movies, oldest first '
    '(1 to 5 stars):\n1. "Toy Story (1995)" (Animation, Children\'s, Comedy): 5 stars\n2. "Heat (1995)" (Action, '
    'Crime, Thriller): 3 stars\n3. "Fargo (1996)" (Crime, Drama, Thriller): 4 stars\n\nBased on these ratings, will the '
    'user like the movie "Titanic (1997)" (Drama, Romance)? Answer Yes or No.\nAnswer:',
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
    'response that appropriately completes the request.\n\n### Instruction:\nGiven the user\'s preference and '
    'unpreference, identify whether the user will like the target book by answering "Yes." or "No.".\n\n### Input:\n'
    'User Preference: "The Hobbit" by J. R. R. Tolkien, "Dune" by Frank Herbert\nUser Unpreference: "Emma" by Jane '
    'Austen\nWhether the user will like the target book "Foundation" by Isaac Asimov?\n\n### Response:\n',
    "The user's recent items, oldest first:\n1. Super Mario Odyssey - Nintendo Switch\n2. The Legend of Zelda: Breath "
    "of the Wild\n3. Xbox One Wireless Controller - Black\nCandidate: Mario Kart 8 Deluxe - Nintendo Switch\nWill the "
    "user choose the candidate next? Answer Yes or No.\nAnswer:",
)


def _activation_maxima(model, sequences: Sequence[Sequence[int]]) -> dict:
    """max |input| per input channel of every decoder linear layer, over the calibration tokens."""
    import torch

    stats: dict = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
            def hook(mod, inputs, output, name=name):
                x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0).float()
                stats[name] = torch.maximum(stats[name], x) if name in stats else x
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for seq in sequences:
                model(input_ids=torch.tensor([list(seq)], device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return stats


def _factors(act, weights, alpha: float):
    import torch

    w = torch.cat([x.abs().float() for x in weights], 0).amax(0).clamp(min=1e-5)
    return (act.clamp(min=1e-5) ** alpha / w ** (1 - alpha)).clamp(min=1e-5)


def smooth(model, sequences: Sequence[Sequence[int]], alpha: float = DEFAULT_ALPHA) -> bool:
    """Apply SmoothQuant scaling in place (the float function is unchanged). False if unsupported."""
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        return False
    stats = _activation_maxima(model, sequences)
    names = {id(m): n for n, m in model.named_modules()}
    with torch.no_grad():
        for layer in layers:
            attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
            pre_mlp = getattr(layer, "pre_feedforward_layernorm", None) or getattr(layer, "post_attention_layernorm", None)
            if not all(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj")) or not all(
                hasattr(mlp, p) for p in ("gate_proj", "up_proj", "down_proj")
            ):
                return False
            gemma_norm = type(layer.input_layernorm).__name__.startswith("Gemma")  # scale is (1 + weight)
            for norm, lins in ((layer.input_layernorm, [attn.q_proj, attn.k_proj, attn.v_proj]),
                               (pre_mlp, [mlp.gate_proj, mlp.up_proj])):
                s = _factors(stats[names[id(lins[0])]], [x.weight for x in lins], alpha)
                if gemma_norm:
                    norm.weight.copy_(((1 + norm.weight.float()) / s - 1).to(norm.weight.dtype))
                else:
                    norm.weight.div_(s.to(norm.weight.dtype))
                for lin in lins:
                    lin.weight.mul_(s.to(lin.weight.dtype))
            s = _factors(stats[names[id(mlp.down_proj)]], [mlp.down_proj.weight], alpha)
            mlp.up_proj.weight.div_(s[:, None].to(mlp.up_proj.weight.dtype))
            mlp.down_proj.weight.mul_(s.to(mlp.down_proj.weight.dtype))
    return True


def quantize_int8(model, tokenizer=None, skip: tuple[str, ...] = DEFAULT_SKIP, alpha: float | None = DEFAULT_ALPHA,
                  calibration: Sequence[Sequence[int]] | None = None):
    """A copy of ``model`` with SmoothQuant (when ``alpha`` and calibration tokens are given:
    ``calibration`` ids, or :data:`CALIBRATION_TEXTS` encoded with ``tokenizer``) and W8A8
    ``nn.Linear`` layers (names not containing ``skip``)."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError as exc:
        raise ModelError('int8 quantization needs torchao: pip install "llmrec[int8]"') from exc
    qmodel = copy.deepcopy(model)
    if calibration is None and tokenizer is not None:
        calibration = [tokenizer(t)["input_ids"] for t in CALIBRATION_TEXTS]
    if alpha is not None and calibration:
        smooth(qmodel, calibration, alpha)

    def wanted(module, name: str) -> bool:
        return isinstance(module, torch.nn.Linear) and not any(s in name for s in skip)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_(qmodel, Int8DynamicActivationInt8WeightConfig(), filter_fn=wanted)
    return qmodel
