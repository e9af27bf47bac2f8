"""What the county import tells the clerk fixing the files, and its report (zh, en).

Shown by `run_bot.py import` and the desk's county upload. A message names the file and the
row (the Problem carries both), what is wrong and what is expected; it never repeats a phone
number from the files (bot.county.files.shown).
"""

from __future__ import annotations

import re

from bot.notify.texts import register, t

__all__ = ["shown", "t"]

_CODE_RULE = "只能用字母、数字、“-”和“_”，最多 32 个字符"
_DATE_EXAMPLE = "2027-02-06 或 2027-02-06 ~ 2027-02-12"
_DATE_EXAMPLE_EN = "2027-02-06 or 2027-02-06 ~ 2027-02-12"

ZH = {
    # where a problem is, and the list of them
    "county.at_row": "{file} 第 {row} 行：{reason}",
    "county.at_feature": "{file} 第 {row} 个区域：{reason}",
    "county.at_file": "{file}：{reason}",
    "county.file_sep": "、",
    "county.problems": "数据文件有 {n} 处问题：",
    "county.more": "……另有 {n} 处问题未列出",
    "county.import_failed": "导入失败，未做任何修改：",
    "county.number_hidden": "（号码已隐去）",
    # the directory
    "county.not_found": "在 {dir} 里没有找到这个文件",
    "county.both_places": "places.csv 和 places.xlsx 只能留一个",
    "county.no_places": "没有找到 places.csv 或 places.xlsx",
    "county.cannot_read": "无法读取这个文件，请确认文件没有损坏、格式正确",
    "county.empty_file": "文件是空的",
    "county.missing_columns": "表头缺少这些列：{cols}",
    "county.col_grid": "网格",
    "county.col_place": "地名",
    "county.col_address": "门牌",
    "county.col_phone": "电话",
    "county.col_code": "编号",
    "county.col_name": "名称",
    "county.col_kind": "类型",
    "county.col_serves": "服务范围",
    "county.col_sep": "、",
    "county.duplicate": "和第 {first} 行重复",
    "county.unknown_grid": "网格 {grid} 不存在（grids.yaml 里没有这个编号）",
    "county.not_checked": "grids.yaml 有错误，{counts}的网格编号暂未核对；请先改好 grids.yaml",
    "county.n_row": "{n} 行",
    "county.n_rows": "{n} 行",
    "county.n_feature": "{n} 个区域",
    "county.n_features": "{n} 个区域",
    "county.and": "和 ",
    # YAML
    "county.yaml_bad": "格式有误，无法读取（解析器提示：{detail}）",
    "county.yaml_bad_at": "“{text}”第 {column} 列附近写法有误，请检查冒号、缩进和括号"
                          "（解析器提示：{detail}）",
    # phones: the number itself is never repeated
    "county.phone_not_number": "电话格式不对，只能填数字",
    "county.phone_mobile_short": "电话格式不对，只有 {n} 位，手机号应为 {mobile} 位",
    "county.phone_mobile_long": "电话格式不对，有 {n} 位，手机号应为 {mobile} 位",
    "county.phone_short": "电话格式不对，只有 {n} 位（手机号 {mobile} 位，座机至少 {least} 位）",
    "county.phone_long": "电话格式不对，有 {n} 位，最多 {most} 位",
    # grids.yaml
    "county.worker": "网格员",
    "county.leader": "网格长",
    "county.what_grid": "网格",
    "county.what_community": "社区",
    "county.code_missing": "有一个{what}没有填编号（code）",
    "county.code_bad": "{what}编号 {code} 不合规：" + _CODE_RULE,
    "county.code_twice": "{what}编号 {code} 重复了（第 {first} 行已用过）",
    "county.staff_not_mapping": "网格 {grid} 的{what}要写成带姓名（name）和电话（phone）的一项",
    "county.staff_no_name": "网格 {grid} 有一位{what}没有填姓名（name）",
    "county.staff_bad_phone": "网格 {grid} 的{what}{name}：{bad}",
    "county.staff_phone_shared": "网格 {grid} 的{what}{name}和{other}（网格 {other_grid}）"
                                 "填了同一个电话；一个号码只能属于一个人",
    "county.grid_not_mapping": "社区 {community} 下的每个网格要写成"
                               "带编号（code）和名称（name）的一项",
    "county.grid_no_name": "网格 {code} 没有填名称（name）",
    "county.field_workers": "网格员（workers）",
    "county.field_micro_grids": "微网格（micro_grids）",
    "county.grid_not_list": "网格 {code} 的{field}要写成列表（每项一行，以“- ”开头）",
    "county.community_not_mapping": "每个社区要写成带编号（code）、名称（name）"
                                    "和网格列表（grids）的一项",
    "county.community_no_name": "社区 {code} 没有填名称（name）",
    "county.community_not_list": "社区 {code} 的网格（grids）要写成列表（每项以“- ”开头）",
    "county.top_not_mapping": "文件结构不对：应先写县名（name），再写社区列表（communities）",
    "county.county_no_name": "没有填县名（name）",
    "county.no_communities": "社区列表（communities）是空的或写法不对",
    # places.csv / places.xlsx
    "county.column_count": "这一行有 {got} 列，表头有 {want} 列（{header}）；"
                           "是不是少了或多了逗号？单元格里有逗号要用英文引号括起来",
    "county.no_grid": "没有填网格",
    "county.no_place": "没有填地名",
    "county.name_short": "地名“{name}”太短，至少要 {least} 个字才能用来匹配",
    "county.alias_short": "别名“{alias}”太短，至少要 {least} 个字才能用来匹配",
    "county.numbers_bad": "门牌号段“{cell}”写法不对：应写成 1-20、7 或 1-199单 这样，"
                          "前面的号不能大于后面的，多段用分号（;）隔开",
    "county.overlap": "{name} {clash}（网格 {grid}）和第 {row} 行的 {other}（网格 {other_grid}）"
                      "门牌号段重叠",
    "county.odd": "单号",
    "county.even": "双号",
    # households.csv
    "county.no_address": "没有填门牌（地址）",
    "county.no_phone": "没有填电话，这一户无法回访",
    # boundaries.geojson
    "county.bad_json": "格式有误，无法读取（第 {line} 行第 {column} 列附近）",
    "county.bad_encoding": "文件编码不对，请另存为 UTF-8",
    "county.not_collection": "文件结构不对：最外层的 type 应为 FeatureCollection",
    "county.not_feature": "这一项不是区域（type 应为 Feature）",
    "county.no_grid_prop": "没有填网格编号（properties 里的 grid）",
    "county.boundary_twice": "网格 {grid} 已经有边界了（第 {first} 个区域）",
    "county.datum_bad": "坐标系“{datum}”不认识：只能是 wgs84 或 gcj02",
    "county.geom_type": "网格 {grid} 的边界应是多边形（Polygon 或 MultiPolygon），现在是 {kind}",
    "county.lat_lon": "网格 {grid} 的坐标好像是先纬度后经度；应先写经度、后写纬度",
    "county.out_of_range": "网格 {grid} 的坐标超出了经纬度范围",
    "county.malformed": "网格 {grid} 的坐标写法不对",
    "county.invalid_polygon": "网格 {grid} 的边界不是合格的多边形：{why}",
    "county.why_self_intersection": "边线自相交",
    "county.why_too_few_points": "点太少",
    "county.why_hole_outside": "内圈在外圈之外",
    "county.why_other": "形状有误",
    "county.near": "（在 {where} 附近）",
    "county.same_polygon": "网格 {grid} 的边界和网格 {other}（第 {first} 个区域）完全一样，"
                           "是不是复制错了？",
    "county.ring_outer": "外圈",
    "county.ring_hole": "第 {n} 个内圈",
    "county.ring_of_polygon": "第 {polygon} 个多边形的{where}",
    "county.ring_short": "网格 {grid} 的{where}只有 {n} 个点；"
                         "一圈至少 4 个点，最后一个点要和第一个相同",
    "county.ring_open": "网格 {grid} 的{where}没有闭合："
                        "最后一个点 {last} 要和第一个点 {first} 相同",
    # holidays.yaml
    "county.holidays_not_mapping": "文件结构不对：应写 off（放假）和 work（调休上班）两个列表",
    "county.holidays_key": "不认识“{field}”：只能写 off（放假）和 work（调休上班）",
    "county.holidays_not_list": "{field}下面要写日期列表",
    "county.field_off": "off（放假）",
    "county.field_work": "work（调休上班）",
    "county.holidays_not_date": "这里应写日期，如 " + _DATE_EXAMPLE,
    "county.date_bad": "“{text}”不是日期，应写成 " + _DATE_EXAMPLE,
    "county.date_parts": "“{text}”：只能写一个日期，或用 ~ 连接两个日期",
    "county.date_backwards": "“{text}”的结束日期早于开始日期",
    "county.date_too_long": "“{text}”超过 {days} 天，是不是写错了？",
    "county.date_both": "{day} 同时写在了 off（放假）和 work（调休上班）里",
    # partners.csv
    "county.partner_no_code": "没有填编号",
    "county.partner_code_bad": "编号 {code} 不合规：" + _CODE_RULE,
    "county.partner_code_twice": "编号 {code} 重复了（第 {first} 行已用过）",
    "county.partner_no_name": "没有填单位名称",
    "county.partner_name_twice": "单位名称“{name}”重复了（第 {first} 行已用过）",
    "county.partner_kind_bad": "类型“{kind}”不认识：只能是物业公司、业委会或部门",
    "county.partner_serves_nothing": "没有填服务范围：写网格编号、地名或“全县”",
    "county.partner_serves_unknown": "服务范围里的“{item}”找不到：不是网格编号、网格名（…网格），"
                                     "也不是地名（见 grids.yaml 和 places.csv）",
    "county.partner_phone_no_contact": "填了电话但没有填联系人",
    # the report
    "county.report_head": "{county}：数据版本 {version}",
    "county.report_kept": "（没有变化，版本号不变）",
    "county.report_line": "  {table}：{counts}",
    "county.counts": "新增 {created}，更新 {updated}，停用 {deactivated}，未变 {unchanged}",
    "county.counts_removed": "，删除 {removed}",
    "county.tbl_communities": "社区",
    "county.tbl_grids": "网格",
    "county.tbl_places": "地名",
    "county.tbl_boundaries": "网格边界",
    "county.tbl_people": "人员",
    "county.tbl_assignments": "岗位",
    "county.tbl_calendar": "节假日",
    "county.tbl_households": "回访户",
    "county.tbl_partners": "协同单位",
    "county.tbl_partner areas": "协同单位负责范围",
    "county.tbl_partner contacts": "协同单位联系人",
}

EN = {
    "county.at_row": "{file} row {row}: {reason}",
    "county.at_feature": "{file} row {row}: {reason}",
    "county.at_file": "{file}: {reason}",
    "county.file_sep": ", ",
    "county.problems": "{n} problem(s) in county files:",
    "county.more": "... and {n} more",
    "county.import_failed": "Import failed, nothing changed:",
    "county.number_hidden": "(number hidden)",
    "county.not_found": "not found in {dir}",
    "county.both_places": "both places.csv and places.xlsx: keep one",
    "county.no_places": "neither places.csv nor places.xlsx found",
    "county.cannot_read": "cannot read: {detail}",
    "county.empty_file": "empty file",
    "county.missing_columns": "missing column(s): {cols}",
    "county.col_grid": "grid",
    "county.col_place": "place",
    "county.col_address": "address",
    "county.col_phone": "phone",
    "county.col_code": "code",
    "county.col_name": "name",
    "county.col_kind": "kind",
    "county.col_serves": "serves",
    "county.col_sep": ", ",
    "county.duplicate": "duplicate of row {first}",
    "county.unknown_grid": "unknown grid '{grid}' (not in grids.yaml)",
    "county.not_checked": "grid codes of {counts} not checked because grids.yaml has errors; "
                          "fix grids.yaml first",
    "county.n_row": "{n} row",
    "county.n_rows": "{n} rows",
    "county.n_feature": "{n} feature",
    "county.n_features": "{n} features",
    "county.and": " and ",
    "county.yaml_bad": "bad YAML: {detail}",
    "county.yaml_bad_at": "bad YAML in '{text}' (column {column}): {detail}",
    "county.phone_not_number": "phone is not a number",
    "county.phone_mobile_short": "phone is too short: {n} digits, a mobile number has {mobile}",
    "county.phone_mobile_long": "phone is too long: {n} digits, a mobile number has {mobile}",
    "county.phone_short": "phone is too short: {n} digits (a mobile number has {mobile}, "
                          "a landline at least {least})",
    "county.phone_long": "phone is too long: {n} digits (at most {most})",
    "county.worker": "worker",
    "county.leader": "leader",
    "county.what_grid": "grid",
    "county.what_community": "community",
    "county.code_missing": "{what} without a code",
    "county.code_bad": "{what} code '{code}': use letters, digits, '-', '_' (at most 32)",
    "county.code_twice": "{what} code '{code}' is used twice (first at line {first})",
    "county.staff_not_mapping": "grid {grid}: {what} must be a mapping with name and phone",
    "county.staff_no_name": "grid {grid}: {what} without a name",
    "county.staff_bad_phone": "grid {grid}: {what} {name}: {bad}",
    "county.staff_phone_shared": "grid {grid}: {what} {name} has the phone of {other} "
                                 "({other_grid})",
    "county.grid_not_mapping": "community {community}: each grid must be a mapping",
    "county.grid_no_name": "grid {code} without a name",
    "county.field_workers": "workers",
    "county.field_micro_grids": "micro_grids",
    "county.grid_not_list": "grid {code}: {field} must be a list",
    "county.community_not_mapping": "each community must be a mapping with code, name, grids",
    "county.community_no_name": "community {code} without a name",
    "county.community_not_list": "community {code}: grids must be a list",
    "county.top_not_mapping": "expected a mapping with name and communities",
    "county.county_no_name": "the county has no name",
    "county.no_communities": "communities must be a non-empty list",
    "county.column_count": "{got} columns, but the header has {want} ({header}); a missing or "
                           "extra comma? (quote cells that contain a comma)",
    "county.no_grid": "no grid",
    "county.no_place": "no place name",
    "county.name_short": "place name '{name}' is too short to match",
    "county.alias_short": "alias '{alias}' is too short to match",
    "county.numbers_bad": "{detail}",
    "county.overlap": "{name} {clash} ({grid}) overlaps {other} ({other_grid}) of row {row}",
    "county.odd": "odd",
    "county.even": "even",
    "county.no_address": "no address (门牌)",
    "county.no_phone": "no phone: a household nobody can call",
    "county.bad_json": "bad JSON: {detail}",
    "county.bad_encoding": "bad JSON: {detail}",
    "county.not_collection": "expected a GeoJSON FeatureCollection",
    "county.not_feature": "not a GeoJSON Feature",
    "county.no_grid_prop": "properties.grid missing",
    "county.boundary_twice": "grid {grid} already has a boundary (feature {first})",
    "county.datum_bad": "datum '{datum}': expected wgs84 or gcj02",
    "county.geom_type": "grid {grid}: geometry must be Polygon or MultiPolygon, not {kind}",
    "county.lat_lon": "grid {grid}: coordinates look like [lat, lon]; GeoJSON wants [lon, lat]",
    "county.out_of_range": "grid {grid}: coordinates out of range",
    "county.malformed": "grid {grid}: malformed coordinates ({detail})",
    "county.invalid_polygon": "grid {grid}: invalid polygon ({detail})",
    "county.why_self_intersection": "self-intersection",
    "county.why_too_few_points": "too few points",
    "county.why_hole_outside": "hole outside its shell",
    "county.why_other": "not a valid shape",
    "county.near": " (near {where})",
    "county.same_polygon": "grid {grid} has the same polygon as grid {other} (feature {first}); "
                           "copied by mistake?",
    "county.ring_outer": "outer ring",
    "county.ring_hole": "hole {n}",
    "county.ring_of_polygon": "{where} of polygon {polygon}",
    "county.ring_short": "grid {grid}: {where} has {n} points; a ring needs at least 4, "
                         "the last repeating the first",
    "county.ring_open": "grid {grid}: {where} is not closed: the last point {last} must repeat "
                        "the first {first}",
    "county.holidays_not_mapping": "expected a mapping with off and work lists",
    "county.holidays_key": "unknown key '{field}': use off (days off) and work (days worked)",
    "county.holidays_not_list": "{field} must be a list of dates",
    "county.field_off": "off",
    "county.field_work": "work",
    "county.holidays_not_date": "expected a date like " + _DATE_EXAMPLE_EN,
    "county.date_bad": "'{text}' is not a date like " + _DATE_EXAMPLE_EN,
    "county.date_parts": "'{text}': one date, or two joined by ~",
    "county.date_backwards": "'{text}' ends before it starts",
    "county.date_too_long": "'{text}' is longer than {days} days; a typo?",
    "county.date_both": "{day} is listed both as off and as work",
    "county.partner_no_code": "no code (编号)",
    "county.partner_code_bad": "code '{code}': use letters, digits, '-', '_' (at most 32)",
    "county.partner_code_twice": "code '{code}' is used twice (first at row {first})",
    "county.partner_no_name": "no name (名称)",
    "county.partner_name_twice": "name '{name}' is used twice (first at row {first})",
    "county.partner_kind_bad": "kind '{kind}': use 物业公司, 业委会 or 部门 ({kinds})",
    "county.partner_serves_nothing": "serves nothing: name grid codes, places or 全县 (服务范围)",
    "county.partner_serves_unknown": "serves '{item}': no grid code, grid (…网格) or place of "
                                     "that name (see grids.yaml and places.csv)",
    "county.partner_phone_no_contact": "a phone without a contact (联系人)",
    "county.report_head": "{county}: county version {version}",
    "county.report_kept": " (nothing changed, version kept)",
    "county.report_line": "  {table:<12} {counts}",
    "county.counts": "{created} new, {updated} updated, {deactivated} deactivated, "
                     "{unchanged} unchanged",
    "county.counts_removed": ", {removed} removed",
    "county.tbl_communities": "communities",
    "county.tbl_grids": "grids",
    "county.tbl_places": "places",
    "county.tbl_boundaries": "boundaries",
    "county.tbl_people": "people",
    "county.tbl_assignments": "assignments",
    "county.tbl_calendar": "calendar",
    "county.tbl_households": "households",
    "county.tbl_partners": "partners",
    "county.tbl_partner areas": "partner areas",
    "county.tbl_partner contacts": "partner contacts",
}
register(ZH, EN)

_NUMBERISH = re.compile(r"\d[\d\s()+-]*\d")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_PHONE_DIGITS = 7  # a landline without its area code


def _hide(m: re.Match[str]) -> str:
    run = m.group(0)
    groups = re.findall(r"\d+", run)
    if sum(map(len, groups)) < _PHONE_DIGITS or _DATE.fullmatch(run):
        return run
    # house-number ranges (1000-1200) and dates stay; a long run, 139 0357 9901 or
    # 139-0357-9901 is taken for a phone
    if max(map(len, groups)) >= 5 or len(groups) >= 3 or re.search(r"[\s()+]", run):
        return t("county.number_hidden")
    return run


def shown(value: object) -> str:
    """A cell or line as a message may quote it, with whatever could be a phone hidden: the
    messages reach terminals, logs and the desk, and the files hold residents' numbers."""
    return _NUMBERISH.sub(_hide, str(value))
