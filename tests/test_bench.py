"""The bench command produces its report (numbers are for notes, never asserted as times)."""

from __future__ import annotations

import pytest

from genimg.bench import format_table, run_bench
from genimg.errors import GenimgError


def test_handle_reuse_report_and_from_pipe_sharing():
    report = run_bench(repeats=1, only=["handle_reuse"])
    section = report["sections"]["handle_reuse"]
    assert section["cold_load"]["n"] == 1 and section["warm_acquire"]["n"] == 10
    assert section["from_pipe_extra_parameter_bytes"] == {"img2img": 0, "inpaint": 0}
    assert section["model_bytes"] > 0
    assert "handle_reuse" in format_table(report)


def test_unknown_section_is_a_user_error():
    with pytest.raises(GenimgError, match="unknown bench section"):
        run_bench(only=["warp-drive"])
