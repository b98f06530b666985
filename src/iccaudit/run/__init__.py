"""Run: one ``score`` or ``rescore``, wiring every stage, in one place.

:func:`run_score` and :func:`run_rescore` drive a :class:`~iccaudit.run.stages.Run` top-down
(:mod:`.score`, :mod:`.rescore`); :mod:`.options` holds what a run is asked and gives back,
:mod:`.config` what produced it (stored with it), :mod:`.resources` how it uses the machine.
"""

from iccaudit.run.options import (
    DetectOptions,
    PipelineError,
    RescoreOptions,
    RunError,
    ScoreOptions,
    ScoreResult,
    make_run_id,
)
from iccaudit.run.rescore import run_rescore
from iccaudit.run.score import run_score

__all__ = [
    "DetectOptions", "PipelineError", "RescoreOptions", "RunError", "ScoreOptions",
    "ScoreResult", "make_run_id", "run_rescore", "run_score",
]
