"""The wizard's live session: the saved choices (WizardState) plus results recomputed in the background.

Pages never talk to each other; they read and write this object and listen to its signals, the way a
napari view listens to its model. The hardware probe starts as soon as the wizard exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from studio.gui.tasks import TaskRunner, TaskState
from studio.wizard.state import WizardState

if TYPE_CHECKING:
    from studio.engine.models.facts import ModelFacts
    from studio.engine.planner import Planned

FactsReader = Callable[[str | None], "ModelFacts"]

LOCKED_FIELDS = frozenset({"schema_version", "base_model", "profile", "dataset_path", "column_mapping"})
# Set by Studio itself, never typed (examples left out from the hardest-examples view, the version an automatic
# retrain is compared with): kept when a run's settings are loaded, but not offered among the settings.
HIDDEN_FIELDS = frozenset({"exclude_examples", "compare_adapter"})


def _warm_up(task: TaskState) -> Any:
    """Import the engine modules every page needs, once, before any other background task runs.

    Two threads importing the same module at once can see it half-initialized (pydantic's lazy
    module attributes and PySide's import hook make that real), so this runs alone, first, and the
    pages are built only after it: from then on the shared modules are already in sys.modules.
    """
    task.set_status("Starting Studio")
    import numpy  # noqa: F401 - shared by the dataset engine and pyqtgraph

    import studio.engine.datasets
    import studio.engine.models.catalog
    import studio.engine.planner  # noqa: F401
    from studio.engine.profiles import load_profiles

    return load_profiles()


def _probe_hardware(_task: TaskState) -> Any:
    from studio.engine.hardware import probe

    return probe()


def _make_plan(
    task: TaskState, model_ref: str | None, profile_id: str | None, report: Any, hardware: Any,
    read_facts: FactsReader | None,
) -> Planned:
    from studio.engine.planner import plan_for

    facts = read_facts(model_ref) if read_facts is not None else None
    return plan_for(model_ref, profile_id, report, hardware=hardware, facts=facts, task=task)


class WizardSession(QObject):
    """Signals:
    ready(): the engine modules are loaded and the profiles read; pages may be built now.
    startFailed(object): the engine could not be loaded (a StudioError).
    stateChanged(): a choice changed (and was saved).
    hardwareChanged(): the hardware profile arrived.
    reportChanged(): the dataset's validation report changed (or was cleared).
    planChanged(): the planner produced a new plan (or the old one became stale).
    planFailed(object): the planner could not plan; carries a StudioError.
    configChanged(): the final config changed (a setting was edited).
    """

    ready = Signal()
    startFailed = Signal(object)  # noqa: N815 - Qt signal naming
    stateChanged = Signal()  # noqa: N815 - Qt signal naming
    hardwareChanged = Signal()  # noqa: N815 - Qt signal naming
    reportChanged = Signal()  # noqa: N815 - Qt signal naming
    planChanged = Signal()  # noqa: N815 - Qt signal naming
    planFailed = Signal(object)  # noqa: N815 - Qt signal naming
    configChanged = Signal()  # noqa: N815 - Qt signal naming

    def __init__(self, state: WizardState, parent: QObject | None = None, autosave: bool = True) -> None:
        super().__init__(parent)
        self.state = state
        self.autosave = autosave
        self.hardware: Any = None
        self.profiles: dict[str, Any] = {}
        self._boot = TaskRunner(self)
        self._boot.finished.connect(self._on_warm)
        self._boot.failed.connect(self.startFailed)
        self.report: Any = None
        self.data_checking = False
        self.planned: Planned | None = None
        # How the planner learns the model's facts: None reads its files (studio.engine.models.facts); a test
        # gives the facts of a model it does not need on disk.
        self.read_facts: FactsReader | None = None
        self.planner = TaskRunner(self)
        self.planner.finished.connect(self._on_planned)
        self.planner.failed.connect(self.planFailed)
        self._hw = TaskRunner(self)
        self._hw.finished.connect(self._on_hardware)

    @property
    def is_ready(self) -> bool:
        return bool(self.profiles)

    def start(self) -> None:
        """Load the engine in the background, then probe the hardware; `ready` says when pages may be built."""
        if not self.is_ready and not self._boot.busy:
            self._boot.start(_warm_up, "starting Studio")

    def _on_warm(self, profiles: dict[str, Any]) -> None:
        self.profiles = profiles
        if self.hardware is None and not self._hw.busy:
            self._hw.start(_probe_hardware, "checking this computer's hardware")
        self.ready.emit()

    def update(self, **changes: Any) -> None:
        """Change saved choices; a change of profile, data or model makes the plan stale."""
        changed = {k: v for k, v in changes.items() if getattr(self.state, k) != v}
        if not changed:
            return
        for key, value in changed.items():
            setattr(self.state, key, value)
        if changed.keys() & {"profile_id", "dataset_path", "column_mapping", "model_ref"}:
            self._invalidate_plan()
        self.save()
        self.stateChanged.emit()

    def save(self) -> None:
        if self.autosave:
            self.state.save()

    def set_report(self, report: Any) -> None:
        self.report = report
        self._invalidate_plan()
        self.reportChanged.emit()

    def data_blocker(self) -> str | None:
        """Why later steps cannot go on with the data as it stands, or None when it is checked and usable."""
        if not self.state.dataset_path:
            return "Choose your data first (step 2)."
        if self.data_checking:
            return "Studio is still checking your data. Wait a moment."
        if self.report is None or not self.report.usable:
            return "Your data has not passed the check yet: go back to step 2."
        return self.use_case_mismatch()

    def use_case_mismatch(self) -> str | None:
        """Why the checked data cannot train the chosen use case: preference tuning needs answers to compare."""
        from studio.engine.objectives import PREFERENCE_KINDS, PREFERENCE_PROFILE

        kind = getattr(self.report, "kind", None)
        if self.state.profile_id == PREFERENCE_PROFILE and self.report is not None and kind not in PREFERENCE_KINDS:
            return ("“Make answers better” learns from pairs of a better and a worse answer, and this file has "
                    "one answer per example. Choose a file with chosen and rejected answers (or answers marked "
                    "good or bad), or go back to step 1 and pick another use case.")
        return None

    @property
    def plan(self) -> Any:
        return self.planned.plan if self.planned is not None else None

    def set_plan(self, planned: Planned | None) -> None:
        if planned is None and self.planned is None:
            return
        self.planned = planned
        self.planChanged.emit()

    def ensure_plan(self) -> bool:
        """Plan if there is no plan yet and the data is checked (its statistics shape the settings)."""
        if self.planned is None and not self.planner.busy and self.data_blocker() is None:
            self.request_plan()
            return True
        return False

    def request_plan(self) -> None:
        """Plan in the background for the current choices; planChanged or planFailed follows."""
        s = self.state
        ref, profile, report, hardware, read = s.model_ref, s.profile_id, self.report, self.hardware, self.read_facts
        self.planner.start(lambda task: _make_plan(task, ref, profile, report, hardware, read), "choosing settings")

    def final_config(self) -> Any:
        """The plan's config with the user's overrides and the wizard's choices; None before planning."""
        if self.planned is None:
            return None
        return self.with_choices(self.planned.plan.config, self.state.overrides)

    def with_choices(self, config: Any, overrides: dict[str, Any] | None = None) -> Any:
        """`config` (the plan for this computer, or one for a rented GPU) with `overrides` and the wizard's own
        choices: the model, use case and data, and a preference file's objective."""
        assert self.planned is not None
        s = self.state
        fixed = {
            "base_model": s.model_ref or self.planned.plan.config.base_model,
            "profile": s.profile_id or self.planned.plan.config.profile,
            "dataset_path": s.dataset_path,
            "column_mapping": s.column_mapping,
        }
        from studio.engine.objectives import objective_for_kind

        objective = objective_for_kind(getattr(self.report, "kind", None))
        if objective is not None and "objective" not in s.overrides:  # a preference file trains with DPO/KTO
            fixed["objective"] = objective
        return config.updated(**{**(overrides or {}), **fixed})

    def set_override(self, name: str, value: Any) -> None:
        """Apply one user change; raises StudioError (and changes nothing) when the value is not allowed."""
        if name in LOCKED_FIELDS:
            raise ValueError(f"{name} is chosen on another page")
        overrides = {**self.state.overrides, name: value}
        if self.planned is not None:
            self.planned.plan.config.updated(**overrides)  # validates; raises with a plain message
        self.state.overrides = overrides
        self.save()
        self.configChanged.emit()

    def replace_overrides(self, overrides: dict[str, Any]) -> None:
        self.state.overrides = {k: v for k, v in overrides.items() if k not in LOCKED_FIELDS}
        self.save()
        self.configChanged.emit()

    def estimate(self, config: Any) -> Any:
        """Estimates for any config on this machine (fast and pure, so it runs as the user types)."""
        from studio.engine.planner import estimate

        assert self.planned is not None
        p = self.planned
        return estimate(config, p.hardware, p.facts, p.stats)

    def shutdown(self) -> None:
        self._boot.shutdown()
        self._hw.shutdown()
        self.planner.shutdown()

    def _invalidate_plan(self) -> None:
        self.planner.cancel()
        self.set_plan(None)

    def _on_planned(self, planned: Planned) -> None:
        if self.hardware is None:
            self.hardware = planned.hardware
        self.set_plan(planned)

    def _on_hardware(self, hardware: object) -> None:
        self.hardware = hardware
        self.hardwareChanged.emit()

