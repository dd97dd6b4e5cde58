"""The README's user-defined space and its two commands run as written."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## Your own search space")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_user_space_reduces_and_searches_as_written(tmp_path) -> None:
    section = _section()
    code = re.search(r"`myspace\.py`:\n\n```python\n(.*?)```", section, re.S)
    commands = re.search(r"```bash\n(.*?)```", section, re.S)
    assert code and commands, "the README section lost its code or its commands"
    (tmp_path / "myspace.py").write_text(code.group(1))
    cbred = shutil.which("cbred", path=str(Path(sys.executable).parent))
    assert cbred, "the cbred console script is installed with the package"
    lines = [line for line in commands.group(1).splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.startswith("cbred ") for line in lines)
    for line in lines:
        argv = [cbred, *shlex.split(line)[1:]]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    sub = json.loads((tmp_path / "sub.json").read_text())
    result = json.loads((tmp_path / "result.json").read_text())
    assert sub["space"] == "myspace.py:SPACE" and sub["provenance"]["scored"] <= 12
    assert result["best_arch"] in sub["strings"] and result["evaluations"] <= 10
