"""What a question asks, as opposed to what it is about.

Two questions can share every topic word and still want different answers:
"X是什么原因" (cause) vs "X怎么办" (what to do), "能不能吃Y" vs "吃什么".  These cue
groups are generic Chinese question forms, not any domain's vocabulary; the scorer
uses their (mis)match between a query and a candidate as evidence of a different intent.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .text import normalize

# Each group: one kind of question.  Patterns run on the normalised text.
CUE_GROUPS: dict[str, str] = {
    "cause": r"原因|为什么|为啥|为何|怎么回事|咋回事|什么引起|引起的|导致|造成|诱因|怎么得|怎么会|怎么引起",
    "remedy": r"怎么办|咋办|怎么治|如何治|治疗|怎么处理|如何处理|怎么缓解|如何缓解|缓解|怎样才能|调理|护理"
    r"|怎么弄|偏方|方法",
    "can": r"能不能|可不可以|可以不|能否|可以吗|能吗|行吗|行不行|好不好|能.{0,8}吗|可以.{0,8}吗|允许|需不需要"
    r"|要不要|需要.{0,6}吗|有必要",
    "diet": r"吃什么|喝什么|饮食|食物|食疗|忌口|忌吃|吃点|能吃|可以吃|吃.{0,4}好",
    "drug": r"药|输液|打针|吊瓶|抗生素|疫苗|注射",
    "symptom": r"症状|表现|征兆|什么感觉|什么样|有哪些反应|迹象",
    "duration": r"多久|多长时间|几天|多少天|几个月|多长|时间",
    "cost": r"多少钱|费用|价格|收费|贵不贵|报销|医保",
    "where": r"哪里|哪儿|哪家|什么地方|哪个医院|去哪|地址|在哪",
    "when": r"什么时候|何时|几点|时候",
    "prevent": r"预防|避免|防止|怎么防",
    "definition": r"是什么|什么是|什么意思|是啥|指什么",
    "severity": r"严重|危害|危险|后果|后遗症|影响|致命|要紧|死",
    "contagion": r"传染|遗传|传播",
    "exam": r"检查|化验|拍片|ct|x光|诊断|确诊|查什么",
    "cure": r"治好|根治|治愈|痊愈|能好|好得了|好转|复发|断根",
    "whether": r"是不是|是否|会不会|有没有|算不算|属于",
    "difference": r"区别|不同|差别|一样吗|哪个好|比较",
    "howto": r"怎么|如何|怎样|咋",
    "which": r"哪些|哪种|哪个|什么",
    "quantity": r"多少|几次|几个|几岁|剂量|用量",
    "procedure": r"办理|流程|手续|材料|申请|条件|资格|需要带",
    "consequence": r"会怎么样|会怎样|有什么影响|有影响|后果|会不会有事|有没有事",
    "diagnosis": r"什么病|哪种病|得了什么|是不是得了|是.{1,8}吗$",
    "caution": r"注意什么|注意事项|注意哪些|禁忌|要注意",
    "effect": r"效果|有效|管用|作用|好用|有用",
}
_COMPILED = {k: re.compile(v) for k, v in CUE_GROUPS.items()}
_NEGATION = re.compile(r"不|没|无|别|未|非|莫")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[一二三四五六七八九十两百千万]+(?=[个岁天月年周次岁度片粒])")


@lru_cache(maxsize=65536)
def cues(text: str) -> frozenset[str]:
    """The cue groups a text contains."""
    t = normalize(text)
    return frozenset(k for k, rx in _COMPILED.items() if rx.search(t))


@lru_cache(maxsize=65536)
def negations(text: str) -> int:
    """How many negation characters the text has (parity matters more than count)."""
    return len(_NEGATION.findall(normalize(text)))


@lru_cache(maxsize=65536)
def numbers(text: str) -> frozenset[str]:
    """Numbers (ages, doses, durations) mentioned; a different number is often a different question."""
    return frozenset(_NUMBER.findall(normalize(text)))


def intent_features(query: str, cand: str) -> tuple[float, float, float, float]:
    """(cue groups only on one side, cue groups shared, negation parity differs, numbers differ)."""
    cq, cc = cues(query), cues(cand)
    only = len(cq ^ cc)
    shared = len(cq & cc)
    neg = float((negations(query) % 2) != (negations(cand) % 2))
    nq, nc = numbers(query), numbers(cand)
    num = float(bool(nq or nc) and nq != nc)
    return float(only), float(shared), neg, num
