"""A small curated table of real administrative divisions (GB/T 2260).

Resident ID numbers begin with the six-digit code of the district where the person registered,
and ingestion, linkage and de-identification code all check that the code, the province, the
city and the district of an address belong together. A hand-picked table of real districts keeps
the synthetic data honest on that point without shipping the whole national code list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

PROVINCES: dict[str, str] = {
    "11": "北京市",
    "12": "天津市",
    "31": "上海市",
    "32": "江苏省",
    "33": "浙江省",
    "37": "山东省",
    "42": "湖北省",
    "44": "广东省",
    "51": "四川省",
    "61": "陕西省",
}
"""Two-digit province codes of the provinces the table covers."""

CITIES: dict[str, str] = {
    "1101": "北京市",
    "1201": "天津市",
    "3101": "上海市",
    "3201": "南京市",
    "3205": "苏州市",
    "3301": "杭州市",
    "3302": "宁波市",
    "3701": "济南市",
    "3702": "青岛市",
    "4201": "武汉市",
    "4401": "广州市",
    "4403": "深圳市",
    "5101": "成都市",
    "6101": "西安市",
}
"""Four-digit city codes; a municipality's city carries the municipality's own name."""

_DISTRICTS: tuple[tuple[str, str], ...] = (
    ("110101", "东城区"),
    ("110102", "西城区"),
    ("110105", "朝阳区"),
    ("110106", "丰台区"),
    ("110107", "石景山区"),
    ("110108", "海淀区"),
    ("110111", "房山区"),
    ("110112", "通州区"),
    ("110113", "顺义区"),
    ("110114", "昌平区"),
    ("110115", "大兴区"),
    ("120101", "和平区"),
    ("120102", "河东区"),
    ("120103", "河西区"),
    ("120104", "南开区"),
    ("120105", "河北区"),
    ("310101", "黄浦区"),
    ("310104", "徐汇区"),
    ("310105", "长宁区"),
    ("310106", "静安区"),
    ("310107", "普陀区"),
    ("310109", "虹口区"),
    ("310110", "杨浦区"),
    ("310112", "闵行区"),
    ("310113", "宝山区"),
    ("310115", "浦东新区"),
    ("320102", "玄武区"),
    ("320104", "秦淮区"),
    ("320105", "建邺区"),
    ("320106", "鼓楼区"),
    ("320113", "栖霞区"),
    ("320115", "江宁区"),
    ("320506", "吴中区"),
    ("320507", "相城区"),
    ("320508", "姑苏区"),
    ("330102", "上城区"),
    ("330105", "拱墅区"),
    ("330106", "西湖区"),
    ("330108", "滨江区"),
    ("330109", "萧山区"),
    ("330110", "余杭区"),
    ("330203", "海曙区"),
    ("330205", "江北区"),
    ("330212", "鄞州区"),
    ("370102", "历下区"),
    ("370103", "市中区"),
    ("370104", "槐荫区"),
    ("370105", "天桥区"),
    ("370202", "市南区"),
    ("370203", "市北区"),
    ("370212", "崂山区"),
    ("420102", "江岸区"),
    ("420103", "江汉区"),
    ("420104", "硚口区"),
    ("420106", "武昌区"),
    ("420111", "洪山区"),
    ("440103", "荔湾区"),
    ("440104", "越秀区"),
    ("440105", "海珠区"),
    ("440106", "天河区"),
    ("440111", "白云区"),
    ("440113", "番禺区"),
    ("440303", "罗湖区"),
    ("440304", "福田区"),
    ("440305", "南山区"),
    ("440306", "宝安区"),
    ("440307", "龙岗区"),
    ("510104", "锦江区"),
    ("510105", "青羊区"),
    ("510106", "金牛区"),
    ("510107", "武侯区"),
    ("510108", "成华区"),
    ("610102", "新城区"),
    ("610103", "碑林区"),
    ("610104", "莲湖区"),
    ("610113", "雁塔区"),
)


@dataclass(frozen=True, slots=True)
class Division:
    """One district: its GB/T 2260 code and the names of its province, city and district."""

    code: str
    province: str
    city: str
    district: str

    @property
    def province_code(self) -> str:
        """The two-digit province prefix of the code."""
        return self.code[:2]


DIVISIONS: tuple[Division, ...] = tuple(
    Division(code, PROVINCES[code[:2]], CITIES[code[:4]], name) for code, name in _DISTRICTS
)
"""Every district of the table, in code order."""

BY_CODE: dict[str, Division] = {d.code: d for d in DIVISIONS}
"""Districts by their six-digit code."""


@cache
def in_province(province_code: str) -> tuple[Division, ...]:
    """The districts of one province, so a hospital can draw most patients from its own region."""
    return tuple(d for d in DIVISIONS if d.province_code == province_code)
