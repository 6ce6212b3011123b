"""Screenshots of the web pages, for the README: `make screenshots` writes PNGs to
docs/screenshots/.

Runs ragline as `make run` does (embedded mode, a throwaway data folder, the demo handbook,
the offline extractive model), asks a few questions so the queue holds escalations and a
sampled answer, then opens the pages in Debian's chromium (Playwright) as an admin: the
review queue, an item with its evidence, a job's timeline, the index versions and the
operator page (those that exist in this release).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from api.app import create_app
from cli.wiring import http_services
from ragline.bootstrap import Mode, Overrides, opened
from ragline.config import load_config, parse_config
from ragline.observability import configure_logging
from ragline.pipeline.validate import JobRequest
from ragline.settings import Settings
from workers.broker import make_broker, sender

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
QUESTIONS = [
    ("How many days of annual leave do I get?", "u-1042"),
    ("Can I carry unused leave days into next year?", "u-1042"),
    ("Which football team won the 1998 world cup?", "u-2203"),
    ("How many days of annual leave does a full-time employee in Singapore get?", "u-2203"),
    ("Who approves a refund above 2,000 EUR? Reply to jane.doe@example.com", "u-3310"),
]
PAGES = [  # file name, path (ITEM: the first escalated item), whether the page must exist
    ("queue", "/review", True),
    ("item", "ITEM", True),
    ("operations", "/review/ops", False),
    ("index", "/review/index", False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    configure_logging("WARNING", "console")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        shoot(Path(folder), args.out)


def shoot(folder: Path, out: Path) -> None:
    data = load_config(ROOT / "ragline.yaml").model_dump()
    data["review"]["sample_rate"] = 0.5
    config = parse_config(data)
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
    broker = make_broker(None)
    with opened(settings, Mode.EMBEDDED, Overrides(config=config, send=sender(broker))) as s:
        assert s.index is not None and s.admission is not None
        s.index.promote(s.index.build(ROOT / "examples" / "handbook").version)
        s.accounts.create_account("acme")
        issued = s.accounts.create_key("acme", roles=("submitter",), name="crm")
        caller = s.accounts.authenticate(issued.plaintext)
        admin = s.accounts.create_key("acme", roles=("admin",), name="screenshots").plaintext
        for question, user in QUESTIONS:
            request = JobRequest(question=question, user_id=user, feature="handbook")
            job, _ = s.admission.submit(caller, request)
            s.need_pipeline().answer_job(job.id)
        escalated = [item for item, _ in s.review.list(None) if item.reason != "sampled"]
        item_path = f"/review/items/{escalated[0].id}" if escalated else "/review"
        api = http_services(s, broker, worker_threads=1)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(api), host="127.0.0.1", port=port, log_config=None)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            _capture(f"http://127.0.0.1:{port}", admin, item_path, out)
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def _capture(base: str, key: str, item_path: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/review/login")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        for name, path, required in PAGES:
            response = page.goto(base + (item_path if path == "ITEM" else path))
            if response is None or response.status >= 400:
                if required:
                    raise SystemExit(f"{path} answered {response.status if response else '?'}")
                continue
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
