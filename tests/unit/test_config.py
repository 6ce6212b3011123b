from pathlib import Path

import pytest
import yaml

from ragline.config import RaglineConfig, load_config, parse_config
from ragline.errors import ConfigError
from tests.support.environment import REPO


def _repo_dict() -> dict:
    return yaml.safe_load((REPO / "ragline.yaml").read_text())


def test_repo_config_has_the_design_shape() -> None:
    config = load_config(REPO / "ragline.yaml")
    pipeline = config.assistant_pipeline
    assert pipeline.input_validation.require_user_id is True
    assert pipeline.input_validation.max_prompt_chars == 6000
    assert pipeline.retrieval.source == "approved-knowledge-base"
    assert pipeline.retrieval.top_k == 5
    assert pipeline.generation.model == "production-default"
    assert pipeline.generation.timeout_ms == 9000
    assert pipeline.guardrails.pii_redaction and pipeline.guardrails.policy_check
    assert pipeline.fallback.on_low_confidence == "route_to_human"
    assert pipeline.observability.log_prompt_hash and pipeline.observability.log_latency_ms
    assert pipeline.observability.sample_outputs_for_review


def test_the_design_block_alone_is_a_valid_config() -> None:
    path = Path(REPO).parent / "shared" / "DESIGN.md"
    if not path.exists():  # a user's clone has no ../shared
        pytest.skip(f"{path} is absent: the design document sits beside the repository")
    design = path.read_text()
    block = design.split("```yaml", 1)[1].split("```", 1)[0]
    config = parse_config(yaml.safe_load(block))
    assert config.assistant_pipeline.retrieval.top_k == 5


def test_defaults_equal_the_repo_file_for_the_pipeline() -> None:
    """Apart from what is specific to the demo handbook's company (its allowed addresses,
    employee-id pattern, denied topics and link hosts), ragline.yaml states the defaults."""
    demo = {
        "pii": {"custom_patterns", "allow"},
        "policy": {"deny_topics": True, "output": {"allowed_url_hosts"}},
    }
    defaults = RaglineConfig().assistant_pipeline.model_dump(exclude={"guardrails": demo})
    repo = load_config(REPO / "ragline.yaml").assistant_pipeline
    assert repo.model_dump(exclude={"guardrails": demo}) == defaults


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda d: d["assistant_pipeline"]["retrieval"].update(top_kk=3), "retrieval.top_kk"),
        (lambda d: d["assistant_pipeline"]["generation"].update(timeout_ms=-5), "timeout_ms"),
        (lambda d: d["assistant_pipeline"]["generation"].update(timeout_ms="soon"), "timeout_ms"),
        (
            lambda d: d["assistant_pipeline"]["input_validation"].update(max_prompt_chars=0),
            "max_prompt_chars",
        ),
        (lambda d: d["assistant_pipeline"]["fallback"].update(on_low_confidence="x"), "fallback"),
        (lambda d: d.update(unknown_section={}), "unknown_section"),
        (lambda d: d["assistant_pipeline"]["generation"].update(model="nope"), "nope"),
        (lambda d: d["knowledge"]["chunking"].update(max_tokens=400), "max_tokens"),
        (lambda d: d["jobs"].update(lease_ms=0), "lease_ms"),
        (
            lambda d: d["jobs"].update(lease_ms=60_000, deadline_ms=60_000),
            "lease_ms (60000) must be shorter than deadline_ms (60000)",
        ),
    ],
)
def test_a_bad_key_or_value_is_refused_naming_the_key(mutate, named: str) -> None:
    data = _repo_dict()
    mutate(data)
    with pytest.raises(ConfigError) as raised:
        parse_config(data, origin="ragline.yaml")
    assert named in str(raised.value)
    assert "ragline.yaml" in str(raised.value)


def test_unreadable_and_invalid_yaml_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("assistant_pipeline: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
