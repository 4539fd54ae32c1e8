"""RunPod through its official SDK (`runpod`): GPU types and their on-demand and spot prices.

The SDK sends GraphQL to `$RUNPOD_API_BASE_URL/graphql` (default https://api.runpod.io), read on every
call, which is also how the tests point it at a local fake server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from studio.engine.cloud.providers import GpuType, Price, import_sdk, key_refused, provider_error, unreachable

T = TypeVar("T")
GB = 1024**3
# A pod's container disk holds the data, the base model and the checkpoints; Studio asks for 50 GB and
# sends at most a fifth of it as data (docs/cloud.md).
CONTAINER_DISK_GB = 50
MAX_UPLOAD_BYTES = 10 * GB


class RunPodProvider:
    id = "runpod"
    name = "RunPod"
    max_upload_bytes = MAX_UPLOAD_BYTES

    def gpu_types(self, api_key: str) -> list[GpuType]:
        runpod = import_sdk("runpod")
        rows: list[dict[str, Any]] = _call(lambda: runpod.get_gpus(api_key=api_key))
        return [GpuType(id=row["id"], name=row["id"], vram_gb=float(row["memoryInGb"]))
                for row in rows if row.get("memoryInGb")]

    def prices(self, api_key: str, gpu: GpuType) -> list[Price]:
        """Secure and community cloud, on-demand and spot, where RunPod offers them now."""
        runpod = import_sdk("runpod")
        row: dict[str, Any] = _call(lambda: runpod.get_gpu(gpu.id, api_key=api_key))
        found: list[Price] = []
        for cloud in ("secure", "community"):
            if not row.get(f"{cloud}Cloud"):
                continue
            for spot, field in ((False, f"{cloud}Price"), (True, f"{cloud}SpotPrice")):
                price = row.get(field)
                if price:
                    found.append(Price(per_hour=float(price), spot=spot, cloud=cloud))
        return found


def _call(request: Callable[[], T]) -> T:
    """One SDK call, its failures said in Studio's words."""
    import requests
    from runpod import error

    try:
        return request()
    except error.AuthenticationError:
        raise key_refused("runpod") from None
    except error.QueryError as exc:
        raise provider_error("runpod", str(exc)) from None
    except requests.JSONDecodeError as exc:  # an answer that is not JSON: a proxy page or an outage notice
        raise provider_error("runpod", f"The answer could not be read ({_first_line(exc)}).") from None
    except requests.RequestException as exc:
        raise unreachable("runpod", f"RunPod's API could not be reached ({_first_line(exc)}).") from None
    except ValueError as exc:  # get_gpu: a GPU type listed a moment ago is gone
        raise provider_error("runpod", _first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
