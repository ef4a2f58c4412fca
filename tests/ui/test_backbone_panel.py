"""The Backbone panel's table counts the parameters of the model a run builds, at the chosen width."""

from workbench.core.config.run import RunConfig
from workbench.ui.panels.backbone import BackbonePanel


def row_of(panel, name):
    table = panel.table
    return next(r for r in range(table.rowCount()) if table.item(r, 0).text() == name)


def test_the_parameter_count_follows_the_chosen_width(qtbot):
    config = RunConfig()
    config.backbone.name, config.backbone.width = "MobileNetV2", 1.0
    panel = BackbonePanel(config)
    qtbot.addWidget(panel)
    row = row_of(panel, "MobileNetV2")
    full = panel.table.item(row, 2).text()
    panel.set_value("backbone.width", 0.35)
    narrow = panel.table.item(row, 2).text()
    assert full == "2.3 M" and narrow == "410 k", (full, narrow)
    panel.set_value("backbone.width", 1.0)
    assert panel.table.item(row, 2).text() == full
