"""Guardrails: PII redaction, policy checks and grounding, one layer of the pipeline."""
