"""Does a candidate entry really answer the question, judged from the entry's own texts?

A ranker says "this entry is about the same thing"; a citizen needs more. Two generic
checks catch the typical wrong answer next to a right one:

- **aspect**: the question asks for one aspect of a matter (the fee, how long it takes,
  where, what to bring, the conditions, mailing, online) and the entry's answer does not
  give it ("居住证签注要交钱吗" against a 签注 answer that names no fee). An aspect counts
  as covered when the answer shows it (a sum in 元, "不收费", "15日内", "邮寄"…) or when one
  of the entry's own questions asks it (the editor meant the entry to answer it).
- **object**: the question names a service object (居住证, 临时身份证, 高龄津贴…) that the
  entry never mentions. The objects are learnt from the KB itself: the nouns of every
  entry's standard question and the branch names, plus a modifier + object compound the
  entry does not know ("高龄津贴" where the KB only has 生育津贴).

Only question forms and answer wordings that hold for any Chinese service FAQ are listed
here; nothing is keyed to one KB's entries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .text import normalize, tokenizer

CLARIFY_MIN = 0.1  # below this confidence an entry is not offered as "您是想问"
CLOSE_CALL = 0.1  # the best entry is answered only when no other that fits comes this close

# aspect -> (what a question asking it says, what an answer giving it says)
ASPECTS: dict[str, tuple[str, str]] = {
    "money": (
        r"多少钱|几块钱|费用多少|收费标准|什么价|价格|学费|罚多少|罚款多少|交多少|缴多少|领多少|给多少|补多少|"
        r"补贴多少|发多少|贷多少|多少税|标准是多少|能拿多少|报多少",
        r"\d\s*(?:元|块|%|％)|免费|不收费|不收取|不收工本费|免收|免征|无需缴费|无需付费|不需要缴费|零费用",
    ),
    "fee": (
        r"要钱吗|收钱吗|收费吗|交钱吗|要交钱|要收费|要不要钱|收不收费|收不收钱|免费吗|花钱吗|要交费|需要交费|"
        r"要缴费吗|有费用吗|要付费",
        r"\d\s*元|免费|收费|不收|工本费|费用|缴纳.{0,6}费|免收",
    ),
    "wait": (
        r"多久|多长时间|几天|多少天|几个工作日|几个月能|要等|什么时候能(?:拿|领|到|办|下来|好)|"
        r"当天能|当场能|马上能|立刻能|办下来|到账|放款|能拿到",
        r"(?:\d+|[一二三四五六七八九十两半]+)\s*(?:个)?(?:工作)?(?:日|天|小时|周|个月|年)(?:内|左右|以内|后|即可)|"
        r"当场|当天|即时|立等|办结时限|承诺时限",
    ),
    "rate": (
        r"利率|税率|比例|费率|百分之",
        r"\d\s*(?:%|％)|百分之|利率|税率|比例",
    ),
    "mail": (
        r"邮寄|寄到|寄给|寄回|快递|寄送|送到家|送上门",
        r"邮寄|寄递|快递|寄送|送达|邮政",
    ),
    "online": (
        r"网上|线上|在线|手机上|app|小程序|公众号|网上办|不用跑|不想跑|电脑上",
        r"网上|线上|在线|app|小程序|公众号|平台|政务服务网|电子税务局|网页|微信|支付宝|12123|12333|手机",
    ),
    "address": (
        r"地址在|地址是|什么地址|具体位置|具体在哪|在什么位置|在什么地方|坐几路|哪条路|在哪个街",
        r"位于|地址|路\d|\d号|街道|导航|地图|公交",
    ),
    "materials": (
        r"材料|带什么|带啥|准备什么|准备啥|准备哪些|要带|需要带|什么证件|哪些证件|资料|什么手续|证明材料",
        r"携带|提供|提交|材料|凭|持|带上|出具|证明",
    ),
    "when": (
        r"几点|几月|几号|哪天|什么日子|什么时候(?!能)|开门时间|上班时间|下班|截止",
        r"\d+\s*[:：]\s*\d+|\d+月|\d+日|周[一二三四五六日末]|星期|上午|下午|春|夏|秋|冬|季|截止",
    ),
}
_ASPECT_Q = {k: re.compile(q) for k, (q, _) in ASPECTS.items()}
_ASPECT_A = {k: re.compile(a) for k, (_, a) in ASPECTS.items()}

# Heads a service object's name ends with: a modifier + head the entry does not know is
# another object ("高龄" + "津贴").  Generic words of public-service Chinese, not one KB's.
_OBJECT_NOUN_FLAGS = ("n", "nz", "vn", "nt", "j")
_MODIFIER_FLAGS = ("n", "vn", "b", "j")
_GENERIC = frozenset(
    "问题 事情 办理 手续 材料 流程 时间 地方 情况 什么 怎么 需要 可以 申请 服务 政策 信息 证明 要求 条件 "
    "窗口 部门 网上 手机 时候 多少 人员 本人 个人 孩子 宝宝 小孩 老人 家人 东西 业务 费用 标准".split()
)


# "应在30日内申请", "有效期满前90日内", "之日起1年内": a deadline the citizen must meet, not how
# long the office takes
_DEADLINE = re.compile(r"(?:应|须|需|应当|必须|前|之日起|起)\s*$")


def _gives(aspect: str, rx: re.Pattern[str], answer: str) -> bool:
    for m in rx.finditer(answer):
        if aspect == "wait" and _DEADLINE.search(answer[max(0, m.start() - 6) : m.start()]):
            continue
        return True
    return False


@lru_cache(maxsize=65536)
def aspects(text: str) -> frozenset[str]:
    """The aspects a question asks for."""
    t = normalize(text)
    return frozenset(k for k, rx in _ASPECT_Q.items() if rx.search(t))


def _pos_words(text: str) -> list[tuple[str, str]]:
    tokenizer()
    import jieba.posseg as pseg

    return [(w.word, w.flag) for w in pseg.lcut(normalize(text))]


@dataclass(frozen=True)
class EntryText:
    """What the checks need of one entry: its questions (standard first), branch and answer."""

    questions: tuple[str, ...]
    branch: str
    answer: str


@dataclass(frozen=True)
class Fit:
    """``ok``: the entry answers; ``soft``: only an unknown compound differs (worth asking back)."""

    ok: bool
    missing_aspects: tuple[str, ...] = ()
    foreign_objects: tuple[str, ...] = ()
    foreign_compounds: tuple[str, ...] = ()

    @property
    def soft(self) -> bool:
        return not self.missing_aspects and not self.foreign_objects


class Answerability:
    """Built once per KB snapshot; ``fit(query, entry index)`` is a few regex searches."""

    def __init__(self, entries: Sequence[EntryText]) -> None:
        self.entries = list(entries)
        self.texts = [normalize(" ".join((*e.questions, e.branch, e.answer))) for e in self.entries]
        self.covered: list[frozenset[str]] = []
        for e in self.entries:
            asked: set[str] = set()
            for q in e.questions:
                asked |= aspects(q)
            given = {k for k, rx in _ASPECT_A.items() if _gives(k, rx, normalize(e.answer))}
            self.covered.append(frozenset(asked | given))
        self.objects, self.heads = self._learn_objects()
        self._object_rx = (
            re.compile("|".join(re.escape(o) for o in sorted(self.objects, key=len, reverse=True)))
            if self.objects else None
        )

    def _learn_objects(self) -> tuple[frozenset[str], frozenset[str]]:
        """Service objects and the heads their names end with, from the KB's own texts.

        Objects: the nouns of branch names, and nouns of three or more characters in
        standard questions, that few entries share (a word in most entries names nothing).
        Heads: a last character that ends several objects (证: 居住证, 身份证, 结婚证…), or a
        noun a standard question puts a noun modifier before (生育 + 津贴).
        """
        per_entry: list[set[str]] = []
        heads: set[str] = set()
        for e in self.entries:
            found: set[str] = set()
            for part in re.split(r"[/、,，]", e.branch):
                part = normalize(part)
                if 2 <= len(part) <= 6:
                    found.add(part)  # a branch is named after what it serves
                found |= {w for w, f in _pos_words(part) if len(w) >= 2 and f.startswith(_OBJECT_NOUN_FLAGS)}
            if e.questions:
                words = _pos_words(e.questions[0])
                found |= {w for w, f in words if len(w) >= 3 and f.startswith(_OBJECT_NOUN_FLAGS)}
                for pos, ((a, fa), (b, fb)) in enumerate(zip(words, words[1:], strict=False)):
                    if len(a) < 2 or len(b) < 2 or a in _GENERIC or b in _GENERIC:
                        continue
                    nounish = fa.startswith(_MODIFIER_FLAGS) and fb.startswith(_OBJECT_NOUN_FLAGS)
                    if nounish or (pos == 0 and fa.startswith("v") and fb.startswith(("v", "n"))):
                        found.add(a + b)  # a named kind of thing: 临时身份证, 生育津贴, 离婚登记
                        heads.add(b)
                    elif fa.startswith("v") and fb.startswith("n"):
                        heads.add(b)  # 阅读 + 补贴: other kinds of 补贴 exist
            per_entry.append(found - _GENERIC)
        df: Counter[str] = Counter(w for s in per_entry for w in s)
        limit = max(3, len(self.entries) // 6)
        objects = frozenset(w for w, n in df.items() if n <= limit)
        last: Counter[str] = Counter(o[-1] for o in objects)
        heads |= {c for c, n in last.items() if n >= 3}
        return objects, frozenset(heads - _GENERIC)

    def query_objects(self, text: str) -> tuple[str, ...]:
        """KB objects the question names."""
        if self._object_rx is None:
            return ()
        return tuple(dict.fromkeys(m.group(0) for m in self._object_rx.finditer(normalize(text))))

    def query_compounds(self, text: str) -> tuple[tuple[str, str], ...]:
        """(modifier, head) pairs naming an object the KB may not know: 高龄 + 津贴, 光荣 + 证."""
        out: list[tuple[str, str]] = []
        words = _pos_words(text)
        for (a, fa), (b, _) in zip(words, words[1:], strict=False):
            if len(a) < 2 or a in _GENERIC or (a + b) in self.objects:
                continue
            if b in self.heads and fa.startswith(_MODIFIER_FLAGS) and not fa.startswith(("nr", "ns")):
                out.append((a, b))
            elif len(b) == 1 and b in self.heads and fa.startswith(("n", "vn", "b")):
                out.append((a, b))  # jieba splits unknown names: 光荣/证
        for w, f in words:  # one unknown token that is a modifier + head ("电工证")
            if len(w) >= 3 and f.startswith("n") and w[-1] in self.heads and w not in self.objects:
                out.append((w[:-1], w[-1]))
        return tuple(dict.fromkeys(out))

    def fit(self, query: str, entry: int) -> Fit:
        missing = tuple(sorted(aspects(query) - self.covered[entry]))
        text = self.texts[entry]
        foreign = tuple(o for o in self.query_objects(query) if o not in text)
        compounds = tuple(a + b for a, b in self.query_compounds(query)
                          if (a + b) not in text and not (a in text and b in text))
        return Fit(not missing and not foreign and not compounds, missing, foreign, compounds)
