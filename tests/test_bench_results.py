"""benchmarks/__main__.py: a new results file keeps the hand-written tail of the old one."""

from __future__ import annotations

from benchmarks.__main__ import hand_written


def test_the_hand_written_tail_of_the_results_file_is_kept(tmp_path):
    path = tmp_path / "RESULTS.md"
    assert hand_written(path) == ""
    path.write_text(
        "# tribes benchmarks\n\n## Targets\n\n| a | b |\n\n## Before and after (hand-written)\n\n"
        "| x | 1 |\n\n## 1M users (hand-written too)\n\nfigures\n"
    )
    tail = hand_written(path)
    assert tail.startswith("\n## Before and after (hand-written)\n")
    assert tail.endswith("## 1M users (hand-written too)\n\nfigures\n")
    assert "Targets" not in tail
    path.write_text(
        "# tribes benchmarks\n\n## Targets\n\nno hand-written heading (hand-written in a line)\n"
    )
    assert hand_written(path) == ""
