"""Admission: authorise, validate, redact, apply backpressure and budgets, store the job,
hand it to the broker.

PII and credentials in the question are replaced by placeholders here, before anything is
stored or logged: the database, the queue and every later stage only see the redacted text.

The job row is committed before the message is sent, and the message is sent after the
response (ragline/dispatch.py); if sending fails (broker down) or never happens (the process
dies) the row stays queued with no dispatch time and the sweeper sends it later, so a 202
always means the job will be processed.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from ragline import metrics
from ragline.accounts import Principal
from ragline.backlog import BacklogGauge
from ragline.budget import BudgetBook, estimate
from ragline.config import ModelSpec, RaglineConfig
from ragline.dispatch import Dispatcher
from ragline.errors import InvalidInput, OverBudget, Overloaded
from ragline.guardrails.layer import GuardrailLayer
from ragline.jobs import JobRepository, request_hash
from ragline.models import Job, Role
from ragline.pipeline.validate import JobRequest, validate_request
from ragline.webhooks import check_callback_url

log = structlog.get_logger("ragline.admission")


class Admission:
    def __init__(
        self,
        config: RaglineConfig,
        jobs: JobRepository,
        dispatcher: Dispatcher,
        budgets: BudgetBook,
        model: ModelSpec,
        guardrails: GuardrailLayer,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.budgets = budgets
        self.model = model  # as it will run (see bootstrap.effective_spec), for prices
        self.guardrails = guardrails
        self.backlog = BacklogGauge(jobs.queue_depth, config.jobs.max_queue_depth)

    def submit(
        self,
        principal: Principal,
        request: JobRequest,
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> tuple[Job, bool]:
        principal.require(Role.SUBMITTER)
        validate_request(request, self.config.assistant_pipeline.input_validation)
        self._check_feature(request.feature)
        if request.callback_url is not None:
            check_callback_url(
                request.callback_url, allow_private=self.config.deliveries.allow_private_targets
            )
        # Before redaction: a replay must send what the first request sent, not merely
        # something that redacts to the same text.
        sent_hash = (
            None
            if idempotency_key is None
            else request_hash(request, key_id=principal.key_id, idempotency_key=idempotency_key)
        )
        admitted = self.guardrails.admit(request.question)
        request = request.model_copy(update={"question": admitted.text})
        try:
            self._check_backlog()
            self._check_budget(principal, request)
        except (Overloaded, InvalidInput):
            # A retry of an accepted job gets its job back, even while admission is closed.
            replayed = self._replayed(principal, idempotency_key, sent_hash)
            if replayed is None:
                raise
            return replayed, False
        # The key is looked up by the insert itself (its unique index): a replay is found
        # there, without a read ahead of every submission.
        job, created = self.jobs.submit(
            request,
            account_id=principal.account_id,
            key_id=principal.key_id,
            groups=principal.groups,
            deadline=timedelta(milliseconds=self.config.jobs.deadline_ms),
            idempotency_key=idempotency_key,
            sent_hash=sent_hash,
            request_id=request_id,
            guardrails={"input": admitted.record},
        )
        if created:
            self.backlog.admitted()
            metrics.JOBS_SUBMITTED.labels(
                metrics.feature_label(job.feature, self.config.budgets)
            ).inc()
            self.dispatcher.dispatch(job.id)
            log.info("job_admitted", job_id=job.id, feature=job.feature, key_id=principal.key_id)
        else:
            log.info("job_replayed", job_id=job.id)
        return job, created

    def _replayed(
        self, principal: Principal, idempotency_key: str | None, sent_hash: str | None
    ) -> Job | None:
        if idempotency_key is None or sent_hash is None:
            return None
        replayed = self.jobs.replay(principal.key_id, idempotency_key, sent_hash)
        if replayed is not None:
            log.info("job_replayed", job_id=replayed.id)
        return replayed

    def queue_depth(self) -> int:
        return self.jobs.queue_depth()

    def _check_backlog(self) -> None:
        depth = self.backlog.depth()
        if depth >= self.config.jobs.max_queue_depth:
            raise Overloaded(
                f"{depth} jobs are waiting (the bound is {self.config.jobs.max_queue_depth}); "
                "retry later",
                retry_after_s=self.config.jobs.retry_after_s,
            )

    def _check_feature(self, feature: str | None) -> None:
        budgets = self.config.budgets
        declared = budgets.declared_features
        if feature and budgets.undeclared_features == "reject" and feature not in declared:
            raise InvalidInput(
                f"feature '{feature}' is not declared in budgets.features "
                f"(declared: {', '.join(sorted(declared)) or 'none'})",
                field="feature",
            )

    def _check_budget(self, principal: Principal, request: JobRequest) -> None:
        """Refuse now what is known now not to fit, when the configured action is reject:
        the smallest prompt this question can make, against the per-request caps and the
        budgets' remaining room. Everything else is decided at the model call."""
        if self.config.budgets.on_exceeded != "reject":
            return
        smallest = estimate(self.model, [request.question])
        try:
            self.budgets.check_request(smallest)
            self.budgets.precheck(principal.account_name, request.feature, smallest.cost_micros)
        except OverBudget as error:
            raise InvalidInput(f"over budget: {error}", field="budget") from None
