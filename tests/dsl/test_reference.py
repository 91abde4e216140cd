"""One table drives the compiler, the engine, `qkt check --list-indicators` and
docs/indicators.md: the reference in the repository is exactly what the table renders."""

from __future__ import annotations

from qkt.dsl import reference
from qkt.dsl.catalog import FUNCTIONS, INDICATORS, Args
from qkt.engine.indicators import make_indicator
from tests.helpers import REPO_ROOT


def test_docs_indicators_md_is_generated_from_the_catalog() -> None:
    """Regenerate: python -c "from qkt.dsl import reference as r; print(r.markdown(), end='')" """
    assert (REPO_ROOT / "docs" / "indicators.md").read_text() == reference.markdown()


def test_every_indicator_and_function_is_listed_and_every_indicator_can_be_built() -> None:
    text = reference.plain()
    for name, spec in INDICATORS.items():
        assert f"\n{name}(" in "\n" + text
        indicator = make_indicator(name, Args(tuple(p.default for p in spec.params)))
        assert indicator.outputs == spec.outputs or not spec.outputs
    for name in FUNCTIONS:
        assert f"\n{name} " in text
