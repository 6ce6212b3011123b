"""What produced an answer and routed it: the versions every job records, the API returns,
replay compares, evaluations and the reviewers' export carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Versions:
    prompt_version: str | None = None  # the prompt template's name@hash
    model_id: str | None = None  # the model that actually answered (after any fallback)
    index_version: str | None = None  # the collection retrieved from, kb_vN
    scorer_version: str | None = None  # the decision scorer that routed it, name@hash

    @classmethod
    def of(cls, record: object) -> Versions:
        """The versions a job row, an outcome or a run holds (attributes of these names)."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(cls)})

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


VERSION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Versions))
