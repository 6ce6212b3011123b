"""Print the confidence the extractive path gives to answerable and unanswerable questions
about the demo handbook, to check min_confidence against real scores.

    RAGLINE_DATA_DIR=data .venv/bin/python scripts/confidence_report.py

Needs a built index (`make run` builds it) and the server stopped (Qdrant local mode has
one owner).
"""

from __future__ import annotations

from ragline.pipeline.confidence import score_confidence
from ragline.pipeline.generate import GenerationRequest
from ragline.pipeline.prompts import PromptTemplate
from ragline.pipeline.providers.extractive import ExtractiveGenerator
from ragline.pipeline.retrieve import Retriever
from ragline.runtime import build_core, load_embedder, open_store
from ragline.settings import load_settings

ANSWERABLE = [
    "How many days of annual leave do employees get, and how many can be carried over?",
    "What is the meal limit per day on domestic business travel?",
    "Who must approve an expense claim of 3,000 EUR?",
    "How much is the yearly training budget?",
    "What does the Team plan cost with annual billing?",
    "What service credit does an Enterprise customer get at 99.5% monthly uptime?",
    "How long is a free trial, and can it be extended?",
    "Who approves a refund above 2,000 EUR?",
    "What is the first response time for a P1 ticket on Enterprise?",
    "How quickly must a lost laptop be reported, and to whom?",
    "Can I paste customer ticket content into ChatGPT?",
    "How do I request parental leave?",
    "What happens to my laptop when I leave the company?",
    "Is MFA mandatory?",
]
UNANSWERABLE = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Which football team won the 1998 world cup?",
    "What is our office wifi password?",
    "How do I reset the printer?",
    "Who is the CEO of Northwind?",
    "What is the stock price today?",
    "Can I bring my dog to the office?",
    "What's the weather tomorrow?",
    "How many employees does the company have?",
    "Write me a poem about leave",
]


def main() -> None:
    settings = load_settings()
    core = build_core(settings)
    store = open_store(settings)
    embedder = load_embedder(core.config)
    retriever = Retriever(embedder, store)
    generator = ExtractiveGenerator(embedder)
    prompt = PromptTemplate.load(settings.prompts_dir, "answer")
    pipeline = core.config.assistant_pipeline
    threshold = pipeline.fallback.min_confidence
    for label, questions in (("answerable", ANSWERABLE), ("unanswerable", UNANSWERABLE)):
        scores = []
        for question in questions:
            retrieval = retriever.retrieve(
                question, pipeline.retrieval.source, pipeline.retrieval.top_k
            )
            request = GenerationRequest(
                question, retrieval.passages, prompt.render(question, retrieval.passages)
            )
            confidence = score_confidence(retrieval.passages, generator.generate(request, 10))
            scores.append(confidence.value)
            print(f"{label:<13} {confidence.value:.3f}  {question}")
        passing = sum(score >= threshold for score in scores)
        print(
            f"{label}: {passing}/{len(scores)} at or above {threshold}; range "
            f"{min(scores):.2f}-{max(scores):.2f}\n"
        )
    store.close()


if __name__ == "__main__":
    main()
