"""The README's Python API example, run as a script on the packaged model and real SST-2 rows: only
its data folder and its output folder are moved (to the test's data dir and a temporary folder)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: no python block under '## Python API'"
    return match.group(1)


def test_importing_the_api_loads_no_heavy_library():
    """Every spawned timing worker re-runs the importing script's imports: the API must stay cheap to
    import (it was ~9 s a worker on 2 cores with torch, transformers, optuna and pandas behind it)."""
    heavy = ("torch", "transformers", "optuna", "pandas", "scipy", "matplotlib", "onnxruntime")
    code = ("import sys\nfrom autotune import api\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "", f"`from autotune import api` imported {out.stdout.strip()}"
    from autotune import api  # the lazy names still resolve to the real classes

    assert api.SweepConfig.__module__ == "autotune.sweep" and api.Built.__module__ == "compress.pipeline"


@pytest.mark.slow
def test_the_readme_api_example_runs_as_written(data_dir, tmp_path):
    code = readme_example()
    assert '"../shared/data"' in code and '"runs/' in code  # the two paths this test moves
    script = tmp_path / "example.py"
    script.write_text(code.replace('"../shared/data"', repr(str(data_dir))).replace('"runs/', f'"{tmp_path}/runs/'))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert re.match(r"torch-fp32: \d+ ex/s, accuracy 0\.\d{3} \{'value'", lines[0]), lines
    assert re.match(r"ort-int8: \d+ ex/s, accuracy 0\.\d{3} \{'value'", lines[1]), lines
    # a pick, or the sweep's own one-line refusal (a weak teacher, or no student met the floor)
    assert lines[2].startswith("pick held out ") or "not better than" in lines[2] or \
        lines[2].startswith("no trial met the floor"), lines
    report = Path(lines[-1])
    assert report.name == "report.html" and report.is_file() and (tmp_path / "runs" / "api-sst2" / "outcome.json").is_file()
