"""The baseline: a FastAPI endpoint that accepts the same body and does nothing, served
by uvicorn with ragline's settings (bench/admission.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/jobs", status_code=202)
def submit(body: dict[str, Any]) -> dict[str, str]:
    return {"id": "0" * 32, "status": "queued"}


@app.get("/v1/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
