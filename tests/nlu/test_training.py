"""Training helpers that need no Rasa: the epoch override of a cross-validation's project copy."""

from __future__ import annotations

from pathlib import Path

import yaml

from nlu.export import PROJECT_DIR
from nlu.training import _override_epochs


def test_override_epochs_changes_only_the_trained_components(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text((PROJECT_DIR / "config.yml").read_text(encoding="utf-8"), encoding="utf-8")
    before = yaml.safe_load(config.read_text(encoding="utf-8"))
    _override_epochs(config, 12)
    after = yaml.safe_load(config.read_text(encoding="utf-8"))
    trained = [c["name"] for c in after["pipeline"] if "epochs" in c]
    assert trained == ["DIETClassifier", "ResponseSelector"]
    assert all(c["epochs"] == 12 for c in after["pipeline"] if "epochs" in c)
    # Everything else is as exported (the language, the tokenizer's dictionary, thresholds).
    strip = [{k: v for k, v in c.items() if k != "epochs"} for c in before["pipeline"]]
    assert [{k: v for k, v in c.items() if k != "epochs"} for c in after["pipeline"]] == strip
    assert after["language"] == "zh" and after["recipe"] == before["recipe"]
