"""An optional second opinion from a larger language model: which of two answers to a held-out prompt is
better, the base model's or the tuned one's. OFF by default.

A judge is either a local GGUF file run with llama-cpp-python (when installed) or an OpenAI-compatible chat
endpoint the user named. Nothing here touches the network unless an endpoint is configured, and an
unreachable judge is reported in words instead of failing the quality check. The two answers are shown in
alternating order (A/B, then B/A) so a judge that prefers the first answer it reads cannot tilt the result.
Settings live in STUDIO_HOME/judge.json (set from the GUI's Quality judge screen); an endpoint's API key
goes to the system's password store (studio.engine.secrets), never into that file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from studio.engine.errors import StudioError
from studio.engine.library.metrics import Outcome, Tally, tally, verdict_sentence
from studio.engine.progress import QUIET, TaskContext

SETTINGS_FILE = "judge.json"
Kind = Literal["off", "gguf", "endpoint"]
Pick = Literal["A", "B", "tie"]
TIMEOUT_S = 60.0
CHECK_TIMEOUT_S = 20.0  # the settings screen's Test waits less than a whole quality check would
KEYRING_SERVICE = "studio-judge"
KEYRING_USER = "api-key"
KEY_LABEL = "the judge endpoint's API key"

JUDGE_PROMPT = """You compare two answers to the same request. Reply with exactly one word:
A if answer A is better, B if answer B is better, or TIE if they are equally good.

Request:
{prompt}

Reference answer (for guidance):
{reference}

Answer A:
{first}

Answer B:
{second}

Which answer is better? Reply A, B or TIE."""


@dataclass(frozen=True)
class JudgeSettings:
    kind: Kind = "off"
    model_path: str = ""  # a .gguf file, for kind "gguf"
    url: str = ""  # e.g. http://127.0.0.1:8080/v1, for kind "endpoint"
    model: str = ""  # the endpoint's model name
    api_key: str = ""

    @property
    def enabled(self) -> bool:
        return (self.kind == "gguf" and bool(self.model_path)) or (self.kind == "endpoint" and bool(self.url))

    @property
    def description(self) -> str:
        if self.kind == "gguf":
            return f"local model {Path(self.model_path).name}"
        if self.kind == "endpoint":
            return f"the endpoint {self.url}"
        return "no judge"


def load_settings(home: Path | None = None) -> JudgeSettings:
    """The saved judge settings; off when there are none or the file is unreadable. The API key comes from
    the password store, read only when the file says one was saved there."""
    from studio.engine.paths import studio_home

    try:
        data = json.loads(((home or studio_home()) / SETTINGS_FILE).read_text(encoding="utf-8"))
        fields = {k: str(v) for k, v in data.items() if k in JudgeSettings.__dataclass_fields__}
        if fields.get("kind") not in {"off", "gguf", "endpoint"}:
            fields["kind"] = "off"
        if data.get("key_in_keyring") is True and not fields.get("api_key"):
            fields["api_key"] = load_api_key()
        return JudgeSettings(**fields)  # type: ignore[arg-type]
    except (OSError, ValueError, TypeError, AttributeError):
        return JudgeSettings()


def save_settings(settings: JudgeSettings, home: Path | None = None) -> Path:
    """Write judge.json without the API key: a key goes to the password store first, so a store that
    cannot be used (a StudioError) leaves the saved settings as they were."""
    from studio.engine.paths import studio_home

    if settings.api_key.strip():
        from studio.engine.secrets import save_secret

        save_secret(KEYRING_SERVICE, KEYRING_USER, settings.api_key, KEY_LABEL)
    data: dict[str, Any] = {k: v for k, v in asdict(settings).items() if k != "api_key"}
    data["key_in_keyring"] = bool(settings.api_key.strip())
    path = (home or studio_home()) / SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def load_api_key() -> str:
    """The endpoint's API key from the password store; none when there is none or the store cannot be used
    (the endpoint then says in its own words that a key is missing)."""
    from studio.engine.secrets import load_secret

    try:
        return load_secret(KEYRING_SERVICE, KEYRING_USER, KEY_LABEL) or ""
    except StudioError:
        return ""


class JudgeUnavailable(Exception):  # noqa: N818 - a reported condition
    """The judge could not be used; the message says why, in words."""


# ---- the decision logic ---------------------------------------------------------------------------------

def parse_pick(reply: str) -> Pick | None:
    """The judge's choice from its reply: A, B or a tie; None when the reply names none of them."""
    words = re.findall(r"[A-Za-z]+", reply.strip())
    for word in words[:8]:
        upper = word.upper()
        if upper == "A":
            return "A"
        if upper == "B":
            return "B"
        if upper in {"TIE", "EQUAL", "SAME", "BOTH"}:
            return "tie"
    return None


def judge_prompt(prompt: str, reference: str, base: str, tuned: str, index: int) -> tuple[str, bool]:
    """The question for example `index`, and whether the tuned answer is shown first (every other one)."""
    tuned_first = index % 2 == 1
    first, second = (tuned, base) if tuned_first else (base, tuned)
    text = JUDGE_PROMPT.format(prompt=prompt.strip() or "(none)", reference=reference.strip() or "(none)",
                               first=first.strip() or "(empty)", second=second.strip() or "(empty)")
    return text, tuned_first


def outcome_of(pick: Pick | None, tuned_first: bool) -> Outcome:
    """Map the judge's A/B back to base/tuned: an unreadable reply counts as a tie."""
    if pick is None or pick == "tie":
        return "same"
    tuned_won = (pick == "A") == tuned_first
    return "better" if tuned_won else "worse"


@dataclass(frozen=True)
class JudgeResult:
    judge: str  # who judged, in words
    tally: Tally | None
    error: str = ""

    @property
    def sentence(self) -> str:
        if self.tally is None:
            return f"The judge ({self.judge}) was not used: {self.error}"
        return f"Judge ({self.judge}): " + verdict_sentence(self.tally)

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge, "tally": asdict(self.tally) if self.tally else None, "error": self.error,
                "sentence": self.sentence}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeResult:
        counts = data.get("tally")
        return cls(str(data.get("judge", "")), Tally(**counts) if isinstance(counts, dict) else None,
                   str(data.get("error", "")))


def judge_pairs(ask: Callable[[str], str], examples: Sequence[dict[str, str]], name: str,
                task: TaskContext = QUIET) -> JudgeResult:
    """Ask `ask` (prompt -> reply) about each example's base and tuned answers and tally its picks."""
    outcomes: list[Outcome] = []
    for index, example in enumerate(examples):
        task.check()
        task.report(f"Asking the judge about example {index + 1} of {len(examples)}", index / max(len(examples), 1))
        text, tuned_first = judge_prompt(example.get("prompt", ""), example.get("reference", ""),
                                         example.get("base", ""), example.get("tuned", ""), index)
        try:
            reply = ask(text)
        except JudgeUnavailable as exc:
            return JudgeResult(name, None, str(exc))
        outcomes.append(outcome_of(parse_pick(reply), tuned_first))
    return JudgeResult(name, tally(outcomes, "the judge's preference"))


# ---- the two kinds of judge -----------------------------------------------------------------------------

def endpoint_asker(url: str, model: str = "", api_key: str = "", timeout_s: float = TIMEOUT_S) -> Callable[[str], str]:
    """Ask an OpenAI-compatible /chat/completions endpoint (only the URL the user configured)."""
    import httpx

    base = url.rstrip("/")
    target = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def ask(prompt: str) -> str:
        body = {"model": model or "judge", "temperature": 0, "max_tokens": 8,
                "messages": [{"role": "user", "content": prompt}]}
        try:
            response = httpx.post(target, json=body, headers=headers, timeout=timeout_s, trust_env=False)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])
        except httpx.HTTPStatusError as exc:
            raise JudgeUnavailable(f"the endpoint {url} answered with HTTP {exc.response.status_code}.") from None
        except httpx.HTTPError as exc:
            raise JudgeUnavailable(f"the endpoint {url} could not be reached ({type(exc).__name__}). "
                                   "Check that it is running, or switch the judge off.") from None
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeUnavailable(f"the endpoint {url} did not reply like an OpenAI-compatible "
                                   "chat endpoint.") from None

    return ask


def gguf_asker(model_path: str) -> Callable[[str], str]:
    """Ask a local GGUF model through llama-cpp-python (loaded once, here, offline)."""
    if not Path(model_path).is_file():
        raise JudgeUnavailable(f"the judge model file {model_path} does not exist.")
    try:
        from llama_cpp import Llama
    except ImportError:
        raise JudgeUnavailable("llama-cpp-python is not installed, so a local GGUF judge cannot run.") from None
    try:
        llm = Llama(model_path=model_path, n_ctx=4096, verbose=False)
    except (ValueError, RuntimeError, OSError) as exc:
        raise JudgeUnavailable(f"the judge model could not be loaded: {exc}") from None

    def ask(prompt: str) -> str:
        out: Any = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=8,
                                              temperature=0.0)
        return str(out["choices"][0]["message"]["content"])

    return ask


def make_asker(settings: JudgeSettings, timeout_s: float = TIMEOUT_S) -> Callable[[str], str]:
    """The configured judge as prompt -> reply; raises JudgeUnavailable when it cannot be used."""
    if settings.kind == "endpoint":
        return endpoint_asker(settings.url, settings.model, settings.api_key, timeout_s)
    return gguf_asker(settings.model_path)


def run_judge(settings: JudgeSettings, examples: Sequence[dict[str, str]],
              task: TaskContext = QUIET) -> JudgeResult | None:
    """The judge's verdict on `examples`, or None when the judge is off (the default)."""
    if not settings.enabled or not examples:
        return None
    try:
        ask = make_asker(settings)
    except JudgeUnavailable as exc:
        return JudgeResult(settings.description, None, str(exc))
    return judge_pairs(ask, examples, settings.description, task)


def check_judge(settings: JudgeSettings, task: TaskContext = QUIET) -> str:
    """The settings screen's Test: one tiny question with an obvious answer, so a user learns before a
    quality check whether the judge loads (or answers) and replies in the A/B form it must. Returns a
    sentence on what it said; raises StudioError, in words, when it cannot judge."""
    if not settings.enabled:
        raise StudioError(
            what="There is no judge to test.",
            why="The judge is off, or its model file or endpoint address is empty.",
            actions=["Choose a local GGUF file or enter an endpoint's address, then press Test again.",
                     "Or leave the judge off: the quality check works without it."],
            code="judge_not_set",
        )
    task.report(f"Starting the judge ({settings.description})", 0.1)
    text, tuned_first = judge_prompt("What is 2 plus 2?", "4", "5", "4", 0)
    try:
        ask = make_asker(settings, CHECK_TIMEOUT_S)
        task.check()
        task.report(f"Asking {settings.description} one small question", 0.4)
        reply = ask(text)
    except JudgeUnavailable as exc:
        raise StudioError(
            what="The judge could not answer.",
            why=str(exc)[:1].upper() + str(exc)[1:],
            actions=["Check the file or the address, the model name and the API key, then press Test again.",
                     "For an endpoint, check that its server is running (for example llama.cpp's "
                     "llama-server or LM Studio).",
                     "Or switch the judge off: the quality check works without it."],
            code="judge_unavailable",
        ) from None
    task.check()
    task.report("The judge answered", 1.0)
    pick = parse_pick(reply)
    shown = " ".join(reply.split())[:60] or "(nothing)"
    if pick is None:
        raise StudioError(
            what="The judge answered, but not with A, B or TIE.",
            why=f"It replied {shown!r}, so Studio could not tell which answer it preferred; in a quality "
                "check such replies count as ties.",
            actions=["Use a model that follows instructions (an instruct or chat model).",
                     "Or switch the judge off: the quality check works without it."],
            code="judge_unclear",
        )
    right = outcome_of(pick, tuned_first) == "better"
    return (f"The judge works: asked which answer to 2 plus 2 is better, it replied {shown!r}"
            + (", the right one." if right else ". That was the wrong one, so its opinion may not mean much."))
