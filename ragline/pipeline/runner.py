"""The pipeline runner: claim a job, run its stages under the job's deadline, store the
outcome. The actor in workers/ calls `answer_job(job_id)` and nothing else."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import OperationalError

from ragline import metrics
from ragline.budget import Estimate, Reservation, Spending, Usage, cost_micros, estimate
from ragline.config import RaglineConfig
from ragline.decision.scorer import DecisionScorer
from ragline.errors import (
    DeadlineExceeded,
    IndexNotReady,
    InvalidInput,
    ModelError,
    ModelTimeout,
    OverBudget,
    TransientError,
)
from ragline.guardrails.grounding import Grounding, GroundingChecker
from ragline.guardrails.layer import Checked, GuardrailLayer, add_counts
from ragline.guardrails.pii import Placeholders
from ragline.guardrails.policy import Verdict
from ragline.jobs import Claim, JobRepository, Outcome
from ragline.knowledge.embedder import Vectors
from ragline.knowledge.store import Passage
from ragline.models import Job, JobStatus, utcnow
from ragline.observability import StageClock, prompt_hash
from ragline.otlp import OtlpExporter
from ragline.pipeline.answerability import AnswerabilityProbe
from ragline.pipeline.confidence import Confidence, declined, score_confidence
from ragline.pipeline.generate import ChosenModel, Generation, GenerationRequest
from ragline.pipeline.prompts import PromptTemplate, RenderedPrompt
from ragline.pipeline.retrieve import Retrieval, Retriever
from ragline.pipeline.validate import JobRequest, validate_request
from ragline.provenance import Versions
from ragline.reasons import ReviewReason
from ragline.review import sla
from ragline.tracing import job_trace

log = structlog.get_logger("ragline.pipeline")


class Pipeline:
    def __init__(
        self,
        config: RaglineConfig,
        jobs: JobRepository,
        retriever: Retriever,
        model: ChosenModel,
        prompt: PromptTemplate,
        budgets: Spending,
        guardrails: GuardrailLayer,
        downgrade: ChosenModel | None = None,
        collection: str | None = None,
        fallback: ChosenModel | None = None,
        scorer: DecisionScorer | None = None,
    ) -> None:
        """collection: answer from this index version instead of the one behind the
        retrieval alias (evaluations and replays of a candidate version). fallback: the
        model that answers when the chosen one times out or fails. scorer: the decision
        scorer (ragline/decision/); every process passes the configured one, and only
        tests that exercise the stages around it run without."""
        self.config = config
        self.guardrails = guardrails
        self.grounding = GroundingChecker(retriever.embedder)
        self.probe = AnswerabilityProbe(retriever.embedder)
        self.scorer = scorer
        self.jobs = jobs
        self.retriever = retriever
        self.model = model
        self.prompt = prompt
        self.budgets = budgets
        self.downgrade = downgrade
        self.collection = collection
        self.fallback = fallback
        self.exporter: OtlpExporter | None = None  # set by build_pipeline when configured
        self.lease = timedelta(milliseconds=config.jobs.lease_ms)

    def answer_job(self, job_id: str) -> JobStatus | None:
        """Run one job to a final status. Returns None when the job is not ours to run
        (already finished, or another worker holds a live lease)."""
        claim = self.jobs.claim(job_id, self.lease)
        if claim is None:
            log.info("job_skipped", job_id=job_id)
            return None
        with structlog.contextvars.bound_contextvars(
            job_id=job_id, request_id=claim.job.request_id, attempt=claim.attempt
        ):
            log.info("job_started")
            if claim.job.reservation:
                # An earlier attempt died between reserving and settling: give it back.
                self.budgets.release(Reservation.of(claim.job.reservation), job_id)
                log.warning("stale_reservation_released")
            try:
                outcome = self.run(claim.job)
            except (TransientError, OperationalError) as error:
                # The database (budgets, accounts) going away mid-run is a dependency down,
                # not the job's fault: failing it would store a FAILED outcome the moment
                # the database is back. Retried instead, like any transient error.
                self._release(claim, error)
                raise
            except Exception as error:
                log.exception("job_failed", error=type(error).__name__)
                outcome = Outcome(status=JobStatus.FAILED, error=f"{type(error).__name__}")
            sampled = (
                outcome.status == JobStatus.ANSWERED
                and self.config.assistant_pipeline.observability.sample_outputs_for_review
                and random.random() < self.config.review.sample_rate
            )
            reason = ReviewReason.SAMPLED if sampled else outcome.reason or ""
            stored = self.jobs.finish(
                claim,
                outcome,
                review_due=utcnow() + sla(self.config.review, reason),
                sampled=sampled,
            )
            log.info(
                "job_finished" if stored else "job_outcome_discarded",
                status=outcome.status.value,
                reason=outcome.reason,
                confidence=outcome.confidence,
                model_id=outcome.model_id,
                prompt_version=outcome.prompt_version,
                index_version=outcome.index_version,
                latency_ms=round(sum(outcome.stage_timings.values()), 3),
            )
            if stored:
                metrics.JOBS_FINISHED.labels(outcome.status.value, outcome.reason or "").inc()
                for stage, ms in outcome.stage_timings.items():
                    metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
                if self.exporter is not None:
                    self._export(job_id)
            return outcome.status if stored else None

    def _release(self, claim: Claim, error: Exception) -> None:
        try:
            self.jobs.release(claim)
        except OperationalError:
            # Still down: the lease runs out and the sweeper sends the job again.
            log.warning("job_release_failed", error=type(error).__name__)
            return
        log.warning("job_released", error=type(error).__name__)

    def _export(self, job_id: str) -> None:
        """After the outcome is committed: the stored trace is the record, export a copy."""
        try:
            job = self.jobs.get(job_id)
            spans = job_trace(self.jobs.engine, job)
        except Exception as error:  # the job is done; a failed export must not undo that
            log.warning("otlp_trace_unavailable", error=type(error).__name__)
            return
        assert self.exporter is not None
        self.exporter.export(
            job.id,
            spans,
            {
                "status": job.status,
                "reason": job.reason,
                "feature": job.feature,
                **Versions.of(job).as_dict(),
                "confidence": job.confidence,
                "request_id": job.request_id,
            },
        )

    def threshold(self, model: str, feature: str | None) -> float:
        """The confidence below which a job answered by model (for feature) is routed:
        fallback.min_confidence when set, else the scorer's calibrated threshold (0.5, the
        heuristic confidence's midpoint, for a pipeline built without a scorer)."""
        override = self.config.assistant_pipeline.fallback.min_confidence
        if override is not None:
            return override
        return 0.5 if self.scorer is None else self.scorer.threshold(model, feature)

    def _decide(
        self,
        question: str,
        retrieval: Retrieval,
        passages: list[Passage],
        grounding: Grounding | None,
        confidence: Confidence,
    ) -> dict[str, Any]:
        """Do these passages answer this question, or only talk about its topic? The
        signals, the evidence, the missing constraints and the scorer's probability (the
        heuristic confidence when the pipeline has no scorer)."""
        signals = self.probe.measure(
            question,
            retrieval.question_vector,
            passages,
            grounding=None if grounding is None else grounding.score,
            answer_relevance=confidence.relevance_cosine,
        )
        decided: dict[str, Any] = dict(signals.as_dict())
        decided["probability"] = confidence.value
        if self.scorer is not None:
            decided["probability"] = round(self.scorer.probability(signals.values), 4)
            decided["scorer_version"] = self.scorer.version
        return decided

    def _remaining_s(self, job: Job) -> float:
        return (job.deadline_at - utcnow()).total_seconds()

    def _call_timeout_s(self, job: Job) -> float:
        timeout_ms = self.config.assistant_pipeline.generation.timeout_ms
        return min(timeout_ms / 1000, self._remaining_s(job))

    def _check_deadline(self, job: Job) -> None:
        if self._remaining_s(job) <= 0:
            raise DeadlineExceeded("the job's deadline passed")

    def run(self, job: Job) -> Outcome:
        """The stages on one job, to its outcome; stores nothing itself, so evaluations
        and replays run exactly this on jobs that never reach the database."""
        pipeline = self.config.assistant_pipeline
        clock = StageClock(pipeline.observability)
        progress = _Progress(
            timings=clock.timings,
            model_id=self.model.generator.model_id,
            scorer_version=None if self.scorer is None else self.scorer.version,
            guardrails=dict(job.guardrails),
            scrub=self.guardrails.scrub,
            trace=lambda: clock.trace(job.attempts),
        )
        embedder = self.retriever.embedder
        try:
            with clock.stage("validate"):
                request = JobRequest(
                    question=job.question,
                    user_id=job.user_id,
                    feature=job.feature,
                    metadata=job.meta,
                )
                validate_request(request, pipeline.input_validation)
            self._check_deadline(job)

            with clock.stage("embed"):
                # Once per job: retrieval, topic similarity and scoring all use it.
                vector: Vectors | None = embedder.embed_one(job.question)

            with clock.stage("input_guardrails"):
                checked = self.guardrails.check_input(
                    job.question, job.guardrails.get("input", {}), vector
                )
                progress.record("input", checked)
                clock.annotate(
                    verdicts=[v.rule for v in checked.verdicts], redacted=checked.redacted
                )
                question = checked.text
                if question != job.question:
                    vector = None  # the question changed: embed what is actually asked
            if checked.rejection is not None:
                return progress.policy(JobStatus.REJECTED, checked.rejection)
            self._check_deadline(job)

            with clock.stage("retrieve"):
                retrieval = self.retriever.retrieve(
                    question,
                    pipeline.retrieval.source,
                    pipeline.retrieval.top_k,
                    groups=job.groups,
                    vector=vector,
                    collection=self.collection,
                )
                placeholders = Placeholders.continuing(question)
                passages, redacted = self.guardrails.guard_passages(
                    retrieval.passages, placeholders
                )
                if redacted:
                    progress.guardrails["passages"] = {"redacted": redacted}
                clock.annotate(
                    index_version=retrieval.index_version,
                    mode=self.retriever.mode,
                    top_k=pipeline.retrieval.top_k,
                    chunks=[{"chunk_id": p.chunk_id, "score": round(p.score, 4)} for p in passages],
                    redacted=redacted,
                )
            progress.index_version = retrieval.index_version
            progress.passages = [_passage_ref(p) for p in passages]
            if checked.escalation is not None:
                # Passages are kept for the reviewer; the model is not called.
                return progress.policy(JobStatus.ESCALATED, checked.escalation)
            self._check_deadline(job)

            with clock.stage("generate"):
                prompt = self.prompt.render(question, passages)
                progress.prompt_version = prompt.version
                rendered_hash = prompt_hash(prompt.text)
                if pipeline.observability.log_prompt_hash:
                    log.info("prompt_rendered", prompt_hash=rendered_hash)
                model, generation, call_ms = self._generate(
                    job,
                    GenerationRequest(question, passages, prompt, retrieval.question_vector),
                    progress,
                    clock,
                )
            progress.model_id = generation.model_id
            clock.annotate(
                prompt_version=prompt.version,
                prompt_hash=rendered_hash,
                model=model.name,
                call_ms=call_ms,  # the answering provider's own time; the rest is ours
                model_id=generation.model_id,
                input_tokens=generation.input_tokens,
                output_tokens=generation.output_tokens,
                cited=generation.cited,
                downgrade=progress.note,
            )

            with clock.stage("output_guardrails"):
                output = self.guardrails.check_output(
                    generation.text, generation.cited, placeholders
                )
                progress.record("output", output)
                grounding = self.grounding.check(output.text, passages)
                clock.annotate(
                    verdicts=[v.rule for v in output.verdicts],
                    redacted=output.redacted,
                    grounding=None if grounding is None else grounding.score,
                    unsupported_sentences=0 if grounding is None else len(grounding.unsupported),
                )

            with clock.stage("score"):
                confidence = score_confidence(
                    passages,
                    retrieval.question_vector,
                    grounding,
                    bool(generation.cited),
                    embedder,
                )
                progress.confidence_inputs = dict(confidence.as_dict())
                if grounding is not None:
                    progress.confidence_inputs["sentences"] = [
                        s.as_dict() for s in grounding.sentences
                    ]
                clock.annotate(**confidence.as_dict())

            with clock.stage("answerability"):
                decided = self._decide(question, retrieval, passages, grounding, confidence)
                value, threshold = decided["probability"], self.threshold(model.name, job.feature)
                if not generation.cited or grounding is None:
                    value = 0.0  # nothing cited or nothing to check is never sent
                decided.update(probability=value, threshold=threshold)
                progress.confidence_inputs["answerability"] = decided
                clock.annotate(
                    scorer_version=progress.scorer_version,
                    probability=value,
                    threshold=threshold,
                    signals=decided["signals"],
                    missing=decided["missing"],
                )
            citations = [_citation(passages[i], number=i + 1) for i in generation.cited]
        except InvalidInput as error:
            return progress.outcome(JobStatus.REJECTED, "invalid_input", error=str(error))
        except (ModelTimeout, DeadlineExceeded) as error:
            return progress.escalate(ReviewReason.TIMEOUT, error)
        except ModelError as error:
            return progress.escalate(ReviewReason.MODEL_ERROR, error)
        except IndexNotReady as error:
            return progress.outcome(JobStatus.FAILED, None, error=str(error))
        except OverBudget as error:
            if self.config.budgets.on_exceeded == "route_to_human":
                return progress.escalate(ReviewReason.OVER_BUDGET, error)
            return progress.outcome(JobStatus.REJECTED, "over_budget", error=str(error))

        draft: dict[str, Any] = {
            "answer": output.text,
            "citations": citations,
            "confidence": value,
        }
        if output.rejection is not None:
            return progress.policy(JobStatus.REJECTED, output.rejection, **draft)
        if generation.declined or (generation.declined is None and declined(output.text)):
            # The model says the passages do not answer: never sent as an answer, whatever
            # the scores say.
            return progress.outcome(
                JobStatus.ESCALATED,
                ReviewReason.NO_ANSWER.value,
                **{**draft, "confidence": 0.0},
            )
        if output.escalation is not None:
            return progress.policy(JobStatus.ESCALATED, output.escalation, **draft)
        # A sentence the passages do not support (an invented number, a claim no passage
        # makes) is the generative model's typical error: the answer is not sent as it is,
        # however answerable the question (scripts/generative_eval.py measures this).
        unsupported = 0 if grounding is None else len(grounding.unsupported)
        low = value < threshold or unsupported > 0
        routed_to_human = low and pipeline.fallback.on_low_confidence == "route_to_human"
        detail = progress.note
        if unsupported:
            detail = f"grounding: {unsupported} answer sentence(s) not supported by the passages"
        return progress.outcome(
            JobStatus.ESCALATED if routed_to_human else JobStatus.ANSWERED,
            ReviewReason.LOW_CONFIDENCE.value if low else None,
            error=detail,
            **draft,
        )

    def _generate(
        self, job: Job, request: GenerationRequest, progress: _Progress, clock: StageClock
    ) -> tuple[ChosenModel, Generation, float]:
        """Reserve and call the model; when it times out or fails, the fallback model once,
        in the time the job has left. When there is no fallback, no time, or the fallback
        fails too, the primary's error is raised: the job escalates as it would without."""
        model, reservation, estimated = self._reserve(job, request.prompt, progress)
        progress.model_id = model.generator.model_id
        try:
            generation, call_ms = self._call(
                job, model, reservation, estimated, request, self._call_timeout_s(job)
            )
            return model, generation, call_ms
        except ModelError as primary_error:  # ModelTimeout included
            fallback = self.fallback
            if fallback is None or fallback.name == model.name:
                raise
            if self._remaining_s(job) <= 0:
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
                    job, model, reservation, estimated, request, self._call_timeout_s(job)
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
        progress: _Progress,
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
    ) -> tuple[Generation, float]:
        """Call the model, then settle the reservation with the cost it reports (or the
        reserved worst case when it reports no usage) and write the ledger row. Returns
        the generation and how long the call itself took, in ms."""
        started = time.perf_counter()
        try:
            generation = model.generator.generate(request, timeout_s)
        except BaseException as error:
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
        metrics.SPEND.labels(job.feature or "").inc(spent / 1_000_000)
        return generation, call_ms


@dataclass
class _Progress:
    """What the stages have established so far; every outcome carries all of it, so an
    escalated or failed job is as traceable as an answered one."""

    timings: dict[str, float]
    model_id: str
    scorer_version: str | None
    guardrails: dict[str, Any]
    scrub: Callable[[str], str]
    trace: Callable[[], dict[str, Any]]
    prompt_version: str | None = None
    index_version: str | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    confidence_inputs: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def record(self, stage: str, checked: Checked) -> None:
        entry = dict(self.guardrails.get(stage, {}))
        if checked.verdicts:
            entry["verdicts"] = [v.as_dict() for v in checked.verdicts]
        if checked.redacted:
            redacted = dict(entry.get("redacted", {}))
            add_counts(redacted, checked.redacted)
            entry["redacted"] = redacted
        if entry:
            self.guardrails[stage] = entry

    def outcome(self, status: JobStatus, reason: str | None, **result: Any) -> Outcome:
        if result.get("error"):
            # Error texts can quote a provider's response or a library's message.
            result["error"] = self.scrub(str(result["error"]))
        return Outcome(
            status=status,
            reason=reason,
            model_id=self.model_id,
            prompt_version=self.prompt_version,
            index_version=self.index_version,
            scorer_version=self.scorer_version,
            passages=self.passages,
            stage_timings=self.timings,
            guardrails=self.guardrails,
            confidence_inputs=self.confidence_inputs,
            trace=self.trace(),
            **result,
        )

    def escalate(self, reason: ReviewReason, error: Exception) -> Outcome:
        return self.outcome(JobStatus.ESCALATED, reason.value, error=str(error))

    def policy(self, status: JobStatus, verdict: Verdict, **result: Any) -> Outcome:
        """A policy verdict decided the job: its rule id is the detail clients see."""
        log.info("policy_verdict", rule=verdict.rule, stage=verdict.stage, action=verdict.action)
        return self.outcome(
            status,
            ReviewReason.POLICY.value,
            error=f"{verdict.rule}: {verdict.detail}",
            **result,
        )


def _passage_ref(passage: Passage) -> dict[str, Any]:
    return {
        "chunk_id": passage.chunk_id,
        "document_id": passage.document_id,
        "title": passage.title,
        "score": round(passage.score, 4),
    }


def _citation(passage: Passage, number: int) -> dict[str, object]:
    return {
        "number": number,
        "document_id": passage.document_id,
        "chunk_id": passage.chunk_id,
        "title": passage.title,
        "score": round(passage.score, 4),
    }
