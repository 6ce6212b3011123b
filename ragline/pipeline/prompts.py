"""Prompt templates: Jinja2 files under prompts/, versioned by content hash.

A template defines two blocks, `system` and `user`; the version is `name@sha256[:12]` of the
file, so any edit is a new version and the one used is stored on each job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from ragline.errors import ConfigError
from ragline.knowledge.store import Passage


@dataclass(frozen=True)
class RenderedPrompt:
    version: str
    system: str
    user: str

    @property
    def text(self) -> str:
        return f"{self.system}\n\n{self.user}"

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


class PromptTemplate:
    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.version = f"{name}@{hashlib.sha256(source.encode('utf-8')).hexdigest()[:12]}"
        # Prompts are plain text for a model, not HTML: escaping would corrupt passages.
        environment = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701
            keep_trailing_newline=False,
        )
        try:
            self._template = environment.from_string(source)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(f"prompt {name}: line {error.lineno}: {error.message}") from None
        missing = {"system", "user"} - set(self._template.blocks)
        if missing:
            raise ConfigError(f"prompt {name}: missing block(s) {', '.join(sorted(missing))}")

    @classmethod
    def load(cls, folder: Path, name: str) -> PromptTemplate:
        path = folder / f"{name}.j2"
        try:
            return cls(name, path.read_text(encoding="utf-8"))
        except OSError:
            raise ConfigError(f"prompt template {path} cannot be read") from None

    def render(self, question: str, passages: list[Passage]) -> RenderedPrompt:
        variables = {"question": question, "passages": passages}
        context = self._template.new_context(variables)
        system = "".join(self._template.blocks["system"](context)).strip()
        context = self._template.new_context(variables)
        user = "".join(self._template.blocks["user"](context)).strip()
        return RenderedPrompt(version=self.version, system=system, user=user)
