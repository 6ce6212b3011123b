"""A throwaway ragline in a temporary folder, for evaluations and benchmarks: SQLite, Qdrant
local mode with a folder of documents indexed and promoted, and the pipeline and admission
bootstrapped as `ragline serve` is in embedded mode (so redaction, policy and scoring run as
in production, and nothing is delivered)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ragline.accounts import Principal
from ragline.bootstrap import Mode, Overrides, Services, opened
from ragline.config import RaglineConfig
from ragline.decision.scorer import DecisionScorer
from ragline.knowledge.embedder import Embedder
from ragline.models import Job
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.settings import Settings


@dataclass
class Sandbox:
    services: Services
    principal: Principal

    @property
    def pipeline(self) -> Pipeline:
        return self.services.need_pipeline()

    def ask(self, question: str, user_id: str = "sandbox") -> Job:
        """Admit the question, answer it in this thread, return the stored job."""
        admission, pipeline = self.services.admission, self.pipeline
        assert admission is not None
        job, _ = admission.submit(self.principal, JobRequest(question=question, user_id=user_id))
        pipeline.answer_job(job.id)
        return self.services.jobs.get(job.id)


@contextmanager
def sandbox(
    config: RaglineConfig,
    documents: Path,
    prompts_dir: Path,
    embedder: Embedder,
    scorer: DecisionScorer | None = None,
    groups: tuple[str, ...] = ("everyone",),
) -> Iterator[Sandbox]:
    """scorer: the decision scorer to route with (default: the configured one); groups:
    the document groups the sandbox's key may read."""
    with tempfile.TemporaryDirectory(prefix="ragline-sandbox-") as folder:
        root = Path(folder)
        settings = Settings(
            data_dir=root,
            prompts_dir=prompts_dir,
            scorers_dir=prompts_dir.parent / "scorers",
            # Its own SQLite database and store, whatever the environment names.
            database_url=None,
            qdrant_url=None,
            redis_url=None,
        )
        overrides = Overrides(
            config=config,
            embedder=embedder,
            scorer=scorer,
            send=lambda _job_id: None,  # answered in the caller's thread, not queued
        )
        with opened(settings, Mode.EMBEDDED, overrides) as services:
            index = services.index
            assert index is not None
            # A sandbox's corpus is not the configured one: its smoke questions do not apply.
            index.promote(index.build(documents).version, force=True, reason="sandbox")
            accounts = services.accounts
            accounts.create_account("sandbox")
            key = accounts.create_key(
                "sandbox", roles=("submitter",), groups=groups, name="sandbox"
            )
            yield Sandbox(services, accounts.authenticate(key.plaintext))
