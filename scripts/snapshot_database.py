"""Write a database as this release makes it, for the next release's upgrade test.

Runs the product (embedded mode's services over a throwaway SQLite database and the demo
handbook) until every table holds rows: accounts and keys, answered, escalated and reviewed
jobs, a webhook delivery, usage and budget counters, a budget limit, prompt versions, index
versions and a promotion, an evaluation run. Then writes, under tests/data/databases/NAME/:

- schema.sqlite.sql, schema.postgresql.sql: the DDL of every table and index, as
  `create_all` of this release emits it for each dialect;
- rows.json: every row of every table (datetimes as ISO 8601).

tests/integration/test_migrations.py builds a database from these on SQLite and
PostgreSQL, upgrades it with the migrations and checks every row survived. The snapshot in
tests/data/databases/pre-migrations/ was written at commit 8a30eb3, the last release
without migrations (its schema is the baseline revision).

    .venv/bin/python scripts/snapshot_database.py NAME
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from ragline.config import RaglineConfig, load_config
from ragline.evaluation.dataset import EvalItem
from ragline.evaluation.run import run_evaluation
from ragline.models import Decision
from ragline.observability import configure_logging
from ragline.pipeline.validate import JobRequest

ROOT = Path(__file__).resolve().parent.parent


def ddl(dialect: Any) -> str:
    statements = []
    for table in SQLModel.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return ";\n\n".join(statements) + ";\n"


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    with engine.connect() as connection:
        return {
            table.name: [
                {key: plain(value) for key, value in row._mapping.items()}
                for row in connection.execute(select(table))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


def populate(folder: Path, config: RaglineConfig) -> dict[str, list[dict[str, Any]]]:
    # Imported here: the snapshot of a later release may live where these have moved.
    from ragline.bootstrap import Mode, Overrides, opened
    from ragline.settings import Settings

    settings = Settings(
        data_dir=folder,
        prompts_dir=ROOT / "prompts",
        scorers_dir=ROOT / "scorers",
        database_url=None,
        redis_url=None,
        qdrant_url=None,
        model_base_url=None,
        otlp_endpoint=None,
    )
    with opened(settings, Mode.EMBEDDED, Overrides(config=config, send=lambda _: None)) as s:
        assert s.index is not None and s.admission is not None
        s.index.promote(s.index.build(ROOT / "examples" / "handbook").version)
        s.accounts.create_account("acme")
        issued = s.accounts.create_key("acme", roles=("submitter", "reviewer"), name="crm")
        caller = s.accounts.authenticate(issued.plaintext)
        s.budgets.set_limit("account", "acme", "daily", 25.0, by="ops")
        asked = {}
        for question in (
            "How many days of annual leave do I get?",
            "What is the capital of France?",
        ):
            request = JobRequest(
                question=question,
                user_id="u-42",
                feature="handbook",
                metadata={"ticket": "T-1"},
                callback_url="http://127.0.0.1:9/hook",
            )
            job, _ = s.admission.submit(caller, request, idempotency_key=question[:20])
            s.need_pipeline().answer_job(job.id)
            asked[question] = job.id
        item, _ = s.review.list(caller.account_id, limit=1)[0]
        s.review.claim(item.id, caller)
        s.review.decide(item.id, caller, Decision.APPROVE)
        leave = EvalItem(id="leave", question="How many days of annual leave do I get?")
        run_evaluation(s, [leave], dataset="snapshot")
        return dump(s.engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the folder under tests/data/databases/")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    base = load_config(ROOT / "ragline.yaml").model_dump()
    base["deliveries"]["allow_private_targets"] = True  # the callback is on loopback
    config = RaglineConfig.model_validate(base)
    with tempfile.TemporaryDirectory() as folder:
        rows = populate(Path(folder), config)
    empty = [table for table, found in rows.items() if not found]
    if empty:
        raise SystemExit(f"tables left empty: {', '.join(empty)}")
    target = ROOT / "tests" / "data" / "databases" / args.name
    target.mkdir(parents=True, exist_ok=True)
    (target / "schema.sqlite.sql").write_text(ddl(sqlite.dialect()))
    (target / "schema.postgresql.sql").write_text(ddl(postgresql.dialect()))
    (target / "rows.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}: {sum(len(r) for r in rows.values())} rows in {len(rows)} tables")


if __name__ == "__main__":
    main()
