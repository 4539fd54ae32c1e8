"""Combine two or more runs' adapters on the same base into one new adapter (linear, TIES or DARE via PEFT).

A merged adapter lets one model do what several runs taught separately. PEFT's add_weighted_adapter
does the arithmetic; Studio checks the adapters share a base and writes a complete, documented folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from studio.engine.errors import StudioError
from studio.engine.export.adapter import check_adapter
from studio.engine.export.atomic import staged_output
from studio.engine.progress import Span

MergeMethod = Literal["linear", "ties", "dare", "dare_linear"]
# Studio's names -> PEFT combination types (equal ranks, and the SVD variant used when ranks differ).
_COMBINATIONS: dict[str, tuple[str, str]] = {
    "linear": ("linear", "svd"),
    "ties": ("ties", "ties_svd"),
    "dare": ("dare_ties", "dare_ties_svd"),
    "dare_linear": ("dare_linear", "dare_linear_svd"),
}
MERGE_METHODS = tuple(_COMBINATIONS)


def merge_adapters(
    base_model_path: Path,
    adapter_paths: list[Path],
    out_dir: Path,
    method: MergeMethod = "ties",
    weights: list[float] | None = None,
    density: float = 0.5,
    steps: Span | None = None,
) -> Path:
    """Write a new PEFT adapter at `out_dir` that combines `adapter_paths`; nothing is written on failure."""
    steps = steps or Span()
    if method not in _COMBINATIONS:
        raise _merge_error(f"'{method}' is not a merge method.", f"Use one of: {', '.join(MERGE_METHODS)}.",
                           "Pick one of the methods listed above.")
    if len(adapter_paths) < 2:
        raise _merge_error("Merging needs at least two adapters.", f"{len(adapter_paths)} given.")
    weights = weights or [1.0 / len(adapter_paths)] * len(adapter_paths)
    if len(weights) != len(adapter_paths):
        raise _merge_error("There must be one weight per adapter.",
                           f"{len(adapter_paths)} adapters but {len(weights)} weights.")
    if not 0.0 < density <= 1.0:
        raise _merge_error("The density must be above 0 and at most 1.", f"{density} given.")
    configs = [check_adapter(path) for path in adapter_paths]
    ranks = {int(str(config.get("r", 0))) for config in configs}
    combination = _COMBINATIONS[method][0 if len(ranks) == 1 else 1]

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    steps.report("Loading the base model", 0.05)
    base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32, use_safetensors=True)
    names = [f"run{index}" for index in range(len(adapter_paths))]
    try:
        model = PeftModel.from_pretrained(base, adapter_paths[0], adapter_name=names[0])
        for index, (name, path) in enumerate(zip(names[1:], adapter_paths[1:], strict=True), start=1):
            steps.report(f"Loading adapter {index + 1} of {len(names)}", 0.1 + 0.4 * index / len(names))
            model.load_adapter(path, adapter_name=name)
        steps.report(f"Merging with {method}", 0.6)
        model.add_weighted_adapter(names, weights, "merged", combination_type=combination,
                                   density=None if combination in {"linear", "svd"} else density)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise _merge_error("These adapters cannot be merged.", str(exc).splitlines()[0],
                           "Merge only adapters trained on the same base model and layers.") from None
    model.delete_adapter(names[0])
    with staged_output(out_dir) as staging:
        steps.report("Saving the merged adapter", 0.85)
        model.save_pretrained(str(staging), selected_adapters=["merged"])
        _flatten(staging / "merged", staging)
        record = {"method": method, "peft_combination": combination, "weights": weights, "density": density,
                  "sources": [str(path) for path in adapter_paths], "base_model": str(base_model_path)}
        (staging / "studio-merge.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    steps.report("Merged adapter saved", 1.0)
    return out_dir


def _flatten(nested: Path, folder: Path) -> None:
    """PEFT saves a named adapter in a subfolder; move it up so the result loads like any run's adapter."""
    if nested.is_dir():
        for path in nested.iterdir():
            path.rename(folder / path.name)
        nested.rmdir()


def _merge_error(what: str, why: str, action: str = "Check the merge settings and try again.") -> StudioError:
    return StudioError(what=what, why=why, actions=[action, "See docs/export.md, section Merging adapters."],
                       code="merge_invalid")
