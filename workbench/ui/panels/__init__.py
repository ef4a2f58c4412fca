"""The settings panels; each edits fields of the main window's one RunConfig."""

from workbench.ui.panels.backbone import BackbonePanel
from workbench.ui.panels.base import ConfigPanel
from workbench.ui.panels.data import DataPanel
from workbench.ui.panels.regularization import RegularizationPanel
from workbench.ui.panels.training import TrainingPanel

__all__ = ["BackbonePanel", "ConfigPanel", "DataPanel", "RegularizationPanel", "TrainingPanel"]
