"""How a grade reason starts, and the raw grade score read back from it for calibration.

The tracing engines write the reasons (agents/tracing/grading.py); calibration reads them
(tools/calibration.py). Both import from here, so tools never import an agent.
"""

from __future__ import annotations

# How a grade reason starts says what set the grade; grade_score reads it back.
BY_RULE = "规则："
BY_DEFAULT = "标签默认等级"
NOT_COMPLAINT = "非投诉类声音"
# Raw grade scores before calibration: a grade rule that matched, a voice that is no complaint.
RULE_SCORE = 0.9
NOT_COMPLAINT_SCORE = 0.5


def grade_score(reason: str, label_confidence: float) -> float:
    """The raw score behind a rules-engine grade, for calibration.

    A grade rule that matched is a direct reading of the text. A label's default grade is right
    about as often as the label, so it follows the label's raw confidence.
    """
    if reason.startswith(BY_RULE):
        return RULE_SCORE
    if reason.startswith(NOT_COMPLAINT):
        return NOT_COMPLAINT_SCORE
    return 0.5 + 0.4 * label_confidence
