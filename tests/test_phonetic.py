"""The phonetic index (homophones of place names) and the Router's rule 5 built on it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bot.county.files import CountyData, PlaceRow
from bot.messages import GeoPoint
from bot.routing import Router, normalize
from bot.routing.gazetteer import Gazetteer
from bot.routing.phonetic import PLACE_SUFFIXES, Encoder, PhoneticIndex, fold
from models.enums import RouteStatus

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def enc() -> Encoder:
    return Encoder()


def _index(*names: str) -> PhoneticIndex:
    """Each name is its own target (its index), as the Router would give a grid or place."""
    g = Gazetteer()
    for i, name in enumerate(names):
        g.add(name, i)
    idx = PhoneticIndex(g, g.keys())
    g.build()
    return idx


def _found(idx: PhoneticIndex, text: str) -> list[str]:
    return [m.label for m in idx.find(normalize(text))]


# --- syllables -------------------------------------------------------------------------------


def test_fold() -> None:
    assert fold("guang") == fold("guan") == "guan"
    assert fold("zhang") == fold("zan") == "zan"
    assert fold("sheng") == "sen" and fold("qing") == "qin" and fold("chuang") == "cuan"
    assert fold("gua") == "gua" and fold("dong") == "dong" and fold("lv") == "lv"


def test_encode_keeps_one_character_per_character(enc: Encoder) -> None:
    for text in ("南关村3号楼", "锦绣花园abc12", "", "路灯坏了!!", "金鼎ktv", "𠀀丫"):
        assert len(enc.encode(text)) == len(text)
    code = enc.encode("南关村3号楼")
    assert code[3] == "3" and code[0] != "南"  # digits stay, Han characters become codes


def test_encode_homophones(enc: Encoder) -> None:
    e = enc.encode
    assert e("南关村") == e("南光村") == e("难关存")
    assert e("锦绣花园") == e("锦秀花园") == e("进修花源")
    assert e("信家坡") == e("信家破")
    assert e("南瓜村") != e("南关村")
    assert e("李") != e("你")  # l/n are not folded


def test_encode_heteronyms_read_in_context(enc: Encoder) -> None:
    e = enc.encode
    assert e("银行")[1] == e("航")  # hang, not xing
    assert e("行人")[0] == e("星")
    assert e("长城")[0] == e("常") and e("长")[0] == e("涨")  # chang in 长城, zhang alone
    assert e("重庆")[0] == e("虫")


def test_private_use_characters_in_a_message_are_not_syllables(enc: Encoder) -> None:
    nan, guan = enc.encode("南关")
    idx = _index("南关村")
    assert idx.find(f"{nan}{guan}村") == []
    assert enc.encode(nan + guan) == "\ufffd\ufffd"


def test_pypinyin_loaded_lean_without_leaving_switches_behind() -> None:
    code = (
        "import os, bot.routing.phonetic as p, pypinyin.constants as c\n"
        "print(len(c.PHRASES_DICT), 'PYPINYIN_NO_PHRASES' in os.environ)\n"
        "p.Encoder()\n"
        "print(len(c.PHRASES_DICT))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    # no phrase dictionary at import, the switch gone, the contextual phrases back
    assert out[:2] == ["0", "False"]
    assert 1000 < int(out[2]) < 10000


# --- the index ---------------------------------------------------------------------------------


def test_spec_examples() -> None:
    idx = _index("南关村", "锦绣花园", "信家坡小区")
    assert _found(idx, "南光村的路灯不亮") == ["南光村≈南关村"]
    assert _found(idx, "锦秀花园3号楼") == ["锦秀花园≈锦绣花园"]
    assert _found(idx, "信家破小区门口") == ["信家破小区≈信家坡小区"]
    m = idx.find(normalize("我家在南光村"))[0]
    assert (m.start, m.end, m.targets) == (3, 6, (0,))


def test_exact_spelling_is_left_to_the_gazetteer() -> None:
    assert _found(_index("南关村"), "南关村") == []


def test_at_most_half_the_characters_differ() -> None:
    idx = _index("南关村", "锦绣花园")
    assert _found(idx, "难关村") == ["难关村≈南关村"]
    assert _found(idx, "难官村") == []  # 2 of 3
    assert _found(idx, "进修花园") == ["进修花园≈锦绣花园"]  # 2 of 4
    assert _found(idx, "进修花源") == []  # 3 of 4


def test_a_difference_must_touch_the_stem() -> None:
    idx = _index("卫生巷", "锦绣花园", "南关村")
    assert _found(idx, "讲卫生向来不好") == []
    assert _found(idx, "锦绣花源") == []
    assert _found(idx, "南关存") == []
    assert _found(idx, "卫声巷") == ["卫声巷≈卫生巷"]


def test_two_syllable_names_need_a_place_word_after() -> None:
    idx = _index("南关", "职中", "鼓楼")
    for text in ("过了这个难关", "难关那边", "这件事之中", "骨楼", "古楼那边"):
        assert _found(idx, text) == [], text
    assert _found(idx, "难关村") == ["难关≈南关"]
    assert _found(idx, "古楼小区门口") == ["古楼≈鼓楼"]
    assert _found(idx, "之中学校") == ["之中≈职中"]
    assert {"村", "路", "街", "巷", "小区", "花园", "市场"} <= set(PLACE_SUFFIXES)


def test_names_need_two_han_characters() -> None:
    idx = _index("金KTV", "金鼎KTV")
    assert _found(idx, "今KTV") == []
    assert _found(idx, "金顶ktv门口") == ["金顶ktv≈金鼎KTV"]


def test_longest_wins_and_one_place_is_named_once() -> None:
    idx = _index("南关", "南关新村", "锦绣花园", "锦绣花苑")
    assert _found(idx, "南光新村3号楼") == ["南光新村≈南关新村"]
    # 锦秀花园 sounds like the name and its alias alike: the closer spelling, once
    g = Gazetteer()
    g.add("锦绣花园", "DJ")
    g.add("锦绣花苑", "DJ")
    g.add("锦秀花苑", "QF")  # another place that sounds the same: kept
    idx = PhoneticIndex(g, g.keys())
    g.build()
    found = idx.find("锦琇花园")
    assert [m.label for m in found] == ["锦琇花园≈锦绣花园", "锦琇花园≈锦秀花苑"]
    assert {t for m in found for t in m.targets} == {"DJ", "QF"}


def test_covering_a_shadowed_name() -> None:
    """The look-up behind rule 1a: longer names around an exact mention of a shorter one."""
    idx = _index("南关", "南关新村", "西关菜市场")
    # the stem 南关 is written right, so `find` leaves 南关心村 alone ...
    assert _found(idx, "南关心村垃圾桶满了") == []
    # ... but around an exact 南关 only the place word is in question
    assert [m.label for m in idx.covering("南关心村垃圾桶满了", [(0, 2)])] == ["南关心村≈南关新村"]
    assert [m.label for m in idx.covering("西关才市场", [(0, 2)])] == ["西关才市场≈西关菜市场"]
    m = idx.covering("在南关心村", [(1, 3)])[0]
    assert (m.start, m.end, m.targets) == (1, 5, (1,))
    # it has to cover the span, be longer, and still differ in at most half the characters
    assert idx.covering("南关心村", [(4, 6)]) == []
    assert idx.covering("南关心村", []) == []
    assert idx.covering("南关心存", [(0, 2)]) != []  # 2 of 4 is the limit ...
    assert idx.covering("西关才是厂", [(0, 2)]) == []  # ... and 3 of 5 is over it
    assert idx.covering("南关新村", [(0, 2)]) == []  # spelt right: the gazetteer's


def test_gazetteer_marks_names_inside_longer_names_of_other_places() -> None:
    g = Gazetteer()
    for name, target in [("南关", "A"), ("南关一带", "A"), ("南关新村", "B"), ("鼓楼", "C"),
                         ("鼓楼巷", "C"), ("西关", "D"), ("溪关菜市场", "E")]:  # fmt: skip
        g.add(name, target)
    PhoneticIndex(g, g.keys())
    g.build()

    def shadowed(text: str) -> list[tuple[str, bool]]:
        return [(m.label, m.shadowed) for m in g.find(text)]

    assert shadowed("南关那边") == [("南关", True)]  # part of 南关新村 (B)
    assert shadowed("南关一带") == [("南关一带", False)]
    assert shadowed("南关新村") == [("南关新村", False)]
    assert shadowed("鼓楼那边") == [("鼓楼", False)]  # only inside names of its own place
    assert shadowed("西关那边") == [("西关", True)]  # sounds like part of 溪关菜市场


def test_empty() -> None:
    idx = _index()
    assert len(idx) == 0 and idx.find("南光村") == []
    assert _index("南关村").find("") == []


def test_gazetteer_keys_only_before_build() -> None:
    g = Gazetteer()
    g.add("南关村", 1)
    assert list(g.keys()) == [("南关村", 0)]
    g.build()
    with pytest.raises(RuntimeError):
        g.keys()


# --- the Router: a homophone never routes on its own ---------------------------------------------

# common characters grouped by folded syllable, to misspell every sample name with
_POOL = (
    "安按暗案北被备贝本奔笨比笔必毕边变便遍表别宾兵并病波博不布步才材菜参蚕草厕测层曾茶查"
    "产长常场厂唱超潮车彻臣尘陈称成城程吃池迟尺冲虫抽仇出初除楚处川穿传船窗床创吹春纯词此次"
    "从村存寸达打大代带待单但担当党刀导到道得德灯登等低敌底地弟第点电店调掉丁定东冬懂动都斗"
    "读独度渡短段断对队多夺朵饿恶儿而耳二发法反饭范方房防访放飞非肥费分坟粉份风封峰锋蜂逢"
    "凤佛否夫肤扶服浮福府父付负妇附复富改盖干甘赶敢感刚钢岗港高搞告哥歌革格个各给根跟更工"
    "公功攻供宫共贡勾沟狗构购够估姑古谷股骨鼓固故顾瓜刮挂怪关观官馆管贯光广归规鬼贵桂滚国"
    "果过哈还海害含汗汉行航好号喝合何和河核黑很恒横红宏洪鸿后厚候呼湖虎户护花华化划画话怀"
    "坏欢环换皇黄灰回会汇惠婚混活火货获机鸡积基及级即极急集几己计记纪技季济继寄加家佳甲价"
    "架假坚间监减检简见件建剑健渐将江讲奖降交郊胶角脚叫较教阶接街节结解姐界借今金津锦进近"
    "尽京经精井景静境镜九久酒旧救就居局举句巨具据剧卷决绝军均俊卡开看康抗考靠科可渴克刻客"
    "课肯空孔口苦库裤块快宽矿况亏困扩拉来兰蓝栏老乐类冷离李里理力历立利丽连联脸练良凉两亮"
    "辆量料林临灵铃零领另令流留柳六龙楼路录陆鹿绿乱轮论落妈马买卖满慢忙毛冒贸么没美门们梦"
    "迷米密面苗民名明命模摸末墨母木目牧南难男脑内能你年念娘鸟宁牛农弄女暖欧怕排牌盘旁跑培"
    "配盆朋鹏批皮片偏漂品平评凭坡破铺普七期齐其奇骑起气汽器前钱强墙桥巧切亲琴青轻清情请庆"
    "穷秋求区曲取去全泉权缺却群然让热人仁认日容荣肉如入软瑞润若三伞散桑色森沙山善伤商上尚"
    "少社射身深神审升生声胜盛失师诗十石时实食史使始士世市式事视室是收手首受书叔树数水顺说"
    "思四寺松送苏素速宿算随岁孙所塔台太泰谈坛汤唐堂塘桃陶特腾体天田条铁厅听亭庭通同铜童统"
    "头图土团推退托外湾完玩晚万王网往望危微为卫位味温文闻问我卧乌屋无吴五武舞物西希溪习席"
    "洗喜系细下夏仙先鲜闲县现线乡相香祥翔想向项象小校笑效些协写新心信星兴行形幸性雄休修秀"
    "绣需许序学雪血寻训迅压牙烟延严言岩沿研眼演燕阳杨洋养样要药业叶夜一医依宜移已以义艺议"
    "亿易益意因音银引印英营赢影应永勇用优由邮油游友有又右于鱼余雨语玉育域遇元园员原圆源远"
    "院愿月越云运杂灾在再早造则增展站张章长掌丈招照者这珍真镇争征整正政证之支知直职只至志"
    "制治中忠钟种重州周洲珠竹主住助注柱祝著专转庄装壮状追准资子自字宗总走组祖最作坐座"
)


def _sound_alikes(enc: Encoder) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ch in dict.fromkeys(_POOL):
        groups.setdefault(enc.encode(ch), []).append(ch)
    return {ch: [o for o in g if o != ch] for g in groups.values() for ch in g}


def _misspellings(county: CountyData, enc: Encoder) -> list[tuple[str, str]]:
    """(name, the name with one character swapped for a homophone), two per character."""
    alike = _sound_alikes(enc)
    names = {normalize(p.name) for p in county.places}
    names |= {normalize(a) for p in county.places for a in p.aliases}
    out: list[tuple[str, str]] = []
    for name in sorted(names):
        for i, ch in enumerate(name):
            out.extend((name, name[:i] + o + name[i + 1 :]) for o in alike.get(ch, [])[:2])
    return out


def _grids_of(county: CountyData) -> dict[str, set[str]]:
    """Every normalised name and alias of the sample, and the grids of its place."""
    out: dict[str, set[str]] = {}
    for p in county.places:
        for name in (p.name, *p.aliases):
            out.setdefault(normalize(name), set()).add(p.grid)
    return out


def test_a_misspelt_name_is_never_routed_on_its_own(router: Router, county: CountyData) -> None:
    typos = _misspellings(county, Encoder())
    assert len(typos) > 200
    grids = _grids_of(county)
    asked = 0
    for name, text in typos:
        res = router.route(text + "门口有积水")
        # never a confident wrong grid (22 of these were, before rule 1a: 南关心村 -> FN-02)
        assert res.status != RouteStatus.ROUTED or res.grid in grids[name], (text, res)
        if any("≈" in m for m in res.matched):
            asked += 1
            assert res.status == RouteStatus.AMBIGUOUS, (text, res)
            assert res.candidates, (text, res)
            # and a chat bound elsewhere never gets it either
            other = next(c for c in router.grid_codes if c not in res.candidates)
            res2 = router.route(text + "门口有积水", other)
            assert res2.status == RouteStatus.AMBIGUOUS, (text, res2)
            if all("≈" in m for m in res.matched):  # rule 5: the chat's grid is asked too
                assert set(res2.candidates) == {*res.candidates, other}
            else:  # rule 1a: an exact name and a longer one it may be part of, as in rule 3
                assert res2.candidates == res.candidates, (text, res2)
    assert asked > 300  # of ~900 misspellings; the rest stay unknown or hold another name


def test_the_chat_routes_only_as_the_sole_candidate(router: Router) -> None:
    res = router.route("南光村路灯坏了", "FN-02")
    assert (res.status, res.grid, res.matched) == (
        RouteStatus.ROUTED, "FN-02", ["南光村≈南关村", "chat"],
    )  # fmt: skip
    res = router.route("信家破小区门口路灯坏了", "FN-05")  # FN-05 or FN-04
    assert res.status == RouteStatus.AMBIGUOUS and set(res.candidates) == {"FN-04", "FN-05"}


def test_location_on_a_shared_edge(router: Router, county: CountyData) -> None:
    def ring(code: str) -> set[tuple[float, float]]:
        b = next(b for b in county.boundaries if b.grid == code)
        return {tuple(p) for p in b.geometry["coordinates"][0]}  # type: ignore[misc]

    def edge(lon: float, lat: float) -> bool:
        res = router.route("这里积水", location=GeoPoint(lat, lon))
        return res.candidates == ["FN-01", "FN-02"]

    lon, lat = next(p for p in sorted(ring("FN-01") & ring("FN-02")) if edge(*p))
    here = GeoPoint(lat, lon)
    # the location alone does not decide, so the homophone does not either
    res = router.route("南光村这里积水", location=here)
    assert res.status == RouteStatus.AMBIGUOUS and res.candidates == ["FN-01", "FN-02"]
    # the location and the chat decide (rule 4), and the homophone agrees
    res = router.route("南光村这里积水", "FN-02", here)
    assert (res.status, res.grid) == (RouteStatus.ROUTED, "FN-02")
    assert res.matched == ["南光村≈南关村", "location", "chat"]
    res = router.route("南光村这里积水", "FN-01", here)
    assert res.status == RouteStatus.AMBIGUOUS and res.candidates == ["FN-01", "FN-02"]


def test_homophone_places_of_their_own(county: CountyData) -> None:
    """Two real places that sound the same: each spelling routes, a third one asks."""
    extra = PlaceRow(grid="QF-03", name="锦秀花园")
    r = Router.build(replace(county, places=(*county.places, extra)))
    assert r.route("锦秀花园门口积水").grid == "QF-03"
    assert r.route("锦绣花园3号楼积水").grid == "DJ-03"
    res = r.route("锦琇花园门口积水")
    assert res.status == RouteStatus.AMBIGUOUS
    assert set(res.candidates) == {"DJ-03", "DJ-04", "QF-03"}


def test_no_hit_keeps_rule_4(router: Router) -> None:
    assert router.route("路灯坏了", "FN-01").matched == ["chat"]
    assert router.route("讲卫生向来不好", "XJ-03").grid == "XJ-03"
    here = GeoPoint(35.9624, 111.8501)
    assert router.route("过了这个难关就好了", location=here).grid == "FN-01"


# --- the Router: a real short name inside a misspelt longer one (rule 1a) ------------------------


def test_short_name_inside_a_misspelt_longer_name_never_routes_elsewhere(
    router: Router, county: CountyData
) -> None:
    """Every homophone typo of every sample name that holds a shorter known name (南关新村 holds
    南关, 西关菜市场 holds 西关): wherever it routes, it is one of the intended place's grids."""
    alike = _sound_alikes(Encoder())
    grids = _grids_of(county)
    outer = {n: [s for s in grids if s != n and s in n] for n in grids}
    outer = {n: inner for n, inner in outer.items() if inner}
    assert {"南关新村", "西关菜市场", "东关新村", "南关小学", "信家坡小区"} <= set(outer)
    typos = asked = 0
    for name, inner in sorted(outer.items()):
        # the chat of the short name's grid is the likeliest wrong answer: try it too
        chats = [None, *sorted({g for s in inner for g in grids[s]} - grids[name])]
        for i, ch in enumerate(name):
            for o in alike.get(ch, []):
                typo = name[:i] + o + name[i + 1 :]
                assert typo not in grids  # not another real name spelt right
                typos += 1
                for tail in ("门口有积水", "的路灯坏了", ""):
                    for chat in chats:
                        res = router.route(typo + tail, chat)
                        assert res.status != RouteStatus.ROUTED or res.grid in grids[name], (
                            typo + tail, chat, res,
                        )  # fmt: skip
                        asked += res.status == RouteStatus.AMBIGUOUS
    assert typos > 500 and asked > 1000


def test_rule_1a_asks_only_where_the_longer_name_is_elsewhere(router: Router) -> None:
    res = router.route("南关心村垃圾桶满了")
    assert (res.status, res.candidates, res.matched) == (
        RouteStatus.AMBIGUOUS, ["FN-02", "FN-03"], ["南关", "南关心村≈南关新村"],
    )  # fmt: skip
    res = router.route("西关才市场垃圾太多")
    assert (res.status, res.candidates, res.matched) == (
        RouteStatus.AMBIGUOUS, ["XC-01", "XC-03"], ["西关", "西关才市场≈西关菜市场"],
    )  # fmt: skip
    # 南关村 and 东关菜市场 are in the short name's own grid: nothing to ask
    assert router.route("南关存里的路灯不亮").grid == "FN-02"
    assert router.route("东关才市场的下水道堵了").grid == "DJ-02"
    # a number that puts the longer (split) place in the short name's grid: the same
    assert router.route("信家坡小去3号楼漏水").grid == "FN-05"
    assert router.route("信家坡小去8号楼漏水").candidates == ["FN-04", "FN-05"]


def test_rule_1a_looks_up_only_shadowed_names(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    phon = router._phon  # counting the extra look-ups
    covering = phon.covering

    def spy(text: str, spans: list[tuple[int, int]]) -> list[object]:
        calls.append(text)
        return covering(text, spans)  # type: ignore[return-value]

    monkeypatch.setattr(phon, "covering", spy)
    for text in ("南关新村垃圾桶满了", "鼓楼巷有人乱扔垃圾", "锦绣花园3号楼", "路灯坏了",
                 "南关农贸市场污水横流", "机械厂门口的下水道堵了"):  # fmt: skip
        router.route(text)
    assert calls == []  # no name in them is part of a longer name of another place
    router.route("南关那边路灯不亮")
    assert calls == ["南关那边路灯不亮"]


def test_rule_1a_by_sound_alone(county: CountyData) -> None:
    """The longer name need not hold the short one letter for letter: 西关 sounds like the
    start of 溪关菜市场, and 西关菜市场 may be that market written wrong."""
    places = tuple(p for p in county.places if p.name != "西关菜市场")
    extra = PlaceRow(grid="XC-03", name="溪关菜市场")
    r = Router.build(replace(county, places=(*places, extra)))
    assert r.route("西关这边停水了").grid == "XC-01"
    res = r.route("西关菜市场垃圾太多")
    assert res.status == RouteStatus.AMBIGUOUS and res.candidates == ["XC-01", "XC-03"]
    assert res.matched == ["西关", "西关菜市场≈溪关菜市场"]
