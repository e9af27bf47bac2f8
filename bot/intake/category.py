"""Keyword lexicon for a first category; the worker can change it on the card."""

from __future__ import annotations

import ahocorasick

from bot.routing.normalize import normalize
from models.enums import Category

LEXICON: dict[Category, tuple[str, ...]] = {
    Category.NOISE: (
        "噪音", "噪声", "扰民", "吵", "广场舞", "装修声", "喇叭", "半夜", "施工声", "狗叫",
    ),
    Category.SAFETY: (
        "隐患", "危险", "漏电", "电线", "燃气", "煤气", "着火", "火灾", "消防", "塌", "裂缝",
        "井盖", "飞线", "充电", "电动车", "危房", "掉落", "坠落", "堵塞通道", "灭火器",
    ),
    Category.DISPUTE: (
        "纠纷", "矛盾", "吵架", "打架", "邻居", "占用", "欠薪", "工资", "漏水到", "争执", "霸占",
    ),
    Category.PROPERTY: (
        "物业", "电梯", "保安", "门禁", "停车位", "物业费", "楼道灯", "单元门", "供暖", "暖气",
    ),
    Category.MUNICIPAL: (
        "路灯", "下水道", "下水", "排水", "积水", "坑", "路面", "道路", "自来水", "停水", "停电",
        "水管", "管道", "红绿灯", "信号灯", "护栏", "树倒", "窨井", "化粪池", "公交站",
    ),
    Category.SANITATION: (
        "垃圾", "卫生", "脏", "臭", "异味", "清运", "粪", "污水", "小广告", "野广告", "杂物",
        "落叶", "建筑垃圾", "老鼠", "蚊蝇", "乱倒", "乱扔",
    ),
}

# Earlier categories win ties: safety beats municipal ("井盖" missing is dangerous first).
PRIORITY = [
    Category.SAFETY, Category.NOISE, Category.DISPUTE, Category.PROPERTY,
    Category.MUNICIPAL, Category.SANITATION,
]


def _build() -> ahocorasick.Automaton:
    a = ahocorasick.Automaton()
    for cat, words in LEXICON.items():
        for w in words:
            a.add_word(w, (w, cat))
    a.make_automaton()
    return a


_AUTOMATON = _build()


def subjects(text: str) -> frozenset[str]:
    """The lexicon's words in `text`: what the report is about (路灯, 垃圾 …)."""
    return frozenset(word for _end, (word, _cat) in _AUTOMATON.iter(normalize(text)))


def categorize(text: str) -> Category:
    score: dict[Category, int] = {}
    # the lexicon is Simplified; normalize folds Traditional and full-width text into it
    for _end, (word, cat) in _AUTOMATON.iter(normalize(text)):
        score[cat] = score.get(cat, 0) + len(word)
    if not score:
        return Category.OTHER
    best = max(score.values())
    return next(c for c in PRIORITY if score.get(c) == best)
