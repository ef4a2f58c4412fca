"""The Tuning tab's form: what to search and over which ranges, the budget, the search method,
where the study is kept, and the dropout-rate preset (the old Dropout lab's sweep).

It reads into a `TuneConfig` over the window's current config (everything not searched comes
from there) and marks `validate_tune`'s problems beside its fields. Window-safe: only
core/config/tune.py, which imports neither Optuna nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.core.base.problems import Problem
from workbench.core.config.run import RunConfig
from workbench.core.config.sweep import MAX_FOLDS, parse_rates
from workbench.core.config.tune import SEARCHABLE, TuneConfig, default_range, dropout_preset
from workbench.ui.fields import ChoiceCombo, InputError, mark_problem
from workbench.ui.panels.regularization import DROPOUT_HELP, DROPOUT_KINDS
from workbench.ui.tuning_ranges import RANGE_HELP, format_range, parse_range

SAMPLER_CHOICES = (("tpe", "TPE (learns from the trials so far)"), ("grid", "Grid (every combination)"))
SEARCH_FIELD = "tune.search"


def short_label(name: str) -> str:
    """A parameter's label without its explanation in brackets, for table columns and axes."""
    return SEARCHABLE.get(name, name).split(" (")[0]


def form(box: QGroupBox) -> QFormLayout:
    layout = QFormLayout(box)
    layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    return layout


class TuneForm(QWidget):
    """Search, Budget, Method and Study groups, and the Dropout-rate preset; `edited` on every change."""

    edited = Signal()

    def __init__(self, config_getter: Callable[[], RunConfig], parent: QWidget | None = None):
        super().__init__(parent)
        self._config_getter = config_getter
        self._touched: set[str] = set()  # ranges a person (or a preset) wrote; the others follow the config
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._build_search())
        layout.addWidget(self._build_budget())
        layout.addWidget(self._build_study())
        layout.addWidget(self._build_preset())
        layout.addStretch(1)

    # ---- building -----------------------------------------------------------------------
    def _build_search(self) -> QGroupBox:
        box = QGroupBox("Search")
        box.setToolTip("Tick what to search; every other setting comes from the panels on the left.")
        rows = form(box)
        self.search_checks: dict[str, QCheckBox] = {}
        self.range_edits: dict[str, QLineEdit] = {}
        base = self._config_getter()
        for name, label in SEARCHABLE.items():
            check = QCheckBox(short_label(name))
            check.setToolTip(label)
            edit = QLineEdit(format_range(default_range(name, base)))
            edit.setToolTip(RANGE_HELP)
            edit.setEnabled(False)
            check.toggled.connect(self._on_search_toggled)
            edit.textEdited.connect(self._on_range_typed)
            edit.textChanged.connect(self.edited)
            self.search_checks[name], self.range_edits[name] = check, edit
            rows.addRow(check, edit)
        return box

    def _build_budget(self) -> QGroupBox:
        box = QGroupBox("Budget and method")
        rows = form(box)
        self.trials_spin = QSpinBox()
        self.trials_spin.setRange(1, 100000)
        self.trials_spin.setValue(20)
        self.trials_spin.setToolTip("Trials in all (finished or stopped early), shared by every machine "
                                    "that joins the study.")
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(0, 100000)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setSpecialValueText("no limit")
        self.minutes_spin.setToolTip("Start no trial after this many minutes (the running one finishes).")
        self.folds_spin = QSpinBox()
        self.folds_spin.setRange(1, MAX_FOLDS)
        self.folds_spin.setSpecialValueText("off (use the validation split)")
        self.folds_spin.setToolTip("k-fold cross-validation: each trial trains k times, validating on another "
                                   "k-th of the images each time; its value is the mean.")
        self.sampler_combo = ChoiceCombo(SAMPLER_CHOICES)
        self.sampler_combo.setToolTip("TPE draws each trial's values from what worked so far (seeded); the grid "
                                      "tries every combination of listed values or stepped ranges.")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("The sampler's seed: the same seed draws the same trials.")
        self.pruner_check = QCheckBox("Stop unpromising trials early")
        self.pruner_check.setChecked(True)
        self.pruner_check.setToolTip("The median pruner: a trial whose validation accuracy after an epoch is "
                                     "below the median of earlier trials at that epoch stops there.")
        rows.addRow("Trials", self.trials_spin)
        rows.addRow("Time limit", self.minutes_spin)
        rows.addRow("Folds", self.folds_spin)
        rows.addRow("Sampler", self.sampler_combo)
        rows.addRow("Seed", self.seed_spin)
        rows.addRow("Pruning", self.pruner_check)
        for spin in (self.trials_spin, self.minutes_spin, self.folds_spin, self.seed_spin):
            spin.valueChanged.connect(self.edited)
        self.sampler_combo.valueChanged.connect(self.edited)
        self.pruner_check.toggled.connect(self.edited)
        return box

    def _build_study(self) -> QGroupBox:
        box = QGroupBox("Study")
        rows = form(box)
        self.storage_edit = QLineEdit()
        self.storage_edit.setPlaceholderText("empty: a SQLite file in the study folder")
        self.storage_edit.setToolTip("Where Optuna keeps the trials: empty for a file in runs/study-<name>/, or a "
                                     "database URL (postgresql://user@host/db) that several machines share.")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("empty: a new study")
        self.name_edit.setToolTip("The same name and storage on several machines makes one study; the name of "
                                  "a past study continues it.")
        rows.addRow("Storage", self.storage_edit)
        rows.addRow("Study name", self.name_edit)
        self.storage_edit.textChanged.connect(self.edited)
        self.name_edit.textChanged.connect(self.edited)
        return box

    def _build_preset(self) -> QGroupBox:
        box = QGroupBox("Dropout-rate preset")
        box.setToolTip("A dropout sweep: every rate with every kind, on a grid, k folds each.")
        rows = form(box)
        self.preset_rates = QLineEdit("0, 0.2, 0.4, 0.6")
        self.preset_rates.setToolTip("Dropout rates to try, separated by commas; each at least 0 and below 1.")
        kinds = QWidget()
        kinds_grid = QGridLayout(kinds)  # three to a row: the form stays narrow
        kinds_grid.setContentsMargins(0, 0, 0, 0)
        self.preset_kinds: dict[str, QCheckBox] = {}
        for index, (kind, label) in enumerate(DROPOUT_KINDS):
            check = QCheckBox(label.split(" (")[0])
            check.setToolTip(f"{label}: {DROPOUT_HELP[kind]}")
            self.preset_kinds[kind] = check
            kinds_grid.addWidget(check, index // 3, index % 3)
        kinds.setToolTip("Kinds to try (none ticked: the kind set in Regularization).")
        initial = self._config_getter().dropout.kind
        if initial in self.preset_kinds:
            self.preset_kinds[initial].setChecked(True)
        self.preset_folds = QSpinBox()
        self.preset_folds.setRange(1, MAX_FOLDS)
        self.preset_folds.setSpecialValueText("off (use the validation split)")
        self.preset_button = QPushButton("Use the preset")
        self.preset_button.setObjectName("dropoutPresetButton")
        self.preset_button.setToolTip("Fill the form with a grid over these rates and kinds; then press Start.")
        self.preset_button.clicked.connect(self.use_dropout_preset)
        self.preset_rates.textChanged.connect(self._on_preset_rates_edited)
        rows.addRow("Rates", self.preset_rates)
        rows.addRow("Kinds", kinds)
        rows.addRow("Folds", self.preset_folds)
        rows.addRow(self.preset_button)
        return box

    # ---- reading and writing --------------------------------------------------------------
    def read(self) -> tuple[TuneConfig, list[Problem]]:
        """The study the form describes over a snapshot of the current config, and the text that is
        not a range yet (those parameters are left out of the search)."""
        base = RunConfig.from_dict(self._config_getter().to_dict())
        tune = TuneConfig(base, trials=self.trials_spin.value(), timeout_s=60.0 * self.minutes_spin.value(),
                          folds=self.folds_spin.value(), sampler=str(self.sampler_combo.value()),
                          seed=self.seed_spin.value(), pruner="median" if self.pruner_check.isChecked() else "none",
                          storage=self.storage_edit.text().strip(), study_name=self.name_edit.text().strip())
        problems = []
        for name, check in self.search_checks.items():
            if not check.isChecked():
                continue
            try:
                tune.search[name] = parse_range(self.range_edits[name].text())
            except InputError as exc:
                problems.append(Problem(f"{SEARCH_FIELD}.{name}", str(exc)))
        return tune, problems

    def set_tune(self, tune: TuneConfig) -> None:
        """Show a study's settings (a preset): its search ticked with its ranges, the rest unticked."""
        blocked = self.blockSignals(True)
        try:
            for name, check in self.search_checks.items():
                if name in tune.search:
                    self.range_edits[name].setText(format_range(tune.search[name]))
                    self._touched.add(name)
                check.setChecked(name in tune.search)
            self.trials_spin.setValue(tune.trials)
            self.minutes_spin.setValue(round(tune.timeout_s / 60))
            self.folds_spin.setValue(max(1, tune.folds))
            self.sampler_combo.setValue(tune.sampler)
            self.seed_spin.setValue(tune.seed)
            self.pruner_check.setChecked(tune.pruner != "none")
            self.storage_edit.setText(tune.storage)
            self.name_edit.setText(tune.study_name)
        finally:
            self.blockSignals(blocked)
        self.edited.emit()

    def searched(self) -> list[str]:
        return [name for name, check in self.search_checks.items() if check.isChecked()]

    # ---- problems -----------------------------------------------------------------------------
    def widget_for(self, field: str) -> QWidget | None:
        """The field that shows a problem of `field` ("tune.search.learning_rate.low", "tune.trials")."""
        if field.startswith(SEARCH_FIELD + "."):
            name = field[len(SEARCH_FIELD) + 1:].split(".")[0]
            return self.range_edits.get(name)
        return {"tune.trials": self.trials_spin, "tune.timeout_s": self.minutes_spin, "tune.folds": self.folds_spin,
                "tune.sampler": self.sampler_combo, "tune.seed": self.seed_spin, "tune.pruner": self.pruner_check,
                "tune.storage": self.storage_edit, "tune.study_name": self.name_edit}.get(field)

    def show_problems(self, problems: list[Problem]) -> list[Problem]:
        """Mark each problem beside its field; the ones no field here shows (the base config's)."""
        marks: dict[QWidget, list[str]] = {w: [] for w in (*self.range_edits.values(), self.trials_spin,
                                                           self.minutes_spin, self.folds_spin, self.sampler_combo,
                                                           self.seed_spin, self.storage_edit, self.name_edit)}
        elsewhere = []
        for problem in problems:
            widget = self.widget_for(problem.field)
            if widget in marks:
                marks[widget].append(problem.message)
            else:
                elsewhere.append(problem)
        for widget, messages in marks.items():
            mark_problem(widget, messages)
        return elsewhere

    # ---- slots ------------------------------------------------------------------------------
    @Slot(bool)
    def _on_search_toggled(self, checked: bool) -> None:
        for name, check in self.search_checks.items():
            if check is self.sender():
                edit = self.range_edits[name]
                edit.setEnabled(checked)
                if checked and name not in self._touched:  # the range that fits the config as it is now
                    edit.setText(format_range(default_range(name, self._config_getter())))
        self.edited.emit()

    @Slot()
    def _on_range_typed(self) -> None:
        for name, edit in self.range_edits.items():
            if edit is self.sender():
                self._touched.add(name)

    @Slot()
    def _on_preset_rates_edited(self) -> None:
        try:
            parse_rates(self.preset_rates.text())
        except ValueError as exc:
            mark_problem(self.preset_rates, [str(exc)])
            self.preset_button.setEnabled(False)
        else:
            mark_problem(self.preset_rates, [])
            self.preset_button.setEnabled(True)

    @Slot()
    def use_dropout_preset(self) -> bool:
        """Fill the form with the dropout sweep; False (the reason at the rates) for bad rates."""
        try:
            rates = parse_rates(self.preset_rates.text())
        except ValueError as exc:
            mark_problem(self.preset_rates, [str(exc)])
            return False
        kinds = [kind for kind, check in self.preset_kinds.items() if check.isChecked()]
        preset = dropout_preset(self._config_getter(), rates, kinds, self.preset_folds.value())
        preset.seed, preset.storage, preset.study_name = (  # where the study is kept stays as it was
            self.seed_spin.value(), self.storage_edit.text().strip(), self.name_edit.text().strip())
        self.set_tune(preset)
        return True
