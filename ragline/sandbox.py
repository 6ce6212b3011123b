"""A throwaway ragline in a temporary folder, for evaluations and benchmarks: SQLite, Qdrant
local mode with a folder of documents indexed and promoted, and the pipeline and admission
wired as `ragline serve` wires them (so redaction, policy and scoring run as in production,
and nothing is delivered)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ragline.accounts import Accounts, Principal
from ragline.admission import Admission
from ragline.budget import BudgetBook
from ragline.config import RaglineConfig
from ragline.db import create_schema, make_engine
from ragline.decision.scorer import DecisionScorer
from ragline.jobs import JobRepository
from ragline.knowledge.embedder import Embedder
from ragline.knowledge.store import KnowledgeStore
from ragline.models import Job
from ragline.pipeline.runner import Pipeline
from ragline.pipeline.validate import JobRequest
from ragline.runtime import Core, build_index_manager, build_pipeline, effective_spec
from ragline.settings import Settings


@dataclass
class Sandbox:
    core: Core
    pipeline: Pipeline
    admission: Admission
    principal: Principal

    def ask(self, question: str, user_id: str = "sandbox") -> Job:
        """Admit the question, answer it in this thread, return the stored job."""
        job, _ = self.admission.submit(
            self.principal, JobRequest(question=question, user_id=user_id)
        )
        self.pipeline.answer_job(job.id)
        return self.core.jobs.get(job.id)


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
        engine = make_engine(f"sqlite:///{root / 'ragline.db'}")
        create_schema(engine)
        store = KnowledgeStore.open(path=root / "qdrant")
        try:
            core = Core(
                Settings(
                    data_dir=root,
                    prompts_dir=prompts_dir,
                    scorers_dir=prompts_dir.parent / "scorers",
                ),
                config,
                engine,
                JobRepository(engine),
            )
            index = build_index_manager(core, store, embedder)
            # A sandbox's corpus is not the configured one: its smoke questions do not apply.
            index.promote(index.build(documents).version, force=True, reason="sandbox")
            pipeline = build_pipeline(core, store, embedder, scorer=scorer)
            admission = Admission(
                config,
                core.jobs,
                lambda _job_id: None,  # answered in the caller's thread, not queued
                BudgetBook(engine, config.budgets),
                effective_spec(core, config.assistant_pipeline.generation.model),
                pipeline.guardrails,
            )
            accounts = Accounts(engine)
            accounts.create_account("sandbox")
            key = accounts.create_key(
                "sandbox", roles=("submitter",), groups=groups, name="sandbox"
            )
            yield Sandbox(core, pipeline, admission, accounts.authenticate(key.plaintext))
        finally:
            store.close()
            engine.dispose()
