"""``llmrec serve``: the HTTP scoring API (FastAPI + uvicorn; pip install 'llmrec[serve]')."""

from __future__ import annotations

import os

import click

from llmrec.cli.app import config_command, config_options, echo_err, require_extra


@click.command("serve")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="Serve what a train or evaluate run "
              "used (its data, model, prompt settings and, of a train run, the selected adapter), or a baseline "
              "run's classic model.")
@click.option("--data", "-d", help="Prepared folder whose items requests name.")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--adapter", "-a", type=click.Path(), help="LoRA adapter (a train run folder or its adapter/).")
@click.option("--host", help="Address to bind [127.0.0.1]; 0.0.0.0 exposes the service to the network.")
@click.option("--port", type=int, help="TCP port [8000].")
@click.option("--api-key-env", default="LLMREC_API_KEY", show_default=True,
              help="Environment variable holding the key required in the X-API-Key header (unset: no key).")
@click.option("--no-micro-batching", is_flag=True, help="Score one request at a time.")
@config_options
def serve_cmd(run_dir, data, model_name, adapter, host, port, api_key_env, no_micro_batching, config_path, overrides,
              print_config):
    """Serve a recommender over HTTP: POST /v1/score and /v1/rank, GET /health, /metrics, /docs.

    Requests name items of the prepared folder; prompts are rendered with the same template,
    item texts and token budget as `llmrec evaluate`, so a served score equals the offline one.
    A baseline run (llmrec baseline) serves its classic model on the same API.

    \b
    Examples:
      llmrec serve --run runs/quickstart/lora-64/seed-0
      llmrec serve --run runs/baselines/din
      llmrec serve --data prepared/ml-100k-tallrec --adapter runs/tallrec-movie-256/seed-0 --port 8080
      LLMREC_API_KEY=secret llmrec serve -d prepared/amazon-games-trsr --set server.max_batch_prompts=128
      curl -s localhost:8000/v1/score -H 'content-type: application/json' \\
        -d '{"history": [{"item": "242", "rating": 5}], "candidates": ["302", "377"]}'
    """
    require_extra("llmrec serve", "serve", ("fastapi", "uvicorn"))
    from llmrec.serve import ServeConfig, check_run_data, settings_from_run

    defaults = settings_from_run(run_dir, data) if run_dir else None
    named = {"data": data, "model.name": model_name, "adapter": adapter, "server.host": host, "server.port": port,
             "server.api_key": os.environ.get(api_key_env) or None,
             "server.micro_batching": False if no_micro_batching else None}
    config = config_command(ServeConfig, config_path, overrides, named, print_config, defaults=defaults)
    if config is None:
        return
    check_run_data(config, run_dir, defaults)
    config.server.check_address()  # before the model loads
    from llmrec.serve.app import create_app
    from llmrec.serve.service import RecommenderService

    sample_scorer = None
    if config.baseline is not None:
        from llmrec.baselines.run import BaselineScorer

        sample_scorer = BaselineScorer.from_run(config.baseline, source="samples")  # a request carries its history
    service = RecommenderService.load(config, sample_scorer=sample_scorer, log=echo_err)
    app = create_app(service)
    s = config.server
    d = service.describe
    shape = f"template {d['template']}" if d["template"] else "no prompts"
    echo_err(f"serving {d['model']}"
             f" on {d['dataset']}/{d['protocol']} ({d['kind']} samples, {shape}, {d['items']} items)")
    echo_err(f"API at http://{s.host}:{s.port}/v1/score, docs at http://{s.host}:{s.port}/docs"
             + ("; X-API-Key required" if s.api_key else "") + "; Ctrl-C stops after the requests in flight")
    from llmrec.serve.app import serve

    serve(app, host=s.host, port=s.port, graceful_timeout_s=s.graceful_timeout_s)
