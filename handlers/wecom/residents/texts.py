"""What 居民上报's push, sync and CLI say (zh and en), registered with bot.notify.texts."""

from __future__ import annotations

from bot.notify.texts import register

ZH = {
    "wecom.kind.community": "社区",
    "wecom.kind.grid": "网格",
    "wecom.change.name": "名称",
    "wecom.change.parent": "上级",
    "wecom.change.admins": "负责人",
    "wecom.change.members": "成员",
    "wecom.push.add": "新增{kind}：{name}",
    "wecom.push.update": "修改{kind}：{name}（{what}）",
    "wecom.push.delete": "删除{kind}：{name}",
    "wecom.push.nothing": "企业微信里的网格已是最新，不用改。",
    "wecom.push.plan": "计划（未做修改）：共 {n} 项",
    "wecom.push.done": "已推送到企业微信：新增 {added}，修改 {updated}，删除 {deleted}。",
    "wecom.push.invalid": "企业微信不认识这些账号，请检查通讯录：{ids}",
    "wecom.push.problems": "推送前检查发现 {n} 个问题，什么都没改：",
    "wecom.limit.no_admin": "{name}：没有绑定企业微信的负责人（网格长或社区协调员），"
                            "企业微信要求至少 1 人",
    "wecom.limit.admins": "{name}：负责人 {n} 人，企业微信最多 20 人",
    "wecom.limit.members": "{name}：成员 {n} 人，企业微信最多 100 人",
    "wecom.limit.admin_of": "{person}：是 {n} 个网格的负责人，企业微信最多 10 个",
    "wecom.limit.depth": "{name}：在第 {n} 层，企业微信最多 10 层",
    "wecom.cli.not_configured": "没有配置企业微信（WECOM_CORP_ID、WECOM_SECRET），做不了。",
    "wecom.cli.unreachable": "企业微信暂时连不上，请稍后再试。",
    "wecom.cli.refused": "企业微信拒绝了请求（错误码 {code}）。"
                         "请确认本应用已加入「居民上报 - 可调用接口的应用」。",
    "wecom.cli.no_root": "企业微信里还没有网格结构，请先在管理后台开通居民上报。",
    "wecom.cli.database": "数据库出错（{what}），本页没有写入，下次会重试。",
    "wecom.sync.done": "已同步企业微信居民上报 {n} 条：新建工单 {new} 张，新进展 {steps} 条。",
    "wecom.step.1": "受理",
    "wecom.step.2": "办理",
    "wecom.step.3": "办结",
    "wecom.step.other": "进展",
    "wecom.held": "企业微信网格对不上本县网格",
    "wecom.conflict": "企业微信：{wecom}；按地点：{ours}",
    "wecom.coord.conflict": "工单 {number}（企业微信居民上报）：企业微信报在{wecom}，"
                            "按地点应在{ours}。请确认由哪个网格办理。",
    "wecom.coord.unmapped": "工单 {number}（企业微信居民上报）对不上本县网格，请分派。内容：{text}",
}

EN = {
    "wecom.kind.community": "community",
    "wecom.kind.grid": "grid",
    "wecom.change.name": "name",
    "wecom.change.parent": "parent",
    "wecom.change.admins": "admins",
    "wecom.change.members": "members",
    "wecom.push.add": "add {kind}: {name}",
    "wecom.push.update": "update {kind}: {name} ({what})",
    "wecom.push.delete": "delete {kind}: {name}",
    "wecom.push.nothing": "WeCom's grids are up to date; nothing to change.",
    "wecom.push.plan": "Plan (nothing changed): {n} steps",
    "wecom.push.done": "Pushed to WeCom: {added} added, {updated} updated, {deleted} deleted.",
    "wecom.push.invalid": "WeCom does not know these accounts; check the directory: {ids}",
    "wecom.push.problems": "{n} problem(s) found before pushing; nothing was changed:",
    "wecom.limit.no_admin": "{name}: no admin bound to WeCom (grid leader or coordinator); "
                            "WeCom needs at least 1",
    "wecom.limit.admins": "{name}: {n} admins; WeCom allows 20",
    "wecom.limit.members": "{name}: {n} members; WeCom allows 100",
    "wecom.limit.admin_of": "{person}: admin of {n} grids; WeCom allows 10",
    "wecom.limit.depth": "{name}: at level {n}; WeCom allows 10",
    "wecom.cli.not_configured": "WeCom is not configured (WECOM_CORP_ID, WECOM_SECRET).",
    "wecom.cli.unreachable": "WeCom cannot be reached just now; try again later.",
    "wecom.cli.refused": "WeCom refused the request (errcode {code}). Is this app listed under "
                         "居民上报 - 可调用接口的应用?",
    "wecom.cli.no_root": "WeCom has no grid structure yet; turn on 居民上报 in the admin console.",
    "wecom.cli.database": "The database failed ({what}); this page was not written and will be "
                          "tried again.",
    "wecom.sync.done": "Synced {n} WeCom resident reports: {new} new tickets, {steps} new steps.",
    "wecom.step.1": "accepted",
    "wecom.step.2": "in progress",
    "wecom.step.3": "solved",
    "wecom.step.other": "progress",
    "wecom.held": "WeCom's grid matches none of ours",
    "wecom.conflict": "WeCom: {wecom}; by location: {ours}",
    "wecom.coord.conflict": "Ticket {number} (WeCom resident report): WeCom filed it under "
                            "{wecom}, its location says {ours}. "
                            "Please decide which grid handles it.",
    "wecom.coord.unmapped": "Ticket {number} (WeCom resident report) matches none of our grids; "
                            "please assign it. It says: {text}",
}

register(ZH, EN)
