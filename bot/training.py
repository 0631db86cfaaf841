"""Train (or reuse) the Rasa model, keyed by a hash of everything that shapes it.

Runs in the hub's Python 3.11 venv with only the standard library and PyYAML: Rasa itself
lives in ``.venv-rasa`` (Python 3.10) and is driven as a subprocess. kb_question examples
are generated from the published KB's questions, so publishing KB entries changes the
hash and triggers a retrain, while an unchanged KB reuses the cached model in seconds.

    python -m bot.training [--kb kb_sync/demo/kb.jsonl] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

BOT_DIR = Path(__file__).resolve().parent
REPO_DIR = BOT_DIR.parent
DEFAULT_KB = REPO_DIR / "kb_sync" / "demo" / "kb.jsonl"
RASA_REQUIREMENTS = BOT_DIR / "requirements-rasa.txt"

# Keeps DIET's training time flat however large the KB grows; KB retrieval, not the
# intent classifier, is what tells KB questions apart.
MAX_KB_EXAMPLES = 600
MAX_EXAMPLE_CHARS = 120

# ASCII brackets would be read as Rasa entity markup ([text](entity)); full-width ones
# carry the same meaning for the classifier.
_MARKUP_SAFE = str.maketrans({"[": "【", "]": "】", "(": "（", ")": "）", "{": "｛", "}": "｝"})
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class TrainingError(RuntimeError):
    """Rasa could not train a model (its output was streamed above)."""


@dataclass(frozen=True)
class TrainProgress:
    """How far one ``rasa train`` run is, read from its output (see ``ProgressParser``).

    ``percent`` is an estimate for the whole run (0-100); ``step`` is the component Rasa
    is training (``"preparing"`` before the first one, ``"saving"`` after the last);
    ``epoch``/``epochs`` are set while DIET trains, which is most of the time.
    """

    step: str
    percent: int
    epoch: int | None = None
    epochs: int | None = None


ProgressCallback = Callable[[TrainProgress], None]

# Share of the run before / during DIET's epochs; the policies and saving share the rest.
_DIET_START, _DIET_END, _SAVING = 10, 90, 98
_COMPONENT = re.compile(r"(Starting to train|Restored) component '(\w+)'")
_EPOCHS = re.compile(r"Epochs:\s*\d+%\|.*?\|\s*(\d+)/(\d+)")
_SAVED = re.compile(r"Your Rasa model is trained and saved")
_BAR = re.compile(r"\d+%\|")


class ProgressParser:
    """Turns ``rasa train`` output lines into ``TrainProgress`` (None when a line says nothing new).

    Rasa logs "Starting to train component 'X'." for every pipeline component and
    policy, and DIET prints a tqdm bar "Epochs:  45%|####5     | 36/80 [...]" (one
    update per epoch; with universal newlines each update reads as a line).  Rasa's
    components before DIET are quick; DIET's epochs take most of the run.
    """

    def __init__(self) -> None:
        self.current = TrainProgress("preparing", 0)
        self._after_diet = False

    def feed(self, line: str) -> TrainProgress | None:
        step, percent = self.current.step, self.current.percent
        epoch = epochs = None
        if m := _EPOCHS.search(line):
            epoch, epochs = int(m.group(1)), max(1, int(m.group(2)))
            percent = _DIET_START + (_DIET_END - _DIET_START) * min(epoch, epochs) // epochs
        elif m := _COMPONENT.search(line):
            step = m.group(2)
            if step == "DIETClassifier":
                # restored from Rasa's training cache: no epochs to wait for
                percent = max(percent, _DIET_END if m.group(1) == "Restored" else _DIET_START)
                self._after_diet = m.group(1) == "Restored"
            elif self.current.epochs is not None or self._after_diet:
                self._after_diet = True
                percent = max(percent, _DIET_END + 2)
            else:
                percent = max(percent, min(percent + 2, _DIET_START - 1))
        elif _SAVED.search(line):
            step, percent = "saving", _SAVING
        else:
            return None
        progress = TrainProgress(step, percent, epoch, epochs)
        if progress == self.current:
            return None
        self.current = progress
        return progress


def log(message: str) -> None:
    """Progress lines go to stderr so `make` output shows what is slow."""
    print(f"[bot.training] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """Models are cached outside the repo so a fresh clone on the same machine reuses them."""
    base = os.environ.get("ZWKF_CACHE_DIR") or str(Path.home() / ".cache" / "zwkf")
    return Path(base) / "models"


def rasa_executable() -> Path:
    return Path(os.environ.get("ZWKF_RASA_VENV", str(REPO_DIR / ".venv-rasa"))) / "bin" / "rasa"


def load_kb_questions(path: Path = DEFAULT_KB) -> list[str]:
    """Read questions from a KB export (one JSON object a line).

    Ordered round-robin: every standard question first, then every entry's first similar
    question, then the second ... so a cap keeps coverage across all entries.
    """
    if not path.exists():
        log(f"no KB file at {path}; training with hand-written kb_question examples only")
        return []
    rows: list[list[str]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from exc
        questions = [entry.get("question") or ""] + list(entry.get("similar") or [])
        rows.append([q for q in questions if isinstance(q, str)])
    ordered: list[str] = []
    depth = max((len(r) for r in rows), default=0)
    for i in range(depth):
        ordered.extend(r[i] for r in rows if i < len(r))
    return ordered


def _clean(text: str) -> str:
    return " ".join(text.split()).translate(_MARKUP_SAFE)[:MAX_EXAMPLE_CHARS].strip()


def _hand_written_examples(data_dir: Path) -> dict[str, set[str]]:
    """intent -> examples in the hand-written NLU files (to drop conflicting KB lines)."""
    found: dict[str, set[str]] = {}
    for path in sorted(data_dir.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for item in doc.get("nlu") or []:
            if "intent" not in item:
                continue
            lines = str(item.get("examples") or "").splitlines()
            examples = {ln.strip()[2:].strip() for ln in lines if ln.strip().startswith("- ")}
            found.setdefault(item["intent"], set()).update(examples)
    return found


def select_kb_examples(
    questions: Iterable[str],
    data_dir: Path = BOT_DIR / "data",
    cap: int = MAX_KB_EXAMPLES,
) -> list[str]:
    """Clean, dedupe and cap KB questions; sorted so the order of the KB does not matter.

    Questions that are hand-written examples of another intent are dropped: the same
    text under two intents only confuses DIET (and Rasa warns about it).
    """
    hand = _hand_written_examples(data_dir)
    other = set().union(*(v for k, v in hand.items() if k != "kb_question"))
    already = hand.get("kb_question", set())
    chosen: list[str] = []
    seen: set[str] = set()
    for raw in questions:
        text = _clean(raw)
        if not text or text in seen or text in other or text in already:
            continue
        seen.add(text)
        chosen.append(text)
        if len(chosen) >= cap:
            break
    return sorted(chosen)


def render_kb_nlu(examples: Sequence[str]) -> str:
    """The generated NLU file for kb_question (empty examples are not valid Rasa YAML)."""
    if not examples:
        return 'version: "3.1"\nnlu: []\n'
    body = "".join(f"      - {e}\n" for e in examples)
    return (
        'version: "3.1"\n'
        "# Generated by bot/training.py from the published KB. Do not edit.\n"
        "nlu:\n  - intent: kb_question\n    examples: |\n" + body
    )


def _training_inputs(generated_nlu: str) -> list[tuple[str, bytes]]:
    files = [BOT_DIR / "config.yml", BOT_DIR / "domain.yml", RASA_REQUIREMENTS]
    files += sorted((BOT_DIR / "data").rglob("*.yml"))
    inputs = [(str(p.relative_to(REPO_DIR)), p.read_bytes()) for p in files]
    inputs.append(("<generated kb_question nlu>", generated_nlu.encode("utf-8")))
    return inputs


def training_hash(kb_questions: Sequence[str] | None = None) -> str:
    """sha256 over config, domain, hand-written data, generated KB data and Rasa's pins.

    ``kb_questions=None`` reads the default KB file; pass ``[]`` for no KB at all.
    """
    examples = select_kb_examples(load_kb_questions() if kb_questions is None else kb_questions)
    return _hash_inputs(_training_inputs(render_kb_nlu(examples)))


def _hash_inputs(inputs: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, content in inputs:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()[:32]


def _run_rasa_train(
    generated_file: Path, out_dir: Path, name: str, progress: ProgressCallback | None = None
) -> None:
    rasa = rasa_executable()
    if not rasa.exists():
        raise TrainingError(f"{rasa} not found; run scripts/setup.sh to build .venv-rasa")
    cmd = [
        str(rasa), "train",
        "--config", str(BOT_DIR / "config.yml"),
        "--domain", str(BOT_DIR / "domain.yml"),
        "--data", str(BOT_DIR / "data"), str(generated_file),
        "--out", str(out_dir),
        "--fixed-model-name", name,
    ]  # fmt: skip
    # Not --quiet: at INFO Rasa names each component it trains and DIET prints its epoch
    # bar, which is what ProgressParser reads; the noisier lines are not echoed.
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ banner is noise here
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("PYTHONWARNINGS", "ignore")  # Rasa's deps' deprecation noise
    env["LOG_LEVEL"] = "INFO"
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        cmd, cwd=str(REPO_DIR), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, encoding="utf-8", errors="replace",
    )  # fmt: skip
    assert proc.stdout is not None
    parser = ProgressParser()
    shown = -1
    for line in proc.stdout:  # stream so a long training visibly makes progress
        line = _ANSI.sub("", line).rstrip()
        if not line:
            continue
        update = parser.feed(line)
        if update is not None and progress is not None:
            progress(update)
        if update is not None and update.epoch is not None:
            if update.percent // 10 == shown // 10 and update.epoch != update.epochs:
                continue  # one log line per tenth of DIET's epochs, not one per epoch
            shown = update.percent
            line = f"DIET epoch {update.epoch}/{update.epochs} ({update.percent}%)"
        elif update is None and (" INFO " in line or _BAR.search(line)):
            continue  # Rasa's INFO chatter and other progress bars; warnings and errors still show
        print(f"[rasa train] {line}", file=sys.stderr, flush=True)
    if proc.wait() != 0:
        raise TrainingError(f"rasa train exited with {proc.returncode}")


def ensure_model(
    kb_questions: Sequence[str] | None = None, *, force: bool = False, progress: ProgressCallback | None = None
) -> Path:
    """Return a trained model for the current data, training only when the hash is new.

    The model is written to a temporary name in the cache dir and renamed into place,
    so a concurrent or interrupted run never leaves a half-written ``<hash>.tar.gz``.
    ``progress`` is called (from this thread) as Rasa's output shows the run advancing.
    """
    questions = load_kb_questions() if kb_questions is None else list(kb_questions)
    examples = select_kb_examples(questions)
    generated = render_kb_nlu(examples)
    digest = _hash_inputs(_training_inputs(generated))
    target = cache_dir() / f"{digest}.tar.gz"
    if target.exists() and not force:
        log(f"reusing cached model {target}")
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"training model {digest} ({len(examples)} KB-derived examples); this takes 1-2 min")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".train-") as tmp:
        # Per-run file: concurrent trainings (make test beside make run) never share it.
        generated_file = Path(tmp) / "nlu_kb.yml"
        generated_file.write_text(generated, encoding="utf-8")
        if progress is None:
            _run_rasa_train(generated_file, Path(tmp), digest)
        else:
            _run_rasa_train(generated_file, Path(tmp), digest, progress)
        produced = Path(tmp) / f"{digest}.tar.gz"
        if not produced.exists():
            raise TrainingError(f"rasa train finished but wrote no {produced.name}")
        partial = target.with_name(f".{digest}.{os.getpid()}.partial")
        shutil.move(str(produced), partial)
        os.replace(partial, target)
    log(f"trained {target} in {time.monotonic() - started:.0f}s")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB, help="KB export (JSON lines)")
    parser.add_argument("--force", action="store_true", help="retrain even when cached")
    args = parser.parse_args(argv)
    try:
        model = ensure_model(load_kb_questions(args.kb), force=args.force)
    except (TrainingError, ValueError) as exc:
        log(f"error: {exc}")
        return 1
    print(model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
