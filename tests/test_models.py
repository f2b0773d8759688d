"""The packaged pretrained model loads and classifies with the network unreachable."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from compress.errors import UserInputError
from compress.models import load_classifier, packaged_model_dir, resolve

NO_NETWORK = textwrap.dedent(
    """
    import socket
    def refuse(*a, **k):
        raise OSError("network disabled by the test")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    """
)


@pytest.mark.slow
def test_packaged_model_classifies_a_batch_offline(tmp_path):
    code = NO_NETWORK + textwrap.dedent(
        """
        import torch
        from compress.models import load
        model, tok = load(None, num_labels=2)
        batch = tok(["a gripping, beautiful film", "dull and lifeless"], padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**batch).logits
        assert logits.shape == (2, 2) and torch.isfinite(logits).all()
        cfg = model.config
        print(cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["bert", "6", "384", "12", "1536"]


def test_packaged_dir_found_through_installed_package():
    d = packaged_model_dir()
    assert (d / "config.json").is_file() and (d / "tokenizer.json").is_file()
    assert resolve(None) == resolve("packaged") == str(d)


def test_a_path_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserInputError, match=r"not a model directory \(no config.json"):
        load_classifier(tmp_path)
    with pytest.raises(UserInputError, match="no such directory"):
        load_classifier(tmp_path / "missing" / "model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserInputError, match="cannot load as a classifier"):
        load_classifier(tmp_path)
