"""Settings of ``llmrec serve``: what to load (as in ``llmrec evaluate``) and how to serve it.

The prompt fields, the model, the adapter and the scoring settings mean what they mean for
``llmrec evaluate``, so a served score equals the offline score of the same input. A train or
evaluate run folder can supply them all (:func:`settings_from_run`); a baseline run's folder serves
its classic model (``baseline``).

>>> cfg = ServeConfig(data="prepared/ml-100k-tallrec")
>>> cfg.server.host, cfg.server.port, cfg.server.max_batch_prompts, cfg.server.max_candidates
('127.0.0.1', 8000, 64, 100)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmrec.configfile import read_yaml
from llmrec.errors import ConfigError
from llmrec.llm.settings import ModelConfig, ScoringConfig
from llmrec.prompts.settings import PromptSettings

__all__ = ["ServeConfig", "ServerSettings", "check_run_data", "settings_from_run"]


class ServerSettings(BaseModel):
    """The HTTP side: address, limits, micro-batching, authentication."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address to bind (loopback by default; 0.0.0.0 exposes it)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    api_key: str | None = Field(None, description="require this value in the X-API-Key header (also: env "
                                "LLMREC_API_KEY); None: no authentication")
    micro_batching: bool = Field(True, description="score the prompts of concurrent requests together")
    max_batch_prompts: int = Field(64, ge=1, description="prompts gathered into one scoring call at most")
    admission: Literal["continuous", "request"] = Field(
        "continuous", description="continuous: every scoring call shares its prompts out among all unfinished "
        "requests and a new request joins the next call; request: whole requests per call (docs/serve.md)")
    step_prompts: int | None = Field(None, ge=1, description="continuous admission: prompts per scoring call "
                                     "(None: one forward batch of the language model, scoring.batch_size; "
                                     "max_batch_prompts for a classic model); at most max_batch_prompts")
    max_wait_ms: float = Field(5.0, ge=0, description="how long the first request of a batch waits for others")
    prefix_cache_mib: int = Field(256, ge=0, description="keep the keys and values of prompt prefixes (the template "
                                  "header, a user's context) across scoring calls, least recently used dropped "
                                  "first beyond this many MiB; 0: encode them in every call")
    max_candidates: int = Field(100, ge=1, description="candidates per request at most")
    max_history: int = Field(500, ge=1, description="history items per request at most")
    max_body_bytes: int = Field(1_048_576, ge=256, description="request body size at most (bytes)")
    graceful_timeout_s: float = Field(30.0, ge=0, description="on shutdown, wait this long for requests in flight; "
                                      "then answer them 503 and exit (docs/serve.md)")

    def check_address(self) -> None:
        """A ConfigError when this process cannot listen on ``host:port`` (unknown address, port in use),
        checked before the model loads.

        >>> ServerSettings(host="999.1.1.1").check_address()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        llmrec.errors.ConfigError: server.host/port: cannot listen on 999.1.1.1:8000 (...)
        """
        import asyncio

        async def probe() -> None:  # the way uvicorn binds (asyncio's create_server), then let go at once
            server = await asyncio.get_running_loop().create_server(asyncio.Protocol, host=self.host, port=self.port)
            server.close()
            await server.wait_closed()

        try:
            asyncio.run(probe())
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"server.host/port: cannot listen on {self.host}:{self.port} ({reason})") from None


class ServeConfig(PromptSettings):
    """Everything ``llmrec serve`` needs (the prompt fields come from :class:`PromptSettings`)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared folder whose items (and users) requests name; its protocol decides "
                      "CTR (one prompt per candidate) or ranking prompts (candidates of one list)")
    split: str = Field("test", description="split whose kind and prompt defaults the service follows")
    model: ModelConfig = Field(default_factory=ModelConfig)
    adapter: str | None = Field(None, description="LoRA adapter folder (llmrec train) applied to the model")
    baseline: str | None = Field(None, description="a finished llmrec baseline run: serve its classic model (its "
                                 "selected weights) instead of a language model; the model, adapter, prompt and "
                                 "scoring fields are then unused")
    merge_adapter: bool = Field(False, description="merge the adapter into the weights before serving")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    server: ServerSettings = Field(default_factory=ServerSettings)


_FROM_RUN = ("data", "template", "history_k", "max_prompt_tokens", "chat", "model", "scoring", "adapter",
             "merge_adapter")


def check_run_data(config: Any, run_dir: str | Path | None, defaults: dict[str, Any] | None) -> None:
    """When the data folder still is the one a run's config.yaml named (no --data, -c or --set replaced it) and it is
    not here, say why: the run stored it relative to the folder the run was made in."""
    if run_dir and defaults and config.data == defaults.get("data") and not Path(config.data).is_dir():
        raise ConfigError(f"{Path(run_dir) / 'config.yaml'}: its prepared folder {config.data!r} is not here (a relative path "
                          "is read from the current folder, not the run's); run from the folder the run was made in, "
                          "or pass --data")


def settings_from_run(run_dir: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """The serve settings of a train, evaluate or baseline run folder: its data, model, prompt settings and adapter.

    A train run serves its selected adapter; an evaluate run serves what it scored with; a baseline run its classic
    model (``baseline``). ``data``
    (``--data``) replaces the run's prepared folder (which the run stores as it was given, relative to
    the folder the run was made in: :func:`check_run_data` explains one that is not here).
    """
    run = Path(run_dir)
    cfg_file = run / "config.yaml"
    if not cfg_file.is_file():
        raise ConfigError(f"{run}: not a run folder (no config.yaml)")
    saved = read_yaml(cfg_file)
    if isinstance(saved.get("model"), str) and "params" in saved:  # a classic baseline's run (model: din, sasrec...)
        if not (run / "model" / "best.pt").is_file():
            raise ConfigError(f"{run}: a run of the classic baseline {saved['model']!r} that kept no model "
                              "(model/best.pt); run it to the end to serve it")
        out = {"data": str(data if data is not None else saved["data"]), "baseline": str(run)}
        if saved.get("test", {}).get("split"):
            out["split"] = saved["test"]["split"]
        return out
    out = {k: saved[k] for k in _FROM_RUN if k in saved and saved[k] is not None}
    if (run / "adapter").is_dir():  # a train run: its selected adapter
        out["adapter"] = str(run)
    if data is not None:
        out["data"] = str(data)
    if "data" not in out:
        raise ConfigError(f"{cfg_file}: names no prepared folder (data)")

    model = out.get("model")
    if isinstance(model, dict):  # keep only what the serve model settings know
        out["model"] = {k: v for k, v in model.items() if k in ModelConfig.model_fields}
    scoring = out.get("scoring")
    if isinstance(scoring, dict):
        out["scoring"] = {k: v for k, v in scoring.items() if k in ScoringConfig.model_fields}
    return out
