"""The generate stage's model call with its money and its fallback: reserve the worst-case
cost (downgrading to the cheaper model when the budgets say so), call the model within the
time the job has left, settle with the cost it reports, and on a timeout or failure try the
fallback model once under the same rules."""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from ragline import metrics
from ragline.budget import Estimate, Reservation, Spending, Usage, cost_micros, estimate
from ragline.config import RaglineConfig
from ragline.errors import ModelError, ModelTimeout, OverBudget
from ragline.jobs import JobRepository
from ragline.models import Job, utcnow
from ragline.observability import StageClock
from ragline.pipeline.generate import ChosenModel, Generation, GenerationRequest
from ragline.pipeline.outcome import Progress
from ragline.pipeline.prompts import RenderedPrompt
from ragline.reasons import ReviewReason

log = structlog.get_logger("ragline.pipeline")


@dataclass(frozen=True)
class ModelCaller:
    """model: the configured one; downgrade: the cheaper one the budgets may choose;
    fallback: the one that answers when the chosen one times out or fails."""

    config: RaglineConfig
    jobs: JobRepository  # for the account's name, which budgets are kept by
    budgets: Spending
    model: ChosenModel
    downgrade: ChosenModel | None
    fallback: ChosenModel | None

    def _call_timeout_s(self, job: Job) -> float:
        timeout_ms = self.config.assistant_pipeline.generation.timeout_ms
        return min(timeout_ms / 1000, remaining_s(job))

    def generate(
        self, job: Job, request: GenerationRequest, progress: Progress, clock: StageClock
    ) -> tuple[ChosenModel, Generation, float]:
        """Reserve and call the model; when it times out or fails, the fallback model once,
        in the time the job has left. When there is no fallback, no time, or the fallback
        fails too, the primary's error is raised: the job escalates as it would without."""
        model, reservation, estimated = self._reserve(job, request.prompt, progress)
        progress.model_id = model.generator.model_id
        try:
            generation, call_ms = self._call(
                job, model, reservation, estimated, request, self._call_timeout_s(job), clock
            )
            return model, generation, call_ms
        except ModelError as primary_error:  # ModelTimeout included
            fallback = self.fallback
            if fallback is None or fallback.name == model.name:
                raise
            if remaining_s(job) <= 0:
                clock.annotate(fallback_skipped="deadline")
                raise
            failure = (
                ReviewReason.TIMEOUT
                if isinstance(primary_error, ModelTimeout)
                else ReviewReason.MODEL_ERROR
            )
            error_class = type(primary_error).__name__
            # Names and classes only: the error text may quote the provider's response.
            log.warning(
                "model_fallback", model=model.name, fallback=fallback.name, error=error_class
            )
            clock.annotate(
                fallback_from=model.name, primary_error=failure, primary_error_class=error_class
            )
            try:
                # The primary's reservation was released by _call; the same budget rules
                # (caps, per-request limits, downgrade) apply to the fallback's.
                model, reservation, estimated = self._reserve(
                    job, request.prompt, progress, first=fallback
                )
                generation, call_ms = self._call(
                    job, model, reservation, estimated, request, self._call_timeout_s(job), clock
                )
            except (ModelError, OverBudget) as fallback_error:
                log.warning(
                    "model_fallback_failed",
                    fallback=fallback.name,
                    error=type(fallback_error).__name__,
                )
                clock.annotate(fallback_error=type(fallback_error).__name__)
                raise primary_error from fallback_error
            return model, generation, call_ms

    def _reserve(
        self,
        job: Job,
        prompt: RenderedPrompt,
        progress: Progress,
        first: ChosenModel | None = None,
    ) -> tuple[ChosenModel, Reservation, Estimate]:
        """Reserve the worst-case cost of the call to first (default: the configured
        model); downgrade to the cheaper model when the budgets say so. Raises OverBudget
        when nothing fits."""
        # An evaluation's job belongs to no account (its budget ignores the name).
        account = self.jobs.account_name(job.account_id) if job.account_id else ""
        candidates = [first or self.model]
        if self.config.budgets.on_exceeded == "downgrade" and self.downgrade is not None:
            candidates.append(self.downgrade)
        refusal: OverBudget | None = None
        for model in candidates:
            estimated = estimate(model.spec, [prompt.system, prompt.user])
            try:
                self.budgets.check_request(estimated)
                reservation = self.budgets.reserve(
                    job.id, account, job.feature, estimated.cost_micros
                )
            except OverBudget as error:
                log.info("budget_exceeded", model=model.name, detail=str(error))
                refusal = error
                continue
            if refusal is not None:
                progress.note = f"downgraded to {model.name}: {refusal}"
            return model, reservation, estimated
        assert refusal is not None
        raise refusal

    def _call(
        self,
        job: Job,
        model: ChosenModel,
        reservation: Reservation,
        estimated: Estimate,
        request: GenerationRequest,
        timeout_s: float,
        clock: StageClock,
    ) -> tuple[Generation, float]:
        """Call the model, then settle the reservation with the cost it reports (or the
        reserved worst case when it reports no usage) and write the ledger row. Returns
        the generation and how long the call itself took, in ms; a failed call's time is
        noted on the stage as failed_call_ms (the watchdog's bound, apart from our work)."""
        started = time.perf_counter()
        try:
            generation = model.generator.generate(request, timeout_s)
        except BaseException as error:
            clock.annotate(failed_call_ms=round((time.perf_counter() - started) * 1000, 3))
            self.budgets.release(reservation, job.id)
            outcome = "timeout" if isinstance(error, ModelTimeout) else "error"
            metrics.MODEL_CALLS.labels(model.generator.model_id, outcome).inc()
            raise
        call_ms = round((time.perf_counter() - started) * 1000, 3)
        metrics.MODEL_CALLS.labels(generation.model_id, "ok").inc()
        reported = bool(generation.usage)
        tokens_in = generation.input_tokens if reported else estimated.input_tokens
        tokens_out = generation.output_tokens if reported else estimated.output_tokens
        spent = cost_micros(model.spec.price, tokens_in, tokens_out)
        self.budgets.settle(
            reservation,
            Usage(
                job_id=job.id,
                account_id=job.account_id,
                feature=job.feature,
                model_id=generation.model_id,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_micros=spent,
            ),
        )
        label = metrics.feature_label(job.feature, self.config.budgets)
        metrics.SPEND.labels(label).inc(spent / 1_000_000)
        return generation, call_ms


def remaining_s(job: Job) -> float:
    return (job.deadline_at - utcnow()).total_seconds()
