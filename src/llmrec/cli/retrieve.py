"""``llmrec retrieve``: semantic user behaviour retrieval (ReLLa's SUBR) as a prepared-folder transform."""

from __future__ import annotations

import click

from llmrec.cli.app import config_command, config_options, echo_err, engine_options


@click.command("retrieve")
@click.argument("data", required=False)
@click.option("--out", "-o", help="Output prepared folder (same schema; history = the K retrieved items).")
@click.option("-k", "k", type=int, help="Retrieved history items per sample [10].")
@click.option("--model", "-m", "model_name", help="Encoder model: 'default', a hub id, a folder or a .gguf file.")
@click.option("--encoder", type=click.Choice(["llm", "sentence-transformers", "file"]), help="Encoder kind [llm].")
@click.option("--pca-dim", type=int, help="Principal components kept [512]; 0: no PCA.")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--overwrite", is_flag=True, help="Replace another prepared folder at --out.")
@engine_options
@config_options
def retrieve_cmd(data, out, k, model_name, encoder, pca_dim, device, overwrite, engine, workers, config_path, overrides,
                 print_config):
    """Replace each sample's history with the K earlier items most similar to its target (SUBR).

    Items are encoded once with the LLM (mean-pooled last-layer states over a text template,
    PCA, L2-normalised; cached by content hash), then every sample of every split gets the K
    items of the user's whole earlier history most similar to its target, in chronological
    order. The output is a prepared folder that `llmrec evaluate` and `llmrec train` read
    like any other, plus retrieval.json (encoder, template, K, content hashes).

    \b
    Examples:
      llmrec retrieve prepared/ml-1m-rella -o prepared/ml-1m-rella-subr10 -k 10
      llmrec retrieve prepared/ml-1m-rella -o prepared/ml-1m-subr30 -k 30 --set encoder.pca_dim=null
      llmrec evaluate -d prepared/ml-1m-rella-subr10 --limit 2000
      llmrec retrieve prepared/ml-25m-rella -o prepared/ml-25m-subr10 --engine ray --workers 8
    """
    from llmrec.retrieval import RetrievalConfig

    named = {"data": data, "out": out, "k": k, "encoder.model.name": model_name, "encoder.kind": encoder,
             "encoder.model.device": device, "overwrite": True if overwrite else None, "engine.kind": engine,
             "engine.workers": workers}
    if pca_dim is not None:
        overrides = (*overrides, f"encoder.pca_dim={'null' if pca_dim == 0 else pca_dim}")
    config = config_command(RetrievalConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.retrieval import retrieve

    path, summary = retrieve(config, log=echo_err)
    click.echo(f"prepared folder: {path}/ (K={summary['k']}, {summary['samples']:,} samples, "
               f"{summary['samples_with_fewer_than_k']:,} with fewer than K earlier items)")
