"""Every user-facing string. zh_CN is the default; en is kept in step, key for key."""

from __future__ import annotations

from typing import Any

ZH: dict[str, str] = {
    # intake
    "ticket.received": "已受理，工单号 {number}。已派给{grid}网格员处理，办理进度会及时告诉您。",
    "ticket.received_follow": "私聊我可随时查看进度：{link}",
    "ticket.ask_place": "已受理，工单号 {number}。请问是在哪个位置？点下面的地点，或发送位置。",
    "ticket.ask_place_unknown": "已受理，工单号 {number}。没能确定具体位置，请回复小区/街道名称和楼号，或发送位置。",
    "ticket.place_chosen": "好的，工单 {number} 已派给{grid}网格员。",
    "ticket.unrouted": "工单 {number} 暂未确定网格，已转社区工作人员处理。",
    "ticket.unrouted_centre": "工单 {number} 暂未确定网格，已转县指挥中心处理。",
    "ticket.received_no_worker": "已受理，工单号 {number}。已转到{grid}网格；网格员暂未接入，已请{who}跟进，办理进度会及时告诉您。",
    "who.coordinator": "社区工作人员",
    "who.centre": "县指挥中心",
    "ticket.duplicate_media": "已把照片补充到工单 {number}。",
    "ticket.repeat": "同样的内容已受理（工单 {number}），不用重复发送，有进展会告诉您。",
    "ticket.co_report": "同一处的这个问题已登记为工单 {number}，您的反映已一并记下，"
                        "处理进展和结果会通知您。",
    "worker.co_report": "工单 {number} 又有居民反映同一问题（共 {n} 人反映）：{text}",
    "rate.co_thanks": "感谢您对工单 {number} 的评价！",
    "rate.co_not_yet": "工单 {number} 还没有办结，办结后会请您评价。",
    "rate.co_already": "您已评价过工单 {number}，谢谢！",
    "rate.co_noted": "已记下您的意见，会请工作人员跟进工单 {number}。",
    "leader.co_unsatisfied": "【督办】工单 {number} 已结案，但一位附议的居民{name}不满意，请跟进。",
    "ticket.held": "您一分钟内报事较多，这条（工单 {number}）已转社区工作人员查看，请稍候。",
    "ticket.ask_details": "请说说遇到了什么问题、在哪里，例如：报事 南关村口路灯坏了。可以附照片或发送位置。",
    "coord.held": "【报事过于频繁】{name}一分钟内报事超过 {n} 条，多出的已放入待分派队列，请查看。如：工单 {number}：{text}",
    "btn.share_location": "📍 发送位置",
    "ticket.share_location_hint": "也可以点下面的按钮直接发送您的位置。",
    "btn.other_place": "都不是",
    # worker card
    "card.title": "【新工单】{number}",
    "card.urgent": "【紧急】",
    "desk.off": "网页工作台还没有开通，请联系县指挥中心。",
    "card.body": (
        "类别：{category}\n地点：{place}\n内容：{text}\n报事人：{reporter}\n"
        "接单时限：{ack_due}\n办结时限：{resolve_due}"
    ),
    "card.photos": "（共 {n} 张照片，见上方）",
    "card.reopened": "【重新派单】{number}（居民不满意）",
    "card.transferred": "【转派工单】{number}",
    "btn.ack": "接单",
    "btn.resolve": "办结",
    "btn.return": "退回",
    "btn.transfer": "转派",
    "btn.category": "改类别",
    "btn.cancel": "取消",
    "worker.acked": "已接单：{number}。补充进展：回复这条消息，或发送“进展 {number} 内容”。",
    "worker.acked_words": "已接单：{number}。补充进展请发送“进展 {number} 内容”。",
    "worker.ask_resolution": "请发送办结说明（可附一张照片）。发送“取消”放弃。",
    "worker.ask_return_reason": "请说明退回原因。发送“取消”放弃。",
    "worker.resolved": "已办结：{number}，等待居民确认。",
    "worker.resolved_no_chat": "已办结：{number}。报事人无法在线确认，{days} 天后自动结案。",
    "worker.returned": "已退回：{number}。",
    "worker.progress_saved": "进展已记录：{number}。",
    "worker.choose_grid": "转派到哪个网格？",
    "worker.transferred": "已转派：{number} → {grid}。",
    "worker.choose_category": "选择类别：",
    "worker.category_set": "类别已改为：{category}。",
    "worker.cancelled": "已取消。",
    "worker.not_allowed": "抱歉，您无权处理这张工单。",
    "worker.stale": "这张工单已处理，当前状态：{state}。本次操作未执行。",
    "worker.no_worker": "（{grid}网格暂无网格员，已通知社区）",
    # resident updates
    "resident.acked": "您的工单 {number} 已由网格员{worker}接单。",
    "resident.progress": "工单 {number} 有新进展：{note}",
    "resident.resolved": "工单 {number} 已办结：{note}\n请确认并评价：",
    "resident.transferred": "工单 {number} 已转由{grid}网格处理。",
    "resident.returned_wait": "工单 {number} 正在重新分派，请稍候。",
    "resident.thanks": "感谢评价！工单 {number} 已结案。",
    "resident.reopened": "收到，工单 {number} 已重新派单处理。",
    "resident.auto_closed": "工单 {number} 办结后未收到评价，已自动结案。",
    "resident.rejected": "工单 {number} 不予受理：{note}",
    "btn.satisfied": "满意",
    "btn.fairly": "基本满意",
    "btn.unsatisfied": "不满意",
    # queries
    "my.none": "您还没有报过事。",
    "my.header": "您的工单：",
    "my.line": "{number}｜{state}｜{text}",
    "my.line_short": "{number}｜{state}",
    "my.assigned_header": "您负责的工单（{n} 张）：",
    "my.todo_ack": "待接单",
    "my.todo_work": "处理中",
    "my.overdue": "·已超时",
    "my.assigned_hint": "发送工单号可调出工单卡片和按钮。",
    "status.line": "工单 {number}\n状态：{state}\n网格：{grid}\n类别：{category}\n内容：{text}",
    "status.not_found": "没有找到工单 {number}。",
    "status.not_yours": "只能查询您自己报的工单。",
    # leaders / coordinators
    "leader.reopened": "【督办】工单 {number} 居民不满意，已重新派给{worker}。",
    "leader.rate_staff_ticket": "【请评价】工单 {number} 由网格工作人员上报，{worker}已办结：{note}\n请您确认并评价：",
    "rate.not_reporter": "只有报事人可以评价这张工单。",
    "rate.nothing_waiting": "您现在没有等待评价的工单。有新问题请直接发送。",
    "place.not_reporter": "只有报事人可以选择地点。",
    "rate.by_leader": "这张工单由网格工作人员上报，由网格长评价。",
    "action.duplicate": "这个操作已处理。",
    "coord.unrouted": "【待分派】工单 {number} 未能确定网格：{text}",
    "coord.returned": "【退回】工单 {number} 被{worker}退回：{note}",
    "coord.no_worker": "【待分派】{grid}网格没有绑定网格员，工单 {number} 无人接收。",
    "coord.queue_empty": "待分派队列为空。",
    "coord.queue_staff_only": "待分派队列由社区工作人员、网格长和县指挥中心处理。",
    "coord.queue_header": "待分派工单：",
    "coord.assign_to": "派给哪个网格？",
    "coord.assigned": "已派单：{number} → {grid}。",
    "coord.rejected": "已不予受理：{number}，已告知报事人。",
    "pending.place": "（工单 {number} 还在等您说明具体位置：回复那条提问，写上小区/街道和楼号，或发送位置。）",
    "pending.resolve": "（工单 {number} 还在等您发送办结说明。）",
    "pending.return": "（工单 {number} 还在等您说明退回原因。）",
    "choices.reply_number": "回复数字选择：",
    "choices.location": "也可以直接发送您的位置。",
    "words.which": "您有 {n} 张工单，请写上工单号，例如：{example}",
    "words.progress_usage": "请在工单号后写上进展，例如：进展 {number} 已联系物业，明天维修",
    "words.reject_usage": "请写上不予受理的原因，例如：不予受理 {number} 不属于本社区事务",
    "words.category_usage": "没有这个类别。可选：{choices}",
    "escalate.ack": "【超时未接单】工单 {number}（{grid}），时限 {due}。",
    "escalate.resolve": "【超时未办结】工单 {number}（{grid}），时限 {due}。",
    "outbox.dead_letter": "【消息发送失败】发给 {chat} 的消息多次发送失败，已停止重试：{text}",
    "outbox.undeliverable": "【无法送达】{chat} 已超过平台允许的时间没有发来消息，这条通知发不出去，请另行联系：{text}",
    # onboarding / admin
    "start.welcome": "您好，我是网格报事助手。直接发送要反映的问题（可附照片、位置），我会转给所在网格的网格员。",
    "start.follow": "已关注工单 {number}，有进展会私聊告诉您。",
    "start.bound": "绑定成功：您现在是 {scope} 的{role}。",
    "start.bound_centre": "绑定成功：您现在是县指挥中心工作人员。",
    "start.bad_code": "邀请码无效或已过期，请联系社区重新获取。",
    "start.code_cooldown": "邀请码输错次数太多，请 {minutes} 分钟后再试，或联系社区确认邀请码。",
    "bind.ok": "本群已绑定到 {scope}。",
    "bind.how": "群里@我、回复我，或以“报事”开头的消息会生成工单。",
    "bind.usage": "用法：/bind 网格编号或社区编号，例如 /bind FN-02",
    "bind.unknown": "没有找到编号 {code}。",
    "bind.not_allowed": "只有社区工作人员或指挥中心可以绑定群。",
    "bind.taken": "本群已绑定到 {scope}，只有该社区的工作人员或指挥中心可以改绑。",
    "bind.moved": "本群原绑定 {was}，现已改绑到 {scope}。",
    "bind.privacy": (
        "注意：我现在看不到群里的普通消息。请在 BotFather 关闭隐私模式（/setprivacy → Disable）"
        "后把我移出再拉回群，或把我设为群管理员。"
    ),
    "role.worker": "网格员",
    "role.leader": "网格长",
    "role.coordinator": "社区工作人员",
    "role.centre": "指挥中心工作人员",
    "help": (
        "直接发送问题即可报事（群里请@我或以“报事”开头）。\n"
        "/my 我的工单　发送工单号查询进度"
    ),
    "error.generic": "抱歉，刚才没处理成功，请稍后再试。",
    "chatter.thanks": "不客气！有新问题随时发给我。",
    "error.too_long": "内容太长了，已截取前 {limit} 字受理。",
    "staff.private_hint": (
        "您是网格工作人员：要给工单发进展，请回复（引用）那张工单卡片，或发送“进展 工单号 内容”。"
        "发送“我的工单”查看您负责的工单；要以居民身份报事，请以“报事”开头。"
    ),
    "staff.private_hint_words": (
        "您是网格工作人员：要给工单发进展，请发送“进展 工单号 内容”。"
        "发送“我的工单”查看您负责的工单；要以居民身份报事，请以“报事”开头。"
    ),
    "state.reported": "已受理",
    "state.assigned": "已派单",
    "state.acknowledged": "已接单",
    "state.in_progress": "处理中",
    "state.resolved": "已办结，待确认",
    "state.closed": "已结案",
    "state.rejected": "不予受理",
    "state.merged": "已合并办理",
    "state.returned": "已退回，待重新分派",
    "state.reopened": "重新处理中",
    "unrouted": "待分派",
    # WeChat Official Account
    "wechat.user": "微信用户{tail}",
    "wechat.media_kept": "已收到。请接着用文字说明是什么问题、在哪里，会和这条一起转给网格员。",
    "invite.wechat_oa": "微信公众号：关注本公众号后在对话框发送邀请码 {code}，或扫描场景值为 {code} 的带参数二维码。",
    # 代报
    "offline.staff_only": "“代报”是工作人员替居民登记问题用的。您要反映问题，请直接发送“报事”加问题，例如：报事 南关村口路灯坏了。",
    "offline.private_only": "代报会带上居民的姓名和电话，不能发在群里：请撤回这条消息，改为私聊我发送。这条没有登记。",
    "offline.usage": "请这样发送：代报 姓名 电话 问题，例如：代报 张大妈 13800000000 南关村口路灯坏了。姓名和电话可以不写，可以附照片。",
    "offline.one_phone": "一次只能留一个联系电话，请删去多余的号码再发。这条没有登记。",
    "offline.filed": "已代报，工单号 {number}，已派给{grid}网格员{worker}。",
    "offline.filed_self": "已代报，工单号 {number}，属于您负责的{grid}网格，已派给您本人，请接单处理。",
    "offline.filed_no_worker": "已代报，工单号 {number}，已转到{grid}网格；该网格的网格员还没接入，已请{who}跟进。",
    "offline.filed_waiting": "已代报，工单号 {number}，已转到{grid}网格，等待安排网格员。",
    "offline.filed_unrouted": "已代报，工单号 {number}。没能确定属于哪个网格，已转{who}分派。",
    "offline.no_phone": "没有留电话：办结后指挥中心无法电话回访这位居民。",
    "offline.media_added": "已补充到代报工单 {number}。",
    "offline.someone": "居民",
    "offline.remark": "代报：{name}当面登记",
    "card.offline": "【代报工单】{number}",
}

EN: dict[str, str] = {
    "ticket.received": "Received, ticket {number}. Sent to the {grid} grid worker; we'll keep you posted.",
    "ticket.received_follow": "Follow it privately: {link}",
    "ticket.ask_place": "Received, ticket {number}. Where is it? Tap a place below or share a location.",
    "ticket.ask_place_unknown": (
        "Received, ticket {number}. We couldn't tell where; reply with the compound/street and "
        "building number, or share a location."
    ),
    "ticket.place_chosen": "Thanks, ticket {number} went to the {grid} grid worker.",
    "ticket.unrouted": "Ticket {number} has no grid yet; community staff will handle it.",
    "ticket.unrouted_centre": "Ticket {number} has no grid yet; the county command centre will handle it.",
    "ticket.received_no_worker": "Received, ticket {number}. It went to the {grid} grid, whose worker is not connected yet; {who} will follow it up.",
    "who.coordinator": "community staff",
    "who.centre": "the county command centre",
    "ticket.duplicate_media": "Photos added to ticket {number}.",
    "ticket.repeat": "The same report was already received (ticket {number}); no need to send it again.",
    "ticket.co_report": "This problem at this place is already logged as ticket {number}; "
                        "your report was added to it and you will hear of its progress "
                        "and result.",
    "worker.co_report": "Ticket {number}: another resident reported the same problem "
                        "({n} in all): {text}",
    "rate.co_thanks": "Thank you for rating ticket {number}!",
    "rate.co_not_yet": "Ticket {number} is not resolved yet; you will be asked to rate it "
                       "when it is.",
    "rate.co_already": "You have already rated ticket {number}. Thank you!",
    "rate.co_noted": "Your view was noted; staff will be asked to follow up ticket {number}.",
    "leader.co_unsatisfied": "[Escalation] Ticket {number} is closed, but {name}, who reported "
                             "the same problem, is not satisfied. Please follow up.",
    "ticket.held": "You have sent many reports this minute; this one (ticket {number}) went to community staff to look at.",
    "ticket.ask_details": "Please say what the problem is and where, e.g.: 报事 the street light at the village gate is broken. You can add a photo or your location.",
    "coord.held": "[Too many reports] {name} sent more than {n} reports in a minute; the rest are in the unrouted queue, e.g. ticket {number}: {text}",
    "btn.share_location": "📍 Share location",
    "ticket.share_location_hint": "Or tap below to share your location.",
    "btn.other_place": "None of these",
    "card.title": "[New ticket] {number}",
    "card.urgent": "[URGENT] ",
    "desk.off": "The web desk is not set up here; please ask the command centre.",
    "card.body": (
        "Category: {category}\nPlace: {place}\nText: {text}\nReporter: {reporter}\n"
        "Acknowledge by: {ack_due}\nResolve by: {resolve_due}"
    ),
    "card.photos": "({n} photos above)",
    "card.reopened": "[Reassigned] {number} (resident not satisfied)",
    "card.transferred": "[Transferred] {number}",
    "btn.ack": "Acknowledge",
    "btn.resolve": "Resolve",
    "btn.return": "Return",
    "btn.transfer": "Transfer",
    "btn.category": "Category",
    "btn.cancel": "Cancel",
    "worker.acked": "Acknowledged: {number}. To post progress, reply to this message or send '进展 {number} <text>'.",
    "worker.acked_words": "Acknowledged: {number}. To post progress, send '进展 {number} <text>'.",
    "worker.ask_resolution": "Send a resolution note (a photo is optional). Send 'cancel' to stop.",
    "worker.ask_return_reason": "Why are you returning it? Send 'cancel' to stop.",
    "worker.resolved": "Resolved: {number}; waiting for the resident.",
    "worker.resolved_no_chat": "Resolved: {number}. The reporter cannot confirm online; it "
                               "closes by itself in {days} days.",
    "worker.returned": "Returned: {number}.",
    "worker.progress_saved": "Progress saved: {number}.",
    "worker.choose_grid": "Transfer to which grid?",
    "worker.transferred": "Transferred: {number} → {grid}.",
    "worker.choose_category": "Choose a category:",
    "worker.category_set": "Category set to {category}.",
    "worker.cancelled": "Cancelled.",
    "worker.not_allowed": "Sorry, you can't act on this ticket.",
    "worker.stale": "This ticket was already handled (now: {state}); nothing was done.",
    "worker.no_worker": "(the {grid} grid has no worker yet; community staff were told)",
    "resident.acked": "Your ticket {number} was acknowledged by {worker}.",
    "resident.progress": "Ticket {number} update: {note}",
    "resident.resolved": "Ticket {number} resolved: {note}\nPlease confirm and rate:",
    "resident.transferred": "Ticket {number} is now handled by the {grid} grid.",
    "resident.returned_wait": "Ticket {number} is being reassigned.",
    "resident.thanks": "Thank you! Ticket {number} is closed.",
    "resident.reopened": "Got it, ticket {number} was reopened and reassigned.",
    "resident.auto_closed": "Ticket {number} was closed with no rating given.",
    "resident.rejected": "Ticket {number} was not accepted: {note}",
    "btn.satisfied": "Satisfied",
    "btn.fairly": "Fairly satisfied",
    "btn.unsatisfied": "Not satisfied",
    "my.none": "You have no tickets yet.",
    "my.header": "Your tickets:",
    "my.line": "{number} | {state} | {text}",
    "my.line_short": "{number} | {state}",
    "my.assigned_header": "Tickets assigned to you ({n}):",
    "my.todo_ack": "to acknowledge",
    "my.todo_work": "in progress",
    "my.overdue": " · overdue",
    "my.assigned_hint": "Send a ticket number to get its card and buttons back.",
    "status.line": "Ticket {number}\nState: {state}\nGrid: {grid}\nCategory: {category}\nText: {text}",
    "status.not_found": "No ticket {number}.",
    "status.not_yours": "You can only look up your own tickets.",
    "leader.reopened": "[Escalation] Ticket {number}: resident not satisfied; reassigned to {worker}.",
    "leader.rate_staff_ticket": "[Please rate] Ticket {number} was reported by grid staff; {worker} resolved it: {note}\nPlease confirm and rate:",
    "rate.not_reporter": "Only the person who reported this ticket can rate it.",
    "rate.nothing_waiting": "None of your tickets is waiting for a rating. Send a new problem any time.",
    "place.not_reporter": "Only the person who reported this ticket can choose the place.",
    "rate.by_leader": "This ticket was reported by grid staff; the grid leader rates it.",
    "action.duplicate": "This was already done.",
    "coord.unrouted": "[Unrouted] Ticket {number} has no grid: {text}",
    "coord.returned": "[Returned] Ticket {number} returned by {worker}: {note}",
    "coord.no_worker": "[Unrouted] The {grid} grid has no worker bound; ticket {number} waits.",
    "coord.queue_empty": "The unrouted queue is empty.",
    "coord.queue_staff_only": "The unrouted queue is for community staff, grid leaders and the command centre.",
    "coord.queue_header": "Unrouted tickets:",
    "coord.assign_to": "Assign to which grid?",
    "coord.assigned": "Assigned: {number} → {grid}.",
    "coord.rejected": "Not accepted: {number}; the reporter was told.",
    "pending.place": "(Ticket {number} still needs the place: answer that question with the street or estate and building, or send your location.)",
    "pending.resolve": "(Ticket {number} still waits for your resolution note.)",
    "pending.return": "(Ticket {number} still waits for the reason you return it.)",
    "choices.reply_number": "Reply with a number:",
    "choices.location": "You can also send your location.",
    "words.which": "You have {n} tickets; please add the ticket number, e.g. {example}",
    "words.progress_usage": "Please write the progress after the number, e.g. 进展 {number} called the property office",
    "words.reject_usage": "Please give the reason, e.g. 不予受理 {number} not a community matter",
    "words.category_usage": "No such category. Choose one of: {choices}",
    "escalate.ack": "[Not acknowledged] Ticket {number} ({grid}), due {due}.",
    "escalate.resolve": "[Not resolved] Ticket {number} ({grid}), due {due}.",
    "outbox.dead_letter": "[Delivery failed] A message to {chat} failed repeatedly and was dropped: {text}",
    "outbox.undeliverable": "[Undeliverable] {chat} has not written for longer than the platform allows, so this notice cannot be sent; please reach them another way: {text}",
    "start.welcome": (
        "Hello, I'm the grid report assistant. Send me the problem (photos and a location "
        "welcome) and I'll pass it to the grid worker."
    ),
    "start.follow": "Following ticket {number}; updates will come here.",
    "start.bound": "Done: you are now {role} of {scope}.",
    "start.bound_centre": "Done: you are now command centre staff.",
    "start.bad_code": "This invite code is invalid or expired; ask your community for a new one.",
    "start.code_cooldown": "Too many wrong invite codes; try again in {minutes} minutes or check the code with your community.",
    "bind.ok": "This group is bound to {scope}. ",
    "bind.how": "Messages that mention me, reply to me or start with '报事' become tickets.",
    "bind.usage": "Usage: /bind <grid or community code>, e.g. /bind FN-02",
    "bind.unknown": "No grid or community with code {code}.",
    "bind.not_allowed": "Only community staff or the command centre can bind a group.",
    "bind.taken": "This group is bound to {scope}; only that community's staff or the command centre can move it.",
    "bind.moved": "This group was bound to {was}; it is now bound to {scope}. ",
    "bind.privacy": (
        "Note: I can't see ordinary group messages. In BotFather turn privacy mode off "
        "(/setprivacy → Disable) and re-add me, or make me a group admin."
    ),
    "role.worker": "grid worker",
    "role.leader": "grid leader",
    "role.coordinator": "community staff",
    "role.centre": "command centre staff",
    "help": "Send a problem to report it (in groups, mention me or start with 报事).\n/my your tickets",
    "error.generic": "Sorry, that didn't work; please try again shortly.",
    "chatter.thanks": "You're welcome! Send me any new problem at any time.",
    "error.too_long": "That was long; the first {limit} characters were taken.",
    "staff.private_hint": (
        "You are registered as grid staff: to post progress, reply to the ticket's card or send "
        "'进展 <number> <text>'. Send 我的工单 for your tickets; to file a report yourself, "
        "start the message with 报事."
    ),
    "staff.private_hint_words": (
        "You are registered as grid staff: to post progress, send '进展 <number> <text>'. "
        "Send 我的工单 for your tickets; to file a report yourself, start the message with 报事."
    ),
    "state.reported": "received",
    "state.assigned": "assigned",
    "state.acknowledged": "acknowledged",
    "state.in_progress": "in progress",
    "state.resolved": "resolved, awaiting you",
    "state.closed": "closed",
    "state.rejected": "not accepted",
    "state.merged": "merged",
    "state.returned": "returned, being reassigned",
    "state.reopened": "reopened",
    "unrouted": "unrouted",
    "wechat.user": "WeChat user {tail}",
    "wechat.media_kept": "Received. Please add in words what the problem is and where; it will go to the grid worker with this.",
    "invite.wechat_oa": "WeChat Official Account: follow the account and send the code {code} in its chat, or scan a QR code whose scene is {code}.",
    # 代报
    "offline.staff_only": "代报 is for staff filing a report for a resident. To report a problem yourself, send 报事 and the problem, e.g. 报事 the street light at the village gate is broken.",
    "offline.private_only": "A 代报 carries the resident's name and phone and must not be sent in a group: please delete this message and send it to me privately. Nothing was filed.",
    "offline.usage": "Send: 代报 name phone problem, e.g. 代报 张大妈 13800000000 the street light at the village gate is broken. Name and phone may be left out; a photo may be added.",
    "offline.one_phone": "Only one contact phone per report: remove the others and send it again. Nothing was filed.",
    "offline.filed": "Filed for the resident: ticket {number}, sent to {worker}, the {grid} grid worker.",
    "offline.filed_self": "Filed for the resident: ticket {number}. It is in your {grid} grid and was assigned to you; please acknowledge it.",
    "offline.filed_no_worker": "Filed for the resident: ticket {number}, sent to the {grid} grid, whose worker is not connected yet; {who} will follow it up.",
    "offline.filed_waiting": "Filed for the resident: ticket {number}, sent to the {grid} grid; a worker is still to be assigned.",
    "offline.filed_unrouted": "Filed for the resident: ticket {number}. Its grid could not be told; {who} will assign it.",
    "offline.no_phone": "No phone was given: the command centre cannot call this resident back.",
    "offline.media_added": "Added to the ticket filed for the resident, {number}.",
    "offline.someone": "Resident",
    "offline.remark": "Filed face to face by {name}",
    "card.offline": "[Filed for a resident] {number}",
}

CATEGORY_EN = {
    "环境卫生": "Sanitation",
    "市政设施": "Municipal facilities",
    "安全隐患": "Safety hazard",
    "矛盾纠纷": "Dispute",
    "噪音扰民": "Noise",
    "物业服务": "Property services",
    "其他": "Other",
}

_TABLES = {"zh": ZH, "en": EN}


LANGUAGES = tuple(_TABLES)
_service_language = ["zh"]


def use_language(lang: str) -> None:
    """The service's language (LANGUAGE): what "" means for anyone who has not chosen one."""
    if lang not in _TABLES:
        raise ValueError(f"LANGUAGE must be one of {', '.join(_TABLES)}, not {lang!r}")
    _service_language[0] = lang


def register(zh: dict[str, str], en: dict[str, str]) -> None:
    """Add a channel's own texts (its module calls this on import); a key may not be reused."""
    for table, more in ((ZH, zh), (EN, en)):
        clash = table.keys() & more.keys()
        if clash and any(table[k] != more[k] for k in clash):
            raise ValueError(f"text keys already in use: {', '.join(sorted(clash))}")
        table.update(more)


def t(key: str, lang: str = "", **kw: Any) -> str:
    """`key` in `lang` ("" = the service's language); a key missing in a table falls back to zh."""
    table = _TABLES.get(lang or _service_language[0], ZH)
    return table.get(key, ZH[key]).format(**kw)


def stem(name: str, suffix: str) -> str:
    """A county's name without the kind word the texts add (文峰网格 -> 文峰, 凤鸣社区 -> 凤鸣)."""
    return name[:-len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else name


def scoped(name: str, suffix: str) -> str:
    """The name with its kind word exactly once (文峰 and 文峰网格 both -> 文峰网格)."""
    return f"{stem(name, suffix)}{suffix}"


def category_label(category: str, lang: str = "") -> str:
    english = (lang or _service_language[0]) == "en"
    return CATEGORY_EN.get(category, category) if english else category
