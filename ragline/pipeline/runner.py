"""The pipeline runner: claim a job, run its stages under the job's deadline, store the
outcome. The actor in workers/ calls `answer_job(job_id)` and nothing else. The model call
with its budget and fallback is in model_call.py; the outcome the stages build, in
outcome.py."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import structlog

from ragline import metrics
from ragline.budget import Reservation, Spending
from ragline.cache.answers import AnswerCache, Found, Lookup, cache_key
from ragline.cache.consistency import contradiction
from ragline.config import RaglineConfig
from ragline.decision.scorer import DecisionScorer
from ragline.errors import (
    DatabaseUnavailable,
    DeadlineExceeded,
    IndexNotReady,
    InvalidInput,
    ModelError,
    ModelTimeout,
    OverBudget,
    TransientError,
)
from ragline.guardrails.grounding import Grounding, GroundingChecker
from ragline.guardrails.layer import Checked, GuardrailLayer
from ragline.guardrails.pii import Placeholders
from ragline.jobs import Claim, JobRepository, Outcome
from ragline.knowledge.embedder import Vectors
from ragline.knowledge.store import Passage
from ragline.models import CacheState, Job, JobStatus, utcnow
from ragline.observability import StageClock, prompt_hash
from ragline.otlp import OtlpExporter
from ragline.pipeline.answerability import AnswerabilityProbe
from ragline.pipeline.confidence import Confidence, declined, score_confidence
from ragline.pipeline.generate import ChosenModel, Generation, GenerationRequest
from ragline.pipeline.model_call import ModelCaller, remaining_s
from ragline.pipeline.outcome import Progress, citation, passage_ref
from ragline.pipeline.prompts import PromptTemplate
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
        exporter: OtlpExporter | None = None,
        cache: AnswerCache | None = None,
    ) -> None:
        """collection: answer from this index version instead of the one behind the
        retrieval alias (evaluations and replays of a candidate version). fallback: the
        model that answers when the chosen one times out or fails. scorer: the decision
        scorer (ragline/decision/); every process passes the configured one, and only
        tests that exercise the stages around it run without. exporter: where traces go
        over OTLP, when RAGLINE_OTLP_ENDPOINT is set. cache: the answer cache (never for
        evaluations and replays: they measure the model)."""
        self.config, self.jobs, self.scorer = config, jobs, scorer
        self.retriever, self.collection, self.prompt = retriever, collection, prompt
        self.guardrails = guardrails
        self.grounding = GroundingChecker(retriever.embedder)
        self.probe = AnswerabilityProbe(retriever.embedder)
        # What the answer costs and which model gives it: model_call.py.
        self.caller = ModelCaller(config, jobs, budgets, model, downgrade, fallback)
        self.model, self.budgets = model, budgets
        self.exporter, self.cache = exporter, cache
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
            except TransientError as error:
                # A dependency down (the database, as DatabaseUnavailable, or the store) is
                # not the job's fault: failing it would store a FAILED outcome the moment
                # it is back. Released and retried instead.
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
                self._remember(claim.job, outcome)
                metrics.JOBS_FINISHED.labels(outcome.status.value, outcome.reason or "").inc()
                for stage, ms in outcome.stage_timings.items():
                    metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
                if self.exporter is not None:
                    self._export(job_id)
            return outcome.status if stored else None

    def _release(self, claim: Claim, error: Exception) -> None:
        try:
            self.jobs.release(claim)
        except DatabaseUnavailable:
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

    def _check_deadline(self, job: Job) -> None:
        if remaining_s(job) <= 0:
            raise DeadlineExceeded("the job's deadline passed")

    def run(self, job: Job) -> Outcome:
        """The stages on one job, to its outcome; stores nothing itself, so evaluations
        and replays run exactly this on jobs that never reach the database."""
        clock = StageClock(self.config.assistant_pipeline.observability)
        progress = Progress(
            timings=clock.timings,
            model_id=self.model.generator.model_id,
            scorer_version=None if self.scorer is None else self.scorer.version,
            guardrails=dict(job.guardrails),
            scrub=self.guardrails.scrub,
            trace=lambda: clock.trace(job.attempts),
        )
        try:
            checked, vector = self._check_input(job, clock, progress)
            if checked.rejection is not None:
                return progress.policy(JobStatus.REJECTED, checked.rejection)
            self._check_deadline(job)
            lookup = self._look_up(job, vector, clock, progress)
            if lookup.hit is not None and checked.escalation is None:
                return self._answer_from(lookup.hit, progress)
            retrieval, passages, placeholders = self._retrieve(
                job, checked.text, vector, clock, progress
            )
            if checked.escalation is not None:
                # Passages are kept for the reviewer; the model is not called.
                return progress.policy(JobStatus.ESCALATED, checked.escalation)
            self._check_deadline(job)
            model, generation = self._generate(
                job, checked.text, passages, retrieval, clock, progress
            )
            output, grounding = self._check_output(
                generation, passages, placeholders, clock, progress
            )
            decided = self._score(
                job,
                model,
                checked.text,
                retrieval,
                passages,
                generation,
                grounding,
                clock,
                progress,
            )
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
            "citations": [citation(passages[i], number=i + 1) for i in generation.cited],
            "confidence": decided["probability"],
        }
        routed = self._route(progress, draft, generation, output, grounding, decided["threshold"])
        return self._check_consistency(job, routed, lookup, progress)

    # -- the answer cache (ragline/cache/) --------------------------------------------------

    def _look_up(
        self, job: Job, vector: Vectors | None, clock: StageClock, progress: Progress
    ) -> Lookup:
        """An equivalent question's final answer under the active versions, before any
        retrieval or model call. Not for a question the guardrails redacted (vector None,
        or redacted at admission): it is about a person. Files the job's key on progress
        so the answer can be stored and checked for consistency."""
        if self.cache is None or vector is None or job.guardrails.get("input", {}).get("redacted"):
            return Lookup()
        with clock.stage("cache"):
            try:
                index_version = self.retriever.store.resolve_alias(
                    self.config.assistant_pipeline.retrieval.source
                )
            except Exception as error:  # the store down: retrieval will say so
                log.warning("cache_versions_unread", error=type(error).__name__)
                return Lookup()
            key = cache_key(
                job.feature,
                self.prompt.version,
                self.model.generator.model_id,
                index_version,
                progress.scorer_version,
            )
            if key is None:
                return Lookup()
            progress.vector, progress.cache_key = vector, key
            if not self.cache.applies(job):
                clock.annotate(result="opted_out")
                return Lookup()
            lookup = self.cache.lookup(job, job.question, vector, key)
            found = lookup.hit or lookup.rejected
            clock.annotate(
                result="hit" if lookup.hit else "rejected" if lookup.rejected else "miss",
                source_job=None if found is None else found.job.id,
                similarity=None if found is None else round(found.similarity, 4),
                reviewed=lookup.hit is not None and lookup.hit.entry.state == CacheState.REVIEWED,
            )
        return lookup

    def _answer_from(self, found: Found, progress: Progress) -> Outcome:
        """The job answered with the source job's final answer: no retrieval, no model call,
        no spend. Versions and passages are the source's (the same key)."""
        assert self.cache is not None
        source = found.job
        progress.prompt_version, progress.index_version = (
            source.prompt_version,
            source.index_version,
        )
        progress.model_id, progress.scorer_version = source.model_id or "", source.scorer_version
        progress.passages = list(source.passages)
        progress.cache_key = None  # the source stays the entry
        reviewed = found.entry.state == CacheState.REVIEWED
        progress.confidence_inputs["cache"] = {
            "source_job": source.id,
            "reviewed": reviewed,
            "similarity": round(found.similarity, 4),
        }
        self.cache.served(found)
        return progress.outcome(
            JobStatus.ANSWERED,
            None,
            answer=found.answer,
            # A reviewer's own words cite nothing; the model's answer keeps its citations.
            citations=[] if found.entry.answer else list(source.citations),
            confidence=source.confidence,
            cached_from=source.id,
        )

    def _check_consistency(
        self, job: Job, outcome: Outcome, lookup: Lookup, progress: Progress
    ) -> Outcome:
        """A new answer a reviewer already rejected for an equivalent question, or one that
        contradicts an equivalent question's recent answer, goes to a person."""
        if lookup.rejected is not None and outcome.status in (
            JobStatus.ANSWERED,
            JobStatus.ESCALATED,
        ):
            rejected = lookup.rejected
            inputs = dict(outcome.confidence_inputs)
            inputs["cache"] = {"rejected_job": rejected.job.id, "note": rejected.entry.note}
            if outcome.status == JobStatus.ESCALATED:
                return replace(outcome, confidence_inputs=inputs)
            return replace(
                outcome,
                status=JobStatus.ESCALATED,
                reason=ReviewReason.PREVIOUSLY_REJECTED.value,
                error="a reviewer rejected the answer to an equivalent question",
                confidence_inputs=inputs,
            )
        if (
            outcome.status != JobStatus.ANSWERED
            or self.cache is None
            or not self.config.cache.consistency
            or progress.cache_key is None
            or not outcome.answer
        ):
            return outcome
        try:
            found = self.cache.equivalents(job, job.question, progress.vector, progress.cache_key)
        except Exception as error:  # as a lookup: never fails the job
            log.warning("cache_consistency_unchecked", error=type(error).__name__)
            return outcome
        for other in found:
            if other.entry.state not in (CacheState.ANSWERED, CacheState.REVIEWED):
                continue
            differs = contradiction(outcome.answer, other.answer or "")
            if differs is None:
                continue
            inputs = dict(outcome.confidence_inputs)
            inputs["consistency"] = {"conflicts_with": other.job.id, "differs": differs}
            return replace(
                outcome,
                status=JobStatus.ESCALATED,
                reason=ReviewReason.INCONSISTENT.value,
                error="the answer contradicts a recent answer to an equivalent question "
                f"({differs.split(':')[0]})",
                confidence_inputs=inputs,
            )
        return outcome

    def _remember(self, job: Job, outcome: Outcome) -> None:
        """After the outcome is stored: offer a model's answer to equivalent questions, or
        keep an escalated draft's question for the reviewer's decision."""
        if self.cache is None or outcome.cache_key is None or not self.cache.applies(job):
            return
        if outcome.status == JobStatus.ANSWERED and outcome.reason is None:
            state = CacheState.ANSWERED
        elif outcome.status == JobStatus.ESCALATED and outcome.answer:
            state = CacheState.PENDING
        else:
            return
        self.cache.remember(job, outcome.question_vector, outcome.cache_key, state)

    # -- the stages, in order ------------------------------------------------------------

    def _check_input(
        self, job: Job, clock: StageClock, progress: Progress
    ) -> tuple[Checked, Vectors | None]:
        """Validate, embed once and run the input guardrails; the vector is None when
        the guardrails changed the question (retrieval embeds what is actually asked)."""
        with clock.stage("validate"):
            request = JobRequest(
                question=job.question, user_id=job.user_id, feature=job.feature, metadata=job.meta
            )
            validate_request(request, self.config.assistant_pipeline.input_validation)
        self._check_deadline(job)
        with clock.stage("embed"):
            # Once per job: retrieval, topic similarity and scoring all use it.
            vector: Vectors | None = self.retriever.embedder.embed_one(job.question)
        with clock.stage("input_guardrails"):
            checked = self.guardrails.check_input(
                job.question, job.guardrails.get("input", {}), vector
            )
            progress.record("input", checked)
            clock.annotate(verdicts=[v.rule for v in checked.verdicts], redacted=checked.redacted)
        return checked, vector if checked.text == job.question else None

    def _retrieve(
        self,
        job: Job,
        question: str,
        vector: Vectors | None,
        clock: StageClock,
        progress: Progress,
    ) -> tuple[Retrieval, list[Passage], Placeholders]:
        """The passages the job's groups may read, with their PII redacted the way the
        question's was (placeholders continue the question's numbering)."""
        retrieval_config = self.config.assistant_pipeline.retrieval
        with clock.stage("retrieve"):
            retrieval = self.retriever.retrieve(
                question,
                retrieval_config.source,
                retrieval_config.top_k,
                groups=job.groups,
                vector=vector,
                collection=self.collection,
            )
            placeholders = Placeholders.continuing(question)
            passages, redacted = self.guardrails.guard_passages(retrieval.passages, placeholders)
            if redacted:
                progress.guardrails["passages"] = {"redacted": redacted}
            clock.annotate(
                index_version=retrieval.index_version,
                mode=self.retriever.mode,
                top_k=retrieval_config.top_k,
                chunks=[{"chunk_id": p.chunk_id, "score": round(p.score, 4)} for p in passages],
                redacted=redacted,
            )
        progress.index_version = retrieval.index_version
        progress.passages = [passage_ref(p) for p in passages]
        return retrieval, passages, placeholders

    def _generate(
        self,
        job: Job,
        question: str,
        passages: list[Passage],
        retrieval: Retrieval,
        clock: StageClock,
        progress: Progress,
    ) -> tuple[ChosenModel, Generation]:
        """Render the prompt and call the model (budget, downgrade and fallback included)."""
        observability = self.config.assistant_pipeline.observability
        with clock.stage("generate"):
            prompt = self.prompt.render(question, passages)
            progress.prompt_version = prompt.version
            rendered_hash = prompt_hash(prompt.text)
            if observability.log_prompt_hash:
                log.info("prompt_rendered", prompt_hash=rendered_hash)
            request = GenerationRequest(question, passages, prompt, retrieval.question_vector)
            model, generation, call_ms = self.caller.generate(job, request, progress, clock)
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
        return model, generation

    def _check_output(
        self,
        generation: Generation,
        passages: list[Passage],
        placeholders: Placeholders,
        clock: StageClock,
        progress: Progress,
    ) -> tuple[Checked, Grounding | None]:
        with clock.stage("output_guardrails"):
            output = self.guardrails.check_output(generation.text, generation.cited, placeholders)
            progress.record("output", output)
            grounding = self.grounding.check(output.text, passages)
            clock.annotate(
                verdicts=[v.rule for v in output.verdicts],
                redacted=output.redacted,
                grounding=None if grounding is None else grounding.score,
                unsupported_sentences=0 if grounding is None else len(grounding.unsupported),
            )
        return output, grounding

    def _score(
        self,
        job: Job,
        model: ChosenModel,
        question: str,
        retrieval: Retrieval,
        passages: list[Passage],
        generation: Generation,
        grounding: Grounding | None,
        clock: StageClock,
        progress: Progress,
    ) -> dict[str, Any]:
        """The heuristic confidence, then the answerability decision: the probability
        that the passages answer the question, and the threshold it is held to."""
        with clock.stage("score"):
            confidence = score_confidence(
                passages,
                retrieval.question_vector,
                grounding,
                bool(generation.cited),
                self.retriever.embedder,
            )
            progress.confidence_inputs = dict(confidence.as_dict())
            if grounding is not None:
                progress.confidence_inputs["sentences"] = [s.as_dict() for s in grounding.sentences]
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
        return decided

    def _route(
        self,
        progress: Progress,
        draft: dict[str, Any],
        generation: Generation,
        output: Checked,
        grounding: Grounding | None,
        threshold: float,
    ) -> Outcome:
        """Answer, or hand the draft to a person, and why."""
        if output.rejection is not None:
            return progress.policy(JobStatus.REJECTED, output.rejection, **draft)
        if generation.declined or (generation.declined is None and declined(output.text)):
            # The model says the passages do not answer: never sent as an answer, whatever
            # the scores say.
            return progress.outcome(
                JobStatus.ESCALATED, ReviewReason.NO_ANSWER.value, **{**draft, "confidence": 0.0}
            )
        if output.escalation is not None:
            return progress.policy(JobStatus.ESCALATED, output.escalation, **draft)
        # A sentence the passages do not support (an invented number, a claim no passage
        # makes) is the generative model's typical error: the answer is not sent as it is,
        # however answerable the question (scripts/generative_eval.py measures this).
        unsupported = 0 if grounding is None else len(grounding.unsupported)
        low = draft["confidence"] < threshold or unsupported > 0
        fallback = self.config.assistant_pipeline.fallback
        routed_to_human = low and fallback.on_low_confidence == "route_to_human"
        detail = progress.note
        if unsupported:
            detail = f"grounding: {unsupported} answer sentence(s) not supported by the passages"
        return progress.outcome(
            JobStatus.ESCALATED if routed_to_human else JobStatus.ANSWERED,
            ReviewReason.LOW_CONFIDENCE.value if low else None,
            error=detail,
            **draft,
        )
