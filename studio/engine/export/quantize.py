"""f16 GGUF -> k-quants (Q4_K_M, Q5_K_M ...) with llama.cpp's quantizer as exposed by llama-cpp-python.

The quantizer runs in a child process (`python -m studio.engine.export.quantize SRC DST TYPE`) so a
cancel can stop it at once and a native crash cannot take Studio down.
"""

from __future__ import annotations

import errno
import re
import sys
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.child import run_child
from studio.engine.frozen import module_command
from studio.engine.progress import Span

# The converter writes these itself; everything else goes through llama_model_quantize from f16.
CONVERTER_QUANTS = ("f16", "q8_0")
# Names people type -> llama_ftype values (llama_cpp.LLAMA_FTYPE_MOSTLY_*).
QUANTIZER_FTYPES = {
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_0": 2, "Q4_K_S": 14, "Q4_K_M": 15,
    "Q5_0": 8, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18,
}
ALL_QUANTS = (*CONVERTER_QUANTS, *QUANTIZER_FTYPES)
_PROGRESS = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")


def normalize_quant(quant: str | None) -> str:
    """'q4_k_m', 'Q4_K_M', 'F16' ... -> the canonical name; an unknown name is a clear error."""
    text = (quant or "f16").strip()
    for name in ALL_QUANTS:
        if text.lower() == name.lower():
            return name
    raise StudioError(
        what=f"'{quant}' is not a quantization Studio can make.",
        why=f"The choices are: {', '.join(ALL_QUANTS)}.",
        actions=["Use f16 or q8_0 for small models (under about 1B parameters): they keep quality.",
                 "Use Q4_K_M or Q5_K_M for larger models to save space."],
        code="quant_unknown",
    )


def quantize_gguf(source: Path, target: Path, quant: str, steps: Span | None = None) -> Path:
    """Write `target` as `quant` from the f16 GGUF `source`."""
    steps = steps or Span()
    if quant not in QUANTIZER_FTYPES:
        raise ValueError(f"quant must be one of {tuple(QUANTIZER_FTYPES)}")

    def on_line(line: str) -> None:
        if match := _PROGRESS.search(line):
            done, total = int(match.group(1)), int(match.group(2))
            steps.report(f"Quantizing to {quant}", done / max(total, 1))

    command = module_command(__name__, str(source), str(target), quant)
    try:
        result = run_child(command, None, steps, on_line)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if result.returncode != 0 or not target.is_file():
        target.unlink(missing_ok=True)
        if result.out_of_space:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        raise StudioError(
            what=f"llama.cpp's quantizer could not make the {quant} file.",
            why=result.last_error(),
            actions=["Try another quantization, such as q8_0 or f16.",
                     "Check that there is enough free disk space."],
            code="quantize_failed",
        )
    steps.report(f"{quant} file written", 1.0)
    return target


def _quantize_here(source: str, target: str, quant: str) -> int:
    """The child process's work: one call into llama.cpp."""
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANTIZER_FTYPES[quant]
    return int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)))


if __name__ == "__main__":
    sys.exit(_quantize_here(*sys.argv[1:4]))
