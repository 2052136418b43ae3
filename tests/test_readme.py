from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readmes_test_command_verbatim():
    lines = (ROOT / "README.md").read_text().splitlines()
    test_command = lines[lines.index("# 2. set up and run the tests") + 1]
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
