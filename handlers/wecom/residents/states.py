"""WeCom's process steps onto our states.

WeCom's pages list process_type and status on each process_list entry but not their values;
the console shows a report as 待受理 / 办理中 / 已办结 (get_corp_status counts pending,
processing, solved: https://developer.work.weixin.qq.com/document/path/97154). The values
below are this module's reading of those three stages, kept in one table to correct against a
live corp: a type not in it is recorded as progress and moves nothing.
"""

from __future__ import annotations

from bot.notify.texts import t
from handlers.wecom.residents import texts as _texts  # noqa: F401  (registers the keys)
from handlers.wecom.residents.orders import Step
from models.enums import TicketState as S

ACCEPTED, PROCESSING, SOLVED = 1, 2, 3
STEP_STATE: dict[int, S] = {ACCEPTED: S.ACKNOWLEDGED, PROCESSING: S.IN_PROGRESS,
                            SOLVED: S.RESOLVED}


def step_state(step: Step) -> S | None:
    return STEP_STATE.get(step.process_type)


def step_label(step: Step, lang: str = "") -> str:
    key = f"wecom.step.{step.process_type}" if step.process_type in STEP_STATE \
        else "wecom.step.other"
    return t(key, lang)
